//! Scheduled reconciliation: ask Cabital about every case a webhook did not settle.

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use futures::StreamExt;
use gateway_cabital::{CaseSystemId, Deadline};
use gateway_store::{
    AttentionPriority, AttentionRef, AttentionTarget, Deferral, ExtState, IndexSlot, MAX_INDEX_PAGE, RemoteCheck,
    StoreError,
};
use governor::{Quota, RateLimiter};
use serde::Serialize;
use time::OffsetDateTime;

use crate::gateway::Gateway;
use crate::settings::ReconcileSettings;

/// One run's figures, logged as one JSON line and emitted as metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Items found needing a look (the indexes are read page by page while there is
    /// time, so more may be waiting when the run ran out of it).
    pub found: usize,
    /// Cases asked about.
    pub checked: usize,
    /// Of those, changed by what Cabital said.
    pub changed: usize,
    /// Of those, unchanged.
    pub unchanged: usize,
    /// Failed (left for the next run).
    pub failed: usize,
    /// Of those, failed in a way no retry fixes (Cabital refused the case: a 404, a
    /// 4xx): they back off, and a person must look.
    pub failed_for_good: usize,
    /// Found but not started, or abandoned in flight, for lack of time (left for the
    /// next run).
    pub skipped_for_time: usize,
    /// Creations found stuck pending and marked unknown.
    pub marked_unknown: usize,
    /// Unknown creations linked to their case.
    pub resolved_unknown: usize,
    /// Unknown creations old enough to need a person.
    pub unknown_needing_attention: usize,
    /// Cases given up for want of a suggestion this run (each reported once).
    pub no_suggestion_given_up: usize,
    /// Tried and not settled (Cabital refused the case, an unknown creation still
    /// without its case): moved forward in their index, each waiting twice as long as
    /// the last time, up to `backoff_max`.
    pub backed_off: usize,
    /// Items still due when the run ended and not settled by it (failed, skipped for
    /// time, or beyond what one run takes), counted in the indexes up to
    /// [`gateway_store::MAX_DUE_COUNT`] each: above zero run after run, the reconciler
    /// does not keep up.
    pub due_not_checked: usize,
    /// Checks this run had time for at `rate_per_sec`: the most one run can do.
    pub capacity: usize,
    /// Wall time of the run.
    pub duration_ms: u64,
}

enum Outcome {
    Changed,
    Unchanged,
    Failed {
        retryable: bool,
    },
    MarkedUnknown,
    ResolvedUnknown,
    UnknownNeedsPerson,
    /// Checked, still no suggestion long after creation: given up and reported.
    GaveUpNoSuggestion,
    /// An unknown creation that no webhook has named yet, not old enough to report.
    UnknownWaiting,
    ListingFailed,
    Nothing,
}

impl Outcome {
    /// Tried, and trying again next run would end the same way: the item backs off.
    /// A retryable failure is the service's (Cabital or the table down), not the
    /// item's, and is tried again next run.
    fn backs_off(&self) -> bool {
        matches!(self, Outcome::Failed { retryable: false } | Outcome::UnknownNeedsPerson | Outcome::UnknownWaiting)
    }
}

/// Why a run failed as a whole (worth the schedule's retry).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The indexes could not be read.
    #[error("could not list the cases needing a look: {0}")]
    Listing(#[from] gateway_store::StoreError),
    /// Every item tried failed with a retryable error, and none succeeded.
    #[error("all {0} checks failed with retryable errors")]
    AllFailed(usize),
}

fn ago(now: OffsetDateTime, d: Duration) -> OffsetDateTime {
    now - time::Duration::try_from(d).unwrap_or(time::Duration::ZERO)
}

/// One of the sparse indexes the run reads its work from.
#[derive(Debug, Clone, Copy)]
enum Index {
    /// Flagged for refresh, unknown or pending creations.
    Urgent,
    /// Awaiting a suggestion since the last check.
    Awaiting,
    /// Under ongoing screening, by last check.
    Ogs,
}

impl Index {
    fn slot(self) -> IndexSlot {
        match self {
            Index::Urgent => IndexSlot::Attention(AttentionPriority::Urgent),
            Index::Awaiting => IndexSlot::Attention(AttentionPriority::Awaiting),
            Index::Ogs => IndexSlot::Ogs,
        }
    }
}

