//! The client against the Cabital sandbox on 127.0.0.1: happy path, every error code,
//! retries, 401 with a skewed clock, secret rotation.

use std::time::Duration;

use gateway_cabital::{
    CabitalClient, CabitalError, ClientConfig, CreateAnswer, Deadline, Decision, DecisionRequest, NewCase, Pii,
    Suggestion, validate_new_case,
};
use gateway_sandbox::{CreateAnswerMode, Credential, Faults, SandboxConfig, SandboxHandle};
use gateway_signing::{CredentialSource, CredentialStore, Credentials};
use serde_json::json;

const KEY: &str = "client-test-key";
const SECRET: &str = "client-test-secret";

async fn sandbox(faults: Faults) -> SandboxHandle {
    let mut config = SandboxConfig::with_credential(KEY, SECRET);
    config.seed = Some(11);
    config.faults = faults;
    gateway_sandbox::spawn(config).await.expect("sandbox starts")
}

fn client_with(sandbox: &SandboxHandle, creds: Credentials, tweak: impl FnOnce(&mut ClientConfig)) -> CabitalClient {
    let mut config = ClientConfig::new(sandbox.base_url().parse().unwrap());
    config.base_backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_millis(50);
    tweak(&mut config);
    let store = CredentialStore::new(CredentialSource::Static(creds), Duration::from_secs(300));
    CabitalClient::new(config, store).unwrap()
}

fn client(sandbox: &SandboxHandle) -> CabitalClient {
    client_with(sandbox, Credentials::new(KEY, SECRET).unwrap(), |_| {})
}

fn case(ext: &str, name: &str) -> NewCase {
    let v = json!({
        "externalCaseId": ext, "screenType": "INDIVIDUAL", "fullName": name,
        "individualInfo": {"gender": "FEMALE", "dob": "1990-05-17", "nationality": "GBR", "residentialCountry": "SGP"}
    });
    validate_new_case(&v, time::OffsetDateTime::now_utc().date()).unwrap()
}

#[tokio::test]
async fn every_call_succeeds_against_the_sandbox() {
    let sb = sandbox(Faults::default()).await;
    let c = client(&sb);
    let created = c.create_case(&case("client-happy-1", "Jane Roe")).await.unwrap().case().cloned().unwrap();
    assert_eq!(created.external_case_id.as_str(), "client-happy-1");
    let got = c.get_case(created.case_system_id).await.unwrap();
    assert_eq!(got.case_system_id, created.case_system_id);
    assert_eq!(got.suggestion, Some(Suggestion::SuggestToAccept));
    c.ogs_on(created.case_system_id).await.unwrap();
    assert!(c.get_case(created.case_system_id).await.unwrap().ogs);
    c.ogs_off(created.case_system_id).await.unwrap();
    assert!(!c.get_case(created.case_system_id).await.unwrap().ogs);
    let decision = DecisionRequest { case_result: Decision::Reject, comment: Some(Pii("checked".into())) };
    c.decide(created.case_system_id, &decision).await.unwrap();
    let got = c.get_case(created.case_system_id).await.unwrap();
    assert_eq!(got.decision, Some(Decision::Reject));
    assert_eq!(got.decision_comment.as_deref().map(String::as_str), Some("checked"));
    // Exactly one case at the sandbox, created once.
    assert_eq!(sb.stats().creates, 1);
    assert_eq!(sb.cases_by_external_id("client-happy-1").len(), 1);
}

#[tokio::test]
async fn the_screening_rule_reaches_the_client() {
    let sb = sandbox(Faults::default()).await;
    let c = client(&sb);
    let rejected = c.create_case(&case("client-rule-1", "Sanctioned Person")).await.unwrap().case().cloned().unwrap();
    assert_eq!(c.get_case(rejected.case_system_id).await.unwrap().suggestion, Some(Suggestion::SuggestToReject));
    let unclear = c.create_case(&case("client-rule-2", "Unclear Name")).await.unwrap().case().cloned().unwrap();
    assert_eq!(c.get_case(unclear.case_system_id).await.unwrap().suggestion, Some(Suggestion::NoSuggestion));
}

