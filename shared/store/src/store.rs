//! The [`Store`]: its plumbing (reads, transactions) and external-id reservations.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{Put, ReturnValue, TransactWriteItem, Update};
use cabital_client::{CaseSystemId, ExternalCaseId, Pii, ScreenType};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{self, Expr, Item, n, s, t};
use crate::error::{StoreError, TxError, from_sdk, from_transact};
use crate::model::{
    Attention, AttentionPriority, CaseRecord, CaseStatus, EventDetail, EventKind, EventSource, ExtRecord, ExtState,
    Origin, Reservation, Resolution,
};
use crate::schema::{self, ATTN_AT, ATTN_SHARD, PK, SK};

/// How many times an operation re-reads and retries after losing a race (a version
/// conflict, a transaction cancelled by a concurrent writer) before giving up with a
/// retryable error. The SDK has already retried each call with backoff.
pub(crate) const RACE_ATTEMPTS: usize = 4;

/// The KYC table: cases, their events, external-id reservations, webhook de-duplication.
///
/// Cheap to clone; build one per cold start and share it.
#[derive(Debug, Clone)]
pub struct Store {
    client: Client,
    table: String,
}

impl Store {
    /// A store over `table_name`, with a client from [`crate::dynamodb_client`].
    pub fn new(client: Client, table_name: impl Into<String>) -> Self {
        Store { client, table: table_name.into() }
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
        let condition = format!("{} = {}", expr.name("version"), expr.value(n(expected_version)));
        (expr, condition)
    }

    pub(crate) fn tx_case_update(
        &self,
        new: &CaseRecord,
        expected_version: u64,
    ) -> Result<TransactWriteItem, StoreError> {
        let (expr, condition) = Self::case_update_expr(new, expected_version);
        self.tx_update(Self::key(schema::case_pk(&new.case_system_id), schema::CASE_SK), &expr, &condition)
    }

    /// A new event for a transaction: its sort key is unique, so the Put only creates.
    pub(crate) fn tx_event(
        &self,
        case_system_id: &CaseSystemId,
        at: OffsetDateTime,
        source: EventSource,
        detail: &EventDetail,
    ) -> Result<(String, TransactWriteItem), StoreError> {
        let sk = codec::event_sk(at, detail.kind());
        let item = codec::event_item(case_system_id, &sk, at, source, detail);
        Ok((sk.clone(), self.tx_put_new(item)?))
    }

    // ------------------------------------------------------------ reads

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

    // ------------------------------------------------------------ reservations

    /// Reserves `ext` for a create whose canonical request hashes to `request_hash`
    /// (lowercase hex SHA-256) and whose body is `submitted` (kept, so that what was
    /// sent is on record even if Cabital's answer never comes).
    ///
    /// One conditional write: it succeeds when the id is new or its last reservation was
    /// rejected by Cabital. Otherwise the existing reservation is returned; compare its
    /// hash with [`ExtRecord::same_request`]. Of concurrent reservations, exactly one
    /// wins.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext), err)]
    pub async fn reserve_external_id(
        &self,
        ext: &ExternalCaseId,
        request_hash: &str,
        submitted: &Pii<String>,
        now: OffsetDateTime,
    ) -> Result<Reservation, StoreError> {
        check_sha256(request_hash, "request_hash")?;
        for _ in 0..RACE_ATTEMPTS {
            let token = Uuid::new_v4();
            let record = ExtRecord {
                external_case_id: ext.clone(),
                request_hash: request_hash.to_owned(),
                state: ExtState::Pending,
                reservation_token: token,
                case_system_id: None,
                cabital_status: None,
                submitted: Some(submitted.clone()),
                linked_at: None,
                created_at: now,
                updated_at: now,
                // A create in flight is urgent once it is stuck: the reconciler looks
                // only at pending reservations older than an invocation can live.
                attention: Some(Attention { priority: AttentionPriority::Urgent, since: now }),
            };
            let mut expr = Expr::new();
            let condition = format!(
                "attribute_not_exists({}) OR {} = {}",
                expr.name(PK),
                expr.name("state"),
                expr.value(s(ExtState::Rejected.as_str()))
            );
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(codec::ext_item(&record)))
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .send()
                .await
                .map_err(from_sdk);
            match put {
                Ok(_) => {
                    tracing::info!("external id reserved");
                    return Ok(Reservation::Reserved { token });
                }
                Err(StoreError::ConditionFailed(_)) => match self.get_external(ext).await? {
                    // Rejected again in between: the id is free, try once more.
                    Some(existing) if existing.state == ExtState::Rejected => continue,
                    Some(existing) => return Ok(Reservation::Existing(existing)),
                    None => continue,
                },
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::TransactionConflict)
    }

