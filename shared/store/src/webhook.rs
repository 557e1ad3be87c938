//! Webhook deliveries: durable first, one event per distinct body, counted deliveries.

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use gateway_cabital::{CaseSystemId, Pii};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::codec::{self, Expr, Item, Reader, n, s, t, unix, unix_secs};
use crate::error::{StoreError, TxError};
use crate::model::{Attention, CaseRecord, EventDetail, EventSource, Origin, WebhookReceipt, WebhookRecorded};
use crate::retry::{CONFLICT_ATTEMPTS, Retry};
use crate::schema::{self, PK, SK, attr};
use crate::store::{Store, check_sha256};

/// Attempts at recording one delivery before giving up with a retryable error (the
/// sender retries too): one more than elsewhere, as the first lost race may only move
/// the delivery from first to repeat.
const WEBHOOK_ATTEMPTS: usize = CONFLICT_ATTEMPTS + 1;

/// The de-duplication item of a body already received.
struct Dedupe {
    event_sk: String,
    deliveries: u32,
}

impl Store {
    /// Makes a webhook delivery durable, idempotently:
    /// - the first delivery of a body: a de-duplication item (keyed by the body's
    ///   SHA-256), a WEBHOOK event holding the body as received, and the case flagged
    ///   for refresh and made urgent, in one transaction. A case not yet known is
    ///   created from the webhook (origin `WEBHOOK`, its suggestion, version 1).
    /// - a repeat delivery (or the loser of two concurrent first deliveries): the
    ///   delivery count of the de-duplication item and of the event goes up, and the
    ///   case is flagged again, in one transaction.
    /// - with a verified signature: its pair is remembered (`SEEN#<hash>`, with a TTL) in
    ///   the same transaction, so a delivery that was not stored leaves nothing behind
    ///   and its retry under the same headers is stored. An exact repeat of a remembered
    ///   pair writes nothing and answers `replay` (one of two at once loses the pair's
    ///   condition, reads again and finds it).
    ///
    /// The suggestion of the webhook never overwrites a known case's state: the body
    /// has no timestamp, so the caller reads Cabital's current state and applies it
    /// ([`Store::apply_remote_state`]). A reservation left `PENDING` or `UNKNOWN` for
    /// the named external id is linked, best-effort.
    #[tracing::instrument(skip_all, fields(case_system_id = %receipt.case_system_id, external_case_id = %receipt.external_case_id, first_delivery, deliveries, replay), err)]
    pub async fn record_webhook(
        &self,
        receipt: &WebhookReceipt,
        now: OffsetDateTime,
    ) -> Result<WebhookRecorded, StoreError> {
        check_sha256(&receipt.body_sha256, "body_sha256")?;
        if hex::encode(Sha256::digest(receipt.body.expose().as_bytes())) != receipt.body_sha256 {
            return Err(StoreError::Invalid("body_sha256 is not the SHA-256 of the body".into()));
        }
        let id = receipt.case_system_id;
        let case_pk = schema::case_pk(&id);
        let dedupe_sk = dedupe_sk(receipt);
        let seen_sk = receipt.signature.as_ref().map(|pair| schema::seen_sk(&pair.sha256));
        if let Some(pair) = &receipt.signature {
            check_sha256(&pair.sha256, "signature sha256")?;
        }

        let mut retry = Retry::new(WEBHOOK_ATTEMPTS);
        let recorded = loop {
            let seen_read = async {
                match &seen_sk {
                    Some(sk) => self.get_item(case_pk.clone(), sk).await,
                    None => Ok(None),
                }
            };
            let (dedupe, case, seen) = futures::try_join!(
                self.get_item(case_pk.clone(), &dedupe_sk),
                self.get_item(case_pk.clone(), schema::CASE_SK),
                seen_read,
            )?;
            let case = case.as_ref().map(codec::case_from_item).transpose()?;
            let case_known = case.is_some();
            if let Some(seen) = &seen
                && !expired(seen, now)?
            {
                let deliveries = dedupe.map(|item| read_dedupe(&item)).transpose()?.map_or(0, |d| d.deliveries);
                tracing::Span::current().record("replay", true);
                return Ok(WebhookRecorded {
                    first_delivery: false,
                    deliveries,
                    case_was_known: case_known,
                    replay: true,
                });
            }
            if let Some(case) = &case
                && case.external_case_id != receipt.external_case_id
            {
                tracing::warn!("webhook names another externalCaseId than the stored case");
            }
            let mut case_after = case_after_webhook(receipt, case.as_ref(), now);
            self.retain(case.as_ref(), &mut case_after, now).await?;

            let (mut items, recorded) = match dedupe.map(|item| read_dedupe(&item)).transpose()? {
                None => (
                    self.first_delivery(receipt, case.as_ref(), &mut case_after, &dedupe_sk, now)?,
                    WebhookRecorded { first_delivery: true, deliveries: 1, case_was_known: case_known, replay: false },
                ),
                Some(seen) => (
                    self.repeat_delivery(
                        &case_pk,
                        &dedupe_sk,
                        &seen,
                        self.webhook_case_write(receipt, case.as_ref(), &case_after)?,
                        now,
                    )?,
                    WebhookRecorded {
                        first_delivery: false,
                        deliveries: seen.deliveries.saturating_add(1),
                        case_was_known: case_known,
                        replay: false,
                    },
                ),
            };
            if let (Some(pair), Some(sk)) = (&receipt.signature, &seen_sk) {
                items.push(self.seen_put(&case_pk, sk, pair.expires_at, now)?);
            }
            match self.transact(items).await {
                Ok(()) => break recorded,
                // A concurrent delivery or writer got there first (the de-duplication
                // item now exists, the case item appeared or changed, the same pair was
                // just remembered): read again.
                Err(TxError::Cancelled(r))
                    if r.transient() || r.condition_failed(0) || r.condition_failed(2) || r.condition_failed(3) =>
                {
                    retry.lost(StoreError::TransactionConflict)?;
                }
                Err(e) => return Err(e.into_store()),
            }
        };
        let span = tracing::Span::current();
        span.record("first_delivery", recorded.first_delivery);
        span.record("deliveries", recorded.deliveries);
        self.link_reservation(&receipt.external_case_id, &id, now).await;
        Ok(recorded)
    }

