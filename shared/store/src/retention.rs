//! Retention: how long a case is kept (`RETENTION_DAYS`), through the table's TTL
//! attribute (`expiresAt`, Unix seconds), which DynamoDB deletes items after.
//!
//! A case is kept [`Retention`] after its last write: its decision, or what came after
//! it (ongoing screening's checks and hits keep a screened customer's case alive); a
//! case never decided, after its last activity. Every item of a case carries a TTL from
//! its first write:
//! - the case item holds the case's bound, at least its last write plus the retention
//!   and at most that plus the slack ([`Retention::slack`]);
//! - its events and de-duplication items carry the bound they were written under, and
//!   are moved to each new bound before the case is ([`Store::retain`]), so that no item
//!   of a case expires before the case;
//! - its reservation carries its own last write plus the retention, then its case's
//!   bound once it names the case;
//! - the short-lived guards (`SEEN#`, `REFETCH`) keep their own, shorter TTL.
//!
//! The bound moves only when a write would pass it, so a case's items are rewritten at
//! most once per slack, not on every write.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use gateway_cabital::CaseSystemId;
use time::OffsetDateTime;

use crate::codec::{Expr, Item, Reader, s, unix};
use crate::error::{StoreError, from_sdk};
use crate::model::CaseRecord;
use crate::schema::{self, PK, SK, attr};
use crate::store::Store;

/// The longest slack: a bound is moved at most this far past what the retention asks.
const MAX_SLACK: Duration = Duration::from_secs(30 * 86_400);

/// A day: how long a refetch claim written before retention existed is kept.
const DAY: Duration = Duration::from_secs(86_400);

/// Items rewritten at once when a bound moves.
const EXTEND_CONCURRENCY: usize = 8;

/// How long a case is kept after its last write (`RETENTION_DAYS`, whole days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    days: u32,
}

impl Retention {
    /// The default: five years (1827 days, two leap days included), the usual AML
    /// record-keeping period after a relationship ends.
    pub const DEFAULT_DAYS: u32 = 1827;
    /// The shortest retention taken.
    pub const MIN_DAYS: u32 = 1;
    /// The longest retention taken (a hundred years: beyond it is a typo).
    pub const MAX_DAYS: u32 = 36_500;

    /// A retention of `days` days; `None` outside [`Self::MIN_DAYS`]..=[`Self::MAX_DAYS`].
    pub fn days(days: u32) -> Option<Self> {
        (Self::MIN_DAYS..=Self::MAX_DAYS).contains(&days).then_some(Retention { days })
    }

    /// The number of days.
    pub fn as_days(&self) -> u32 {
        self.days
    }

    /// The retention as a duration.
    pub fn period(&self) -> Duration {
        Duration::from_secs(u64::from(self.days) * 86_400)
    }

    /// How far past what the retention asks a bound is set when it moves: a tenth of the
    /// retention, at most 30 days. A case is deleted no later than its last write plus
    /// the retention plus this (plus DynamoDB's own delay, up to about two days).
    pub fn slack(&self) -> Duration {
        (self.period() / 10).min(MAX_SLACK)
    }

    /// The least bound a write at `now` needs: `now` plus the retention.
    pub fn required(&self, now: OffsetDateTime) -> OffsetDateTime {
        whole_seconds(now + self.period())
    }

    /// The bound a write at `now` sets when it must move it: `now` plus the retention
    /// plus the slack.
    pub fn bound(&self, now: OffsetDateTime) -> OffsetDateTime {
        whole_seconds(now + self.period() + self.slack())
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention { days: Self::DEFAULT_DAYS }
    }
}

/// As the TTL attribute holds it: whole seconds, rounded up.
fn whole_seconds(at: OffsetDateTime) -> OffsetDateTime {
    let secs = at.unix_timestamp() + i64::from(at.nanosecond() > 0);
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(at)
}

impl Store {
    /// Holds `new` (the case as a write at `now` leaves it, `current` as read) to the
    /// retention: the bound read is kept while it covers `now` plus the retention;
    /// otherwise every other item of the case and its reservation are moved to a new
    /// bound first, and `new` carries it. Call it before building the write's items (its
    /// events carry `new`'s bound), and write `new` conditional on the version read: a
    /// writer that added an item since then makes the write fail, and its retry extends
    /// that item too.
    pub(crate) async fn retain(
        &self,
        current: Option<&CaseRecord>,
        new: &mut CaseRecord,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let retention = self.retention();
        if let Some(bound) = current.and_then(|c| c.expires_at)
            && bound >= retention.required(now)
        {
            new.expires_at = Some(bound);
            return Ok(());
        }
        let bound = retention.bound(now);
        if let Some(past) = current.and_then(|c| c.expires_at).filter(|at| *at <= now) {
            // Its retention ended: DynamoDB may have deleted some of its items already
            // (within about two days of the bound), and what is left is kept anew.
            tracing::warn!(expired_at = %past, "case written after its retention bound");
        }
        if let Some(current) = current {
            // Boxed: a rare path, kept out of every case write's future.
            let moved = Box::pin(self.extend_items(current, bound)).await?;
            tracing::info!(items = moved, "retention bound moved");
        }
        new.expires_at = Some(bound);
        Ok(())
    }

