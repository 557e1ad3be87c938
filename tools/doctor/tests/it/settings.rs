//! The command line and the environment: refused before any request (exit 2).

use crate::{API_KEY, API_SECRET, doctor, doctor_with_keys};

#[tokio::test]
async fn plain_http_to_a_host_that_is_not_loopback_is_refused() {
    let run = doctor_with_keys("http://caas.cabital.com", API_KEY, API_SECRET).await;
    run.assert_failed(2, "not a loopback address");
}

#[tokio::test]
async fn no_secret_is_refused() {
    let run = doctor(&[("CABITAL_BASE_URL", "http://127.0.0.1:9")], &[]).await;
    run.assert_failed(2, "no cabital secret");
    let run = doctor(&[("CABITAL_API_KEY", API_KEY)], &[]).await;
    run.assert_failed(2, "cabital_api_secret is not set");
}

#[tokio::test]
async fn arguments_are_refused_and_never_echoed() {
    let run = doctor(&[("CABITAL_API_KEY", API_KEY), ("CABITAL_API_SECRET", API_SECRET)], &[API_SECRET]).await;
    run.assert_failed(2, "the secret must never be on the command line");
    let run = doctor(&[], &["--help"]).await;
    assert_eq!(run.code, Some(0));
    assert!(run.stdout.contains("CABITAL_SECRET_ID"), "{}", run.stdout);
}
