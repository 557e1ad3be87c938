//! The reconciler's queries over the sparse, sharded indexes. Never a Scan: each shard
//! is one Query, oldest entries first.

use aws_sdk_dynamodb::types::Select;
use futures::{StreamExt, TryStreamExt};
use time::OffsetDateTime;

use crate::codec::{Expr, Item, Reader, parse_attention, parse_case_id, parse_ext_id, s};
use crate::error::{StoreError, from_sdk};
use crate::model::{AttentionPriority, AttentionRef, AttentionTarget};
use crate::schema::{
    self, ATTENTION_INDEX, ATTN_AT, ATTN_SHARD, OGS_CHECKED_AT, OGS_INDEX, OGS_SHARD, PK, SHARDS, format_time,
};
use crate::store::Store;

/// The most entries one query call returns.
pub const MAX_INDEX_PAGE: usize = 1000;

/// The most entries one count of an index's due entries counts ([`Store::count_urgent`]
/// and its siblings): past it, the count means "at least this many". One page per
/// shard, so a count fits in the little time a run keeps for it.
pub const MAX_DUE_COUNT: usize = MAX_INDEX_PAGE;

/// Shard queries of one index in flight at once. Each query's time limit runs from its
/// start: when the table answers slowly (throttled, or an emulator serving one request
/// at a time), all of an index's shards sent at once would each wait for the others
/// within that limit; a few at a time keep each wait short, for one extra round trip
/// when the table is healthy.
pub const SHARD_QUERY_CONCURRENCY: usize = 4;

/// One index query: its partition attribute and shard key, and its sort-key range.
struct IndexQuery {
    index: &'static str,
    shard_attr: &'static str,
    shard_key: fn(u8) -> String,
    range_attr: &'static str,
    /// Inclusive bounds on the sort key.
    from: Option<String>,
    to: String,
}

impl IndexQuery {
    /// Entries of the attention index at `priority` since before `before`.
    fn attention(priority: AttentionPriority, before: OffsetDateTime) -> Self {
        let prefix = priority.prefix();
        IndexQuery {
            index: ATTENTION_INDEX,
            shard_attr: ATTN_SHARD,
            shard_key: schema::attn_shard,
            range_attr: ATTN_AT,
            from: Some(prefix.to_owned()),
            to: format!("{prefix}{}", format_time(before)),
        }
    }

    /// Entries of the ogs index last checked before `cutoff`.
    fn ogs(cutoff: OffsetDateTime) -> Self {
        IndexQuery {
            index: OGS_INDEX,
            shard_attr: OGS_SHARD,
            shard_key: schema::ogs_shard,
            range_attr: OGS_CHECKED_AT,
            from: None,
            to: format_time(cutoff),
        }
    }
}

impl IndexQuery {
    /// The key condition of one shard's query.
    fn key_condition(&self, shard: u8) -> (Expr, String) {
        let mut expr = Expr::new();
        let shard_cond = format!("{} = {}", expr.name(self.shard_attr), expr.value(s((self.shard_key)(shard))));
        let range = expr.name(self.range_attr);
        let range_cond = match &self.from {
            Some(from) => {
                format!("{range} BETWEEN {} AND {}", expr.value(s(from.as_str())), expr.value(s(self.to.as_str())))
            }
            None => format!("{range} < {}", expr.value(s(self.to.as_str()))),
        };
        (expr, format!("{shard_cond} AND {range_cond}"))
    }
}

