//! `evidence-verify FILE`: checks a case's evidence export (`GET /v1/cases/{id}/evidence`)
//! offline, with nothing but the file.
//!
//! Exit 0: every event's content hashes to its `contentSha256` and links to the event
//! before it; the last line of stdout says how many. Exit 1: the chain breaks; stderr
//! names the first event that does not hold (its id and time) and why. Exit 2: no file,
//! or not JSON.

use std::process::ExitCode;

const USAGE: &str = "usage: evidence-verify FILE   (a case's GET /v1/cases/{id}/evidence answer; - for stdin)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [path] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let text = if path == "-" {
        let mut s = String::new();
        match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            Ok(_) => s,
            Err(e) => return usage_error(&format!("reading stdin: {e}")),
        }
    } else {
        match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => return usage_error(&format!("reading {path}: {e}")),
        }
    };
    let export: serde_json::Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return usage_error(&format!("{path} is not JSON: {e}")),
    };
    match gateway_evidence::verify(&export) {
        Ok(v) => {
            let case = export.pointer("/case/caseSystemId").and_then(serde_json::Value::as_str).unwrap_or("?");
            println!(
                "evidence-verify: case {case}: {} events, one unbroken chain ({} erased, linked by their stored hash); head {}",
                v.events, v.erased, v.head
            );
            ExitCode::SUCCESS
        }
        Err(b) => {
            eprintln!("evidence-verify: BROKEN: {b}");
            ExitCode::from(1)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("evidence-verify: {message}\n{USAGE}");
    ExitCode::from(2)
}
