//! Webhook intake: verify the raw bytes, parse strictly, make it durable, then refresh.
//!
//! A webhook is a hint; the truth is a signed `GET` of the case. A delivery whose
//! signature verifies within the window is Cabital's word and is stored as a webhook.
//! One whose signature verifies but is old (Cabital resends failed deliveries with
//! their first attempt's headers) and, with `WEBHOOK_AUTH=refetch`, one that is not
//! signed or does not verify, are hints: answered 2xx, kept as an unverified notice
//! (or one more delivery of a body already known), and the case's state taken only
//! from Cabital's `GET`. A notice costs at most one `GET` per case per minute once its
//! body is known, and is refused when Cabital does not know its case.
//!
//! A verified signature's (timestamp, signature) pair is remembered with the delivery
//! it came with: an exact repeat (a captured delivery replayed) is answered 200 as a
//! `replay` and costs nothing else. A known body under a new signature is one more
//! delivery, and reads the case from Cabital at most once per case per minute.

use std::time::Duration;

use gateway_cabital::{CabitalError, CaseSystemId, Deadline, Pii, WebhookNotification};
use gateway_runtime::{ErrorCode, Problem, Surface};
use gateway_signing::{IncomingHeaders, SignatureEncoding, Verified, VerifyError, verify_signature};
use gateway_store::{
    CaseRecord, NoticeReason, RemoteCheck, RemoteState, SignaturePair, StoreError, WebhookReceipt, WebhookRecorded,
};
use sha2::{Digest, Sha256};

use crate::gateway::{Gateway, request_hash};
use crate::settings::{WebhookAuth, WebhookSettings};

/// A signature that does not verify makes the secret be fetched again, at most this often.
const CREDENTIALS_RECHECK: Duration = Duration::from_secs(60);

/// A delivery whose body is already known reads its case from Cabital at most this often.
pub const NOTICE_REFETCH_INTERVAL: Duration = Duration::from_secs(60);

/// How long a verified signature pair is remembered, at least (twice the tolerance, if
/// longer): Cabital resends a failed delivery for up to ~24 h after its first attempt,
/// possibly under that attempt's headers. A replay after this is a late repeat: one
/// counted delivery and at most one `GET` per minute, then remembered again.
pub const REPLAY_MEMORY: Duration = Duration::from_secs(25 * 60 * 60);

/// A delivery as received.
#[derive(Clone, Copy)]
pub struct Delivery<'a> {
    /// The three signature headers.
    pub headers: IncomingHeaders<'a>,
    /// The HTTP method.
    pub method: &'a str,
    /// The path received, with its query string if any.
    pub path_and_query: &'a str,
    /// The body's raw bytes.
    pub body: &'a [u8],
    /// Now, in Unix seconds.
    pub now_unix: i64,
}

/// Why a delivery was refused or not stored.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The body is over the bound.
    #[error("body of {0} bytes is over the bound")]
    TooLarge(usize),
    /// The signature did not verify.
    #[error("signature refused: {0}")]
    Unauthorized(#[from] VerifyError),
    /// The body is not the webhook's JSON.
    #[error("malformed body: {0}")]
    Malformed(String),
    /// The credentials to verify with could not be had: Cabital should retry.
    #[error("credentials unavailable")]
    Credentials,
    /// An unverified notice names a case Cabital does not know: nothing is stored.
    #[error("Cabital does not know the case the notice names")]
    UnknownToCabital,
    /// An unverified notice names a case the gateway does not know, and Cabital could not
    /// be asked about it: nothing is stored, the sender should retry.
    #[error("Cabital could not be asked about the notice's case")]
    CabitalUnavailable,
    /// The event could not be stored: Cabital must retry.
    #[error("not stored: {0}")]
    Store(#[from] StoreError),
}

impl WebhookError {
    /// The stable code; its status and title are the code's.
    pub fn code(&self) -> ErrorCode {
        match self {
            WebhookError::TooLarge(_) => ErrorCode::BodyTooLarge,
            WebhookError::Unauthorized(e) => ErrorCode::from(e),
            WebhookError::Malformed(_) => ErrorCode::MalformedBody,
            WebhookError::Credentials => ErrorCode::CredentialsUnavailable,
            WebhookError::UnknownToCabital => ErrorCode::CaseUnknownToCabital,
            WebhookError::CabitalUnavailable => ErrorCode::CabitalUnavailable,
            WebhookError::Store(_) => ErrorCode::StoreUnavailable,
        }
    }

    /// The reason, for metrics and logs: stable (the code).
    pub fn reason(&self) -> &'static str {
        self.code().as_str()
    }

    /// The response. Refusals of bad input are 4xx; a failure to store is 503 so that
    /// Cabital retries.
    pub fn problem(&self) -> Problem {
        let problem = self.code().problem(Surface::Webhook);
        match self {
            WebhookError::Malformed(detail) => problem.detail(detail.clone()),
            WebhookError::Credentials | WebhookError::CabitalUnavailable | WebhookError::Store(_) => {
                problem.retry_after(Duration::from_secs(5))
            }
            _ => problem,
        }
    }
}

