//! The functions' settings, each default written once here, read once at a cold start
//! ([`Settings::from_env`]); each function uses the parts it needs.
//!
//! The aggregate lives in this crate, not in `gateway-runtime`, because it holds the
//! store's time limits (`gateway-store`, which the runtime does not depend on, so that
//! `doctor` builds without the DynamoDB SDK). How a setting is read, and the Cabital
//! and AWS settings `doctor` shares, are the runtime's (`gateway_runtime::settings`).

use std::str::FromStr;
use std::time::Duration;

use gateway_cabital::CabitalError;
use gateway_runtime::settings::{AwsSettings, CabitalSettings, Env, SettingError, one_of};
use gateway_signing::CredentialsError;
use gateway_store::{Retention, StoreTimeouts};

/// The largest request body the cases API reads, and the webhook's default bound.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest `RECONCILE_NO_SUGGESTION_GIVE_UP_SECS` taken: beyond a year it is a typo.
pub const MAX_NO_SUGGESTION_GIVE_UP: Duration = Duration::from_secs(366 * 86_400);

/// Everything the functions read from the environment.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `TABLE_NAME`: the table (required).
    pub table: String,
    /// `CABITAL_*`: how to reach Cabital.
    pub cabital: CabitalSettings,
    /// `AWS_REGION`, `AWS_TLS_ROOTS`: what the gateway reads of the AWS settings.
    pub aws: AwsSettings,
    /// `DYNAMODB_ATTEMPT_TIMEOUT_MS` (one attempt) and `DYNAMODB_OPERATION_TIMEOUT_MS`
    /// (one call with its retries), over the store's defaults: the webhook must answer
    /// 503 before its sender gives up waiting when the table hangs.
    pub store: StoreTimeouts,
    /// `WEBHOOK_*`: the webhook function's.
    pub webhook: WebhookSettings,
    /// `RECONCILE_*`: the reconciler's.
    pub reconcile: ReconcileSettings,
    /// `RETENTION_DAYS`: how long a case is kept after its last write (its decision, or
    /// its last activity when never decided), in days (default 1827, five years; 1 to
    /// 36500). Every item of a case carries the table's TTL from it.
    pub retention: Retention,
}

impl Settings {
    /// Reads the settings from the process's environment.
    pub fn from_env() -> Result<Self, SettingError> {
        Self::read(&Env::process())
    }

    /// Reads the settings from `env`; unset ones take their defaults.
    pub fn read(env: &Env) -> Result<Self, SettingError> {
        let settings = Settings {
            table: env.required("TABLE_NAME")?,
            cabital: CabitalSettings::read(env)?,
            aws: AwsSettings::read(env)?,
            store: store_timeouts(env)?,
            webhook: WebhookSettings::read(env)?,
            reconcile: ReconcileSettings::read(env)?,
            retention: retention(env)?,
        };
        settings.check_ranges()?;
        Ok(settings)
    }

