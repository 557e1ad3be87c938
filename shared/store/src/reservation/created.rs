//! `PENDING` or `UNKNOWN` → `CREATED` with Cabital's answer (a 201): the reservation,
//! the case and its CREATED event in one transaction.

use std::time::Duration;

use gateway_cabital::{CaseSystemId, ExternalCaseId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, Expr, s, t, unix};
use crate::error::{StoreError, TxError};
use crate::model::{CaseRecord, CreatedCase, CreatedOutcome, EventDetail, EventSource, ExtState, Origin};
use crate::model::{derive_status, settled_attention};
use crate::retry::{CONFLICT_ATTEMPTS, Retry};
use crate::schema::attr;
use crate::store::Store;

use super::held_in;

/// Tries at keeping a created case's id on its reservation ([`Store::keep_created_id`]).
const KEEP_ID_ATTEMPTS: u32 = 3;

impl Store {
    /// Records a case Cabital has just created (201), in ONE transaction: the
    /// reservation (held by `token`) becomes `CREATED`, the case item is written, and a
    /// CREATED event keeps what was submitted and what Cabital answered.
    ///
    /// If a webhook recorded the case first, the case item is updated instead (origin
    /// `API`, screen type), keeping its suggestion and version history. Calling again
    /// with the same token after success is a no-op ([`CreatedOutcome::AlreadyRecorded`]);
    /// another token gets [`StoreError::ConditionFailed`].
    #[tracing::instrument(skip_all, fields(external_case_id = %ext, case_system_id = %created.case_system_id), err)]
    pub async fn record_created(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        created: &CreatedCase,
        now: OffsetDateTime,
    ) -> Result<CreatedOutcome, StoreError> {
        if created.external_case_id != *ext {
            return Err(StoreError::Invalid("the created case names another externalCaseId".into()));
        }
        let id = created.case_system_id;
        // Most cases are new; a webhook that came first is the exception.
        let mut existing: Option<CaseRecord> = None;
        let mut retry = Retry::new(CONFLICT_ATTEMPTS);
        loop {
            let mut case = match &existing {
                None => new_case(created, now),
                Some(current) => merge_created(current, created, now),
            };
            self.retain(existing.as_ref(), &mut case, now).await?;
            let mut expr = created_update(ext, &case, now);
            let condition = held_in(&mut expr, token, &[ExtState::Pending, ExtState::Unknown]);
            let ext_update = self.tx_update(Self::ext_key(ext), &expr, &condition)?;
            let detail = EventDetail::Created {
                submitted: Some(created.submitted_json.clone()),
                response: Some(created.response_json.clone()),
            };
            let (_, event) = self.tx_event(&mut case, now, EventSource::Api, &detail)?;
            let case_write = match &existing {
                None => self.tx_put_new(codec::case_item(&case))?,
                Some(current) => self.tx_case_update(&case, current.version)?,
            };

            match self.transact(vec![ext_update, case_write, event]).await {
                Ok(()) => {
                    tracing::info!(merged = existing.is_some(), "case created");
                    return Ok(CreatedOutcome::Recorded);
                }
                Err(TxError::Cancelled(r)) if r.condition_failed(0) => {
                    let rec = self
                        .get_external(ext)
                        .await?
                        .ok_or_else(|| StoreError::NotFound(format!("external id {ext}")))?;
                    if rec.reservation_token != token {
                        return Err(StoreError::ConditionFailed(format!(
                            "external id {ext} is reserved under another token"
                        )));
                    }
                    match rec.state {
                        ExtState::Created if rec.case_system_id == Some(id) => {
                            return Ok(CreatedOutcome::AlreadyRecorded);
                        }
                        ExtState::Pending | ExtState::Unknown => retry.lost(StoreError::TransactionConflict)?,
                        state => return Err(StoreError::ConditionFailed(format!("external id {ext} is {state}"))),
                    }
                }
                Err(TxError::Cancelled(r)) if r.condition_failed(1) => {
                    // The case item exists (a webhook came first) or changed under us.
                    existing = self.get_case(&id).await?;
                    retry.lost(StoreError::TransactionConflict)?;
                }
                Err(TxError::Cancelled(r)) if r.transient() => retry.lost(StoreError::TransactionConflict)?,
                Err(e) => return Err(e.into_store()),
            }
        }
    }
}

