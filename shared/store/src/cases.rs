//! Cases: remote state, decisions, ongoing screening, the timeline. (Their creation is
//! a reservation's transition: `reservation::created`.)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway_cabital::{CaseSystemId, Decision, Pii};
use time::OffsetDateTime;

use crate::codec;
use crate::error::{StoreError, TxError};
use crate::model::{
    Applied, CaseRecord, ChangedField, EventDetail, EventSource, PendingCall, RemoteCheck, RemoteState, StateChange,
    TimelineOrder, TimelinePage, derive_status,
};
use crate::retry::{CONFLICT_ATTEMPTS, Retry};
use crate::schema;
use crate::store::Store;

/// The most events one timeline page returns.
pub const MAX_TIMELINE_PAGE: u32 = 100;

impl Store {
    /// Applies what Cabital says about the case NOW (its `GET`), if the case is still at
    /// `expected_version`; otherwise [`StoreError::VersionConflict`] (re-read, re-apply).
    ///
    /// Always records the check (`lastCheckedAt`, clears `needsRefresh`, recomputes the
    /// index entries); when a field changed, a REFRESHED or RECONCILED event is written
    /// in the same transaction. Of concurrent appliers at one version exactly one wins.
    #[tracing::instrument(skip_all, fields(case_system_id = %id, expected_version, changed), err)]
    pub async fn apply_remote_state(
        &self,
        id: &CaseSystemId,
        expected_version: u64,
        remote: &RemoteState,
        kind: RemoteCheck,
        now: OffsetDateTime,
    ) -> Result<Applied, StoreError> {
        let conflict = || StoreError::VersionConflict { case_system_id: *id, expected: expected_version };
        let current = self.case_at_version(id, expected_version).await?;
        // A case whose personal data was erased keeps none that Cabital sends again: its
        // comments stay erased (a comment that comes or goes still counts as a change).
        let erased_remote;
        let remote = if current.erased_at.is_some() {
            let erased = || Some(gateway_cabital::Comment::from(Pii(crate::erasure::ERASED.to_owned())));
            erased_remote = RemoteState {
                suggestion_comment: remote.suggestion_comment.as_ref().and_then(|_| erased()),
                decision_comment: remote.decision_comment.as_ref().and_then(|_| erased()),
                ..remote.clone()
            };
            &erased_remote
        } else {
            remote
        };

        let mut changed = Vec::new();
        if current.suggestion != remote.suggestion {
            changed.push(ChangedField::Suggestion);
        }
        if current.suggestion_comment != remote.suggestion_comment {
            changed.push(ChangedField::SuggestionComment);
        }
        if current.decision != remote.decision {
            changed.push(ChangedField::Decision);
        }
        if current.decision_comment != remote.decision_comment {
            changed.push(ChangedField::DecisionComment);
        }
        if current.ogs != remote.ogs {
            changed.push(ChangedField::Ogs);
        }
        tracing::Span::current().record("changed", !changed.is_empty());

        let mut new = current.clone();
        if current.suggestion != remote.suggestion {
            new.suggestion_at = remote.suggestion.map(|_| now);
        }
        if current.decision != remote.decision {
            new.decided_at = remote.decision.map(|_| now);
        }
        new.suggestion = remote.suggestion;
        new.suggestion_comment = remote.suggestion_comment.clone();
        new.decision = remote.decision;
        new.decision_comment = remote.decision_comment.clone();
        new.ogs = remote.ogs;
        new.status = derive_status(new.suggestion, new.decision);
        // A decision sent is settled once Cabital shows it, or once no call sending it
        // can still be running: what Cabital then says is the record.
        if let Some(pending) = current.decision_pending
            && (remote.decision == Some(pending.decision) || now >= pending.until)
        {
            new.decision_pending = None;
        }
        // The same for an ongoing-screening change sent.
        if let Some(pending) = current.ogs_pending
            && (remote.ogs == pending.on || now >= pending.until)
        {
            new.ogs_pending = None;
        }
        new.checked(now);
        new.updated_at = now;
        new.version = current.version + 1;
        // Given up for want of a suggestion: cleared when one comes; until then the case
        // stays out of the awaiting index (reported once, not asked about again).
        if new.suggestion.is_some() {
            new.no_suggestion_since = None;
        } else if new.no_suggestion_since.is_some() && new.pending_until().is_none() {
            new.attention = None;
        }
        self.retain(Some(&current), &mut new, now).await?;

        if changed.is_empty() {
            let (expr, condition) = Self::case_update_expr(&new, expected_version);
            return match self.update_item(Self::case_key(id), &expr, &condition).await {
                Ok(_) => Ok(Applied { changed: false, version: new.version }),
                Err(StoreError::ConditionFailed(_)) => Err(conflict()),
                Err(e) => Err(e),
            };
        }

        let change = StateChange {
            from_suggestion: current.suggestion,
            to_suggestion: remote.suggestion,
            to_suggestion_comment: remote.suggestion_comment.clone(),
            to_decision: remote.decision,
            to_decision_comment: remote.decision_comment.clone(),
            to_ogs: remote.ogs,
            changed,
        };
        let detail = match kind {
            RemoteCheck::Refreshed => EventDetail::Refreshed(change),
            RemoteCheck::Reconciled => EventDetail::Reconciled(change),
        };
        let source = match kind {
            RemoteCheck::Refreshed => EventSource::Cabital,
            RemoteCheck::Reconciled => EventSource::Reconciler,
        };
        let (_, event) = self.tx_event(&mut new, now, source, &detail)?;
        let case_update = self.tx_case_update(&new, expected_version)?;
        match self.transact(vec![case_update, event]).await {
            Ok(()) => {
                tracing::info!(version = new.version, "remote state applied");
                Ok(Applied { changed: true, version: new.version })
            }
            Err(TxError::Cancelled(r)) if r.condition_failed(0) => Err(conflict()),
            Err(e) => Err(e.into_store()),
        }
    }

