//! The reconciler, on an EventBridge schedule: settle every case that no webhook
//! settled, within the invocation's deadline, and report one summary line.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lambda_events::eventbridge::EventBridgeEvent;
use gateway_runtime::metrics::{Unit, emit};
use kyc_service::{Gateway, ReconcileSettings, Summary};
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
    /// Reads the settings and builds the clients; a bad setting stops the cold start.
    pub async fn from_env() -> Result<Self, Error> {
        let settings = ReconcileSettings::from_env()?;
        Ok(App { gateway: Gateway::from_env().await?, settings })
    }
}

/// The invocation's deadline as an `Instant` (the context gives wall-clock milliseconds).
pub fn deadline_of(deadline_epoch_ms: u64) -> Instant {
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
        skipped_for_time = s.skipped_for_time,
        marked_unknown = s.marked_unknown,
        resolved_unknown = s.resolved_unknown,
        unknown_needing_attention = s.unknown_needing_attention,
        duration_ms = s.duration_ms,
        "reconcile summary"
    );
    let backlog = s.failed + s.skipped_for_time + s.unknown_needing_attention;
    emit(
        &[("Function", "reconcile")],
        &[
            ("ReconcileChecked", s.checked as f64, Unit::Count),
            ("ReconcileChanged", s.changed as f64, Unit::Count),
            ("ReconcileFailed", s.failed as f64, Unit::Count),
            ("ReconcileSkippedForTime", s.skipped_for_time as f64, Unit::Count),
            ("ReconcileUnknownNeedingAttention", s.unknown_needing_attention as f64, Unit::Count),
            ("ReconcileBacklog", backlog as f64, Unit::Count),
            ("ReconcileDuration", s.duration_ms as f64, Unit::Milliseconds),
        ],
    );
}
