//! Replays: an exact repeat of a stored delivery (same `ACCESS-TIMESTAMP` and
//! `ACCESS-SIGN`) is answered 200 and costs nothing; a known body under a new signature
//! is counted and reads Cabital at most once a minute; a delivery that was not stored
//! is stored when retried under the same headers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use base64::Engine as _;
use gateway_cabital::Suggestion;
use gateway_signing::SignatureEncoding;
use gateway_support::{API_KEY, API_SECRET, harness};
use gateway_webhook::App;

use crate::common::*;

const REJECT_COMMENT: &str = "Matched list Sandbox OFAC SDN";

/// `body` signed at `ts` with the harness's credentials, in `encoding`.
fn signed_at(body: &str, ts: i64, encoding: SignatureEncoding) -> (String, Vec<(String, String)>) {
    let headers = signature_in(encoding, API_KEY, API_SECRET, ts, PATH, body.as_bytes());
    (event("POST", PATH, "", &headers, body.as_bytes()), headers)
}

#[tokio::test]
async fn an_exact_replay_is_answered_200_but_stored_once_and_read_from_cabital_once() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let (captured, _) = signed_at(&body, now_unix(), SignatureEncoding::Base64);
    let gets = sandbox_gets(&h);

    let first = deliver(&app, &captured).await;
    assert_eq!((first.status, first.body["verification"].as_str()), (200, Some("signed")), "{}", first.text);
    let version = case(&h, &id).await.unwrap().version;

    // One by one, then many at once.
    let mut answers = Vec::new();
    for _ in 0..5 {
        answers.push(deliver(&app, &captured).await);
    }
    answers.extend(futures::future::join_all((0..20).map(|_| deliver(&app, &captured))).await);
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["verification"], "replay", "{}", a.text);
        assert_eq!((a.body["deliveries"].as_u64(), a.body["refresh"].as_str()), (Some(1), Some("none")), "{}", a.text);
        assert_eq!(a.body["stored"], true, "{}", a.text);
    }
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(1, Suggestion::SuggestToReject)]);
    assert_eq!(sandbox_gets(&h), gets + 1, "the first delivery's refresh only");
    let case = case(&h, &id).await.unwrap();
    assert_eq!(case.version, version, "a replay neither counts nor flags the case");
    assert!(!case.needs_refresh);
}

#[tokio::test]
async fn concurrent_copies_of_one_capture_store_exactly_one_delivery() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let (captured, _) = signed_at(&body, now_unix(), SignatureEncoding::Base64);
    let gets = sandbox_gets(&h);

    let answers = futures::future::join_all((0..12).map(|_| deliver(&app, &captured))).await;
    assert!(answers.iter().all(|a| a.status == 200), "{answers:?}");
    let stored: Vec<_> = answers.iter().filter(|a| a.body["verification"] == "signed").collect();
    assert_eq!(stored.len(), 1, "{answers:?}");
    assert_eq!(answers.iter().filter(|a| a.body["verification"] == "replay").count(), 11);
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(1, Suggestion::SuggestToReject)]);
    assert!(sandbox_gets(&h) <= gets + 1, "one GET at most");
}

#[tokio::test]
async fn one_signature_in_another_spelling_is_still_a_replay() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let ts = now_unix();
    let (base64, _) = signed_at(&body, ts, SignatureEncoding::Base64);
    let (hex, headers) = signed_at(&body, ts, SignatureEncoding::Hex);
    let upper: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), if k == "ACCESS-SIGN" { v.to_ascii_uppercase() } else { v.clone() }))
        .collect();
    let padded: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.clone(), if k == "ACCESS-SIGN" { format!(" {v} ") } else { v.clone() }))
        .collect();
    let digest = hex::decode(&headers[2].1).unwrap();
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(signature_value(&base64)).unwrap(), digest);

    assert_eq!(deliver(&app, &base64).await.body["verification"], "signed");
    for other in
        [hex, event("POST", PATH, "", &upper, body.as_bytes()), event("POST", PATH, "", &padded, body.as_bytes())]
    {
        let a = deliver(&app, &other).await;
        assert_eq!((a.status, a.body["verification"].as_str()), (200, Some("replay")), "{}", a.text);
    }
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(1, Suggestion::SuggestToReject)]);
}