    /// The reconciler gives up on a case that still has no suggestion `waited` after its
    /// creation: if it is still at `expected_version`, without a suggestion, not flagged
    /// for refresh and not given up already, it leaves the awaiting index, is marked
    /// (`noSuggestionSince`) and gets one SUGGESTION_OVERDUE event, in one transaction.
    /// Answers whether this call gave it up (`false`: nothing to do); a write since the
    /// read is [`StoreError::VersionConflict`].
    #[tracing::instrument(skip_all, fields(case_system_id = %id, expected_version), err)]
    pub async fn give_up_no_suggestion(
        &self,
        id: &CaseSystemId,
        expected_version: u64,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let conflict = || StoreError::VersionConflict { case_system_id: *id, expected: expected_version };
        let current = self.case_at_version(id, expected_version).await?;
        if current.suggestion.is_some()
            || current.needs_refresh
            || current.no_suggestion_since.is_some()
            || current.pending_until().is_some()
        {
            return Ok(false);
        }
        let mut new = current.clone();
        new.no_suggestion_since = Some(now);
        new.attention = None;
        new.updated_at = now;
        new.version = current.version + 1;
        self.retain(Some(&current), &mut new, now).await?;
        let waited_secs = u64::try_from((now - current.created_at).whole_seconds()).unwrap_or(0);
        let detail = EventDetail::SuggestionOverdue { waited_secs };
        let (_, event) = self.tx_event(&mut new, now, EventSource::Reconciler, &detail)?;
        let case_update = self.tx_case_update(&new, expected_version)?;
        match self.transact(vec![case_update, event]).await {
            Ok(()) => Ok(true),
            Err(TxError::Cancelled(r)) if r.condition_failed(0) => Err(conflict()),
            Err(e) => Err(e.into_store()),
        }
    }

    /// Marks the case before `call` (a decision, an ongoing-screening change) is sent to
    /// Cabital, by an invocation that ends by `until` (its deadline): should the change
    /// never be recorded, the case is urgent from `until` and the reconciler reads
    /// Cabital's state, which records the change if Cabital made it
    /// ([`Store::apply_remote_state`] clears the mark). A versioned write; repeating it
    /// keeps the later `until`. Returns the case's new version.
    #[tracing::instrument(skip_all, fields(case_system_id = %id, call = ?call), err)]
    pub async fn mark_pending(
        &self,
        id: &CaseSystemId,
        call: PendingCall,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.versioned(id, now, |case| case.mark_pending(call, until)).await
    }