    /// Cabital's answer never came: the reservation stays, `UNKNOWN` and urgent, until a
    /// webhook names the case ([`Store::resolve_unknown`]). Only the holder of `token`
    /// may do this; repeating it is harmless. If a webhook already named the case, the
    /// link is completed at once. Returns the reservation as it now is.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext), err)]
    pub async fn mark_unknown(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        self.holder_to_unknown(ext, token, None, now).await
    }

    /// Cabital answered the create (a 2xx without `caseSystemId`, or 409) without
    /// telling the case's id: as [`Store::mark_unknown`], with Cabital's status kept
    /// (`cabitalStatus`), so that a replay of the create answers as the first did.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext, cabital_status), err)]
    pub async fn mark_created_without_id(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        cabital_status: u16,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        self.holder_to_unknown(ext, token, Some(cabital_status), now).await
    }

    /// The holder of `token` marks its reservation `UNKNOWN` (again, harmlessly).
    async fn holder_to_unknown(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        cabital_status: Option<u16>,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        let mut expr = Self::unknown_expr(ext, now);
        if let Some(status) = cabital_status {
            expr.set("cabitalStatus", n(u64::from(status)));
        }
        let condition = format!(
            "{} = {} AND {} IN ({}, {})",
            expr.name("reservationToken"),
            expr.value(s(token.to_string())),
            expr.name("state"),
            expr.value(s(ExtState::Pending.as_str())),
            expr.value(s(ExtState::Unknown.as_str())),
        );
        self.to_unknown(ext, expr, &condition, now).await
    }

    /// For the reconciler: a reservation still `PENDING` although created before
    /// `created_before` belongs to an invocation that died mid-create; mark it `UNKNOWN`
    /// (as [`Store::mark_unknown`] would have). Pick `created_before` older than the
    /// longest invocation, so a create still in flight is never touched.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext), err)]
    pub async fn expire_pending(
        &self,
        ext: &ExternalCaseId,
        created_before: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        let mut expr = Self::unknown_expr(ext, now);
        let condition = format!(
            "{} = {} AND {} < {}",
            expr.name("state"),
            expr.value(s(ExtState::Pending.as_str())),
            expr.name("createdAt"),
            expr.value(t(created_before)),
        );
        self.to_unknown(ext, expr, &condition, now).await
    }

    fn unknown_expr(ext: &ExternalCaseId, now: OffsetDateTime) -> Expr {
        let mut expr = Expr::new();
        let urgent = Attention { priority: AttentionPriority::Urgent, since: now };
        expr.set("state", s(ExtState::Unknown.as_str()))
            .set("updatedAt", t(now))
            .set(ATTN_SHARD, s(schema::attn_shard(schema::shard_of(ext.as_str()))))
            .set(ATTN_AT, s(codec::attention_value(&urgent)));
        expr
    }

    async fn to_unknown(
        &self,
        ext: &ExternalCaseId,
        expr: Expr,
        condition: &str,
        now: OffsetDateTime,
    ) -> Result<ExtRecord, StoreError> {
        let key = Self::key(schema::ext_pk(ext), schema::EXT_SK);
        let record = match self.update_item(key, &expr, condition).await {
            Ok(item) => codec::ext_from_item(&item)?,
            Err(StoreError::ConditionFailed(_)) => return Err(self.ext_refusal(ext).await),
            Err(e) => return Err(e),
        };
        tracing::warn!("external id marked unknown");
        match record.case_system_id {
            // A webhook already named the case while the create was in flight: link
            // it now. Best-effort: the mark is done, and the reconciler finds the
            // reservation (urgent, case id known) if this fails.
            Some(id) => match self.resolve_unknown(ext, &id, EventSource::Webhook, now).await {
                Ok(_) => Ok(self.get_external(ext).await?.unwrap_or(record)),
                Err(e) => {
                    tracing::warn!(error = %e, "could not link the reservation");
                    Ok(record)
                }
            },
            None => Ok(record),
        }
    }