    /// Every numeric setting within its range, or the first one outside named with its
    /// range: zero where zero breaks (a secret fetched on every call, a reconciler that
    /// checks nothing) and absurd values (a typo's extra zeros) stop the cold start.
    /// Small values such as 1 s stay allowed: the local stack and tests use them.
    fn check_ranges(&self) -> Result<(), SettingError> {
        const MINUTE: u64 = 60;
        const HOUR: u64 = 60 * MINUTE;
        const DAY: u64 = 24 * HOUR;
        let secs = |d: Duration| d.as_secs();
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let (c, w, r) = (&self.cabital, &self.webhook, &self.reconcile);
        // (setting, value, least, most, unit)
        let ranges: [(&'static str, u64, u64, u64, &str); 20] = [
            ("CABITAL_SECRET_TTL_SECS", secs(c.secret_ttl), 1, DAY, "seconds"),
            ("CABITAL_REQUEST_TIMEOUT_MS", ms(c.client.request_timeout), 1, 60_000, "milliseconds"),
            ("CABITAL_MAX_ATTEMPTS", u64::from(c.client.max_attempts), 1, 10, ""),
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", ms(self.store.attempt), 1, 60_000, "milliseconds"),
            ("DYNAMODB_OPERATION_TIMEOUT_MS", ms(self.store.operation), 1, 120_000, "milliseconds"),
            // Cabital signs within 30 s; a day would accept any replay of a day's capture.
            ("WEBHOOK_TOLERANCE_SECS", w.tolerance_secs, 1, HOUR, "seconds"),
            // A stored body rides in one item: DynamoDB refuses items over 400 KB.
            ("WEBHOOK_MAX_BODY_BYTES", count(w.max_body_bytes), 512, 256 * 1024, "bytes"),
            ("WEBHOOK_REFRESH_TIMEOUT_MS", ms(w.refresh_timeout), 1, 20_000, "milliseconds"),
            ("RECONCILE_STALE_AFTER_SECS", secs(r.stale_after), 1, 30 * DAY, "seconds"),
            ("RECONCILE_REFRESH_GRACE_SECS", secs(r.refresh_grace), 0, DAY, "seconds"),
            ("RECONCILE_OGS_CHECK_AFTER_SECS", secs(r.ogs_check_after), 1, 366 * DAY, "seconds"),
            ("RECONCILE_OGS_BATCH", count(r.ogs_batch), 1, 100_000, ""),
            ("RECONCILE_BATCH", count(r.batch), 1, 1_000_000, ""),
            ("RECONCILE_CONCURRENCY", count(r.concurrency), 1, 256, ""),
            ("RECONCILE_RATE_PER_SEC", u64::from(r.rate_per_sec), 1, 1_000, ""),
            ("RECONCILE_DEADLINE_MARGIN_MS", ms(r.deadline_margin), 1, 600_000, "milliseconds"),
            ("RECONCILE_PENDING_STUCK_SECS", secs(r.pending_stuck_after), 1, DAY, "seconds"),
            ("RECONCILE_UNKNOWN_REPORT_SECS", secs(r.unknown_report_after), 1, 30 * DAY, "seconds"),
            (
                "RECONCILE_NO_SUGGESTION_GIVE_UP_SECS",
                secs(r.no_suggestion_give_up),
                1,
                MAX_NO_SUGGESTION_GIVE_UP.as_secs(),
                "seconds",
            ),
            ("RECONCILE_BACKOFF_MAX_SECS", secs(r.backoff_max), 1, MAX_NO_SUGGESTION_GIVE_UP.as_secs(), "seconds"),
        ];
        for (name, value, least, most, unit) in ranges {
            if !(least..=most).contains(&value) {
                let unit = if unit.is_empty() { String::new() } else { format!(" {unit}") };
                return Err(SettingError::Invalid {
                    name,
                    reason: format!("must be {least} to {most}{unit}, is {value}"),
                });
            }
        }
        Ok(())
    }
}

/// A cold start failed. Names the setting or the service's error code, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// A setting is missing or malformed.
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// The Cabital client (its TLS configuration) could not be built.
    #[error(transparent)]
    Client(#[from] CabitalError),
    /// The Cabital secret could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

/// `RETENTION_DAYS`, within its range.
fn retention(env: &Env) -> Result<Retention, SettingError> {
    let days = env.parsed_or("RETENTION_DAYS", Retention::DEFAULT_DAYS)?;
    Retention::days(days).ok_or_else(|| SettingError::Invalid {
        name: "RETENTION_DAYS",
        reason: format!("must be {} to {} days, is {days}", Retention::MIN_DAYS, Retention::MAX_DAYS),
    })
}

fn store_timeouts(env: &Env) -> Result<StoreTimeouts, SettingError> {
    let defaults = StoreTimeouts::default();
    let millis = |name: &'static str, default: Duration| -> Result<Duration, SettingError> {
        let value = env.millis_or(name, default)?;
        if value.is_zero() {
            return Err(SettingError::Invalid { name, reason: "must be at least 1".into() });
        }
        Ok(value)
    };
    let attempt = millis("DYNAMODB_ATTEMPT_TIMEOUT_MS", defaults.attempt)?;
    let operation = millis("DYNAMODB_OPERATION_TIMEOUT_MS", defaults.operation)?;
    if attempt > operation {
        return Err(SettingError::Invalid {
            name: "DYNAMODB_ATTEMPT_TIMEOUT_MS",
            reason: "must not exceed DYNAMODB_OPERATION_TIMEOUT_MS".into(),
        });
    }
    Ok(StoreTimeouts { attempt, operation, ..defaults })
}

/// `WEBHOOK_AUTH`: what an unsigned or unverifiable delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WebhookAuth {
    /// `signature`: refused with 401 (a late but genuine signature is still taken).
    #[default]
    Signature,
    /// `refetch`: taken as an unverified notice, and the case read from Cabital.
    Refetch,
}

