//! Validation of request bodies, written here on its own from `cabital-api.md` (not
//! shared with our client, which it checks). Every bad field is reported, not just the
//! first.

use serde_json::{Map, Value};
use time::{Date, Month};

use crate::model::{CaseResult, FieldError, ScreenType};

/// Longest `externalCaseId`, in Unicode scalar values.
pub const MAX_EXTERNAL_CASE_ID_CHARS: usize = 36;

/// Largest `organizationInfo`, as compact JSON, in bytes. Its schema is unpublished, so
/// only its shape and size are checked.
pub const MAX_ORGANIZATION_INFO_BYTES: usize = 16 * 1024;

/// A case body that passed validation.
#[derive(Debug, Clone)]
pub(crate) struct NewCase {
    pub external_case_id: String,
    pub screen_type: ScreenType,
    pub full_name: String,
    /// As sent, or `{}` when absent.
    pub individual_info: Value,
    /// As sent, or `{}` when absent.
    pub organization_info: Value,
}

struct Errors(Vec<FieldError>);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError { field: field.to_owned(), message: message.into() });
    }
}

/// A field that is missing or `null` counts as absent (Cabital's side is taken to read
/// JSON leniently in that one respect).
fn present<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).filter(|v| !v.is_null())
}

fn required_str<'a>(object: &'a Map<String, Value>, field: &str, path: &str, errors: &mut Errors) -> Option<&'a str> {
    match present(object, field) {
        None => {
            errors.add(path, "is required");
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.add(path, "must be a string");
            None
        }
    }
}

/// Whether a value is absent, `null` or `{}`: the info object a screen type does not use.
fn is_empty_info(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Object(map)) => map.is_empty(),
        Some(_) => false,
    }
}

