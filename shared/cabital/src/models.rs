//! Cabital's resources, as `cabital-api.md` reads them: newtypes for ids, enums for
//! every closed set, and [`Pii`] around every piece of personal data so that it never
//! reaches `Debug` output or logs.

use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use time::Date;
use uuid::Uuid;

/// Personal data: serialised as is, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Pii<T>(pub T);

impl<T> Pii<T> {
    /// The value inside, for the rare places that need it (building the request body).
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> Deref for Pii<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Pii<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The most of a comment from Cabital that is kept, in bytes of UTF-8: a comment rides
/// in a case item and in events, and DynamoDB refuses any item over 400 KB, forever.
pub const MAX_STORED_COMMENT_BYTES: usize = 16 * 1024;

/// A person's note from Cabital (on a suggestion or a decision), as the gateway keeps it:
/// at most [`MAX_STORED_COMMENT_BYTES`] of its text. A longer one is cut at a character
/// boundary and carries what it was cut from ([`CutText`]), so that the full text, if
/// ever produced, can be shown to be the one Cabital sent. Personal data: `Debug` hides it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Comment {
    text: String,
    cut: Option<CutText>,
}

/// What a cut comment was cut from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CutText {
    /// The full text's length, in bytes of UTF-8.
    pub full_bytes: u64,
    /// The full text's SHA-256, lowercase hex.
    pub full_sha256: String,
}

impl Comment {
    /// A comment as received: cut when over the bound.
    pub fn new(text: impl Into<String>) -> Self {
        let mut text = text.into();
        if text.len() <= MAX_STORED_COMMENT_BYTES {
            return Comment { text, cut: None };
        }
        use sha2::Digest as _;
        let cut = CutText { full_bytes: text.len() as u64, full_sha256: hex::encode(sha2::Sha256::digest(&text)) };
        let mut end = MAX_STORED_COMMENT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        Comment { text, cut: Some(cut) }
    }

    /// A comment as stored, read back.
    pub fn stored(text: String, cut: Option<CutText>) -> Self {
        Comment { text, cut }
    }

    /// The text kept, for the places that store or show it (as [`Pii::expose`]).
    pub fn expose(&self) -> &String {
        &self.text
    }

    /// What the text was cut from, when it was.
    pub fn cut(&self) -> Option<&CutText> {
        self.cut.as_ref()
    }
}

impl Deref for Comment {
    type Target = String;
    fn deref(&self) -> &String {
        &self.text
    }
}

impl From<Pii<String>> for Comment {
    fn from(p: Pii<String>) -> Self {
        Comment::new(p.0)
    }
}

impl fmt::Debug for Comment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.cut.is_some() { "[redacted, cut]" } else { "[redacted]" })
    }
}

impl Serialize for Comment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Comment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Comment::new)
    }
}

/// The partner's own id for a case: 1 to 36 Unicode characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ExternalCaseId(String);

/// Why an id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Empty or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// More than 36 characters.
    #[error("must be at most 36 characters")]
    TooLong,
    /// Holds a control character.
    #[error("must not contain control characters")]
    ControlCharacter,
    /// Not a UUID.
    #[error("must be a UUID")]
    NotUuid,
    /// Holds an invisible format character (U+200B, U+2060, U+FEFF, U+202E, ...), a
    /// private-use or an unassigned one: two ids that look alike must be the same id.
    #[error("must not contain invisible format, private-use or unassigned characters")]
    HiddenCharacter,
    /// Not in Unicode NFC form: the same text would have two spellings.
    #[error("must be in Unicode normalization form C (NFC)")]
    NotNormalized,
}

/// Whether a character hides in text: a format character (zero-width spaces and
/// joiners, word joiner, byte-order mark, bidirectional overrides), a private-use or an
/// unassigned code point. A name holding one can slip past a list screening that
/// matches on what a person reads.
pub fn is_hidden_character(c: char) -> bool {
    use unicode_general_category::{GeneralCategory, get_general_category};
    matches!(
        get_general_category(c),
        GeneralCategory::Format | GeneralCategory::PrivateUse | GeneralCategory::Unassigned
    )
}

