//! The values the sandbox speaks: the case as the API shows it, the closed enums, and
//! the JSON shapes of the control API.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// `screenType`: what is being screened. British spelling, exactly so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScreenType {
    /// A person; `individualInfo` is required.
    Individual,
    /// An entity; `organizationInfo` is required.
    Organisation,
}

impl ScreenType {
    /// Parses the exact wire spelling.
    pub fn from_wire(text: &str) -> Option<Self> {
        match text {
            "INDIVIDUAL" => Some(Self::Individual),
            "ORGANISATION" => Some(Self::Organisation),
            _ => None,
        }
    }
}

/// Cabital's suggestion on a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Suggestion {
    /// No hit: accept.
    SuggestToAccept,
    /// A list hit: reject.
    SuggestToReject,
    /// A possible hit that needs a person's review.
    NoSuggestion,
}

impl Suggestion {
    /// The exact wire spelling.
    pub fn as_wire(self) -> &'static str {
        match self {
            Self::SuggestToAccept => "SUGGEST_TO_ACCEPT",
            Self::SuggestToReject => "SUGGEST_TO_REJECT",
            Self::NoSuggestion => "NO_SUGGESTION",
        }
    }
}

/// The partner's final decision (`caseResult`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CaseResult {
    /// The partner accepts the customer.
    Accept,
    /// The partner rejects the customer.
    Reject,
}

impl CaseResult {
    /// Parses the exact wire spelling.
    pub fn from_wire(text: &str) -> Option<Self> {
        match text {
            "ACCEPT" => Some(Self::Accept),
            "REJECT" => Some(Self::Reject),
            _ => None,
        }
    }
}

/// A case as `GET /api/v1/cases/{caseSystemId}` returns it.
///
/// The field names are the table's: camelCase, except `suggestion_comment` and
/// `decision_comment`, which the table writes in snake_case. Fields without a value are
/// `null`; an info object that was not sent is `{}`, as in the provider's sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseView {
    /// Cabital's id of the case (UUID v4).
    pub case_system_id: Uuid,
    /// The partner's own id, as sent.
    pub external_case_id: String,
    /// What was screened.
    pub screen_type: ScreenType,
    /// The name as sent.
    pub full_name: String,
    /// The person's details as sent, or `{}`.
    pub individual_info: Value,
    /// The entity's details as sent, or `{}`.
    pub organization_info: Value,
    /// The current suggestion; `null` until screening finishes.
    pub suggestion: Option<Suggestion>,
    /// The note on the current suggestion.
    #[serde(rename = "suggestion_comment")]
    pub suggestion_comment: Option<String>,
    /// The partner's decision, once given.
    pub decision: Option<CaseResult>,
    /// The partner's note on the decision.
    #[serde(rename = "decision_comment")]
    pub decision_comment: Option<String>,
    /// Whether ongoing screening is on.
    pub ogs: bool,
}

/// Where a suggestion came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SuggestionSource {
    /// The initial screening after the case was created.
    Screening,
    /// A later change through the control API, as ongoing screening would make.
    Ongoing,
}

/// One suggestion a case has had, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuggestionRecord {
    /// The suggestion.
    pub suggestion: Suggestion,
    /// Its comment.
    pub comment: String,
    /// What set it.
    pub source: SuggestionSource,
    /// Whether a webhook was asked for (false: a silent change, as if the webhook were lost).
    pub notify: bool,
    /// When it was set, RFC 3339, sandbox clock.
    pub at: String,
}

/// One decision the partner has given, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// The decision.
    pub case_result: CaseResult,
    /// Its comment, if any.
    pub comment: Option<String>,
    /// When it was given, RFC 3339, sandbox clock.
    pub at: String,
}

/// One webhook notification: one body, sent as one or more deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRecord {
    /// Sequence number, unique within the sandbox's life (until reset).
    pub notification_id: u64,
    /// The exact body sent (JSON text).
    pub body: String,
    /// Deliveries scheduled for this body (1 + duplicates).
    pub deliveries: u32,
    /// Of those, how many the drop fault swallowed (never sent, no attempt).
    pub dropped: u32,
    /// When it was scheduled, RFC 3339, sandbox clock.
    pub scheduled_at: String,
}

/// The full state of a case, as `GET /_sandbox/cases/{id}` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseState {
    /// The case as the API shows it.
    pub case: CaseView,
    /// When it was created, RFC 3339, sandbox clock.
    pub created_at: String,
    /// Whether the initial screening is still to come.
    pub screening_pending: bool,
    /// Every suggestion, oldest first.
    pub suggestion_history: Vec<SuggestionRecord>,
    /// Every decision, oldest first.
    pub decision_history: Vec<DecisionRecord>,
    /// Every webhook notification, oldest first.
    pub notifications: Vec<NotificationRecord>,
}

/// One webhook delivery attempt, as `GET /_sandbox/deliveries` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    /// The notification this delivery carries.
    pub notification_id: u64,
    /// Which copy: 0 is the delivery itself, 1.. the duplicates.
    pub copy: u32,
    /// The case.
    pub case_system_id: Uuid,
    /// 1 for the first attempt, up to 5.
    pub attempt: u32,
    /// The URL posted to.
    pub url: String,
    /// The exact body posted (JSON text).
    pub body: String,
    /// The receiver's status code, when one came back.
    pub status_code: Option<u16>,
    /// The transport error, when none came back.
    pub error: Option<String>,
    /// Whether the attempt succeeded (a 2xx).
    pub success: bool,
    /// A 2xx that the lost-ack fault made count as failed: the delivery is retried.
    #[serde(default)]
    pub ack_lost: bool,
    /// How the attempt was signed: `fresh`, `original` (the first attempt's headers, as
    /// old as the schedule makes them), or `unsigned`.
    #[serde(default)]
    pub signed: String,
    /// `ACCESS-TIMESTAMP` as sent (absent when unsigned).
    #[serde(default)]
    pub access_timestamp: Option<i64>,
    /// When the attempt was made, RFC 3339, sandbox clock.
    pub at: String,
}

/// Body of `POST /_sandbox/cases/{id}/suggestion`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SuggestionChange {
    /// The new suggestion.
    pub suggestion: Suggestion,
    /// Its comment; a default per suggestion when absent.
    #[serde(default)]
    pub comment: Option<String>,
    /// Whether to send a webhook (default true); false changes the state silently.
    #[serde(default = "default_true")]
    pub notify: bool,
}

fn default_true() -> bool {
    true
}

/// Body of `PUT /_sandbox/webhook-url`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookUrl {
    /// The URL webhooks go to; `null` turns webhooks off.
    pub url: Option<String>,
}

/// An error of the API, as `{"code": ..., "message": ...}`, with one entry per bad
/// field on a 400.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The HTTP status code.
    pub code: u16,
    /// What went wrong, in words.
    pub message: String,
    /// The bad fields, on a 400 for a bad body.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One bad field of a request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// The field's path, e.g. `individualInfo.dob`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}
