//! What the API answers: cases and their timelines as JSON.

use gateway_cabital::{CaseSystemId, Comment, Decision, ExternalCaseId, ScreenType, Suggestion};
use gateway_store::{CaseRecord, Event, EventDetail, ExtRecord, StateChange, format_time};
use serde::Serialize;
use serde_json::{Value, json};

/// A case as the API shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseView {
    /// Cabital's id.
    pub case_system_id: CaseSystemId,
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Person or entity (absent when first known from a webhook).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub screen_type: Option<ScreenType>,
    /// `API` or `WEBHOOK`.
    pub origin: &'static str,
    /// `AWAITING_SUGGESTION`, `SUGGESTED` or `DECIDED`.
    pub status: &'static str,
    /// Cabital's current suggestion.
    pub suggestion: Option<Suggestion>,
    /// Its comment.
    pub suggestion_comment: Option<String>,
    /// When the comment was cut for storage: what it was cut from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion_comment_truncated: Option<CutView>,
    /// When it was recorded.
    pub suggestion_at: Option<String>,
    /// The partner's decision.
    pub decision: Option<Decision>,
    /// Its comment.
    pub decision_comment: Option<String>,
    /// When the comment was cut for storage: what it was cut from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_comment_truncated: Option<CutView>,
    /// When it was recorded.
    pub decided_at: Option<String>,
    /// Ongoing screening on.
    pub ogs: bool,
    /// A webhook came and Cabital's state has not been read since.
    pub needs_refresh: bool,
    /// First recorded.
    pub created_at: String,
    /// Last written.
    pub updated_at: String,
    /// Last read from Cabital.
    pub last_checked_at: Option<String>,
    /// The record's version.
    pub version: u64,
    /// What a person must look at, when anything: absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attention: Option<AttentionView>,
    /// Until when it is kept: its retention bound (`RETENTION_DAYS` after its last write,
    /// and a little more), after which DynamoDB deletes every item of the case.
    pub retained_until: Option<String>,
}

/// A comment longer than the gateway keeps (`MAX_STORED_COMMENT_BYTES`): the text shown
/// is its start, and this says what it was cut from.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CutView {
    /// The full text's length, in bytes of UTF-8.
    pub full_bytes: u64,
    /// The full text's SHA-256, lowercase hex.
    pub full_sha256: String,
}

impl CutView {
    fn of(c: Option<&Comment>) -> Option<CutView> {
        c.and_then(Comment::cut).map(|cut| CutView { full_bytes: cut.full_bytes, full_sha256: cut.full_sha256.clone() })
    }
}

fn text(c: Option<&Comment>) -> Option<String> {
    c.map(|c| c.expose().clone())
}

/// Why a case needs a person, and since when.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttentionView {
    /// `no_suggestion`: Cabital gave no suggestion within
    /// `RECONCILE_NO_SUGGESTION_GIVE_UP_SECS` of the case's creation (an account
    /// without Zero Footprint screens nothing by itself); the reconciler no longer asks.
    pub reason: &'static str,
    /// Since when.
    pub since: String,
}

impl From<&CaseRecord> for CaseView {
    fn from(c: &CaseRecord) -> Self {
        CaseView {
            case_system_id: c.case_system_id,
            external_case_id: c.external_case_id.clone(),
            screen_type: c.screen_type,
            origin: c.origin.as_str(),
            status: c.status.as_str(),
            suggestion: c.suggestion,
            suggestion_comment: text(c.suggestion_comment.as_ref()),
            suggestion_comment_truncated: CutView::of(c.suggestion_comment.as_ref()),
            suggestion_at: c.suggestion_at.map(format_time),
            decision: c.decision,
            decision_comment: text(c.decision_comment.as_ref()),
            decision_comment_truncated: CutView::of(c.decision_comment.as_ref()),
            decided_at: c.decided_at.map(format_time),
            ogs: c.ogs,
            needs_refresh: c.needs_refresh,
            created_at: format_time(c.created_at),
            updated_at: format_time(c.updated_at),
            last_checked_at: c.last_checked_at.map(format_time),
            version: c.version,
            attention: c
                .no_suggestion_since
                .map(|since| AttentionView { reason: "no_suggestion", since: format_time(since) }),
            retained_until: c.expires_at.map(format_time),
        }
    }
}

/// One timeline entry.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// Unique within the case, time-ordered.
    pub event_id: String,
    /// When it was recorded.
    pub at: String,
    /// What it records.
    pub kind: &'static str,
    /// Who recorded it.
    pub source: &'static str,
    /// The kind's details.
    pub details: Value,
}

fn change(c: &StateChange) -> Value {
    let mut v = json!({
        "fromSuggestion": c.from_suggestion,
        "toSuggestion": c.to_suggestion,
        "toSuggestionComment": text(c.to_suggestion_comment.as_ref()),
        "toDecision": c.to_decision,
        "toDecisionComment": text(c.to_decision_comment.as_ref()),
        "toOgs": c.to_ogs,
        "changed": c.changed.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
    });
    for (key, comment) in [
        ("toSuggestionCommentTruncated", c.to_suggestion_comment.as_ref()),
        ("toDecisionCommentTruncated", c.to_decision_comment.as_ref()),
    ] {
        if let Some(cut) = CutView::of(comment) {
            v[key] = json!(cut);
        }
    }
    v
}

