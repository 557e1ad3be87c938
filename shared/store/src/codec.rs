//! Items to records and back, and a small builder for update and condition expressions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_cabital::{CaseSystemId, Comment, CutText, ExternalCaseId, Pii};
use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{
    Attention, AttentionPriority, CaseRecord, CaseStatus, ChainLink, ChangedField, DecisionPending, Event, EventDetail,
    EventKind, EventSource, ExtRecord, ExtState, NoticeReason, OgsPending, Origin, StateChange,
};
use crate::queue::Flag;
use crate::schema::{
    self, ATTN_AT, ATTN_SHARD, OGS_CHECKED_AT, OGS_SHARD, PK, QUEUE_AT, QUEUE_KEY, SK, attr, format_time, parse_time,
};

/// A DynamoDB item.
pub(crate) type Item = HashMap<String, AttributeValue>;

// ---------------------------------------------------------------- reading

/// Reads one item's attributes, naming the item (by key, never by value) in errors.
pub(crate) struct Reader<'a> {
    item: &'a Item,
    what: String,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(item: &'a Item) -> Self {
        let key = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).map(String::as_str).unwrap_or("?");
        // Keys hold ids and kinds only, never personal data.
        let what = format!("{}/{}", key(PK), key(SK));
        Reader { item, what }
    }

    fn err(&self, attr: &str, problem: &str) -> StoreError {
        StoreError::corrupt(format!("{}: attribute {attr} {problem}", self.what))
    }

    pub(crate) fn opt_str(&self, attr: &str) -> Result<Option<&'a str>, StoreError> {
        match self.item.get(attr) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(self.err(attr, "is not a string")),
        }
    }

    pub(crate) fn str(&self, attr: &str) -> Result<&'a str, StoreError> {
        self.opt_str(attr)?.ok_or_else(|| self.err(attr, "is missing"))
    }

    pub(crate) fn opt_pii(&self, attr: &str) -> Result<Option<Pii<String>>, StoreError> {
        Ok(self.opt_str(attr)?.map(|s| Pii(s.to_owned())))
    }

    /// A comment: a string, or a map `{text, fullBytes, fullSha256}` when it was cut.
    pub(crate) fn opt_comment(&self, attr: &str) -> Result<Option<Comment>, StoreError> {
        match self.item.get(attr) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::S(text)) => Ok(Some(Comment::stored(text.clone(), None))),
            Some(AttributeValue::M(m)) => {
                let cut = Reader { item: m, what: format!("{}.{attr}", self.what) };
                let full = CutText {
                    full_bytes: cut.u64(COMMENT_FULL_BYTES)?,
                    full_sha256: cut.str(COMMENT_FULL_SHA256)?.to_owned(),
                };
                Ok(Some(Comment::stored(cut.str(COMMENT_TEXT)?.to_owned(), Some(full))))
            }
            Some(_) => Err(self.err(attr, "is not a comment")),
        }
    }

    pub(crate) fn opt_u64(&self, attr: &str) -> Result<Option<u64>, StoreError> {
        match self.item.get(attr) {
            None | Some(AttributeValue::Null(_)) => Ok(None),
            Some(AttributeValue::N(n)) => n.parse().map(Some).map_err(|_| self.err(attr, "is not a whole number")),
            Some(_) => Err(self.err(attr, "is not a number")),
        }
    }

    /// A time held as Unix seconds (the TTL attribute).
    pub(crate) fn opt_unix(&self, attr: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.opt_u64(attr)?
            .map(|secs| {
                i64::try_from(secs)
                    .ok()
                    .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
                    .ok_or_else(|| self.err(attr, "is out of range"))
            })
            .transpose()
    }

    pub(crate) fn u64(&self, attr: &str) -> Result<u64, StoreError> {
        self.opt_u64(attr)?.ok_or_else(|| self.err(attr, "is missing"))
    }

    pub(crate) fn u32(&self, attr: &str) -> Result<u32, StoreError> {
        u32::try_from(self.u64(attr)?).map_err(|_| self.err(attr, "is out of range"))
    }

    pub(crate) fn bool_or_false(&self, attr: &str) -> Result<bool, StoreError> {
        match self.item.get(attr) {
            None | Some(AttributeValue::Null(_)) => Ok(false),
            Some(AttributeValue::Bool(b)) => Ok(*b),
            Some(_) => Err(self.err(attr, "is not a boolean")),
        }
    }

    pub(crate) fn opt_time(&self, attr: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.opt_str(attr)?.map(|s| parse_time(s).ok_or_else(|| self.err(attr, "is not a stored time"))).transpose()
    }

    pub(crate) fn time(&self, attr: &str) -> Result<OffsetDateTime, StoreError> {
        self.opt_time(attr)?.ok_or_else(|| self.err(attr, "is missing"))
    }

    /// A value of a closed set, read with `parse`.
    pub(crate) fn opt_parsed<T>(&self, attr: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, StoreError> {
        self.opt_str(attr)?.map(|s| parse(s).ok_or_else(|| self.err(attr, "has an unknown value"))).transpose()
    }

    pub(crate) fn parsed<T>(&self, attr: &str, parse: impl Fn(&str) -> Option<T>) -> Result<T, StoreError> {
        self.opt_parsed(attr, parse)?.ok_or_else(|| self.err(attr, "is missing"))
    }

    pub(crate) fn string_list(&self, attr: &str) -> Result<Vec<&'a str>, StoreError> {
        match self.item.get(attr) {
            None => Ok(Vec::new()),
            Some(AttributeValue::L(list)) => list
                .iter()
                .map(|v| v.as_s().map(String::as_str).map_err(|_| self.err(attr, "holds a non-string")))
                .collect(),
            Some(_) => Err(self.err(attr, "is not a list")),
        }
    }

    pub(crate) fn attention(&self) -> Result<Option<Attention>, StoreError> {
        let Some(at) = self.opt_str(ATTN_AT)? else {
            return Ok(None);
        };
        parse_attention(at).map(Some).ok_or_else(|| self.err(ATTN_AT, "is not <priority>#<time>"))
    }
}

