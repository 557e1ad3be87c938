//! The typed records the store reads and writes.

use gateway_cabital::{CaseSystemId, Comment, Decision, ExternalCaseId, Pii, ScreenType, Suggestion};
use time::OffsetDateTime;
use uuid::Uuid;

macro_rules! stored_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant),+
        }

        impl $name {
            /// The stored spelling.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Reads the stored spelling.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

stored_enum!(
    /// How the gateway first learned of a case.
    Origin {
        /// Created through this gateway's API.
        Api = "API",
        /// First named by a webhook, for a case this gateway had not (yet) recorded.
        Webhook = "WEBHOOK",
    }
);

stored_enum!(
    /// Where a case stands.
    CaseStatus {
        /// No suggestion from Cabital yet.
        AwaitingSuggestion = "AWAITING_SUGGESTION",
        /// Cabital has suggested; the partner has not decided.
        Suggested = "SUGGESTED",
        /// The partner has decided.
        Decided = "DECIDED",
    }
);

stored_enum!(
    /// Where a reservation of an external id stands.
    ExtState {
        /// Reserved; the create call to Cabital is in flight (or its invocation died).
        Pending = "PENDING",
        /// Cabital created the case; `caseSystemId` is known.
        Created = "CREATED",
        /// Cabital's answer never came: the case may or may not exist there.
        Unknown = "UNKNOWN",
        /// Cabital refused the create; the id may be reserved again.
        Rejected = "REJECTED",
    }
);

stored_enum!(
    /// What an event records.
    EventKind {
        /// The case was created (or linked to an unknown creation).
        Created = "CREATED",
        /// A distinct webhook body was received.
        Webhook = "WEBHOOK",
        /// A delivery whose signature could not be verified (unsigned, or signed long
        /// ago): a hint to read the case from Cabital, never Cabital's words.
        UnverifiedNotice = "UNVERIFIED_NOTICE",
        /// The case's state was read from Cabital after a webhook or on request.
        Refreshed = "REFRESHED",
        /// The case's state was read from Cabital by the scheduled reconciler.
        Reconciled = "RECONCILED",
        /// The partner gave a decision.
        Decision = "DECISION",
        /// Ongoing screening was turned on.
        OgsOn = "OGS_ON",
        /// Ongoing screening was turned off.
        OgsOff = "OGS_OFF",
        /// No suggestion came for too long: the reconciler stopped asking (reported once).
        SuggestionOverdue = "SUGGESTION_OVERDUE",
        /// The case's personal data was erased on request (its ids, decisions, times
        /// and hashes kept).
        Erased = "ERASED",
    }
);

stored_enum!(
    /// Why a delivery was kept as an unverified notice rather than a webhook.
    NoticeReason {
        /// It carried no signature (`WEBHOOK_AUTH=refetch`).
        Unsigned = "UNSIGNED",
        /// Its signature did not verify with any secret held (`WEBHOOK_AUTH=refetch`).
        SignatureNotVerified = "SIGNATURE_NOT_VERIFIED",
        /// Its signature verified, but its timestamp is outside the window: a resend
        /// with its first attempt's headers, or a replay.
        LateSignature = "LATE_SIGNATURE",
    }
);

stored_enum!(
    /// Which part of the gateway wrote an event, and from what.
    EventSource {
        /// The cases API, on the partner's request.
        Api = "API",
        /// The webhook function, from a webhook delivery.
        Webhook = "WEBHOOK",
        /// What Cabital's `GET` of the case said.
        Cabital = "CABITAL",
        /// The scheduled reconciler.
        Reconciler = "RECONCILER",
    }
);

stored_enum!(
    /// A case field that a refresh can change.
    ChangedField {
        /// `suggestion`
        Suggestion = "suggestion",
        /// `suggestionComment`
        SuggestionComment = "suggestionComment",
        /// `decision`
        Decision = "decision",
        /// `decisionComment`
        DecisionComment = "decisionComment",
        /// `ogs`
        Ogs = "ogs",
    }
);

/// How urgently an item needs a look (the priority prefix of `attnAt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttentionPriority {
    /// `0#`: needs a refresh, an unknown or stuck creation.
    Urgent,
    /// `1#`: awaiting a suggestion since the last check.
    Awaiting,
}

