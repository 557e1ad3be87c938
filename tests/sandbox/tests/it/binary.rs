//! The `gateway-sandbox` binary: flags, the ready line, a signed request, refusal of a
//! bad setting.

use crate::common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use common::{Api, Raw};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn binary_prints_its_address_and_serves() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gateway-sandbox"))
        .args([
            "--port",
            "0",
            "--api-key",
            common::KEY,
            "--seed",
            "3",
            "--clock-offset-secs=0",
            "--signature-encoding=hex",
        ])
        .env("CABITAL_SANDBOX_API_SECRET", common::SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let child = Killed(child);
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    })
    .await
    .unwrap();
    let base = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("ready line: {line:?}")).to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let api = Api { base, http: reqwest::Client::new() };
    let body = common::individual("bin-1", "John Doe").to_string();
    assert_eq!(api.raw(Raw::signed("POST", "/api/v1/cases", &body, 0)).await.status(), 201);
    let stats: serde_json::Value = api.control("GET", "/stats", None).await.json().await.unwrap();
    assert_eq!(stats["seed"], 3);
    assert_eq!(stats["creates"], 1);
    drop(child);
}

#[test]
fn binary_refuses_bad_settings() {
    let output = Command::new(env!("CARGO_BIN_EXE_gateway-sandbox"))
        .args(["--api-key", "k", "--api-secret", "s", "--error-rate-500", "1.5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("errorRate500"));
    assert!(output.stdout.is_empty());

    let output = Command::new(env!("CARGO_BIN_EXE_gateway-sandbox")).env_clear().output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no credentials"));
}
