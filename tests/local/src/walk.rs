//! `walk`: one case's whole life through the functions' real HTTP endpoints, checked
//! step by step, then a case whose webhook is dropped, fixed by the reconciler.

use std::time::{Duration, Instant};

use gateway_cabital::CaseSystemId;
use reqwest::Method;
use serde_json::{Value, json};

use crate::args::Args;
use crate::http::Stack;
use crate::show::{self, field, header, note, ok, s};
use crate::{Failure, Result, aws, ensure};

/// The flags `walk` takes.
pub const FLAGS: &[&str] = &[
    "api",
    "sandbox",
    "table",
    "stale-after-secs",
    "timeout-secs",
    "request-timeout-secs",
    "reconcile-event",
    "reconcile-timeout-secs",
    "name-suffix",
    "mode",
    "give-up-secs",
    "retention-days",
    "events-queue",
    "template",
];

const STEPS: usize = 9;
const POLL: Duration = Duration::from_millis(250);

/// What the walk needs.
struct Walk {
    stack: Stack,
    /// The reconciler's `RECONCILE_STALE_AFTER_SECS`.
    stale_after: Duration,
    /// The longest wait for a webhook or a state.
    timeout: Duration,
    /// The table, to read the timelines straight from it as well.
    store: Option<gateway_store::Store>,
    /// Makes this run's external ids unique.
    run: String,
    /// How the sandbox answers where Cabital's page is silent (`./scripts/local.sh --cabital`).
    mode: String,
    /// The reconciler's `RECONCILE_NO_SUGGESTION_GIVE_UP_SECS` (the `no-screening` mode).
    give_up_after: Duration,
    /// The consumer's queue of case events and the template the pipe is read from.
    events: Option<(String, std::path::PathBuf)>,
    /// The functions' `RETENTION_DAYS`.
    retention: gateway_store::Retention,
}

/// Runs the walk.
pub async fn run(args: &Args) -> Result<()> {
    let stack = Stack::from_args(args, Duration::from_secs(args.number("request-timeout-secs", 120)?))?;
    let store = match args.get("table") {
        Some(table) => {
            let sdk = aws::config().await?;
            Some(gateway_store::Store::new(gateway_store::dynamodb_client(&sdk).await, table))
        }
        None => None,
    };
    let run = match args.get("name-suffix") {
        Some(suffix) => suffix.to_owned(),
        None => uuid::Uuid::new_v4().simple().to_string()[..8].to_owned(),
    };
    let walk = Walk {
        stack,
        stale_after: Duration::from_secs(args.number("stale-after-secs", 5)?),
        timeout: Duration::from_secs(args.number("timeout-secs", 60)?),
        store,
        run,
        mode: args.get("mode").unwrap_or("base64").to_owned(),
        give_up_after: Duration::from_secs(args.number("give-up-secs", 5)?),
        events: match (args.get("events-queue"), args.get("template")) {
            (Some(queue), Some(template)) => Some((queue.to_owned(), template.into())),
            (None, None) => None,
            _ => return Err(Failure("--events-queue and --template go together".into())),
        },
        retention: retention_days(args)?,
    };
    walk.all().await
}

impl Walk {
    async fn all(&self) -> Result<()> {
        let started = Instant::now();
        println!("A case's whole life through the functions under `cargo lambda watch`");
        field("cases API", &self.stack.api);
        field("Cabital sandbox", &self.stack.sandbox);
        let hook = self.stack.sandbox_get("/_sandbox/webhook-url").await?;
        field("webhooks go to", show::text(&hook, "url"));
        ensure(hook.get("url").is_some_and(Value::is_string), || {
            "the sandbox has no webhook URL: start it with --webhook-url pointing at the webhook function".to_owned()
        })?;

        field("Cabital mode", &self.mode);

        let first = self.accepted_case().await?;
        let second = self.dropped_webhook_case().await?;

        header(7, STEPS, "Each case's timeline, from the table (GET /v1/cases/{id})");
        let hook = self.webhook_kind();
        let mut must_first = vec!["CREATED", hook, "OGS_ON", "DECISION"];
        if self.mode == "no-screening" {
            must_first.push("SUGGESTION_OVERDUE");
        }
        self.timeline(&first, "the first case", &must_first, &[]).await?;
        if self.id_pending() {
            // No id and no webhook: nothing could settle it until Cabital resent the webhook.
            self.timeline(&second, "the case whose webhook was dropped", &["CREATED", hook], &["RECONCILED"]).await?;
        } else {
            self.timeline(&second, "the case whose webhook was dropped", &["CREATED", "RECONCILED"], &[hook]).await?;
        }

        header(8, STEPS, "Every case equals Cabital's: nothing lost, none created twice");
        for id in [&first, &second] {
            self.equals_cabitals(id).await?;
        }
        if self.mode == "original-headers" {
            self.late_retries_counted(&first).await?;
        }
        self.work_queue(&[&first, &second]).await?;
        self.evidence(&[&first, &second]).await?;
        self.erasure(&second).await?;
        self.kept(&[&first, &second]).await?;

        header(9, STEPS, "Every timeline event on the bus (stream -> pipe -> rule -> queue)");
        match &self.events {
            Some((queue, template)) => self.events_arrived(&[&first, &second], queue, template).await?,
            None => note("(skipped: no --events-queue)"),
        }

        println!(
            "\nWALK PASSED in {:.1} s ({} mode): create -> webhook -> ongoing screening -> decision; dropped webhook -> reconciled.",
            started.elapsed().as_secs_f64(),
            self.mode
        );
        Ok(())
    }

