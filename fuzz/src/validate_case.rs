//! Case and decision validation on arbitrary bytes read as JSON, as the cases API
//! runs it on a request body, with the properties it must keep. Shared by the fuzz
//! target (`fuzz/fuzz_targets/validate_case.rs`) and the replay of
//! `fuzz/regressions/validate_case/` in `cargo test`
//! (`shared/cabital/tests/fuzz_regressions.rs`).
//!
//! An input is a request body, as is.

use gateway_cabital::{DecisionRequest, NewCase, ValidationErrors, validate_decision, validate_new_case};
use serde_json::Value;

/// The largest body the cases API reads (`gateway_service::MAX_BODY_BYTES`); larger is a 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// "Today" for every run, so that a date of birth is in the future or not the same way
/// each time.
pub const TODAY: time::Date = time::macros::date!(2026 - 11 - 29);

/// Every code a field error may carry (`docs/errors.md`).
pub const FIELD_CODES: &[&str] = &[
    "required",
    "invalid_type",
    "invalid_value",
    "empty",
    "too_long",
    "too_large",
    "control_character",
    "hidden_character",
    "not_normalized",
    "no_letter",
    "unknown_country",
    "invalid_date",
    "future_date",
    "implausible_date",
    "unknown_field",
    "not_allowed",
    "too_many_errors",
];

/// What validation did with one input.
#[derive(Debug)]
pub enum Outcome {
    /// Over the body bound: the API answers 413 before reading it.
    TooLarge,
    /// Not JSON: the API answers 400 `malformed_json`.
    NotJson,
    /// Read as JSON, then validated both as a case and as a decision.
    Validated {
        /// As a case.
        case: Result<NewCase, ValidationErrors>,
        /// As a decision.
        decision: Result<DecisionRequest, ValidationErrors>,
    },
}

fn assert_errors_stable(errs: &ValidationErrors) {
    assert!(!errs.0.is_empty(), "refused without naming a field");
    for e in &errs.0 {
        assert!(FIELD_CODES.contains(&e.code), "unknown field error code {:?}", e.code);
        assert!(!e.message.is_empty(), "field error without a message");
    }
}

fn check_case(value: &Value) -> Result<NewCase, ValidationErrors> {
    let result = validate_new_case(value, TODAY);
    match &result {
        Ok(case) => {
            // What is sent to Cabital is valid by the same rules and means the same case.
            let wire = serde_json::to_value(case).expect("a validated case serialises");
            let again = validate_new_case(&wire, TODAY);
            assert_eq!(again.as_ref(), Ok(case), "a validated case does not validate again as sent");
        }
        Err(errs) => assert_errors_stable(errs),
    }
    result
}

fn check_decision(value: &Value) -> Result<DecisionRequest, ValidationErrors> {
    let result = validate_decision(value);
    match &result {
        Ok(decision) => {
            let wire = serde_json::to_value(decision).expect("a validated decision serialises");
            let again = validate_decision(&wire);
            assert_eq!(again.as_ref(), Ok(decision), "a validated decision does not validate again as sent");
        }
        Err(errs) => assert_errors_stable(errs),
    }
    result
}

/// Runs validation on one input; panics when a property does not hold.
pub fn check(data: &[u8]) -> Outcome {
    if data.len() > MAX_BODY_BYTES {
        return Outcome::TooLarge;
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return Outcome::NotJson;
    };
    Outcome::Validated { case: check_case(&value), decision: check_decision(&value) }
}