impl Store {
    /// Cabital created the case but [`Store::record_created`] failed: its id is kept
    /// on the reservation (still `PENDING`, held by `token`), so that nothing waits for a
    /// webhook: the reconciler expires the stuck create to `UNKNOWN`, which links the
    /// noted id at once. One conditional write, tried up to three times while it
    /// fails retryably (bound it by the caller's deadline); repeating it is harmless, and
    /// a reservation already `CREATED` for this case (the record went through after all)
    /// is success.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext, case_system_id = %id), err)]
    pub async fn keep_created_id(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        id: &CaseSystemId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut tries = 0;
        let noted = loop {
            tries += 1;
            match self.note_case(ext, token, id, now).await {
                Err(e) if e.retryable() && tries < KEEP_ID_ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(50 << tries)).await;
                }
                done => break done,
            }
        };
        match noted {
            Ok(()) => Ok(()),
            Err(StoreError::ConditionFailed(_)) => match self.get_external(ext).await? {
                Some(rec)
                    if rec.reservation_token == token
                        && rec.case_system_id == Some(*id)
                        && matches!(rec.state, ExtState::Created | ExtState::Pending | ExtState::Unknown) =>
                {
                    Ok(())
                }
                _ => Err(self.ext_refusal(ext).await),
            },
            Err(e) => Err(e),
        }
    }
}

/// The reservation of `ext` becomes `CREATED` for `case` (as its write leaves it, its
/// retention bound set) and leaves the attention index; it is kept as long as the case.
/// The linking path adds when it was linked.
pub(super) fn created_update(ext: &ExternalCaseId, case: &CaseRecord, now: OffsetDateTime) -> Expr {
    let mut expr = Expr::new();
    expr.set(attr::STATE, s(ExtState::Created.as_str()))
        .set(attr::CASE_SYSTEM_ID, s(case.case_system_id.to_string()))
        .set(attr::UPDATED_AT, t(now))
        .set_attention(ext.as_str(), None);
    if let Some(bound) = case.expires_at {
        expr.set(attr::EXPIRES_AT, unix(bound));
    }
    for (name, value) in codec::unknown_creation_place(ext, None) {
        expr.set_or_remove(name, value);
    }
    expr
}

/// A case first known from Cabital's answer to its create: checked now.
fn new_case(created: &CreatedCase, now: OffsetDateTime) -> CaseRecord {
    let mut case = CaseRecord::new(
        created.case_system_id,
        created.external_case_id.clone(),
        Origin::Api,
        Some(created.screen_type),
        created.suggestion,
        created.suggestion_comment.clone(),
        now,
    );
    case.ogs = created.ogs;
    case.checked(now);
    case
}

/// A case a webhook recorded first, now known to be ours: the webhook's suggestion and
/// the pending refresh stay; what only the create knows is added.
fn merge_created(current: &CaseRecord, created: &CreatedCase, now: OffsetDateTime) -> CaseRecord {
    let mut new = current.clone();
    new.origin = Origin::Api;
    new.screen_type = Some(created.screen_type);
    if new.suggestion.is_none() && created.suggestion.is_some() {
        new.suggestion = created.suggestion;
        new.suggestion_comment = created.suggestion_comment.clone();
        new.suggestion_at = Some(now);
    }
    if created.ogs && !new.ogs {
        new.ogs = true;
        new.ogs_checked_at = Some(now);
    }
    new.status = derive_status(new.suggestion, new.decision);
    if !new.needs_refresh {
        new.attention = settled_attention(new.suggestion.is_some(), now);
    }
    new.updated_at = now;
    new.version = current.version + 1;
    new
}
