//! The compliance officer's work queue: cases with a suggestion and no decision, oldest
//! suggestion first, from the sparse `queue` index (keys and `externalCaseId` only).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gateway_cabital::{CaseSystemId, ExternalCaseId, Suggestion};
use time::OffsetDateTime;

use crate::codec::{Expr, Item, Reader, parse_case_id, parse_ext_id, s};
use crate::error::{StoreError, from_sdk};
use crate::schema::{self, QUEUE_AT, QUEUE_INDEX, QUEUE_KEY, attr, parse_time};
use crate::store::Store;

/// The most cases one page of the work queue returns.
pub const MAX_QUEUE_PAGE: u32 = 100;

/// Every suggestion, in the order their partitions are read.
const SUGGESTIONS: [Suggestion; 3] =
    [Suggestion::SuggestToAccept, Suggestion::SuggestToReject, Suggestion::NoSuggestion];

/// A case awaiting the partner's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueEntry {
    /// The case.
    pub case_system_id: CaseSystemId,
    /// The partner's id.
    pub external_case_id: ExternalCaseId,
    /// Cabital's suggestion.
    pub suggestion: Suggestion,
    /// Since when it awaits a decision (when the suggestion came).
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
    #[tracing::instrument(skip_all, fields(limit, entries), err)]
    pub async fn awaiting_decision(
        &self,
        only: Option<Suggestion>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<QueuePage, StoreError> {
        let limit = limit.clamp(1, MAX_QUEUE_PAGE) as usize;
        let after = cursor.map(|c| decode_cursor(only, c)).transpose()?;
        let partitions: Vec<Suggestion> = match only {
            Some(one) => vec![one],
            None => SUGGESTIONS.to_vec(),
        };
        // Each partition's next `limit + 1` after the cursor, merged by sort key (unique:
        // it ends with the case's id): the page is the first `limit` of them.
        let mut found: Vec<(String, QueueEntry)> = Vec::new();
        for suggestion in partitions {
            found.extend(self.queue_partition(suggestion, after.as_deref(), limit + 1).await?);
        }
        found.sort_by(|a, b| a.0.cmp(&b.0));
        let more = found.len() > limit;
        found.truncate(limit);
        tracing::Span::current().record("entries", found.len());
        let next_cursor = match (more, found.last()) {
            (true, Some((sort_key, _))) => Some(encode_cursor(only, sort_key)),
            _ => None,
        };
        Ok(QueuePage { entries: found.into_iter().map(|(_, e)| e).collect(), next_cursor })
    }

    async fn queue_partition(
        &self,
        suggestion: Suggestion,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, QueueEntry)>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> = None;
        loop {
            let mut expr = Expr::new();
            let mut condition =
                format!("{} = {}", expr.name(QUEUE_KEY), expr.value(s(schema::queue_key(suggestion.as_str()))));
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
                out.push(entry(item, suggestion)?);
            }
            match page.last_evaluated_key {
                Some(key) if out.len() < limit => start = Some(key),
                _ => return Ok(out),
            }
        }
    }
}

fn entry(item: &Item, suggestion: Suggestion) -> Result<(String, QueueEntry), StoreError> {
    let r = Reader::new(item);
    let sort_key = r.str(QUEUE_AT)?.to_owned();
    let (at, id) = sort_key.split_once('#').ok_or_else(|| StoreError::corrupt("queueAt is not <time>#<id>"))?;
    Ok((
        sort_key.clone(),
        QueueEntry {
            case_system_id: parse_case_id(id).ok_or_else(|| StoreError::corrupt("queueAt: not a case id"))?,
            external_case_id: r.parsed(attr::EXTERNAL_CASE_ID, parse_ext_id)?,
            suggestion,
            since: parse_time(at).ok_or_else(|| StoreError::corrupt("queueAt: not a time"))?,
        },
    ))
}

/// Opaque to callers: base64url of `Q|<suggestion or *>|<last sort key>`, bound to its
/// filter.
fn encode_cursor(only: Option<Suggestion>, sort_key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("Q|{}|{sort_key}", only.map_or("*", |s| s.as_str())))
}

fn decode_cursor(only: Option<Suggestion>, cursor: &str) -> Result<String, StoreError> {
    if cursor.len() > 512 {
        return Err(StoreError::InvalidCursor);
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
    let mut parts = text.splitn(3, '|');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("Q"), Some(filter), Some(sort_key))
            if filter == only.map_or("*", |s| s.as_str()) && sort_key.split_once('#').is_some() =>
        {
            Ok(sort_key.to_owned())
        }
        _ => Err(StoreError::InvalidCursor),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_filter() {
        let key = "2026-12-03T10:00:00.000000Z#6d92e7b4-715c-4ce3-a028-19f1c8c9fa6c";
        let all = encode_cursor(None, key);
        assert_eq!(decode_cursor(None, &all).unwrap(), key);
        assert!(matches!(decode_cursor(Some(Suggestion::SuggestToAccept), &all), Err(StoreError::InvalidCursor)));
        let accept = encode_cursor(Some(Suggestion::SuggestToAccept), key);
        assert_eq!(decode_cursor(Some(Suggestion::SuggestToAccept), &accept).unwrap(), key);
        for bad in ["", "!!!", "bm90IGEgY3Vyc29y", &"A".repeat(600)] {
            assert!(matches!(decode_cursor(None, bad), Err(StoreError::InvalidCursor)), "{bad}");
        }
    }
}
