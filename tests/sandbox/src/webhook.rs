//! Suggestions and the webhooks they cause.
//!
//! A suggestion change with `notify` makes one notification (one body); the
//! notification goes out as one delivery plus `duplicate_webhooks` copies, each of which
//! the drop fault may swallow whole. A delivery is attempted up to five times: once
//! after `webhook_delay_ms` (plus a random delay when reordering), then after 5 min,
//! 1 h, 5 h and 18 h, each multiplied by `time_factor`, until a 2xx comes back (or
//! until a 2xx that the lost-ack fault does not swallow). Each attempt is signed with
//! the API secret, a separate webhook credential, or not at all; a retry is signed anew
//! or carries its first attempt's headers ([`RetryHeaders`]).

use std::sync::Arc;
use std::time::Duration;

use rand::Rng as _;
use serde::Serialize;
use tracing::{info, warn};
use uuid::Uuid;

use crate::auth::{self, HEADER_KEY, HEADER_SIGN, HEADER_TIMESTAMP};
use crate::config::{Credential, RetryHeaders, WebhookSigning};
use crate::model::{CaseState, DeliveryAttempt, NotificationRecord, Suggestion, SuggestionRecord, SuggestionSource};
use crate::screening;
use crate::state::{Shared, offset_now, rfc3339, unix_seconds};

/// Attempts per delivery: the first and four retries.
pub const MAX_ATTEMPTS: u32 = 5;

/// The published retry schedule, before `time_factor`: 5 min, 1 h, 5 h, 18 h after
/// the previous failed attempt.
pub const RETRY_DELAYS_SECS: [u64; 4] = [5 * 60, 60 * 60, 5 * 60 * 60, 18 * 60 * 60];

/// The webhook body, fields in the provider's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct WebhookBody<'a> {
    case_system_id: Uuid,
    case_suggestion: Suggestion,
    comment: &'a str,
    external_case_id: &'a str,
}

/// One delivery to make.
struct Delivery {
    notification_id: u64,
    copy: u32,
    case_system_id: Uuid,
    body: Arc<Vec<u8>>,
    first_delay: Duration,
}

/// Applies the initial screening of a case, unless a suggestion was set meanwhile.
pub(crate) fn apply_screening(shared: &Arc<Shared>, id: Uuid) {
    let full_name = {
        let mut state = shared.lock();
        let Some(case) = state.cases.get_mut(&id) else {
            return;
        };
        case.screening_pending = false;
        if case.suggestion.is_some() {
            return;
        }
        case.full_name.clone()
    };
    let outcome = screening::screen(&full_name);
    set_suggestion(shared, id, outcome.suggestion, outcome.comment, SuggestionSource::Screening, true);
}

