//! The inputs kept from fuzzing (`fuzz/regressions/`), replayed in every `cargo test`:
//! each one runs through the same properties as the fuzz targets (`fuzz/src/`), which
//! panic when one does not hold, and must end as recorded here. A new kept input
//! needs its expected outcome below: the test fails on a file it does not know.

#[path = "../../../../fuzz/src/validate_case.rs"]
mod validate_case;
#[path = "../../../../fuzz/src/webhook.rs"]
mod webhook;

use std::collections::BTreeMap;
use std::path::PathBuf;

use gateway_cabital::ValidationErrors;

fn regressions(target: &str) -> BTreeMap<String, Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions").join(target);
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(name, std::fs::read(&path).unwrap());
    }
    files
}

/// Replays every kept input of `target` through `describe` and compares with `expected`.
fn replay(target: &str, expected: &[(&str, &str)], describe: impl Fn(&[u8]) -> String) {
    let files = regressions(target);
    let expected: BTreeMap<&str, &str> = expected.iter().copied().collect();
    let unknown: Vec<&String> = files.keys().filter(|f| !expected.contains_key(f.as_str())).collect();
    assert!(unknown.is_empty(), "fuzz/regressions/{target}/ holds inputs with no expected outcome here: {unknown:?}");
    let mut wrong = Vec::new();
    for (name, want) in expected {
        let data = files.get(name).unwrap_or_else(|| panic!("fuzz/regressions/{target}/{name} is missing"));
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| describe(data))) {
            Ok(got) if got == want => {}
            Ok(got) => wrong.push(format!("{name}: got {got:?}, expected {want:?}")),
            Err(_) => wrong.push(format!("{name}: a property failed (see the panic above)")),
        }
    }
    assert!(wrong.is_empty(), "fuzz/regressions/{target}/:\n{}", wrong.join("\n"));
}

fn verify_outcome(r: &Result<i64, gateway_signing::VerifyError>) -> String {
    match r {
        Ok(_) => "accepted".to_owned(),
        Err(e) => e.code().to_owned(),
    }
}

#[test]
fn kept_webhook_inputs_are_refused_or_accepted_as_recorded() {
    // file: verify with hex / verify with base64 / parse ("ok" or the problem's detail).
    replay(
        "webhook",
        &[
            ("genuine", "accepted / accepted / ok"),
            ("genuine-replayed", "accepted / accepted / ok"),
            ("unsigned", "missing_signature_header / missing_signature_header / ok"),
            ("forged", "signature_mismatch / signature_mismatch / ok"),
            ("expired", "timestamp_out_of_tolerance / timestamp_out_of_tolerance / ok"),
            (
                "unknown-suggestion",
                "accepted / accepted / caseSuggestion is not one of SUGGEST_TO_ACCEPT, SUGGEST_TO_REJECT, NO_SUGGESTION",
            ),
            ("missing-case-id", "accepted / accepted / missing field `caseSystemId`"),
            ("not-json", "accepted / accepted / not valid JSON"),
            // Found by fuzzing: a genuine signature for 1700000000 replayed under the
            // header `01700000000` was accepted (the MAC is over the number re-written).
            ("timestamp-leading-zero-replay", "bad_timestamp / bad_timestamp / not valid JSON"),
        ],
        |data| {
            let outcome = webhook::check(data);
            let parse = match &outcome.parse {
                Ok(_) => "ok".to_owned(),
                Err(e) => e.detail().to_owned(),
            };
            format!("{} / {} / {parse}", verify_outcome(&outcome.verify_hex), verify_outcome(&outcome.verify_base64))
        },
    );
}

fn validation_outcome<T>(r: &Result<T, ValidationErrors>) -> String {
    match r {
        Ok(_) => "ok".to_owned(),
        Err(errs) => errs.0.iter().map(|e| format!("{}:{}", e.field, e.code)).collect::<Vec<_>>().join(" "),
    }
}

#[test]
fn kept_case_inputs_are_refused_or_accepted_as_recorded() {
    // file: as a case / as a decision ("ok" or field:code for each bad field).
    replay(
        "validate_case",
        &[
            (
                "individual.json",
                "ok / externalCaseId:unknown_field fullName:unknown_field individualInfo:unknown_field \
                 organizationInfo:unknown_field screenType:unknown_field caseResult:required",
            ),
            (
                "organisation.json",
                "ok / externalCaseId:unknown_field fullName:unknown_field organizationInfo:unknown_field \
                 screenType:unknown_field caseResult:required",
            ),
            (
                "decision.json",
                "caseResult:unknown_field comment:unknown_field externalCaseId:required screenType:required \
                 fullName:required / ok",
            ),
            (
                "every-field-wrong.json",
                "x:unknown_field externalCaseId:empty fullName:empty individualInfo.extra:unknown_field \
                 individualInfo.gender:invalid_value individualInfo.dob:invalid_date \
                 individualInfo.nationality:unknown_country individualInfo.residentialCountry:unknown_country \
                 organizationInfo:not_allowed / externalCaseId:unknown_field fullName:unknown_field \
                 individualInfo:unknown_field organizationInfo:unknown_field screenType:unknown_field \
                 x:unknown_field caseResult:required",
            ),
            ("not-json.json", "not JSON"),
        ],
        |data| match validate_case::check(data) {
            validate_case::Outcome::TooLarge => "too large".to_owned(),
            validate_case::Outcome::NotJson => "not JSON".to_owned(),
            validate_case::Outcome::Validated { case, decision } => {
                format!("{} / {}", validation_outcome(&case), validation_outcome(&decision))
            }
        },
    );
}
