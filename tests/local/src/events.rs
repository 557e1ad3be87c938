//! The case events as a consumer gets them: a rule on the bus routes every event of the
//! gateway's source to a queue; this reads that queue and checks, for each case, that
//! every timeline event in the table arrived (once, or again under the same id), names
//! its case, kind, time and a version of its own, and is valid against its schema in
//! docs/events/.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gateway_cabital::CaseSystemId;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::show::error_chain;
use crate::{Failure, Result, ensure};

/// One event as it arrived, by its id.
#[derive(Debug, Clone)]
pub struct Arrived {
    /// The envelope's `detail-type`.
    pub detail_type: String,
    /// The envelope's `source`.
    pub source: String,
    /// The event's detail.
    pub detail: Value,
    /// How many copies came.
    pub copies: u32,
}

/// The consumer's queue and what has come through it so far.
pub struct Inbox {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    /// By `eventId`.
    pub arrived: HashMap<String, Arrived>,
    /// Messages that were not an event of the expected shape.
    pub malformed: Vec<String>,
}

impl Inbox {
    /// The queue at `queue_url`, in moto.
    pub fn new(sdk: &aws_config::SdkConfig, queue_url: &str) -> Inbox {
        Inbox {
            sqs: aws_sdk_sqs::Client::new(sdk),
            queue_url: queue_url.to_owned(),
            arrived: HashMap::new(),
            malformed: Vec::new(),
        }
    }

    /// Takes every message waiting (and deletes it): returns how many there were.
    pub async fn drain(&mut self) -> Result<usize> {
        let mut taken = 0;
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(0)
                .send()
                .await
                .map_err(|e| Failure(format!("reading the events queue: {}", error_chain(&e))))?;
            let messages = out.messages();
            if messages.is_empty() {
                return Ok(taken);
            }
            let mut done = Vec::new();
            for (i, m) in messages.iter().enumerate() {
                taken += 1;
                self.take(m.body().unwrap_or_default());
                if let Some(handle) = m.receipt_handle() {
                    let entry = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(handle)
                        .build()
                        .map_err(|e| Failure(e.to_string()))?;
                    done.push(entry);
                }
            }
            self.sqs
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(done))
                .send()
                .await
                .map_err(|e| Failure(format!("deleting from the events queue: {}", error_chain(&e))))?;
        }
    }

    fn take(&mut self, body: &str) {
        let envelope: Value = match serde_json::from_str(body) {
            Ok(v) => v,
            Err(_) => return self.malformed.push(body.chars().take(200).collect()),
        };
        let detail = envelope.get("detail").cloned().unwrap_or(Value::Null);
        let Some(id) = detail.get("eventId").and_then(Value::as_str).map(str::to_owned) else {
            return self.malformed.push(body.chars().take(200).collect());
        };
        let text = |key: &str| envelope.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
        let arrived = Arrived { detail_type: text("detail-type"), source: text("source"), detail, copies: 0 };
        let entry = self.arrived.entry(id).or_insert(arrived.clone());
        entry.copies += 1;
        if entry.detail != arrived.detail || entry.detail_type != arrived.detail_type {
            self.malformed.push(format!("two copies of {} differ", s(&arrived.detail, "eventId")));
        }
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The JSON Schemas of docs/events/, by detail type.
pub struct Schemas {
    by_type: HashMap<String, jsonschema::Validator>,
}

impl Schemas {
    /// Every `<DETAIL-TYPE>.schema.json` of `dir`.
    pub fn load(dir: &Path) -> Result<Schemas> {
        let mut by_type = HashMap::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("reading {}: {e}", dir.display()))?;
        for entry in entries {
            let path: PathBuf = entry.map_err(|e| e.to_string())?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            let Some(kind) = name.strip_suffix(".schema.json") else { continue };
            let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
            let schema: Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
            let validator = jsonschema::validator_for(&schema)
                .map_err(|e| format!("{}: not a valid schema: {e}", path.display()))?;
            by_type.insert(kind.to_owned(), validator);
        }
        ensure(!by_type.is_empty(), || format!("no *.schema.json in {}", dir.display()))?;
        Ok(Schemas { by_type })
    }

    /// Problems of `detail` against its type's schema (none: valid).
    pub fn problems(&self, detail_type: &str, detail: &Value) -> Vec<String> {
        match self.by_type.get(detail_type) {
            None => vec![format!("no schema for detail-type {detail_type} in docs/events/")],
            Some(v) => v.iter_errors(detail).map(|e| format!("{} at {}", e, e.instance_path())).collect(),
        }
    }
}

/// What one case's check found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Timeline events checked.
    pub events: usize,
    /// Of them, arrived more than once (same id).
    pub repeated: usize,
}

