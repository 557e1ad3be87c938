//! Webhooks: the body, the signature, retries (at most 5 attempts), faults, ongoing
//! screening.

use crate::common;

use std::time::Duration;

use common::{Api, KEY, Receiver, SECRET, individual, sandbox, wait_until, webhook_signature_ok};
use gateway_sandbox::{Credential, Faults, Suggestion, SuggestionChange};
use serde_json::{Value, json};
use url::Url;
use uuid::Uuid;

const HOOK_PATH: &str = "/hooks/cabital?tenant=acme&v=1";

/// With this factor the retry schedule is 3 ms, 36 ms, 180 ms, 648 ms.
const FAST: f64 = 0.00001;

fn hook_url(receiver: &Receiver) -> Url {
    Url::parse(&format!("{}{HOOK_PATH}", receiver.base)).unwrap()
}

#[tokio::test]
async fn webhook_is_delivered_signed() {
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| c.webhook_url = Some(hook_url(&receiver))).await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("w-1", "Ivan Blocklisted")).await;
    let id = created["caseSystemId"].as_str().unwrap();

    let hits = receiver.wait_for(1, Duration::from_secs(5)).await;
    let hit = &hits[0];
    assert_eq!(hit.path_and_query, HOOK_PATH);
    assert_eq!(hit.headers["content-type"], "application/json");
    assert_eq!(hit.headers["access-key"], KEY);
    assert!(webhook_signature_ok(hit, SECRET));
    assert!(!webhook_signature_ok(hit, "another-secret"));
    let timestamp: i64 = hit.headers["access-timestamp"].to_str().unwrap().parse().unwrap();
    assert!((timestamp - common::now()).abs() <= 2);

    // The exact published shape, fields in the published order.
    let body: Value = serde_json::from_slice(&hit.body).unwrap();
    assert_eq!(
        body,
        json!({"caseSystemId": id, "caseSuggestion": "SUGGEST_TO_REJECT", "comment": "Matched list Sandbox OFAC SDN", "externalCaseId": "w-1"})
    );
    let text = std::str::from_utf8(&hit.body).unwrap();
    let order: Vec<usize> = ["caseSystemId", "caseSuggestion", "comment", "externalCaseId"]
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{text}");

    // Recorded in the control API, and no second delivery.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(receiver.hits().len(), 1);
    let deliveries: Vec<Value> =
        api.control("GET", &format!("/deliveries?caseSystemId={id}"), None).await.json().await.unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["attempt"], 1);
    assert_eq!(deliveries[0]["statusCode"], 200);
    assert_eq!(deliveries[0]["success"], true);
    assert_eq!(deliveries[0]["body"], text);
}

#[tokio::test]
async fn webhook_is_signed_with_the_first_credential_and_clock() {
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| {
        c.credentials = vec![Credential::new("first", "first-secret"), Credential::new("second", "second-secret")];
        c.webhook_url = Some(hook_url(&receiver));
        c.faults.clock_offset_secs = -600;
    })
    .await;
    let unknown = SuggestionChange { suggestion: Suggestion::NoSuggestion, comment: None, notify: true };
    assert!(sandbox.set_suggestion(Uuid::nil(), unknown).is_none());
    let api = Api::new(&sandbox);
    let body = individual("w-2", "John Doe").to_string();
    let timestamp = (common::now() - 600).to_string();
    let sign = common::sign("second-secret", &timestamp, "POST", "/api/v1/cases", body.as_bytes());
    let mut raw = common::Raw::signed("POST", "/api/v1/cases", &body, -600);
    raw.key = Some("second".into());
    raw.timestamp = Some(timestamp);
    raw.sign = Some(sign);
    assert_eq!(api.raw(raw).await.status(), 201);

    let hits = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(hits[0].headers["access-key"], "first");
    assert!(webhook_signature_ok(&hits[0], "first-secret"));
    let timestamp: i64 = hits[0].headers["access-timestamp"].to_str().unwrap().parse().unwrap();
    assert!((timestamp - (common::now() - 600)).abs() <= 2);
}

