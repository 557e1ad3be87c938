//! The compliance officer's lists, from the sparse `queue` index (keys and
//! `externalCaseId` only): the work queue (cases with a suggestion and no decision,
//! oldest suggestion first), and what the gateway itself flags for a person (creations
//! whose outcome is unknown, cases given up for want of a suggestion), oldest first.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway_cabital::{CaseSystemId, ExternalCaseId, Suggestion};
use time::OffsetDateTime;

use crate::codec::{Expr, Item, Reader, parse_case_id, parse_ext_id, s};
use crate::error::{StoreError, from_sdk};
use crate::schema::{self, PK, QUEUE_AT, QUEUE_INDEX, QUEUE_KEY, attr, parse_time};
use crate::store::Store;

/// The most cases one page of the work queue returns.
pub const MAX_QUEUE_PAGE: u32 = 100;

/// Every suggestion, in the order their partitions are read.
const SUGGESTIONS: [Suggestion; 3] =
    [Suggestion::SuggestToAccept, Suggestion::SuggestToReject, Suggestion::NoSuggestion];

/// What the gateway flags for a person to look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// A create whose outcome at Cabital is unknown: no case id yet (`UNKNOWN`).
    UnknownCreation,
    /// No suggestion came within the give-up time; no longer asked about.
    NoSuggestion,
}

impl Flag {
    /// As the API and the index spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Flag::UnknownCreation => "unknown_creation",
            Flag::NoSuggestion => "no_suggestion",
        }
    }

    /// The inverse of [`Flag::as_str`].
    pub fn parse(s: &str) -> Option<Flag> {
        [Flag::UnknownCreation, Flag::NoSuggestion].into_iter().find(|f| f.as_str() == s)
    }
}

/// Which list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueList {
    /// Suggested and undecided (only this suggestion, if given).
    AwaitingDecision(Option<Suggestion>),
    /// Flagged by the gateway.
    Flagged(Flag),
}

impl QueueList {
    /// The index partitions it reads.
    fn partitions(&self) -> Vec<String> {
        match self {
            QueueList::AwaitingDecision(Some(one)) => vec![schema::queue_key(one.as_str())],
            QueueList::AwaitingDecision(None) => SUGGESTIONS.iter().map(|s| schema::queue_key(s.as_str())).collect(),
            QueueList::Flagged(flag) => vec![schema::flag_key(flag.as_str())],
        }
    }

    /// What a cursor is bound to.
    fn tag(&self) -> &'static str {
        match self {
            QueueList::AwaitingDecision(Some(one)) => one.as_str(),
            QueueList::AwaitingDecision(None) => "*",
            QueueList::Flagged(flag) => flag.as_str(),
        }
    }
}

/// An entry of one of the lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The case; `None` for an unknown creation (no id yet).
    pub case_system_id: Option<CaseSystemId>,
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Cabital's suggestion, in the work queue.
    pub suggestion: Option<Suggestion>,
    /// Why it is flagged, in a flagged list.
    pub flag: Option<Flag>,
    /// Since when: the suggestion came, the outcome became unknown, the case was given up.
    pub since: OffsetDateTime,
}

/// One page of the work queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuePage {
    /// Oldest first.
    pub entries: Vec<QueueEntry>,
    /// Pass it back for the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