/// A timeline event as the table holds it.
pub struct Expected {
    /// Its key.
    pub event_id: String,
    /// Its kind.
    pub kind: String,
    /// When.
    pub at: OffsetDateTime,
}

/// Waits (up to `timeout`) until every event of `timelines` has arrived, then checks
/// each against its schema and its timeline entry. With `in_order`, sorting a case's
/// events by version must never go back in time (one writer at a time); without, the
/// versions must only be distinct (concurrent writers stamp their own clocks).
pub async fn check(
    inbox: &mut Inbox,
    schemas: &Schemas,
    source: &str,
    timelines: &[(CaseSystemId, Vec<Expected>)],
    in_order: bool,
    timeout: Duration,
) -> Result<Tally> {
    let deadline = Instant::now() + timeout;
    loop {
        inbox.drain().await?;
        let missing: Vec<&str> = timelines
            .iter()
            .flat_map(|(_, events)| events.iter())
            .filter(|e| !inbox.arrived.contains_key(&e.event_id))
            .map(|e| e.event_id.as_str())
            .collect();
        if missing.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            let shown: Vec<&str> = missing.iter().take(5).copied().collect();
            return Err(Failure(format!(
                "{} timeline event(s) never arrived on the bus within {} s (e.g. {shown:?})",
                missing.len(),
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ensure(inbox.malformed.is_empty(), || format!("messages that are no case event: {:?}", inbox.malformed))?;
    let mut tally = Tally::default();
    for (case, events) in timelines {
        let mut versions = Vec::new();
        let mut by_version = Vec::new();
        for e in events {
            let got = &inbox.arrived[&e.event_id];
            let d = &got.detail;
            let problems = schemas.problems(&got.detail_type, d);
            ensure(problems.is_empty(), || format!("{}: not valid against its schema: {problems:?}", e.event_id))?;
            ensure(got.source == source, || format!("{}: source {} (expected {source})", e.event_id, got.source))?;
            ensure(got.detail_type == e.kind && s(d, "kind") == e.kind, || {
                format!(
                    "{}: detail-type {} / kind {} for a {} event",
                    e.event_id,
                    got.detail_type,
                    s(d, "kind"),
                    e.kind
                )
            })?;
            ensure(s(d, "caseSystemId") == case.to_string(), || {
                format!("{}: names case {}", e.event_id, s(d, "caseSystemId"))
            })?;
            let at = OffsetDateTime::parse(s(d, "at"), &Rfc3339)
                .map_err(|_| format!("{}: at {}", e.event_id, s(d, "at")))?;
            ensure(at == e.at, || format!("{}: at {} but the timeline says {}", e.event_id, s(d, "at"), e.at))?;
            let version: u64 = s(d, "caseVersion").parse().map_err(|_| format!("{}: caseVersion", e.event_id))?;
            versions.push(version);
            by_version.push((version, e.at));
            tally.events += 1;
            tally.repeated += usize::from(got.copies > 1);
        }
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        sorted.dedup();
        ensure(sorted.len() == versions.len(), || format!("case {case}: two events name one version: {versions:?}"))?;
        if in_order {
            // Two events of one write share a time (a webhook that creates the case and
            // the link that follows it): the version orders them, the time must not
            // contradict it.
            by_version.sort_unstable();
            ensure(by_version.windows(2).all(|w| w[0].1 <= w[1].1), || {
                format!("case {case}: sorted by version, the events go back in time: {by_version:?}")
            })?;
        }
    }
    Ok(tally)
}

/// Every event id that arrived but is in none of `timelines`, among those naming one of
/// their cases: an event for something the table never kept.
pub fn phantoms(inbox: &Inbox, timelines: &[(CaseSystemId, Vec<Expected>)]) -> Vec<String> {
    let cases: std::collections::HashSet<String> = timelines.iter().map(|(c, _)| c.to_string()).collect();
    let known: std::collections::HashSet<&str> =
        timelines.iter().flat_map(|(_, events)| events.iter().map(|e| e.event_id.as_str())).collect();
    inbox
        .arrived
        .iter()
        .filter(|(id, a)| cases.contains(s(&a.detail, "caseSystemId")) && !known.contains(id.as_str()))
        .map(|(id, _)| id.clone())
        .collect()
}

/// A case's whole timeline from the table (oldest first).
pub async fn timeline(store: &gateway_store::Store, id: &CaseSystemId) -> Result<Vec<Expected>> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = store
            .timeline(id, gateway_store::TimelineOrder::Oldest, gateway_store::MAX_TIMELINE_PAGE, cursor.as_deref())
            .await
            .map_err(|e| Failure(format!("reading {id}'s timeline: {e}")))?;
        out.extend(page.events.iter().map(|e| Expected {
            event_id: e.event_id.clone(),
            kind: e.kind().as_str().to_owned(),
            at: e.at,
        }));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
}
