//! The credential store the functions build (`CabitalSettings::credential_store`)
//! against moto's Secrets Manager: a rotation keeps the previous secret for the grace
//! window, and an outage of Secrets Manager serves the cached secret for a bounded time.
//!
//! Needs moto: `./scripts/test.sh` starts it and exports `MOTO_ENDPOINT`.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gateway_runtime::{CabitalSettings, Env};
use gateway_signing::{
    CredentialStore, Credentials, Fallback, IncomingHeaders, SignatureEncoding, sign, verify_signature,
};
use tokio::net::{TcpListener, TcpStream};

fn moto() -> SocketAddr {
    let url = match std::env::var("MOTO_ENDPOINT") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!("MOTO_ENDPOINT is not set: run ./scripts/test.sh, which starts moto"),
    };
    let url = url::Url::parse(&url).expect("MOTO_ENDPOINT is a URL");
    let host = url.host_str().expect("MOTO_ENDPOINT has a host");
    let port = url.port_or_known_default().expect("MOTO_ENDPOINT has a port");
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).unwrap().next().unwrap()
}

fn sdk(endpoint: &str) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new("testing", "testing", None, None, "t"))
}

/// A TCP proxy to moto that can be taken down: its open connections are cut and new
/// ones closed at once (a Secrets Manager that refuses), then brought back.
struct Proxy {
    url: String,
    down: Arc<AtomicBool>,
    /// While set (with `down`), connections are accepted and never answered.
    hang: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn to_moto() -> Proxy {
        let target = moto();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let down = Arc::new(AtomicBool::new(false));
        let hang = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (d, h, o) = (down.clone(), hang.clone(), open.clone());
        let accept = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    if h.load(Ordering::SeqCst) {
                        held.push(inbound);
                    }
                    continue; // dropped: closed at once
                }
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                o.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { url, down, hang, open, accept }
    }

    fn set_hung(&self) {
        self.hang.store(true, Ordering::SeqCst);
        self.set_down(true);
    }

    fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
        if down {
            for task in self.open.lock().unwrap().drain(..) {
                task.abort();
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.set_down(true);
    }
}

fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn value(secret: &str) -> String {
    format!(r#"{{"apiKey":"rotation-key","apiSecret":"{secret}"}}"#)
}

async fn create_secret(secret: &str) -> (aws_sdk_secretsmanager::Client, String) {
    let client = aws_sdk_secretsmanager::Client::new(&sdk(&format!("http://{}", moto())).load().await);
    let id = unique("rotation");
    client.create_secret().name(&id).secret_string(value(secret)).send().await.expect("moto creates the secret");
    (client, id)
}

/// The store the functions build, with these settings, over Secrets Manager at
/// `endpoint`, counting the fallbacks it reports.
async fn open_store(
    endpoint: &str,
    secret_id: &str,
    pairs: &[(&str, &str)],
) -> (CredentialStore, Arc<Mutex<Vec<Fallback>>>) {
    let mut vars = vec![("CABITAL_SECRET_ID", secret_id)];
    vars.extend_from_slice(pairs);
    let var = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
    let settings = CabitalSettings::read(&Env::with(&var)).unwrap();
    let seen: Arc<Mutex<Vec<Fallback>>> = Arc::default();
    let counted = seen.clone();
    let hook = Arc::new(move |f: Fallback| counted.lock().unwrap().push(f));
    (settings.credential_store_with(&sdk(endpoint).load().await, Some(hook)), seen)
}

/// Whether a webhook signed with `secret` verifies against `c`.
fn verifies(c: &Credentials, secret: &str) -> bool {
    let signer = Credentials::new("rotation-key", secret).unwrap();
    let h = sign(&signer, SignatureEncoding::Base64, 1_700_000_000, "POST", "/webhooks/cabital", b"{}");
    let headers = IncomingHeaders {
        access_key: Some(&h.access_key),
        access_timestamp: Some(&h.access_timestamp),
        access_sign: Some(&h.access_sign),
    };
    verify_signature(c, headers, 1_700_000_000, "POST", "/webhooks/cabital", b"{}").is_ok()
}

#[tokio::test]
async fn a_rotation_keeps_the_previous_secret_for_the_grace_window_only() {
    let (client, id) = create_secret("old-secret-1").await;
    let endpoint = format!("http://{}", moto());
    let (store, fallbacks) = open_store(&endpoint, &id, &[("CABITAL_SECRET_PREVIOUS_GRACE_SECS", "4")]).await;
    assert!(verifies(&store.get().await.unwrap(), "old-secret-1"));
    assert!(store.previous().await.unwrap().is_none(), "no rotation yet: no AWSPREVIOUS");

    client.put_secret_value().secret_id(&id).secret_string(value("new-secret-2")).send().await.unwrap();
    let rotated = Instant::now();
    let current = store.refresh().await.unwrap();
    assert!(
        verifies(&current, "new-secret-2") && !verifies(&current, "old-secret-1"),
        "outbound signs with AWSCURRENT"
    );
    let previous = store.previous().await.unwrap().expect("within the grace window, AWSPREVIOUS is held");
    assert!(verifies(&previous, "old-secret-1"));
    assert!(!verifies(&previous, "new-secret-2"));

    // The window runs from the AWSCURRENT version's CreatedDate (whole seconds in moto).
    tokio::time::sleep(Duration::from_secs(5).saturating_sub(rotated.elapsed())).await;
    assert!(store.previous().await.unwrap().is_none(), "after the grace window, the previous secret is gone");
    assert!(verifies(&store.get().await.unwrap(), "new-secret-2"));
    assert!(fallbacks.lock().unwrap().is_empty());

    // With no grace window, never.
    let (strict, _) = open_store(&endpoint, &id, &[("CABITAL_SECRET_PREVIOUS_GRACE_SECS", "0")]).await;
    client.put_secret_value().secret_id(&id).secret_string(value("newer-secret-3")).send().await.unwrap();
    assert!(verifies(&strict.get().await.unwrap(), "newer-secret-3"));
    assert!(strict.previous().await.unwrap().is_none());
}

#[tokio::test]
async fn an_outage_of_secrets_manager_serves_the_cached_secret_within_the_bound() {
    let (client, id) = create_secret("cached-secret-1").await;
    let proxy = Proxy::to_moto().await;
    let settings = [("CABITAL_SECRET_TTL_SECS", "1"), ("CABITAL_SECRET_FALLBACK_SECS", "3")];
    let (store, fallbacks) = open_store(&proxy.url, &id, &settings).await;
    let fetched = Instant::now();
    assert!(verifies(&store.get().await.unwrap(), "cached-secret-1"));

    // Secrets Manager refuses; meanwhile the secret rotates there.
    proxy.set_down(true);
    client.put_secret_value().secret_id(&id).secret_string(value("rotated-secret-2")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    let served = store.get().await.expect("the cached secret is served past its lifetime");
    assert!(verifies(&served, "cached-secret-1"));
    assert_eq!(*fallbacks.lock().unwrap(), [Fallback::Current], "reported once");
    // Not asked again at once: no second slow call, no second report.
    assert!(store.get().await.is_ok());
    assert!(store.refresh_if_older_than(Duration::from_secs(60)).await.is_ok());
    assert_eq!(fallbacks.lock().unwrap().len(), 1);
    // An explicit refresh (Cabital refused the secret) is not served from the cache.
    assert!(store.refresh().await.is_err());

    // Past the bound (1 s lifetime + 3 s), the call fails as with nothing cached.
    tokio::time::sleep(Duration::from_millis(4_300).saturating_sub(fetched.elapsed())).await;
    let failed = store.get().await;
    assert!(failed.is_err(), "past the bound the call fails");
    assert_eq!(fallbacks.lock().unwrap().len(), 1);

    // Secrets Manager back: the rotated value.
    proxy.set_down(false);
    assert!(verifies(&store.get().await.unwrap(), "rotated-secret-2"));
}

#[tokio::test]
async fn with_no_fallback_an_outage_fails_the_call_once_the_cache_expired() {
    let (_, id) = create_secret("cached-secret-1").await;
    let proxy = Proxy::to_moto().await;
    let settings = [("CABITAL_SECRET_TTL_SECS", "1"), ("CABITAL_SECRET_FALLBACK_SECS", "0")];
    let (store, fallbacks) = open_store(&proxy.url, &id, &settings).await;
    assert!(store.get().await.is_ok());
    proxy.set_down(true);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert!(store.get().await.is_err());
    assert!(fallbacks.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreadable_previous_secret_is_reported_and_not_asked_again_at_once() {
    let (client, id) = create_secret("old-secret-1").await;
    let proxy = Proxy::to_moto().await;
    let (store, fallbacks) = open_store(&proxy.url, &id, &[("CABITAL_SECRET_TTL_SECS", "2")]).await;
    client.put_secret_value().secret_id(&id).secret_string(value("new-secret-2")).send().await.unwrap();
    assert!(verifies(&store.get().await.unwrap(), "new-secret-2"));
    proxy.set_down(true);
    assert!(store.previous().await.unwrap().is_none(), "unreadable: only AWSCURRENT is tried");
    assert!(store.previous().await.unwrap().is_none());
    assert_eq!(*fallbacks.lock().unwrap(), [Fallback::Previous], "reported once, not asked again at once");
    proxy.set_down(false);
    // Asked again after the pause (the lifetime, clamped to 1..10 s).
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let previous = store.previous().await.unwrap().expect("read once Secrets Manager is back");
    assert!(verifies(&previous, "old-secret-1"));
}

#[tokio::test]
async fn a_secrets_manager_that_hangs_costs_a_second_while_the_cached_secret_can_stand_in() {
    let (_, id) = create_secret("cached-secret-1").await;
    let proxy = Proxy::to_moto().await;
    let settings = [("CABITAL_SECRET_TTL_SECS", "1"), ("CABITAL_SECRET_FALLBACK_SECS", "30")];
    let (store, fallbacks) = open_store(&proxy.url, &id, &settings).await;
    assert!(store.get().await.is_ok());
    proxy.set_hung();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let started = Instant::now();
    assert!(verifies(&store.get().await.unwrap(), "cached-secret-1"));
    // Not the SDK's 4 s (connect, attempt, retries): a second, then the cached secret.
    assert!(started.elapsed() < Duration::from_millis(1_500), "took {:?}", started.elapsed());
    assert_eq!(*fallbacks.lock().unwrap(), [Fallback::Current]);
}
