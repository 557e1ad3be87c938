//! The `gateway-sandbox-sign` binary: signs an API Gateway v2 event fixture.

use std::io::Write as _;
use std::process::{Command, Stdio};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const BIN: &str = env!("CARGO_BIN_EXE_gateway-sandbox-sign");

fn fixture() -> String {
    json!({
        "version": "2.0",
        "rawPath": "/webhooks/cabital",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "access-sign": "stale"},
        "requestContext": {"http": {"method": "POST", "path": "/webhooks/cabital"}},
        "isBase64Encoded": false,
        "body": "{\"caseSuggestion\":\"SUGGEST_TO_ACCEPT\"}"
    })
    .to_string()
}

fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn run(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("CABITAL_SANDBOX_API_KEY")
        .env_remove("CABITAL_SANDBOX_API_SECRET")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // On bad usage the program may exit before reading its input: a broken pipe here
    // is that, and its exit code and output say the rest.
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing the program's input: {e}");
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn signs_a_fixture_from_stdin_for_a_given_time() {
    let (code, stdout, stderr) = run(
        &[
            "--api-key",
            "k",
            "--api-secret=s",
            "--timestamp",
            "1700000000",
            "--timestamp-offset",
            "-60",
            "--signature-encoding",
            "hex",
            "-",
        ],
        &fixture(),
    );
    assert_eq!(code, Some(0), "{stderr}");
    let event: Value = serde_json::from_str(&stdout).unwrap();
    let expected = hmac_hex("s", "1699999940POST/webhooks/cabital{\"caseSuggestion\":\"SUGGEST_TO_ACCEPT\"}");
    assert_eq!(event["headers"]["access-sign"], expected.as_str());
    assert_eq!(event["headers"]["access-key"], "k");
    assert_eq!(event["headers"]["access-timestamp"], "1699999940");
    assert_eq!(event["body"], "{\"caseSuggestion\":\"SUGGEST_TO_ACCEPT\"}", "the body is untouched");

    // Another signed path, from a file.
    let path = std::env::temp_dir().join(format!("sign-fixture-{}.json", std::process::id()));
    std::fs::write(&path, fixture()).unwrap();
    let (code, stdout, stderr) = run(
        &[
            "--api-key",
            "k",
            "--api-secret",
            "s",
            "--timestamp",
            "1700000000",
            "--path",
            "/prod/webhooks/cabital",
            "--signature-encoding=hex",
            path.to_str().unwrap(),
        ],
        "",
    );
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, Some(0), "{stderr}");
    let event: Value = serde_json::from_str(&stdout).unwrap();
    let expected = hmac_hex("s", "1700000000POST/prod/webhooks/cabital{\"caseSuggestion\":\"SUGGEST_TO_ACCEPT\"}");
    assert_eq!(event["headers"]["access-sign"], expected.as_str());
}

#[test]
fn signs_for_now_by_default() {
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let (code, stdout, stderr) = run(&["--api-key", "k", "--api-secret", "s", "-"], &fixture());
    let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(code, Some(0), "{stderr}");
    let event: Value = serde_json::from_str(&stdout).unwrap();
    let ts: u64 = event["headers"]["access-timestamp"].as_str().unwrap().parse().unwrap();
    assert!((before..=after).contains(&ts), "{before} <= {ts} <= {after}");
    assert_eq!(event["headers"]["access-sign"].as_str().unwrap().len(), 44, "base64 by default");
}

#[test]
fn refuses_bad_usage_without_writing_anything() {
    let (code, stdout, stderr) = run(&["-"], &fixture());
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("--api-key"), "{stderr}");

    let (code, _, stderr) = run(&["--nope"], "");
    assert_eq!(code, Some(2), "{stderr}");

    let (code, stdout, stderr) = run(&["--api-key", "k", "--api-secret", "s", "-"], "{\"version\": \"1.0\"}");
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.contains("v2"), "{stderr}");

    let (code, stdout, _) = run(&["--help"], "");
    assert_eq!(code, Some(0));
    assert!(stdout.starts_with("usage: gateway-sandbox-sign"));
}
