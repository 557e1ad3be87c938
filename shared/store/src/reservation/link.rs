//! `UNKNOWN` → `CREATED` when a webhook (or a later look) names the case: the
//! reservation, the case and a CREATED event in one transaction. A `PENDING` one only
//! gets the case's id noted, for its create to finish.

use gateway_cabital::{CaseSystemId, ExternalCaseId, Pii, ScreenType};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, Expr, s, t};
use crate::error::{StoreError, TxError};
use crate::model::{CaseRecord, EventDetail, EventKind, EventSource, ExtRecord, ExtState, Origin, Resolution};
use crate::retry::{CONFLICT_ATTEMPTS, Retry};
use crate::schema::attr;
use crate::store::Store;

use super::created::created_update;
use super::held_in;

impl Store {
    /// A webhook (or a later look) names `case_system_id` as the case created for
    /// `ext`:
    /// - `UNKNOWN`: linked now, in one transaction: the reservation becomes `CREATED`,
    ///   the case gets a CREATED event (what was submitted, no answer) and is marked as
    ///   created through the API (or created, urgent, if not yet known).
    /// - `PENDING`: the create is still in flight; the id is noted on the reservation
    ///   and the creating call finishes the job ([`Resolution::Noted`]).
    /// - `CREATED` with this case: nothing to do. With another case, or `REJECTED`:
    ///   [`StoreError::ConditionFailed`].
    #[tracing::instrument(skip_all, fields(external_case_id = %ext, case_system_id = %case_system_id), err)]
    pub async fn resolve_unknown(
        &self,
        ext: &ExternalCaseId,
        case_system_id: &CaseSystemId,
        source: EventSource,
        now: OffsetDateTime,
    ) -> Result<Resolution, StoreError> {
        let mut retry = Retry::new(CONFLICT_ATTEMPTS);
        loop {
            let rec =
                self.get_external(ext).await?.ok_or_else(|| StoreError::NotFound(format!("external id {ext}")))?;
            match rec.state {
                ExtState::Created if rec.case_system_id.as_ref() == Some(case_system_id) => {
                    return Ok(Resolution::AlreadyLinked);
                }
                ExtState::Created | ExtState::Rejected => {
                    return Err(StoreError::ConditionFailed(format!(
                        "external id {ext} is {} and cannot be linked to case {case_system_id}",
                        rec.state
                    )));
                }
                ExtState::Pending => match self.note_case(ext, rec.reservation_token, case_system_id, now).await {
                    Ok(()) => return Ok(Resolution::Noted),
                    Err(StoreError::ConditionFailed(_)) => retry.lost(StoreError::TransactionConflict)?,
                    Err(e) => return Err(e),
                },
                ExtState::Unknown => match self.link_unknown(&rec, case_system_id, source, now).await {
                    Ok(()) => {
                        tracing::info!("unknown creation linked");
                        return Ok(Resolution::Linked);
                    }
                    Err(TxError::Cancelled(r))
                        if r.transient() || r.0.iter().any(|c| c == "ConditionalCheckFailed") =>
                    {
                        retry.lost(StoreError::TransactionConflict)?;
                    }
                    Err(e) => return Err(e.into_store()),
                },
            }
        }
    }

    /// Links the reservation of `ext` to the case a webhook named, if its create never
    /// got (or has not yet got) its answer. Best-effort: the delivery is already
    /// durable, and the reconciler finds the reservation in the attention index anyway.
    pub(crate) async fn link_reservation(
        &self,
        ext: &ExternalCaseId,
        case_system_id: &CaseSystemId,
        now: OffsetDateTime,
    ) {
        let pending = match self.get_external(ext).await {
            // A pending one already noted needs nothing more until its create ends.
            Ok(Some(rec)) => {
                rec.state == ExtState::Unknown || (rec.state == ExtState::Pending && rec.case_system_id.is_none())
            }
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(error = %e, "could not read the reservation to link it");
                false
            }
        };
        if pending && let Err(e) = self.resolve_unknown(ext, case_system_id, EventSource::Webhook, now).await {
            tracing::warn!(error = %e, "could not link the reservation");
        }
    }

    /// `PENDING` (held by `token`): notes the case's id on the reservation, unless
    /// another was noted.
    pub(super) async fn note_case(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        case_system_id: &CaseSystemId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut expr = Expr::new();
        expr.set(attr::CASE_SYSTEM_ID, s(case_system_id.to_string()))
            .set(attr::LINKED_AT, t(now))
            .set(attr::UPDATED_AT, t(now));
        let held = held_in(&mut expr, token, &[ExtState::Pending]);
        let condition = format!(
            "{held} AND (attribute_not_exists({}) OR {} = {})",
            expr.name(attr::CASE_SYSTEM_ID),
            expr.name(attr::CASE_SYSTEM_ID),
            expr.value(s(case_system_id.to_string())),
        );
        self.update_item(Self::ext_key(ext), &expr, &condition).await.map(drop)
    }

    /// `UNKNOWN` → `CREATED`, with the case written (updated, or created urgent if not
    /// yet known) and a CREATED event, in one transaction.
    async fn link_unknown(
        &self,
        rec: &ExtRecord,
        case_system_id: &CaseSystemId,
        source: EventSource,
        now: OffsetDateTime,
    ) -> Result<(), TxError> {
        let screen_type = rec.submitted.as_ref().and_then(screen_type_of);
        let current = self.get_case(case_system_id).await?;
        let mut case = match &current {
            Some(current) => {
                let mut new = current.clone();
                new.origin = Origin::Api;
                new.screen_type = new.screen_type.or(screen_type);
                new.updated_at = now;
                new.version = current.version + 1;
                new
            }
            // Known only from the reservation: Cabital's current state must be read.
            None => CaseRecord::new(
                *case_system_id,
                rec.external_case_id.clone(),
                Origin::Api,
                screen_type,
                None,
                None,
                now,
            ),
        };
        self.retain(current.as_ref(), &mut case, now).await?;
        let mut expr = created_update(&rec.external_case_id, &case, now);
        expr.set(attr::LINKED_AT, t(now));
        let condition = held_in(&mut expr, rec.reservation_token, &[ExtState::Unknown]);
        let ext_update = self.tx_update(Self::ext_key(&rec.external_case_id), &expr, &condition)?;
        let detail = EventDetail::Created { submitted: rec.submitted.clone(), response: None };
        let (_, event) = self.tx_event(&mut case, now, source, &detail)?;
        let case_write = match &current {
            Some(current) => self.tx_case_update(&case, current.version)?,
            None => self.tx_put_new(codec::case_item(&case))?,
        };
        debug_assert_eq!(detail.kind(), EventKind::Created);
        self.transact(vec![ext_update, case_write, event]).await
    }
}

/// The `screenType` of a submitted body, if it has a valid one.
fn screen_type_of(body: &Pii<String>) -> Option<ScreenType> {
    let value: serde_json::Value = serde_json::from_str(body.expose()).ok()?;
    value.get("screenType")?.as_str()?.parse().ok()
}