impl ExternalCaseId {
    /// The most characters Cabital accepts.
    pub const MAX_CHARS: usize = 36;

    /// Checks and wraps an id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.trim().is_empty() {
            return Err(IdError::Empty);
        }
        if s.chars().count() > Self::MAX_CHARS {
            return Err(IdError::TooLong);
        }
        if s.chars().any(char::is_control) {
            return Err(IdError::ControlCharacter);
        }
        if s.chars().any(is_hidden_character) {
            return Err(IdError::HiddenCharacter);
        }
        if !unicode_normalization::is_nfc(s) {
            return Err(IdError::NotNormalized);
        }
        Ok(ExternalCaseId(s.to_owned()))
    }

    /// The id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ExternalCaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ExternalCaseId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ExternalCaseId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Cabital's own id of a case, a UUID (`caseSystemId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CaseSystemId(Uuid);

impl CaseSystemId {
    /// Wraps a UUID.
    pub fn new(id: Uuid) -> Self {
        CaseSystemId(id)
    }
    /// The UUID.
    pub fn uuid(&self) -> Uuid {
        self.0
    }
}

impl FromStr for CaseSystemId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s).map(CaseSystemId).map_err(|_| IdError::NotUuid)
    }
}

impl fmt::Display for CaseSystemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Lower-case hyphenated, the form Cabital's paths use.
        self.0.hyphenated().fmt(f)
    }
}

macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in the wire spelling.
            pub const ALL: &'static [&'static str] = &[$($wire),+];

            /// The wire spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($wire => Ok($name::$variant),)+ _ => Err(UnknownValue) }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A value outside a closed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not one of the allowed values")]
pub struct UnknownValue;

wire_enum!(
    /// Whether a case screens a person or an entity.
    ScreenType {
        /// A person (`individualInfo` required).
        Individual = "INDIVIDUAL",
        /// An entity (`organizationInfo` required). British spelling, exactly so.
        Organisation = "ORGANISATION",
    }
);

wire_enum!(
    /// A person's gender as Cabital takes it.
    Gender {
        /// `MALE`
        Male = "MALE",
        /// `FEMALE`
        Female = "FEMALE",
    }
);

wire_enum!(
    /// Cabital's suggestion on a case.
    Suggestion {
        /// Cabital suggests accepting the customer.
        SuggestToAccept = "SUGGEST_TO_ACCEPT",
        /// Cabital suggests rejecting the customer.
        SuggestToReject = "SUGGEST_TO_REJECT",
        /// Cabital makes no suggestion; a person must look.
        NoSuggestion = "NO_SUGGESTION",
    }
);

wire_enum!(
    /// The partner's final decision.
    Decision {
        /// Accept the customer.
        Accept = "ACCEPT",
        /// Reject the customer.
        Reject = "REJECT",
    }
);

/// An ISO 3166-1 alpha-3 country code, checked against the standard's list.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct CountryCode(String);

impl CountryCode {
    /// Checks a code against ISO 3166-1 (upper case, exactly three letters).
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) && rust_iso3166::from_alpha3(s).is_some();
        ok.then(|| CountryCode(s.to_owned()))
    }
    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Nationality and residence are personal data.
        f.write_str("CountryCode([redacted])")
    }
}

impl<'de> Deserialize<'de> for CountryCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        CountryCode::parse(&s).ok_or_else(|| serde::de::Error::custom("not an ISO 3166-1 alpha-3 code"))
    }
}

/// `yyyy-MM-dd`, the only date format Cabital takes.
pub(crate) const DATE_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// A date of birth, written `yyyy-MM-dd`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BirthDate(pub Date);

impl fmt::Debug for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BirthDate([redacted])")
    }
}