impl AttentionPriority {
    pub(crate) fn prefix(&self) -> &'static str {
        match self {
            AttentionPriority::Urgent => "0#",
            AttentionPriority::Awaiting => "1#",
        }
    }
}

/// An item's place in the attention index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attention {
    /// Urgent or awaiting.
    pub priority: AttentionPriority,
    /// Since when (for awaiting cases: the last check).
    pub since: OffsetDateTime,
}

impl Attention {
    /// Urgent since `since`.
    pub(crate) fn urgent(since: OffsetDateTime) -> Self {
        Attention { priority: AttentionPriority::Urgent, since }
    }
}

/// A decision sent to Cabital and not yet recorded: the mark that lets the reconciler
/// find a decision Cabital took while its recording failed or its invocation died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecisionPending {
    /// The decision sent.
    pub decision: Decision,
    /// The sending invocation's deadline: no call sending it runs after this.
    pub until: OffsetDateTime,
}

/// An ongoing-screening change sent to Cabital and not yet recorded: as
/// [`DecisionPending`], for `POST /v1/cases/{id}/ogs/on|off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OgsPending {
    /// Whether it was turned on (`true`) or off.
    pub on: bool,
    /// The sending invocation's deadline: no call sending it runs after this.
    pub until: OffsetDateTime,
}

/// A call to Cabital that changes a case, marked on the case while it may be in flight
/// ([`crate::Store::mark_pending`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingCall {
    /// `POST .../decision` with this decision.
    Decision(Decision),
    /// `POST .../ogs/on` (`true`) or `.../ogs/off`.
    Ogs(bool),
}

/// A case as stored (`pk=CASE#<caseSystemId>`, `sk=CASE`).
#[derive(Debug, Clone, PartialEq)]
pub struct CaseRecord {
    /// Cabital's id.
    pub case_system_id: CaseSystemId,
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Person or entity; absent when the case was first known from a webhook.
    pub screen_type: Option<ScreenType>,
    /// How the gateway first learned of it.
    pub origin: Origin,
    /// Awaiting, suggested or decided.
    pub status: CaseStatus,
    /// Cabital's current suggestion.
    pub suggestion: Option<Suggestion>,
    /// A person's note on the suggestion.
    pub suggestion_comment: Option<Comment>,
    /// When the current suggestion was first recorded.
    pub suggestion_at: Option<OffsetDateTime>,
    /// The partner's decision.
    pub decision: Option<Decision>,
    /// The partner's note on the decision.
    pub decision_comment: Option<Comment>,
    /// When the decision was recorded.
    pub decided_at: Option<OffsetDateTime>,
    /// Whether ongoing screening is on.
    pub ogs: bool,
    /// Set by a webhook: Cabital's current state must be read.
    pub needs_refresh: bool,
    /// First recorded.
    pub created_at: OffsetDateTime,
    /// Last written.
    pub updated_at: OffsetDateTime,
    /// Last read from Cabital.
    pub last_checked_at: Option<OffsetDateTime>,
    /// Starts at 1, +1 on every write: the optimistic lock.
    pub version: u64,
    /// Membership of the attention index.
    pub attention: Option<Attention>,
    /// Membership of the ogs index: the last check while ogs is on.
    pub ogs_checked_at: Option<OffsetDateTime>,
    /// Since when the reconciler no longer asks about this case: no suggestion came
    /// within `RECONCILE_NO_SUGGESTION_GIVE_UP_SECS` of its creation. Cleared when one comes.
    pub no_suggestion_since: Option<OffsetDateTime>,
    /// A decision sent to Cabital, not yet recorded; the case is urgent from its `until`.
    pub decision_pending: Option<DecisionPending>,
    /// An ongoing-screening change sent to Cabital, not yet recorded; the case is urgent
    /// from its `until`.
    pub ogs_pending: Option<OgsPending>,
    /// The `hash` of the case's last event: the next event's `prevHash` (the
    /// tamper-evident chain, `gateway_evidence`); `None` before the first.
    pub chain_head: Option<String>,
    /// When its personal data was erased on request.
    pub erased_at: Option<OffsetDateTime>,
    /// Its retention bound (the table's TTL attribute, whole seconds): DynamoDB deletes
    /// the case after it, and every other item of the case carries it or later
    /// ([`crate::Retention`]). `None` only on a case not yet written.
    pub expires_at: Option<OffsetDateTime>,
}

