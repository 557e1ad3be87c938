//! Erasure of a case's personal data on request (`DELETE /v1/cases/{id}/personal-data`).
//!
//! Every personal field of every item of the case (the submitted body and Cabital's
//! answer on its CREATED event and its reservation, webhook bodies, comments) is replaced
//! with [`ERASED`]; ids, suggestions, decisions, times, hashes and the chain's links are
//! kept. Each rewritten event is marked `erased` (its content no longer hashes to its
//! kept `contentSha256`); last, the case is marked and an ERASED event appended to its
//! chain, in one transaction. Repeating it is safe: a case already erased is answered as
//! such; one stopped half-way is finished.

use aws_sdk_dynamodb::types::AttributeValue;
use gateway_cabital::{CaseSystemId, Comment, Pii};
use time::OffsetDateTime;

use crate::codec::{Expr, Item, s};
use crate::error::{StoreError, from_sdk};
use crate::model::{EventDetail, EventSource};
use crate::schema::{self, PK, SK, attr};
use crate::store::Store;

/// What replaces an erased value.
pub const ERASED: &str = "[erased]";

/// The attributes of an event item that can hold personal data.
const PERSONAL_EVENT_ATTRIBUTES: [&str; 6] = [
    attr::SUBMITTED,
    attr::RESPONSE,
    attr::BODY,
    attr::COMMENT,
    attr::TO_SUGGESTION_COMMENT,
    attr::TO_DECISION_COMMENT,
];

/// The outcome of [`Store::erase_personal_data`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erasure {
    /// When the case's personal data was erased (now, or the first time).
    pub erased_at: OffsetDateTime,
    /// Items rewritten (0 when it was erased already).
    pub items_erased: u64,
    /// Whether it was erased already: nothing was written.
    pub already: bool,
}

impl Store {
    /// Erases the case's personal data (see the module). A case not found is
    /// [`StoreError::NotFound`].
    #[tracing::instrument(skip_all, fields(case_system_id = %id, items_erased), err)]
    pub async fn erase_personal_data(&self, id: &CaseSystemId, now: OffsetDateTime) -> Result<Erasure, StoreError> {
        let case = self.get_case(id).await?.ok_or_else(|| StoreError::NotFound(format!("case {id}")))?;
        if let Some(erased_at) = case.erased_at {
            return Ok(Erasure { erased_at, items_erased: 0, already: true });
        }
        let mut items_erased = 0u64;
        for item in self.case_items(id).await? {
            let sk = item.get(SK).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            if !sk.starts_with(schema::EVENT_PREFIX) {
                continue;
            }
            let present: Vec<&str> = PERSONAL_EVENT_ATTRIBUTES.into_iter().filter(|a| item.contains_key(*a)).collect();
            if present.is_empty() {
                continue;
            }
            let mut expr = Expr::new();
            for a in present {
                expr.set(a, s(ERASED));
            }
            expr.set(attr::ERASED, AttributeValue::Bool(true));
            let condition = format!("attribute_exists({})", expr.name(PK));
            self.update_item(Self::key(schema::case_pk(id), &sk), &expr, &condition).await?;
            items_erased += 1;
        }
        // The reservation's copy of the submitted body.
        if let Some(ext) = self.get_external(&case.external_case_id).await?
            && ext.submitted.is_some()
        {
            let mut expr = Expr::new();
            expr.remove(attr::SUBMITTED);
            let condition = format!("attribute_exists({})", expr.name(PK));
            self.update_item(Self::ext_key(&case.external_case_id), &expr, &condition).await?;
            items_erased += 1;
        }
        // Last, the case itself and its ERASED event, in one transaction: until then a
        // repeat finishes what a stopped erasure left.
        let erased = Comment::from(Pii(ERASED.to_owned()));
        items_erased += 1;
        let detail = EventDetail::Erased { items_erased };
        self.versioned_with_event(id, now, EventSource::Api, &detail, |c| {
            if c.suggestion_comment.is_some() {
                c.suggestion_comment = Some(erased.clone());
            }
            if c.decision_comment.is_some() {
                c.decision_comment = Some(erased.clone());
            }
            c.erased_at = Some(now);
        })
        .await?;
        tracing::Span::current().record("items_erased", items_erased);
        Ok(Erasure { erased_at: now, items_erased, already: false })
    }

    /// Every item under the case's partition key.
    async fn case_items(&self, id: &CaseSystemId) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .case_partition_query(id, None)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(from_sdk)?;
            items.extend(page.items().iter().cloned());
            match page.last_evaluated_key {
                Some(key) => start = Some(key),
                None => return Ok(items),
            }
        }
    }
}
