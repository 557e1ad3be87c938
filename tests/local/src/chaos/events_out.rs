//! Events out under the chaos: at the end, every timeline event of every case of the run
//! is on the consumer's queue (through the stream, the pipe stand-in, the bus and its
//! rule), valid against its schema, with a version of its own; no event names a
//! timeline entry the table does not hold; every case's chain verifies; and every item
//! of every case carries its retention (`crate::retention`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use gateway_cabital::CaseSystemId;
use serde_json::Value;

use super::{Chaos, lock};
use crate::events::{self, Inbox, Schemas};
use crate::show::{note, ok};
use crate::{Failure, Result, aws};

/// Where the run's events go, from `--events-queue` and `--template`.
#[derive(Debug, Clone)]
pub(super) struct EventsOut {
    pub(super) queue: String,
    pub(super) template: PathBuf,
}

/// What the check found (for the figures and the verdict).
#[derive(Debug, Default, Clone)]
pub(super) struct EventsRecord {
    pub(super) checked: Option<String>,
    pub(super) violations: Vec<String>,
}

impl Chaos {
    /// Checks every case of the run; a failure is recorded as a violation.
    pub(super) async fn check_events_out(&self) {
        let Some(out) = &self.events_out else {
            note("(skipped: no --events-queue)");
            return;
        };
        match self.events_out_of(out).await {
            Ok(line) => {
                ok(&line);
                lock(&self.events_record).checked = Some(line);
            }
            Err(Failure(e)) => {
                println!("   VIOLATION: {e}");
                lock(&self.events_record).violations.push(format!("events out: {e}"));
            }
        }
    }

    async fn events_out_of(&self, out: &EventsOut) -> Result<String> {
        let started = Instant::now();
        let source = crate::pipe::PipeSpec::from_template(&out.template)?.source;
        let root = out.template.parent().and_then(std::path::Path::parent).unwrap_or(std::path::Path::new("."));
        let schemas = Schemas::load(&root.join("docs/events"))?;
        let sdk = aws::config().await?;
        let url = crate::setup::queue_url(&sdk, &out.queue).await?;
        let mut inbox = Inbox::new(&sdk, &url);

        let prefix = format!("chaos-{}-", self.run);
        let cases = self.stack.sandbox_get("/_sandbox/cases").await?;
        let mut timelines = Vec::new();
        for state in cases.as_array().into_iter().flatten() {
            let case = state.get("case").cloned().unwrap_or(Value::Null);
            let ext = case.get("externalCaseId").and_then(Value::as_str).unwrap_or_default();
            if !ext.starts_with(&prefix) {
                continue;
            }
            let Some(id) =
                case.get("caseSystemId").and_then(Value::as_str).and_then(|s| s.parse::<CaseSystemId>().ok())
            else {
                continue;
            };
            timelines.push((id, events::timeline(&self.store, &id).await?));
        }
        let total: usize = timelines.iter().map(|(_, t)| t.len()).sum();
        // As many cases as the run created, each with its CREATED event at least: a check
        // over nothing passes nothing.
        let created = self.created_count.load(std::sync::atomic::Ordering::SeqCst);
        crate::ensure(timelines.len() >= created && timelines.iter().all(|(_, t)| !t.is_empty()), || {
            format!("{} of the run's {created} cases found at the sandbox with a timeline here", timelines.len())
        })?;
        let tally = events::check(&mut inbox, &schemas, &source, &timelines, false, Duration::from_secs(120)).await?;
        // Every case's chain, as its evidence export (GET /v1/cases/{id}/evidence) shows
        // it, verifies: concurrent writers made one chain per case.
        let (mut linked, mut kept) = (0, 0);
        for (id, _) in &timelines {
            // Every item of the case carries the TTL, none earlier than the case's bound.
            kept += crate::retention::check(&self.store, id, self.retention).await?.items;
            let path = format!("/v1/cases/{id}/evidence");
            let export =
                self.stack.api_call(reqwest::Method::GET, &path, None).await?.expect(200, "the evidence export")?;
            let verified = gateway_evidence::verify(&export).map_err(|b| Failure(format!("case {id}: {b}")))?;
            linked += verified.events;
        }
        crate::ensure(linked == total, || format!("the evidence exports hold {linked} events, the timelines {total}"))?;
        let phantoms = events::phantoms(&inbox, &timelines);
        crate::ensure(phantoms.is_empty(), || {
            format!(
                "{} event(s) on the bus name no timeline entry, e.g. {:?}",
                phantoms.len(),
                &phantoms[..phantoms.len().min(3)]
            )
        })?;
        Ok(format!(
            "{} cases, {total} timeline events: each on the bus ({} more than once, same id), valid against docs/events/, one version each; 0 events without a timeline entry; every case's evidence export verifies, one chain each; every case kept RETENTION_DAYS={} after its last write, its {kept} items none earlier ({:.1} s)",
            timelines.len(),
            tally.repeated,
            self.retention.as_days(),
            started.elapsed().as_secs_f64()
        ))
    }
}