    /// [dedupe put, event put, case write]: the order the cancellation reasons follow.
    fn first_delivery(
        &self,
        receipt: &WebhookReceipt,
        current: Option<&CaseRecord>,
        case_after: &mut CaseRecord,
        dedupe_sk: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        // A case whose personal data was erased keeps no body delivered after: its hash
        // (kept) still de-duplicates it.
        let body = match current {
            Some(c) if c.erased_at.is_some() => Pii(crate::erasure::ERASED.to_owned()),
            _ => receipt.body.clone(),
        };
        let detail = match receipt.notice {
            None => EventDetail::Webhook {
                body: body.clone(),
                body_sha256: receipt.body_sha256.clone(),
                deliveries: 1,
                first_received_at: now,
                last_received_at: now,
                suggestion: receipt
                    .suggestion
                    .ok_or_else(|| StoreError::Invalid("a verified webhook reports a suggestion".into()))?,
            },
            Some(reason) => EventDetail::UnverifiedNotice {
                body,
                body_sha256: receipt.body_sha256.clone(),
                deliveries: 1,
                first_received_at: now,
                last_received_at: now,
                reason,
            },
        };
        let (event_sk, event) = self.tx_event(case_after, now, EventSource::Webhook, &detail)?;
        let case_write = self.webhook_case_write(receipt, current, case_after)?;
        let mut dedupe = Item::from([
            (PK.to_owned(), s(schema::case_pk(&receipt.case_system_id))),
            (SK.to_owned(), s(dedupe_sk)),
            (attr::EVENT_SK.to_owned(), s(event_sk)),
            (attr::DELIVERIES.to_owned(), n(1)),
            (attr::FIRST_RECEIVED_AT.to_owned(), t(now)),
            (attr::LAST_RECEIVED_AT.to_owned(), t(now)),
        ]);
        // Kept as long as its case.
        if let Some(bound) = case_after.expires_at {
            dedupe.insert(attr::EXPIRES_AT.to_owned(), unix(bound));
        }
        Ok(vec![self.tx_put_new(dedupe)?, event, case_write])
    }

    /// [dedupe update, event update, case write].
    fn repeat_delivery(
        &self,
        case_pk: &str,
        dedupe_sk: &str,
        seen: &Dedupe,
        case_write: TransactWriteItem,
        now: OffsetDateTime,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let count = |sk: &str| -> Result<TransactWriteItem, StoreError> {
            let mut expr = Expr::new();
            expr.add(attr::DELIVERIES, n(1)).set(attr::LAST_RECEIVED_AT, t(now));
            let condition = format!("attribute_exists({})", expr.name(PK));
            self.tx_update(Self::key(case_pk.to_owned(), sk), &expr, &condition)
        };
        Ok(vec![count(dedupe_sk)?, count(&seen.event_sk)?, case_write])
    }

