//! Validation of what partners submit, reporting every bad field at once.
//!
//! Messages name the rule, never the value: values are personal data.

use serde::Serialize;
use serde_json::{Map, Value};
use time::Date;

use crate::models::{
    BirthDate, CountryCode, DATE_FORMAT, Decision, DecisionRequest, ExternalCaseId, Gender, IdError, IndividualInfo,
    NewCase, Pii, ScreenType,
};

/// The longest full name accepted, in characters.
pub const MAX_FULL_NAME_CHARS: usize = 256;
/// The longest comment accepted, in characters.
pub const MAX_COMMENT_CHARS: usize = 2000;
/// The largest `organizationInfo` accepted, serialised, in bytes.
pub const MAX_ORGANIZATION_INFO_BYTES: usize = 16 * 1024;
/// No date of birth before this year is taken as real.
pub const MIN_BIRTH_YEAR: i32 = 1900;
/// At most this many bad fields are listed; one more entry (`too_many_errors`) says
/// that others were left out, so that a body of many bad keys gets a small answer.
pub const MAX_FIELD_ERRORS: usize = 20;
/// A field name echoed from the body is cut to this many characters (ending in `…`).
pub const MAX_ECHOED_FIELD_CHARS: usize = 64;

/// One bad field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's JSON path, e.g. `individualInfo.dob`.
    pub field: String,
    /// A stable code, e.g. `required`, `too_long`, `unknown_country`.
    pub code: &'static str,
    /// What the rule is, in words.
    pub message: String,
}

/// Every bad field of one submission.
#[derive(Debug, Clone, PartialEq, Eq, Default, thiserror::Error, Serialize)]
#[error("{} invalid field(s)", .0.len())]
#[serde(transparent)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    fn add(&mut self, field: impl Into<String>, code: &'static str, message: impl Into<String>) {
        if self.0.len() < MAX_FIELD_ERRORS {
            self.0.push(FieldError { field: echoed(field.into()), code, message: message.into() });
        } else if self.0.len() == MAX_FIELD_ERRORS {
            let message = format!("more than {MAX_FIELD_ERRORS} fields are bad; the others are not listed");
            self.0.push(FieldError { field: String::new(), code: "too_many_errors", message });
        }
    }

    /// The fields named, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }
}

/// A field name as echoed: cut to [`MAX_ECHOED_FIELD_CHARS`] characters.
fn echoed(field: String) -> String {
    if field.chars().count() <= MAX_ECHOED_FIELD_CHARS {
        return field;
    }
    let mut cut: String = field.chars().take(MAX_ECHOED_FIELD_CHARS - 1).collect();
    cut.push('…');
    cut
}

fn is_empty_object(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    }
}

fn string_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<&'a str> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            errs.add(path, "required", "is required");
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errs.add(path, "invalid_type", "must be a string");
            None
        }
    }
}

fn enum_field<T: std::str::FromStr>(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    allowed: &[&str],
    errs: &mut ValidationErrors,
) -> Option<T> {
    let s = string_field(obj, key, path, errs)?;
    match s.parse() {
        Ok(v) => Some(v),
        Err(_) => {
            errs.add(path, "invalid_value", format!("must be one of {}", allowed.join(", ")));
            None
        }
    }
}

fn id_error(errs: &mut ValidationErrors, path: &str, e: IdError) {
    let code = match e {
        IdError::Empty => "empty",
        IdError::TooLong => "too_long",
        IdError::ControlCharacter => "control_character",
        IdError::NotUuid => "invalid_value",
        IdError::HiddenCharacter => "hidden_character",
        IdError::NotNormalized => "not_normalized",
    };
    errs.add(path, code, e.to_string());
}

fn country(obj: &Map<String, Value>, key: &str, path: &str, errs: &mut ValidationErrors) -> Option<CountryCode> {
    let s = string_field(obj, key, path, errs)?;
    let c = CountryCode::parse(s);
    if c.is_none() {
        errs.add(path, "unknown_country", "must be an ISO 3166-1 alpha-3 code in upper case, e.g. JPN");
    }
    c
}

fn birth_date(obj: &Map<String, Value>, path: &str, today: Date, errs: &mut ValidationErrors) -> Option<BirthDate> {
    let s = string_field(obj, "dob", path, errs)?;
    // `time` accepts only real calendar dates: 2023-02-30 fails here.
    let Ok(date) = Date::parse(s, DATE_FORMAT) else {
        errs.add(path, "invalid_date", "must be a calendar date written yyyy-MM-dd");
        return None;
    };
    if date > today {
        errs.add(path, "future_date", "must not be in the future");
        return None;
    }
    if date.year() < MIN_BIRTH_YEAR {
        errs.add(path, "implausible_date", format!("must not be before {MIN_BIRTH_YEAR}"));
        return None;
    }
    Some(BirthDate(date))
}

fn text(value: &str, path: &str, max_chars: usize, required: bool, errs: &mut ValidationErrors) -> Option<Pii<String>> {
    if required && value.trim().is_empty() {
        errs.add(path, "empty", "must not be empty");
        return None;
    }
    if value.chars().count() > max_chars {
        errs.add(path, "too_long", format!("must be at most {max_chars} characters"));
        return None;
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        errs.add(path, "control_character", "must not contain control characters");
        return None;
    }
    Some(Pii(value.to_owned()))
}

/// A name as it is screened: no hidden characters, at least one letter, and in NFC, so
/// that what is sent (and hashed for idempotency) is one spelling of what a person reads.
fn name(value: Pii<String>, path: &str, errs: &mut ValidationErrors) -> Option<Pii<String>> {
    use unicode_normalization::UnicodeNormalization;
    if value.chars().any(crate::models::is_hidden_character) {
        errs.add(path, "hidden_character", "must not contain invisible format, private-use or unassigned characters");
        return None;
    }
    if !value.chars().any(char::is_alphabetic) {
        errs.add(path, "no_letter", "must contain a letter");
        return None;
    }
    Some(Pii(value.nfc().collect()))
}

