//! The cases flows: create (idempotent on `externalCaseId`), read, ongoing screening,
//! decision, and reading Cabital's current state into the record.
//!
//! Each flow ends by the invocation's [`Deadline`]: a Cabital call is made to end a
//! store call's time ([`StoreTimeouts::operation`]) before it, so that what Cabital did
//! is always written down; when that write fails anyway, what Cabital did is kept where
//! the reconciler finds it (the created case's id on its reservation, the decision's
//! mark on its case).

use gateway_cabital::{
    CabitalClient, CabitalError, Case, CaseSystemId, CreateAnswer, Deadline, ExternalCaseId, WARM_UP_TIMEOUT,
    validate_decision, validate_new_case,
};
use gateway_runtime::settings::aws_sdk_config;
use gateway_store::{
    CONFLICT_ATTEMPTS, CreatedCase, ExtRecord, ExtState, PendingCall, QueueList, RemoteCheck, RemoteState, Reservation,
    Retry, Store, StoreError, StoreTimeouts, TimelineOrder,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::error::GatewayError;
use crate::settings::{InitError, Settings};
use crate::views::{
    AwaitingCaseId, CaseView, CaseWithTimeline, CreateOutcome, Created, ErasureView, EventView, ExternalLookup,
    WorkQueue,
};

/// How a timeline is read.
#[derive(Debug, Clone)]
pub struct TimelineQuery {
    /// Also ask Cabital and record what changed.
    pub live: bool,
    /// Oldest or newest first.
    pub order: TimelineOrder,
    /// Events per page.
    pub limit: u32,
    /// The cursor of the previous page.
    pub cursor: Option<String>,
}

impl Default for TimelineQuery {
    fn default() -> Self {
        TimelineQuery { live: false, order: TimelineOrder::Oldest, limit: 50, cursor: None }
    }
}

/// What reading Cabital's state did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// Whether anything changed.
    pub changed: bool,
    /// The case's version afterwards.
    pub version: u64,
}

/// The gateway's rules over the table and Cabital. Build once per cold start.
#[derive(Debug, Clone)]
pub struct Gateway {
    /// The table.
    pub store: Store,
    /// Cabital.
    pub cabital: CabitalClient,
    /// The table's time limits: what a Cabital call leaves of the invocation's time for
    /// the writes after it.
    pub store_timeouts: StoreTimeouts,
}

/// Runs a store call, cut at `deadline` (a retryable failure then).
async fn by<T>(
    deadline: Deadline,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let Some(at) = deadline.instant() else {
        return call.await;
    };
    tokio::time::timeout_at(at.into(), call).await.unwrap_or_else(|_| {
        Err(StoreError::Service {
            code: "Timeout".into(),
            retryable: true,
            message: "cut at the invocation's deadline".into(),
        })
    })
}

fn now() -> OffsetDateTime {
    gateway_runtime::now()
}