impl CaseRecord {
    /// A case recorded for the first time at `now` (version 1), with what the first news
    /// of it tells. Cabital's state is still to be read: it is flagged for refresh and
    /// urgent until [`CaseRecord::checked`].
    pub(crate) fn new(
        case_system_id: CaseSystemId,
        external_case_id: ExternalCaseId,
        origin: Origin,
        screen_type: Option<ScreenType>,
        suggestion: Option<Suggestion>,
        suggestion_comment: Option<Comment>,
        now: OffsetDateTime,
    ) -> Self {
        CaseRecord {
            case_system_id,
            external_case_id,
            screen_type,
            origin,
            status: derive_status(suggestion, None),
            suggestion,
            suggestion_comment,
            suggestion_at: suggestion.map(|_| now),
            decision: None,
            decision_comment: None,
            decided_at: None,
            ogs: false,
            needs_refresh: true,
            created_at: now,
            updated_at: now,
            last_checked_at: None,
            version: 1,
            attention: Some(Attention::urgent(now)),
            ogs_checked_at: None,
            no_suggestion_since: None,
            decision_pending: None,
            ogs_pending: None,
            chain_head: None,
            erased_at: None,
            expires_at: None,
        }
    }

    /// Cabital's state, read at `now`, is what the record now holds: no refresh is
    /// pending, and the case's places in the indexes follow from that state.
    pub(crate) fn checked(&mut self, now: OffsetDateTime) {
        self.needs_refresh = false;
        self.last_checked_at = Some(now);
        self.attention = match self.pending_until() {
            Some(until) => Some(Attention::urgent(until)),
            None => settled_attention(self.suggestion.is_some(), now),
        };
        self.ogs_checked_at = self.ogs.then_some(now);
    }

    /// When the earliest call still marked as sent (a decision, an ongoing-screening
    /// change) is surely over: the reconciler reads the case from then.
    pub(crate) fn pending_until(&self) -> Option<OffsetDateTime> {
        let decision = self.decision_pending.map(|p| p.until);
        let ogs = self.ogs_pending.map(|p| p.until);
        decision.into_iter().chain(ogs).min()
    }

    /// Marks `call` as being sent, until `until` (a later mark's `until` is kept).
    pub(crate) fn mark_pending(&mut self, call: PendingCall, until: OffsetDateTime) {
        match call {
            PendingCall::Decision(decision) => self.mark_decision_pending(decision, until),
            PendingCall::Ogs(on) => self.mark_ogs_pending(on, until),
        }
    }

    /// Clears the mark of `call`'s kind if it is the one marked with `until` (compared as
    /// stored, to the microsecond): a later send's mark stays.
    pub(crate) fn clear_pending_until(&mut self, call: PendingCall, until: OffsetDateTime) {
        let same = |at: OffsetDateTime| crate::schema::format_time(at) == crate::schema::format_time(until);
        match call {
            PendingCall::Decision(_) if self.decision_pending.is_some_and(|p| same(p.until)) => {
                self.clear_decision_pending()
            }
            PendingCall::Ogs(_) if self.ogs_pending.is_some_and(|p| same(p.until)) => self.clear_ogs_pending(),
            _ => {}
        }
    }

    /// Marks `decision` as being sent, until `until` (a later mark's `until` is kept):
    /// urgent from then, for the reconciler, unless a refresh is already due sooner.
    pub(crate) fn mark_decision_pending(&mut self, decision: Decision, until: OffsetDateTime) {
        let until = self.decision_pending.map_or(until, |p| p.until.max(until));
        self.decision_pending = Some(DecisionPending { decision, until });
        self.urgent_while_pending();
    }

    /// Marks ongoing screening as being turned on (or off), until `until`: as
    /// [`CaseRecord::mark_decision_pending`].
    pub(crate) fn mark_ogs_pending(&mut self, on: bool, until: OffsetDateTime) {
        let until = self.ogs_pending.map_or(until, |p| p.until.max(until));
        self.ogs_pending = Some(OgsPending { on, until });
        self.urgent_while_pending();
    }

    /// Urgent from the earliest pending call's end, unless a refresh is already due.
    fn urgent_while_pending(&mut self) {
        if !self.needs_refresh
            && let Some(until) = self.pending_until()
        {
            self.attention = Some(Attention::urgent(until));
        }
    }