impl FromStr for WebhookAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        one_of(s, &[("signature", WebhookAuth::Signature), ("refetch", WebhookAuth::Refetch)])
    }
}

/// The webhook's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    /// `WEBHOOK_TOLERANCE_SECS`: how far `ACCESS-TIMESTAMP` may be from now for a
    /// delivery to count as fresh (default 300). Older signed deliveries are taken as
    /// late: a hint, never a state change by themselves.
    pub tolerance_secs: u64,
    /// `WEBHOOK_SIGNED_PATH`: the path Cabital signs, when API Gateway shows another
    /// (stage prefix, custom domain). Default: the path received.
    pub signed_path: Option<String>,
    /// `WEBHOOK_MAX_BODY_BYTES`: the largest body accepted (default [`MAX_BODY_BYTES`]).
    pub max_body_bytes: usize,
    /// `WEBHOOK_AUTH`: `signature` (default) or `refetch`.
    pub auth: WebhookAuth,
    /// `WEBHOOK_REFRESH_TIMEOUT_MS`: the most the refresh may take before answering (default 3000).
    pub refresh_timeout: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            tolerance_secs: 300,
            signed_path: None,
            max_body_bytes: MAX_BODY_BYTES,
            auth: WebhookAuth::default(),
            refresh_timeout: Duration::from_secs(3),
        }
    }
}

impl WebhookSettings {
    /// Reads the settings; unset ones take their defaults.
    pub fn read(env: &Env) -> Result<Self, SettingError> {
        let d = WebhookSettings::default();
        let signed_path = env.get("WEBHOOK_SIGNED_PATH");
        if let Some(p) = &signed_path
            && !p.starts_with('/')
        {
            return Err(SettingError::Invalid { name: "WEBHOOK_SIGNED_PATH", reason: "must start with /".into() });
        }
        Ok(WebhookSettings {
            tolerance_secs: env.parsed_or("WEBHOOK_TOLERANCE_SECS", d.tolerance_secs)?,
            signed_path,
            max_body_bytes: env.parsed_or("WEBHOOK_MAX_BODY_BYTES", d.max_body_bytes)?,
            auth: env.parsed_or("WEBHOOK_AUTH", d.auth)?,
            refresh_timeout: env.millis_or("WEBHOOK_REFRESH_TIMEOUT_MS", d.refresh_timeout)?,
        })
    }
}

