//! The reconciler, on an EventBridge schedule: settle every case that no webhook
//! settled, within the invocation's deadline, and report one summary line.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use gateway_runtime::metrics::{Unit, emit};
use gateway_service::{Gateway, InitError, ReconcileSettings, Settings, Summary};
use lambda_runtime::{Error, LambdaEvent};
use serde_json::Value;

/// What the handler needs, built once per cold start.
pub struct App {
    /// The gateway's rules.
    pub gateway: Gateway,
    /// The reconciler's settings.
    pub settings: ReconcileSettings,
}

impl App {
    /// Reads the settings and builds the clients; a bad setting or secret stops the cold start.
    pub async fn from_env() -> Result<Self, InitError> {
        let settings = Settings::from_env()?;
        Ok(App { gateway: Gateway::start(&settings).await?, settings: settings.reconcile })
    }
}

/// Below this a deadline cannot be wall-clock milliseconds (it would be before 2001).
/// `cargo lambda watch` sends a fixed `600000` (ten minutes, as if relative), which read
/// as a wall-clock time lies in 1970 and would leave no time at all.
const WALL_CLOCK_MS_FLOOR: u64 = 1_000_000_000_000;

/// Lambda's longest timeout: the most a deadline read as relative may give.
const LONGEST_INVOCATION: Duration = Duration::from_secs(15 * 60);

/// The invocation's deadline as an `Instant`. Lambda gives wall-clock milliseconds; a
/// value too small to be one (a local emulator's) is taken as milliseconds from now.
pub fn deadline_of(deadline_epoch_ms: u64) -> Instant {
    if deadline_epoch_ms < WALL_CLOCK_MS_FLOOR {
        return Instant::now() + Duration::from_millis(deadline_epoch_ms).min(LONGEST_INVOCATION);
    }
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Instant::now() + Duration::from_millis(deadline_epoch_ms.saturating_sub(now_ms))
}

/// The Lambda handler. Fails (so that the schedule's retry and DLQ see it) only when a
/// retry can help: the table could not be read, or every check failed retryably.
pub async fn handle(app: &App, event: LambdaEvent<EventBridgeEvent<Value>>) -> Result<Summary, Error> {
    let deadline = deadline_of(event.context.deadline);
    let result = app.gateway.reconcile(&app.settings, deadline).await;
    match result {
        Ok(summary) => {
            report(&summary);
            Ok(summary)
        }
        Err(e) => {
            tracing::error!(request_id = %event.context.request_id, error = %e, "reconcile failed");
            Err(e.into())
        }
    }
}

fn report(s: &Summary) {
    tracing::info!(
        found = s.found,
        checked = s.checked,
        changed = s.changed,
        unchanged = s.unchanged,
        failed = s.failed,
        failed_for_good = s.failed_for_good,
        skipped_for_time = s.skipped_for_time,
        marked_unknown = s.marked_unknown,
        resolved_unknown = s.resolved_unknown,
        unknown_needing_attention = s.unknown_needing_attention,
        no_suggestion_given_up = s.no_suggestion_given_up,
        backed_off = s.backed_off,
        due_not_checked = s.due_not_checked,
        capacity = s.capacity,
        duration_ms = s.duration_ms,
        "reconcile summary"
    );
    emit(&[("Function", "reconcile")], &metrics(s));
}

/// The run's metrics (EMF), from its summary.
fn metrics(s: &Summary) -> Vec<(&'static str, f64, Unit)> {
    let backlog = s.failed + s.skipped_for_time + s.unknown_needing_attention;
    vec![
        ("ReconcileChecked", s.checked as f64, Unit::Count),
        ("ReconcileChanged", s.changed as f64, Unit::Count),
        ("ReconcileFailed", s.failed as f64, Unit::Count),
        ("ReconcileSkippedForTime", s.skipped_for_time as f64, Unit::Count),
        ("ReconcileUnknownNeedingAttention", s.unknown_needing_attention as f64, Unit::Count),
        // Each case is counted in the one run that gives it up: the alarm fires once.
        ("ReconcileNoSuggestionGivenUp", s.no_suggestion_given_up as f64, Unit::Count),
        ("ReconcileBacklog", backlog as f64, Unit::Count),
        ("ReconcileBackedOff", s.backed_off as f64, Unit::Count),
        // Items a retry cannot settle, each reported each time its backoff ends
        // (at least daily): a person must look (alarmed).
        ("ReconcileStuck", (s.failed_for_good + s.unknown_needing_attention) as f64, Unit::Count),
        // Items due and not settled when the run ended: run after run above zero,
        // the schedule, rate or batch does not keep up (alarmed).
        ("ReconcileDueNotChecked", s.due_not_checked as f64, Unit::Count),
        ("ReconcileDuration", s.duration_ms as f64, Unit::Milliseconds),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_run_left_and_what_is_stuck_are_metrics() {
        let summary = Summary {
            failed: 3,
            failed_for_good: 1,
            unknown_needing_attention: 2,
            backed_off: 3,
            due_not_checked: 7,
            ..Summary::default()
        };
        let metrics = metrics(&summary);
        let value = |name: &str| metrics.iter().find(|(n, _, _)| *n == name).map(|(_, v, _)| *v);
        assert_eq!(value("ReconcileDueNotChecked"), Some(7.0));
        assert_eq!(value("ReconcileStuck"), Some(3.0));
        assert_eq!(value("ReconcileBackedOff"), Some(3.0));
    }

    #[test]
    fn deadline_from_wall_clock_or_from_a_local_emulator() {
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let left = |d: Instant| d.saturating_duration_since(Instant::now());
        // Lambda: wall-clock milliseconds.
        let lambda = left(deadline_of(now_ms + 60_000));
        assert!(lambda > Duration::from_secs(55) && lambda <= Duration::from_secs(60), "{lambda:?}");
        assert_eq!(left(deadline_of(now_ms - 1_000)), Duration::ZERO);
        // `cargo lambda watch`: a fixed 600000, meaning ten minutes.
        let local = left(deadline_of(600_000));
        assert!(local > Duration::from_secs(595) && local <= Duration::from_secs(600), "{local:?}");
        assert!(left(deadline_of(WALL_CLOCK_MS_FLOOR - 1)) <= LONGEST_INVOCATION);
    }
}