    /// Clears the decision mark; the case's attention is then what its state implies
    /// (a refresh still due keeps it urgent).
    pub(crate) fn clear_decision_pending(&mut self) {
        self.decision_pending = None;
        self.settle_attention();
    }

    /// Clears the ongoing-screening mark, as [`CaseRecord::clear_decision_pending`].
    pub(crate) fn clear_ogs_pending(&mut self) {
        self.ogs_pending = None;
        self.settle_attention();
    }

    /// The attention the case's state implies once a mark is cleared: a refresh still
    /// due, or another call still marked, keeps it urgent.
    fn settle_attention(&mut self) {
        if self.needs_refresh {
            return;
        }
        if let Some(until) = self.pending_until() {
            self.attention = Some(Attention::urgent(until));
            return;
        }
        self.attention = if self.no_suggestion_since.is_some() {
            None
        } else {
            settled_attention(self.suggestion.is_some(), self.last_checked_at.unwrap_or(self.created_at))
        };
    }

    /// The status that the suggestion and decision imply.
    pub fn derived_status(&self) -> CaseStatus {
        derive_status(self.suggestion, self.decision)
    }
}

/// The attention a case needs when nothing is pending on our side: none once Cabital
/// has suggested, else "awaiting since `now`" (the last check).
pub(crate) fn settled_attention(suggestion_known: bool, now: OffsetDateTime) -> Option<Attention> {
    (!suggestion_known).then_some(Attention { priority: AttentionPriority::Awaiting, since: now })
}

pub(crate) fn derive_status(suggestion: Option<Suggestion>, decision: Option<Decision>) -> CaseStatus {
    match (suggestion, decision) {
        (_, Some(_)) => CaseStatus::Decided,
        (Some(_), None) => CaseStatus::Suggested,
        (None, None) => CaseStatus::AwaitingSuggestion,
    }
}

/// An external id's reservation (`pk=EXT#<externalCaseId>`, `sk=EXT`).
#[derive(Debug, Clone, PartialEq)]
pub struct ExtRecord {
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Hex SHA-256 of the canonical request that reserved it.
    pub request_hash: String,
    /// Where the reservation stands.
    pub state: ExtState,
    /// Only the invocation holding this token may move the reservation on.
    pub reservation_token: Uuid,
    /// Cabital's id, once known.
    pub case_system_id: Option<CaseSystemId>,
    /// Cabital's HTTP status, for `REJECTED`.
    /// Also for `UNKNOWN` when Cabital answered without the case's id (a 2xx, or 409).
    pub cabital_status: Option<u16>,
    /// The exact JSON that was (to be) sent to Cabital.
    pub submitted: Option<Pii<String>>,
    /// When a webhook or a later look named the case.
    pub linked_at: Option<OffsetDateTime>,
    /// First reserved (this reservation).
    pub created_at: OffsetDateTime,
    /// Last written.
    pub updated_at: OffsetDateTime,
    /// Membership of the attention index (while `PENDING` or `UNKNOWN`).
    pub attention: Option<Attention>,
    /// Its retention bound (the table's TTL attribute): its last write plus the
    /// retention; once it names a case, the case's bound, moved with it.
    pub expires_at: Option<OffsetDateTime>,
}

impl ExtRecord {
    /// Whether `request_hash` is the hash this reservation was made with.
    pub fn same_request(&self, request_hash: &str) -> bool {
        self.request_hash == request_hash
    }
}

/// The result of [`crate::Store::reserve_external_id`].
#[derive(Debug, Clone, PartialEq)]
pub enum Reservation {
    /// This call reserved the id; only the holder of `token` may move it on.
    Reserved {
        /// The reservation token.
        token: Uuid,
    },
    /// The id was already reserved (compare its `request_hash`).
    Existing(ExtRecord),
}

/// A case Cabital has just created, for [`crate::Store::record_created`].
#[derive(Debug, Clone, PartialEq)]
pub struct CreatedCase {
    /// Cabital's id, from the response.
    pub case_system_id: CaseSystemId,
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Person or entity.
    pub screen_type: ScreenType,
    /// The exact JSON sent to Cabital.
    pub submitted_json: Pii<String>,
    /// The JSON Cabital answered.
    pub response_json: Pii<String>,
    /// A suggestion, if the response carried one already.
    pub suggestion: Option<Suggestion>,
    /// Its comment, if any.
    pub suggestion_comment: Option<Comment>,
    /// Whether ongoing screening is on.
    pub ogs: bool,
}