fn individual_info(v: &Value, today: Date, errs: &mut ValidationErrors) -> Option<IndividualInfo> {
    let Value::Object(obj) = v else {
        errs.add("individualInfo", "invalid_type", "must be an object");
        return None;
    };
    for key in obj.keys() {
        if !["gender", "dob", "nationality", "residentialCountry"].contains(&key.as_str()) {
            errs.add(format!("individualInfo.{key}"), "unknown_field", "is not a field of individualInfo");
        }
    }
    let gender = enum_field::<Gender>(obj, "gender", "individualInfo.gender", Gender::ALL, errs);
    let dob = birth_date(obj, "individualInfo.dob", today, errs);
    let nationality = country(obj, "nationality", "individualInfo.nationality", errs);
    let residential_country = country(obj, "residentialCountry", "individualInfo.residentialCountry", errs);
    Some(IndividualInfo {
        gender: gender?,
        dob: dob?,
        nationality: nationality?,
        residential_country: residential_country?,
    })
}

fn object_of(value: &Value, errs: &mut ValidationErrors) -> Option<Map<String, Value>> {
    let Value::Object(obj) = value else {
        errs.add("", "invalid_type", "the body must be a JSON object");
        return None;
    };
    Some(obj.clone())
}

/// Validates a case submission against `cabital-api.md`, reporting every bad field.
///
/// `today` is the date used to refuse dates of birth in the future.
pub fn validate_new_case(value: &Value, today: Date) -> Result<NewCase, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let Some(obj) = object_of(value, &mut errs) else {
        return Err(errs);
    };
    const KNOWN: [&str; 5] = ["externalCaseId", "screenType", "fullName", "individualInfo", "organizationInfo"];
    for key in obj.keys() {
        if !KNOWN.contains(&key.as_str()) {
            errs.add(key.clone(), "unknown_field", "is not a field of a case");
        }
    }

    let external_case_id = string_field(&obj, "externalCaseId", "externalCaseId", &mut errs)
        .and_then(|s| ExternalCaseId::parse(s).map_err(|e| id_error(&mut errs, "externalCaseId", e)).ok());
    let screen_type = enum_field::<ScreenType>(&obj, "screenType", "screenType", ScreenType::ALL, &mut errs);
    let full_name = string_field(&obj, "fullName", "fullName", &mut errs)
        .and_then(|s| text(s, "fullName", MAX_FULL_NAME_CHARS, true, &mut errs))
        .and_then(|s| name(s, "fullName", &mut errs));

    let individual = obj.get("individualInfo");
    let organization = obj.get("organizationInfo");
    let mut individual_info = None;
    let mut organization_info = None;
    match screen_type {
        Some(ScreenType::Individual) => {
            match individual {
                None | Some(Value::Null) => errs.add("individualInfo", "required", "is required for INDIVIDUAL"),
                Some(v) => individual_info = self::individual_info(v, today, &mut errs),
            }
            if !is_empty_object(organization) {
                errs.add("organizationInfo", "not_allowed", "must be absent or {} for INDIVIDUAL");
            }
        }
        Some(ScreenType::Organisation) => {
            match organization {
                None | Some(Value::Null) => errs.add("organizationInfo", "required", "is required for ORGANISATION"),
                Some(Value::Object(m)) if m.is_empty() => {
                    errs.add("organizationInfo", "empty", "must describe the entity for ORGANISATION")
                }
                Some(Value::Object(m)) => {
                    let size = serde_json::to_vec(m).map(|v| v.len()).unwrap_or(usize::MAX);
                    if size > MAX_ORGANIZATION_INFO_BYTES {
                        errs.add(
                            "organizationInfo",
                            "too_large",
                            format!("must be at most {MAX_ORGANIZATION_INFO_BYTES} bytes"),
                        );
                    } else {
                        organization_info = Some(Pii(m.clone()));
                    }
                }
                Some(_) => errs.add("organizationInfo", "invalid_type", "must be an object"),
            }
            if !is_empty_object(individual) {
                errs.add("individualInfo", "not_allowed", "must be absent or {} for ORGANISATION");
            }
        }
        None => {}
    }

    if !errs.0.is_empty() {
        return Err(errs);
    }
    match (external_case_id, screen_type, full_name) {
        (Some(external_case_id), Some(screen_type), Some(full_name)) => {
            Ok(NewCase { external_case_id, screen_type, full_name, individual_info, organization_info })
        }
        // Every None above recorded an error, so this arm is not reached; stay total anyway.
        _ => Err(errs),
    }
}

/// Validates a decision body: `{"caseResult": "ACCEPT" | "REJECT", "comment": "..."}`.
pub fn validate_decision(value: &Value) -> Result<DecisionRequest, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let Some(obj) = object_of(value, &mut errs) else {
        return Err(errs);
    };
    for key in obj.keys() {
        if !["caseResult", "comment"].contains(&key.as_str()) {
            errs.add(key.clone(), "unknown_field", "is not a field of a decision");
        }
    }
    let case_result = enum_field::<Decision>(&obj, "caseResult", "caseResult", Decision::ALL, &mut errs);
    let comment = match obj.get("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => text(s, "comment", MAX_COMMENT_CHARS, false, &mut errs),
        Some(_) => {
            errs.add("comment", "invalid_type", "must be a string");
            None
        }
    };
    match case_result {
        Some(case_result) if errs.0.is_empty() => Ok(DecisionRequest { case_result, comment }),
        _ => Err(errs),
    }
}
