//! An external id's reservation, a state machine with one module per transition; each
//! holds its transition's condition and its item updates.
//!
//! - [`reserve`]: absent or `REJECTED` → `PENDING`, for a create about to be sent.
//! - [`unknown`]: `PENDING` → `UNKNOWN`, when Cabital's answer never came (or named no
//!   case) or the invocation died mid-create.
//! - [`rejected`]: `PENDING` → `REJECTED`, when Cabital refused the create.
//! - [`created`]: `PENDING` or `UNKNOWN` → `CREATED`, with Cabital's answer.
//! - [`link`]: `UNKNOWN` → `CREATED`, when a webhook names the case (on `PENDING`, the
//!   case's id is only noted, for the create to finish).
//!
//! Only the holder of the reservation's token moves it, except the reconciler's expiry of
//! a stuck `PENDING` and a link.

mod created;
mod link;
mod rejected;
mod reserve;
mod unknown;

use gateway_cabital::ExternalCaseId;
use uuid::Uuid;

use crate::codec::{Expr, s};
use crate::error::StoreError;
use crate::model::ExtState;
use crate::schema::attr;
use crate::store::Store;

/// The condition "held under `token`, in one of `states`".
fn held_in(expr: &mut Expr, token: Uuid, states: &[ExtState]) -> String {
    let held = format!("{} = {}", expr.name(attr::RESERVATION_TOKEN), expr.value(s(token.to_string())));
    let state = expr.name(attr::STATE);
    let values: Vec<String> = states.iter().map(|st| expr.value(s(st.as_str()))).collect();
    match values.as_slice() {
        [one] => format!("{held} AND {state} = {one}"),
        many => format!("{held} AND {state} IN ({})", many.join(", ")),
    }
}

impl Store {
    /// Why a conditional write on a reservation was refused, for the error.
    async fn ext_refusal(&self, ext: &ExternalCaseId) -> StoreError {
        match self.get_external(ext).await {
            Ok(None) => StoreError::NotFound(format!("external id {ext}")),
            Ok(Some(rec)) => StoreError::ConditionFailed(format!(
                "external id {ext} is {} (or reserved under another token)",
                rec.state
            )),
            Err(e) => e,
        }
    }
}
