//! Seeding many awaiting cases fast (shared by the tests and the benchmark).
//!
//! The first case goes through the store (`record_created`); the others are copies of
//! its item under their own ids, written in batches. On moto every transaction copies
//! the whole table, so one `record_created` per case would take hours for thousands of
//! cases. The reconciler reads only case items and the indexes, so the copies (no
//! reservation, no CREATED event) are all it needs.

#![allow(dead_code)]

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use gateway_cabital::{Case, NewCase, Pii};
use gateway_service::request_hash;
use gateway_store::{ATTN_SHARD, CreatedCase, PK, Reservation, SK, Store, shard_of};
use time::OffsetDateTime;

/// Records `cases` (created at Cabital from `first`'s body and others like it) as
/// created and awaiting a suggestion, as if every answer and webhook had been lost.
///
/// # Panics
/// When the table refuses a write.
pub async fn seed_awaiting(store: &Store, first: &NewCase, cases: &[Case]) {
    seed_with(store, first, cases, |_, _| {}).await;
}

/// Records `cases` as [`seed_awaiting`] does, each item changed by `tweak` (with its
/// id) before it is written.
///
/// # Panics
/// When the table refuses a write.
pub async fn seed_with(
    store: &Store,
    first: &NewCase,
    cases: &[Case],
    tweak: impl Fn(&str, &mut HashMap<String, AttributeValue>),
) {
    let Some(head) = cases.first() else { return };
    let submitted = serde_json::to_string(first).expect("a case serialises");
    let now = OffsetDateTime::now_utc();
    let hash = request_hash(submitted.as_bytes());
    let Reservation::Reserved { token } =
        store.reserve_external_id(&first.external_case_id, &hash, &Pii(submitted.clone()), now).await.expect("reserve")
    else {
        panic!("a fresh id is reserved")
    };
    let created = CreatedCase {
        case_system_id: head.case_system_id,
        external_case_id: first.external_case_id.clone(),
        screen_type: first.screen_type,
        submitted_json: Pii(submitted),
        response_json: Pii("{}".to_owned()),
        suggestion: None,
        suggestion_comment: None,
        ogs: false,
    };
    store.record_created(&first.external_case_id, token, &created, now).await.expect("record the first case");
    let template = store
        .client()
        .get_item()
        .table_name(store.table_name())
        .key(PK, AttributeValue::S(format!("CASE#{}", head.case_system_id)))
        .key(SK, AttributeValue::S("CASE".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("read the first case")
        .item
        .expect("the first case is stored");

    let copies: Vec<HashMap<String, AttributeValue>> = cases
        .iter()
        .map(|case| {
            let id = case.case_system_id.to_string();
            let mut item = template.clone();
            item.insert(PK.into(), AttributeValue::S(format!("CASE#{id}")));
            item.insert("caseSystemId".into(), AttributeValue::S(id.clone()));
            item.insert("externalCaseId".into(), AttributeValue::S(case.external_case_id.as_str().to_owned()));
            item.insert(ATTN_SHARD.into(), AttributeValue::S(format!("ATTN#{}", shard_of(&id))));
            tweak(&id, &mut item);
            item
        })
        .collect();
    for chunk in copies.chunks(25) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item.clone())).build().expect("an item");
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        while !requests.is_empty() {
            let out = store
                .client()
                .batch_write_item()
                .request_items(store.table_name(), requests)
                .send()
                .await
                .expect("batch write");
            requests = out.unprocessed_items.and_then(|mut u| u.remove(store.table_name())).unwrap_or_default();
        }
    }
}