/// Validates the body of `POST /api/v1/cases`. `today` is the sandbox's date (UTC), the
/// latest acceptable date of birth.
pub(crate) fn validate_case(body: &Value, today: Date) -> Result<NewCase, Vec<FieldError>> {
    let mut errors = Errors(Vec::new());
    let Some(object) = body.as_object() else {
        errors.add("body", "must be a JSON object");
        return Err(errors.0);
    };

    let external_case_id = required_str(object, "externalCaseId", "externalCaseId", &mut errors);
    if let Some(id) = external_case_id {
        let chars = id.chars().count();
        if chars == 0 {
            errors.add("externalCaseId", "must not be empty");
        } else if chars > MAX_EXTERNAL_CASE_ID_CHARS {
            errors.add("externalCaseId", format!("must be at most {MAX_EXTERNAL_CASE_ID_CHARS} characters"));
        }
    }

    let screen_type = match required_str(object, "screenType", "screenType", &mut errors) {
        Some(text) => {
            let parsed = ScreenType::from_wire(text);
            if parsed.is_none() {
                errors.add("screenType", "must be INDIVIDUAL or ORGANISATION");
            }
            parsed
        }
        None => None,
    };

    let full_name = required_str(object, "fullName", "fullName", &mut errors);
    if full_name == Some("") {
        errors.add("fullName", "must not be empty");
    }

    let individual = present(object, "individualInfo");
    let organization = present(object, "organizationInfo");
    match screen_type {
        Some(ScreenType::Individual) => {
            match individual {
                None => errors.add("individualInfo", "is required when screenType is INDIVIDUAL"),
                Some(Value::Object(info)) => validate_individual(info, today, &mut errors),
                Some(_) => errors.add("individualInfo", "must be an object"),
            }
            if !is_empty_info(organization) {
                errors.add("organizationInfo", "must be absent or {} when screenType is INDIVIDUAL");
            }
        }
        Some(ScreenType::Organisation) => {
            match organization {
                None => errors.add("organizationInfo", "is required when screenType is ORGANISATION"),
                Some(value @ Value::Object(_)) => check_organization_size(value, &mut errors),
                Some(_) => errors.add("organizationInfo", "must be an object"),
            }
            if !is_empty_info(individual) {
                errors.add("individualInfo", "must be absent or {} when screenType is ORGANISATION");
            }
        }
        None => {
            // Still report what can be checked without knowing the type.
            match individual {
                Some(Value::Object(info)) if !info.is_empty() => validate_individual(info, today, &mut errors),
                Some(Value::Object(_)) | None => {}
                Some(_) => errors.add("individualInfo", "must be an object"),
            }
            match organization {
                Some(value @ Value::Object(_)) => check_organization_size(value, &mut errors),
                None => {}
                Some(_) => errors.add("organizationInfo", "must be an object"),
            }
        }
    }

    match (external_case_id, screen_type, full_name) {
        (Some(id), Some(screen_type), Some(name)) if errors.0.is_empty() => Ok(NewCase {
            external_case_id: id.to_owned(),
            screen_type,
            full_name: name.to_owned(),
            individual_info: individual.cloned().unwrap_or_else(empty_object),
            organization_info: organization.cloned().unwrap_or_else(empty_object),
        }),
        _ => Err(errors.0),
    }
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

fn check_organization_size(value: &Value, errors: &mut Errors) {
    let size = serde_json::to_vec(value).map(|v| v.len()).unwrap_or(usize::MAX);
    if size > MAX_ORGANIZATION_INFO_BYTES {
        errors.add("organizationInfo", format!("must be at most {MAX_ORGANIZATION_INFO_BYTES} bytes as JSON"));
    }
}

fn validate_individual(info: &Map<String, Value>, today: Date, errors: &mut Errors) {
    if let Some(gender) = required_str(info, "gender", "individualInfo.gender", errors)
        && gender != "MALE"
        && gender != "FEMALE"
    {
        errors.add("individualInfo.gender", "must be MALE or FEMALE");
    }
    if let Some(dob) = required_str(info, "dob", "individualInfo.dob", errors) {
        match parse_date(dob) {
            Err(problem) => errors.add("individualInfo.dob", problem),
            Ok(date) if date > today => errors.add("individualInfo.dob", "must not be in the future"),
            Ok(_) => {}
        }
    }
    for field in ["nationality", "residentialCountry"] {
        let path = format!("individualInfo.{field}");
        if let Some(code) = required_str(info, field, &path, errors)
            && rust_iso3166::from_alpha3(code).is_none()
        {
            errors.add(&path, "must be an ISO 3166-1 alpha-3 country code, upper case");
        }
    }
}

/// Parses `yyyy-MM-dd` strictly: ten characters, a real calendar date.
pub(crate) fn parse_date(text: &str) -> Result<Date, &'static str> {
    const SHAPE: &str = "must be a date written yyyy-MM-dd";
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes.iter().enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() });
    if !shape_ok {
        return Err(SHAPE);
    }
    // The shape check makes these slices ASCII digits, so the parses cannot fail; map
    // errors anyway rather than trust that.
    let year: i32 = text[0..4].parse().map_err(|_| SHAPE)?;
    let month: u8 = text[5..7].parse().map_err(|_| SHAPE)?;
    let day: u8 = text[8..10].parse().map_err(|_| SHAPE)?;
    let month = Month::try_from(month).map_err(|_| "is not a calendar date")?;
    Date::from_calendar_date(year, month, day).map_err(|_| "is not a calendar date")
}