    /// Cabital refused the create (a 4xx): the reservation is closed as `REJECTED` with
    /// Cabital's status, and the id may be reserved again. Only the holder of `token`
    /// may do this; repeating it is harmless.
    #[tracing::instrument(skip_all, fields(external_case_id = %ext, cabital_status), err)]
    pub async fn mark_rejected(
        &self,
        ext: &ExternalCaseId,
        token: Uuid,
        cabital_status: u16,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let mut expr = Expr::new();
        expr.set("state", s(ExtState::Rejected.as_str()))
            .set("cabitalStatus", n(u64::from(cabital_status)))
            .set("updatedAt", t(now))
            .remove(ATTN_SHARD)
            .remove(ATTN_AT);
        let condition = format!(
            "{} = {} AND {} IN ({}, {})",
            expr.name("reservationToken"),
            expr.value(s(token.to_string())),
            expr.name("state"),
            expr.value(s(ExtState::Pending.as_str())),
            expr.value(s(ExtState::Rejected.as_str())),
        );
        match self.update_item(Self::key(schema::ext_pk(ext), schema::EXT_SK), &expr, &condition).await {
            Ok(_) => Ok(()),
            Err(StoreError::ConditionFailed(_)) => Err(self.ext_refusal(ext).await),
            Err(e) => Err(e),
        }
    }

    /// Why a conditional write on a reservation was refused, for the error.
    pub(crate) async fn ext_refusal(&self, ext: &ExternalCaseId) -> StoreError {
        match self.get_external(ext).await {
            Ok(None) => StoreError::NotFound(format!("external id {ext}")),
            Ok(Some(rec)) => StoreError::ConditionFailed(format!(
                "external id {ext} is {} (or reserved under another token)",
                rec.state
            )),
            Err(e) => e,
        }
    }