/// The result of [`crate::Store::record_created`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreatedOutcome {
    /// The case and its CREATED event were written now.
    Recorded,
    /// They were already written by an earlier call with the same token.
    AlreadyRecorded,
}

/// The result of [`crate::Store::resolve_unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The unknown creation is now linked to the case, with a CREATED event.
    Linked,
    /// It already was linked to this case.
    AlreadyLinked,
    /// The creation is still pending: the case id is noted on the reservation, and the
    /// creating call (or [`crate::Store::mark_unknown`]) finishes the link.
    Noted,
}

/// What Cabital says about a case now (its `GET`), for
/// [`crate::Store::apply_remote_state`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemoteState {
    /// Current suggestion.
    pub suggestion: Option<Suggestion>,
    /// Its comment.
    pub suggestion_comment: Option<Comment>,
    /// Current decision.
    pub decision: Option<Decision>,
    /// Its comment.
    pub decision_comment: Option<Comment>,
    /// Whether ongoing screening is on.
    pub ogs: bool,
}

impl From<&gateway_cabital::Case> for RemoteState {
    fn from(case: &gateway_cabital::Case) -> Self {
        RemoteState {
            suggestion: case.suggestion,
            suggestion_comment: case.suggestion_comment.clone(),
            decision: case.decision,
            decision_comment: case.decision_comment.clone(),
            ogs: case.ogs,
        }
    }
}

/// Why the remote state was read: the event kind recorded when it changed something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteCheck {
    /// After a webhook, or on the partner's request (`REFRESHED`).
    Refreshed,
    /// By the scheduled reconciler (`RECONCILED`).
    Reconciled,
}

/// The result of [`crate::Store::apply_remote_state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// Whether any field changed (and an event was recorded).
    pub changed: bool,
    /// The case's version after the write.
    pub version: u64,
}

/// A webhook delivery, parsed, for [`crate::Store::record_webhook`].
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookReceipt {
    /// `None`: a verified delivery, whose values are Cabital's words. `Some`: an
    /// unverified notice, kept as its own event kind under its own de-duplication key;
    /// the other fields then come from Cabital's signed `GET` of the case, never from
    /// the body.
    pub notice: Option<NoticeReason>,
    /// The case it names.
    pub case_system_id: CaseSystemId,
    /// The partner's id it names.
    pub external_case_id: ExternalCaseId,
    /// The suggestion it reports (not necessarily the latest); always present in a
    /// verified webhook, absent in a notice whose case Cabital has not screened yet.
    pub suggestion: Option<Suggestion>,
    /// Its comment.
    pub suggestion_comment: Option<Comment>,
    /// The body exactly as received.
    pub body: Pii<String>,
    /// Lowercase hex SHA-256 of `body`.
    pub body_sha256: String,
    /// The verified signature it came with, remembered with it so that an exact repeat
    /// is a replay; `None` when there is none to trust (an unverified notice).
    pub signature: Option<SignaturePair>,
}

/// A verified delivery's (`ACCESS-TIMESTAMP`, `ACCESS-SIGN`) pair, as remembered: only
/// a hash of it, never the signature itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignaturePair {
    /// Lowercase hex SHA-256 of the pair.
    pub sha256: String,
    /// Until when it is remembered (the item's TTL; read as absent once past).
    pub expires_at: OffsetDateTime,
}

/// The result of [`crate::Store::record_webhook`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookRecorded {
    /// Whether this was the first delivery of this body.
    pub first_delivery: bool,
    /// Deliveries of this body so far, as this delivery saw them.
    pub deliveries: u32,
    /// Whether the case was already recorded before this delivery.
    pub case_was_known: bool,
    /// An exact repeat of a stored delivery (its signature pair is remembered): nothing
    /// was written, nothing counted; `deliveries` is the stored count.
    pub replay: bool,
}

/// A change of a case's state read from Cabital.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The suggestion before.
    pub from_suggestion: Option<Suggestion>,
    /// The suggestion after.
    pub to_suggestion: Option<Suggestion>,
    /// The suggestion's comment after.
    pub to_suggestion_comment: Option<Comment>,
    /// The decision after.
    pub to_decision: Option<Decision>,
    /// The decision's comment after.
    pub to_decision_comment: Option<Comment>,
    /// Ongoing screening after.
    pub to_ogs: bool,
    /// Which fields changed.
    pub changed: Vec<ChangedField>,
}