/// Where an item tried `attempts` times in a row without settling goes in its index,
/// `cutoff` being the run's cutoff there and `tried` how far into the run it was tried:
/// due again 2^attempts runs after the try (two, four, eight...), at most `backoff_max`,
/// less half a run, so that a run starting a little early (EventBridge's jitter) does
/// not push it one run further.
fn backed_off_since(
    s: &ReconcileSettings,
    cutoff: OffsetDateTime,
    tried: time::Duration,
    attempts: u32,
) -> OffsetDateTime {
    let runs = 1u32.checked_shl(attempts).unwrap_or(u32::MAX);
    let wait = s.schedule_period.saturating_mul(runs).min(s.backoff_max.max(s.schedule_period));
    let wait = wait.saturating_sub(s.schedule_period / 2);
    cutoff + tried.max(time::Duration::ZERO) + time::Duration::try_from(wait).unwrap_or(time::Duration::ZERO)
}

/// The ongoing-screening cutoff: every case that would pass `ogs_check_after` before the
/// next run is due now, so that no check comes later than `ogs_check_after` and each
/// run's batch is what the population and the schedule make due (about the population
/// x the period / `ogs_check_after`). Looking ahead at most a tenth of the cycle keeps
/// the extra checks that costs under a tenth, however slow the schedule.
fn ogs_cutoff(s: &ReconcileSettings, now: OffsetDateTime) -> OffsetDateTime {
    let ahead = s.schedule_period.min(s.ogs_check_after / 10);
    ago(now, s.ogs_check_after) + time::Duration::try_from(ahead).unwrap_or(time::Duration::ZERO)
}

/// Reading one index page by page: each page is the oldest entries still due, so the
/// entries settled meanwhile have left it and the rest come next.
struct IndexPages {
    index: Index,
    cutoff: OffsetDateTime,
    /// At most this many entries from this index per run.
    limit: usize,
    /// New entries taken so far.
    taken: usize,
    /// The first page, read before any work starts.
    first: Option<Vec<AttentionRef>>,
    done: bool,
}

/// What the work stream carries.
enum Work {
    /// An entry, with the index it was listed from and that index's cutoff.
    Target(Index, OffsetDateTime, AttentionRef),
    /// A later page could not be read: counted as a retryable failure.
    ListingFailed,
}

/// The run's listing: the indexes in order of urgency, each read page by page while
/// there is time, every target handed out once.
struct Listing<'a> {
    gateway: &'a Gateway,
    indexes: VecDeque<IndexPages>,
    seen: HashSet<AttentionTarget>,
    stop_at: Instant,
}

impl Listing<'_> {
    fn page_size(pages: &IndexPages) -> usize {
        pages.limit.saturating_sub(pages.taken).min(MAX_INDEX_PAGE)
    }

    async fn query(gateway: &Gateway, index: Index, cutoff: OffsetDateTime, size: usize) -> QueryResult {
        match index {
            Index::Urgent => gateway.store.urgent_attention(cutoff, size).await,
            Index::Awaiting => gateway.store.awaiting_since_before(cutoff, size).await,
            Index::Ogs => gateway.store.ogs_checked_before(cutoff, size).await,
        }
    }

    /// The next page's new targets; `None` when every index is done or time is up.
    async fn next_page(&mut self) -> Option<Vec<Work>> {
        loop {
            let pages = self.indexes.front_mut()?;
            let size = Self::page_size(pages);
            let page = match pages.first.take() {
                Some(page) => page,
                None if pages.done || size == 0 => {
                    self.indexes.pop_front();
                    continue;
                }
                None if Instant::now() >= self.stop_at => return None,
                None => match Self::query(self.gateway, pages.index, pages.cutoff, size).await {
                    Ok(page) => page,
                    Err(e) => {
                        tracing::warn!(index = ?pages.index, error = %e, "reading the next page of an index failed");
                        pages.done = true;
                        return Some(vec![Work::ListingFailed]);
                    }
                },
            };
            let full = page.len() >= size;
            let (index, cutoff) = (pages.index, pages.cutoff);
            let fresh: Vec<Work> = page
                .into_iter()
                .filter(|r| self.seen.insert(r.target.clone()))
                .map(|r| Work::Target(index, cutoff, r))
                .collect();
            pages.taken += fresh.len();
            // A short page is the end of the index; a page of nothing new means the rest
            // is what this run already holds (in flight, failed, or left as it was).
            if !full || fresh.is_empty() || pages.taken >= pages.limit {
                pages.done = true;
            }
            if !fresh.is_empty() {
                return Some(fresh);
            }
        }
    }
}

