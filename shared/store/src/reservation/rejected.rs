//! `PENDING` → `REJECTED`: Cabital refused the create (a 4xx); the id may be reserved
//! again.

use gateway_cabital::ExternalCaseId;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{Expr, n, s, t, unix};
use crate::error::StoreError;
use crate::model::ExtState;
use crate::schema::attr;
use crate::store::Store;

use super::held_in;

impl Store {
    /// Cabital refused the create (a 4xx): the reservation is closed as `REJECTED` with
    /// Cabital's status, and the id may be reserved again. The submitted body (a name,
    /// a date of birth) is dropped at once: no case holds it, and only its hash is needed
    /// to tell a repeat. Only the holder of `token` may do this; repeating it is harmless.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext, cabital_status), err)]
    pub async fn mark_rejected(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        cabital_status: u16,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut expr = Expr::new();
        expr.set(attr::STATE, s(ExtState::Rejected.as_str()))
            .set(attr::CABITAL_STATUS, n(u64::from(cabital_status)))
            .set(attr::UPDATED_AT, t(now))
            .remove(attr::SUBMITTED)
            .set(attr::EXPIRES_AT, unix(self.retention().required(now)))
            .set_attention(ext.as_str(), None);
        let condition = held_in(&mut expr, token, &[ExtState::Pending, ExtState::Rejected]);
        match self.update_item(Self::ext_key(ext), &expr, &condition).await {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed(_)) => Err(self.ext_refusal(ext).await),
            Err(e) => Err(e),
        }
    }
}