pub(crate) fn parse_case_id(s: &str) -> Option<CaseSystemId> {
    s.parse().ok()
}

pub(crate) fn parse_ext_id(s: &str) -> Option<ExternalCaseId> {
    ExternalCaseId::parse(s).ok()
}

pub(crate) fn parse_attention(s: &str) -> Option<Attention> {
    let (priority, rest) = if let Some(rest) = s.strip_prefix(AttentionPriority::Urgent.prefix()) {
        (AttentionPriority::Urgent, rest)
    } else {
        (AttentionPriority::Awaiting, s.strip_prefix(AttentionPriority::Awaiting.prefix())?)
    };
    Some(Attention { priority, since: parse_time(rest)? })
}

/// The stored value of an attention entry: `<priority>#<time>`.
pub(crate) fn attention_value(a: &Attention) -> String {
    format!("{}{}", a.priority.prefix(), format_time(a.since))
}

/// An item's attributes in the attention index, `None` out of it; `id` (the case's or
/// the external id's own id) picks the shard. Every such write also clears the
/// reconciler's backoff count: whatever (re)places an item in the index makes it due as
/// written, and only the reconciler's deferral (`Store::defer_index_entry`) sets it.
fn attention_attributes(id: &str, a: Option<&Attention>) -> [(&'static str, Option<AttributeValue>); 3] {
    [
        (ATTN_SHARD, a.map(|_| s(schema::attn_shard(schema::shard_of(id))))),
        (ATTN_AT, a.map(|a| s(attention_value(a)))),
        (attr::BACKOFF_ATTEMPTS, None),
    ]
}

// ---------------------------------------------------------------- values

pub(crate) fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub(crate) fn n(v: u64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub(crate) fn t(v: OffsetDateTime) -> AttributeValue {
    AttributeValue::S(format_time(v))
}

/// Unix seconds, as the TTL attribute holds them (times before 1970 do not occur here).
pub(crate) fn unix_secs(at: OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp()).unwrap_or(0)
}

/// A time as the TTL attribute holds it: a Number of Unix seconds.
pub(crate) fn unix(at: OffsetDateTime) -> AttributeValue {
    n(unix_secs(at))
}

/// Puts `value` under `attr` when present.
/// The attributes of a cut comment's map.
const COMMENT_TEXT: &str = "text";
const COMMENT_FULL_BYTES: &str = "fullBytes";
const COMMENT_FULL_SHA256: &str = "fullSha256";

/// A comment as stored: its text, or when cut, the text with what it was cut from.
pub(crate) fn comment(c: &Comment) -> AttributeValue {
    match c.cut() {
        None => s(c.expose()),
        Some(cut) => AttributeValue::M(HashMap::from([
            (COMMENT_TEXT.to_owned(), s(c.expose())),
            (COMMENT_FULL_BYTES.to_owned(), n(cut.full_bytes)),
            (COMMENT_FULL_SHA256.to_owned(), s(&cut.full_sha256)),
        ])),
    }
}

fn put_opt(item: &mut Item, attr: &str, value: Option<AttributeValue>) {
    if let Some(v) = value {
        item.insert(attr.to_owned(), v);
    }
}

// ---------------------------------------------------------------- case items

/// Every attribute of a case item; absent options are absent attributes.
pub(crate) fn case_item(c: &CaseRecord) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(schema::case_pk(&c.case_system_id)));
    item.insert(SK.into(), s(schema::CASE_SK));
    for (attr, value) in case_attributes(c) {
        put_opt(&mut item, attr, value);
    }
    item
}