/// What happened to a stored delivery's refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// Cabital's state was read and changed the record.
    Changed,
    /// Cabital's state was read and matched the record.
    Unchanged,
    /// The refresh failed or timed out: the case stays marked for the reconciler.
    Deferred,
    /// A body already known, within a minute of the case's last read: not read again
    /// now; the case stays marked for the reconciler.
    Skipped,
    /// A replay: nothing was stored, so nothing is to be read.
    None,
}

impl RefreshOutcome {
    /// For logs and the answer: `changed`, `unchanged`, `deferred`, `skipped`, `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshOutcome::Changed => "changed",
            RefreshOutcome::Unchanged => "unchanged",
            RefreshOutcome::Deferred => "deferred",
            RefreshOutcome::Skipped => "skipped",
            RefreshOutcome::None => "none",
        }
    }
}

/// What a delivery was taken as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Signed, within the window: Cabital's word.
    Signed,
    /// Signed, outside the window, body already received: one more delivery of it.
    LateRepeat,
    /// An unverified notice.
    Notice(NoticeReason),
    /// An exact repeat (same timestamp and signature) of a delivery already stored:
    /// answered 2xx, not counted, nothing read from Cabital.
    Replay,
}

impl Verification {
    /// For logs, metrics and the answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Signed => "signed",
            Verification::LateRepeat => "late_repeat",
            Verification::Notice(NoticeReason::Unsigned) => "notice_unsigned",
            Verification::Notice(NoticeReason::SignatureNotVerified) => "notice_signature_not_verified",
            Verification::Notice(NoticeReason::LateSignature) => "notice_late_signature",
            Verification::Replay => "replay",
        }
    }
}

/// The result of an accepted delivery.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// What the store recorded.
    pub recorded: WebhookRecorded,
    /// What the refresh did.
    pub refresh: RefreshOutcome,
    /// The case.
    pub case_system_id: gateway_cabital::CaseSystemId,
    /// What the delivery was taken as.
    pub verification: Verification,
}

/// What verifying a delivery's signature found.
enum Authenticity {
    Fresh(Verified),
    Late(Verified),
    Unverified(NoticeReason),
}