/// What a webhook and a notice both show: the body as received and its deliveries.
fn delivered(
    body: &gateway_cabital::Pii<String>,
    body_sha256: &str,
    deliveries: u32,
    first_received_at: time::OffsetDateTime,
    last_received_at: time::OffsetDateTime,
) -> serde_json::Map<String, Value> {
    let mut d = serde_json::Map::new();
    d.insert("body".into(), raw_json(body.expose()));
    d.insert("bodySha256".into(), json!(body_sha256));
    d.insert("deliveries".into(), json!(deliveries));
    d.insert("firstReceivedAt".into(), json!(format_time(first_received_at)));
    d.insert("lastReceivedAt".into(), json!(format_time(last_received_at)));
    d
}

fn raw_json(text: &str) -> Value {
    // Stored as the exact text; shown as JSON when it parses (it always should).
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        let details = match &e.detail {
            EventDetail::Created { submitted, response } => json!({
                "submitted": submitted.as_ref().map(|s| raw_json(s.expose())),
                "response": response.as_ref().map(|s| raw_json(s.expose())),
            }),
            EventDetail::Webhook { body, body_sha256, deliveries, first_received_at, last_received_at, suggestion } => {
                let mut d = delivered(body, body_sha256, *deliveries, *first_received_at, *last_received_at);
                d.insert("suggestion".into(), json!(suggestion));
                Value::Object(d)
            }
            // Never shown as Cabital's words: the body as received, and why it was not verified.
            EventDetail::UnverifiedNotice {
                body,
                body_sha256,
                deliveries,
                first_received_at,
                last_received_at,
                reason,
            } => {
                let mut d = delivered(body, body_sha256, *deliveries, *first_received_at, *last_received_at);
                d.insert("verified".into(), json!(false));
                d.insert("reason".into(), json!(reason.as_str()));
                Value::Object(d)
            }
            EventDetail::Refreshed(c) | EventDetail::Reconciled(c) => change(c),
            EventDetail::Decision { decision, comment } => {
                json!({"decision": decision, "comment": comment.as_ref().map(|p| p.expose())})
            }
            EventDetail::OgsOn | EventDetail::OgsOff => json!({}),
            EventDetail::SuggestionOverdue { waited_secs } => json!({"waitedSecs": waited_secs}),
            EventDetail::Erased { items_erased } => json!({"itemsErased": items_erased}),
        };
        EventView {
            event_id: e.event_id.clone(),
            at: format_time(e.at),
            kind: e.kind().as_str(),
            source: e.source.as_str(),
            details,
        }
    }
}

/// A case with one page of its timeline.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CaseWithTimeline {
    /// The case.
    pub case: CaseView,
    /// One page of its events.
    pub timeline: Vec<EventView>,
    /// Pass as `?cursor=` for the next page.
    pub next_cursor: Option<String>,
    /// With `?live=true`: whether Cabital's state changed what we held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_changed: Option<bool>,
}

/// The answer to a create (and to its replays).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Created {
    /// Cabital's id (also in `case`).
    pub case_system_id: CaseSystemId,
    /// The case as recorded.
    pub case: CaseView,
    /// Whether this answer replays an earlier identical request.
    pub replayed: bool,
}

/// The answer to a create that Cabital took without telling the case's id (`202`): a
/// 2xx whose body did not carry `caseSystemId`, or a 409 (Cabital already has a case
/// with this `externalCaseId`). The reservation stays `UNKNOWN`: never freed, never
/// sent again; Cabital's first webhook naming the `externalCaseId` links it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AwaitingCaseId {
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// The reservation's state, as `GET /v1/cases?externalCaseId=` shows it: `UNKNOWN`.
    pub state: &'static str,
    /// Stable: `case_system_id_pending`.
    pub code: &'static str,
    /// What Cabital answered the create: a 2xx, or 409.
    pub cabital_status: u16,
    /// What it means, for a person.
    pub detail: &'static str,
    /// Where to look for the case: `/v1/cases?externalCaseId=...`.
    pub lookup: String,
    /// Whether this answer replays an earlier identical request.
    pub replayed: bool,
}

/// The stable code of [`AwaitingCaseId`].
pub const CASE_SYSTEM_ID_PENDING: &str = "case_system_id_pending";

impl AwaitingCaseId {
    pub(crate) fn new(ext: &ExternalCaseId, cabital_status: u16, replayed: bool) -> Self {
        AwaitingCaseId {
            external_case_id: ext.clone(),
            state: gateway_store::ExtState::Unknown.as_str(),
            code: CASE_SYSTEM_ID_PENDING,
            cabital_status,
            detail: "Cabital has the case but did not give its caseSystemId. It will not be sent again; \
                     its id comes with Cabital's first webhook naming this externalCaseId.",
            lookup: format!("/v1/cases?externalCaseId={}", percent_encode(ext.as_str())),
            replayed,
        }
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay as they are).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a create answers: the case (`201`), or that Cabital has it without its id yet
/// (`202`).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum CreateOutcome {
    /// Created and recorded (boxed: a case view is large).
    Created(Box<Created>),
    /// Cabital has it; its id comes with the first webhook.
    AwaitingCaseId(AwaitingCaseId),
}