#[tokio::test]
async fn failed_deliveries_are_retried_four_times_then_dropped() {
    let receiver = Receiver::start(|_| 500).await;
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.time_factor = FAST;
    })
    .await;
    let api = Api::new(&sandbox);
    api.create(&individual("w-3", "John Doe")).await;

    let hits = receiver.wait_for(5, Duration::from_secs(5)).await;
    // Well past the last retry's time: still five.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.hits().len(), 5);
    let first = hits[0].body.clone();
    assert!(hits.iter().all(|h| h.body == first), "the same body every time");
    assert!(hits.iter().all(|h| webhook_signature_ok(h, SECRET)));
    // The gaps follow the (scaled) schedule: each at least its delay.
    let gaps: Vec<Duration> = hits.windows(2).map(|w| w[1].at - w[0].at).collect();
    for (gap, secs) in gaps.iter().zip(gateway_sandbox::RETRY_DELAYS_SECS) {
        let floor = Duration::from_secs_f64(secs as f64 * FAST * 0.9);
        assert!(*gap >= floor, "{gaps:?}");
    }
    assert!(gaps[3] > gaps[0], "{gaps:?}");

    let attempts: Vec<u32> = sandbox.deliveries().iter().map(|d| d.attempt).collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    assert!(sandbox.deliveries().iter().all(|d| d.status_code == Some(500) && !d.success));
    let stats = sandbox.stats();
    assert_eq!((stats.webhook_attempts, stats.webhook_successes), (5, 0));
}

#[tokio::test]
async fn retries_stop_at_the_first_success() {
    let receiver = Receiver::start(|n| if n < 2 { 503 } else { 204 }).await;
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.time_factor = FAST;
    })
    .await;
    Api::new(&sandbox).create(&individual("w-4", "John Doe")).await;
    receiver.wait_for(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.hits().len(), 3);
    let outcome: Vec<(u32, Option<u16>)> = sandbox.deliveries().iter().map(|d| (d.attempt, d.status_code)).collect();
    assert_eq!(outcome, [(1, Some(503)), (2, Some(503)), (3, Some(204))]);
}

#[tokio::test]
async fn unreachable_receiver_is_retried_and_recorded() {
    // A port with nothing listening: bind, learn it, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/hook", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(url);
        c.time_factor = FAST;
    })
    .await;
    Api::new(&sandbox).create(&individual("w-5", "John Doe")).await;
    common::wait_until(Duration::from_secs(5), || sandbox.deliveries().len() == 5).await;
    assert!(sandbox.deliveries().iter().all(|d| d.status_code.is_none() && d.error.is_some()));
}

#[tokio::test]
async fn drop_fault_loses_the_webhook() {
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.faults.drop_webhook_rate = 1.0;
    })
    .await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("w-6", "Ivan Blocklisted")).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(receiver.hits().is_empty());
    assert!(sandbox.deliveries().is_empty());
    // The state is there for whoever asks.
    let got = api.get_case(created["caseSystemId"].as_str().unwrap()).await;
    assert_eq!(got["suggestion"], "SUGGEST_TO_REJECT");
    let stats = sandbox.stats();
    assert_eq!((stats.webhook_notifications, stats.webhook_deliveries_dropped), (1, 1));

    // Back to no drops: the next one arrives.
    sandbox.set_faults(Faults::default()).unwrap();
    api.create(&individual("w-7", "John Doe")).await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
}

#[tokio::test]
async fn duplicate_fault_sends_identical_copies() {
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.faults.duplicate_webhooks = 2;
    })
    .await;
    Api::new(&sandbox).create(&individual("w-8", "John Doe")).await;
    let hits = receiver.wait_for(3, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.hits().len(), 3);
    assert!(hits.iter().all(|h| h.body == hits[0].body && webhook_signature_ok(h, SECRET)));
    let mut copies: Vec<u32> = sandbox.deliveries().iter().map(|d| d.copy).collect();
    copies.sort_unstable();
    assert_eq!(copies, [0, 1, 2]);
}

#[tokio::test]
async fn reorder_fault_delays_deliveries_randomly() {
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.faults.reorder_webhooks = true;
        c.faults.reorder_window_ms = 1000;
    })
    .await;
    let api = Api::new(&sandbox);
    let mut ids = Vec::new();
    for n in 0..8 {
        ids.push(api.create(&individual(&format!("w-r{n}"), "John Doe")).await["externalCaseId"].clone());
    }
    let hits = receiver.wait_for(8, Duration::from_secs(5)).await;
    let arrived: Vec<Value> =
        hits.iter().map(|h| serde_json::from_slice::<Value>(&h.body).unwrap()["externalCaseId"].clone()).collect();
    let mut sorted = arrived.clone();
    sorted.sort_by_key(|v| v.to_string());
    let mut expected = ids.clone();
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(sorted, expected, "every one arrives once");
    // Seeded: with 8 uniform delays over 1 s, creation order surviving is 1 in 40320.
    assert_ne!(arrived, ids, "order was shuffled");
}