impl Gateway {
    /// Takes one delivery: bound, verify, parse, store durably, then refresh.
    ///
    /// `Ok` means the delivery is stored (answer 2xx); the refresh's failure does not
    /// change that.
    // The error at debug only: the function logs each refusal once, at warn, with its
    // stable reason; bad input is not an error of the gateway's.
    #[tracing::instrument(skip_all, err(level = "debug", Display))]
    pub async fn receive_webhook(&self, settings: &WebhookSettings, d: Delivery<'_>) -> Result<Accepted, WebhookError> {
        if d.body.len() > settings.max_body_bytes {
            return Err(WebhookError::TooLarge(d.body.len()));
        }
        let authenticity = self.authenticate(settings, &d).await?;
        let (notification, body) =
            WebhookNotification::from_body(d.body).map_err(|e| WebhookError::Malformed(e.detail().to_owned()))?;
        let body_sha256 = request_hash(d.body);
        let id = notification.case_system_id;
        match authenticity {
            Authenticity::Fresh(verified) => {
                let now = gateway_runtime::now();
                let mut receipt = signed_receipt(&notification, body, body_sha256);
                receipt.signature = signature_pair(settings, &d, &verified, now);
                let recorded = self.store.record_webhook(&receipt, now).await?;
                if recorded.replay {
                    return Ok(replay(recorded, id));
                }
                // A new body always; a known one under a new signature at most once a minute.
                let refresh =
                    if recorded.first_delivery || self.store.claim_refetch(&id, now, NOTICE_REFETCH_INTERVAL).await? {
                        self.bounded_refresh(settings, id).await
                    } else {
                        RefreshOutcome::Skipped
                    };
                Ok(Accepted { recorded, refresh, case_system_id: id, verification: Verification::Signed })
            }
            Authenticity::Late(verified) => {
                tracing::info!(
                    case_system_id = %id,
                    skew_secs = verified.skew_secs,
                    signed_with = verified.signed_with.as_str(),
                    "signed delivery outside the window: taken as a hint"
                );
                let pair = signature_pair(settings, &d, &verified, gateway_runtime::now());
                if self.store.body_seen(&id, &body_sha256, false).await? {
                    let receipt =
                        WebhookReceipt { signature: pair, ..signed_receipt(&notification, body, body_sha256) };
                    self.take_hint(settings, receipt, true, Verification::LateRepeat).await
                } else {
                    let reason = NoticeReason::LateSignature;
                    self.take_notice(settings, &notification, body, body_sha256, reason, pair).await
                }
            }
            Authenticity::Unverified(reason) => {
                self.take_notice(settings, &notification, body, body_sha256, reason, None).await
            }
        }
    }

    /// Checks the signature (either encoding, the webhook secret or the API secret) and
    /// its age, against the secret's current value and, within the grace window after a
    /// rotation, its previous one. A signature that does not verify makes the secret be
    /// fetched again (it may have rotated), at most once a minute.
    async fn authenticate(&self, settings: &WebhookSettings, d: &Delivery<'_>) -> Result<Authenticity, WebhookError> {
        let path = settings.signed_path.as_deref().unwrap_or(d.path_and_query);
        let check =
            |c: &gateway_signing::Credentials| verify_signature(c, d.headers, d.now_unix, d.method, path, d.body);
        let credentials = self.cabital.credentials().get().await.map_err(|_| WebhookError::Credentials)?;
        let outcome = match self.check_with_previous(check(&credentials), &check).await? {
            Err(VerifyError::UnknownKey | VerifyError::Mismatch) => {
                let fresh = self
                    .cabital
                    .credentials()
                    .refresh_if_older_than(CREDENTIALS_RECHECK)
                    .await
                    .map_err(|_| WebhookError::Credentials)?;
                self.check_with_previous(check(&fresh), &check).await?
            }
            other => other,
        };
        match outcome {
            Ok(v) if v.skew_secs.unsigned_abs() <= settings.tolerance_secs => Ok(Authenticity::Fresh(v)),
            Ok(v) => Ok(Authenticity::Late(v)),
            Err(e) => match settings.auth {
                WebhookAuth::Signature => Err(WebhookError::Unauthorized(e)),
                WebhookAuth::Refetch => Ok(Authenticity::Unverified(if d.headers.unsigned() {
                    NoticeReason::Unsigned
                } else {
                    NoticeReason::SignatureNotVerified
                })),
            },
        }
    }

