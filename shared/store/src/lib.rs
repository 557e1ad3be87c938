//! The KYC gateway's one DynamoDB table: cases, their append-only events, external-id
//! reservations and webhook de-duplication, as `design.md` describes.
//!
//! - [`table_definition`] / [`create_table`]: the table, defined once.
//! - [`dynamodb_client`]: the client, with deliberate retries and timeouts.
//! - an external id's reservation: one module per transition under `reservation/`.
//! - [`Store`]: every operation, typed, each write conditional and each multi-item
//!   write one transaction. Errors are [`StoreError`], which says whether a retry may
//!   help; [`Retry`] is the one policy for trying again after a lost race.
//!
//! Items (attribute names camelCase, times RFC 3339 UTC with microseconds, so they sort
//! as strings):
//! - case: `pk=CASE#<caseSystemId>`, `sk=CASE`, versioned;
//! - external id: `pk=EXT#<externalCaseId>`, `sk=EXT`;
//! - events: `pk=CASE#<caseSystemId>`, `sk=EVENT#<time>#<KIND>#<random>`, append-only;
//! - webhook de-duplication: `pk=CASE#<caseSystemId>`, `sk=WEBHOOK#<sha256 of body>`.
//!
//! Every item carries the table's TTL (`expiresAt`, Unix seconds): a case's items at
//! least its bound, which covers its last write plus the [`Retention`] (`retention`).
//!
//! Two sparse, write-sharded indexes serve the reconciler: `attention` (`attnAt` =
//! `0#<time>` urgent, `1#<time>` awaiting a suggestion since the last check) and `ogs`
//! (cases under ongoing screening by last check). An entry the reconciler could not
//! settle is moved forward in its index with its tries counted (`backoffAttempts`,
//! [`Store::defer_index_entry`]); any other write of the entry clears the count.
//!
//! Personal data (submitted bodies, webhook bodies, comments) is held in
//! [`gateway_cabital::Pii`], never in `Debug` output, error messages or logs.

#![warn(missing_docs)]

mod backoff;
mod cases;
mod client;
mod codec;
mod erasure;
mod error;
mod index;
mod model;
mod queue;
mod reservation;
mod retention;
mod retry;
mod schema;
mod store;
mod webhook;

pub use backoff::{Deferral, IndexSlot};
pub use cases::MAX_TIMELINE_PAGE;
pub use client::{MAX_ATTEMPTS, StoreTimeouts, dynamodb_client, dynamodb_client_with};
pub use erasure::{ERASED, Erasure};
pub use error::StoreError;
pub use index::{MAX_DUE_COUNT, MAX_INDEX_PAGE};
pub use model::{
    Applied, Attention, AttentionPriority, AttentionRef, AttentionTarget, CaseRecord, CaseStatus, ChangedField,
    CreatedCase, CreatedOutcome, DecisionPending, Event, EventDetail, EventKind, EventSource, ExtRecord, ExtState,
    NoticeReason, OgsPending, Origin, PendingCall, RemoteCheck, RemoteState, Reservation, Resolution, SignaturePair,
    StateChange, TimelineOrder, TimelinePage, WebhookReceipt, WebhookRecorded,
};
pub use queue::{Flag, MAX_QUEUE_PAGE, QueueEntry, QueueList, QueuePage};
pub use retention::{BackfillCursor, BackfillPage, Retention};
pub use retry::{CONFLICT_ATTEMPTS, Retry};
pub use schema::{
    ATTENTION_INDEX, ATTN_AT, ATTN_SHARD, AttributeDef, IndexDefinition, KeyElement, KeyRole, OGS_CHECKED_AT,
    OGS_INDEX, OGS_SHARD, PK, QUEUE_AT, QUEUE_INDEX, QUEUE_KEY, SHARDS, SK, TableDefinition, create_table, format_time,
    parse_time, shard_of, table_definition,
};
pub use store::Store;