    /// [seen put]: remembers a signature pair, unless remembered and not yet expired.
    fn seen_put(
        &self,
        case_pk: &str,
        seen_sk: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<TransactWriteItem, StoreError> {
        let item = Item::from([
            (PK.to_owned(), s(case_pk)),
            (SK.to_owned(), s(seen_sk)),
            (attr::EXPIRES_AT.to_owned(), n(unix_secs(expires_at))),
            (attr::FIRST_RECEIVED_AT.to_owned(), t(now)),
        ]);
        let mut expr = Expr::new();
        let condition = format!(
            "attribute_not_exists({}) OR {} < {}",
            expr.name(PK),
            expr.name(attr::EXPIRES_AT),
            expr.value(n(unix_secs(now)))
        );
        self.tx_put(item, &condition, &expr)
    }

    /// The case's part of a delivery, leaving it as `after` ([`case_after_webhook`],
    /// linked to the chain if the delivery adds an event): a known case is flagged for
    /// refresh (urgent) at the version read; an unknown one is created from the webhook.
    fn webhook_case_write(
        &self,
        receipt: &WebhookReceipt,
        current: Option<&CaseRecord>,
        after: &CaseRecord,
    ) -> Result<TransactWriteItem, StoreError> {
        let id = receipt.case_system_id;
        let Some(current) = current else {
            return self.tx_put_new(codec::case_item(after));
        };
        let mut expr = Expr::new();
        expr.set(attr::NEEDS_REFRESH, AttributeValue::Bool(true))
            .set_attention(&id.to_string(), after.attention.as_ref())
            .set(attr::UPDATED_AT, t(after.updated_at))
            .add(attr::VERSION, n(1));
        if after.chain_head != current.chain_head
            && let Some(head) = &after.chain_head
        {
            expr.set(attr::CHAIN_HEAD, s(head.as_str()));
        }
        if after.expires_at != current.expires_at
            && let Some(bound) = after.expires_at
        {
            expr.set(attr::EXPIRES_AT, unix(bound));
        }
        // At the version read: the event written with it then names the case's exact
        // version and links to its chain (a writer in between makes the delivery read
        // again).
        let condition = format!("{} = {}", expr.name(attr::VERSION), expr.value(n(current.version)));
        self.tx_update(Self::case_key(&id), &expr, &condition)
    }
}

/// The case as a delivery leaves it: a known one flagged for refresh and urgent, one
/// version on; an unknown one created from the webhook (origin `WEBHOOK`, version 1).
fn case_after_webhook(receipt: &WebhookReceipt, current: Option<&CaseRecord>, now: OffsetDateTime) -> CaseRecord {
    match current {
        Some(current) => {
            let mut after = current.clone();
            after.needs_refresh = true;
            after.attention = Some(Attention::urgent(now));
            after.updated_at = now;
            after.version = current.version + 1;
            after
        }
        None => CaseRecord::new(
            receipt.case_system_id,
            receipt.external_case_id.clone(),
            Origin::Webhook,
            None,
            receipt.suggestion,
            receipt.suggestion_comment.clone(),
            now,
        ),
    }
}

impl Store {
    /// Whether a body was already received: as a verified webhook (`notice` false) or as
    /// an unverified notice (`notice` true).
    pub async fn body_seen(
        &self,
        case_system_id: &CaseSystemId,
        body_sha256: &str,
        notice: bool,
    ) -> Result<bool, StoreError> {
        check_sha256(body_sha256, "body_sha256")?;
        let sk = if notice { schema::notice_sk(body_sha256) } else { schema::webhook_sk(body_sha256) };
        Ok(self.get_item(schema::case_pk(case_system_id), &sk).await?.is_some())
    }

    /// Claims the right to read a case from Cabital because of a notice: granted at most
    /// once per `interval` per case, whatever the number of writers (a conditional put),
    /// so that repeated notices cost at most one `GET` per case per interval.
    pub async fn claim_refetch(
        &self,
        case_system_id: &CaseSystemId,
        now: OffsetDateTime,
        interval: std::time::Duration,
    ) -> Result<bool, StoreError> {
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let cutoff = now_ms.saturating_sub(i64::try_from(interval.as_millis()).unwrap_or(i64::MAX));
        let mut expr = Expr::new();
        // A guard with its own TTL: of no use once `interval` has passed.
        let expires = now + interval.max(std::time::Duration::from_secs(86_400));
        expr.set(attr::REFETCH_AT_MS, AttributeValue::N(now_ms.to_string())).set(attr::EXPIRES_AT, unix(expires));
        let condition = format!(
            "attribute_not_exists({}) OR {} < {}",
            expr.name(PK),
            expr.name(attr::REFETCH_AT_MS),
            expr.value(AttributeValue::N(cutoff.to_string()))
        );
        let key = Self::key(schema::case_pk(case_system_id), schema::REFETCH_SK);
        match self.update_item(key, &expr, &condition).await {
            Ok(_) => Ok(true),
            Err(StoreError::ConditionFailed(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A verified webhook's body and an unverified notice's are de-duplicated apart: the
/// same bytes unsigned and signed are two different claims.
fn dedupe_sk(receipt: &WebhookReceipt) -> String {
    match receipt.notice {
        None => schema::webhook_sk(&receipt.body_sha256),
        Some(_) => schema::notice_sk(&receipt.body_sha256),
    }
}

/// Whether an item's TTL has passed: DynamoDB deletes such items late, if at all soon.
fn expired(item: &Item, now: OffsetDateTime) -> Result<bool, StoreError> {
    Ok(Reader::new(item).opt_u64(attr::EXPIRES_AT)?.is_some_and(|at| at < unix_secs(now)))
}

fn read_dedupe(item: &Item) -> Result<Dedupe, StoreError> {
    let r = Reader::new(item);
    Ok(Dedupe { event_sk: r.str(attr::EVENT_SK)?.to_owned(), deliveries: r.u32(attr::DELIVERIES)? })
}
