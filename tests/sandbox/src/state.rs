//! The sandbox's state: cases, settings, counters, the random generator, the clock, and
//! the background tasks (delayed screenings, webhook deliveries).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::SeedableRng as _;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::task::JoinSet;
use url::Url;
use uuid::Uuid;

use crate::config::{Credential, Faults, SandboxConfig};
use crate::model::{
    CaseResult, CaseState, CaseView, DecisionRecord, DeliveryAttempt, NotificationRecord, ScreenType, Suggestion,
    SuggestionRecord,
};

/// Counters, as `GET /_sandbox/stats` returns them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// The random generator's seed (give it back as `seed` to repeat a run).
    pub seed: u64,
    /// API requests per endpoint (`"POST /api/v1/cases"`, ..., `"other"`), counted on
    /// arrival, whatever their outcome.
    pub requests: BTreeMap<String, u64>,
    /// API responses per status code.
    pub responses: BTreeMap<u16, u64>,
    /// Cases created.
    pub creates: u64,
    /// Requests refused with 401.
    pub unauthorized: u64,
    /// Requests refused with 429.
    pub rate_limited: u64,
    /// Injected 500s.
    #[serde(rename = "injected500")]
    pub injected_500: u64,
    /// Injected 503s.
    #[serde(rename = "injected503")]
    pub injected_503: u64,
    /// Webhook notifications scheduled (one per suggestion change with `notify`).
    pub webhook_notifications: u64,
    /// Webhook deliveries swallowed by the drop fault.
    pub webhook_deliveries_dropped: u64,
    /// Webhook attempts made.
    pub webhook_attempts: u64,
    /// Webhook attempts answered with a 2xx.
    pub webhook_successes: u64,
    /// Of those, the ones the lost-ack fault turned into a retry.
    pub webhook_acks_lost: u64,
}

/// A case and everything that happened to it.
#[derive(Debug, Clone)]
pub(crate) struct CaseRecord {
    pub case_system_id: Uuid,
    pub created_at: SystemTime,
    pub external_case_id: String,
    pub screen_type: ScreenType,
    pub full_name: String,
    pub individual_info: Value,
    pub organization_info: Value,
    pub suggestion: Option<Suggestion>,
    pub suggestion_comment: Option<String>,
    pub decision: Option<CaseResult>,
    pub decision_comment: Option<String>,
    pub ogs: bool,
    pub screening_pending: bool,
    pub suggestion_history: Vec<SuggestionRecord>,
    pub decision_history: Vec<DecisionRecord>,
    pub notifications: Vec<NotificationRecord>,
}

impl CaseRecord {
    pub(crate) fn view(&self) -> CaseView {
        CaseView {
            case_system_id: self.case_system_id,
            external_case_id: self.external_case_id.clone(),
            screen_type: self.screen_type,
            full_name: self.full_name.clone(),
            individual_info: self.individual_info.clone(),
            organization_info: self.organization_info.clone(),
            suggestion: self.suggestion,
            suggestion_comment: self.suggestion_comment.clone(),
            decision: self.decision,
            decision_comment: self.decision_comment.clone(),
            ogs: self.ogs,
        }
    }

    pub(crate) fn full_state(&self) -> CaseState {
        CaseState {
            case: self.view(),
            created_at: rfc3339(self.created_at),
            screening_pending: self.screening_pending,
            suggestion_history: self.suggestion_history.clone(),
            decision_history: self.decision_history.clone(),
            notifications: self.notifications.clone(),
        }
    }
}

/// A token bucket: `rate` tokens per second, holding at most `max(rate, 1)`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    rate: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(rate: f64) -> Self {
        Self { rate, tokens: rate.max(1.0), last: Instant::now() }
    }

    /// Takes a token, or says in how many whole seconds (at least 1) one will be there.
    /// A rate of 0 never limits. A new rate refills the bucket.
    pub(crate) fn try_take(&mut self, rate: f64) -> Result<(), u64> {
        if rate <= 0.0 {
            return Ok(());
        }
        if rate != self.rate {
            *self = Self::new(rate);
        }
        let now = Instant::now();
        let capacity = rate.max(1.0);
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * rate).min(capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            // ok: the value is positive and small (at most 1/rate seconds, rate > 0 and finite).
            let wait = ((1.0 - self.tokens) / rate).ceil().clamp(1.0, 86_400.0) as u64;
            Err(wait)
        }
    }
}

/// Everything that changes while the sandbox runs. Held under one mutex, never across
/// an `.await`.
pub(crate) struct State {
    pub faults: Faults,
    pub credentials: Vec<Credential>,
    /// The credential webhooks are signed with when they have one of their own
    /// ([`crate::WebhookSigning::Separate`]); changeable, as a rotation changes it.
    pub webhook_credential: Option<Credential>,
    pub webhook_url: Option<Url>,
    pub cases: HashMap<Uuid, CaseRecord>,
    /// Case ids in creation order.
    pub order: Vec<Uuid>,
    pub deliveries: Vec<DeliveryAttempt>,
    pub stats: Stats,
    /// API requests per case id (the path's segment, known or not) and endpoint,
    /// counted on arrival like `stats.requests`: what one case cost the API.
    pub case_requests: HashMap<String, BTreeMap<String, u64>>,
    pub rng: StdRng,
    pub bucket: TokenBucket,
    pub next_notification_id: u64,
}