type QueryResult = Result<Vec<AttentionRef>, StoreError>;

impl Gateway {
    /// Finds what needs a look through the sparse indexes (never a scan), page by page,
    /// and settles it: no new work starts `deadline_margin` before `deadline`, and work
    /// still in flight at half the margin is abandoned (each write is one atomic,
    /// conditional request, so abandoning one leaves nothing half done). What is left is
    /// found next run.
    pub async fn reconcile(&self, s: &ReconcileSettings, deadline: Instant) -> Result<Summary, ReconcileError> {
        let started = Instant::now();
        let now = gateway_runtime::now();
        let stop_at = deadline.checked_sub(s.deadline_margin).unwrap_or(deadline);
        let abandon_at = deadline.checked_sub(s.deadline_margin / 2).unwrap_or(deadline);

        // The first page of every index before any work, read together (one round trip
        // on DynamoDB): a table that cannot be read fails the run, for the schedule's
        // retry.
        let plan = [
            (Index::Urgent, ago(now, s.refresh_grace), s.batch),
            (Index::Awaiting, ago(now, s.stale_after), s.batch),
            (Index::Ogs, ogs_cutoff(s, now), s.ogs_batch),
        ];
        let cutoffs = plan.map(|(_, cutoff, _)| cutoff);
        let firsts = futures::future::try_join_all(
            plan.iter().map(|&(index, cutoff, limit)| Listing::query(self, index, cutoff, limit.min(MAX_INDEX_PAGE))),
        )
        .await?;
        let indexes: VecDeque<IndexPages> = plan
            .into_iter()
            .zip(firsts)
            .map(|((index, cutoff, limit), first)| IndexPages {
                index,
                cutoff,
                limit,
                taken: 0,
                first: Some(first),
                done: false,
            })
            .collect();
        let listing = Listing { gateway: self, indexes, seen: HashSet::new(), stop_at };

        let rate = NonZeroU32::new(s.rate_per_sec).unwrap_or(NonZeroU32::MIN);
        let capacity =
            (f64::from(rate.get()) * stop_at.saturating_duration_since(Instant::now()).as_secs_f64()) as usize;
        // A tenth of a second's worth of burst: a check that starts late (a slow task, a
        // busy core) is made up for instead of lost, while no second ever carries more
        // than the rate plus that tenth.
        let burst = NonZeroU32::new(rate.get() / 10).unwrap_or(NonZeroU32::MIN);
        let limiter = RateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
        let work = futures::stream::unfold(listing, |mut listing| async move {
            let page = listing.next_page().await?;
            Some((futures::stream::iter(page), listing))
        })
        .flatten();

        let outcomes: Vec<Option<(Outcome, bool)>> = work
            .map(|work| {
                let limiter = &limiter;
                async move {
                    let (index, cutoff, listed) = match work {
                        Work::Target(index, cutoff, listed) => (index, cutoff, listed),
                        Work::ListingFailed => return Some((Outcome::ListingFailed, false)),
                    };
                    let target = &listed.target;
                    if Instant::now() >= stop_at {
                        return None;
                    }
                    // Wait for a slot, but never past the deadline.
                    let wait = stop_at.saturating_duration_since(Instant::now());
                    if tokio::time::timeout(wait, limiter.until_ready()).await.is_err() {
                        return None;
                    }
                    let abandon = tokio::time::Instant::from_std(abandon_at);
                    match tokio::time::timeout_at(abandon, self.settle_or_back_off(s, index, &listed, cutoff, now)).await {
                        Ok(tried) => Some(tried),
                        Err(_) => {
                            match target {
                                AttentionTarget::Case(id) => {
                                    tracing::warn!(case_system_id = %id, "abandoned at the deadline; left for next run")
                                }
                                AttentionTarget::External(ext) => {
                                    tracing::warn!(external_case_id = %ext, "abandoned at the deadline; left for next run")
                                }
                            }
                            None
                        }
                    }
                }
            })
            .buffer_unordered(s.concurrency.max(1))
            .collect()
            .await;

        let mut summary = Summary::default();
        let mut retryable_failures = 0;
        for tried in outcomes {
            let (outcome, backed_off) = match tried {
                Some((outcome, backed_off)) => (Some(outcome), backed_off),
                None => (None, false),
            };
            summary.backed_off += usize::from(backed_off);
            summary.found += usize::from(!matches!(outcome, Some(Outcome::ListingFailed)));
            match outcome {
                None => summary.skipped_for_time += 1,
                Some(Outcome::Changed) => {
                    summary.checked += 1;
                    summary.changed += 1
                }
                Some(Outcome::Unchanged) => {
                    summary.checked += 1;
                    summary.unchanged += 1
                }
                Some(Outcome::Failed { retryable }) => {
                    summary.failed += 1;
                    retryable_failures += usize::from(retryable);
                    summary.failed_for_good += usize::from(!retryable);
                }
                Some(Outcome::ListingFailed) => {
                    summary.failed += 1;
                    retryable_failures += 1;
                }
                Some(Outcome::MarkedUnknown) => summary.marked_unknown += 1,
                Some(Outcome::ResolvedUnknown) => summary.resolved_unknown += 1,
                Some(Outcome::UnknownNeedsPerson) => summary.unknown_needing_attention += 1,
                Some(Outcome::UnknownWaiting) => {}
                Some(Outcome::GaveUpNoSuggestion) => {
                    summary.checked += 1;
                    summary.unchanged += 1;
                    summary.no_suggestion_given_up += 1;
                }
                Some(Outcome::Nothing) => {}
            }
        }
        summary.capacity = capacity;
        let left_known = summary.skipped_for_time + retryable_failures;
        summary.due_not_checked = self.due_not_checked(s, cutoffs, deadline, left_known).await;
        summary.duration_ms = started.elapsed().as_millis() as u64;
        let succeeded = summary.checked + summary.marked_unknown + summary.resolved_unknown;
        if summary.failed > 0 && retryable_failures == summary.failed && succeeded == 0 {
            return Err(ReconcileError::AllFailed(summary.failed));
        }
        Ok(summary)
    }

