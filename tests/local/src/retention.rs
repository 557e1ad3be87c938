//! Retention, read straight from the table (moto): every item of a case carries the
//! TTL attribute (`expiresAt`, Unix seconds), none earlier than the case's bound; the
//! bound covers the case's last write plus `RETENTION_DAYS` and exceeds it by no more
//! than the slack; the API shows it as `retainedUntil`. The walk checks its cases, the
//! chaos run every case of the run.

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_cabital::CaseSystemId;
use gateway_store::{Retention, Store};
use time::OffsetDateTime;

use crate::{Failure, Result, ensure};

/// What one case's check found.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    /// The case's bound.
    pub bound: OffsetDateTime,
    /// Its items (partition and reservation) that carry it or later.
    pub items: usize,
}

/// Checks one case's items against its bound (see the module).
pub async fn check(store: &Store, id: &CaseSystemId, retention: Retention) -> Result<Held> {
    let fail = |what: String| Failure(format!("case {id}: {what}"));
    let case = store.get_case(id).await.map_err(|e| fail(e.to_string()))?.ok_or_else(|| fail("not stored".into()))?;
    let bound = case.expires_at.ok_or_else(|| fail("no retention bound (expiresAt) on the case".into()))?;
    let least = case.updated_at + retention.period();
    let most = case.updated_at + retention.period() + retention.slack() + time::Duration::SECOND;
    ensure(least <= bound && bound <= most, || {
        format!("case {id}: kept until {bound}, not within [{least}, {most}] (last write {})", case.updated_at)
    })?;

    let mut items = Vec::new();
    let mut start = None;
    loop {
        let page = store
            .client()
            .query()
            .table_name(store.table_name())
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(format!("CASE#{id}")))
            .projection_expression("sk, expiresAt")
            .consistent_read(true)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| fail(format!("query: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e))))?;
        items.extend(page.items().iter().cloned());
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    let reservation = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key("pk", AttributeValue::S(format!("EXT#{}", case.external_case_id)))
        .key("sk", AttributeValue::S("EXT".into()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| fail(format!("get: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e))))?;
    // The reservation carries its case's bound once it names the case.
    if let Some(ext) = reservation.item
        && ext.get("caseSystemId").and_then(|v| v.as_s().ok()) == Some(&id.to_string())
    {
        items.push(ext);
    }

    let mut held = 0;
    for item in &items {
        let sk = item.get("sk").and_then(|v| v.as_s().ok()).map_or("", String::as_str);
        let ttl = item
            .get("expiresAt")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<i64>().ok())
            .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
            .ok_or_else(|| fail(format!("{sk} carries no expiresAt")))?;
        // The guards (a signature pair's, a refetch claim's) keep their own, shorter TTL.
        if sk == "CASE" || sk == "REFETCH" || sk.starts_with("SEEN#") {
            continue;
        }
        ensure(ttl >= bound, || format!("case {id}: {sk} expires at {ttl}, before its case ({bound})"))?;
        held += 1;
    }
    Ok(Held { bound, items: held })
}