/// The reconciler's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileSettings {
    /// `RECONCILE_STALE_AFTER_SECS`: a case awaiting a suggestion this long is asked about (default 86400).
    pub stale_after: Duration,
    /// `RECONCILE_REFRESH_GRACE_SECS`: a case marked for refresh is left this long to the webhook function (default 60).
    pub refresh_grace: Duration,
    /// `RECONCILE_OGS_CHECK_AFTER_SECS`: a case under ongoing screening is checked this often (default 7 days).
    pub ogs_check_after: Duration,
    /// `RECONCILE_OGS_BATCH`: at most this many ongoing-screening cases per run (default
    /// 20000). Each run takes every case that would pass `ogs_check_after` before the
    /// next run, within this and the run's capacity (`rate_per_sec` x its time).
    pub ogs_batch: usize,
    /// `RECONCILE_BATCH`: at most this many urgent items, and this many awaiting cases,
    /// per run (default 20000); read from the indexes page by page.
    pub batch: usize,
    /// `RECONCILE_CONCURRENCY`: calls to Cabital in flight at once (default 8).
    pub concurrency: usize,
    /// `RECONCILE_RATE_PER_SEC`: calls to Cabital per second at most (default 20).
    pub rate_per_sec: u32,
    /// `RECONCILE_DEADLINE_MARGIN_MS`: stop starting work this long before the deadline, and
    /// abandon work still in flight at half of it (default 5000).
    pub deadline_margin: Duration,
    /// `RECONCILE_PENDING_STUCK_SECS`: a create still pending after this is taken as unknown (default 120).
    pub pending_stuck_after: Duration,
    /// `RECONCILE_UNKNOWN_REPORT_SECS`: an unknown creation older than this is reported for a person (default 86400).
    pub unknown_report_after: Duration,
    /// `RECONCILE_NO_SUGGESTION_GIVE_UP_SECS`: a case still without a suggestion this long
    /// after its creation is no longer asked about, and reported once (default 7 days).
    pub no_suggestion_give_up: Duration,
    /// `RECONCILE_SCHEDULE`: the schedule's expression, `rate(N minutes|hours|days)`, as
    /// the template gives it to EventBridge (default `rate(15 minutes)`): the time
    /// between runs, which the backoff and the ongoing-screening sweep count in.
    pub schedule_period: Duration,
    /// `RECONCILE_BACKOFF_MAX_SECS`: the longest an item the reconciler could not settle
    /// waits before it is tried again (default 86400). The wait doubles from two runs.
    pub backoff_max: Duration,
}

impl Default for ReconcileSettings {
    fn default() -> Self {
        ReconcileSettings {
            stale_after: Duration::from_secs(86_400),
            refresh_grace: Duration::from_secs(60),
            ogs_check_after: Duration::from_secs(7 * 86_400),
            ogs_batch: 20_000,
            batch: 20_000,
            concurrency: 8,
            rate_per_sec: 20,
            deadline_margin: Duration::from_secs(5),
            pending_stuck_after: Duration::from_secs(120),
            unknown_report_after: Duration::from_secs(86_400),
            no_suggestion_give_up: Duration::from_secs(7 * 86_400),
            schedule_period: Duration::from_secs(15 * 60),
            backoff_max: Duration::from_secs(86_400),
        }
    }
}

impl ReconcileSettings {
    /// Reads the settings; unset ones take their defaults.
    pub fn read(env: &Env) -> Result<Self, SettingError> {
        let d = ReconcileSettings::default();
        let s = ReconcileSettings {
            stale_after: env.seconds_or("RECONCILE_STALE_AFTER_SECS", d.stale_after)?,
            refresh_grace: env.seconds_or("RECONCILE_REFRESH_GRACE_SECS", d.refresh_grace)?,
            ogs_check_after: env.seconds_or("RECONCILE_OGS_CHECK_AFTER_SECS", d.ogs_check_after)?,
            ogs_batch: env.parsed_or("RECONCILE_OGS_BATCH", d.ogs_batch)?,
            batch: env.parsed_or("RECONCILE_BATCH", d.batch)?,
            concurrency: env.parsed_or("RECONCILE_CONCURRENCY", d.concurrency)?,
            rate_per_sec: env.parsed_or("RECONCILE_RATE_PER_SEC", d.rate_per_sec)?,
            deadline_margin: env.millis_or("RECONCILE_DEADLINE_MARGIN_MS", d.deadline_margin)?,
            pending_stuck_after: env.seconds_or("RECONCILE_PENDING_STUCK_SECS", d.pending_stuck_after)?,
            unknown_report_after: env.seconds_or("RECONCILE_UNKNOWN_REPORT_SECS", d.unknown_report_after)?,
            no_suggestion_give_up: env.seconds_or("RECONCILE_NO_SUGGESTION_GIVE_UP_SECS", d.no_suggestion_give_up)?,
            schedule_period: env.parsed_or("RECONCILE_SCHEDULE", RatePeriod(d.schedule_period))?.0,
            backoff_max: env.seconds_or("RECONCILE_BACKOFF_MAX_SECS", d.backoff_max)?,
        };
        Ok(s)
    }
}