    /// How many items are still due in the indexes at the run's cutoffs: what the run
    /// left (settled and backed-off items have moved on). Counted in the time the
    /// deadline margin keeps; when the count cannot be had, what the run knows it left
    /// (`left_known`) stands for it.
    async fn due_not_checked(
        &self,
        s: &ReconcileSettings,
        cutoffs: [OffsetDateTime; 3],
        deadline: Instant,
        left_known: usize,
    ) -> usize {
        let [urgent, awaiting, ogs] = cutoffs;
        let count = futures::future::try_join3(
            self.store.count_urgent(urgent),
            self.store.count_awaiting(awaiting),
            self.store.count_ogs(ogs),
        );
        let until = deadline.checked_sub(s.deadline_margin / 4).unwrap_or(deadline);
        match tokio::time::timeout_at(tokio::time::Instant::from_std(until), count).await {
            Ok(Ok((u, a, o))) => u + a + o,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "counting what is still due failed; reporting what the run left");
                left_known
            }
            Err(_) => {
                tracing::warn!("no time left to count what is still due; reporting what the run left");
                left_known
            }
        }
    }

    /// Settles one listed item; one that could not be settled and would fail the same
    /// way next run backs off in its index. Answers the outcome and whether it backed off.
    async fn settle_or_back_off(
        &self,
        s: &ReconcileSettings,
        index: Index,
        listed: &AttentionRef,
        cutoff: OffsetDateTime,
        now: OffsetDateTime,
    ) -> (Outcome, bool) {
        let outcome = self.settle(s, &listed.target, now).await;
        if !outcome.backs_off() {
            return (outcome, false);
        }
        let tried = gateway_runtime::now() - now;
        let next = |attempts| backed_off_since(s, cutoff, tried, attempts);
        match self.store.defer_index_entry(&listed.target, index.slot(), listed.since, next).await {
            Ok(Deferral::Deferred { attempts }) => {
                match &listed.target {
                    AttentionTarget::Case(id) => tracing::info!(case_system_id = %id, attempts, "backed off"),
                    AttentionTarget::External(ext) => tracing::info!(external_case_id = %ext, attempts, "backed off"),
                }
                (outcome, true)
            }
            // Written since it was listed: due as that write says.
            Ok(Deferral::Moved) => (outcome, false),
            Err(e) => {
                tracing::warn!(error = %e, "backing off an item failed; it is tried again next run");
                (outcome, false)
            }
        }
    }

    /// A case Cabital has just said still has no suggestion, `no_suggestion_give_up` after
    /// its creation: no longer asked about, and reported once for a person (a warning
    /// with its ids, one SUGGESTION_OVERDUE event, its view shows it, and the run's
    /// summary counts it for the metric and its alarm).
    async fn give_up_if_overdue(
        &self,
        s: &ReconcileSettings,
        id: CaseSystemId,
        version: u64,
        now: OffsetDateTime,
    ) -> Outcome {
        let case = match self.store.get_case(&id).await {
            Ok(Some(case)) => case,
            Ok(None) => return Outcome::Unchanged,
            Err(e) => {
                tracing::warn!(case_system_id = %id, error = %e, "reading a case to give it up failed");
                return Outcome::Failed { retryable: e.retryable() };
            }
        };
        let overdue =
            now - case.created_at >= time::Duration::try_from(s.no_suggestion_give_up).unwrap_or(time::Duration::MAX);
        if case.suggestion.is_some() || case.no_suggestion_since.is_some() || !overdue {
            return Outcome::Unchanged;
        }
        match self.store.give_up_no_suggestion(&id, version, now).await {
            Ok(true) => {
                tracing::warn!(
                    case_system_id = %id,
                    external_case_id = %case.external_case_id,
                    waited_secs = (now - case.created_at).whole_seconds(),
                    "no suggestion from Cabital: no longer asked about; a person must look (no Zero Footprint screening?)"
                );
                Outcome::GaveUpNoSuggestion
            }
            // Something was written since (a webhook, another run): next time.
            Ok(false) | Err(StoreError::VersionConflict { .. }) => Outcome::Unchanged,
            Err(e) => {
                tracing::warn!(case_system_id = %id, error = %e, "giving up a case without suggestion failed");
                Outcome::Failed { retryable: e.retryable() }
            }
        }
    }

    async fn settle(&self, s: &ReconcileSettings, target: &AttentionTarget, now: OffsetDateTime) -> Outcome {
        match target {
            // No deadline of its own: the run abandons a check still in flight at its
            // deadline (left for the next run, not failed); a GET cut short loses nothing.
            AttentionTarget::Case(id) => match self.refresh(*id, RemoteCheck::Reconciled, Deadline::NONE).await {
                Ok(r) if r.changed => Outcome::Changed,
                Ok(r) => self.give_up_if_overdue(s, *id, r.version, now).await,
                Err(e) => {
                    let problem = e.problem();
                    tracing::warn!(case_system_id = %id, code = problem.code, "reconcile of a case failed");
                    Outcome::Failed { retryable: problem.status >= 500 }
                }
            },
            AttentionTarget::External(ext) => {
                let record = match self.store.get_external(ext).await {
                    Ok(Some(r)) => r,
                    Ok(None) => return Outcome::Nothing,
                    Err(e) => {
                        tracing::warn!(external_case_id = %ext, error = %e, "reading a reservation failed");
                        return Outcome::Failed { retryable: e.retryable() };
                    }
                };
                let age = now - record.created_at;
                let older = |d: Duration| age >= time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
                let result = match (record.state, record.case_system_id) {
                    (ExtState::Unknown, Some(id)) => self
                        .store
                        .resolve_unknown(ext, &id, gateway_store::EventSource::Reconciler, now)
                        .await
                        .map(|_| Outcome::ResolvedUnknown),
                    // The creating invocation died. If a webhook already named the case
                    // (noted on the reservation), marking it unknown links it at once.
                    (ExtState::Pending, _) if older(s.pending_stuck_after) => {
                        match self.store.expire_pending(ext, ago(now, s.pending_stuck_after), now).await {
                            Ok(r) if r.state == ExtState::Created => Ok(Outcome::ResolvedUnknown),
                            Ok(_) => Ok(Outcome::MarkedUnknown),
                            // Another writer (the creating call, a webhook, another run)
                            // moved it on since it was read: nothing left to do here.
                            Err(StoreError::ConditionFailed(_)) => Ok(Outcome::Nothing),
                            Err(e) => Err(e),
                        }
                    }
                    (ExtState::Unknown, None) if older(s.unknown_report_after) => {
                        // Cabital has no lookup by externalCaseId: only its webhook can
                        // name the case. After this long, a person must ask Cabital.
                        tracing::warn!(external_case_id = %ext, "unknown creation needs a person: ask Cabital about it");
                        Ok(Outcome::UnknownNeedsPerson)
                    }
                    (ExtState::Unknown, None) => Ok(Outcome::UnknownWaiting),
                    _ => Ok(Outcome::Nothing),
                };
                result.unwrap_or_else(|e| {
                    tracing::warn!(external_case_id = %ext, error = %e, "settling a reservation failed");
                    Outcome::Failed { retryable: e.retryable() }
                })
            }
        }
    }
}