/// What an event records, by kind.
#[derive(Debug, Clone, PartialEq)]
pub enum EventDetail {
    /// The case was created.
    Created {
        /// The exact JSON sent to Cabital.
        submitted: Option<Pii<String>>,
        /// Cabital's answer; absent when the answer never came and the case was linked
        /// later.
        response: Option<Pii<String>>,
    },
    /// A distinct webhook body.
    Webhook {
        /// The body exactly as received.
        body: Pii<String>,
        /// Its hex SHA-256.
        body_sha256: String,
        /// How many times this body was delivered.
        deliveries: u32,
        /// First delivery.
        first_received_at: OffsetDateTime,
        /// Latest delivery.
        last_received_at: OffsetDateTime,
        /// The suggestion it reported.
        suggestion: Suggestion,
    },
    /// A distinct body of an unverified notice: kept as evidence of what arrived, never
    /// read as Cabital's words (no suggestion is taken from it).
    UnverifiedNotice {
        /// The body exactly as received.
        body: Pii<String>,
        /// Its hex SHA-256.
        body_sha256: String,
        /// How many times this body was delivered unverified.
        deliveries: u32,
        /// First delivery.
        first_received_at: OffsetDateTime,
        /// Latest delivery.
        last_received_at: OffsetDateTime,
        /// Why it is not a verified webhook.
        reason: NoticeReason,
    },
    /// The state read from Cabital after a webhook or on request.
    Refreshed(StateChange),
    /// The state read from Cabital by the reconciler.
    Reconciled(StateChange),
    /// The partner's decision.
    Decision {
        /// Accept or reject.
        decision: Decision,
        /// The partner's note.
        comment: Option<Pii<String>>,
    },
    /// Ongoing screening turned on.
    OgsOn,
    /// Ongoing screening turned off.
    OgsOff,
    /// No suggestion came within the give-up time: no longer asked about.
    SuggestionOverdue {
        /// How long after the case's creation it was given up, in seconds.
        waited_secs: u64,
    },
    /// The case's personal data was erased.
    Erased {
        /// How many of its items held personal data and were rewritten.
        items_erased: u64,
    },
}

impl EventDetail {
    /// The kind.
    pub fn kind(&self) -> EventKind {
        match self {
            EventDetail::Created { .. } => EventKind::Created,
            EventDetail::Webhook { .. } => EventKind::Webhook,
            EventDetail::UnverifiedNotice { .. } => EventKind::UnverifiedNotice,
            EventDetail::Refreshed(_) => EventKind::Refreshed,
            EventDetail::Reconciled(_) => EventKind::Reconciled,
            EventDetail::Decision { .. } => EventKind::Decision,
            EventDetail::OgsOn => EventKind::OgsOn,
            EventDetail::OgsOff => EventKind::OgsOff,
            EventDetail::SuggestionOverdue { .. } => EventKind::SuggestionOverdue,
            EventDetail::Erased { .. } => EventKind::Erased,
        }
    }
}

/// An event's place in its case's chain (`gateway_evidence`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    /// The case's version the event's write left it at: the chain's order.
    pub case_version: u64,
    /// The previous event's `hash` (`gateway_evidence::GENESIS` for the first).
    pub prev_hash: String,
    /// SHA-256 of the event's canonical content ([`Event::content`]).
    pub content_sha256: String,
    /// SHA-256 of `prev_hash ‖ content_sha256`.
    pub hash: String,
}

/// One entry of a case's history.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Unique within the case, ordered by time (the item's sort key).
    pub event_id: String,
    /// The case.
    pub case_system_id: CaseSystemId,
    /// When it was recorded.
    pub at: OffsetDateTime,
    /// Who recorded it.
    pub source: EventSource,
    /// What it records.
    pub detail: EventDetail,
    /// Its link in the case's chain; `None` for an event written before the chain.
    pub chain: Option<ChainLink>,
    /// Its personal data was erased: its content no longer hashes to its link's
    /// `content_sha256`, which stays.
    pub erased: bool,
}

impl Event {
    /// The kind.
    pub fn kind(&self) -> EventKind {
        self.detail.kind()
    }

