//! The sandbox's screening: a deterministic function of `fullName`, so that a test
//! picks its outcome by picking a name.
//!
//! - a name on [`LISTED_NAMES`] (exactly), or containing "sanctioned" (any case):
//!   `SUGGEST_TO_REJECT`, comment "Matched list" and the list's name;
//! - else a name containing "unclear" (any case): `NO_SUGGESTION`;
//! - else `SUGGEST_TO_ACCEPT`, comment "No hit".

use crate::model::Suggestion;

/// Names that are on a (made-up) list, exactly as written, with the list's name.
pub const LISTED_NAMES: &[(&str, &str)] = &[
    ("Ivan Blocklisted", "Sandbox OFAC SDN"),
    ("Maria Watchlisted", "Sandbox UN Consolidated"),
    ("Kim Jong Listed", "Sandbox EU Financial Sanctions"),
    ("Blocked Holdings Ltd", "Sandbox HMT Consolidated"),
];

/// The list named for any name containing "sanctioned".
pub const GENERIC_LIST: &str = "Sandbox Sanctions";

/// Comment on a `SUGGEST_TO_ACCEPT`.
pub const NO_HIT_COMMENT: &str = "No hit";

/// Comment on a `NO_SUGGESTION`.
pub const UNCLEAR_COMMENT: &str = "Possible match, needs review";

/// The outcome of screening a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Screening {
    /// The suggestion.
    pub suggestion: Suggestion,
    /// Its comment.
    pub comment: String,
}

/// Screens a full name (see the module documentation for the rule).
pub fn screen(full_name: &str) -> Screening {
    if let Some((_, list)) = LISTED_NAMES.iter().find(|(name, _)| *name == full_name) {
        return Screening { suggestion: Suggestion::SuggestToReject, comment: format!("Matched list {list}") };
    }
    let lower = full_name.to_lowercase();
    if lower.contains("sanctioned") {
        return Screening { suggestion: Suggestion::SuggestToReject, comment: format!("Matched list {GENERIC_LIST}") };
    }
    if lower.contains("unclear") {
        return Screening { suggestion: Suggestion::NoSuggestion, comment: UNCLEAR_COMMENT.to_owned() };
    }
    Screening { suggestion: Suggestion::SuggestToAccept, comment: NO_HIT_COMMENT.to_owned() }
}

/// The comment used when the control API sets a suggestion without one.
pub(crate) fn default_comment(suggestion: Suggestion) -> String {
    match suggestion {
        Suggestion::SuggestToAccept => NO_HIT_COMMENT.to_owned(),
        Suggestion::SuggestToReject => format!("Matched list {GENERIC_LIST} (ongoing screening)"),
        Suggestion::NoSuggestion => UNCLEAR_COMMENT.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule() {
        assert_eq!(screen("Ivan Blocklisted").suggestion, Suggestion::SuggestToReject);
        assert_eq!(screen("Ivan Blocklisted").comment, "Matched list Sandbox OFAC SDN");
        // Exact names only: a near miss is not a hit.
        assert_eq!(screen("Ivan Blocklisted Jr").suggestion, Suggestion::SuggestToAccept);
        assert_eq!(screen("Acme SANCTIONED Trading").suggestion, Suggestion::SuggestToReject);
        assert_eq!(screen("Mr Unclear").suggestion, Suggestion::NoSuggestion);
        // Reject wins over unclear.
        assert_eq!(screen("Unclear Sanctioned").suggestion, Suggestion::SuggestToReject);
        assert_eq!(screen("John Doe"), Screening { suggestion: Suggestion::SuggestToAccept, comment: "No hit".into() });
    }
}