#[tokio::test]
async fn ongoing_screening_change_notifies_or_not() {
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| c.webhook_url = Some(hook_url(&receiver))).await;
    let api = Api::new(&sandbox);
    let created = api.create(&individual("w-9", "John Doe")).await;
    let id = created["caseSystemId"].as_str().unwrap().to_owned();
    receiver.wait_for(1, Duration::from_secs(5)).await;

    // Through the control API, with a webhook.
    let response = api
        .control(
            "POST",
            &format!("/cases/{id}/suggestion"),
            Some(json!({"suggestion": "SUGGEST_TO_REJECT", "comment": "New list entry"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let hits = receiver.wait_for(2, Duration::from_secs(5)).await;
    let body: Value = serde_json::from_slice(&hits[1].body).unwrap();
    assert_eq!(body["caseSuggestion"], "SUGGEST_TO_REJECT");
    assert_eq!(body["comment"], "New list entry");
    assert_eq!(api.get_case(&id).await["suggestion_comment"], "New list entry");

    // Silently: the state changes, no webhook (a lost one).
    let response = api
        .control(
            "POST",
            &format!("/cases/{id}/suggestion"),
            Some(json!({"suggestion": "NO_SUGGESTION", "notify": false})),
        )
        .await;
    let state: Value = response.json().await.unwrap();
    assert_eq!(state["case"]["suggestion"], "NO_SUGGESTION");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.hits().len(), 2);
    assert_eq!(api.get_case(&id).await["suggestion"], "NO_SUGGESTION");

    let state: Value = api.control("GET", &format!("/cases/{id}"), None).await.json().await.unwrap();
    let history: Vec<(&str, &str, bool)> = state["suggestionHistory"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["suggestion"].as_str().unwrap(), r["source"].as_str().unwrap(), r["notify"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        history,
        [
            ("SUGGEST_TO_ACCEPT", "screening", true),
            ("SUGGEST_TO_REJECT", "ongoing", true),
            ("NO_SUGGESTION", "ongoing", false)
        ]
    );
    assert_eq!(state["notifications"].as_array().unwrap().len(), 2);

    // Unknown case and bad bodies.
    let unknown = api
        .control("POST", &format!("/cases/{}/suggestion", Uuid::nil()), Some(json!({"suggestion": "NO_SUGGESTION"})))
        .await;
    assert_eq!(unknown.status(), 404);
    let bad = api.control("POST", &format!("/cases/{id}/suggestion"), Some(json!({"suggestion": "MAYBE"}))).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn no_url_no_webhook_and_url_changes_apply() {
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| c.webhook_delay_ms = 200).await;
    let api = Api::new(&sandbox);
    api.create(&individual("w-10", "John Doe")).await;
    assert_eq!(sandbox.stats().webhook_notifications, 0);

    let url = hook_url(&receiver).to_string();
    let response = api.control("PUT", "/webhook-url", Some(json!({"url": url}))).await;
    assert_eq!(response.status(), 200);
    let shown: Value = api.control("GET", "/webhook-url", None).await.json().await.unwrap();
    assert_eq!(shown["url"], url);
    let started = std::time::Instant::now();
    api.create(&individual("w-11", "John Doe")).await;
    let hits = receiver.wait_for(1, Duration::from_secs(5)).await;
    // The webhook delay applies.
    assert!(hits[0].at - started >= Duration::from_millis(200));
    assert_eq!(serde_json::from_slice::<Value>(&hits[0].body).unwrap()["externalCaseId"], "w-11");

    let bad = api.control("PUT", "/webhook-url", Some(json!({"url": "ftp://example.com/x"}))).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn reset_cancels_pending_webhooks() {
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.webhook_delay_ms = 800;
    })
    .await;
    let api = Api::new(&sandbox);
    api.create(&individual("w-12", "John Doe")).await;
    assert_eq!(api.control("POST", "/reset", None).await.status(), 204);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(receiver.hits().is_empty());
    let cases: Vec<Value> = api.control("GET", "/cases", None).await.json().await.unwrap();
    assert!(cases.is_empty());
    assert_eq!(sandbox.stats().creates, 0);
}

#[tokio::test]
async fn webhooks_signed_with_a_separate_credential_or_not_at_all() {
    use gateway_sandbox::WebhookSigning;
    let receiver = Receiver::start(|_| 200).await;
    let separate = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.webhook_signing = WebhookSigning::Separate(Credential::new("hook-key", "hook-secret"));
    })
    .await;
    Api::new(&separate).create(&individual("w-sep", "Ivan Blocklisted")).await;
    let hits = receiver.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(hits[0].headers["access-key"], "hook-key");
    assert!(webhook_signature_ok(&hits[0], "hook-secret"));
    assert!(!webhook_signature_ok(&hits[0], SECRET), "not with the API secret");

    let receiver = Receiver::start(|_| 200).await;
    let unsigned = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.webhook_signing = WebhookSigning::Unsigned;
    })
    .await;
    Api::new(&unsigned).create(&individual("w-uns", "Ivan Blocklisted")).await;
    let hits = receiver.wait_for(1, Duration::from_secs(5)).await;
    for name in ["access-key", "access-timestamp", "access-sign"] {
        assert!(hits[0].headers.get(name).is_none(), "{name}");
    }
    assert_eq!(unsigned.deliveries()[0].signed, "unsigned");
}