    /// What its chain link hashes ([`crate::codec::event_content`]); `None` without a
    /// link.
    pub fn content(&self) -> Option<serde_json::Value> {
        let link = self.chain.as_ref()?;
        Some(crate::codec::event_content(
            &self.case_system_id,
            &self.event_id,
            self.at,
            self.source,
            link.case_version,
            &self.detail,
        ))
    }
}

/// Which end of the timeline to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineOrder {
    /// Oldest first.
    Oldest,
    /// Newest first.
    Newest,
}

/// One page of a case's timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelinePage {
    /// The events, in the order asked for.
    pub events: Vec<Event>,
    /// Pass it back to get the next page; `None` when there is no more.
    pub next_cursor: Option<String>,
}

/// What an index entry points at.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AttentionTarget {
    /// A case item.
    Case(CaseSystemId),
    /// An external-id reservation (pending or unknown creation).
    External(ExternalCaseId),
}

/// An entry found in one of the sparse indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttentionRef {
    /// The item.
    pub target: AttentionTarget,
    /// Its index time: when it became urgent, was last checked while awaiting, or was
    /// last checked under ongoing screening.
    pub since: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn case(suggestion: Option<Suggestion>) -> CaseRecord {
        let created = datetime!(2026-12-03 10:00 UTC);
        let mut case = CaseRecord::new(
            "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c".parse().unwrap(),
            ExternalCaseId::parse("ext-1").unwrap(),
            Origin::Api,
            None,
            suggestion,
            None,
            created,
        );
        case.checked(created);
        case
    }

    #[test]
    fn a_pending_decision_keeps_its_case_urgent_from_its_senders_deadline_until_cleared() {
        let until = datetime!(2026-12-03 10:05 UTC);
        let mut suggested = case(Some(Suggestion::SuggestToAccept));
        assert_eq!(suggested.attention, None);
        suggested.mark_decision_pending(Decision::Accept, until);
        assert_eq!(suggested.attention, Some(Attention::urgent(until)));
        // A refresh while the decision may still be in flight keeps the mark's urgency.
        suggested.checked(datetime!(2026-12-03 10:01 UTC));
        assert_eq!(suggested.attention, Some(Attention::urgent(until)));
        // A second send keeps the later deadline.
        suggested.mark_decision_pending(Decision::Reject, datetime!(2026-12-03 10:02 UTC));
        assert_eq!(suggested.decision_pending.map(|p| (p.decision, p.until)), Some((Decision::Reject, until)));
        suggested.clear_decision_pending();
        assert_eq!((suggested.decision_pending, suggested.attention), (None, None));

        // An awaiting case goes back to awaiting since its last check.
        let mut awaiting = case(None);
        let before = awaiting.attention;
        awaiting.mark_decision_pending(Decision::Accept, until);
        awaiting.clear_decision_pending();
        assert_eq!(awaiting.attention, before);

        // A refresh already due keeps its own (earlier) urgency.
        let mut flagged = case(None);
        flagged.needs_refresh = true;
        flagged.attention = Some(Attention::urgent(datetime!(2026-12-03 10:00:30 UTC)));
        flagged.mark_decision_pending(Decision::Accept, until);
        assert_eq!(flagged.attention, Some(Attention::urgent(datetime!(2026-12-03 10:00:30 UTC))));
    }

    #[test]
    fn a_pending_ogs_change_keeps_its_case_urgent_and_the_earliest_mark_decides_when() {
        let until = datetime!(2026-12-03 10:05 UTC);
        let mut suggested = case(Some(Suggestion::SuggestToAccept));
        suggested.mark_ogs_pending(true, until);
        assert_eq!(suggested.attention, Some(Attention::urgent(until)));
        // A decision sent later: the case is looked at from the earlier end.
        suggested.mark_decision_pending(Decision::Accept, datetime!(2026-12-03 10:07 UTC));
        assert_eq!(suggested.attention, Some(Attention::urgent(until)));
        // The ongoing-screening change recorded: the decision's mark still holds it.
        suggested.clear_ogs_pending();
        assert_eq!(suggested.attention, Some(Attention::urgent(datetime!(2026-12-03 10:07 UTC))));
        suggested.clear_decision_pending();
        assert_eq!((suggested.ogs_pending, suggested.decision_pending, suggested.attention), (None, None, None));
    }
}