    /// Whether the sandbox answers a create without `caseSystemId` (an empty 201, or the
    /// case without its id): the gateway answers 202 and the webhook brings the id.
    fn id_pending(&self) -> bool {
        matches!(self.mode.as_str(), "empty-create" | "no-id-create")
    }

    /// Creates a case; answers its id, or `None` when the gateway answered 202 (the id
    /// to come with the webhook). Checks the same request again replays the answer and
    /// that Cabital holds exactly one case.
    async fn create(&self, ext: &str, body: &Value) -> Result<Option<String>> {
        if !self.id_pending() {
            let created =
                self.stack.api_call(Method::POST, "/v1/cases", Some(body)).await?.expect(201, "POST /v1/cases")?;
            let id = s(&created, "caseSystemId").to_owned();
            let case = created.get("case").cloned().unwrap_or(Value::Null);
            field("-> 201", format!("caseSystemId {id}"));
            field("status", s(&case, "status"));
            ensure(id.parse::<CaseSystemId>().is_ok(), || format!("the answer's caseSystemId `{id}` is not a UUID"))?;
            ensure(created.get("replayed") == Some(&json!(false)), || {
                "a first create answered as a replay".to_owned()
            })?;
            let again = self
                .stack
                .api_call(Method::POST, "/v1/cases", Some(body))
                .await?
                .expect(201, "POST /v1/cases again")?;
            ensure(s(&again, "caseSystemId") == id && again.get("replayed") == Some(&json!(true)), || {
                format!("the same request again did not replay the first answer: {again}")
            })?;
            self.one_case_at_cabital(ext).await?;
            return Ok(Some(id));
        }
        let pending =
            self.stack.api_call(Method::POST, "/v1/cases", Some(body)).await?.expect(202, "POST /v1/cases")?;
        field("-> 202", format!("{}, state {}", s(&pending, "code"), s(&pending, "state")));
        ensure(s(&pending, "code") == "case_system_id_pending" && s(&pending, "state") == "UNKNOWN", || {
            format!("expected case_system_id_pending / UNKNOWN, got {pending}")
        })?;
        let again =
            self.stack.api_call(Method::POST, "/v1/cases", Some(body)).await?.expect(202, "POST /v1/cases again")?;
        ensure(again.get("replayed") == Some(&json!(true)), || format!("the same request again: {again}"))?;
        self.one_case_at_cabital(ext).await?;
        Ok(None)
    }

    async fn one_case_at_cabital(&self, ext: &str) -> Result<()> {
        let at_cabital = self.stack.sandbox_get(&format!("/_sandbox/cases?externalCaseId={ext}")).await?;
        let count = at_cabital.as_array().map_or(0, Vec::len);
        ensure(count == 1, || format!("the sandbox holds {count} cases for {ext}, expected exactly 1"))?;
        ok("the same request again replays the first answer; Cabital has exactly one case");
        Ok(())
    }