impl Store {
    /// Items that need a look urgently since before `before`, oldest first, `limit` at
    /// most: cases flagged for refresh by a webhook, and reservations whose create is
    /// unknown or still pending (pick `before` older than an invocation can live, so a
    /// create in flight is left alone).
    #[tracing::instrument(skip_all, fields(limit, found), err)]
    pub async fn urgent_attention(
        &self,
        before: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AttentionRef>, StoreError> {
        self.query_shards(IndexQuery::attention(AttentionPriority::Urgent, before), limit).await
    }

    /// Cases still awaiting a suggestion whose last check was before `cutoff`, oldest
    /// first, `limit` at most.
    #[tracing::instrument(skip_all, fields(limit, found), err)]
    pub async fn awaiting_since_before(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AttentionRef>, StoreError> {
        self.query_shards(IndexQuery::attention(AttentionPriority::Awaiting, cutoff), limit).await
    }

    /// Cases under ongoing screening last checked before `cutoff`, oldest first,
    /// `limit` at most.
    #[tracing::instrument(skip_all, fields(limit, found), err)]
    pub async fn ogs_checked_before(
        &self,
        cutoff: OffsetDateTime,
        limit: usize,
    ) -> Result<Vec<AttentionRef>, StoreError> {
        self.query_shards(IndexQuery::ogs(cutoff), limit).await
    }

    /// How many entries [`Store::urgent_attention`] would find, up to [`MAX_DUE_COUNT`].
    pub async fn count_urgent(&self, before: OffsetDateTime) -> Result<usize, StoreError> {
        self.count_shards(IndexQuery::attention(AttentionPriority::Urgent, before)).await
    }

    /// How many entries [`Store::awaiting_since_before`] would find, up to [`MAX_DUE_COUNT`].
    pub async fn count_awaiting(&self, cutoff: OffsetDateTime) -> Result<usize, StoreError> {
        self.count_shards(IndexQuery::attention(AttentionPriority::Awaiting, cutoff)).await
    }

    /// How many entries [`Store::ogs_checked_before`] would find, up to [`MAX_DUE_COUNT`].
    pub async fn count_ogs(&self, cutoff: OffsetDateTime) -> Result<usize, StoreError> {
        self.count_shards(IndexQuery::ogs(cutoff)).await
    }

    /// Counts the entries of every shard (reading keys only, never the items), each
    /// shard up to [`MAX_DUE_COUNT`], the total capped at it.
    #[tracing::instrument(skip_all, fields(index = query.index, counted), err)]
    async fn count_shards(&self, query: IndexQuery) -> Result<usize, StoreError> {
        let query = &query;
        let counts: Vec<usize> = futures::stream::iter((0..SHARDS).map(|shard| self.count_shard(query, shard)))
            .buffer_unordered(SHARD_QUERY_CONCURRENCY)
            .try_collect()
            .await?;
        let counted = counts.into_iter().sum::<usize>().min(MAX_DUE_COUNT);
        tracing::Span::current().record("counted", counted);
        Ok(counted)
    }

    async fn count_shard(&self, query: &IndexQuery, shard: u8) -> Result<usize, StoreError> {
        let (expr, condition) = query.key_condition(shard);
        let mut counted = 0usize;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client()
                .query()
                .table_name(self.table_name())
                .index_name(query.index)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .select(Select::Count)
                .limit(i32::try_from(MAX_DUE_COUNT - counted).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(from_sdk)?;
            counted += usize::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(key) if counted < MAX_DUE_COUNT => start = Some(key),
                _ => return Ok(counted),
            }
        }
    }

    /// Queries every shard ([`SHARD_QUERY_CONCURRENCY`] at a time), each for up to `limit` of its oldest entries,
    /// and keeps the `limit` oldest overall.
    async fn query_shards(&self, query: IndexQuery, limit: usize) -> Result<Vec<AttentionRef>, StoreError> {
        let limit = limit.min(MAX_INDEX_PAGE);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let shards = (0..SHARDS).map(|shard| self.query_shard(&query, shard, limit));
        let mut found: Vec<AttentionRef> = futures::stream::iter(shards)
            .buffer_unordered(SHARD_QUERY_CONCURRENCY)
            .try_collect::<Vec<_>>()
            .await?
            .into_iter()
            .flatten()
            .collect();
        found.sort_by_key(|r| r.since);
        found.truncate(limit);
        tracing::Span::current().record("limit", limit).record("found", found.len());
        Ok(found)
    }

    async fn query_shard(&self, query: &IndexQuery, shard: u8, limit: usize) -> Result<Vec<AttentionRef>, StoreError> {
        let (expr, condition) = query.key_condition(shard);

        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let want = limit - found.len();
            let out = self
                .client()
                .query()
                .table_name(self.table_name())
                .index_name(query.index)
                .key_condition_expression(&condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .scan_index_forward(true)
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(from_sdk)?;
            for item in out.items.unwrap_or_default() {
                found.push(index_ref(&item, query.range_attr)?);
            }
            match out.last_evaluated_key {
                Some(key) if found.len() < limit => start = Some(key),
                _ => return Ok(found),
            }
        }
    }
}

/// What an index entry points at, and its time.
fn index_ref(item: &Item, range_attr: &str) -> Result<AttentionRef, StoreError> {
    let r = Reader::new(item);
    let pk = r.str(PK)?;
    let target = if let Some(id) = pk.strip_prefix(schema::CASE_PK_PREFIX) {
        AttentionTarget::Case(parse_case_id(id).ok_or_else(|| StoreError::corrupt("index entry: bad case id"))?)
    } else if let Some(ext) = pk.strip_prefix(schema::EXT_PK_PREFIX) {
        AttentionTarget::External(parse_ext_id(ext).ok_or_else(|| StoreError::corrupt("index entry: bad external id"))?)
    } else {
        return Err(StoreError::corrupt("index entry: unexpected partition key"));
    };
    let since = if range_attr == ATTN_AT {
        parse_attention(r.str(ATTN_AT)?).map(|a| a.since)
    } else {
        crate::schema::parse_time(r.str(range_attr)?)
    }
    .ok_or_else(|| StoreError::corrupt(format!("index entry: {range_attr} is not a stored time")))?;
    Ok(AttentionRef { target, since })
}