/// The `ACCESS-SIGN` header of an event built by [`event`].
fn signature_value(event: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(event).unwrap();
    v["headers"]["access-sign"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_same_body_signed_anew_is_counted_and_reads_cabital_at_most_once_more_a_minute() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let gets = sandbox_gets(&h);
    let now = now_unix();

    let mut answers = Vec::new();
    for i in 0..4 {
        // Each one signed at another second: four genuine deliveries of one body.
        answers.push(deliver(&app, &signed_at(&body, now - i, SignatureEncoding::Base64).0).await);
    }
    let seen: Vec<_> = answers
        .iter()
        .map(|a| (a.status, a.body["verification"].as_str(), a.body["deliveries"].as_u64(), a.body["refresh"].as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (200, Some("signed"), Some(1), Some("changed")),
            (200, Some("signed"), Some(2), Some("unchanged")),
            (200, Some("signed"), Some(3), Some("skipped")),
            (200, Some("signed"), Some(4), Some("skipped")),
        ]
    );
    assert_eq!(sandbox_gets(&h), gets + 2, "the new body's GET, then one more within the minute");
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(4, Suggestion::SuggestToReject)]);
    let case = case(&h, &id).await.unwrap();
    assert!(case.needs_refresh, "a skipped read is left to the reconciler, not dropped");
    assert_eq!(case.suggestion, Some(Suggestion::SuggestToReject));

    // A body not seen before is read at once, whatever the minute.
    let other = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", "Matched list again");
    let a = deliver(&app, &signed_at(&other, now, SignatureEncoding::Base64).0).await;
    assert_eq!((a.body["deliveries"].as_u64(), a.body["refresh"].as_str()), (Some(1), Some("unchanged")), "{}", a.text);
    assert_eq!(sandbox_gets(&h), gets + 3);
    assert!(!case_after(&h, &id).await.needs_refresh, "that read settled the case");
}

async fn case_after(h: &gateway_support::Harness, id: &gateway_cabital::CaseSystemId) -> gateway_store::CaseRecord {
    case(h, id).await.unwrap()
}

#[tokio::test]
async fn a_late_delivery_replayed_is_counted_once() {
    let h = harness(|_| {}).await;
    let app = app(&h);
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    assert_eq!(deliver(&app, &signed_event(&body)).await.status, 200);

    // Cabital's resend under its first attempt's headers, hours old, then that resend captured.
    let (late, _) = signed_at(&body, now_unix() - 5 * 3_600, SignatureEncoding::Base64);
    let a = deliver(&app, &late).await;
    assert_eq!((a.body["verification"].as_str(), a.body["deliveries"].as_u64()), (Some("late_repeat"), Some(2)));
    let gets = sandbox_gets(&h);
    for _ in 0..3 {
        let again = deliver(&app, &late).await;
        assert_eq!((again.status, again.body["verification"].as_str()), (200, Some("replay")), "{}", again.text);
    }
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(2, Suggestion::SuggestToReject)]);
    assert_eq!(sandbox_gets(&h), gets);

    // A late body never seen (kept as a notice) replayed: the notice is counted once.
    let claim = webhook_body(&id, &ext, "SUGGEST_TO_ACCEPT", "all clear");
    let (notice, _) = signed_at(&claim, now_unix() - 3_600, SignatureEncoding::Base64);
    assert_eq!(deliver(&app, &notice).await.body["verification"], "notice_late_signature");
    let again = deliver(&app, &notice).await;
    assert_eq!((again.status, again.body["verification"].as_str()), (200, Some("replay")), "{}", again.text);
    assert_eq!(notice_events(&timeline(&h, &id).await), [(1, gateway_store::NoticeReason::LateSignature)]);
}

/// Fails every `TransactWriteItems` while set: the table reads, but no delivery is stored.
#[derive(Debug, Clone)]
struct FailTransactions(Arc<AtomicBool>);

impl Intercept for FailTransactions {
    fn name(&self) -> &'static str {
        "fail transactions"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or_default();
        if self.0.load(Ordering::SeqCst) && target.ends_with(".TransactWriteItems") {
            return Err("the test's table refuses this transaction".into());
        }
        Ok(())
    }
}

#[tokio::test]
async fn a_delivery_not_stored_is_stored_when_retried_under_the_same_headers() {
    let h = harness(|_| {}).await;
    let failing = Arc::new(AtomicBool::new(true));
    let config = h.store.client().config().to_builder().interceptor(FailTransactions(Arc::clone(&failing))).build();
    let store = gateway_store::Store::new(aws_sdk_dynamodb::Client::from_conf(config), h.store.table_name());
    let app = App { gateway: gateway_service::Gateway { store, ..h.gateway.clone() }, ..app(&h) };
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let (attempt, _) = signed_at(&body, now_unix(), SignatureEncoding::Base64);

    let refused = deliver(&app, &attempt).await;
    assert_eq!((refused.status, refused.code()), (503, "store_unavailable"), "{}", refused.text);
    assert_eq!(webhook_events(&timeline(&h, &id).await), []);

    // Cabital retries with the very same headers: stored, not taken for a replay.
    failing.store(false, Ordering::SeqCst);
    let retried = deliver(&app, &attempt).await;
    assert_eq!((retried.status, retried.body["verification"].as_str()), (200, Some("signed")), "{}", retried.text);
    assert_eq!(retried.body["deliveries"], 1);
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(1, Suggestion::SuggestToReject)]);
    assert_eq!(deliver(&app, &attempt).await.body["verification"], "replay");
}
