//! The tamper-evident chain of a case's timeline (docs/evidence.md).
//!
//! Each event's content (a JSON object: the event's id, case, time, kind, source, the
//! case's version and what it records, never a counter that changes later) is written in
//! its canonical form ([`canonical`]: object keys sorted by their UTF-8 bytes, no
//! whitespace, strings and numbers as JSON writes them) and hashed:
//! `contentSha256 = SHA-256(canonical content)`. The event's link is
//! `hash = SHA-256(prevHash ‖ contentSha256)`, over the two lowercase hex strings as
//! ASCII, where `prevHash` is the previous event's `hash` ([`GENESIS`] for the first).
//! The event is written with the case's conditional version, so concurrent writers
//! still make one chain. A link hashes the content's hash, not the content: erasing
//! personal data from an event keeps its `contentSha256`, and the chain still verifies.
//!
//! [`verify`] checks an evidence export offline and names the first event that breaks.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// The `prevHash` of a case's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical form of a JSON value: object keys sorted (by their UTF-8 bytes), no
/// whitespace, everything else as `serde_json` writes it.
pub fn canonical(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `SHA-256(canonical(content))`.
pub fn content_sha256(content: &Value) -> String {
    sha256_hex(canonical(content).as_bytes())
}

/// `SHA-256(prev_hash ‖ content_sha256)`, the two hex strings as ASCII.
pub fn link(prev_hash: &str, content_sha256: &str) -> String {
    sha256_hex(format!("{prev_hash}{content_sha256}").as_bytes())
}

/// Where a chain breaks: the event (its id and time) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the chain breaks at event {event_id} ({at}): {problem}")]
pub struct Break {
    /// The event's id (`eventId`), or `-` for the document itself.
    pub event_id: String,
    /// Its time (`at`).
    pub at: String,
    /// What does not hold.
    pub problem: String,
}

/// What a verified export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Events checked.
    pub events: usize,
    /// Of them, erased: their content was not re-hashed (its stored hash links them).
    pub erased: usize,
    /// The last event's hash.
    pub head: String,
}

/// Checks an evidence export (`GET /v1/cases/{id}/evidence`): its events in chain order,
/// each `contentSha256` the hash of its content (unless the event is marked `erased`),
/// each `prevHash` the previous `hash` ([`GENESIS`] first), each `hash` its link, the
/// case's versions rising, and `chain.head` the last hash.
pub fn verify(export: &Value) -> Result<Verified, Break> {
    let doc = |problem: String| Break { event_id: "-".into(), at: "-".into(), problem };
    let events = export
        .get("events")
        .and_then(Value::as_array)
        .ok_or_else(|| doc("no `events` array: not an evidence export".into()))?;
    let mut prev = GENESIS.to_owned();
    let mut last_version: Option<u64> = None;
    let mut erased = 0;
    for e in events {
        let text = |key: &str| e.get(key).and_then(Value::as_str).unwrap_or("");
        let fail = |problem: String| Break { event_id: text("eventId").to_owned(), at: text("at").to_owned(), problem };
        let version = e.get("caseVersion").and_then(Value::as_u64).ok_or_else(|| fail("no caseVersion".into()))?;
        if last_version.is_some_and(|v| version <= v) {
            return Err(fail(format!("caseVersion {version} does not follow {}", last_version.unwrap_or(0))));
        }
        last_version = Some(version);
        if text("prevHash") != prev {
            return Err(fail(format!("prevHash {} is not the previous event's hash {prev}", text("prevHash"))));
        }
        let stored = text("contentSha256");
        if e.get("erased").and_then(Value::as_bool) == Some(true) {
            erased += 1;
        } else {
            let content = e.get("content").ok_or_else(|| fail("no content".into()))?;
            let actual = content_sha256(content);
            if actual != stored {
                return Err(fail(format!("its content hashes to {actual}, not its contentSha256 {stored}: edited")));
            }
        }
        let expected = link(&prev, stored);
        if text("hash") != expected {
            return Err(fail(format!("hash {} is not SHA-256(prevHash ‖ contentSha256) {expected}", text("hash"))));
        }
        prev = expected;
    }
    let head = export.pointer("/chain/head").and_then(Value::as_str).unwrap_or("");
    if !events.is_empty() && head != prev {
        return Err(doc(format!("chain.head {head} is not the last event's hash {prev}: events missing at the end")));
    }
    Ok(Verified { events: events.len(), erased, head: prev })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn export(contents: &[Value]) -> Value {
        let mut prev = GENESIS.to_owned();
        let mut events = Vec::new();
        for (i, c) in contents.iter().enumerate() {
            let content_hash = content_sha256(c);
            let hash = link(&prev, &content_hash);
            events.push(json!({
                "eventId": format!("EVENT#{i}"), "at": format!("t{i}"), "caseVersion": i + 1,
                "prevHash": prev, "contentSha256": content_hash, "hash": hash, "content": c,
            }));
            prev = hash;
        }
        json!({"chain": {"head": prev}, "events": events})
    }

    #[test]
    fn the_canonical_form_sorts_keys_and_drops_whitespace() {
        let v: Value = serde_json::from_str(r#"{ "b": [1, {"z": "é\n", "a": null}], "a": true }"#).unwrap();
        assert_eq!(canonical(&v), r#"{"a":true,"b":[1,{"a":null,"z":"é\n"}]}"#);
        assert_eq!(content_sha256(&v), sha256_hex(canonical(&v).as_bytes()));
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn an_intact_export_verifies() {
        let e = export(&[json!({"kind": "CREATED"}), json!({"kind": "DECISION", "decision": "ACCEPT"})]);
        let v = verify(&e).unwrap();
        assert_eq!((v.events, v.erased), (2, 0));
    }

    #[test]
    fn every_kind_of_tampering_names_its_event() {
        let good = export(&[json!({"k": 1}), json!({"k": 2}), json!({"k": 3})]);
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut e = good.clone();
            edit(&mut e);
            verify(&e).unwrap_err()
        };
        let b = broken(&|e| e["events"][1]["content"]["k"] = json!(20));
        assert_eq!((b.event_id.as_str(), b.at.as_str()), ("EVENT#1", "t1"));
        assert!(b.problem.contains("edited"), "{b}");
        let b = broken(&|e| {
            e["events"].as_array_mut().unwrap().remove(1);
        });
        assert_eq!(b.event_id, "EVENT#2", "a removed event breaks the next link: {b}");
        let b = broken(&|e| e["events"].as_array_mut().unwrap().swap(0, 1));
        assert_eq!(b.event_id, "EVENT#1", "reordered: the first does not start the chain: {b}");
        let b = broken(&|e| {
            e["events"].as_array_mut().unwrap().pop();
        });
        assert_eq!(b.event_id, "-", "a dropped last event is caught by the head: {b}");
        // Re-hashing an edited content without re-linking is caught at the link.
        let b = broken(&|e| {
            e["events"][1]["content"]["k"] = json!(20);
            e["events"][1]["contentSha256"] = json!(content_sha256(&json!({"k": 20})));
        });
        assert_eq!(b.event_id, "EVENT#1");
        // An erased event keeps its link without its content.
        let mut erased = good.clone();
        erased["events"][1]["content"] = json!({"k": "[erased]"});
        erased["events"][1]["erased"] = json!(true);
        assert_eq!(verify(&erased).unwrap().erased, 1);
    }
}