impl Serialize for BirthDate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let text = self.0.format(DATE_FORMAT).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for BirthDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s, DATE_FORMAT)
            .map(BirthDate)
            .map_err(|_| serde::de::Error::custom("not a yyyy-MM-dd calendar date"))
    }
}

/// A person's details, for `INDIVIDUAL` cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndividualInfo {
    /// `MALE` or `FEMALE`.
    pub gender: Gender,
    /// Date of birth.
    pub dob: BirthDate,
    /// Nationality, ISO 3166-1 alpha-3.
    pub nationality: CountryCode,
    /// Country of residence, ISO 3166-1 alpha-3.
    pub residential_country: CountryCode,
}

/// A case as the partner submits it. Build one with [`crate::validate_new_case`].
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Person or entity.
    pub screen_type: ScreenType,
    /// The person's or entity's full name.
    pub full_name: Pii<String>,
    /// Present exactly when `screen_type` is `INDIVIDUAL`.
    pub individual_info: Option<IndividualInfo>,
    /// Present exactly when `screen_type` is `ORGANISATION`; passed through unchanged.
    pub organization_info: Option<Pii<Map<String, Value>>>,
}

impl Serialize for NewCase {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        // As the provider's own sample does: the info object that does not apply is `{}`.
        let empty = Map::new();
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("externalCaseId", &self.external_case_id)?;
        m.serialize_entry("screenType", &self.screen_type)?;
        m.serialize_entry("fullName", &self.full_name)?;
        match &self.individual_info {
            Some(info) => m.serialize_entry("individualInfo", info)?,
            None => m.serialize_entry("individualInfo", &empty)?,
        }
        match &self.organization_info {
            Some(info) => m.serialize_entry("organizationInfo", info)?,
            None => m.serialize_entry("organizationInfo", &empty)?,
        }
        m.end()
    }
}

/// A case as Cabital returns it (create and get).
///
/// Ids and closed sets are parsed strictly; the submitted details are kept as JSON.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Case {
    /// Cabital's id.
    pub case_system_id: CaseSystemId,
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Person or entity.
    #[serde(default)]
    pub screen_type: Option<ScreenType>,
    /// The current suggestion, once there is one.
    #[serde(default)]
    pub suggestion: Option<Suggestion>,
    /// A person's note on the suggestion (read in either spelling).
    #[serde(default, rename = "suggestion_comment", alias = "suggestionComment")]
    pub suggestion_comment: Option<Comment>,
    /// The partner's decision, once given.
    #[serde(default)]
    pub decision: Option<Decision>,
    /// The partner's note on the decision (read in either spelling).
    #[serde(default, rename = "decision_comment", alias = "decisionComment")]
    pub decision_comment: Option<Comment>,
    /// Whether ongoing screening is on.
    #[serde(default)]
    pub ogs: bool,
}

/// `POST /api/v1/cases/{id}/decision`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DecisionRequest {
    /// `ACCEPT` or `REJECT`.
    pub case_result: Decision,
    /// The partner's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Pii<String>>,
}

/// The body of Cabital's "case screening result" webhook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookNotification {
    /// Cabital's id of the case.
    pub case_system_id: CaseSystemId,
    /// The suggestion this delivery reports (not necessarily the latest: see the design).
    pub case_suggestion: Suggestion,
    /// A person's note on the suggestion.
    #[serde(default)]
    pub comment: Option<Comment>,
    /// The partner's id of the case.
    pub external_case_id: ExternalCaseId,
}

/// Why a webhook body is not a case screening result. The detail names the problem,
/// never a value from the body (comments and names are personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct MalformedWebhook {
    detail: String,
}

impl MalformedWebhook {
    fn new(detail: impl Into<String>) -> Self {
        MalformedWebhook { detail: detail.into() }
    }