#[tokio::test]
async fn errors_are_typed_and_say_whether_to_retry() {
    let sb = sandbox(Faults::default()).await;
    let c = client(&sb);
    // 404: unknown case; not retried.
    let missing = gateway_cabital::CaseSystemId::new(uuid::Uuid::new_v4());
    let e = c.get_case(missing).await.unwrap_err();
    assert_eq!(e.status(), Some(404), "{e:?}");
    assert!(!e.retryable());
    // 409: a second case with the same externalCaseId.
    c.create_case(&case("client-dup-1", "A B")).await.unwrap();
    let e = c.create_case(&case("client-dup-1", "A B")).await.unwrap_err();
    assert_eq!(e.status(), Some(409));
    assert!(!e.retryable() && !e.outcome_unknown());
    // 401: a wrong secret, refetched once (same wrong value), then refused.
    let bad = client_with(&sb, Credentials::new(KEY, "wrong").unwrap(), |_| {});
    let e = bad.get_case(missing).await.unwrap_err();
    assert_eq!(e.status(), Some(401));
    let before = sb.stats().unauthorized;
    assert!(before >= 2, "401 is retried exactly once: {before}");
}

#[tokio::test]
async fn injected_503_and_429_are_retried_until_success() {
    let sb = sandbox(Faults { error_rate_503: 0.5, ..Faults::default() }).await;
    let c = client_with(&sb, Credentials::new(KEY, SECRET).unwrap(), |cfg| cfg.max_attempts = 12);
    for i in 0..10 {
        c.create_case(&case(&format!("client-503-{i}"), "C D")).await.unwrap();
    }
    let stats = sb.stats();
    assert_eq!(stats.creates, 10);
    assert!(stats.injected_503 > 0, "the fault was injected: {stats:?}");

    let sb = sandbox(Faults { rate_limit_per_sec: 5.0, ..Faults::default() }).await;
    let c = client_with(&sb, Credentials::new(KEY, SECRET).unwrap(), |cfg| cfg.max_attempts = 20);
    let created = c.create_case(&case("client-429", "E F")).await.unwrap().case().cloned().unwrap();
    for _ in 0..15 {
        c.get_case(created.case_system_id).await.unwrap();
    }
    assert!(sb.stats().rate_limited > 0, "429 was answered and honoured");
}

#[tokio::test]
async fn a_500_on_create_is_an_unknown_outcome_and_not_repeated() {
    let sb = sandbox(Faults { error_rate_500: 1.0, ..Faults::default() }).await;
    let c = client(&sb);
    let e = c.create_case(&case("client-500", "G H")).await.unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert!(e.outcome_unknown() && e.retryable());
    assert_eq!(sb.stats().injected_500, 1, "a create that may have been processed is never sent twice");
    // Reads are safe to repeat: retried up to the limit.
    let id = gateway_cabital::CaseSystemId::new(uuid::Uuid::new_v4());
    let _ = c.get_case(id).await.unwrap_err();
    assert_eq!(sb.stats().injected_500, 4);
}

#[tokio::test]
async fn a_timeout_is_an_unknown_outcome() {
    let sb = sandbox(Faults { latency_ms: 1500, ..Faults::default() }).await;
    let c = client_with(&sb, Credentials::new(KEY, SECRET).unwrap(), |cfg| {
        cfg.request_timeout = Duration::from_millis(300)
    });
    let e = c.create_case(&case("client-timeout", "I J")).await.unwrap_err();
    assert!(matches!(e, CabitalError::Timeout), "{e:?}");
    assert!(e.outcome_unknown());
    // The sandbox did create it: exactly why the gateway never sends it again.
    assert_eq!(sb.stats().creates, 1);
}

