//! The reconciler's per-item backoff: an item it tried and could not settle moves
//! forward in its index, so that the index's query (`before` a cutoff) stops listing it
//! every run, and the tries in a row are counted on the item.

use time::OffsetDateTime;

use crate::codec::{Expr, Reader, attention_value, n, s};
use crate::error::StoreError;
use crate::model::{Attention, AttentionPriority, AttentionTarget};
use crate::schema::{self, ATTN_AT, OGS_CHECKED_AT, attr, format_time};
use crate::store::Store;

/// An entry of one of the reconciler's indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexSlot {
    /// The attention index, at this priority.
    Attention(AttentionPriority),
    /// The ogs index (cases only).
    Ogs,
}

impl IndexSlot {
    fn range_attr(self) -> &'static str {
        match self {
            IndexSlot::Attention(_) => ATTN_AT,
            IndexSlot::Ogs => OGS_CHECKED_AT,
        }
    }

    /// The entry's stored sort-key value at `since`.
    fn value(self, since: OffsetDateTime) -> String {
        match self {
            IndexSlot::Attention(priority) => attention_value(&Attention { priority, since }),
            IndexSlot::Ogs => format_time(since),
        }
    }
}

/// What [`Store::defer_index_entry`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deferral {
    /// Moved to the time asked for; the item's tries in a row, this one included.
    Deferred {
        /// Tries in a row without settling it.
        attempts: u32,
    },
    /// The entry is no longer where it was listed (something wrote it since, or it
    /// left the index): left as that write put it.
    Moved,
}

impl Store {
    /// Moves `target`'s entry in `slot` from `listed` (where the reconciler found it) to
    /// `next(attempts)`, `attempts` being its tries in a row without settling, this one
    /// included, and records that count on the item. Conditional on the entry still
    /// being at `listed` with the count read: a webhook, an API call or another run that
    /// wrote it since wins, and the item stays due as that write put it. The case's
    /// version is not bumped (nothing of the case changes).
    #[tracing::instrument(skip_all, fields(?slot, attempts), err)]
    pub async fn defer_index_entry(
        &self,
        target: &AttentionTarget,
        slot: IndexSlot,
        listed: OffsetDateTime,
        next: impl FnOnce(u32) -> OffsetDateTime,
    ) -> Result<Deferral, StoreError> {
        if slot == IndexSlot::Ogs && matches!(target, AttentionTarget::External(_)) {
            return Err(StoreError::Invalid("only cases are in the ogs index".into()));
        }
        let (pk, sk) = item_key(target);
        let Some(item) = self.get_item(pk.clone(), sk).await? else {
            return Ok(Deferral::Moved);
        };
        let range = slot.range_attr();
        let listed_value = slot.value(listed);
        let r = Reader::new(&item);
        if r.opt_str(range)? != Some(listed_value.as_str()) {
            return Ok(Deferral::Moved);
        }
        let before = r.opt_u64(attr::BACKOFF_ATTEMPTS)?;
        let attempts = u32::try_from(before.unwrap_or(0)).unwrap_or(u32::MAX - 1).saturating_add(1);
        tracing::Span::current().record("attempts", attempts);

        let mut expr = Expr::new();
        expr.set(range, s(slot.value(next(attempts)))).set(attr::BACKOFF_ATTEMPTS, n(u64::from(attempts)));
        let at_listed = format!("{} = {}", expr.name(range), expr.value(s(listed_value)));
        let count_name = expr.name(attr::BACKOFF_ATTEMPTS);
        let same_count = match before {
            None => format!("attribute_not_exists({count_name})"),
            Some(b) => format!("{count_name} = {}", expr.value(n(b))),
        };
        let condition = format!("{at_listed} AND {same_count}");
        match self.update_item(Self::key(pk, sk), &expr, &condition).await {
            Ok(_) => Ok(Deferral::Deferred { attempts }),
            Err(StoreError::ConditionFailed(_)) => Ok(Deferral::Moved),
            Err(e) => Err(e),
        }
    }

    /// The reconciler's tries in a row without settling `target` (0 when none).
    pub async fn backoff_attempts(&self, target: &AttentionTarget) -> Result<u32, StoreError> {
        let (pk, sk) = item_key(target);
        let item = self.get_item(pk, sk).await?;
        let attempts = item.as_ref().map(|i| Reader::new(i).opt_u64(attr::BACKOFF_ATTEMPTS)).transpose()?.flatten();
        Ok(attempts.map_or(0, |a| u32::try_from(a).unwrap_or(u32::MAX)))
    }
}

fn item_key(target: &AttentionTarget) -> (String, &'static str) {
    match target {
        AttentionTarget::Case(id) => (schema::case_pk(id), schema::CASE_SK),
        AttentionTarget::External(ext) => (schema::ext_pk(ext), schema::EXT_SK),
    }
}
