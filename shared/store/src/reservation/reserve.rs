//! Absent or `REJECTED` → `PENDING`: an external id reserved for a create about to be
//! sent to Cabital.

use gateway_cabital::{ExternalCaseId, Pii};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, Expr, s};
use crate::error::{StoreError, from_sdk};
use crate::model::{Attention, ExtRecord, ExtState, Reservation};
use crate::retry::{CONFLICT_ATTEMPTS, Retry};
use crate::schema::{PK, attr};
use crate::store::{Store, check_sha256};

impl Store {
    /// Reserves `ext` for a create whose canonical request hashes to `request_hash`
    /// (lowercase hex SHA-256) and whose body is `submitted` (kept, so that what was
    /// sent is on record even if Cabital's answer never comes).
    ///
    /// One conditional write: it succeeds when the id is new or its last reservation was
    /// rejected by Cabital. Otherwise the existing reservation is returned; compare its
    /// hash with [`ExtRecord::same_request`]. Of concurrent reservations, exactly one
    /// wins.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext), err)]
    pub async fn reserve_external_id(
        &self,
        ext: &ExternalCaseId,
        request_hash: &str,
        submitted: &Pii<String>,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        check_sha256(request_hash, "request_hash")?;
        let mut retry = Retry::new(CONFLICT_ATTEMPTS);
        loop {
            let token = Uuid::new_v4();
            let record = ExtRecord {
                external_case_id: ext.clone(),
                request_hash: request_hash.to_owned(),
                state: ExtState::Pending,
                reservation_token: token,
                case_system_id: None,
                cabital_status: None,
                submitted: Some(submitted.clone()),
                linked_at: None,
                created_at: now,
                updated_at: now,
                // A create in flight is urgent once it is stuck: the reconciler looks
                // only at pending reservations older than an invocation can live.
                attention: Some(Attention::urgent(now)),
                // Kept the retention after its last write; a created case's bound later.
                expires_at: Some(self.retention().required(now)),
            };
            let mut expr = Expr::new();
            let condition = format!(
                "attribute_not_exists({}) OR {} = {}",
                expr.name(PK),
                expr.name(attr::STATE),
                expr.value(s(ExtState::Rejected.as_str()))
            );
            let put = self
                .client()
                .put_item()
                .table_name(self.table_name())
                .set_item(Some(codec::ext_item(&record)))
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .send()
                .await
                .map_err(from_sdk);
            match put {
                Ok(_) => {
                    tracing::info!("external id reserved");
                    return Ok(Reservation::Reserved { token });
                }
                Err(StoreError::ConditionFailed(_)) => match self.get_external(ext).await? {
                    // Rejected again in between: the id is free, try once more.
                    Some(existing) if existing.state == ExtState::Rejected => {
                        retry.lost(StoreError::TransactionConflict)?
                    }
                    Some(existing) => return Ok(Reservation::Existing(existing)),
                    None => retry.lost(StoreError::TransactionConflict)?,
                },
                Err(e) => return Err(e),
            }
        }
    }
}