/// The case's attributes besides its key, `None` for an absent one: what a full write
/// (a Put, or an Update that SETs the present ones and REMOVEs the absent ones) stores.
pub(crate) fn case_attributes(c: &CaseRecord) -> Vec<(&'static str, Option<AttributeValue>)> {
    let id = c.case_system_id.to_string();
    let shard = schema::shard_of(&id);
    let mut attributes = vec![
        (attr::CASE_SYSTEM_ID, Some(s(c.case_system_id.to_string()))),
        (attr::EXTERNAL_CASE_ID, Some(s(c.external_case_id.as_str()))),
        (attr::SCREEN_TYPE, c.screen_type.map(|v| s(v.as_str()))),
        (attr::ORIGIN, Some(s(c.origin.as_str()))),
        (attr::STATUS, Some(s(c.status.as_str()))),
        (attr::SUGGESTION, c.suggestion.map(|v| s(v.as_str()))),
        (attr::SUGGESTION_COMMENT, c.suggestion_comment.as_ref().map(comment)),
        (attr::SUGGESTION_AT, c.suggestion_at.map(t)),
        (attr::DECISION, c.decision.map(|v| s(v.as_str()))),
        (attr::DECISION_COMMENT, c.decision_comment.as_ref().map(comment)),
        (attr::DECIDED_AT, c.decided_at.map(t)),
        (attr::OGS, Some(AttributeValue::Bool(c.ogs))),
        (attr::NEEDS_REFRESH, Some(AttributeValue::Bool(c.needs_refresh))),
        (attr::CREATED_AT, Some(t(c.created_at))),
        (attr::UPDATED_AT, Some(t(c.updated_at))),
        (attr::LAST_CHECKED_AT, c.last_checked_at.map(t)),
        (attr::VERSION, Some(n(c.version))),
    ];
    attributes.extend(attention_attributes(&id, c.attention.as_ref()));
    attributes.extend([
        (OGS_SHARD, c.ogs_checked_at.map(|_| s(schema::ogs_shard(shard)))),
        (OGS_CHECKED_AT, c.ogs_checked_at.map(t)),
        (attr::NO_SUGGESTION_SINCE, c.no_suggestion_since.map(t)),
        (attr::DECISION_PENDING, c.decision_pending.map(|p| s(p.decision.as_str()))),
        (attr::DECISION_PENDING_UNTIL, c.decision_pending.map(|p| t(p.until))),
        (attr::OGS_PENDING, c.ogs_pending.map(|p| s(if p.on { "ON" } else { "OFF" }))),
        (attr::OGS_PENDING_UNTIL, c.ogs_pending.map(|p| t(p.until))),
        (attr::CHAIN_HEAD, c.chain_head.as_deref().map(s)),
        (attr::ERASED_AT, c.erased_at.map(t)),
        (attr::EXPIRES_AT, c.expires_at.map(unix)),
    ]);
    attributes.extend(queue_attributes(c));
    attributes
}