impl CreateOutcome {
    /// The HTTP status that carries it.
    pub fn status(&self) -> u16 {
        match self {
            CreateOutcome::Created(_) => 201,
            CreateOutcome::AwaitingCaseId(_) => 202,
        }
    }

    /// Cabital's id, when known.
    pub fn case_system_id(&self) -> Option<CaseSystemId> {
        match self {
            CreateOutcome::Created(c) => Some(c.case_system_id),
            CreateOutcome::AwaitingCaseId(_) => None,
        }
    }
}

/// The answer to a lookup by `externalCaseId`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalLookup {
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// `PENDING`, `CREATED`, `UNKNOWN` or `REJECTED`; absent when only a webhook named it.
    pub state: Option<&'static str>,
    /// Cabital's id, when known.
    pub case_system_id: Option<CaseSystemId>,
    /// The case, when recorded.
    pub case: Option<CaseView>,
}

impl ExternalLookup {
    pub(crate) fn new(ext: &ExtRecord, case: Option<&CaseRecord>) -> Self {
        ExternalLookup {
            external_case_id: ext.external_case_id.clone(),
            state: Some(ext.state.as_str()),
            case_system_id: ext.case_system_id.or(case.map(|c| c.case_system_id)),
            case: case.map(CaseView::from),
        }
    }
}

/// One page of the work queue (`GET /v1/cases?awaiting=decision`) or of a flagged list
/// (`?attention=`): ids, suggestion or reason, and since when; nothing personal.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkQueue {
    /// Oldest first.
    pub cases: Vec<QueuedCase>,
    /// Pass it as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
}

/// A case (or a creation) awaiting a person.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueuedCase {
    /// Cabital's id; null for an unknown creation.
    pub case_system_id: Option<CaseSystemId>,
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Cabital's suggestion (the work queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<Suggestion>,
    /// Why the gateway flags it (`?attention=`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// Since when: the suggestion came, the outcome became unknown, the case was given up.
    pub awaiting_since: String,
}

impl From<&gateway_store::QueuePage> for WorkQueue {
    fn from(page: &gateway_store::QueuePage) -> Self {
        WorkQueue {
            cases: page
                .entries
                .iter()
                .map(|e| QueuedCase {
                    case_system_id: e.case_system_id,
                    external_case_id: e.external_case_id.clone(),
                    suggestion: e.suggestion,
                    reason: e.flag.map(|f| f.as_str()),
                    awaiting_since: format_time(e.since),
                })
                .collect(),
            next_cursor: page.next_cursor.clone(),
        }
    }
}

/// The evidence export of a case: the case, then every event in chain order (the case's
/// version) with what its link hashes (`content`) and the link itself; `chain` names the
/// algorithm, the genesis and the head. `gateway_evidence::verify` checks it offline.
pub(crate) fn evidence(case: &CaseRecord, events: &mut [Event], exported_at: time::OffsetDateTime) -> Value {
    events.sort_by_key(|e| e.chain.as_ref().map_or(0, |l| l.case_version));
    let linked: Vec<Value> = events
        .iter()
        .map(|e| match (&e.chain, e.content()) {
            (Some(link), Some(content)) => {
                let mut v = json!({
                    "eventId": e.event_id,
                    "at": format_time(e.at),
                    "kind": e.kind().as_str(),
                    "caseVersion": link.case_version,
                    "prevHash": link.prev_hash,
                    "contentSha256": link.content_sha256,
                    "hash": link.hash,
                    "content": content,
                });
                // Its personal fields were replaced: its link stands on its kept hash.
                if e.erased {
                    v["erased"] = json!(true);
                }
                v
            }
            // Written before the chain: shown, and named by the check as unlinked.
            _ => json!({"eventId": e.event_id, "at": format_time(e.at), "kind": e.kind().as_str(), "content": null}),
        })
        .collect();
    json!({
        "case": CaseView::from(case),
        "erasedAt": case.erased_at.map(format_time),
        "chain": {
            "algorithm": "SHA-256",
            "canonicalForm": "docs/evidence.md",
            "genesis": gateway_evidence::GENESIS,
            "head": case.chain_head,
            "events": linked.len(),
        },
        "events": linked,
        "exportedAt": format_time(exported_at),
    })
}

/// The answer to `DELETE /v1/cases/{id}/personal-data`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureView {
    /// The case.
    pub case_system_id: CaseSystemId,
    /// When its personal data was erased (the first time, for a repeat).
    pub erased_at: String,
    /// Items rewritten by this call (0 for a repeat).
    pub items_erased: u64,
    /// Whether it had been erased already (nothing was written).
    pub already_erased: bool,
}
