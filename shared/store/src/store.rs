//! The [`Store`] and its plumbing: keys, reads, conditional writes, transactions.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use gateway_cabital::{CaseSystemId, ExternalCaseId};
use time::OffsetDateTime;

use crate::codec::{self, Expr, Item, n, s};
use crate::error::{StoreError, TxError, from_sdk, from_transact};
use crate::model::{CaseRecord, ChainLink, EventDetail, EventSource, ExtRecord};
use crate::retention::Retention;
use crate::schema::{self, PK, SK, attr};

/// The KYC table: cases, their events, external-id reservations, webhook de-duplication.
///
/// Cheap to clone; build one per cold start and share it.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
    retention: Retention,
}

impl Store {
    /// A store over `table_name`, with a client from [`crate::dynamodb_client`], keeping
    /// cases the default [`Retention`].
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Store { client, table: table_name.into(), retention: Retention::default() }
    }

    /// The same store, keeping cases `retention` after their last write.
    pub fn with_retention(self, retention: Retention) -> Self {
        Store { retention, ..self }
    }

    /// How long cases are kept after their last write.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// The DynamoDB client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    // ------------------------------------------------------------ plumbing

    pub(crate) fn key(pk: String, sk: &str) -> Item {
        Item::from([(PK.to_owned(), s(pk)), (SK.to_owned(), s(sk))])
    }

    /// The key of a case item.
    pub(crate) fn case_key(id: &CaseSystemId) -> Item {
        Self::key(schema::case_pk(id), schema::CASE_SK)
    }

    /// The key of an external id's reservation item.
    pub(crate) fn ext_key(ext: &ExternalCaseId) -> Item {
        Self::key(schema::ext_pk(ext), schema::EXT_SK)
    }

    /// A strongly consistent read: every decision here is taken on the latest write.
    pub(crate) async fn get_item(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(from_sdk)?;
        Ok(out.item)
    }

    /// Opens the connection to DynamoDB ahead of the first request (endpoint, TCP,
    /// TLS, the signing identity): one eventually consistent read of a key no record
    /// uses. Reads nothing of anyone's.
    pub async fn warm_up(&self) -> Result<(), StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key("WARM-UP".into(), "WARM-UP")))
            .send()
            .await
            .map_err(from_sdk)?;
        drop(out);
        Ok(())
    }

    pub(crate) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), TxError> {
        // The SDK fills in a ClientRequestToken, so its own retries of one call are
        // idempotent on DynamoDB's side.
        self.client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
            .map(|_| ())
            .map_err(from_transact)
    }

    /// A Put for a transaction, with a condition built on `expr`'s placeholders.
    pub(crate) fn tx_put(&self, item: Item, condition: &str, expr: &Expr) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(StoreError::build)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A Put that only creates: fails if the item exists.
    pub(crate) fn tx_put_new(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let mut expr = Expr::new();
        let condition = format!("attribute_not_exists({})", expr.name(PK));
        self.tx_put(item, &condition, &expr)
    }

    /// An Update for a transaction.
    pub(crate) fn tx_update(&self, key: Item, expr: &Expr, condition: &str) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expr.update_expression())
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .build()
            .map_err(StoreError::build)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// A single conditional UpdateItem; returns the item as it is after the update.
    pub(crate) async fn update_item(&self, key: Item, expr: &Expr, condition: &str) -> Result<Item, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expr.update_expression())
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(from_sdk)?;
        out.attributes.ok_or_else(|| StoreError::corrupt("UpdateItem returned no attributes"))
    }

    /// The update that writes `new` over a case item whose version is still
    /// `expected_version`: every known attribute SET, every absent one REMOVEd, so
    /// attributes this code does not know survive.
    pub(crate) fn case_update_expr(new: &CaseRecord, expected_version: u64) -> (Expr, String) {
        let mut expr = Expr::new();
        for (attr, value) in codec::case_attributes(new) {
            expr.set_or_remove(attr, value);
        }
        let condition = format!("{} = {}", expr.name(attr::VERSION), expr.value(n(expected_version)));
        (expr, condition)
    }

    pub(crate) fn tx_case_update(
        &self,
        new: &CaseRecord,
        expected_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let (expr, condition) = Self::case_update_expr(new, expected_version);
        self.tx_update(Self::case_key(&new.case_system_id), &expr, &condition)
    }

    /// A new event for a transaction that leaves its case as `case` (at `case.version`):
    /// its sort key is unique, so the Put only creates. It is linked to the case's chain
    /// (`prevHash` the case's `chain_head`), and `case.chain_head` becomes its hash: build
    /// the case's write after this, in the same transaction, conditional on the version
    /// read, so that concurrent writers make one chain.
    pub(crate) fn tx_event(
        &self,
        case: &mut CaseRecord,
        at: OffsetDateTime,
        source: EventSource,
        detail: &EventDetail,
    ) -> Result<(String, TransactWriteItem), StoreError> {
        let sk = codec::event_sk(at, detail.kind());
        let prev_hash = case.chain_head.clone().unwrap_or_else(|| gateway_evidence::GENESIS.to_owned());
        let content = codec::event_content(&case.case_system_id, &sk, at, source, case.version, detail);
        let content_sha256 = gateway_evidence::content_sha256(&content);
        let hash = gateway_evidence::link(&prev_hash, &content_sha256);
        let link = ChainLink { case_version: case.version, prev_hash, content_sha256, hash: hash.clone() };
        case.chain_head = Some(hash);
        let item = codec::event_item(case, &sk, at, source, detail, &link);
        Ok((sk.clone(), self.tx_put_new(item)?))
    }

    // ------------------------------------------------------------ reads

    /// A consistent Query of the case's partition, its sort keys beginning with
    /// `sk_prefix` when given: the timeline's pages and erasure's sweep.
    pub(crate) fn case_partition_query(
        &self,
        id: &CaseSystemId,
        sk_prefix: Option<&str>,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let mut expr = Expr::new();
        let mut condition = format!("{} = {}", expr.name(PK), expr.value(s(schema::case_pk(id))));
        if let Some(prefix) = sk_prefix {
            condition.push_str(&format!(" AND begins_with({}, {})", expr.name(SK), expr.value(s(prefix))));
        }
        self.client
            .query()
            .table_name(self.table_name())
            .key_condition_expression(condition)
            .set_expression_attribute_names(expr.names())
            .set_expression_attribute_values(expr.values())
            .consistent_read(true)
    }

    /// The case, read consistently.
    #[tracing::instrument(skip_all, fields(case_system_id = %id), err)]
    pub async fn get_case(&self, id: &CaseSystemId) -> Result<Option<CaseRecord>, StoreError> {
        self.get_item(schema::case_pk(id), schema::CASE_SK).await?.map(|item| codec::case_from_item(&item)).transpose()
    }

    /// The reservation of an external id, read consistently.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext), err)]
    pub async fn get_external(&self, ext: &ExternalCaseId) -> Result<Option<ExtRecord>, StoreError> {
        self.get_item(schema::ext_pk(ext), schema::EXT_SK).await?.map(|item| codec::ext_from_item(&item)).transpose()
    }
}

/// Checks that a caller-computed hash is lowercase hex SHA-256.
pub(crate) fn check_sha256(hash: &str, what: &str) -> Result<(), StoreError> {
    let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok { Ok(()) } else { Err(StoreError::Invalid(format!("{what} must be lowercase hex SHA-256"))) }
}