#[tokio::test]
async fn a_skewed_clock_is_corrected_from_date_after_a_401() {
    let sb = sandbox(Faults { clock_offset_secs: 600, ..Faults::default() }).await;
    let c = client(&sb);
    assert_eq!(c.clock_offset_secs(), 0);
    let created = c.create_case(&case("client-skew", "K L")).await.unwrap().case().cloned().unwrap();
    assert!((c.clock_offset_secs() - 600).abs() <= 2, "offset learnt: {}", c.clock_offset_secs());
    assert_eq!(sb.stats().unauthorized, 1, "one 401, then success");
    c.get_case(created.case_system_id).await.unwrap();
    assert_eq!(sb.stats().unauthorized, 1);
}

#[tokio::test]
async fn connection_refused_is_retryable_and_not_unknown() {
    let sb = sandbox(Faults::default()).await;
    let url = sb.base_url();
    sb.shutdown().await;
    let mut config = ClientConfig::new(url.parse().unwrap());
    config.max_attempts = 2;
    config.base_backoff = Duration::from_millis(5);
    let creds =
        CredentialStore::new(CredentialSource::Static(Credentials::new(KEY, SECRET).unwrap()), Duration::from_secs(1));
    let c = CabitalClient::new(config, creds).unwrap();
    let e = c.create_case(&case("client-down", "M N")).await.unwrap_err();
    assert!(matches!(e, CabitalError::Connect), "{e:?}");
    assert!(e.retryable() && !e.outcome_unknown());
}

#[tokio::test]
async fn rotated_credentials_are_used_after_a_401() {
    // The secret source changes under the client: the 401 makes it refetch.
    let sb = sandbox(Faults::default()).await;
    let c = client(&sb);
    let created = c.create_case(&case("client-rotate", "O P")).await.unwrap().case().cloned().unwrap();
    sb.set_credentials(vec![Credential::new(KEY, "rotated-secret")]);
    // The static source still holds the old secret: refused after one refetch.
    assert_eq!(c.get_case(created.case_system_id).await.unwrap_err().status(), Some(401));
}

#[tokio::test]
async fn debug_output_carries_no_secret() {
    let sb = sandbox(Faults::default()).await;
    let c = client(&sb);
    let shown = format!("{c:?}");
    assert!(!shown.contains(SECRET) && !shown.contains(KEY), "{shown}");
}

/// A bare HTTP/1.1 server that answers every request `404 {}` (no body to a `HEAD`) on a
/// kept-alive connection
/// and counts the connections it accepts.
async fn counting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                loop {
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    // Requests without bodies (HEAD, GET): one answer per blank line.
                    while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = seen.starts_with(b"HEAD ");
                        seen.drain(..end + 4);
                        let answer =
                            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n";
                        let body = if head { "" } else { "{}" };
                        if socket.write_all(format!("{answer}{body}").as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (url, accepted)
}

#[tokio::test]
async fn the_warm_up_opens_the_connection_the_first_call_uses() {
    let (url, accepted) = counting_server().await;
    let c = client_with_url(&url);
    c.warm_up().await;
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "the warm-up connects");
    let err = c.get_case(gateway_cabital::CaseSystemId::new(uuid::Uuid::new_v4())).await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1, "the first call reuses the warm-up's connection");
}

fn client_with_url(url: &str) -> CabitalClient {
    let creds = CredentialStore::new(
        CredentialSource::Static(Credentials::new(KEY, SECRET).unwrap()),
        Duration::from_secs(300),
    );
    CabitalClient::new(ClientConfig::new(url.parse().unwrap()), creds).unwrap()
}

