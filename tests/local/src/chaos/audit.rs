//! The log audit: the functions' log holds no secret and no personal data, and the
//! webhook answered "not stored" within what Cabital waits.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use super::faults::SANDBOX_WEBHOOK_TIMEOUT;
use super::{Chaos, Personal, lock};
use crate::show::field;
use crate::{Failure, Result};

impl Chaos {
    // ------------------------------------------------------------ the log audit

    pub(super) fn audit_log(&self) -> Result<Audit> {
        let bytes = std::fs::read(&self.log_file)
            .map_err(|e| Failure(format!("reading the functions' log {}: {e}", self.log_file.display())))?;
        let text = String::from_utf8_lossy(&bytes);
        let mut audit = Audit { lines: text.lines().count() as u64, ..Audit::default() };
        // The credentials, whole (a few needles: a plain search each).
        let credentials = lock(&self.all_credentials).clone();
        for (i, c) in credentials.iter().enumerate() {
            let when = if i == 0 { "in force at the start" } else { "rotated in" };
            for (what, value, total) in
                [("API secret", &c.secret, &mut audit.secret), ("API key", &c.key, &mut audit.key)]
            {
                let n = if value.is_empty() { 0 } else { text.matches(value.as_str()).count() as u64 };
                *total += n;
                if n > 0 {
                    audit
                        .violations
                        .push(format!("the {what} {when} appears {n} time(s) in the functions' log (value not shown)"));
                }
            }
        }
        // Personal data: every word of the log (and every date-like run) looked up
        // among the distinctive parts of what was sent.
        let sent = lock(&self.sent);
        let mut hits: BTreeMap<Personal, (u64, HashSet<&str>)> = BTreeMap::new();
        let words = text.split(|c: char| !c.is_ascii_alphanumeric());
        let dates = text.split(|c: char| !(c.is_ascii_digit() || c == '-'));
        for token in words.chain(dates).filter(|t| t.len() >= 8) {
            let token = token.to_lowercase();
            if let Some((needle, kind)) = sent.needles.get_key_value(token.as_str()) {
                let entry = hits.entry(*kind).or_default();
                entry.0 += 1;
                entry.1.insert(needle.as_str());
            }
        }
        for (kind, (n, distinct)) in &hits {
            match kind {
                Personal::FullName => audit.names = *n,
                Personal::DateOfBirth => audit.dobs = *n,
                Personal::Comment => audit.comments = *n,
            }
            audit.violations.push(format!(
                "{} distinct part(s) of the {}s sent appear in the functions' log ({n} occurrence(s))",
                distinct.len(),
                kind.label()
            ));
        }
        // The webhook's own time to answer "not stored" (5xx), from its log: within
        // what Cabital waits, or its retries would count timeouts, not refusals.
        for line in text.lines().filter(|l| l.contains("\"webhook refused\"")) {
            let Ok(entry) = serde_json::from_str::<Value>(line) else { continue };
            if entry.get("status").and_then(Value::as_u64).is_some_and(|s| s >= 500) {
                let ms = entry.get("latency_ms").and_then(Value::as_u64).unwrap_or(0);
                audit.not_stored += 1;
                audit.slowest_not_stored_ms = audit.slowest_not_stored_ms.max(ms);
            }
        }
        if audit.slowest_not_stored_ms >= SANDBOX_WEBHOOK_TIMEOUT.as_millis() as u64 {
            audit.violations.push(format!(
                "the webhook took {} ms of its own time to answer 5xx: longer than Cabital waits",
                audit.slowest_not_stored_ms
            ));
        }
        let sent_values: u64 = sent.values.values().sum();
        audit.searched = credentials.len() as u64 * 2 + sent_values;
        field("log", format!("{} ({} lines, {} bytes)", self.log_file.display(), audit.lines, bytes.len()));
        let per_kind: Vec<String> = sent.values.iter().map(|(k, n)| format!("{n} {}s", k.label())).collect();
        field(
            "searched for",
            format!(
                "{} values: {} API secrets and keys (old and new), {}",
                audit.searched,
                credentials.len() * 2,
                per_kind.join(", ")
            ),
        );
        field(
            "found",
            format!(
                "secret {}, key {}, names {}, dates of birth {}, comments {}",
                audit.secret, audit.key, audit.names, audit.dobs, audit.comments
            ),
        );
        Ok(audit)
    }
}

#[derive(Default)]
pub(super) struct Audit {
    pub(super) lines: u64,
    pub(super) searched: u64,
    pub(super) secret: u64,
    pub(super) key: u64,
    pub(super) names: u64,
    pub(super) dobs: u64,
    pub(super) comments: u64,
    /// Deliveries the webhook answered 5xx (not stored), and the slowest's own time.
    pub(super) not_stored: u64,
    pub(super) slowest_not_stored_ms: u64,
    pub(super) violations: Vec<String>,
}