/// The period of an EventBridge `rate(...)` expression. A `cron(...)` schedule has no
/// one period, so the reconciler (which sizes its work by it) refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RatePeriod(pub Duration);

impl FromStr for RatePeriod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let expected = || format!("must be rate(N minutes|hours|days), not {s:?}");
        let inner = s.strip_prefix("rate(").and_then(|r| r.strip_suffix(')')).ok_or_else(expected)?;
        let (value, unit) = inner.trim().split_once(' ').ok_or_else(expected)?;
        let value: u64 = value.parse().map_err(|_| expected())?;
        let unit_secs = match unit.trim() {
            "minute" | "minutes" => 60,
            "hour" | "hours" => 3600,
            "day" | "days" => 86_400,
            _ => return Err(expected()),
        };
        match value.checked_mul(unit_secs) {
            Some(secs) if value >= 1 && secs <= MAX_NO_SUGGESTION_GIVE_UP.as_secs() => {
                Ok(RatePeriod(Duration::from_secs(secs)))
            }
            _ => Err(format!("must be 1 minute to a year, not {s:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads from the given pairs, with the two required settings when not given.
    fn read(pairs: &[(&str, &str)]) -> Result<Settings, SettingError> {
        let required = [("TABLE_NAME", "kyc"), ("CABITAL_SECRET_ID", "cabital/api")];
        let var = |name: &str| pairs.iter().chain(&required).find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned());
        Settings::read(&Env::with(&var))
    }

    fn error(pairs: &[(&str, &str)]) -> String {
        read(pairs).unwrap_err().to_string()
    }

    #[test]
    fn unset_settings_take_the_defaults_written_once() {
        let s = read(&[]).unwrap();
        assert_eq!(s.table, "kyc");
        assert_eq!(s.store, StoreTimeouts::default());
        assert_eq!(s.webhook, WebhookSettings::default());
        assert_eq!(s.webhook.max_body_bytes, 64 * 1024);
        assert_eq!(s.reconcile, ReconcileSettings::default());
        assert_eq!(s.retention, Retention::default());
        assert_eq!(s.retention.as_days(), 1827);
    }

    #[test]
    fn each_setting_is_read() {
        let s = read(&[
            ("TABLE_NAME", "other"),
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "4500"),
            ("DYNAMODB_OPERATION_TIMEOUT_MS", "4500"),
            ("WEBHOOK_TOLERANCE_SECS", "60"),
            ("WEBHOOK_SIGNED_PATH", "/prod/webhooks/cabital"),
            ("WEBHOOK_MAX_BODY_BYTES", "1024"),
            ("WEBHOOK_AUTH", "refetch"),
            ("WEBHOOK_REFRESH_TIMEOUT_MS", "250"),
            ("RECONCILE_STALE_AFTER_SECS", "5"),
            ("RECONCILE_REFRESH_GRACE_SECS", "2"),
            ("RECONCILE_OGS_CHECK_AFTER_SECS", "20"),
            ("RECONCILE_OGS_BATCH", "3"),
            ("RECONCILE_BATCH", "4"),
            ("RECONCILE_CONCURRENCY", "5"),
            ("RECONCILE_RATE_PER_SEC", "6"),
            ("RECONCILE_DEADLINE_MARGIN_MS", "700"),
            ("RECONCILE_PENDING_STUCK_SECS", "8"),
            ("RECONCILE_UNKNOWN_REPORT_SECS", "9"),
            ("RECONCILE_NO_SUGGESTION_GIVE_UP_SECS", "10"),
            ("RECONCILE_SCHEDULE", "rate(2 hours)"),
            ("RECONCILE_BACKOFF_MAX_SECS", "11"),
            ("RETENTION_DAYS", "2190"),
        ])
        .unwrap();
        assert_eq!(s.retention.as_days(), 2190);
        let secs = Duration::from_secs;
        assert_eq!(s.table, "other");
        assert_eq!((s.store.attempt, s.store.operation), (Duration::from_millis(4500), Duration::from_millis(4500)));
        assert_eq!(s.store.connect, StoreTimeouts::default().connect);
        let webhook = WebhookSettings {
            tolerance_secs: 60,
            signed_path: Some("/prod/webhooks/cabital".into()),
            max_body_bytes: 1024,
            auth: WebhookAuth::Refetch,
            refresh_timeout: Duration::from_millis(250),
        };
        assert_eq!(s.webhook, webhook);
        let reconcile = ReconcileSettings {
            stale_after: secs(5),
            refresh_grace: secs(2),
            ogs_check_after: secs(20),
            ogs_batch: 3,
            batch: 4,
            concurrency: 5,
            rate_per_sec: 6,
            deadline_margin: Duration::from_millis(700),
            pending_stuck_after: secs(8),
            unknown_report_after: secs(9),
            no_suggestion_give_up: secs(10),
            schedule_period: secs(7200),
            backoff_max: secs(11),
        };
        assert_eq!(s.reconcile, reconcile);
    }

    #[test]
    fn a_bad_setting_is_named_with_what_is_wrong() {
        assert_eq!(read(&[("TABLE_NAME", " ")]).unwrap_err().to_string(), "setting TABLE_NAME is required but not set");
        for (name, value, reason) in [
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "0", "must be at least 1"),
            ("DYNAMODB_OPERATION_TIMEOUT_MS", "0", "must be at least 1"),
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", "13000", "must not exceed DYNAMODB_OPERATION_TIMEOUT_MS"),
            ("WEBHOOK_SIGNED_PATH", "prod/webhooks", "must start with /"),
            ("WEBHOOK_AUTH", "none", "must be `signature` or `refetch`"),
            ("WEBHOOK_TOLERANCE_SECS", "5m", "invalid digit found in string"),
            ("RECONCILE_CONCURRENCY", "0", "must be 1 to 256, is 0"),
            ("RECONCILE_RATE_PER_SEC", "0", "must be 1 to 1000, is 0"),
            ("RECONCILE_NO_SUGGESTION_GIVE_UP_SECS", "0", "must be 1 to 31622400 seconds, is 0"),
            ("WEBHOOK_MAX_BODY_BYTES", "1048576", "must be 512 to 262144 bytes, is 1048576"),
            ("RECONCILE_DEADLINE_MARGIN_MS", "-1", "invalid digit found in string"),
            (
                "RECONCILE_SCHEDULE",
                "cron(0 * * * ? *)",
                "must be rate(N minutes|hours|days), not \"cron(0 * * * ? *)\"",
            ),
            ("RECONCILE_SCHEDULE", "rate(0 minutes)", "must be 1 minute to a year, not \"rate(0 minutes)\""),
            ("RECONCILE_BACKOFF_MAX_SECS", "0", "must be 1 to 31622400 seconds, is 0"),
            ("RETENTION_DAYS", "0", "must be 1 to 36500 days, is 0"),
            ("RETENTION_DAYS", "36501", "must be 1 to 36500 days, is 36501"),
            ("RETENTION_DAYS", "5y", "invalid digit found in string"),
        ] {
            assert_eq!(error(&[(name, value)]), format!("setting {name} is invalid: {reason}"));
        }
    }

    /// Each numeric setting: zero refused where zero breaks, an absurd value refused,
    /// both by name; its smallest sane value (1 s, 1 ms, 1) and its largest taken.
    #[test]
    fn numeric_settings_out_of_range_stop_the_cold_start_by_name() {
        let day = 86_400u64;
        // (setting, smallest taken, largest taken), each alone: the store's two limits are
        // also held in order (an attempt within its call), at their defaults 5 s and 12 s.
        let ranges: [(&str, u64, u64); 20] = [
            ("CABITAL_SECRET_TTL_SECS", 1, day),
            ("CABITAL_REQUEST_TIMEOUT_MS", 1, 60_000),
            ("CABITAL_MAX_ATTEMPTS", 1, 10),
            ("DYNAMODB_ATTEMPT_TIMEOUT_MS", 1, 12_000),
            ("DYNAMODB_OPERATION_TIMEOUT_MS", 5_000, 120_000),
            ("WEBHOOK_TOLERANCE_SECS", 1, 3_600),
            ("WEBHOOK_MAX_BODY_BYTES", 512, 256 * 1024),
            ("WEBHOOK_REFRESH_TIMEOUT_MS", 1, 20_000),
            ("RECONCILE_STALE_AFTER_SECS", 1, 30 * day),
            ("RECONCILE_REFRESH_GRACE_SECS", 0, day),
            ("RECONCILE_OGS_CHECK_AFTER_SECS", 1, 366 * day),
            ("RECONCILE_OGS_BATCH", 1, 100_000),
            ("RECONCILE_BATCH", 1, 1_000_000),
            ("RECONCILE_CONCURRENCY", 1, 256),
            ("RECONCILE_RATE_PER_SEC", 1, 1_000),
            ("RECONCILE_DEADLINE_MARGIN_MS", 1, 600_000),
            ("RECONCILE_PENDING_STUCK_SECS", 1, day),
            ("RECONCILE_UNKNOWN_REPORT_SECS", 1, 30 * day),
            ("RECONCILE_NO_SUGGESTION_GIVE_UP_SECS", 1, MAX_NO_SUGGESTION_GIVE_UP.as_secs()),
            ("RECONCILE_BACKOFF_MAX_SECS", 1, MAX_NO_SUGGESTION_GIVE_UP.as_secs()),
        ];
        for (name, least, most) in ranges {
            for ok in [least, most] {
                assert!(read(&[(name, &ok.to_string())]).is_ok(), "{name}={ok} must be taken");
            }
            let mut refused = vec![most + 1, most * 1000];
            if least > 0 && name != "DYNAMODB_OPERATION_TIMEOUT_MS" {
                refused.push(least - 1);
            }
            for bad in refused {
                let Err(e) = read(&[(name, &bad.to_string())]) else { panic!("{name}={bad} must be refused") };
                let e = e.to_string();
                assert!(e.starts_with(&format!("setting {name} is invalid: must ")), "{name}={bad}: {e}");
            }
        }
    }

    #[test]
    fn the_schedule_period_is_read_from_its_rate_expression() {
        for (expr, secs) in
            [("rate(15 minutes)", 900), ("rate(1 minute)", 60), ("rate(1 hour)", 3600), ("rate(2 days)", 172_800)]
        {
            assert_eq!(expr.parse::<RatePeriod>(), Ok(RatePeriod(Duration::from_secs(secs))), "{expr}");
        }
        assert_eq!(ReconcileSettings::default().schedule_period, Duration::from_secs(900));
        for bad in ["15 minutes", "rate(15)", "rate(x minutes)", "rate(5 weeks)", "rate(99999999999999 days)"] {
            assert!(bad.parse::<RatePeriod>().is_err(), "{bad}");
        }
    }

    #[test]
    fn an_init_error_says_what_its_cause_says() {
        let e = InitError::from(SettingError::Missing("TABLE_NAME"));
        assert_eq!(e.to_string(), "setting TABLE_NAME is required but not set");
        let e = InitError::from(CredentialsError::SecretsManager { code: "AccessDenied".into(), retryable: false });
        assert_eq!(e.to_string(), "Secrets Manager failed (AccessDenied); retryable: false");
    }
}