    /// The `call` marked with `until` surely never reached Cabital (refused, or not
    /// sent): its mark is cleared, unless a later one replaced it. Returns the case's
    /// version.
    #[tracing::instrument(skip_all, fields(case_system_id = %id, call = ?call), err)]
    pub async fn clear_pending(
        &self,
        id: &CaseSystemId,
        call: PendingCall,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.versioned(id, now, |case| case.clear_pending_until(call, until)).await
    }

    /// Read, change, write back at the read version without an event (marks, not
    /// history; a change that changes nothing writes nothing); re-read on a lost race.
    async fn versioned(
        &self,
        id: &CaseSystemId,
        now: OffsetDateTime,
        change: impl Fn(&mut CaseRecord),
    ) -> Result<u64, StoreError> {
        self.versioned_write(id, now, None, change).await
    }

    /// Records the partner's decision (after Cabital accepted it): the case becomes
    /// `DECIDED` and a DECISION event is written, in one transaction; the mark of this
    /// decision being sent is cleared. Returns the case's new version.
    #[tracing::instrument(skip_all, fields(case_system_id = %id, decision = %decision), err)]
    pub async fn record_decision(
        &self,
        id: &CaseSystemId,
        decision: Decision,
        comment: Option<Pii<String>>,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let detail = EventDetail::Decision { decision, comment: comment.clone() };
        self.versioned_with_event(id, now, EventSource::Api, &detail, |case| {
            case.decision = Some(decision);
            case.decision_comment = comment.clone().map(gateway_cabital::Comment::from);
            case.decided_at = Some(now);
            if case.decision_pending.is_some_and(|p| p.decision == decision) {
                case.clear_decision_pending();
            }
        })
        .await
    }

    /// Records that ongoing screening was turned on or off (after Cabital accepted it):
    /// the case's flag and its place in the `ogs` index, and an OGS_ON / OGS_OFF event,
    /// in one transaction. Returns the case's new version.
    #[tracing::instrument(skip_all, fields(case_system_id = %id, on), err)]
    pub async fn record_ogs(&self, id: &CaseSystemId, on: bool, now: OffsetDateTime) -> Result<u64, StoreError> {
        let detail = if on { EventDetail::OgsOn } else { EventDetail::OgsOff };
        self.versioned_with_event(id, now, EventSource::Api, &detail, |case| {
            case.ogs = on;
            case.ogs_checked_at = on.then_some(now);
            if case.ogs_pending.is_some_and(|p| p.on == on) {
                case.clear_ogs_pending();
            }
        })
        .await
    }

    /// The case, read consistently, if it is still at `expected_version`; else
    /// [`StoreError::VersionConflict`].
    async fn case_at_version(&self, id: &CaseSystemId, expected_version: u64) -> Result<CaseRecord, StoreError> {
        let current = self.get_case(id).await?.ok_or_else(|| StoreError::NotFound(format!("case {id}")))?;
        if current.version != expected_version {
            return Err(StoreError::VersionConflict { case_system_id: *id, expected: expected_version });
        }
        Ok(current)
    }

    /// Read, change, write back at the read version with an event; re-read on a lost
    /// race.
    pub(crate) async fn versioned_with_event(
        &self,
        id: &CaseSystemId,
        now: OffsetDateTime,
        source: EventSource,
        detail: &EventDetail,
        change: impl Fn(&mut CaseRecord),
    ) -> Result<u64, StoreError> {
        self.versioned_write(id, now, Some((source, detail)), change).await
    }