    /// A webhook (or a later look) names `case_system_id` as the case created for
    /// `ext`:
    /// - `UNKNOWN`: linked now, in one transaction: the reservation becomes `CREATED`,
    ///   the case gets a CREATED event (what was submitted, no answer) and is marked as
    ///   created through the API (or created, urgent, if not yet known).
    /// - `PENDING`: the create is still in flight; the id is noted on the reservation
    ///   and the creating call finishes the job ([`Resolution::Noted`]).
    /// - `CREATED` with this case: nothing to do. With another case, or `REJECTED`:
    ///   [`StoreError::ConditionFailed`].
    #[tracing::instrument(skip_all, fields(external_case_id = %ext, case_system_id = %case_system_id), err)]
    pub async fn resolve_unknown(
        &self,
        ext: &ExternalCaseId,
        case_system_id: &CaseSystemId,
        source: EventSource,
        now: OffsetDateTime,
    ) -> Result<Resolution, StoreError> {
        for _ in 0..RACE_ATTEMPTS {
            let rec =
                self.get_external(ext).await?.ok_or_else(|| StoreError::NotFound(format!("external id {ext}")))?;
            match rec.state {
                ExtState::Created if rec.case_system_id.as_ref() == Some(case_system_id) => {
                    return Ok(Resolution::AlreadyLinked);
                }
                ExtState::Created | ExtState::Rejected => {
                    return Err(StoreError::ConditionFailed(format!(
                        "external id {ext} is {} and cannot be linked to case {case_system_id}",
                        rec.state
                    )));
                }
                ExtState::Pending => {
                    let mut expr = Expr::new();
                    expr.set("caseSystemId", s(case_system_id.to_string()))
                        .set("linkedAt", t(now))
                        .set("updatedAt", t(now));
                    let condition = format!(
                        "{} = {} AND {} = {} AND (attribute_not_exists({}) OR {} = {})",
                        expr.name("reservationToken"),
                        expr.value(s(rec.reservation_token.to_string())),
                        expr.name("state"),
                        expr.value(s(ExtState::Pending.as_str())),
                        expr.name("caseSystemId"),
                        expr.name("caseSystemId"),
                        expr.value(s(case_system_id.to_string())),
                    );
                    let key = Self::key(schema::ext_pk(ext), schema::EXT_SK);
                    match self.update_item(key, &expr, &condition).await {
                        Ok(_) => return Ok(Resolution::Noted),
                        Err(StoreError::ConditionFailed(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
                ExtState::Unknown => match self.link_unknown(&rec, case_system_id, source, now).await {
                    Ok(()) => {
                        tracing::info!("unknown creation linked");
                        return Ok(Resolution::Linked);
                    }
                    Err(TxError::Cancelled(r))
                        if r.transient() || r.0.iter().any(|c| c == "ConditionalCheckFailed") =>
                    {
                        continue;
                    }
                    Err(e) => return Err(e.into_store()),
                },
            }
        }
        Err(StoreError::TransactionConflict)
    }

    async fn link_unknown(
        &self,
        rec: &ExtRecord,
        case_system_id: &CaseSystemId,
        source: EventSource,
        now: OffsetDateTime,
    ) -> Result<(), TxError> {
        let mut expr = Expr::new();
        expr.set("state", s(ExtState::Created.as_str()))
            .set("caseSystemId", s(case_system_id.to_string()))
            .set("linkedAt", t(now))
            .set("updatedAt", t(now))
            .remove(ATTN_SHARD)
            .remove(ATTN_AT);
        let condition = format!(
            "{} = {} AND {} = {}",
            expr.name("reservationToken"),
            expr.value(s(rec.reservation_token.to_string())),
            expr.name("state"),
            expr.value(s(ExtState::Unknown.as_str())),
        );
        let ext_update =
            self.tx_update(Self::key(schema::ext_pk(&rec.external_case_id), schema::EXT_SK), &expr, &condition)?;

        let screen_type = rec.submitted.as_ref().and_then(screen_type_of);
        let case_write = match self.get_case(case_system_id).await? {
            Some(current) => {
                let mut new = current.clone();
                new.origin = Origin::Api;
                new.screen_type = new.screen_type.or(screen_type);
                new.updated_at = now;
                new.version = current.version + 1;
                self.tx_case_update(&new, current.version)?
            }
            None => {
                // Known only from the reservation: Cabital's current state must be read.
                let new = CaseRecord {
                    case_system_id: *case_system_id,
                    external_case_id: rec.external_case_id.clone(),
                    screen_type,
                    origin: Origin::Api,
                    status: CaseStatus::AwaitingSuggestion,
                    suggestion: None,
                    suggestion_comment: None,
                    suggestion_at: None,
                    decision: None,
                    decision_comment: None,
                    decided_at: None,
                    ogs: false,
                    needs_refresh: true,
                    created_at: now,
                    updated_at: now,
                    last_checked_at: None,
                    version: 1,
                    attention: Some(Attention { priority: AttentionPriority::Urgent, since: now }),
                    ogs_checked_at: None,
                    no_suggestion_since: None,
                };
                self.tx_put_new(codec::case_item(&new))?
            }
        };
        let detail = EventDetail::Created { submitted: rec.submitted.clone(), response: None };
        let (_, event) = self.tx_event(case_system_id, now, source, &detail)?;
        debug_assert_eq!(detail.kind(), EventKind::Created);
        self.transact(vec![ext_update, case_write, event]).await
    }
}

/// The `screenType` of a submitted body, if it has a valid one.
fn screen_type_of(body: &Pii<String>) -> Option<ScreenType> {
    let value: serde_json::Value = serde_json::from_str(body.expose()).ok()?;
    value.get("screenType")?.as_str()?.parse().ok()
}

/// Checks that a caller-computed hash is lowercase hex SHA-256.
pub(crate) fn check_sha256(hash: &str, what: &str) -> Result<(), StoreError> {
    let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok { Ok(()) } else { Err(StoreError::Invalid(format!("{what} must be lowercase hex SHA-256"))) }
}
