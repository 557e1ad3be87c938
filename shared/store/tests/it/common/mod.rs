//! Fixtures shared by the store's tests (each test file compiles its own copy).
#![allow(dead_code)]

use gateway_cabital::{CaseSystemId, ExternalCaseId, Pii, ScreenType, Suggestion};
use gateway_store::{CreatedCase, Reservation, Store, WebhookReceipt};
use sha2::{Digest, Sha256};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// A fixed clock: the tests decide every time the store records.
pub fn at(seconds: i64) -> OffsetDateTime {
    datetime!(2026-11-29 01:00:00 UTC) + Duration::seconds(seconds)
}

pub fn new_ext() -> ExternalCaseId {
    ExternalCaseId::parse(&Uuid::new_v4().to_string()).unwrap()
}

pub fn new_case_id() -> CaseSystemId {
    CaseSystemId::new(Uuid::new_v4())
}

pub fn sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

pub fn submitted(ext: &ExternalCaseId) -> Pii<String> {
    Pii(format!(
        r#"{{"externalCaseId":"{ext}","screenType":"INDIVIDUAL","fullName":"Jane Doe","individualInfo":{{"gender":"FEMALE","dob":"1990-01-02","nationality":"JPN","residentialCountry":"HKG"}},"organizationInfo":{{}}}}"#
    ))
}

pub fn created(ext: &ExternalCaseId, id: CaseSystemId) -> CreatedCase {
    CreatedCase {
        case_system_id: id,
        external_case_id: ext.clone(),
        screen_type: ScreenType::Individual,
        submitted_json: submitted(ext),
        response_json: Pii(format!(r#"{{"caseSystemId":"{id}","externalCaseId":"{ext}"}}"#)),
        suggestion: None,
        suggestion_comment: None,
        ogs: false,
    }
}

/// Reserves `ext` and returns the token.
pub async fn reserve(store: &Store, ext: &ExternalCaseId, now: OffsetDateTime) -> Uuid {
    let body = submitted(ext);
    match store.reserve_external_id(ext, &sha256(body.expose()), &body, now).await.unwrap() {
        Reservation::Reserved { token } => token,
        other => panic!("expected a fresh reservation, got {other:?}"),
    }
}

/// Reserves and records a created case; returns its id.
pub async fn create_case(store: &Store, now: OffsetDateTime) -> (ExternalCaseId, CaseSystemId) {
    let ext = new_ext();
    let id = new_case_id();
    let token = reserve(store, &ext, now).await;
    store.record_created(&ext, token, &created(&ext, id), now).await.unwrap();
    (ext, id)
}

/// A webhook delivery as Cabital would send it.
pub fn receipt(id: CaseSystemId, ext: &ExternalCaseId, suggestion: Suggestion, comment: &str) -> WebhookReceipt {
    let body = format!(
        r#"{{"caseSystemId":"{id}","caseSuggestion":"{suggestion}","comment":"{comment}","externalCaseId":"{ext}"}}"#
    );
    WebhookReceipt {
        notice: None,
        case_system_id: id,
        external_case_id: ext.clone(),
        suggestion: Some(suggestion),
        suggestion_comment: Some(gateway_cabital::Comment::new(comment.to_owned())),
        body_sha256: sha256(&body),
        body: Pii(body),
    }
}