#[tokio::test]
async fn retries_can_carry_the_first_attempts_headers_as_old_as_the_schedule() {
    use gateway_sandbox::RetryHeaders;
    // The lost-ack fault makes every 2xx count as failed: all five attempts are made.
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.time_factor = FAST;
        c.retry_headers = RetryHeaders::Original;
        c.faults.webhook_lost_ack_rate = 1.0;
    })
    .await;
    Api::new(&sandbox).create(&individual("w-orig", "Ivan Blocklisted")).await;
    let hits = receiver.wait_for(5, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(receiver.hits().len(), 5, "a lost ack is retried until the schedule ends");
    let stamps: Vec<i64> =
        hits.iter().map(|h| h.headers["access-timestamp"].to_str().unwrap().parse().unwrap()).collect();
    let now = common::now();
    assert!((stamps[0] - now).abs() <= 2, "the first attempt is fresh: {stamps:?}");
    // Each retry's timestamp is as old as the scaled schedule says: at least 5 min, 1 h
    // 5 min, 6 h 5 min, 24 h 5 min before the retry.
    let mut elapsed = 0;
    for (i, delay) in gateway_sandbox::RETRY_DELAYS_SECS.iter().enumerate() {
        elapsed += *delay as i64;
        let age = now - stamps[i + 1];
        assert!(age >= elapsed - 2, "retry {} is {age} s old, expected about {elapsed}: {stamps:?}", i + 1);
        assert!(webhook_signature_ok(&hits[i + 1], SECRET), "signed over its own (old) timestamp");
    }
    let deliveries = sandbox.deliveries();
    assert!(deliveries.iter().all(|d| d.success && d.ack_lost));
    let signed: Vec<&str> = deliveries.iter().map(|d| d.signed.as_str()).collect();
    assert_eq!(signed, ["fresh", "original", "original", "original", "original"]);
    let stats = sandbox.stats();
    assert_eq!((stats.webhook_successes, stats.webhook_acks_lost), (5, 5));
}

#[tokio::test]
async fn a_rotated_webhook_credential_signs_new_attempts_and_retries_keep_their_first_headers() {
    use gateway_sandbox::{RetryHeaders, WebhookSigning};
    let receiver = Receiver::start(|_| 200).await;
    let sandbox = sandbox(|c| {
        c.webhook_url = Some(hook_url(&receiver));
        c.webhook_signing = WebhookSigning::Separate(Credential::new("hook-key-1", "hook-secret-1"));
        // First retry after 300 ms.
        c.time_factor = 0.001;
        c.retry_headers = RetryHeaders::Original;
        c.faults.webhook_lost_ack_rate = 1.0;
    })
    .await;
    let api = Api::new(&sandbox);
    api.create(&individual("w-rot-1", "Ivan Blocklisted")).await;
    let first = receiver.wait_for(1, Duration::from_secs(5)).await;
    let rotated = json!({"apiKey": "hook-key-2", "apiSecret": "hook-secret-2"});
    assert_eq!(api.control("PUT", "/webhook-credential", Some(rotated)).await.status(), 204);
    let hits = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        (first[0].headers["access-key"].to_str().unwrap(), hits[1].headers["access-key"].to_str().unwrap()),
        ("hook-key-1", "hook-key-1")
    );
    assert!(webhook_signature_ok(&hits[1], "hook-secret-1"), "a retry under its first headers: the old credential");

    api.create(&individual("w-rot-2", "Ivan Blocklisted")).await;
    wait_until(Duration::from_secs(5), || {
        receiver.hits().iter().any(|h| String::from_utf8_lossy(&h.body).contains("w-rot-2"))
    })
    .await;
    let fresh = receiver.hits().into_iter().find(|h| String::from_utf8_lossy(&h.body).contains("w-rot-2")).unwrap();
    assert_eq!(fresh.headers["access-key"], "hook-key-2");
    assert!(webhook_signature_ok(&fresh, "hook-secret-2"), "a new delivery: the new credential");

    // Only for webhooks with a credential of their own.
    let plain = common::sandbox(|_| {}).await;
    let refused =
        Api::new(&plain).control("PUT", "/webhook-credential", Some(json!({"apiKey": "k", "apiSecret": "s"}))).await;
    assert_eq!(refused.status(), 409);
}
