//! A rotation of the Cabital secret, through the real handler: deliveries signed with
//! the secret it replaced (Cabital's resends, its in-flight deliveries) are stored for
//! the grace window after the rotation, and refused after it.

use crate::common;

use common::*;
use gateway_cabital::Suggestion;
use gateway_sandbox::Credential;
use gateway_support::{API_KEY, harness};
use gateway_webhook::App;

const REJECT_COMMENT: &str = "Matched list Sandbox OFAC SDN";
const NEW_SECRET: &str = "harness-api-secret-rotated-5e1a";

#[tokio::test]
async fn a_delivery_signed_with_the_previous_secret_is_stored_within_the_grace_window_only() {
    let h = harness(|_| {}).await;
    // A grace window of seconds, so that the test sees it end.
    let mut settings = h.settings.clone();
    settings.cabital.secret_previous_grace = std::time::Duration::from_secs(4);
    let app = App { gateway: gateway_support::gateway(&settings).await, ..app(&h) };
    let (id, ext) = create_case(&h, "Ivan Blocklisted").await;
    let body = webhook_body(&id, &ext, "SUGGEST_TO_REJECT", REJECT_COMMENT);
    let a = deliver(&app, &signed_event(&body)).await;
    assert_eq!((a.status, a.body["deliveries"].as_u64()), (200, Some(1)), "{}", a.text);

    // The secret rotates (AWSCURRENT new, AWSPREVIOUS the harness's), at Cabital too;
    // the function sees the new value (its cache expired).
    let value = format!(r#"{{"apiKey":"{API_KEY}","apiSecret":"{NEW_SECRET}"}}"#);
    let secrets = gateway_support::secretsmanager_client().await;
    secrets.put_secret_value().secret_id(&h.secret_id).secret_string(value).send().await.unwrap();
    let rotated = std::time::Instant::now();
    h.sandbox.set_credentials(vec![Credential::new(API_KEY, NEW_SECRET)]);
    app.gateway.cabital.credentials().refresh().await.unwrap();

    let by_new = signature(API_KEY, NEW_SECRET, now_unix(), PATH, body.as_bytes());
    let a = deliver(&app, &event("POST", PATH, "", &by_new, body.as_bytes())).await;
    assert_eq!((a.status, a.body["deliveries"].as_u64()), (200, Some(2)), "{}", a.text);
    // Signed with the previous secret, now and (a resend under its first headers) an hour
    // ago; a second later than the first delivery, whose pair would make this a replay.
    let a = deliver(&app, &signed_event_at(&body, now_unix() + 1)).await;
    assert_eq!((a.status, a.body["verification"].as_str()), (200, Some("signed")), "{}", a.text);
    assert_eq!(a.body["deliveries"].as_u64(), Some(3), "{}", a.text);
    let a = deliver(&app, &signed_event_aged(&body, 3_600)).await;
    assert_eq!((a.status, a.body["verification"].as_str()), (200, Some("late_repeat")), "{}", a.text);

    // After the grace window (from the new version's CreatedDate, whole seconds), refused.
    tokio::time::sleep(std::time::Duration::from_secs(5).saturating_sub(rotated.elapsed())).await;
    let a = deliver(&app, &signed_event(&body)).await;
    assert_eq!((a.status, a.code()), (401, "signature_mismatch"), "{}", a.text);
    let a = deliver(
        &app,
        &event("POST", PATH, "", &signature(API_KEY, NEW_SECRET, now_unix(), PATH, body.as_bytes()), body.as_bytes()),
    )
    .await;
    assert_eq!((a.status, a.body["deliveries"].as_u64()), (200, Some(5)), "{}", a.text);
    assert_eq!(webhook_events(&timeline(&h, &id).await), [(5, Suggestion::SuggestToReject)]);
}