/// The case's place in the `queue` index: in the work queue while it has a suggestion
/// and no decision, by when the suggestion came (its creation, if that is unknown);
/// flagged `no_suggestion` while given up for want of one.
fn queue_attributes(c: &CaseRecord) -> [(&'static str, Option<AttributeValue>); 2] {
    let place = match (c.suggestion, c.decision, c.no_suggestion_since) {
        (Some(suggestion), None, _) => {
            Some((schema::queue_key(suggestion.as_str()), c.suggestion_at.unwrap_or(c.created_at)))
        }
        (None, None, Some(since)) => Some((schema::flag_key(Flag::NoSuggestion.as_str()), since)),
        _ => None,
    };
    queue_place(place.map(|(key, since)| (key, since, c.case_system_id.to_string())))
}

/// An item's `queue` index attributes: `(partition, since, id)`, or out of it.
pub(crate) fn queue_place(
    place: Option<(String, OffsetDateTime, String)>,
) -> [(&'static str, Option<AttributeValue>); 2] {
    match place {
        Some((key, since, id)) => {
            [(QUEUE_KEY, Some(s(key))), (QUEUE_AT, Some(s(format!("{}#{id}", format_time(since)))))]
        }
        None => [(QUEUE_KEY, None), (QUEUE_AT, None)],
    }
}

/// A reservation's place in the `queue` index: flagged `unknown_creation` while UNKNOWN.
pub(crate) fn unknown_creation_place(
    ext: &ExternalCaseId,
    since: Option<OffsetDateTime>,
) -> [(&'static str, Option<AttributeValue>); 2] {
    queue_place(since.map(|at| (schema::flag_key(Flag::UnknownCreation.as_str()), at, ext.as_str().to_owned())))
}

pub(crate) fn case_from_item(item: &Item) -> Result<CaseRecord, StoreError> {
    let r = Reader::new(item);
    Ok(CaseRecord {
        case_system_id: r.parsed(attr::CASE_SYSTEM_ID, parse_case_id)?,
        external_case_id: r.parsed(attr::EXTERNAL_CASE_ID, parse_ext_id)?,
        screen_type: r.opt_parsed(attr::SCREEN_TYPE, |s| s.parse().ok())?,
        origin: r.parsed(attr::ORIGIN, Origin::parse)?,
        status: r.parsed(attr::STATUS, CaseStatus::parse)?,
        suggestion: r.opt_parsed(attr::SUGGESTION, |s| s.parse().ok())?,
        suggestion_comment: r.opt_comment(attr::SUGGESTION_COMMENT)?,
        suggestion_at: r.opt_time(attr::SUGGESTION_AT)?,
        decision: r.opt_parsed(attr::DECISION, |s| s.parse().ok())?,
        decision_comment: r.opt_comment(attr::DECISION_COMMENT)?,
        decided_at: r.opt_time(attr::DECIDED_AT)?,
        ogs: r.bool_or_false(attr::OGS)?,
        needs_refresh: r.bool_or_false(attr::NEEDS_REFRESH)?,
        created_at: r.time(attr::CREATED_AT)?,
        updated_at: r.time(attr::UPDATED_AT)?,
        last_checked_at: r.opt_time(attr::LAST_CHECKED_AT)?,
        version: r.u64(attr::VERSION)?,
        attention: r.attention()?,
        ogs_checked_at: r.opt_time(OGS_CHECKED_AT)?,
        no_suggestion_since: r.opt_time(attr::NO_SUGGESTION_SINCE)?,
        decision_pending: match (
            r.opt_parsed(attr::DECISION_PENDING, |s| s.parse().ok())?,
            r.opt_time(attr::DECISION_PENDING_UNTIL)?,
        ) {
            (Some(decision), Some(until)) => Some(DecisionPending { decision, until }),
            (None, None) => None,
            _ => return Err(StoreError::corrupt("case: decisionPending without decisionPendingUntil, or the reverse")),
        },
        ogs_pending: match (
            r.opt_parsed(attr::OGS_PENDING, |s| match s {
                "ON" => Some(true),
                "OFF" => Some(false),
                _ => None,
            })?,
            r.opt_time(attr::OGS_PENDING_UNTIL)?,
        ) {
            (Some(on), Some(until)) => Some(OgsPending { on, until }),
            (None, None) => None,
            _ => return Err(StoreError::corrupt("case: ogsPending without ogsPendingUntil, or the reverse")),
        },
        chain_head: r.opt_str(attr::CHAIN_HEAD)?.map(str::to_owned),
        erased_at: r.opt_time(attr::ERASED_AT)?,
        expires_at: r.opt_unix(attr::EXPIRES_AT)?,
    })
}

// ---------------------------------------------------------------- external-id items

pub(crate) fn ext_item(e: &ExtRecord) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(schema::ext_pk(&e.external_case_id)));
    item.insert(SK.into(), s(schema::EXT_SK));
    item.insert(attr::EXTERNAL_CASE_ID.into(), s(e.external_case_id.as_str()));
    item.insert(attr::REQUEST_HASH.into(), s(e.request_hash.as_str()));
    item.insert(attr::STATE.into(), s(e.state.as_str()));
    item.insert(attr::RESERVATION_TOKEN.into(), s(e.reservation_token.to_string()));
    put_opt(&mut item, attr::CASE_SYSTEM_ID, e.case_system_id.map(|v| s(v.to_string())));
    put_opt(&mut item, attr::CABITAL_STATUS, e.cabital_status.map(|v| n(u64::from(v))));
    put_opt(&mut item, attr::SUBMITTED, e.submitted.as_ref().map(|v| s(v.expose().as_str())));
    put_opt(&mut item, attr::LINKED_AT, e.linked_at.map(t));
    item.insert(attr::CREATED_AT.into(), t(e.created_at));
    item.insert(attr::UPDATED_AT.into(), t(e.updated_at));
    put_opt(&mut item, attr::EXPIRES_AT, e.expires_at.map(unix));
    for (attr, value) in attention_attributes(e.external_case_id.as_str(), e.attention.as_ref()) {
        put_opt(&mut item, attr, value);
    }
    let unknown_since = (e.state == ExtState::Unknown).then_some(e.updated_at);
    for (attr, value) in unknown_creation_place(&e.external_case_id, unknown_since) {
        put_opt(&mut item, attr, value);
    }
    item
}

pub(crate) fn ext_from_item(item: &Item) -> Result<ExtRecord, StoreError> {
    let r = Reader::new(item);
    let status = r.opt_u64(attr::CABITAL_STATUS)?;
    Ok(ExtRecord {
        external_case_id: r.parsed(attr::EXTERNAL_CASE_ID, parse_ext_id)?,
        request_hash: r.str(attr::REQUEST_HASH)?.to_owned(),
        state: r.parsed(attr::STATE, ExtState::parse)?,
        reservation_token: r.parsed(attr::RESERVATION_TOKEN, |s| uuid::Uuid::try_parse(s).ok())?,
        case_system_id: r.opt_parsed(attr::CASE_SYSTEM_ID, parse_case_id)?,
        cabital_status: status
            .map(u16::try_from)
            .transpose()
            .map_err(|_| StoreError::corrupt("external id: cabitalStatus is out of range"))?,
        submitted: r.opt_pii(attr::SUBMITTED)?,
        linked_at: r.opt_time(attr::LINKED_AT)?,
        created_at: r.time(attr::CREATED_AT)?,
        updated_at: r.time(attr::UPDATED_AT)?,
        attention: r.attention()?,
        expires_at: r.opt_unix(attr::EXPIRES_AT)?,
    })
}

// ---------------------------------------------------------------- events

/// A new event's sort key: `EVENT#<time>#<KIND>#<8 random hex>`; the random part keeps
/// two events of one kind in the same microsecond apart.
pub(crate) fn event_sk(at: OffsetDateTime, kind: EventKind) -> String {
    let suffix: u32 = rand::random();
    format!("{}{}#{}#{suffix:08x}", schema::EVENT_PREFIX, format_time(at), kind.as_str())
}

/// What an event's snapshot of its case says where the case has no value yet (no
/// suggestion, no decision): a value of its own, so every snapshot attribute is always
/// there for the pipe's input template to read.
pub(crate) const NONE: &str = "NONE";

/// A new event item. `case` is the case as the event's transaction leaves it: its ids,
/// status, suggestion, decision, ongoing screening and version are copied onto the item
/// (never a personal field), for the pipe that turns each new event into an EventBridge
/// event.
pub(crate) fn event_item(
    case: &CaseRecord,
    sk: &str,
    at: OffsetDateTime,
    source: EventSource,
    detail: &EventDetail,
    link: &ChainLink,
) -> Item {
    let mut item = Item::new();
    item.insert(PK.into(), s(schema::case_pk(&case.case_system_id)));
    item.insert(SK.into(), s(sk));
    item.insert(attr::KIND.into(), s(detail.kind().as_str()));
    item.insert(attr::AT.into(), t(at));
    item.insert(attr::SOURCE.into(), s(source.as_str()));
    item.insert(attr::CASE_SYSTEM_ID.into(), s(case.case_system_id.to_string()));
    item.insert(attr::EXTERNAL_CASE_ID.into(), s(case.external_case_id.as_str()));
    item.insert(attr::CASE_VERSION.into(), n(case.version));
    item.insert(attr::CASE_STATUS.into(), s(case.status.as_str()));
    item.insert(attr::CASE_SUGGESTION.into(), s(case.suggestion.map_or(NONE, |v| v.as_str())));
    item.insert(attr::CASE_DECISION.into(), s(case.decision.map_or(NONE, |v| v.as_str())));
    item.insert(attr::CASE_OGS.into(), s(if case.ogs { "ON" } else { "OFF" }));
    item.insert(attr::PREV_HASH.into(), s(&link.prev_hash));
    item.insert(attr::CONTENT_SHA256.into(), s(&link.content_sha256));
    item.insert(attr::HASH.into(), s(&link.hash));
    // The case's retention bound: the event is kept as long as its case.
    put_opt(&mut item, attr::EXPIRES_AT, case.expires_at.map(unix));
    let pii = |v: &Option<Pii<String>>| v.as_ref().map(|p| s(p.expose().as_str()));
    match detail {
        EventDetail::Created { submitted, response } => {
            put_opt(&mut item, attr::SUBMITTED, pii(submitted));
            put_opt(&mut item, attr::RESPONSE, pii(response));
        }
        EventDetail::Webhook { body, body_sha256, deliveries, first_received_at, last_received_at, suggestion } => {
            item.extend(delivery_attributes(body, body_sha256, *deliveries, *first_received_at, *last_received_at));
            item.insert(attr::SUGGESTION.into(), s(suggestion.as_str()));
        }
        EventDetail::UnverifiedNotice {
            body,
            body_sha256,
            deliveries,
            first_received_at,
            last_received_at,
            reason,
        } => {
            item.extend(delivery_attributes(body, body_sha256, *deliveries, *first_received_at, *last_received_at));
            item.insert(attr::REASON.into(), s(reason.as_str()));
        }
        EventDetail::Refreshed(change) | EventDetail::Reconciled(change) => {
            put_opt(&mut item, attr::FROM_SUGGESTION, change.from_suggestion.map(|v| s(v.as_str())));
            put_opt(&mut item, attr::TO_SUGGESTION, change.to_suggestion.map(|v| s(v.as_str())));
            put_opt(&mut item, attr::TO_SUGGESTION_COMMENT, change.to_suggestion_comment.as_ref().map(comment));
            put_opt(&mut item, attr::TO_DECISION, change.to_decision.map(|v| s(v.as_str())));
            put_opt(&mut item, attr::TO_DECISION_COMMENT, change.to_decision_comment.as_ref().map(comment));
            item.insert(attr::TO_OGS.into(), AttributeValue::Bool(change.to_ogs));
            item.insert(
                attr::CHANGED.into(),
                AttributeValue::L(change.changed.iter().map(|f| s(f.as_str())).collect()),
            );
        }
        EventDetail::Decision { decision, comment } => {
            item.insert(attr::DECISION.into(), s(decision.as_str()));
            put_opt(&mut item, attr::COMMENT, pii(comment));
        }
        EventDetail::OgsOn | EventDetail::OgsOff => {}
        EventDetail::SuggestionOverdue { waited_secs } => {
            item.insert(attr::WAITED_SECS.into(), n(*waited_secs));
        }
        EventDetail::Erased { items_erased } => {
            item.insert(attr::ITEMS_ERASED.into(), n(*items_erased));
        }
    }
    item
}

/// What a webhook event and an unverified notice's event both keep of their body.
fn delivery_attributes(
    body: &Pii<String>,
    body_sha256: &str,
    deliveries: u32,
    first_received_at: OffsetDateTime,
    last_received_at: OffsetDateTime,
) -> [(String, AttributeValue); 5] {
    [
        (attr::BODY.into(), s(body.expose().as_str())),
        (attr::BODY_SHA256.into(), s(body_sha256)),
        (attr::DELIVERIES.into(), n(u64::from(deliveries))),
        (attr::FIRST_RECEIVED_AT.into(), t(first_received_at)),
        (attr::LAST_RECEIVED_AT.into(), t(last_received_at)),
    ]
}

/// What [`delivery_attributes`] wrote, read back.
struct Delivery {
    body: Pii<String>,
    body_sha256: String,
    deliveries: u32,
    first_received_at: OffsetDateTime,
    last_received_at: OffsetDateTime,
}

fn read_delivery(r: &Reader<'_>) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        body: Pii(r.str(attr::BODY)?.to_owned()),
        body_sha256: r.str(attr::BODY_SHA256)?.to_owned(),
        deliveries: r.u32(attr::DELIVERIES)?,
        first_received_at: r.time(attr::FIRST_RECEIVED_AT)?,
        last_received_at: r.time(attr::LAST_RECEIVED_AT)?,
    })
}

