//! The `doctor` binary, run as a partner runs it, against the Cabital sandbox on
//! 127.0.0.1, small stand-in servers, and moto for Secrets Manager.
//!
//! One test binary (links the SDK once); each module one kind of outcome.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

mod secrets_manager;
mod settings;
mod verdicts;
mod wrong_url;

use std::process::Command;

/// The key and secret every test uses; no output may ever contain either.
pub const API_KEY: &str = "doctor-test-key-4f7a1c";
pub const API_SECRET: &str = "doctor-test-secret-b82e9d";

/// A finished run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The last line of stdout.
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }

    /// Everything it printed, both streams.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Neither the key nor the secret was printed.
    pub fn assert_no_secret(&self) {
        let all = self.all();
        assert!(!all.contains(API_SECRET), "the secret was printed:\n{all}");
        assert!(!all.contains(API_KEY), "the API key was printed:\n{all}");
    }

    /// Failed with this exit code, with `words` (lower case) somewhere in its output.
    pub fn assert_failed(&self, code: i32, words: &str) {
        let all = self.all();
        assert_eq!(self.code, Some(code), "exit code; output:\n{all}");
        assert!(all.to_lowercase().contains(words), "expected {words:?} in:\n{all}");
        assert!(!self.last_line().starts_with("CABITAL_SIGNATURE_ENCODING="), "no setting on failure:\n{all}");
        self.assert_no_secret();
    }
}

/// Runs `doctor` with only these environment variables (nothing inherited: no stray
/// AWS or Cabital setting of the machine running the tests).
pub async fn doctor(env: &[(&str, &str)], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_doctor"));
    command.env_clear().args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    // A blocking wait, off the runtime: the sandbox serves on this test's runtime.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the waiting thread ends")
        .expect("doctor runs");
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `doctor` against `base_url` with the key and secret in the environment.
pub async fn doctor_with_keys(base_url: &str, api_key: &str, api_secret: &str) -> Run {
    doctor(&[("CABITAL_BASE_URL", base_url), ("CABITAL_API_KEY", api_key), ("CABITAL_API_SECRET", api_secret)], &[])
        .await
}