/// A base URL with a path (a proxy's prefix): the prefix stays in front of `/api/v1`,
/// and the signature is over the path as sent.
#[tokio::test]
async fn a_base_url_path_is_kept_and_signed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "the connection closed early");
            head.extend_from_slice(&buf[..n]);
        }
        let answer = "HTTP/1.1 404 Not Found\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
        socket.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8(head).unwrap()
    });
    let mut config = ClientConfig::new(format!("http://127.0.0.1:{port}/cabital-proxy/").parse().unwrap());
    config.max_attempts = 1;
    let creds = Credentials::new(KEY, SECRET).unwrap();
    let store = CredentialStore::new(CredentialSource::Static(creds.clone()), Duration::from_secs(300));
    let client = CabitalClient::new(config, store).unwrap();
    let id: gateway_cabital::CaseSystemId = "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c".parse().unwrap();
    let err = client.get_case(id).await.unwrap_err();
    assert_eq!(err.status(), Some(404));

    let head = server.await.unwrap();
    let path = format!("/cabital-proxy/api/v1/cases/{id}");
    assert!(head.starts_with(&format!("GET {path} HTTP/1.1\r\n")), "{head}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim()))
    };
    let headers = gateway_signing::IncomingHeaders {
        access_key: header("access-key"),
        access_timestamp: header("access-timestamp"),
        access_sign: header("access-sign"),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!(gateway_signing::verify_signature(&creds, headers, now, "GET", &path, b"").is_ok(), "{head}");
}

async fn sandbox_with(tweak: impl FnOnce(&mut SandboxConfig)) -> SandboxHandle {
    let mut config = SandboxConfig::with_credential(KEY, SECRET);
    config.seed = Some(12);
    tweak(&mut config);
    gateway_sandbox::spawn(config).await.expect("sandbox starts")
}

#[tokio::test]
async fn a_201_without_a_case_system_id_is_created_without_id_never_an_error() {
    for (mode, ext) in [(CreateAnswerMode::Empty, "client-empty"), (CreateAnswerMode::NoId, "client-no-id")] {
        let sb = sandbox_with(|c| c.create_answer = mode).await;
        let answer = client(&sb).create_case(&case(ext, "Q R")).await.unwrap();
        assert!(matches!(answer, CreateAnswer::CreatedWithoutId { .. }), "{mode:?}: {answer:?}");
        assert_eq!(sb.stats().creates, 1, "{mode:?}: sent once");
    }
}

#[tokio::test]
async fn a_get_without_case_system_id_takes_the_paths() {
    let sb = sandbox_with(|c| c.get_without_case_system_id = true).await;
    let c = client(&sb);
    let created = c.create_case(&case("client-get-no-id", "S T")).await.unwrap().case().cloned().unwrap();
    let got = c.get_case(created.case_system_id).await.unwrap();
    assert_eq!(got.case_system_id, created.case_system_id);
    assert_eq!(got.suggestion, Some(Suggestion::SuggestToAccept));
}

/// A redirect is never followed: it would re-send the ACCESS-* headers (and a body with
/// personal data) to wherever it points.
#[tokio::test]
async fn a_redirect_is_an_error_never_followed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut requests = 0;
        // Serve whatever comes for a while: a followed redirect would be a second request.
        while let Ok(Ok((mut socket, _))) = tokio::time::timeout(Duration::from_millis(500), listener.accept()).await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            requests += 1;
            let answer = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:{port}/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = socket.write_all(answer.as_bytes()).await;
        }
        requests
    });
    let mut config = ClientConfig::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    config.max_attempts = 1;
    let store = CredentialStore::new(
        CredentialSource::Static(Credentials::new(KEY, SECRET).unwrap()),
        Duration::from_secs(300),
    );
    let client = CabitalClient::new(config, store).unwrap();
    let err = client.create_case(&case("client-redirect", "U V")).await.unwrap_err();
    assert_eq!(err.status(), Some(307), "{err:?}");
    assert!(!err.retryable());
    assert_eq!(server.await.unwrap(), 1, "the redirect was not followed");
}

// ---------------------------------------------------------------- the deadline