    /// Cabital's id of the case it holds for `ext` (the create answered none).
    async fn cabital_id_of(&self, ext: &str) -> Result<String> {
        let at_cabital = self.stack.sandbox_get(&format!("/_sandbox/cases?externalCaseId={ext}")).await?;
        let id = at_cabital.pointer("/0/case/caseSystemId").or(at_cabital.pointer("/0/caseSystemId"));
        id.and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| Failure(format!("the sandbox holds no case for {ext}: {at_cabital}")))
    }

    /// `GET /v1/cases?externalCaseId=`: the reservation's state and id.
    async fn lookup(&self, ext: &str) -> Result<Value> {
        self.stack
            .api_call(Method::GET, &format!("/v1/cases?externalCaseId={ext}"), None)
            .await?
            .expect(200, "GET /v1/cases?externalCaseId=")
    }

    /// The sandbox's analyst sets a suggestion (with its webhook): what Cabital does when
    /// it screens by hand, or resends a webhook.
    async fn suggest_at_cabital(&self, id: &str, suggestion: &str, comment: &str) -> Result<()> {
        let body = json!({"suggestion": suggestion, "comment": comment, "notify": true});
        self.stack.sandbox_post(&format!("/_sandbox/cases/{id}/suggestion"), &body).await?;
        note(format!("POST /_sandbox/cases/{{id}}/suggestion {{\"suggestion\": \"{suggestion}\", \"notify\": true}}"));
        Ok(())
    }

    /// No screening on create: the reconciler asks, then gives up once and flags the case
    /// for a person; then Cabital's analyst screens it by hand.
    async fn screened_by_hand(&self, id: &str, created_at: Instant) -> Result<()> {
        let remote = self.stack.sandbox_case(id).await?;
        ensure(remote.get("suggestion").is_none_or(Value::is_null), || {
            format!("the sandbox screened the case although it has no screening: {remote}")
        })?;
        note("Cabital screens nothing by itself (no Zero Footprint)");
        let due = created_at + self.stale_after.max(self.give_up_after) + Duration::from_millis(500);
        wait_until(due, format!(" (RECONCILE_NO_SUGGESTION_GIVE_UP_SECS={})", self.give_up_after.as_secs())).await;
        for _ in 0..2 {
            self.invoke_reconcile()?;
        }
        let view = self.stack.get_case(id).await?;
        let case = view.get("case").cloned().unwrap_or(Value::Null);
        ensure(case.pointer("/attention/reason") == Some(&json!("no_suggestion")), || {
            format!("after the give-up the case shows no attention: {case}")
        })?;
        let reports = events(&view).iter().filter(|e| s(e, "kind") == "SUGGESTION_OVERDUE").count();
        ensure(reports == 1, || format!("{reports} SUGGESTION_OVERDUE events after two reconcile runs, expected 1"))?;
        ok("no suggestion: the reconciler gave up once, and the case says so (attention no_suggestion)");
        self.suggest_at_cabital(id, "SUGGEST_TO_ACCEPT", "Screened by hand: no hit.").await
    }

    /// The event kind a delivery of the sandbox's webhook becomes: a notice when
    /// webhooks are unsigned (`WEBHOOK_AUTH=refetch`), never Cabital's words.
    fn webhook_kind(&self) -> &'static str {
        if self.mode == "unsigned" { "UNVERIFIED_NOTICE" } else { "WEBHOOK" }
    }

    /// The gateway's case equals the sandbox's (suggestion, its comment, decision, ongoing
    /// screening), and the sandbox holds exactly one case for its external id.
    async fn equals_cabitals(&self, id: &str) -> Result<()> {
        let case = self.stack.get_case(id).await?.get("case").cloned().unwrap_or(Value::Null);
        let remote = self.stack.sandbox_case(id).await?;
        let ext = s(&case, "externalCaseId").to_owned();
        let pairs = [
            ("suggestion", case.get("suggestion"), remote.get("suggestion")),
            ("suggestionComment", case.get("suggestionComment"), remote.get("suggestion_comment")),
            ("decision", case.get("decision"), remote.get("decision")),
            ("ogs", case.get("ogs"), remote.get("ogs")),
        ];
        for (name, ours, theirs) in pairs {
            let (ours, theirs) = (ours.filter(|v| !v.is_null()), theirs.filter(|v| !v.is_null()));
            ensure(ours == theirs, || format!("case {id}: {name} is {ours:?} in the gateway, {theirs:?} at Cabital"))?;
        }
        let at_cabital = self.stack.sandbox_get(&format!("/_sandbox/cases?externalCaseId={ext}")).await?;
        let count = at_cabital.as_array().map_or(0, Vec::len);
        ensure(count == 1, || format!("the sandbox holds {count} cases for {ext}, expected exactly 1"))?;
        ok(format!("{ext}: suggestion, comment, decision and ongoing screening equal Cabital's; one case there"));
        Ok(())
    }

    /// With every ack lost, Cabital retries under the first attempt's headers, minutes old:
    /// each such late delivery is one more delivery of the stored body, never a new event.
    async fn late_retries_counted(&self, id: &str) -> Result<()> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let deliveries = self.stack.sandbox_get(&format!("/_sandbox/deliveries?caseSystemId={id}")).await?;
            // Late: its timestamp more than the webhook's 300 s window before it was sent.
            let age = |d: &Value| -> Option<i64> {
                let at =
                    time::OffsetDateTime::parse(s(d, "at"), &time::format_description::well_known::Rfc3339).ok()?;
                Some(at.unix_timestamp() - d.get("accessTimestamp")?.as_i64()?)
            };
            let late = deliveries
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| s(d, "signed") == "original" && d.get("success") == Some(&json!(true)))
                .filter(|d| age(d).is_some_and(|a| a > 300))
                .count();
            let view = self.stack.get_case(id).await?;
            let hooks: Vec<Value> = events(&view).into_iter().filter(|e| s(e, "kind") == "WEBHOOK").collect();
            let counted = hooks.first().and_then(|e| e.pointer("/details/deliveries")).and_then(Value::as_u64);
            if late >= 1 && hooks.len() == 1 && counted.is_some_and(|n| n as usize > late) {
                ok(format!(
                    "{late} retries under the first attempt's headers, over 300 s old, answered 2xx and counted as \
                     deliveries of the one WEBHOOK event ({} in all)",
                    counted.unwrap_or(0)
                ));
                return Ok(());
            }
            ensure(Instant::now() < deadline, || {
                format!(
                    "no late retry counted within {} s ({late} late answered 2xx, events {hooks:?})",
                    self.timeout.as_secs()
                )
            })?;
            tokio::time::sleep(POLL).await;
        }
    }

    // ------------------------------------------------------------ the first case

    async fn accepted_case(&self) -> Result<String> {
        header(1, STEPS, "Create a case: POST /v1/cases");
        let ext = format!("local-walk-{}-accept", self.run);
        let body = new_case(&ext, "John Doe");
        field("externalCaseId", &ext);
        field("screening", "INDIVIDUAL \"John Doe\" (the sandbox finds no hit for this name)");
        let created_at = Instant::now();
        let answered = self.create(&ext, &body).await?;

        header(2, STEPS, "Cabital screens it; its webhook reaches the webhook function");
        let id = match &answered {
            Some(id) => id.clone(),
            None => self.cabital_id_of(&ext).await?,
        };
        if self.mode == "no-screening" {
            self.screened_by_hand(&id, created_at).await?;
        }
        let (remote, delivery, case) = self.wait_for_webhook(&id).await?;
        field("sandbox says", show::suggestion(&remote));
        field(
            "webhook",
            format!(
                "POST {} -> {} (attempt {})",
                s(&delivery, "url"),
                show::text(&delivery, "statusCode"),
                show::text(&delivery, "attempt")
            ),
        );
        field("gateway shows", format!("{}, suggestion {}", s(&case, "status"), show::suggestion(&case)));
        ensure(case.get("attention").is_none_or(Value::is_null), || {
            format!("the case still asks for attention: {case}")
        })?;
        if answered.is_none() {
            let found = self.lookup(&ext).await?;
            ensure(s(&found, "state") == "CREATED" && s(&found, "caseSystemId") == id, || {
                format!("the webhook did not link the reservation: {found}")
            })?;
            ok("the webhook named the externalCaseId: the reservation is linked to Cabital's id");
        }
        ok(format!(
            "webhook taken and the case read from Cabital, suggestion shown {:.1} s after the create",
            created_at.elapsed().as_secs_f64()
        ));

        header(3, STEPS, "Ongoing screening on: POST /v1/cases/{id}/ogs");
        let case = self
            .stack
            .api_call(Method::POST, &format!("/v1/cases/{id}/ogs"), None)
            .await?
            .expect(200, "POST .../ogs")?;
        field("-> 200", format!("ogs {}", show::text(&case, "ogs")));
        ensure(case.get("ogs") == Some(&json!(true)), || format!("ogs is not on after POST .../ogs: {case}"))?;
        let remote = self.stack.sandbox_case(&id).await?;
        ensure(remote.get("ogs") == Some(&json!(true)), || "the sandbox's case does not have ogs on".to_owned())?;
        ok("on in the gateway and at Cabital");

        header(4, STEPS, "Decision: POST /v1/cases/{id}/decision");
        let decision = json!({"caseResult": "ACCEPT", "comment": "Reviewed locally: no hit."});
        field("caseResult", "ACCEPT (\"Reviewed locally: no hit.\")");
        let case = self
            .stack
            .api_call(Method::POST, &format!("/v1/cases/{id}/decision"), Some(&decision))
            .await?
            .expect(200, "POST .../decision")?;
        field("-> 200", format!("status {}, decision {}", s(&case, "status"), s(&case, "decision")));
        ensure(s(&case, "status") == "DECIDED" && s(&case, "decision") == "ACCEPT", || {
            format!("expected DECIDED / ACCEPT, got {} / {}", s(&case, "status"), s(&case, "decision"))
        })?;
        let remote = self.stack.sandbox_case(&id).await?;
        ensure(s(&remote, "decision") == "ACCEPT", || {
            format!("the sandbox's case has decision {}, expected ACCEPT", s(&remote, "decision"))
        })?;
        ok("recorded by the gateway and sent to Cabital");
        Ok(id)
    }

    /// Polls until the sandbox delivered the case's webhook and the gateway shows its
    /// suggestion; fails at once when a delivery was refused.
    async fn wait_for_webhook(&self, id: &str) -> Result<(Value, Value, Value)> {
        let deadline = Instant::now() + self.timeout;
        let mut said_waiting = false;
        let mut reported: Vec<(String, String)> = Vec::new();
        loop {
            let remote = self.stack.sandbox_case(id).await?;
            let deliveries = self.stack.sandbox_get(&format!("/_sandbox/deliveries?caseSystemId={id}")).await?;
            let deliveries = deliveries.as_array().cloned().unwrap_or_default();
            // A refusal (4xx) will be refused again: fail now. A 5xx or a transport
            // error is retried by the sandbox (in seconds here): say so and wait.
            for bad in deliveries.iter().filter(|d| d.get("success") != Some(&json!(true))) {
                let attempt = (s(bad, "at").to_owned(), show::text(bad, "attempt"));
                match bad.get("statusCode").and_then(Value::as_u64) {
                    Some(code @ 400..=499) => {
                        let hint = if code == 401 {
                            " (signature refused: is WEBHOOK_SIGNED_PATH the path of the URL the sandbox posts to?)"
                        } else {
                            ""
                        };
                        return Err(Failure(format!(
                            "the webhook function refused the sandbox's webhook: POST {} -> HTTP {code}{hint}",
                            s(bad, "url")
                        )));
                    }
                    code if !reported.contains(&attempt) => {
                        let what = code.map_or_else(|| show::text(bad, "error"), |c| format!("HTTP {c}"));
                        note(format!("delivery attempt {} failed ({what}); the sandbox retries", attempt.1));
                        reported.push(attempt);
                    }
                    _ => {}
                }
            }
            let delivered = deliveries.iter().find(|d| d.get("success") == Some(&json!(true))).cloned();
            // A case known only by Cabital's id (the create gave none) appears with the webhook.
            let answer = self.stack.api_call(Method::GET, &format!("/v1/cases/{id}?limit=100"), None).await?;
            let view = if answer.status == 404 { Value::Null } else { answer.expect(200, "GET /v1/cases/{id}")? };
            let case = view.get("case").cloned().unwrap_or(Value::Null);
            let has_webhook_event = events(&view).iter().any(|e| s(e, "kind") == self.webhook_kind());
            let remote_suggestion = remote.get("suggestion").filter(|v| !v.is_null());
            if let Some(delivery) = delivered
                && has_webhook_event
                && remote_suggestion.is_some()
                && case.get("suggestion") == remote_suggestion
            {
                return Ok((remote, delivery, case));
            }
            if Instant::now() >= deadline {
                let state = match (remote_suggestion, deliveries.is_empty(), has_webhook_event) {
                    (None, _, _) => "the sandbox has not screened the case yet",
                    (Some(_), true, _) => "the sandbox has made no delivery attempt yet",
                    (Some(_), false, false) => {
                        "the webhook was delivered but no WEBHOOK event is in the case's timeline"
                    }
                    (Some(_), false, true) => {
                        "the webhook is stored but the case's suggestion differs from the sandbox's"
                    }
                };
                return Err(Failure(format!(
                    "no webhook settled the case within {} s: {state}",
                    self.timeout.as_secs()
                )));
            }
            if !said_waiting {
                note(format!("waiting for the sandbox's webhook (up to {} s)...", self.timeout.as_secs()));
                said_waiting = true;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    // ------------------------------------------------------------ the dropped webhook

    async fn dropped_webhook_case(&self) -> Result<String> {
        header(5, STEPS, "A second case, whose webhook the sandbox drops");
        let saved = self.stack.sandbox_get("/_sandbox/faults").await?;
        let mut dropping = saved.clone();
        dropping["dropWebhookRate"] = json!(1.0);
        self.stack.sandbox_put("/_sandbox/faults", &dropping).await?;
        note("PUT /_sandbox/faults {\"dropWebhookRate\": 1.0}");
        let outcome = self.create_dropped().await;
        // Always put the faults back, whatever happened.
        let restored = self.stack.sandbox_put("/_sandbox/faults", &saved).await;
        let (id, created_at) = outcome?;
        restored?;
        note("PUT /_sandbox/faults (restored as before)");
        if self.id_pending() {
            return self.dropped_without_id(&id).await;
        }

        let remote = self.stack.sandbox_case(&id).await?;
        let view = self.stack.get_case(&id).await?;
        let case = view.get("case").cloned().unwrap_or(Value::Null);
        field("sandbox says", show::suggestion(&remote));
        field("gateway shows", format!("{}, suggestion {}", s(&case, "status"), show::suggestion(&case)));
        ensure(s(&case, "status") == "AWAITING_SUGGESTION" && case.get("suggestion") == Some(&Value::Null), || {
            format!(
                "expected AWAITING_SUGGESTION with no suggestion, got {} / {}",
                s(&case, "status"),
                show::suggestion(&case)
            )
        })?;
        ensure(!events(&view).iter().any(|e| s(e, "kind") == self.webhook_kind()), || {
            "a WEBHOOK event is in the timeline of a case whose webhook was dropped".to_owned()
        })?;
        ok("Cabital has a suggestion the gateway never heard of: the case waits");

        header(6, STEPS, "The reconciler settles it: cargo lambda invoke reconcile");
        let stale_at = created_at + self.stale_after + Duration::from_millis(500);
        let why =
            format!(" until the case counts as stale (RECONCILE_STALE_AFTER_SECS={})", self.stale_after.as_secs());
        wait_until(stale_at, why).await;
        let mut attempt = 0;
        let case = loop {
            attempt += 1;
            let summary = self.invoke_reconcile()?;
            field(
                "summary",
                format!(
                    "found {}, checked {}, changed {}, failed {}",
                    show::text(&summary, "found"),
                    show::text(&summary, "checked"),
                    show::text(&summary, "changed"),
                    show::text(&summary, "failed")
                ),
            );
            let case = self.stack.get_case(&id).await?.get("case").cloned().unwrap_or(Value::Null);
            if case.get("suggestion").is_some_and(|v| !v.is_null()) || attempt == 3 {
                break case;
            }
            note("the case is not settled yet: invoking again in 2 s");
            tokio::time::sleep(Duration::from_secs(2)).await;
        };
        field("gateway shows", format!("{}, suggestion {}", s(&case, "status"), show::suggestion(&case)));
        ensure(case.get("suggestion") == remote.get("suggestion") && s(&case, "status") == "SUGGESTED", || {
            format!(
                "after the reconciler the gateway shows {} / {}, the sandbox {}",
                s(&case, "status"),
                show::suggestion(&case),
                show::suggestion(&remote)
            )
        })?;
        let view = self.stack.get_case(&id).await?;
        let reconciled = events(&view).into_iter().find(|e| s(e, "kind") == "RECONCILED").ok_or_else(|| {
            Failure("the case's suggestion changed but its timeline has no RECONCILED event".to_owned())
        })?;
        ensure(s(&reconciled, "source") == "RECONCILER", || {
            format!("the RECONCILED event's source is {}, expected RECONCILER", s(&reconciled, "source"))
        })?;
        ok(format!("the suggestion equals the sandbox's, recorded as RECONCILED at {}", s(&reconciled, "at")));
        Ok(id)
    }

    /// The dropped case when the create gave no id: nothing can link it (Cabital has no
    /// search by external id) until Cabital resends the webhook; it is never sent again.
    async fn dropped_without_id(&self, id: &str) -> Result<String> {
        let ext = format!("local-walk-{}-dropped", self.run);
        let found = self.lookup(&ext).await?;
        field("gateway shows", format!("reservation {}", s(&found, "state")));
        ensure(s(&found, "state") == "UNKNOWN", || format!("expected the reservation UNKNOWN, got {found}"))?;
        header(6, STEPS, "The reconciler cannot link it; Cabital resends the webhook");
        self.invoke_reconcile()?;
        ensure(s(&self.lookup(&ext).await?, "state") == "UNKNOWN", || {
            "the reservation changed without an id".to_owned()
        })?;
        self.one_case_at_cabital(&ext).await?;
        let remote = self.stack.sandbox_case(id).await?;
        let comment = s(&remote, "suggestion_comment").to_owned();
        self.suggest_at_cabital(id, s(&remote, "suggestion"), &comment).await?;
        let (_, _, case) = self.wait_for_webhook(id).await?;
        let found = self.lookup(&ext).await?;
        ensure(s(&found, "state") == "CREATED" && s(&found, "caseSystemId") == id, || {
            format!("the resent webhook did not link the reservation: {found}")
        })?;
        ok(format!("linked by the resent webhook; the gateway shows {}", show::suggestion(&case)));
        Ok(id.to_owned())
    }

    /// Creates the second case while webhooks are dropped and waits until the sandbox
    /// has screened it (and so dropped its webhook). Returns its id and when it was created.
    async fn create_dropped(&self) -> Result<(String, Instant)> {
        let ext = format!("local-walk-{}-dropped", self.run);
        field("externalCaseId", &ext);
        field("screening", "INDIVIDUAL \"Ivan Blocklisted\" (on the sandbox's made-up sanctions list)");
        let created_at = Instant::now();
        let id = match self.create(&ext, &new_case(&ext, "Ivan Blocklisted")).await? {
            Some(id) => id,
            None => self.cabital_id_of(&ext).await?,
        };
        if self.mode == "no-screening" {
            self.suggest_at_cabital(&id, "SUGGEST_TO_REJECT", "Matched list Sandbox OFAC SDN").await?;
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let state = self.stack.sandbox_get(&format!("/_sandbox/cases/{id}")).await?;
            let notifications = state.get("notifications").and_then(Value::as_array).cloned().unwrap_or_default();
            if let Some(n) = notifications.first() {
                let (made, dropped) = (n.get("deliveries"), n.get("dropped"));
                ensure(made.is_some() && made == dropped, || {
                    format!("the sandbox was to drop the webhook but sent it: {n}")
                })?;
                field(
                    "sandbox",
                    format!(
                        "screened it, and dropped its webhook ({} of {})",
                        show::text(n, "dropped"),
                        show::text(n, "deliveries")
                    ),
                );
                return Ok((id, created_at));
            }
            ensure(Instant::now() < deadline, || {
                format!("the sandbox did not screen {id} within {} s", self.timeout.as_secs())
            })?;
            tokio::time::sleep(POLL).await;
        }
    }

    /// `cargo lambda invoke reconcile --data-file ... -A HOST -P PORT`: the summary.
    fn invoke_reconcile(&self) -> Result<Value> {
        note(format!("$ {}", self.stack.reconciler.command_line()));
        let started = Instant::now();
        let summary = self.stack.reconciler.invoke()?;
        note(format!("-> answered in {:.1} s", started.elapsed().as_secs_f64()));
        Ok(summary)
    }

    // ------------------------------------------------------------ the work queue

    /// `GET /v1/cases?awaiting=decision` lists a walked case exactly when it has a
    /// suggestion and no decision.
    async fn work_queue(&self, ids: &[&str]) -> Result<()> {
        let queued: Vec<(String, String)> = self
            .listed("awaiting=decision")
            .await?
            .iter()
            .map(|c| (s(c, "caseSystemId").to_owned(), s(c, "suggestion").to_owned()))
            .collect();
        // Given up for want of a suggestion (the case's own `attention`) and undecided.
        let given_up: Vec<String> =
            self.listed("attention=no_suggestion").await?.iter().map(|c| s(c, "caseSystemId").to_owned()).collect();
        let mut expected = Vec::new();
        for id in ids {
            let case = self.stack.get_case(id).await?.get("case").cloned().unwrap_or(Value::Null);
            let flagged = case.pointer("/attention/reason").and_then(Value::as_str) == Some("no_suggestion");
            if flagged && !case.get("decision").is_some_and(Value::is_string) {
                expected.push((*id).to_owned());
            }
        }
        let walked: Vec<String> = given_up.into_iter().filter(|id| ids.contains(&id.as_str())).collect();
        ensure(walked == expected, || {
            format!("attention=no_suggestion lists {walked:?} of the walked cases, expected {expected:?}")
        })?;
        // Every creation of the walk is linked by now: none is flagged unknown.
        let unknown = self.listed("attention=unknown_creation").await?;
        let ours: Vec<&str> =
            unknown.iter().map(|c| s(c, "externalCaseId")).filter(|e| e.contains(&self.run)).collect();
        ensure(ours.is_empty(), || format!("attention=unknown_creation still lists {ours:?}"))?;
        for id in ids {
            let view = self.stack.get_case(id).await?;
            let case = view.get("case").cloned().unwrap_or(Value::Null);
            let awaiting = case.get("suggestion").is_some_and(Value::is_string)
                && !case.get("decision").is_some_and(Value::is_string);
            let listed = queued.iter().find(|(q, _)| q == id);
            ensure(listed.is_some() == awaiting, || {
                format!(
                    "case {id} (suggestion {}, decision {}): in the work queue: {}",
                    show::text(&case, "suggestion"),
                    show::text(&case, "decision"),
                    listed.is_some()
                )
            })?;
            if let Some((_, suggestion)) = listed {
                ensure(suggestion == s(&case, "suggestion"), || format!("case {id}: queued as {suggestion}"))?;
            }
        }
        ok(format!(
            "the work queue (GET /v1/cases?awaiting=decision) lists {} case(s); each walked case is there exactly when suggested and undecided; ?attention= flags {} of them given up and no unknown creation",
            queued.len(),
            expected.len()
        ));
        Ok(())
    }

    /// Each case's evidence export (`GET /v1/cases/{id}/evidence`) verifies offline, and
    /// holds exactly its timeline.
    async fn evidence(&self, ids: &[&str]) -> Result<()> {
        for id in ids {
            let export = self.stack.api_call(Method::GET, &format!("/v1/cases/{id}/evidence"), None).await?;
            let export = export.expect(200, "the evidence export")?;
            let verified = gateway_evidence::verify(&export).map_err(|b| Failure(format!("case {id}: {b}")))?;
            let shown = self.stack.get_case(id).await?;
            let timeline = events(&shown).len();
            ensure(verified.events == timeline, || {
                format!("case {id}: the evidence export holds {} events, the timeline {timeline}", verified.events)
            })?;
            ok(format!(
                "case {id}: the evidence export verifies: {} events, one chain, head {}",
                verified.events,
                &verified.head[..12]
            ));
        }
        Ok(())
    }

    /// Each case shows until when it is kept (`retainedUntil`): its last write plus
    /// `RETENTION_DAYS` (and less than the slack more); every item of it in the table
    /// carries that TTL or later.
    async fn kept(&self, ids: &[&str]) -> Result<()> {
        for id in ids {
            let view = self.stack.get_case(id).await?;
            let case = view.get("case").cloned().unwrap_or(Value::Null);
            let shown = gateway_store::parse_time(s(&case, "retainedUntil"))
                .ok_or_else(|| Failure(format!("case {id}: no retainedUntil in {case}")))?;
            let Some(store) = &self.store else {
                ok(format!("case {id}: kept until {}", s(&case, "retainedUntil")));
                continue;
            };
            let case_id = id.parse().map_err(|_| Failure(format!("{id} is not a case id")))?;
            let held = crate::retention::check(store, &case_id, self.retention).await?;
            ensure(held.bound == shown, || {
                format!("case {id}: retainedUntil {shown}, the table's bound {}", held.bound)
            })?;
            ok(format!(
                "case {id}: kept until {} (RETENTION_DAYS={} after its last write); its {} items carry that TTL or later",
                s(&case, "retainedUntil"),
                self.retention.as_days(),
                held.items
            ));
        }
        Ok(())
    }

    /// `DELETE /v1/cases/{id}/personal-data`: the case keeps its ids and state, loses its
    /// personal data, gets an ERASED event; its evidence still verifies; a repeat is a
    /// no-op.
    async fn erasure(&self, id: &str) -> Result<()> {
        let path = format!("/v1/cases/{id}/personal-data");
        let erased = self.stack.api_call(Method::DELETE, &path, None).await?.expect(200, "the erasure")?;
        ensure(erased.get("alreadyErased") == Some(&json!(false)), || format!("first erasure: {erased}"))?;
        let view = self.stack.get_case(id).await?;
        let timeline = events(&view);
        let kinds: Vec<&str> = timeline.iter().map(|e| s(e, "kind")).collect();
        ensure(kinds.last() == Some(&"ERASED"), || format!("case {id}: no ERASED event last: {kinds:?}"))?;
        let created = timeline.iter().find(|e| s(e, "kind") == "CREATED").cloned().unwrap_or(Value::Null);
        let submitted = created.pointer("/details/submitted").cloned().unwrap_or(Value::Null);
        ensure(submitted == Value::Null || submitted == json!("[erased]"), || {
            format!("case {id}: the submitted body is still there after the erasure")
        })?;
        let export = self.stack.api_call(Method::GET, &format!("/v1/cases/{id}/evidence"), None).await?;
        let export = export.expect(200, "the evidence export")?;
        let verified =
            gateway_evidence::verify(&export).map_err(|b| Failure(format!("case {id} after erasure: {b}")))?;
        let again = self.stack.api_call(Method::DELETE, &path, None).await?.expect(200, "the erasure again")?;
        ensure(again.get("alreadyErased") == Some(&json!(true)), || format!("second erasure: {again}"))?;
        ok(format!(
            "case {id}: personal data erased ({} items), ERASED event last, evidence still verifies ({} events, {} erased), a repeat is a no-op",
            erased.get("itemsErased").and_then(Value::as_u64).unwrap_or(0),
            verified.events,
            verified.erased
        ));
        Ok(())
    }

    /// Every entry of `GET /v1/cases?<query>`, all pages.
    async fn listed(&self, query: &str) -> Result<Vec<Value>> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..100 {
            let path = match &cursor {
                Some(c) => format!("/v1/cases?{query}&limit=100&cursor={c}"),
                None => format!("/v1/cases?{query}&limit=100"),
            };
            let page = self.stack.api_call(Method::GET, &path, None).await?.expect(200, query)?;
            all.extend(page.get("cases").and_then(Value::as_array).into_iter().flatten().cloned());
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        Ok(all)
    }

    // ------------------------------------------------------------ events out

    /// Every event of the cases' timelines arrived on the consumer's queue, valid
    /// against its schema, in version order.
    async fn events_arrived(&self, ids: &[&str], queue: &str, template: &std::path::Path) -> Result<()> {
        let store = self.store.as_ref().ok_or_else(|| Failure("--events-queue needs --table".into()))?;
        let source = crate::pipe::PipeSpec::from_template(template)?.source;
        let schemas_dir = template.parent().and_then(std::path::Path::parent).unwrap_or(std::path::Path::new("."));
        let schemas = crate::events::Schemas::load(&schemas_dir.join("docs/events"))?;
        let sdk = aws::config().await?;
        let url = crate::setup::queue_url(&sdk, queue).await?;
        let mut inbox = crate::events::Inbox::new(&sdk, &url);
        let mut timelines = Vec::new();
        for id in ids {
            let case: CaseSystemId = id.parse().map_err(|_| Failure(format!("`{id}` is not a case id")))?;
            timelines.push((case, crate::events::timeline(store, &case).await?));
        }
        ensure(timelines.iter().all(|(_, t)| t.len() >= 2), || "a walked case's timeline is missing".to_owned())?;
        let tally = crate::events::check(&mut inbox, &schemas, &source, &timelines, true, self.timeout).await?;
        let phantoms = crate::events::phantoms(&inbox, &timelines);
        ensure(phantoms.is_empty(), || format!("events on the bus that no timeline holds: {phantoms:?}"))?;
        for (case, events) in &timelines {
            let line: Vec<String> = events
                .iter()
                .map(|e| format!("{} v{}", e.kind, show::text(&inbox.arrived[&e.event_id].detail, "caseVersion")))
                .collect();
            note(format!("{case}: {}", line.join(", ")));
        }
        ok(format!(
            "{} timeline events, each on the bus ({} more than once, same id), valid against docs/events/, in version order",
            tally.events, tally.repeated
        ));
        Ok(())
    }

    // ------------------------------------------------------------ timelines

    async fn timeline(&self, id: &str, what: &str, must: &[&str], must_not: &[&str]) -> Result<()> {
        let view = self.stack.get_case(id).await?;
        let case = view.get("case").cloned().unwrap_or(Value::Null);
        let events = events(&view);
        println!("\n   {what}: {} (caseSystemId {id})", s(&case, "externalCaseId"));
        println!(
            "   now {}, suggestion {}, decision {}, ongoing screening {}",
            s(&case, "status"),
            show::text(&case, "suggestion"),
            show::text(&case, "decision"),
            if case.get("ogs") == Some(&json!(true)) { "on" } else { "off" },
        );
        show::timeline(&events);
        let kinds: Vec<&str> = events.iter().map(|e| s(e, "kind")).collect();
        for kind in must {
            ensure(kinds.contains(kind), || format!("{what}: no {kind} event in its timeline ({})", kinds.join(", ")))?;
        }
        for kind in must_not {
            ensure(!kinds.contains(kind), || format!("{what}: unexpected {kind} event in its timeline"))?;
        }
        let ats: Vec<&str> = events.iter().map(|e| s(e, "at")).collect();
        ensure(ats.windows(2).all(|w| w[0] <= w[1]), || format!("{what}: the timeline is not in time order"))?;
        if let Some(store) = &self.store {
            let case_id: CaseSystemId = id.parse().map_err(|_| Failure(format!("`{id}` is not a case id")))?;
            let page = store
                .timeline(&case_id, gateway_store::TimelineOrder::Oldest, gateway_store::MAX_TIMELINE_PAGE, None)
                .await
                .map_err(|e| Failure(format!("reading {id}'s events from the table: {e}")))?;
            let in_table: Vec<&str> = page.events.iter().map(|e| e.event_id.as_str()).collect();
            let shown: Vec<&str> = events.iter().map(|e| s(e, "eventId")).collect();
            ensure(in_table == shown, || {
                format!("{what}: the API shows events {shown:?}, the table holds {in_table:?}")
            })?;
            note(format!("(the table holds exactly these {} events)", in_table.len()));
        }
        Ok(())
    }
}

/// Sleeps until `due` unless it has passed, saying how long and `why`.
async fn wait_until(due: Instant, why: String) {
    let wait = due.saturating_duration_since(Instant::now());
    if !wait.is_zero() {
        note(format!("waiting {:.1} s{why}", wait.as_secs_f64()));
        tokio::time::sleep(wait).await;
    }
}

/// The timeline of a `GET /v1/cases/{id}` answer.
fn events(view: &Value) -> Vec<Value> {
    view.get("timeline").and_then(Value::as_array).cloned().unwrap_or_default()
}

/// A new individual case as the API takes it.
fn new_case(external_case_id: &str, full_name: &str) -> Value {
    json!({
        "externalCaseId": external_case_id,
        "screenType": "INDIVIDUAL",
        "fullName": full_name,
        "individualInfo": {"gender": "MALE", "dob": "1990-04-01", "nationality": "GBR", "residentialCountry": "GBR"},
        "organizationInfo": {}
    })
}

/// `--retention-days`: the functions' `RETENTION_DAYS` (default the functions' default).
pub(crate) fn retention_days(args: &Args) -> Result<gateway_store::Retention> {
    let days = args.number("retention-days", u64::from(gateway_store::Retention::DEFAULT_DAYS))?;
    u32::try_from(days)
        .ok()
        .and_then(gateway_store::Retention::days)
        .ok_or_else(|| Failure(format!("--retention-days: {days} is not 1 to 36500")))
}