pub(crate) fn event_from_item(item: &Item) -> Result<Event, StoreError> {
    let r = Reader::new(item);
    let pk = r.str(PK)?;
    let case_system_id = pk
        .strip_prefix(schema::CASE_PK_PREFIX)
        .and_then(parse_case_id)
        .ok_or_else(|| StoreError::corrupt("event: pk is not CASE#<uuid>"))?;
    let kind = r.parsed(attr::KIND, EventKind::parse)?;
    let change = |r: &Reader<'_>| -> Result<StateChange, StoreError> {
        Ok(StateChange {
            from_suggestion: r.opt_parsed(attr::FROM_SUGGESTION, |s| s.parse().ok())?,
            to_suggestion: r.opt_parsed(attr::TO_SUGGESTION, |s| s.parse().ok())?,
            to_suggestion_comment: r.opt_comment(attr::TO_SUGGESTION_COMMENT)?,
            to_decision: r.opt_parsed(attr::TO_DECISION, |s| s.parse().ok())?,
            to_decision_comment: r.opt_comment(attr::TO_DECISION_COMMENT)?,
            to_ogs: r.bool_or_false(attr::TO_OGS)?,
            changed: r
                .string_list(attr::CHANGED)?
                .into_iter()
                .map(|f| ChangedField::parse(f).ok_or_else(|| StoreError::corrupt("event: unknown changed field")))
                .collect::<Result<_, _>>()?,
        })
    };
    let detail = match kind {
        EventKind::Created => {
            EventDetail::Created { submitted: r.opt_pii(attr::SUBMITTED)?, response: r.opt_pii(attr::RESPONSE)? }
        }
        EventKind::Webhook => {
            let Delivery { body, body_sha256, deliveries, first_received_at, last_received_at } = read_delivery(&r)?;
            let suggestion = r.parsed(attr::SUGGESTION, |s| s.parse().ok())?;
            EventDetail::Webhook { body, body_sha256, deliveries, first_received_at, last_received_at, suggestion }
        }
        EventKind::UnverifiedNotice => {
            let Delivery { body, body_sha256, deliveries, first_received_at, last_received_at } = read_delivery(&r)?;
            let reason = r.parsed(attr::REASON, NoticeReason::parse)?;
            EventDetail::UnverifiedNotice { body, body_sha256, deliveries, first_received_at, last_received_at, reason }
        }
        EventKind::Refreshed => EventDetail::Refreshed(change(&r)?),
        EventKind::Reconciled => EventDetail::Reconciled(change(&r)?),
        EventKind::Decision => EventDetail::Decision {
            decision: r.parsed(attr::DECISION, |s| s.parse().ok())?,
            comment: r.opt_pii(attr::COMMENT)?,
        },
        EventKind::OgsOn => EventDetail::OgsOn,
        EventKind::OgsOff => EventDetail::OgsOff,
        EventKind::SuggestionOverdue => EventDetail::SuggestionOverdue { waited_secs: r.u64(attr::WAITED_SECS)? },
        EventKind::Erased => EventDetail::Erased { items_erased: r.u64(attr::ITEMS_ERASED)? },
    };
    let chain = match (r.opt_u64(attr::CASE_VERSION)?, r.opt_str(attr::HASH)?) {
        (Some(case_version), Some(hash)) => Some(ChainLink {
            case_version,
            prev_hash: r.str(attr::PREV_HASH)?.to_owned(),
            content_sha256: r.str(attr::CONTENT_SHA256)?.to_owned(),
            hash: hash.to_owned(),
        }),
        _ => None,
    };
    Ok(Event {
        event_id: r.str(SK)?.to_owned(),
        case_system_id,
        at: r.time(attr::AT)?,
        source: r.parsed(attr::SOURCE, EventSource::parse)?,
        detail,
        chain,
        erased: r.bool_or_false(attr::ERASED)?,
    })
}