impl State {
    pub(crate) fn new(config: &SandboxConfig, seed: u64) -> Self {
        Self {
            faults: config.faults.clone(),
            credentials: config.credentials.clone(),
            webhook_credential: match &config.webhook_signing {
                crate::WebhookSigning::Separate(c) => Some(c.clone()),
                _ => None,
            },
            webhook_url: config.webhook_url.clone(),
            cases: HashMap::new(),
            order: Vec::new(),
            deliveries: Vec::new(),
            stats: Stats { seed, ..Stats::default() },
            case_requests: HashMap::new(),
            rng: StdRng::seed_from_u64(seed),
            bucket: TokenBucket::new(config.faults.rate_limit_per_sec),
            next_notification_id: 1,
        }
    }

    /// The sandbox's clock: real time plus the configured offset.
    pub(crate) fn now(&self) -> SystemTime {
        offset_now(self.faults.clock_offset_secs)
    }

    /// A fresh case id (UUID v4) from the seeded generator, so seeded runs repeat.
    pub(crate) fn new_case_id(&mut self) -> Uuid {
        let bytes: [u8; 16] = rand::Rng::random(&mut self.rng);
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    pub(crate) fn cases_in_order(&self) -> impl Iterator<Item = &CaseRecord> {
        self.order.iter().filter_map(|id| self.cases.get(id))
    }
}

/// What the server and every background task share.
pub(crate) struct Shared {
    /// The configuration the sandbox started with; `reset` returns to it.
    pub config: SandboxConfig,
    pub seed: u64,
    pub http: reqwest::Client,
    state: Mutex<State>,
    tasks: Mutex<JoinSet<()>>,
}

impl Shared {
    pub(crate) fn new(config: SandboxConfig, seed: u64, http: reqwest::Client) -> Self {
        let state = State::new(&config, seed);
        Self { config, seed, http, state: Mutex::new(state), tasks: Mutex::new(JoinSet::new()) }
    }

    /// The state. A panic while holding the lock leaves plain data behind, still usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a background task, tied to the sandbox's life (aborted by reset and shutdown).
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        // Reap what has finished, so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Aborts every background task.
    pub(crate) fn abort_tasks(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.abort_all();
        *tasks = JoinSet::new();
    }

    /// Back to the starting configuration: no cases, deliveries or counts, no pending
    /// screening or webhook, the starting faults, credentials and webhook URL, and the
    /// random generator re-seeded with the same seed.
    pub(crate) fn reset(&self) {
        self.abort_tasks();
        *self.lock() = State::new(&self.config, self.seed);
    }
}

/// Real time shifted by `offset_secs`.
pub(crate) fn offset_now(offset_secs: i64) -> SystemTime {
    let now = SystemTime::now();
    let delta = Duration::from_secs(offset_secs.unsigned_abs());
    let shifted = if offset_secs >= 0 { now.checked_add(delta) } else { now.checked_sub(delta) };
    shifted.unwrap_or(now)
}

/// Whole seconds since the Unix epoch (0 before it, which an offset bounded to ten
/// years cannot reach).
pub(crate) fn unix_seconds(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_secs()).ok()).unwrap_or(0)
}

/// RFC 3339, UTC.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let seconds = unix_seconds(time);
    let nanos = time.duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    OffsetDateTime::from_unix_timestamp(seconds)
        .map(|t| t.replace_nanosecond(nanos).unwrap_or(t))
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// The sandbox's date (UTC): the latest acceptable date of birth.
pub(crate) fn today(time: SystemTime) -> time::Date {
    OffsetDateTime::from_unix_timestamp(unix_seconds(time)).map(|t| t.date()).unwrap_or(time::Date::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_bucket() {
        let mut bucket = TokenBucket::new(2.0);
        assert_eq!(bucket.try_take(2.0), Ok(()));
        assert_eq!(bucket.try_take(2.0), Ok(()));
        assert_eq!(bucket.try_take(2.0), Err(1));
        // Unlimited.
        assert_eq!(bucket.try_take(0.0), Ok(()));
        // A new rate refills.
        assert_eq!(bucket.try_take(1.0), Ok(()));
        assert!(bucket.try_take(1.0).is_err());
    }

    #[test]
    fn clock() {
        let real = unix_seconds(SystemTime::now());
        let shifted = unix_seconds(offset_now(-3600));
        assert!((real - 3600 - shifted).abs() <= 1);
        assert!(rfc3339(UNIX_EPOCH).starts_with("1970-01-01T00:00:00"));
    }
}