    /// The one read-change-write loop of a case: the case as `change` leaves it, one
    /// version on, held to the retention, written at the version read, with `event` in
    /// the same transaction when given. Returns the version written (the one read when an
    /// eventless change changes nothing).
    async fn versioned_write(
        &self,
        id: &CaseSystemId,
        now: OffsetDateTime,
        event: Option<(EventSource, &EventDetail)>,
        change: impl Fn(&mut CaseRecord),
    ) -> Result<u64, StoreError> {
        let mut retry = Retry::new(CONFLICT_ATTEMPTS);
        loop {
            let current = self.get_case(id).await?.ok_or_else(|| StoreError::NotFound(format!("case {id}")))?;
            let mut new = current.clone();
            change(&mut new);
            if event.is_none() && new == current {
                return Ok(current.version);
            }
            new.status = derive_status(new.suggestion, new.decision);
            new.updated_at = now;
            new.version = current.version + 1;
            self.retain(Some(&current), &mut new, now).await?;
            let written = match event {
                None => {
                    let (expr, condition) = Self::case_update_expr(&new, current.version);
                    match self.update_item(Self::case_key(id), &expr, &condition).await {
                        Ok(_) => Ok(()),
                        Err(StoreError::ConditionFailed(_)) => Err(None),
                        Err(e) => Err(Some(e)),
                    }
                }
                Some((source, detail)) => {
                    let (_, event) = self.tx_event(&mut new, now, source, detail)?;
                    let case_update = self.tx_case_update(&new, current.version)?;
                    match self.transact(vec![case_update, event]).await {
                        Ok(()) => Ok(()),
                        Err(TxError::Cancelled(r)) if r.condition_failed(0) || r.transient() => Err(None),
                        Err(e) => Err(Some(e.into_store())),
                    }
                }
            };
            match written {
                Ok(()) => return Ok(new.version),
                // A writer got there first: read again.
                Err(None) => retry.lost(StoreError::TransactionConflict)?,
                Err(Some(e)) => return Err(e),
            }
        }
    }

    /// One page of the case's events, oldest or newest first, `limit` at most (clamped
    /// to 1..=[`MAX_TIMELINE_PAGE`]). Pass `next_cursor` back for the next page; a
    /// cursor not handed out for this case is [`StoreError::InvalidCursor`].
    #[tracing::instrument(skip_all, fields(case_system_id = %id, limit, events), err)]
    pub async fn timeline(
        &self,
        id: &CaseSystemId,
        order: TimelineOrder,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<TimelinePage, StoreError> {
        let limit = limit.clamp(1, MAX_TIMELINE_PAGE);
        let start = cursor.map(|c| decode_cursor(id, c)).transpose()?;
        // One more than asked: whether a next page exists is then known without an
        // extra (possibly empty) round trip.
        let out = self
            .case_partition_query(id, Some(schema::EVENT_PREFIX))
            .scan_index_forward(order == TimelineOrder::Oldest)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start.map(|sk| Self::key(schema::case_pk(id), &sk)))
            .send()
            .await
            .map_err(crate::error::from_sdk)?;
        let mut items = out.items.unwrap_or_default();
        let more = items.len() > limit as usize || out.last_evaluated_key.is_some();
        items.truncate(limit as usize);
        let events = items.iter().map(codec::event_from_item).collect::<Result<Vec<_>, _>>()?;
        tracing::Span::current().record("events", events.len());
        let next_cursor = match (more, events.last()) {
            (true, Some(last)) => Some(encode_cursor(id, &last.event_id)),
            _ => None,
        };
        Ok(TimelinePage { events, next_cursor })
    }
}

/// Cursors are opaque to callers: base64url of `<caseSystemId>|<event sort key>`.
fn encode_cursor(id: &CaseSystemId, event_sk: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{id}|{event_sk}"))
}

fn decode_cursor(id: &CaseSystemId, cursor: &str) -> Result<String, StoreError> {
    const MAX_CURSOR: usize = 512;
    if cursor.len() > MAX_CURSOR {
        return Err(StoreError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let (case, sk) = text.split_once('|').ok_or(StoreError::InvalidCursor)?;
    if case != id.to_string() || !sk.starts_with(schema::EVENT_PREFIX) {
        return Err(StoreError::InvalidCursor);
    }
    Ok(sk.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> CaseSystemId {
        "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c".parse().unwrap()
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_case() {
        let c = encode_cursor(&id(), "EVENT#2026-11-29T01:02:03.000000Z#CREATED#0000abcd");
        assert_eq!(decode_cursor(&id(), &c).unwrap(), "EVENT#2026-11-29T01:02:03.000000Z#CREATED#0000abcd");
        let other: CaseSystemId = "00000000-0000-4000-8000-000000000000".parse().unwrap();
        assert!(matches!(decode_cursor(&other, &c), Err(StoreError::InvalidCursor)));
        for bad in ["", "!!!", "bm90IGEgY3Vyc29y", &"A".repeat(600)] {
            assert!(matches!(decode_cursor(&id(), bad), Err(StoreError::InvalidCursor)), "{bad}");
        }
    }
}