/// Hex SHA-256 of the canonical request: the exact bytes that would be sent to Cabital.
pub fn request_hash(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

impl Gateway {
    /// The cold start's gateway: the AWS SDK's configuration, the clients, warmed up.
    pub async fn start(settings: &Settings) -> Result<Self, InitError> {
        let sdk = aws_sdk_config(&settings.aws).await;
        let gateway = Gateway::new(settings, &sdk).await?;
        gateway.warm_up().await?;
        Ok(gateway)
    }

    /// Builds the clients from the settings: reads no environment and calls nothing.
    pub async fn new(settings: &Settings, sdk: &aws_config::SdkConfig) -> Result<Self, InitError> {
        let cabital = settings.cabital.client(settings.cabital.credential_store(sdk))?;
        let client = gateway_store::dynamodb_client_with(sdk, settings.store).await;
        let store = Store::new(client, settings.table.clone()).with_retention(settings.retention);
        Ok(Gateway { store, cabital, store_timeouts: settings.store })
    }

    /// The deadline of a Cabital call made by an invocation that ends by `deadline`: a
    /// store call's time (with its retries) earlier, kept for recording what Cabital did.
    pub fn cabital_deadline(&self, deadline: Deadline) -> Deadline {
        deadline.less(self.store_timeouts.operation)
    }

    /// When a call sent now by an invocation that ends by `deadline` is surely over:
    /// the deadline itself, or without one, the client's longest call and a store
    /// call's time.
    fn calls_over_by(&self, deadline: Deadline) -> OffsetDateTime {
        let left = deadline.left().unwrap_or_else(|| self.cabital.longest_call() + self.store_timeouts.operation);
        now() + time::Duration::try_from(left).unwrap_or(time::Duration::MAX)
    }

    /// Fetches the secret, so that a bad secret stops the cold start, and meanwhile
    /// opens the first connections to DynamoDB and to Cabital, so that the first
    /// request finds them open. Only the secret can fail.
    pub async fn warm_up(&self) -> Result<(), InitError> {
        let warm_store = async {
            match tokio::time::timeout(WARM_UP_TIMEOUT, self.store.warm_up()).await {
                Ok(Ok(())) => tracing::debug!("DynamoDB connection warmed up"),
                Ok(Err(e)) => tracing::info!(error = %e, "DynamoDB warm-up failed; the first request will connect"),
                Err(_) => tracing::info!("DynamoDB warm-up timed out; the first request will connect"),
            }
        };
        let (secret, (), ()) = tokio::join!(self.cabital.credentials().get(), warm_store, self.cabital.warm_up());
        secret?;
        Ok(())
    }

    /// `POST /v1/cases`, by `deadline`.
    // The error at debug only: the function logs each refusal once, at warn, with its
    // stable reason; bad input is not an error of the gateway's.
    #[tracing::instrument(skip_all, err(level = "debug", Display))]
    pub async fn create_case(&self, body: &Value, deadline: Deadline) -> Result<CreateOutcome, GatewayError> {
        let case = validate_new_case(body, now().date()).map_err(GatewayError::Validation)?;
        let ext = case.external_case_id.clone();
        // Our serialisation is canonical (fixed field order, sorted maps): the same case
        // gives the same bytes, whatever the caller's key order or spacing.
        let submitted = serde_json::to_string(&case).map_err(|e| GatewayError::CabitalBroken(e.to_string()))?;
        let hash = request_hash(submitted.as_bytes());

        let token =
            match self.store.reserve_external_id(&ext, &hash, &gateway_cabital::Pii(submitted.clone()), now()).await? {
                Reservation::Reserved { token } => token,
                Reservation::Existing(existing) => {
                    if !existing.same_request(&hash) {
                        return Err(GatewayError::ExternalIdConflict);
                    }
                    return match (existing.state, existing.case_system_id) {
                        (ExtState::Created, Some(id)) => {
                            let case = self.store.get_case(&id).await?.ok_or(GatewayError::CaseNotFound)?;
                            let created = Created { case_system_id: id, case: CaseView::from(&case), replayed: true };
                            Ok(CreateOutcome::Created(Box::new(created)))
                        }
                        (ExtState::Pending, _) | (ExtState::Created, None) => Err(GatewayError::CreateInFlight),
                        // Cabital answered without the id: the same answer again.
                        (ExtState::Unknown, _) if let Some(status) = existing.cabital_status => {
                            Ok(CreateOutcome::AwaitingCaseId(AwaitingCaseId::new(&ext, status, true)))
                        }
                        (ExtState::Unknown, _) => Err(GatewayError::OutcomeUnknown),
                        // A rejected reservation is taken over by `reserve_external_id`.
                        (ExtState::Rejected, _) => Err(GatewayError::CreateInFlight),
                    };
                }
            };

        let answer = match self.cabital.within(self.cabital_deadline(deadline)).create_case(&case).await {
            Ok(CreateAnswer::Case(answer)) => answer,
            Ok(CreateAnswer::CreatedWithoutId { reason }) => {
                tracing::warn!(external_case_id = %ext, reason, "Cabital created the case without giving its id");
                let record = self.store.mark_created_without_id(&ext, token, 201, now()).await?;
                return self.created_without_id(&ext, record, 201).await;
            }
            // Cabital already has a case with this externalCaseId (our reservation kept
            // us from sending it before): the same as a 2xx without the id, never a
            // reason to free the id.
            Err(e) if e.status() == Some(409) => {
                tracing::warn!(external_case_id = %ext, "Cabital answered the create 409: it has the case");
                let record = self.store.mark_created_without_id(&ext, token, 409, now()).await?;
                return self.created_without_id(&ext, record, 409).await;
            }
            Err(e) if e.outcome_unknown() => {
                tracing::warn!(external_case_id = %ext, error = %e, "create outcome unknown; reservation kept");
                self.store.mark_unknown(&ext, token, now()).await?;
                return Err(GatewayError::OutcomeUnknown);
            }
            Err(e) => {
                // Cabital surely did not create it (refused, or not sent for want of
                // time): free the id for a retry.
                self.store.mark_rejected(&ext, token, e.status().unwrap_or(0), now()).await?;
                return Err(e.into());
            }
        };
        if answer.external_case_id != ext {
            tracing::error!(external_case_id = %ext, "Cabital answered a create with another externalCaseId");
            self.store.mark_unknown(&ext, token, now()).await?;
            return Err(GatewayError::CabitalBroken("create answered for another externalCaseId".into()));
        }
        let id = answer.case_system_id;
        let created = CreatedCase {
            case_system_id: id,
            external_case_id: ext.clone(),
            screen_type: case.screen_type,
            submitted_json: gateway_cabital::Pii(submitted),
            response_json: gateway_cabital::Pii(serde_json::to_string(&answer).unwrap_or_default()),
            suggestion: answer.suggestion,
            suggestion_comment: answer.suggestion_comment.clone(),
            ogs: answer.ogs,
        };
        // Cut one store attempt before the deadline: that much is kept for the fallback.
        let record_by = deadline.less(self.store_timeouts.attempt);
        if let Err(e) = by(record_by, self.store.record_created(&ext, token, &created, now())).await {
            // Cabital has the case but we could not record it: its id is kept on the
            // reservation, which the reconciler then links. Never answer success for
            // what is not stored.
            tracing::error!(external_case_id = %ext, case_system_id = %id, error = %e, "created at Cabital but not recorded");
            // Should this fail too, the reconciler still expires the stuck create, and a
            // webhook naming the case links it.
            match by(deadline, self.store.keep_created_id(&ext, token, &id, now())).await {
                Ok(()) => {
                    tracing::warn!(external_case_id = %ext, case_system_id = %id, "the id is kept on the reservation")
                }
                Err(e) => {
                    tracing::error!(external_case_id = %ext, error = %e, "the id could not be kept on the reservation")
                }
            }
            return Err(e.into());
        }
        let case = self.store.get_case(&id).await?.ok_or(GatewayError::CaseNotFound)?;
        tracing::info!(external_case_id = %ext, case_system_id = %id, "case created");
        let created = Created { case_system_id: id, case: CaseView::from(&case), replayed: false };
        Ok(CreateOutcome::Created(Box::new(created)))
    }

    /// Cabital has the case but did not give its id; the reservation is now `UNKNOWN`
    /// (kept, never sent again) with Cabital's status: the caller is told so.
    async fn created_without_id(
        &self,
        ext: &ExternalCaseId,
        record: ExtRecord,
        cabital_status: u16,
    ) -> Result<CreateOutcome, GatewayError> {
        // A webhook that named the case while the create was in flight links it at once.
        if let (ExtState::Created, Some(id)) = (record.state, record.case_system_id)
            && let Some(case) = self.store.get_case(&id).await?
        {
            let created = Created { case_system_id: id, case: CaseView::from(&case), replayed: false };
            return Ok(CreateOutcome::Created(Box::new(created)));
        }
        Ok(CreateOutcome::AwaitingCaseId(AwaitingCaseId::new(ext, cabital_status, false)))
    }

    /// `GET /v1/cases/{id}`: the case and one page of its timeline, by `deadline`.
    pub async fn get_case(
        &self,
        id: CaseSystemId,
        query: TimelineQuery,
        deadline: Deadline,
    ) -> Result<CaseWithTimeline, GatewayError> {
        let mut live_changed = None;
        if query.live {
            if self.store.get_case(&id).await?.is_none() {
                return Err(GatewayError::CaseNotFound);
            }
            let r = self.refresh(id, RemoteCheck::Refreshed, self.cabital_deadline(deadline)).await?;
            live_changed = Some(r.changed);
        }
        let case = self.store.get_case(&id).await?.ok_or(GatewayError::CaseNotFound)?;
        let page = self
            .store
            .timeline(&id, query.order, query.limit, query.cursor.as_deref())
            .await
            .map_err(cursor_or_store_error)?;
        Ok(CaseWithTimeline {
            case: CaseView::from(&case),
            timeline: page.events.iter().map(EventView::from).collect(),
            next_cursor: page.next_cursor,
            live_changed,
        })
    }

    /// `GET /v1/cases?awaiting=decision` (the cases with a suggestion and no decision)
    /// or `?attention=<flag>` (what the gateway flags for a person): one page, oldest
    /// first.
    pub async fn work_queue(
        &self,
        list: QueueList,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<WorkQueue, GatewayError> {
        let page = self.store.queue_list(list, limit, cursor).await.map_err(cursor_or_store_error)?;
        Ok(WorkQueue::from(&page))
    }

    /// `GET /v1/cases/{id}/evidence`: the case and its whole timeline as one document,
    /// in chain order, each event with its content and its link (`gateway_evidence`,
    /// docs/evidence.md), for `evidence-verify` to check offline.
    pub async fn evidence(&self, id: CaseSystemId) -> Result<Value, GatewayError> {
        let case = self.store.get_case(&id).await?.ok_or(GatewayError::CaseNotFound)?;
        let mut events = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page = self
                .store
                .timeline(&id, TimelineOrder::Oldest, gateway_store::MAX_TIMELINE_PAGE, cursor.as_deref())
                .await?;
            events.extend(page.events);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        Ok(crate::views::evidence(&case, &mut events, now()))
    }

    /// `DELETE /v1/cases/{id}/personal-data`: erases the case's personal data here
    /// (names, dates of birth, countries, comments, webhook bodies), keeping its ids,
    /// decisions, times and hashes, and appends an ERASED event. Cabital's copy is
    /// Cabital's. Safe to repeat.
    pub async fn erase(&self, id: CaseSystemId) -> Result<ErasureView, GatewayError> {
        let erasure = self.store.erase_personal_data(&id, now()).await.map_err(|e| match e {
            StoreError::NotFound(_) => GatewayError::CaseNotFound,
            other => other.into(),
        })?;
        Ok(ErasureView {
            case_system_id: id,
            erased_at: gateway_store::format_time(erasure.erased_at),
            items_erased: erasure.items_erased,
            already_erased: erasure.already,
        })
    }

    /// `GET /v1/cases?externalCaseId=`.
    pub async fn find_by_external_id(&self, ext: &ExternalCaseId) -> Result<ExternalLookup, GatewayError> {
        let Some(record) = self.store.get_external(ext).await? else {
            return Err(GatewayError::CaseNotFound);
        };
        let case = match record.case_system_id {
            Some(id) => self.store.get_case(&id).await?,
            None => None,
        };
        Ok(ExternalLookup::new(&record, case.as_ref()))
    }

    /// `POST` / `DELETE /v1/cases/{id}/ogs`, by `deadline`: marks the case (a change
    /// Cabital made but we failed to record is then read back by the reconciler),
    /// forwards, then records the event and state.
    pub async fn set_ogs(&self, id: CaseSystemId, on: bool, deadline: Deadline) -> Result<CaseView, GatewayError> {
        self.store.get_case(&id).await?.ok_or(GatewayError::CaseNotFound)?;
        let cabital = self.cabital.within(self.cabital_deadline(deadline));
        let send = async { if on { cabital.ogs_on(id).await } else { cabital.ogs_off(id).await } };
        let record = |at| self.store.record_ogs(&id, on, at);
        self.marked_call(id, PendingCall::Ogs(on), deadline, send, record).await
    }

    /// `POST /v1/cases/{id}/decision`, by `deadline`: validates the body (one entry per
    /// bad field), then as a marked call (a decision Cabital took but we failed to record
    /// is then found by the reconciler).
    pub async fn decide(&self, id: CaseSystemId, body: &Value, deadline: Deadline) -> Result<CaseView, GatewayError> {
        let decision = validate_decision(body).map_err(GatewayError::Validation)?;
        self.store.get_case(&id).await?.ok_or(GatewayError::CaseNotFound)?;
        let send = self.cabital.within(self.cabital_deadline(deadline)).decide(id, &decision);
        let record = |at| self.store.record_decision(&id, decision.case_result, decision.comment.clone(), at);
        self.marked_call(id, PendingCall::Decision(decision.case_result), deadline, send, record).await
    }

    /// A call that changes the case at Cabital, by `deadline`: the case is marked first,
    /// then `send` goes to Cabital, then `record` writes the event and state as of its
    /// answer. Surely not
    /// made (refused, or not sent), the mark goes; maybe made, or made and not recorded,
    /// it stays, and the reconciler reads Cabital's state after the deadline.
    async fn marked_call<T, R>(
        &self,
        id: CaseSystemId,
        call: PendingCall,
        deadline: Deadline,
        send: impl Future<Output = Result<T, CabitalError>>,
        record: impl FnOnce(OffsetDateTime) -> R,
    ) -> Result<CaseView, GatewayError>
    where
        R: Future<Output = Result<u64, StoreError>>,
    {
        // On the heap: it waits across the mark's write, which would otherwise carry it.
        let send = Box::pin(send);
        let until = self.calls_over_by(deadline);
        self.store.mark_pending(&id, call, until, now()).await?;
        if let Err(e) = send.await {
            if !e.outcome_unknown()
                && let Err(clear) = self.store.clear_pending(&id, call, until, now()).await
            {
                tracing::warn!(case_system_id = %id, error = %clear, ?call, "mark left for the reconciler");
            }
            return Err(e.into());
        }
        if let Err(e) = record(now()).await {
            tracing::error!(case_system_id = %id, error = %e, ?call, "made at Cabital but not recorded; the reconciler will");
            return Err(e.into());
        }
        let case = self.store.get_case(&id).await?.ok_or(GatewayError::CaseNotFound)?;
        Ok(CaseView::from(&case))
    }

    /// Reads the case from Cabital and applies what it says now, with a versioned update.
    ///
    /// The order in which webhooks arrived never decides the state: Cabital's answer
    /// does. And an answer is applied only if nothing was written to the case since it
    /// was asked for: another refresh, a decision or an OGS change written meanwhile
    /// may hold something fresher, so Cabital is asked again rather than overwritten
    /// with an older answer.
    ///
    /// No attempt of the `GET` starts that could not end by `deadline` (a refresh cut
    /// short loses nothing: the case stays marked for the next look).
    pub async fn refresh(
        &self,
        id: CaseSystemId,
        check: RemoteCheck,
        deadline: Deadline,
    ) -> Result<Refreshed, GatewayError> {
        // One more try than the store's: each spans a round trip to Cabital, a longer
        // window for another writer to step in.
        let mut retry = Retry::new(CONFLICT_ATTEMPTS + 1);
        loop {
            let asked_at = now();
            let remote: Case = self.cabital.within(deadline).get_case(id).await?;
            let case = self.store.get_case(&id).await?.ok_or(GatewayError::CaseNotFound)?;
            if case.updated_at > asked_at {
                retry.lost(StoreError::VersionConflict { case_system_id: id, expected: case.version })?;
                continue;
            }
            let state = RemoteState::from(&remote);
            match self.store.apply_remote_state(&id, case.version, &state, check, now()).await {
                Ok(applied) => return Ok(Refreshed { changed: applied.changed, version: applied.version }),
                Err(e @ StoreError::VersionConflict { .. }) => retry.lost(e)?,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// A cursor the store did not hand out is the caller's field error (400), not the
/// store's failure.
fn cursor_or_store_error(e: StoreError) -> GatewayError {
    match e {
        StoreError::InvalidCursor => {
            GatewayError::Validation(gateway_cabital::ValidationErrors(vec![gateway_cabital::FieldError {
                field: "cursor".into(),
                code: "invalid_cursor",
                message: "is not a cursor this API gave".into(),
            }]))
        }
        other => other.into(),
    }
}