    /// What is wrong, for the problem's `detail`: one of a few fixed sentences.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl WebhookNotification {
    /// The fields of the body, in wire spelling: the only names a [`MalformedWebhook`]
    /// detail quotes.
    pub const FIELDS: &'static [&'static str] = &["caseSystemId", "caseSuggestion", "comment", "externalCaseId"];

    /// Parses the raw body of a delivery (already verified) strictly, and returns it
    /// with the body as text, which is what gets stored.
    pub fn from_body(body: &[u8]) -> Result<(WebhookNotification, &str), MalformedWebhook> {
        let text = std::str::from_utf8(body).map_err(|_| MalformedWebhook::new("not UTF-8"))?;
        let notification = serde_json::from_str::<WebhookNotification>(text).map_err(|e| {
            use serde_json::error::Category;
            // serde's message can quote the input (an unknown variant, a bad id): build
            // the detail from what it is about, never from the text.
            match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => MalformedWebhook::new("not valid JSON"),
                Category::Data => {
                    let msg = e.to_string();
                    if let Some(field) = missing_field(&msg) {
                        MalformedWebhook::new(format!("missing field `{field}`"))
                    } else if msg.starts_with("unknown variant") {
                        MalformedWebhook::new(format!("caseSuggestion is not one of {}", Suggestion::ALL.join(", ")))
                    } else {
                        MalformedWebhook::new(format!("unexpected shape at line {} column {}", e.line(), e.column()))
                    }
                }
            }
        })?;
        Ok((notification, text))
    }
}

/// The field named by serde's "missing field `x`" message, if it is one of ours.
fn missing_field(msg: &str) -> Option<&'static str> {
    let name = msg.strip_prefix("missing field `")?.split('`').next()?;
    WebhookNotification::FIELDS.iter().copied().find(|f| *f == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_within_the_bound_is_kept_whole() {
        let text = "x".repeat(MAX_STORED_COMMENT_BYTES);
        let c = Comment::new(text.clone());
        assert_eq!((c.expose(), c.cut()), (&text, None));
        assert_eq!(format!("{c:?}"), "[redacted]");
    }

    #[test]
    fn a_longer_comment_is_cut_at_a_character_boundary_with_its_length_and_hash() {
        use sha2::Digest as _;
        // 3-byte characters after one ASCII byte: the bound falls inside a character.
        let text = format!("a{}", "€".repeat(MAX_STORED_COMMENT_BYTES));
        let c = Comment::new(text.clone());
        assert!(c.expose().len() <= MAX_STORED_COMMENT_BYTES);
        assert!(c.expose().len() > MAX_STORED_COMMENT_BYTES - 3);
        assert!(text.starts_with(c.expose().as_str()));
        let cut = c.cut().unwrap();
        assert_eq!(cut.full_bytes, text.len() as u64);
        assert_eq!(cut.full_sha256, hex::encode(sha2::Sha256::digest(&text)));
        assert_eq!(format!("{c:?}"), "[redacted, cut]");
    }

    #[test]
    fn comments_from_cabital_are_cut_as_they_are_read() {
        let long = "n".repeat(1 << 20);
        let body = serde_json::json!({
            "caseSystemId": "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c",
            "caseSuggestion": "SUGGEST_TO_REJECT",
            "comment": long,
            "externalCaseId": "243d19cf",
        });
        let (n, _) = WebhookNotification::from_body(body.to_string().as_bytes()).unwrap();
        let c = n.comment.unwrap();
        assert_eq!((c.expose().len(), c.cut().map(|x| x.full_bytes)), (MAX_STORED_COMMENT_BYTES, Some(1 << 20)));
        let case: Case = serde_json::from_value(serde_json::json!({
            "caseSystemId": "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c",
            "externalCaseId": "243d19cf",
            "suggestionComment": long,
            "decision_comment": long,
        }))
        .unwrap();
        assert!(case.suggestion_comment.unwrap().cut().is_some());
        assert!(case.decision_comment.unwrap().cut().is_some());
    }
}