/// A client that would retry ten times, each attempt at least 600 ms under a deadline.
fn patient_client(sb: &SandboxHandle) -> CabitalClient {
    client_with(sb, Credentials::new(KEY, SECRET).unwrap(), |cfg| {
        cfg.max_attempts = 10;
        cfg.min_attempt = Duration::from_millis(600);
    })
}

#[tokio::test]
async fn no_attempt_starts_without_the_time_for_it() {
    let sb = sandbox(Faults::default()).await;
    let c = patient_client(&sb);
    let e = c.within(Deadline::after(Duration::from_millis(300))).create_case(&case("client-late", "Q R")).await;
    let e = e.unwrap_err();
    assert!(matches!(e, CabitalError::NoTimeLeft), "{e:?}");
    // Not sent: the caller may free the id and try again.
    assert!(e.retryable() && !e.outcome_unknown());
    assert_eq!(sb.stats().requests.values().sum::<u64>(), 0, "nothing reached Cabital");
}

#[tokio::test]
async fn retries_stop_where_the_deadline_leaves_no_time_for_another_attempt() {
    // Each 503 takes 500 ms; 1.5 s leave room for two attempts but not a third.
    let sb = sandbox(Faults { error_rate_503: 1.0, latency_ms: 500, ..Faults::default() }).await;
    let c = patient_client(&sb);
    let started = std::time::Instant::now();
    let e = c
        .within(Deadline::after(Duration::from_millis(1500)))
        .get_case(gateway_cabital::CaseSystemId::new(uuid::Uuid::new_v4()))
        .await;
    let e = e.unwrap_err();
    assert_eq!(e.status(), Some(503), "the last attempt's own answer: {e:?}");
    assert_eq!(sb.stats().injected_503, 2, "no attempt started past the budget");
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[tokio::test]
async fn a_retry_after_beyond_the_deadline_is_not_waited_for() {
    // One request every 2 s: the second is refused 429 with Retry-After 2 (within the
    // client's 3 s, so waited for without a deadline).
    let sb = sandbox(Faults { rate_limit_per_sec: 0.5, ..Faults::default() }).await;
    let c = patient_client(&sb);
    let id = c.create_case(&case("client-ra", "S T")).await.unwrap().case().cloned().unwrap().case_system_id;
    let started = std::time::Instant::now();
    let e = c.within(Deadline::after(Duration::from_millis(1500))).get_case(id).await.unwrap_err();
    assert_eq!(e.status(), Some(429), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(2)));
    assert!(started.elapsed() < Duration::from_secs(1), "not slept: {:?}", started.elapsed());
    assert_eq!(sb.stats().rate_limited, 1);
}

#[tokio::test]
async fn an_attempt_is_cut_at_the_deadline_as_an_unknown_outcome() {
    // Cabital acts, then answers after 2 s; the attempt may last only 1 s.
    let sb = sandbox(Faults { latency_ms: 2000, ..Faults::default() }).await;
    let c =
        client_with(&sb, Credentials::new(KEY, SECRET).unwrap(), |cfg| cfg.min_attempt = Duration::from_millis(100));
    let started = std::time::Instant::now();
    let e =
        c.within(Deadline::after(Duration::from_secs(1))).create_case(&case("client-cut", "U V")).await.unwrap_err();
    assert!(matches!(e, CabitalError::Timeout), "{e:?}");
    assert!(e.outcome_unknown(), "sent, maybe acted on: never sent again");
    assert!(started.elapsed() < Duration::from_millis(1800), "{:?}", started.elapsed());
    assert_eq!(sb.stats().creates, 1);
}

#[test]
fn the_longest_call_without_a_deadline_counts_every_attempt_and_wait() {
    let config = ClientConfig::new("https://caas.cabital.com".parse().unwrap());
    // 3 attempts and a 401's extra one, 8 s each, and a 3 s Retry-After after each.
    assert_eq!(config.longest_call(), Duration::from_secs(4 * 8 + 4 * 3));
}