/// What an event's chain link hashes (`gateway_evidence`, docs/evidence.md): its ids,
/// time, kind, source, the case's version and what it records, as JSON. Never a value
/// that changes after the event is written (a body's delivery count, its last delivery).
pub(crate) fn event_content(
    case_system_id: &CaseSystemId,
    event_id: &str,
    at: OffsetDateTime,
    source: EventSource,
    case_version: u64,
    detail: &EventDetail,
) -> serde_json::Value {
    use serde_json::{Value, json};
    let text = |p: &Option<Pii<String>>| p.as_ref().map(|p| p.expose().clone());
    let comment = |c: &Option<Comment>| match c {
        None => Value::Null,
        Some(c) => match c.cut() {
            None => json!(c.expose()),
            Some(cut) => json!({"text": c.expose(), "fullBytes": cut.full_bytes, "fullSha256": cut.full_sha256}),
        },
    };
    let details = match detail {
        EventDetail::Created { submitted, response } => {
            json!({"submitted": text(submitted), "response": text(response)})
        }
        EventDetail::Webhook { body, body_sha256, first_received_at, suggestion, .. } => json!({
            "body": body.expose(), "bodySha256": body_sha256,
            "firstReceivedAt": format_time(*first_received_at), "suggestion": suggestion.as_str(),
        }),
        EventDetail::UnverifiedNotice { body, body_sha256, first_received_at, reason, .. } => json!({
            "body": body.expose(), "bodySha256": body_sha256,
            "firstReceivedAt": format_time(*first_received_at), "reason": reason.as_str(),
        }),
        EventDetail::Refreshed(c) | EventDetail::Reconciled(c) => json!({
            "fromSuggestion": c.from_suggestion.map(|v| v.as_str()),
            "toSuggestion": c.to_suggestion.map(|v| v.as_str()),
            "toSuggestionComment": comment(&c.to_suggestion_comment),
            "toDecision": c.to_decision.map(|v| v.as_str()),
            "toDecisionComment": comment(&c.to_decision_comment),
            "toOgs": c.to_ogs,
            "changed": c.changed.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
        }),
        EventDetail::Decision { decision, comment } => json!({"decision": decision.as_str(), "comment": text(comment)}),
        EventDetail::OgsOn | EventDetail::OgsOff => json!({}),
        EventDetail::SuggestionOverdue { waited_secs } => json!({"waitedSecs": waited_secs}),
        EventDetail::Erased { items_erased } => json!({"itemsErased": items_erased}),
    };
    json!({
        "caseSystemId": case_system_id.to_string(),
        "eventId": event_id,
        "at": format_time(at),
        "kind": detail.kind().as_str(),
        "source": source.as_str(),
        "caseVersion": case_version,
        "details": details,
    })
}