impl Store {
    /// Cases with a suggestion (`only` that one, if given) and no decision, oldest
    /// suggestion first, `limit` at most (clamped to 1..=[`MAX_QUEUE_PAGE`]). Pass
    /// `next_cursor` back for the next page, with the same `only`; another cursor is
    /// [`StoreError::InvalidCursor`].
    pub async fn awaiting_decision(
        &self,
        only: Option<Suggestion>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<QueuePage, StoreError> {
        self.queue_list(QueueList::AwaitingDecision(only), limit, cursor).await
    }

    /// One page of `list`, oldest first; see [`Store::awaiting_decision`].
    #[tracing::instrument(skip_all, fields(limit, entries), err)]
    pub async fn queue_list(&self, list: QueueList, limit: u32, cursor: Option<&str>) -> Result<QueuePage, StoreError> {
        let limit = limit.clamp(1, MAX_QUEUE_PAGE) as usize;
        let after = cursor.map(|c| decode_cursor(list.tag(), c)).transpose()?;
        // Each partition's next `limit + 1` after the cursor, merged by sort key (unique:
        // it ends with the item's id): the page is the first `limit` of them.
        let mut found: Vec<(String, QueueEntry)> = Vec::new();
        for partition in list.partitions() {
            found.extend(self.queue_partition(&partition, after.as_deref(), limit + 1).await?);
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let more = found.len() > limit;
        found.truncate(limit);
        tracing::Span::current().record("entries", found.len());
        let next_cursor = match (more, found.last()) {
            (true, Some((sort_key, _))) => Some(encode_cursor(list.tag(), sort_key)),
            _ => None,
        };
        Ok(QueuePage { entries: found.into_iter().map(|(_, e)| e).collect(), next_cursor })
    }

    async fn queue_partition(
        &self,
        partition: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, QueueEntry)>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> = None;
        loop {
            let mut expr = Expr::new();
            let mut condition = format!("{} = {}", expr.name(QUEUE_KEY), expr.value(s(partition)));
            if let Some(after) = after {
                condition.push_str(&format!(" AND {} > {}", expr.name(QUEUE_AT), expr.value(s(after))));
            }
            let page = self
                .client()
                .query()
                .table_name(self.table_name())
                .index_name(QUEUE_INDEX)
                .key_condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .limit(i32::try_from(limit - out.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(from_sdk)?;
            for item in page.items() {
                out.push(entry(item)?);
            }
            match page.last_evaluated_key {
                Some(key) if out.len() < limit => start = Some(key),
                _ => return Ok(out),
            }
        }
    }
}

fn entry(item: &Item) -> Result<(String, QueueEntry), StoreError> {
    let r = Reader::new(item);
    let sort_key = r.str(QUEUE_AT)?.to_owned();
    let (at, _) = sort_key.split_once('#').ok_or_else(|| StoreError::corrupt("queueAt is not <time>#<id>"))?;
    let key = r.str(QUEUE_KEY)?;
    let suggestion = key.strip_prefix(schema::QUEUE_KEY_PREFIX).and_then(|s| s.parse().ok());
    let flag = key.strip_prefix(schema::FLAG_KEY_PREFIX).and_then(Flag::parse);
    if suggestion.is_none() && flag.is_none() {
        return Err(StoreError::corrupt("queueKey is neither QUEUE#<suggestion> nor FLAG#<flag>"));
    }
    Ok((
        sort_key.clone(),
        QueueEntry {
            // A case item's key names it; a reservation's (an unknown creation) has no id.
            case_system_id: r.str(PK)?.strip_prefix(schema::CASE_PK_PREFIX).and_then(parse_case_id),
            external_case_id: r.parsed(attr::EXTERNAL_CASE_ID, parse_ext_id)?,
            suggestion,
            flag,
            since: parse_time(at).ok_or_else(|| StoreError::corrupt("queueAt: not a time"))?,
        },
    ))
}

/// Opaque to callers: base64url of `Q|<list tag>|<last sort key>`, bound to its list.
fn encode_cursor(tag: &str, sort_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("Q|{tag}|{sort_key}"))
}

fn decode_cursor(tag: &str, cursor: &str) -> Result<String, StoreError> {
    if cursor.len() > 512 {
        return Err(StoreError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let mut parts = text.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("Q"), Some(bound), Some(sort_key)) if bound == tag && sort_key.split_once('#').is_some() => {
            Ok(sort_key.to_owned())
        }
        _ => Err(StoreError::InvalidCursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_list() {
        let key = "2026-12-03T10:00:00.000000Z#6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c";
        let all = QueueList::AwaitingDecision(None).tag();
        let accept = QueueList::AwaitingDecision(Some(Suggestion::SuggestToAccept)).tag();
        let unknown = QueueList::Flagged(Flag::UnknownCreation).tag();
        let cursor = encode_cursor(all, key);
        assert_eq!(decode_cursor(all, &cursor).unwrap(), key);
        assert!(matches!(decode_cursor(accept, &cursor), Err(StoreError::InvalidCursor)));
        assert!(matches!(decode_cursor(unknown, &cursor), Err(StoreError::InvalidCursor)));
        assert_eq!(decode_cursor(accept, &encode_cursor(accept, key)).unwrap(), key);
        for bad in ["", "!!!", "bm90IGEgY3Vyc29y", &"A".repeat(600)] {
            assert!(matches!(decode_cursor(all, bad), Err(StoreError::InvalidCursor)), "{bad}");
        }
        for flag in [Flag::UnknownCreation, Flag::NoSuggestion] {
            assert_eq!(Flag::parse(flag.as_str()), Some(flag));
        }
    }
}
