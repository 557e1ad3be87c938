//! `PENDING` → `UNKNOWN`: Cabital's answer to the create never came, or came without the
//! case's id, or the creating invocation died. The reservation stays urgent until a
//! webhook names the case.

use gateway_cabital::ExternalCaseId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, Expr, n, s, t, unix};
use crate::error::StoreError;
use crate::model::{Attention, EventSource, ExtRecord, ExtState};
use crate::schema::attr;
use crate::store::Store;

use super::held_in;

impl Store {
    /// Cabital's answer never came: the reservation stays, `UNKNOWN` and urgent, until a
    /// webhook names the case ([`Store::resolve_unknown`]). Only the holder of `token`
    /// may do this; repeating it is harmless. If a webhook already named the case, the
    /// link is completed at once. Returns the reservation as it now is.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext), err)]
    pub async fn mark_unknown(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        self.holder_to_unknown(ext, token, None, now).await
    }

    /// Cabital answered the create (a 2xx without `caseSystemId`, or 409) without
    /// telling the case's id: as [`Store::mark_unknown`], with Cabital's status kept
    /// (`cabitalStatus`), so that a replay of the create answers as the first did.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext, cabital_status), err)]
    pub async fn mark_created_without_id(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        cabital_status: u16,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        self.holder_to_unknown(ext, token, Some(cabital_status), now).await
    }

    /// The holder of `token` marks its reservation `UNKNOWN` (again, harmlessly).
    async fn holder_to_unknown(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        cabital_status: Option<u16>,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        let mut expr = unknown_update(ext, now, self.retention().required(now));
        if let Some(status) = cabital_status {
            expr.set(attr::CABITAL_STATUS, n(u64::from(status)));
        }
        let condition = held_in(&mut expr, token, &[ExtState::Pending, ExtState::Unknown]);
        self.to_unknown(ext, expr, &condition, now).await
    }

    /// For the reconciler: a reservation still `PENDING` although created before
    /// `created_before` belongs to an invocation that died mid-create; mark it `UNKNOWN`
    /// (as [`Store::mark_unknown`] would have). Pick `created_before` older than the
    /// longest invocation, so a create still in flight is never touched.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext), err)]
    pub async fn expire_pending(
        &self,
        ext: &ExternalCaseId,
        created_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        let mut expr = unknown_update(ext, now, self.retention().required(now));
        let condition = format!(
            "{} = {} AND {} < {}",
            expr.name(attr::STATE),
            expr.value(s(ExtState::Pending.as_str())),
            expr.name(attr::CREATED_AT),
            expr.value(t(created_before)),
        );
        self.to_unknown(ext, expr, &condition, now).await
    }

    async fn to_unknown(
        &self,
        ext: &ExternalCaseId,
        expr: Expr,
        condition: &str,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        let record = match self.update_item(Self::ext_key(ext), &expr, condition).await {
            Ok(item) => codec::ext_from_item(&item)?,
            Err(StoreError::ConditionFailed(_)) => return Err(self.ext_refusal(ext).await),
            Err(e) => return Err(e),
        };
        tracing::warn!("external id marked unknown");
        match record.case_system_id {
            // A webhook already named the case while the create was in flight: link
            // it now. Best-effort: the mark is done, and the reconciler finds the
            // reservation (urgent, case id known) if this fails.
            Some(id) => match self.resolve_unknown(ext, &id, EventSource::Webhook, now).await {
                Ok(_) => Ok(self.get_external(ext).await?.unwrap_or(record)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not link the reservation");
                    Ok(record)
                }
            },
            None => Ok(record),
        }
    }
}

/// The reservation becomes `UNKNOWN`, urgent from `now`, kept until `expires_at`.
fn unknown_update(ext: &ExternalCaseId, now: OffsetDateTime, expires_at: OffsetDateTime) -> Expr {
    let mut expr = Expr::new();
    expr.set(attr::STATE, s(ExtState::Unknown.as_str()))
        .set(attr::UPDATED_AT, t(now))
        .set(attr::EXPIRES_AT, unix(expires_at))
        .set_attention(ext.as_str(), Some(&Attention::urgent(now)));
    for (name, value) in codec::unknown_creation_place(ext, Some(now)) {
        expr.set_or_remove(name, value);
    }
    expr
}