/// Sets a case's suggestion and, with `notify`, schedules its webhook. `None` for an
/// unknown case.
pub(crate) fn set_suggestion(
    shared: &Arc<Shared>,
    id: Uuid,
    suggestion: Suggestion,
    comment: String,
    source: SuggestionSource,
    notify: bool,
) -> Option<CaseState> {
    let mut deliveries = Vec::new();
    let case_state = {
        let mut guard = shared.lock();
        let state = &mut *guard;
        let now = state.now();
        let faults = state.faults.clone();
        let has_url = state.webhook_url.is_some();
        let case = state.cases.get_mut(&id)?;
        case.suggestion = Some(suggestion);
        case.suggestion_comment = Some(comment.clone());
        case.suggestion_history.push(SuggestionRecord {
            suggestion,
            comment: comment.clone(),
            source,
            notify,
            at: rfc3339(now),
        });
        info!(case_system_id = %id, suggestion = suggestion.as_wire(), ?source, notify, "suggestion set");

        if notify && has_url {
            let notification_id = state.next_notification_id;
            state.next_notification_id += 1;
            let body = WebhookBody {
                case_system_id: id,
                case_suggestion: suggestion,
                comment: &comment,
                external_case_id: &case.external_case_id,
            };
            // ok: a struct of strings, a UUID and an enum always serialises.
            let body = Arc::new(serde_json::to_vec(&body).expect("webhook body serialises"));
            let mut dropped = 0;
            for copy in 0..=faults.duplicate_webhooks {
                if state.rng.random::<f64>() < faults.drop_webhook_rate {
                    dropped += 1;
                    continue;
                }
                let extra =
                    if faults.reorder_webhooks { state.rng.random_range(0..=faults.reorder_window_ms) } else { 0 };
                deliveries.push(Delivery {
                    notification_id,
                    copy,
                    case_system_id: id,
                    body: Arc::clone(&body),
                    first_delay: Duration::from_millis(shared.config.webhook_delay_ms.saturating_add(extra)),
                });
            }
            case.notifications.push(NotificationRecord {
                notification_id,
                body: String::from_utf8_lossy(&body).into_owned(),
                deliveries: faults.duplicate_webhooks + 1,
                dropped,
                scheduled_at: rfc3339(now),
            });
            state.stats.webhook_notifications += 1;
            state.stats.webhook_deliveries_dropped += u64::from(dropped);
            if dropped > 0 {
                info!(case_system_id = %id, notification_id, dropped, "webhook deliveries dropped by fault");
            }
        }
        case.full_state()
    };
    for delivery in deliveries {
        let task_shared = Arc::clone(shared);
        shared.spawn(deliver(task_shared, delivery));
    }
    Some(case_state)
}

/// The wait before retry `n` (1-based), scaled.
fn retry_delay(retry: usize, time_factor: f64) -> Duration {
    let base = RETRY_DELAYS_SECS.get(retry.saturating_sub(1)).copied().unwrap_or(0);
    Duration::try_from_secs_f64(base as f64 * time_factor).unwrap_or(Duration::MAX)
}

async fn deliver(shared: Arc<Shared>, delivery: Delivery) {
    tokio::time::sleep(delivery.first_delay).await;
    let mut first: Option<First> = None;
    for attempt in 1..=MAX_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(retry_delay(attempt as usize - 1, shared.config.time_factor)).await;
        }
        let success = attempt_once(&shared, &delivery, attempt, &mut first).await;
        if success {
            return;
        }
    }
    warn!(case_system_id = %delivery.case_system_id, notification_id = delivery.notification_id, copy = delivery.copy, "webhook delivery gave up");
}

/// The first attempt of a delivery: when, on the sandbox's clock and on a monotonic one.
struct First {
    unix: i64,
    at: std::time::Instant,
    /// What signed the first attempt: a retry under its first headers carries its
    /// signature, whatever was rotated since.
    credential: Option<Credential>,
}

/// The `ACCESS-*` headers of one attempt, or none when webhooks are unsigned.
fn attempt_headers(
    shared: &Arc<Shared>,
    credential: Option<&Credential>,
    timestamp: i64,
    request_path: &str,
    body: &[u8],
) -> Result<Option<(String, String, String)>, String> {
    let credential = match &shared.config.webhook_signing {
        WebhookSigning::Unsigned => return Ok(None),
        WebhookSigning::Separate(_) | WebhookSigning::ApiSecret => {
            credential.ok_or_else(|| "no credentials to sign with".to_owned())?
        }
    };
    let timestamp = timestamp.to_string();
    let signature =
        auth::sign(&credential.api_secret, &timestamp, "POST", request_path, body, shared.config.signature_encoding);
    Ok(Some((credential.api_key.clone(), timestamp, signature)))
}

