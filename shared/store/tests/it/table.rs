//! The table as created from its one definition, and errors that come back typed.

use crate::common;

use aws_sdk_dynamodb::types::AttributeValue;
use common::*;
use gateway_store::{Store, StoreError, table_definition};
use gateway_support::{dynamodb, fresh_table};

#[tokio::test]
async fn the_created_table_matches_the_definition() {
    let (client, name) = fresh_table().await;
    let table = client.describe_table().table_name(&name).send().await.unwrap().table.unwrap();
    let def = table_definition();

    let keys: Vec<_> =
        table.key_schema().iter().map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned())).collect();
    let expected: Vec<_> =
        def.key_schema.iter().map(|k| (k.attribute_name.to_owned(), k.key_type.as_str().to_owned())).collect();
    assert_eq!(keys, expected);

    let mut indexes: Vec<_> = table
        .global_secondary_indexes()
        .iter()
        .map(|i| {
            let keys: Vec<_> = i
                .key_schema()
                .iter()
                .map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned()))
                .collect();
            let projection = i.projection().and_then(|p| p.projection_type()).map(|p| p.as_str().to_owned());
            (i.index_name().unwrap_or_default().to_owned(), keys, projection)
        })
        .collect();
    indexes.sort();
    let expected: Vec<_> = def
        .global_secondary_indexes
        .iter()
        .map(|i| {
            let keys: Vec<_> =
                i.key_schema.iter().map(|k| (k.attribute_name.to_owned(), k.key_type.as_str().to_owned())).collect();
            (i.index_name.to_owned(), keys, Some(i.projection_type.to_owned()))
        })
        .collect();
    assert_eq!(indexes, expected);
    assert_eq!(table.billing_mode_summary().and_then(|b| b.billing_mode()).map(|b| b.as_str()), Some(def.billing_mode));

    let ttl = client.describe_time_to_live().table_name(&name).send().await.unwrap().time_to_live_description.unwrap();
    assert_eq!(ttl.attribute_name(), Some(def.time_to_live_attribute));
    assert_eq!(ttl.time_to_live_status().map(|s| s.as_str()), Some("ENABLED"));
}

#[tokio::test]
async fn a_missing_table_is_a_typed_non_retryable_error() {
    let store = Store::new(dynamodb().await, format!("no-such-table-{}", uuid::Uuid::new_v4().simple()));
    let err = store.get_case(&new_case_id()).await.unwrap_err();
    match &err {
        StoreError::Service { code, retryable, .. } => {
            assert_eq!(code, "ResourceNotFoundException");
            assert!(!retryable);
        }
        other => panic!("expected a service error, got {other:?}"),
    }
    assert!(!err.retryable());
}

#[tokio::test]
async fn an_item_that_cannot_be_read_back_is_corrupt_not_a_panic() {
    let (client, name) = fresh_table().await;
    let store = Store::new(client.clone(), name.clone());
    let id = new_case_id();
    client
        .put_item()
        .table_name(&name)
        .item("pk", AttributeValue::S(format!("CASE#{id}")))
        .item("sk", AttributeValue::S("CASE".into()))
        .item("caseSystemId", AttributeValue::S(id.to_string()))
        .item("version", AttributeValue::S("one".into()))
        .send()
        .await
        .unwrap();
    let err = store.get_case(&id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(!err.retryable());
}

#[tokio::test]
async fn warming_up_reads_a_key_no_record_uses_and_writes_nothing() {
    let (client, name) = fresh_table().await;
    let store = Store::new(client.clone(), name.clone());
    store.warm_up().await.expect("a warm-up against an existing table succeeds");
    let items = client.scan().table_name(&name).send().await.unwrap();
    assert_eq!(items.count(), 0, "a warm-up must not write");
}

#[tokio::test]
async fn a_warm_up_against_a_missing_table_reports_the_error() {
    let store = Store::new(dynamodb().await, format!("no-such-table-{}", uuid::Uuid::new_v4().simple()));
    let err = store.warm_up().await.unwrap_err();
    assert!(matches!(&err, StoreError::Service { code, .. } if code == "ResourceNotFoundException"), "{err:?}");
}