    /// `current`, the check against the current secret; when it found no match, the
    /// check against the previous secret, while the rotation's grace window lasts.
    async fn check_with_previous(
        &self,
        current: Result<Verified, VerifyError>,
        check: &impl Fn(&gateway_signing::Credentials) -> Result<Verified, VerifyError>,
    ) -> Result<Result<Verified, VerifyError>, WebhookError> {
        if !matches!(current, Err(VerifyError::UnknownKey | VerifyError::Mismatch)) {
            return Ok(current);
        }
        let previous = self.cabital.credentials().previous().await.map_err(|_| WebhookError::Credentials)?;
        match previous.as_ref().map(check) {
            Some(Ok(verified)) => {
                tracing::info!(
                    signed_with = verified.signed_with.as_str(),
                    "signature made with the previous secret (AWSPREVIOUS), within the rotation's grace window"
                );
                Ok(Ok(verified))
            }
            _ => Ok(current),
        }
    }

    /// An unverified notice: the ids and state it records come from the stored case or
    /// from Cabital's `GET`, never from the body. `signature`: the pair of a late but
    /// verified signature, remembered against its replay.
    async fn take_notice(
        &self,
        settings: &WebhookSettings,
        notification: &WebhookNotification,
        body: &str,
        body_sha256: String,
        reason: NoticeReason,
        signature: Option<SignaturePair>,
    ) -> Result<Accepted, WebhookError> {
        let id = notification.case_system_id;
        let verification = Verification::Notice(reason);
        if let Some(case) = self.store.get_case(&id).await? {
            let body_known = self.store.body_seen(&id, &body_sha256, true).await?;
            let receipt = WebhookReceipt { signature, ..notice_receipt_from_case(&case, body, body_sha256, reason) };
            return self.take_hint(settings, receipt, body_known, verification).await;
        }
        // A case the gateway does not know: only Cabital's answer says whether it exists.
        let remote = match tokio::time::timeout(settings.refresh_timeout, self.cabital.get_case(id)).await {
            Ok(Ok(remote)) => remote,
            Ok(Err(CabitalError::Status { status: 404, .. })) => return Err(WebhookError::UnknownToCabital),
            Ok(Err(e)) => {
                tracing::warn!(case_system_id = %id, error = %e, "notice for an unknown case: Cabital not reachable");
                return Err(WebhookError::CabitalUnavailable);
            }
            Err(_) => {
                tracing::warn!(case_system_id = %id, "notice for an unknown case: Cabital did not answer in time");
                return Err(WebhookError::CabitalUnavailable);
            }
        };
        let asked_at = gateway_runtime::now();
        let _ = self.store.claim_refetch(&id, asked_at, NOTICE_REFETCH_INTERVAL).await;
        let receipt = WebhookReceipt {
            notice: Some(reason),
            case_system_id: id,
            external_case_id: remote.external_case_id.clone(),
            suggestion: remote.suggestion,
            suggestion_comment: remote.suggestion_comment.clone(),
            body: Pii(body.to_owned()),
            body_sha256,
            signature,
        };
        let recorded = self.store.record_webhook(&receipt, asked_at).await?;
        if recorded.replay {
            return Ok(replay(recorded, id));
        }
        // The case was made from this very answer: apply it to clear the refresh mark,
        // without a second GET unless another writer got there meanwhile.
        let state = RemoteState::from(&remote);
        let refresh = match self.store.apply_remote_state(&id, 1, &state, RemoteCheck::Refreshed, asked_at).await {
            Ok(applied) if applied.changed => RefreshOutcome::Changed,
            Ok(_) => RefreshOutcome::Unchanged,
            Err(_) => self.bounded_refresh(settings, id).await,
        };
        Ok(Accepted { recorded, refresh, case_system_id: id, verification })
    }