/// Validates the body of `POST /api/v1/cases/{id}/decision`.
pub(crate) fn validate_decision(body: &Value) -> Result<(CaseResult, Option<String>), Vec<FieldError>> {
    let mut errors = Errors(Vec::new());
    let Some(object) = body.as_object() else {
        errors.add("body", "must be a JSON object");
        return Err(errors.0);
    };
    let result = match required_str(object, "caseResult", "caseResult", &mut errors) {
        Some(text) => {
            let parsed = CaseResult::from_wire(text);
            if parsed.is_none() {
                errors.add("caseResult", "must be ACCEPT or REJECT");
            }
            parsed
        }
        None => None,
    };
    let comment = match present(object, "comment") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.add("comment", "must be a string");
            None
        }
    };
    match result {
        Some(result) if errors.0.is_empty() => Ok((result, comment)),
        _ => Err(errors.0),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::date;

    use super::*;

    const TODAY: Date = date!(2025 - 06 - 15);

    fn fields(result: Result<NewCase, Vec<FieldError>>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.field).collect(),
        }
    }

    fn individual() -> Value {
        json!({
            "externalCaseId": "243d19cf-562f-4060-89fa-1d35a7723c3e",
            "screenType": "INDIVIDUAL",
            "fullName": "John Doe",
            "individualInfo": {"gender": "MALE", "dob": "2002-02-02", "nationality": "JPN", "residentialCountry": "HKG"},
            "organizationInfo": {}
        })
    }

    #[test]
    fn provider_sample_is_valid() {
        let case = validate_case(&individual(), TODAY).map_err(|e| format!("{e:?}"));
        assert!(case.is_ok(), "{case:?}");
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("2024-02-29"), Ok(date!(2024 - 02 - 29)));
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("2023-02-30").is_err());
        assert!(parse_date("2023-13-01").is_err());
        assert!(parse_date("2023-1-01").is_err());
        assert!(parse_date("02/02/2002").is_err());
        assert!(parse_date("+002-02-02").is_err());
        let mut body = individual();
        body["individualInfo"]["dob"] = json!("2025-06-16");
        assert_eq!(fields(validate_case(&body, TODAY)), ["individualInfo.dob"]);
        body["individualInfo"]["dob"] = json!("2025-06-15");
        assert!(fields(validate_case(&body, TODAY)).is_empty());
    }

    #[test]
    fn every_bad_field_is_reported() {
        let body = json!({
            "externalCaseId": "x".repeat(37),
            "screenType": "INDIVIDUAL",
            "fullName": "",
            "individualInfo": {"gender": "male", "dob": "2002-02-02", "nationality": "jpn", "residentialCountry": "XXX"},
            "organizationInfo": {"name": "Acme"}
        });
        assert_eq!(
            fields(validate_case(&body, TODAY)),
            [
                "externalCaseId",
                "fullName",
                "individualInfo.gender",
                "individualInfo.nationality",
                "individualInfo.residentialCountry",
                "organizationInfo"
            ]
        );
    }

    #[test]
    fn external_id_counts_characters_not_bytes() {
        let mut body = individual();
        body["externalCaseId"] = json!("é".repeat(36));
        assert!(fields(validate_case(&body, TODAY)).is_empty());
        body["externalCaseId"] = json!("é".repeat(37));
        assert_eq!(fields(validate_case(&body, TODAY)), ["externalCaseId"]);
    }

    #[test]
    fn organisation() {
        let body = json!({"externalCaseId": "o-1", "screenType": "ORGANISATION", "fullName": "Acme Ltd", "organizationInfo": {"registrationNumber": "123"}, "individualInfo": {}});
        assert!(fields(validate_case(&body, TODAY)).is_empty());
        let body = json!({"externalCaseId": "o-1", "screenType": "ORGANISATION", "fullName": "Acme Ltd"});
        assert_eq!(fields(validate_case(&body, TODAY)), ["organizationInfo"]);
        let body = json!({"externalCaseId": "o-1", "screenType": "ORGANIZATION", "fullName": "Acme Ltd", "organizationInfo": {}});
        assert_eq!(fields(validate_case(&body, TODAY)), ["screenType"]);
    }

    #[test]
    fn decision() {
        assert_eq!(validate_decision(&json!({"caseResult": "ACCEPT"})), Ok((CaseResult::Accept, None)));
        assert_eq!(
            validate_decision(&json!({"caseResult": "REJECT", "comment": "no"})),
            Ok((CaseResult::Reject, Some("no".into())))
        );
        assert!(validate_decision(&json!({"caseResult": "accept"})).is_err());
        assert!(validate_decision(&json!({"comment": "no"})).is_err());
    }
}
