//! `evidence-verify FILE`: exit 0 on an intact export, 1 naming the event that breaks,
//! 2 for no file or not JSON.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

use std::process::Command;

use gateway_evidence::{GENESIS, content_sha256, link};
use serde_json::{Value, json};

fn export() -> Value {
    let mut prev = GENESIS.to_owned();
    let mut events = Vec::new();
    for (i, kind) in ["CREATED", "DECISION"].iter().enumerate() {
        let content = json!({"eventId": format!("EVENT#{i}"), "kind": kind, "caseVersion": i + 1});
        let content_hash = content_sha256(&content);
        let hash = link(&prev, &content_hash);
        events.push(json!({
            "eventId": format!("EVENT#{i}"), "at": format!("2026-12-03T10:00:0{i}.000000Z"), "kind": kind,
            "caseVersion": i + 1, "prevHash": prev, "contentSha256": content_hash, "hash": hash, "content": content,
        }));
        prev = hash;
    }
    json!({"case": {"caseSystemId": "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c"}, "chain": {"head": prev}, "events": events})
}

fn run(file_text: Option<&str>) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("evidence-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.json", rand_name()));
    if let Some(text) = file_text {
        std::fs::write(&path, text).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_evidence-verify")).arg(&path).output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn rand_name() -> String {
    format!("{:?}", std::time::SystemTime::now()).chars().filter(char::is_ascii_digit).collect()
}

#[test]
fn an_intact_export_passes_and_an_edited_one_names_its_event() {
    let (code, stdout, _) = run(Some(&export().to_string()));
    assert_eq!(code, 0);
    assert!(stdout.contains("2 events, one unbroken chain"), "{stdout}");

    let mut edited = export();
    edited["events"][1]["content"]["kind"] = json!("OGS_ON");
    let (code, _, stderr) = run(Some(&edited.to_string()));
    assert_eq!(code, 1);
    assert!(stderr.contains("EVENT#1 (2026-12-03T10:00:01.000000Z)") && stderr.contains("edited"), "{stderr}");
}

#[test]
fn no_file_or_no_json_is_exit_2() {
    assert_eq!(run(None).0, 2);
    assert_eq!(run(Some("not json")).0, 2);
    let out = Command::new(env!("CARGO_BIN_EXE_evidence-verify")).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no argument");
}