// ---------------------------------------------------------------- expressions

/// Builds update and condition expressions with placeholders for every name and value,
/// so reserved words (`status`, `state`, ...) never matter and every placeholder is used.
#[derive(Debug, Default)]
pub(crate) struct Expr {
    sets: Vec<String>,
    removes: Vec<String>,
    adds: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `#name` for an attribute.
    pub(crate) fn name(&mut self, attr: &str) -> String {
        let placeholder = format!("#{attr}");
        self.names.insert(placeholder.clone(), attr.to_owned());
        placeholder
    }

    /// `:vN` for a value.
    pub(crate) fn value(&mut self, v: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), v);
        placeholder
    }

    pub(crate) fn set(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attr), self.value(v));
        self.sets.push(format!("{name} = {value}"));
        self
    }

    /// SET when present, REMOVE when absent.
    pub(crate) fn set_or_remove(&mut self, attr: &str, v: Option<AttributeValue>) -> &mut Self {
        match v {
            Some(v) => self.set(attr, v),
            None => self.remove(attr),
        }
    }

    /// SETs (or, for `None`, REMOVEs) the item's place in the attention index; `id` as
    /// for the item's own write.
    pub(crate) fn set_attention(&mut self, id: &str, a: Option<&Attention>) -> &mut Self {
        for (attr, value) in attention_attributes(id, a) {
            self.set_or_remove(attr, value);
        }
        self
    }

    pub(crate) fn remove(&mut self, attr: &str) -> &mut Self {
        let name = self.name(attr);
        self.removes.push(name);
        self
    }

    pub(crate) fn add(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attr), self.value(v));
        self.adds.push(format!("{name} {value}"));
        self
    }

    /// The update expression.
    pub(crate) fn update_expression(&self) -> String {
        let mut parts = Vec::new();
        if !self.sets.is_empty() {
            parts.push(format!("SET {}", self.sets.join(", ")));
        }
        if !self.removes.is_empty() {
            parts.push(format!("REMOVE {}", self.removes.join(", ")));
        }
        if !self.adds.is_empty() {
            parts.push(format!("ADD {}", self.adds.join(", ")));
        }
        parts.join(" ")
    }

    pub(crate) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    pub(crate) fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_cabital::{Decision, Suggestion};
    use time::macros::datetime;

    fn case() -> CaseRecord {
        let now = datetime!(2026-11-29 01:02:03.123456 UTC);
        CaseRecord {
            case_system_id: "6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c".parse().unwrap(),
            external_case_id: ExternalCaseId::parse("ext-1").unwrap(),
            screen_type: Some(gateway_cabital::ScreenType::Individual),
            origin: Origin::Api,
            status: CaseStatus::Decided,
            suggestion: Some(Suggestion::SuggestToAccept),
            suggestion_comment: Some(gateway_cabital::Comment::new("ok")),
            suggestion_at: Some(now),
            decision: Some(Decision::Accept),
            decision_comment: None,
            decided_at: Some(now),
            ogs: true,
            needs_refresh: false,
            created_at: now,
            updated_at: now,
            last_checked_at: Some(now),
            version: 7,
            attention: Some(Attention { priority: AttentionPriority::Awaiting, since: now }),
            ogs_checked_at: Some(now),
            no_suggestion_since: Some(now),
            decision_pending: Some(DecisionPending { decision: Decision::Reject, until: now }),
            ogs_pending: Some(OgsPending { on: false, until: now }),
            chain_head: Some("ab".repeat(32)),
            erased_at: Some(now),
            expires_at: Some(datetime!(2031-12-01 00:00:00 UTC)),
        }
    }

    #[test]
    fn case_items_round_trip() {
        let c = case();
        let item = case_item(&c);
        assert_eq!(case_from_item(&item).unwrap(), c);
        assert_eq!(item["attnAt"].as_s().unwrap(), "1#2026-11-29T01:02:03.123456Z");
        assert!(item["attnShard"].as_s().unwrap().starts_with("ATTN#"));
        assert!(!item.contains_key("decisionComment"));
        // The TTL attribute is a Number of Unix seconds, as DynamoDB's TTL reads it.
        assert_eq!(item["expiresAt"].as_n().unwrap(), "1953849600");
    }

    #[test]
    fn corrupt_items_name_the_attribute_not_the_value() {
        let mut item = case_item(&case());
        item.insert("suggestion".into(), s("SECRET_VALUE"));
        let err = case_from_item(&item).unwrap_err().to_string();
        assert!(err.contains("suggestion"), "{err}");
        assert!(!err.contains("SECRET_VALUE"), "{err}");
    }

    #[test]
    fn debug_output_hides_comments() {
        let text = format!("{:?}", case());
        assert!(!text.contains("\"ok\""), "{text}");
    }

    #[test]
    fn attention_values_parse() {
        let a = parse_attention("0#2026-11-29T01:02:03.000000Z").unwrap();
        assert_eq!(a.priority, AttentionPriority::Urgent);
        assert!(parse_attention("2#2026-11-29T01:02:03.000000Z").is_none());
        assert!(parse_attention("1#yesterday").is_none());
    }

    #[test]
    fn expressions_use_placeholders() {
        let mut e = Expr::new();
        e.set("status", s("X")).remove("attnAt").add("version", n(1));
        assert_eq!(e.update_expression(), "SET #status = :v0 REMOVE #attnAt ADD #version :v1");
        assert_eq!(e.names().unwrap().len(), 3);
        assert!(Expr::new().values().is_none());
    }
}