    /// Moves every item of the case (but the case item, written next, and the guards
    /// with their own TTL) and its reservation to `bound`, where they hold an earlier
    /// one or none. Each write only ever makes an item's TTL later, so a repeat, or two
    /// writers at once, are harmless. Returns how many items were moved.
    async fn extend_items(&self, case: &CaseRecord, bound: OffsetDateTime) -> Result<usize, StoreError> {
        let id = case.case_system_id;
        let keys = self.items_to_extend(&id, bound).await?;
        let mut moved = futures::stream::iter(keys)
            .map(|key| self.extend_item(key, bound, None))
            .buffer_unordered(EXTEND_CONCURRENCY)
            .try_fold(0, |n, moved| async move { Ok(n + usize::from(moved)) })
            .await?;
        // The reservation, if it still names this case.
        moved += usize::from(self.extend_item(Self::ext_key(&case.external_case_id), bound, Some(&id)).await?);
        Ok(moved)
    }

    /// The keys of the case's items whose TTL is earlier than `bound` (or absent),
    /// read with their keys and TTL only.
    async fn items_to_extend(&self, id: &CaseSystemId, bound: OffsetDateTime) -> Result<Vec<Item>, StoreError> {
        let mut keys = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .case_partition_query(id, None)
                .projection_expression(format!("{PK}, {SK}, {}", attr::EXPIRES_AT))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(from_sdk)?;
            for item in page.items() {
                let sk = item.get(SK).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or_default();
                if !holds_the_case_bound(sk)
                    || Reader::new(item).opt_unix(attr::EXPIRES_AT)?.is_some_and(|at| at >= bound)
                {
                    continue;
                }
                keys.push(Item::from([(PK.to_owned(), item[PK].clone()), (SK.to_owned(), item[SK].clone())]));
            }
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(keys),
            }
        }
    }

    /// Sets the item's TTL to `bound` if it exists and holds an earlier one (and, with
    /// `of_case`, names that case). Returns whether it was moved.
    async fn extend_item(
        &self,
        key: Item,
        bound: OffsetDateTime,
        of_case: Option<&CaseSystemId>,
    ) -> Result<bool, StoreError> {
        let mut expr = Expr::new();
        expr.set(attr::EXPIRES_AT, unix(bound));
        let ttl = expr.name(attr::EXPIRES_AT);
        let mut condition = format!(
            "attribute_exists({}) AND (attribute_not_exists({ttl}) OR {ttl} < {})",
            expr.name(PK),
            expr.value(unix(bound))
        );
        if let Some(id) = of_case {
            condition.push_str(&format!(
                " AND {} = {}",
                expr.name(attr::CASE_SYSTEM_ID),
                expr.value(s(id.to_string()))
            ));
        }
        let out = self.update_item(key, &expr, &condition).await;
        match out {
            Ok(_) => Ok(true),
            // Gone, already later, or not this case's.
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// Where a backfill stands: pass it back for the next page.
#[derive(Debug, Clone)]
pub struct BackfillCursor(Item);

/// What one page of [`Store::backfill_retention`] did.
#[derive(Debug, Clone, Default)]
pub struct BackfillPage {
    /// Cases given a bound (and their items moved to it).
    pub cases: u64,
    /// Items given a TTL, the cases' own and their reservations' included.
    pub items: u64,
    /// Items without a TTL whose case is not in the table (left as they are).
    pub orphans: u64,
    /// The next page's start; `None` when the table has been read through.
    pub next: Option<BackfillCursor>,
}

impl Store {
    /// Gives every item written before retention existed (no `expiresAt`) its TTL, one
    /// page of a scan at a time, by the rule every write now follows: a case gets the
    /// bound its last write implies (which may be past: DynamoDB then deletes it), and
    /// every item of it that bound or later; a reservation naming no case, its last
    /// write plus the retention; a refetch claim, a day from `now`. Safe to repeat and
    /// to run beside the functions: every write only ever sets a TTL where none is (or
    /// an earlier one), and a case written meanwhile has its bound from that write.
    /// Start with `None`; pass [`BackfillPage::next`] back until it is `None`.
    #[tracing::instrument(skip_all, fields(cases, items), err)]
    pub async fn backfill_retention(
        &self,
        start: Option<BackfillCursor>,
        now: OffsetDateTime,
    ) -> Result<BackfillPage, StoreError> {
        let mut expr = Expr::new();
        let filter = format!("attribute_not_exists({})", expr.name(attr::EXPIRES_AT));
        let projection = format!("{}, {}, {}", expr.name(PK), expr.name(SK), expr.name(attr::CASE_SYSTEM_ID));
        let scanned = self
            .client()
            .scan()
            .table_name(self.table_name())
            .filter_expression(filter)
            .projection_expression(projection)
            .set_expression_attribute_names(expr.names())
            .set_exclusive_start_key(start.map(|c| c.0))
            .send()
            .await
            .map_err(from_sdk)?;
        let mut page =
            BackfillPage { next: scanned.last_evaluated_key.clone().map(BackfillCursor), ..Default::default() };
        let mut cases = std::collections::BTreeSet::new();
        for item in scanned.items() {
            let r = Reader::new(item);
            let (pk, sk) = (r.str(PK)?, r.str(SK)?);
            if let Some(id) = pk.strip_prefix(schema::CASE_PK_PREFIX) {
                if sk == schema::REFETCH_SK {
                    let key = Self::key(pk.to_owned(), sk);
                    page.items += u64::from(self.extend_item(key, whole_seconds(now + DAY), None).await?);
                } else {
                    cases.insert(
                        id.parse::<CaseSystemId>().map_err(|_| StoreError::corrupt("a case key is not a UUID"))?,
                    );
                }
            } else if pk.starts_with(schema::EXT_PK_PREFIX) {
                page.items += u64::from(self.backfill_reservation(pk, sk).await?);
                // Then moved with its case, if it names one.
                if let Some(Ok(id)) = r.opt_str(attr::CASE_SYSTEM_ID)?.map(str::parse::<CaseSystemId>) {
                    cases.insert(id);
                }
            }
        }
        for id in cases {
            match self.backfill_case(&id).await? {
                Some(items) => {
                    page.cases += 1;
                    page.items += items;
                }
                None => page.orphans += 1,
            }
        }
        let span = tracing::Span::current();
        span.record("cases", page.cases);
        span.record("items", page.items);
        Ok(page)
    }

    /// A case's bound (the one it has, or the one its last write implies), on every item
    /// of it and then on the case; `None` if the case is not in the table.
    async fn backfill_case(&self, id: &CaseSystemId) -> Result<Option<u64>, StoreError> {
        let Some(case) = self.get_case(id).await? else { return Ok(None) };
        let bound = case.expires_at.unwrap_or_else(|| self.retention().bound(case.updated_at));
        let mut items = u64::try_from(self.extend_items(&case, bound).await?).unwrap_or(u64::MAX);
        if case.expires_at.is_none() {
            // At the version read and only where none is: a write meanwhile set its own.
            let mut expr = Expr::new();
            expr.set(attr::EXPIRES_AT, unix(bound));
            let condition = format!(
                "{} = {} AND attribute_not_exists({})",
                expr.name(attr::VERSION),
                expr.value(crate::codec::n(case.version)),
                expr.name(attr::EXPIRES_AT)
            );
            match self.update_item(Self::case_key(id), &expr, &condition).await {
                Ok(_) => items += 1,
                Err(StoreError::ConditionFailed(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Some(items))
    }

    /// A reservation: its last write plus the retention (its case's bound, if later,
    /// follows with the case).
    async fn backfill_reservation(&self, pk: &str, sk: &str) -> Result<bool, StoreError> {
        let Some(item) = self.get_item(pk.to_owned(), sk).await? else { return Ok(false) };
        let updated = Reader::new(&item).time(attr::UPDATED_AT)?;
        self.extend_item(Self::key(pk.to_owned(), sk), self.retention().required(updated), None).await
    }
}

/// Whether an item of a case's partition carries the case's bound: all but the case item
/// itself and the guards with their own TTL.
pub(crate) fn holds_the_case_bound(sk: &str) -> bool {
    sk != schema::CASE_SK && sk != schema::REFETCH_SK && !sk.starts_with(schema::SEEN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retention_is_whole_days_within_its_range() {
        assert_eq!(Retention::days(0), None);
        assert_eq!(Retention::days(36_501), None);
        assert_eq!(Retention::days(1).unwrap().period(), Duration::from_secs(86_400));
        assert_eq!(Retention::default().as_days(), 1827);
    }

    #[test]
    fn the_slack_is_a_tenth_of_the_retention_and_at_most_30_days() {
        assert_eq!(Retention::days(1).unwrap().slack(), Duration::from_secs(8_640));
        assert_eq!(Retention::days(100).unwrap().slack(), Duration::from_secs(10 * 86_400));
        assert_eq!(Retention::default().slack(), Duration::from_secs(30 * 86_400));
    }

    #[test]
    fn a_bound_covers_the_retention_in_whole_seconds_rounded_up() {
        let r = Retention::days(2).unwrap();
        let now = datetime!(2026-12-03 10:00:00.5 UTC);
        assert_eq!(r.required(now), datetime!(2026-12-05 10:00:01 UTC));
        assert_eq!(r.bound(now), datetime!(2026-12-05 14:48:01 UTC));
        assert!(r.bound(now) >= now + r.period() + r.slack());
    }

    #[test]
    fn the_guards_keep_their_own_ttl() {
        assert!(holds_the_case_bound("EVENT#2026-12-03T10:00:00.000000Z#CREATED#0000abcd"));
        assert!(holds_the_case_bound("WEBHOOK#ab"));
        assert!(holds_the_case_bound("NOTICE#ab"));
        assert!(!holds_the_case_bound("CASE"));
        assert!(!holds_the_case_bound("REFETCH"));
        assert!(!holds_the_case_bound("SEEN#ab"));
    }
}