/// One POST, recorded. The URL and credentials are read at attempt time, so a change
/// through the control API applies to pending retries.
async fn attempt_once(shared: &Arc<Shared>, delivery: &Delivery, attempt: u32, first: &mut Option<First>) -> bool {
    let (url, credential, offset, lost_ack_rate) = {
        let state = shared.lock();
        let signing = match &shared.config.webhook_signing {
            WebhookSigning::Separate(_) => state.webhook_credential.clone(),
            _ => state.credentials.first().cloned(),
        };
        (state.webhook_url.clone(), signing, state.faults.clock_offset_secs, state.faults.webhook_lost_ack_rate)
    };
    let now = offset_now(offset);
    let first = first.get_or_insert_with(|| First {
        unix: unix_seconds(now),
        at: std::time::Instant::now(),
        credential: credential.clone(),
    });
    // A retry under its first attempt's headers carries that attempt's timestamp; in the
    // sandbox's scaled time, the schedule's delays (not the real ones) have passed since.
    let original = attempt > 1 && shared.config.retry_headers == RetryHeaders::Original;
    let timestamp = if original {
        let scaled = first.at.elapsed().as_secs_f64() / shared.config.time_factor;
        unix_seconds(now).saturating_sub(scaled.round() as i64).min(first.unix)
    } else {
        unix_seconds(now)
    };
    let mut signed = if original { "original" } else { "fresh" };
    let mut sent_timestamp = None;
    let outcome: Result<u16, String> = match &url {
        None => Err("no webhook URL configured".to_owned()),
        Some(url) => {
            let request_path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            let signer = if original { first.credential.as_ref() } else { credential.as_ref() };
            match attempt_headers(shared, signer, timestamp, &request_path, &delivery.body) {
                Err(e) => Err(e),
                Ok(headers) => {
                    let mut request = shared
                        .http
                        .post(url.clone())
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(delivery.body.as_ref().clone());
                    match headers {
                        Some((key, ts, signature)) => {
                            sent_timestamp = Some(timestamp);
                            request = request
                                .header(HEADER_KEY, key)
                                .header(HEADER_TIMESTAMP, ts)
                                .header(HEADER_SIGN, signature);
                        }
                        None => signed = "unsigned",
                    }
                    request.send().await.map(|response| response.status().as_u16()).map_err(|e| error_chain(&e))
                }
            }
        }
    };
    let answered_2xx = matches!(outcome, Ok(status) if (200..300).contains(&status));
    let ack_lost = answered_2xx && lost_ack_rate > 0.0 && shared.lock().rng.random::<f64>() < lost_ack_rate;
    info!(
        case_system_id = %delivery.case_system_id,
        notification_id = delivery.notification_id,
        copy = delivery.copy,
        attempt,
        signed,
        status = outcome.as_ref().ok(),
        error = outcome.as_ref().err(),
        ack_lost,
        "webhook attempt"
    );
    let mut state = shared.lock();
    state.stats.webhook_attempts += 1;
    if answered_2xx {
        state.stats.webhook_successes += 1;
    }
    if ack_lost {
        state.stats.webhook_acks_lost += 1;
    }
    state.deliveries.push(DeliveryAttempt {
        notification_id: delivery.notification_id,
        copy: delivery.copy,
        case_system_id: delivery.case_system_id,
        attempt,
        url: url.map(|u| u.to_string()).unwrap_or_default(),
        body: String::from_utf8_lossy(&delivery.body).into_owned(),
        status_code: outcome.as_ref().ok().copied(),
        error: outcome.err(),
        success: answered_2xx,
        ack_lost,
        signed: signed.to_owned(),
        access_timestamp: sent_timestamp,
        at: rfc3339(now),
    });
    answered_2xx && !ack_lost
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The comment the control API uses when none is given.
pub(crate) fn default_comment(suggestion: Suggestion) -> String {
    screening::default_comment(suggestion)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_scales() {
        assert_eq!(retry_delay(1, 1.0), Duration::from_secs(300));
        assert_eq!(retry_delay(4, 1.0), Duration::from_secs(64_800));
        assert_eq!(retry_delay(1, 0.0001), Duration::from_millis(30));
        assert_eq!(retry_delay(2, 0.0001), Duration::from_millis(360));
    }
}