    /// A hint about a known case: count the delivery durably, then read the case from
    /// Cabital, unless its body is known and the case was read in the last minute. A
    /// replay is neither counted nor read.
    async fn take_hint(
        &self,
        settings: &WebhookSettings,
        receipt: WebhookReceipt,
        body_known: bool,
        verification: Verification,
    ) -> Result<Accepted, WebhookError> {
        let id = receipt.case_system_id;
        let now = gateway_runtime::now();
        let recorded = self.store.record_webhook(&receipt, now).await?;
        if recorded.replay {
            return Ok(replay(recorded, id));
        }
        let claimed = self.store.claim_refetch(&id, now, NOTICE_REFETCH_INTERVAL).await?;
        let refresh =
            if body_known && !claimed { RefreshOutcome::Skipped } else { self.bounded_refresh(settings, id).await };
        Ok(Accepted { recorded, refresh, case_system_id: id, verification })
    }

    /// Reads the case from Cabital and applies it, within the refresh's time limit; a
    /// failure leaves the case marked for the reconciler.
    async fn bounded_refresh(&self, settings: &WebhookSettings, id: CaseSystemId) -> RefreshOutcome {
        // Bounded by the refresh's own limit, not a deadline: a GET cut short loses nothing.
        let refresh = self.refresh(id, RemoteCheck::Refreshed, Deadline::NONE);
        match tokio::time::timeout(settings.refresh_timeout, refresh).await {
            Ok(Ok(r)) if r.changed => RefreshOutcome::Changed,
            Ok(Ok(_)) => RefreshOutcome::Unchanged,
            Ok(Err(e)) => {
                tracing::warn!(case_system_id = %id, error = %e, "refresh failed; left for the reconciler");
                RefreshOutcome::Deferred
            }
            Err(_) => {
                tracing::warn!(case_system_id = %id, "refresh timed out; left for the reconciler");
                RefreshOutcome::Deferred
            }
        }
    }
}

/// The answer to a replay: nothing stored now, nothing read.
fn replay(recorded: WebhookRecorded, id: CaseSystemId) -> Accepted {
    Accepted { recorded, refresh: RefreshOutcome::None, case_system_id: id, verification: Verification::Replay }
}

/// The remembered form of a verified signature: SHA-256 over the timestamp and the
/// signature's digest (not its text, which hex in either case or base64 spell), kept
/// for [`REPLAY_MEMORY`] or twice the tolerance, whichever is longer.
fn signature_pair(
    settings: &WebhookSettings,
    d: &Delivery<'_>,
    verified: &Verified,
    now: time::OffsetDateTime,
) -> Option<SignaturePair> {
    // The signature verified, so it decodes; `None` only if that ever stopped holding.
    let (_, digest) = SignatureEncoding::decode_any(d.headers.access_sign?.trim())?;
    let mut hasher = Sha256::new();
    hasher.update(verified.timestamp.to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(digest);
    // Capped at a year, so that no tolerance setting can overflow the date.
    let memory = REPLAY_MEMORY
        .max(Duration::from_secs(settings.tolerance_secs.saturating_mul(2)))
        .min(Duration::from_secs(366 * 24 * 60 * 60));
    Some(SignaturePair { sha256: hex::encode(hasher.finalize()), expires_at: now + memory })
}

/// A verified delivery: its values are Cabital's words.
fn signed_receipt(notification: &WebhookNotification, body: &str, body_sha256: String) -> WebhookReceipt {
    WebhookReceipt {
        notice: None,
        case_system_id: notification.case_system_id,
        external_case_id: notification.external_case_id.clone(),
        suggestion: Some(notification.case_suggestion),
        suggestion_comment: notification.comment.clone(),
        body: Pii(body.to_owned()),
        body_sha256,
        signature: None,
    }
}

/// A notice about a known case: the external id (which links reservations) is the
/// stored case's, not the body's.
fn notice_receipt_from_case(
    case: &CaseRecord,
    body: &str,
    body_sha256: String,
    reason: NoticeReason,
) -> WebhookReceipt {
    WebhookReceipt {
        notice: Some(reason),
        case_system_id: case.case_system_id,
        external_case_id: case.external_case_id.clone(),
        suggestion: case.suggestion,
        suggestion_comment: case.suggestion_comment.clone(),
        body: Pii(body.to_owned()),
        body_sha256,
        signature: None,
    }
}
