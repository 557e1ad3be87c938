//! `infra/template.yaml` held against the code.
//!
//! - the table equals `gateway_store::table_definition()` (keys, attributes, indexes,
//!   billing, time to live), with point-in-time recovery, encryption, and deletion
//!   protection in prod;
//! - a partner's own KMS key (`KmsKeyArn`), when given, encrypts the table, the secret
//!   and every log group, and is granted only through Secrets Manager;
//! - IAM: no wildcard action, no wildcard resource, and each function's role grants
//!   exactly what its code uses (declared below, with pointers into the code);
//! - the only route without IAM auth is `POST /webhooks/cabital`;
//! - the webhook route throttled on its own limits, reserved concurrency per function
//!   (the reconciler exactly 1);
//! - every function is a cargo-lambda build on `provided.al2023`, with its own log
//!   group (with retention); the alarms and outputs of issue 6 exist;
//! - every function keeps cases `RETENTION_DAYS` from one parameter with the code's
//!   range and default, and the table deletes by the TTL attribute the store writes.
//!
//! Each check returns its violations, so that the `*_caught` tests can break every
//! rule once on an in-memory copy and see it fail. `INFRA_TEMPLATE=path` checks another
//! file (a copy you broke by hand, say).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use gateway_runtime::metrics::Unit;
use gateway_store::{ATTENTION_INDEX, KeyElement, OGS_INDEX, QUEUE_INDEX, table_definition};
use serde_json::{Map, Value, json};

// ------------------------------------------------------------------ what the code uses

/// The parameter naming the partner's own KMS key (empty: AWS-managed keys).
const KMS_KEY: &str = "KmsKeyArn";

/// A DynamoDB grant: an action on the table or on one of its indexes.
#[derive(Debug, Clone, Copy)]
enum On {
    Table,
    Index(&'static str),
}

/// The table's item actions every function needs (shared/store/src):
/// - `GetItem`: `Store::get_item` (store.rs), behind `get_case`, `get_external` and the
///   webhook de-duplication read (webhook.rs);
/// - `PutItem`: `reserve_external_id` (store.rs), and every `Put` inside
///   `TransactWriteItems` (`tx_put`: new cases, events, de-duplication items);
/// - `UpdateItem`: `update_item` (store.rs: mark_unknown / mark_rejected /
///   expire_pending / resolve_unknown, cases.rs: apply_remote_state), and every
///   `Update` inside `TransactWriteItems` (`tx_update`).
///
/// A transaction needs no action of its own: IAM authorises each of its entries as the
/// matching item action (there is no `dynamodb:TransactWriteItems` action). The store
/// never writes a `ConditionCheck` (no `ConditionCheckItem`), never deletes, scans or
/// batches. `create_table` / `describe_table` (schema.rs) are for tests and the local
/// stack only.
const ITEM_ACTIONS: [(&str, On); 3] =
    [("dynamodb:GetItem", On::Table), ("dynamodb:PutItem", On::Table), ("dynamodb:UpdateItem", On::Table)];

/// The DynamoDB actions of each function, beyond [`ITEM_ACTIONS`].
fn extra_dynamodb_actions(function: &str) -> Vec<(&'static str, On)> {
    match function {
        // functions/cases-api -> gateway_service::Gateway (shared/service/src/gateway.rs):
        // create / get / find / ogs / decide / refresh. `get_case` reads the timeline,
        // `Store::timeline` (cases.rs): a Query on the table itself, no index.
        // The work queue, `Store::awaiting_decision` (store/src/queue.rs): the queue index.
        "CasesApiFunction" => vec![("dynamodb:Query", On::Table), ("dynamodb:Query", On::Index(QUEUE_INDEX))],
        // functions/webhook -> Gateway::receive_webhook (shared/service/src/webhook.rs):
        // `record_webhook` (store/src/webhook.rs), `resolve_unknown`, then `refresh`.
        // No Query at all.
        "WebhookFunction" => vec![],
        // functions/reconcile -> Gateway::reconcile (shared/service/src/reconcile.rs):
        // `urgent_attention` / `awaiting_since_before` (attention index) and
        // `ogs_checked_before` (ogs index), store/src/index.rs; never the table itself.
        "ReconcileFunction" => {
            vec![("dynamodb:Query", On::Index(ATTENTION_INDEX)), ("dynamodb:Query", On::Index(OGS_INDEX))]
        }
        _ => vec![],
    }
}

/// The functions, each with its crate's folder under `functions/`.
const FUNCTIONS: [(&str, &str); 3] =
    [("CasesApiFunction", "cases-api"), ("WebhookFunction", "webhook"), ("ReconcileFunction", "reconcile")];

/// The cases API's routes (functions/cases-api/src/lib.rs, `route`), all IAM-signed.
const CASES_API_ROUTES: [(&str, &str); 8] = [
    ("POST", "/v1/cases"),
    ("GET", "/v1/cases"),
    ("GET", "/v1/cases/{caseSystemId}"),
    ("POST", "/v1/cases/{caseSystemId}/ogs"),
    ("DELETE", "/v1/cases/{caseSystemId}/ogs"),
    ("POST", "/v1/cases/{caseSystemId}/decision"),
    ("GET", "/v1/cases/{caseSystemId}/evidence"),
    ("DELETE", "/v1/cases/{caseSystemId}/personal-data"),
];

/// The one public route: Cabital cannot sign with SigV4; the function verifies its
/// HMAC signature (functions/webhook/src/lib.rs).
const PUBLIC_ROUTE: (&str, &str) = ("POST", "/webhooks/cabital");

/// Custom-metric alarms issue 6 asks for, with the crate whose code emits the metric
/// (through `gateway_runtime::metrics::emit`, which also publishes every metric without
/// dimensions: so these alarms use none).
const CUSTOM_METRIC_ALARMS: [(&str, &str); 4] = [
    ("WebhookRefused", "webhook"),
    ("ReconcileBacklog", "reconcile"),
    ("ReconcileNoSuggestionGivenUp", "reconcile"),
    ("CasesApi5xx", "cases-api"),
];

// ------------------------------------------------------------------ the template

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn repo_template() -> PathBuf {
    repo_root().join("infra/template.yaml")
}

fn template_path() -> PathBuf {
    std::env::var_os("INFRA_TEMPLATE").map(PathBuf::from).unwrap_or_else(repo_template)
}

/// The template as CloudFormation's JSON form: `!Ref X` becomes `{"Ref": "X"}`,
/// `!GetAtt A.B` `{"Fn::GetAtt": ["A", "B"]}`, `!Sub s` `{"Fn::Sub": "s"}`, and so on.
fn load() -> Value {
    load_from(&template_path())
}

fn load_from(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let yaml: serde_norway::Value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    to_json(yaml)
}

fn to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                json!(i)
            } else if let Some(u) = n.as_u64() {
                json!(u)
            } else {
                json!(n.as_f64())
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Y::Mapping(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let key = match to_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!').to_owned();
            let inner = to_json(tagged.value);
            let (key, value) = match name.as_str() {
                "Ref" | "Condition" => (name.clone(), inner),
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let (resource, attribute) = s.split_once('.').unwrap_or((&s, ""));
                        ("Fn::GetAtt".to_owned(), json!([resource, attribute]))
                    }
                    other => ("Fn::GetAtt".to_owned(), other),
                },
                _ => (format!("Fn::{name}"), inner),
            };
            Value::Object(Map::from_iter([(key, value)]))
        }
    }
}

fn resources(t: &Value) -> &Map<String, Value> {
    t["Resources"].as_object().expect("the template has Resources")
}

fn of_type<'t>(t: &'t Value, ty: &str) -> Vec<(&'t str, &'t Value)> {
    resources(t).iter().filter(|(_, r)| r["Type"] == ty).map(|(k, r)| (k.as_str(), r)).collect()
}

fn type_of<'t>(t: &'t Value, name: &str) -> Option<&'t str> {
    resources(t).get(name).and_then(|r| r["Type"].as_str())
}

/// A function's property, or the Globals' when it has none.
fn fn_prop<'t>(t: &'t Value, function: &str, prop: &str) -> &'t Value {
    let own = &t["Resources"][function]["Properties"][prop];
    if own.is_null() { &t["Globals"]["Function"][prop] } else { own }
}

/// `{"Ref": X}` -> X.
fn ref_of(v: &Value) -> Option<&str> {
    v.get("Ref").and_then(Value::as_str)
}

/// `{"Fn::GetAtt": [X, attribute]}` -> X.
fn get_att_of<'v>(v: &'v Value, attribute: &str) -> Option<&'v str> {
    let parts = v.get("Fn::GetAtt")?.as_array()?;
    (parts.len() == 2 && parts[1] == attribute).then(|| parts[0].as_str()).flatten()
}

/// A string, or one element or a list of them, as a list.
fn one_or_many(v: &Value) -> Vec<&Value> {
    match v {
        Value::Null => vec![],
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// The table the functions use: the one `TABLE_NAME` names.
fn table_name(t: &Value) -> Option<String> {
    ref_of(&t["Globals"]["Function"]["Environment"]["Variables"]["TABLE_NAME"]).map(str::to_owned)
}

// ------------------------------------------------------------------ (a) the table

fn key_schema(keys: &[KeyElement]) -> Value {
    keys.iter().map(|k| json!({"AttributeName": k.attribute_name, "KeyType": k.key_type.as_str()})).collect()
}

/// The four properties the store defines, in CloudFormation's shape; attributes and
/// indexes sorted by name (their order means nothing to DynamoDB).
fn expected_table() -> Value {
    let def = table_definition();
    let mut attributes: Vec<Value> = def
        .attribute_definitions
        .iter()
        .map(|a| json!({"AttributeName": a.attribute_name, "AttributeType": a.attribute_type}))
        .collect();
    attributes.sort_by_key(|a| a["AttributeName"].to_string());
    let mut indexes: Vec<Value> = def
        .global_secondary_indexes
        .iter()
        .map(|i| {
            json!({
                "IndexName": i.index_name,
                "KeySchema": key_schema(&i.key_schema),
                "Projection": if i.non_key_attributes.is_empty() {
                    json!({"ProjectionType": i.projection_type})
                } else {
                    json!({"ProjectionType": i.projection_type, "NonKeyAttributes": i.non_key_attributes})
                },
            })
        })
        .collect();
    indexes.sort_by_key(|i| i["IndexName"].to_string());
    json!({
        "BillingMode": def.billing_mode,
        "KeySchema": key_schema(&def.key_schema),
        "AttributeDefinitions": attributes,
        "GlobalSecondaryIndexes": indexes,
        "TimeToLiveSpecification": {"AttributeName": def.time_to_live_attribute, "Enabled": true},
        "StreamSpecification": {"StreamViewType": def.stream_view_type},
    })
}

fn sorted_by(v: &Value, key: &str) -> Value {
    let mut items = v.as_array().cloned().unwrap_or_default();
    items.sort_by_key(|i| i[key].to_string());
    Value::Array(items)
}

fn the_table(t: &Value) -> Result<(&str, &Value), String> {
    match of_type(t, "AWS::DynamoDB::Table").as_slice() {
        [one] => Ok(*one),
        other => Err(format!("expected exactly one AWS::DynamoDB::Table, found {}", other.len())),
    }
}

fn check_table_definition(t: &Value) -> Vec<String> {
    let (name, table) = match the_table(t) {
        Ok(found) => found,
        Err(e) => return vec![e],
    };
    let mut violations = Vec::new();
    if table_name(t).as_deref() != Some(name) {
        violations.push(format!("TABLE_NAME must be !Ref {name}"));
    }
    let p = &table["Properties"];
    let actual = json!({
        "BillingMode": p["BillingMode"],
        "KeySchema": p["KeySchema"],
        "AttributeDefinitions": sorted_by(&p["AttributeDefinitions"], "AttributeName"),
        "GlobalSecondaryIndexes": sorted_by(&p["GlobalSecondaryIndexes"], "IndexName"),
        "TimeToLiveSpecification": p["TimeToLiveSpecification"],
        "StreamSpecification": p["StreamSpecification"],
    });
    let expected = expected_table();
    for key in [
        "BillingMode",
        "KeySchema",
        "AttributeDefinitions",
        "GlobalSecondaryIndexes",
        "TimeToLiveSpecification",
        "StreamSpecification",
    ] {
        if actual[key] != expected[key] {
            violations.push(format!(
                "{name}.{key} differs from gateway_store::table_definition()\n  template: {}\n  code:     {}",
                actual[key], expected[key]
            ));
        }
    }
    for absent in ["LocalSecondaryIndexes", "ProvisionedThroughput"] {
        if !p[absent].is_null() {
            violations.push(format!("{name}.{absent} is not in gateway_store::table_definition()"));
        }
    }
    violations
}

// ------------------------------------------------------------------ (b) its protection

fn check_table_protection(t: &Value) -> Vec<String> {
    let (name, table) = match the_table(t) {
        Ok(found) => found,
        Err(e) => return vec![e],
    };
    let p = &table["Properties"];
    let mut violations = Vec::new();
    if p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] != true {
        violations.push(format!("{name}: point-in-time recovery must be on"));
    }
    if p["SSESpecification"]["SSEEnabled"] != true {
        violations.push(format!("{name}: SSESpecification.SSEEnabled must be true"));
    }
    // DeletionProtectionEnabled: !If [IsProd, true, false], IsProd: !Equals [!Ref Stage, prod].
    let protection = &p["DeletionProtectionEnabled"]["Fn::If"];
    let conditional = protection.as_array().is_some_and(|a| a.len() == 3 && a[1] == true && a[2] == false);
    let condition = protection[0].as_str().map(|c| &t["Conditions"][c]["Fn::Equals"]);
    let on_prod = condition.is_some_and(|eq| {
        let sides = eq.as_array().map(Vec::as_slice).unwrap_or_default();
        sides.len() == 2 && sides.iter().any(|s| ref_of(s) == Some("Stage")) && sides.iter().any(|s| s == "prod")
    });
    if !(conditional && on_prod) {
        violations.push(format!(
            "{name}: DeletionProtectionEnabled must be !If [<condition Stage = prod>, true, false], is {}",
            p["DeletionProtectionEnabled"]
        ));
    }
    let stages = &t["Parameters"]["Stage"]["AllowedValues"];
    if !stages.as_array().is_some_and(|a| a.iter().any(|s| s == "prod")) {
        violations.push("the Stage parameter must allow prod".into());
    }
    if table["DeletionPolicy"] != "Retain" || table["UpdateReplacePolicy"] != "Retain" {
        violations.push(format!("{name}: DeletionPolicy and UpdateReplacePolicy must be Retain"));
    }
    violations
}

// ------------------------------------------------------------------ (c) IAM

/// Every policy document in the template, with where it is.
fn policy_documents(t: &Value) -> Vec<(String, &Value)> {
    let mut docs = Vec::new();
    for (name, r) in resources(t) {
        let p = &r["Properties"];
        match r["Type"].as_str().unwrap_or_default() {
            "AWS::IAM::Role" => {
                for (i, policy) in one_or_many(&p["Policies"]).into_iter().enumerate() {
                    docs.push((format!("{name}.Policies[{i}]"), &policy["PolicyDocument"]));
                }
                docs.push((format!("{name}.AssumeRolePolicyDocument"), &p["AssumeRolePolicyDocument"]));
            }
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::SQS::QueuePolicy" | "AWS::SNS::TopicPolicy" => {
                docs.push((format!("{name}.PolicyDocument"), &p["PolicyDocument"]));
            }
            "AWS::Serverless::Function" => {
                for (i, policy) in one_or_many(&p["Policies"]).into_iter().enumerate() {
                    docs.push((format!("{name}.Policies[{i}]"), policy));
                }
            }
            _ => {}
        }
    }
    docs
}

/// A document's statements; a conditional one (`!If [cond, statement, !Ref AWS::NoValue]`)
/// counts as its statement, so that what it would grant is checked too.
fn statements(doc: &Value) -> Vec<&Value> {
    one_or_many(&doc["Statement"])
        .into_iter()
        .flat_map(|s| match s["Fn::If"].as_array() {
            Some(branches) => branches.iter().skip(1).filter(|b| b.is_object() && b.get("Ref").is_none()).collect(),
            None => vec![s],
        })
        .collect()
}

/// Every string inside a value (literal or inside an intrinsic function).
fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(m) => m.values().flat_map(strings).collect(),
        _ => vec![],
    }
}

/// No `*` in any action, resource or principal, anywhere; no NotAction / NotResource.
fn check_no_wildcards(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    for (place, doc) in policy_documents(t) {
        for s in statements(doc) {
            let sid = s["Sid"].as_str().unwrap_or("?");
            for not in ["NotAction", "NotResource", "NotPrincipal"] {
                if !s[not].is_null() {
                    violations.push(format!("{place} ({sid}): {not} grants everything else"));
                }
            }
            for action in one_or_many(&s["Action"]) {
                if action.as_str().is_none_or(|a| a.contains('*')) {
                    violations.push(format!("{place} ({sid}): wildcard or unnamed action {action}"));
                }
            }
            for resource in one_or_many(&s["Resource"]) {
                if strings(resource).iter().any(|s| s.contains('*')) {
                    violations.push(format!("{place} ({sid}): wildcard resource {resource}"));
                }
            }
            if strings(&s["Principal"]).contains(&"*") {
                violations.push(format!("{place} ({sid}): principal *"));
            }
        }
    }
    violations
}

/// A resource ARN as the logical id it names: `!GetAtt X.Arn` and `!Ref X` -> `X`,
/// `!Sub ${X.Arn}/rest` -> `X/rest`; anything else is refused.
fn named_resource(t: &Value, v: &Value) -> Result<String, String> {
    if let Some(x) = get_att_of(v, "Arn").or_else(|| ref_of(v)) {
        return match type_of(t, x) {
            Some(_) => Ok(x.to_owned()),
            None => Err(format!("{v} names no resource of this template")),
        };
    }
    if let Some(sub) = v.get("Fn::Sub").and_then(Value::as_str)
        && let Some(rest) = sub.strip_prefix("${")
        && let Some((att, suffix)) = rest.split_once('}')
        && let Some(x) = att.strip_suffix(".Arn")
        && type_of(t, x).is_some()
        && !suffix.contains("${")
    {
        return Ok(format!("{x}{suffix}"));
    }
    Err(format!("{v} is not an ARN of this template's resources"))
}

/// What a role allows: (lowercased action, named resource). A resource this test
/// cannot read is a violation, so that nothing slips through unread.
fn grants(t: &Value, role: &str) -> (BTreeSet<(String, String)>, Vec<String>) {
    let mut out = BTreeSet::new();
    let mut violations = Vec::new();
    let p = &t["Resources"][role]["Properties"];
    if !p["ManagedPolicyArns"].is_null() {
        violations.push(format!("{role}: ManagedPolicyArns grant what this test cannot see (e.g. logs:* on *)"));
    }
    for policy in one_or_many(&p["Policies"]) {
        for s in statements(&policy["PolicyDocument"]) {
            if s["Effect"] != "Allow" {
                continue;
            }
            for action in one_or_many(&s["Action"]) {
                for resource in one_or_many(&s["Resource"]) {
                    // The partner's own KMS key is a parameter, not a resource of ours.
                    if ref_of(resource) == Some(KMS_KEY) {
                        out.insert((action.as_str().unwrap_or_default().to_ascii_lowercase(), KMS_KEY.to_owned()));
                        continue;
                    }
                    match named_resource(t, resource) {
                        Ok(r) => {
                            out.insert((action.as_str().unwrap_or_default().to_ascii_lowercase(), r));
                        }
                        Err(e) => violations.push(format!("{role}: {e}")),
                    }
                }
            }
        }
    }
    (out, violations)
}

/// What a function must be granted, from what its code uses.
fn expected_grants(t: &Value, function: &str) -> Result<BTreeSet<(String, String)>, String> {
    let table = table_name(t).ok_or("TABLE_NAME is not a !Ref to the table")?;
    let secret = ref_of(&fn_prop(t, function, "Environment")["Variables"]["CABITAL_SECRET_ID"])
        .or_else(|| ref_of(&t["Globals"]["Function"]["Environment"]["Variables"]["CABITAL_SECRET_ID"]))
        .ok_or("CABITAL_SECRET_ID is not a !Ref to the secret")?
        .to_owned();
    if type_of(t, &secret) != Some("AWS::SecretsManager::Secret") {
        return Err(format!("CABITAL_SECRET_ID names {secret}, not an AWS::SecretsManager::Secret"));
    }
    let log_group = ref_of(&t["Resources"][function]["Properties"]["LoggingConfig"]["LogGroup"])
        .ok_or_else(|| format!("{function}: LoggingConfig.LogGroup must be !Ref its log group"))?
        .to_owned();

    let grant = |action: &str, resource: String| (action.to_ascii_lowercase(), resource);
    let mut want = BTreeSet::new();
    // Its own logs, and nothing else of CloudWatch Logs: the group exists already.
    want.insert(grant("logs:CreateLogStream", log_group.clone()));
    want.insert(grant("logs:PutLogEvents", log_group));
    // All three sign (cases-api, reconcile) or verify (webhook) with the Cabital secret:
    // gateway_signing::CredentialStore (shared/signing/src/credentials.rs).
    want.insert(grant("secretsmanager:GetSecretValue", secret));
    // ... which, under the partner's own key, is decrypted with the caller's rights.
    want.insert(grant("kms:Decrypt", KMS_KEY.to_owned()));
    for (action, on) in ITEM_ACTIONS.into_iter().chain(extra_dynamodb_actions(function)) {
        let resource = match on {
            On::Table => table.clone(),
            On::Index(index) => format!("{table}/index/{index}"),
        };
        want.insert(grant(action, resource));
    }
    // A failed asynchronous invocation goes to its on-failure destination with the
    // function's own role.
    let destination = &t["Resources"][function]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"];
    if destination["Type"] == "SQS" {
        let queue = named_resource(t, &destination["Destination"])?;
        want.insert(grant("sqs:SendMessage", queue));
    }
    Ok(want)
}

fn check_function_permissions(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let mut roles_seen = BTreeMap::new();
    for (function, _) in of_type(t, "AWS::Serverless::Function") {
        let p = &t["Resources"][function]["Properties"];
        if !p["Policies"].is_null() {
            violations.push(format!(
                "{function}: SAM Policies attach AWSLambdaBasicExecutionRole (logs:* on *); give it its own Role"
            ));
        }
        let Some(role) = get_att_of(&p["Role"], "Arn").filter(|r| type_of(t, r) == Some("AWS::IAM::Role")) else {
            violations.push(format!("{function}: Role must be !GetAtt <its AWS::IAM::Role>.Arn"));
            continue;
        };
        if let Some(other) = roles_seen.insert(role, function) {
            violations.push(format!("{role} is shared by {other} and {function}: one role per function"));
        }
        let trust = &t["Resources"][role]["Properties"]["AssumeRolePolicyDocument"];
        let trusted: Vec<_> = statements(trust).iter().flat_map(|s| strings(&s["Principal"])).collect();
        if trusted != ["lambda.amazonaws.com"] {
            violations.push(format!("{role}: only lambda.amazonaws.com may assume it, not {trusted:?}"));
        }
        if !FUNCTIONS.iter().any(|(f, _)| *f == function) {
            violations.push(format!("{function}: unknown function; declare what its code uses in this test"));
        }
        let (have, unreadable) = grants(t, role);
        violations.extend(unreadable);
        let want = match expected_grants(t, function) {
            Ok(want) => want,
            Err(e) => {
                violations.push(e);
                continue;
            }
        };
        for (action, resource) in have.difference(&want) {
            violations.push(format!("{function} ({role}): {action} on {resource} is not used by its code"));
        }
        for (action, resource) in want.difference(&have) {
            violations.push(format!("{function} ({role}): {action} on {resource} is used by its code but not granted"));
        }
    }
    // Nothing grants anything outside the functions' own roles and the case-events
    // pipe's (held by check_case_events): no stray roles, no policies attached from
    // elsewhere.
    let pipe_roles: Vec<&str> = of_type(t, "AWS::Pipes::Pipe")
        .into_iter()
        .filter_map(|(_, p)| get_att_of(&p["Properties"]["RoleArn"], "Arn"))
        .collect();
    for (name, r) in resources(t) {
        match r["Type"].as_str().unwrap_or_default() {
            "AWS::IAM::Role" if !roles_seen.contains_key(name.as_str()) && !pipe_roles.contains(&name.as_str()) => {
                violations.push(format!("{name}: a role no function uses"));
            }
            ty @ ("AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" | "AWS::IAM::User" | "AWS::IAM::Group") => {
                violations.push(format!("{name}: {ty} grants outside the functions' roles"));
            }
            _ => {}
        }
    }
    violations
}

// ------------------------------------------------------------------ (d) routes

/// Every HTTP route: (method, path, authorizer).
fn routes(t: &Value) -> (Vec<(String, String, String)>, Vec<String>) {
    let mut out = Vec::new();
    let mut violations = Vec::new();
    for (function, r) in of_type(t, "AWS::Serverless::Function") {
        let p = &r["Properties"];
        if !p["FunctionUrlConfig"].is_null() {
            violations.push(format!("{function}: a function URL is a route this check cannot vouch for"));
        }
        for (event, e) in p["Events"].as_object().into_iter().flatten() {
            match e["Type"].as_str().unwrap_or_default() {
                "HttpApi" => {
                    let ep = &e["Properties"];
                    let api = ref_of(&ep["ApiId"]).unwrap_or_default();
                    if type_of(t, api) != Some("AWS::Serverless::HttpApi") {
                        violations.push(format!("{function}.{event}: ApiId must be !Ref the template's HttpApi"));
                    }
                    let authorizer = ep["Auth"]["Authorizer"]
                        .as_str()
                        .or_else(|| t["Resources"][api]["Properties"]["Auth"]["DefaultAuthorizer"].as_str())
                        .unwrap_or("NONE");
                    out.push((
                        ep["Method"].as_str().unwrap_or("ANY").to_ascii_uppercase(),
                        ep["Path"].as_str().unwrap_or("/$default").to_owned(),
                        authorizer.to_owned(),
                    ));
                }
                "Schedule" | "ScheduleV2" | "SQS" => {}
                other => violations.push(format!("{function}.{event}: event type {other} is not checked here")),
            }
        }
    }
    for (name, r) in resources(t) {
        let ty = r["Type"].as_str().unwrap_or_default();
        let raw_api = ty == "AWS::Serverless::Api"
            || ty.starts_with("AWS::ApiGateway::")
            || ty == "AWS::ApiGatewayV2::Route"
            || ty == "AWS::Lambda::Url";
        if raw_api {
            violations.push(format!("{name}: {ty} adds routes this check cannot vouch for"));
        }
        if ty == "AWS::Serverless::HttpApi" {
            let p = &r["Properties"];
            if !p["DefinitionBody"].is_null() || !p["DefinitionUri"].is_null() {
                violations.push(format!("{name}: an OpenAPI definition adds routes this check cannot vouch for"));
            }
            if p["Auth"]["EnableIamAuthorizer"] != true || p["Auth"]["DefaultAuthorizer"] != "AWS_IAM" {
                violations.push(format!("{name}: Auth must enable the IAM authorizer and make it the default"));
            }
            let throttling = &p["DefaultRouteSettings"];
            if throttling["ThrottlingRateLimit"].is_null() || throttling["ThrottlingBurstLimit"].is_null() {
                violations.push(format!("{name}: DefaultRouteSettings must set throttling"));
            }
        }
    }
    (out, violations)
}

fn check_routes(t: &Value) -> Vec<String> {
    let (routes, mut violations) = routes(t);
    let public = (PUBLIC_ROUTE.0.to_owned(), PUBLIC_ROUTE.1.to_owned());
    let mut found_public = false;
    for (method, path, authorizer) in &routes {
        let is_public_route = (method.clone(), path.clone()) == public;
        if authorizer == "AWS_IAM" {
            if is_public_route {
                violations.push(format!("{method} {path} must be public: Cabital does not sign with SigV4"));
            }
        } else if is_public_route && authorizer == "NONE" {
            found_public = true;
        } else {
            violations.push(format!("{method} {path} is not IAM-authorized (authorizer {authorizer})"));
        }
    }
    if !found_public {
        violations.push(format!("{} {} (Cabital's webhook) is missing or not public", PUBLIC_ROUTE.0, PUBLIC_ROUTE.1));
    }
    let have: BTreeSet<(String, String)> = routes
        .iter()
        .filter(|(m, p, _)| (m.clone(), p.clone()) != public)
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    let want: BTreeSet<(String, String)> =
        CASES_API_ROUTES.iter().map(|(m, p)| ((*m).to_owned(), (*p).to_owned())).collect();
    if have != want {
        violations.push(format!("the API's routes differ from the cases API's: template {have:?}, code {want:?}"));
    }
    violations
}

// ------------------------------------------------------------------ (e) functions, logs, alarms, outputs

fn check_functions(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let present: BTreeSet<&str> = of_type(t, "AWS::Serverless::Function").into_iter().map(|(n, _)| n).collect();
    let declared: BTreeSet<&str> = FUNCTIONS.iter().map(|(n, _)| *n).collect();
    if present != declared {
        violations.push(format!("functions {present:?}, expected {declared:?}"));
    }
    let arch = &t["Parameters"]["LambdaArchitecture"];
    let allowed: BTreeSet<&str> = one_or_many(&arch["AllowedValues"]).into_iter().filter_map(Value::as_str).collect();
    if arch["Default"] != "arm64" || allowed != BTreeSet::from(["arm64", "x86_64"]) {
        violations.push("parameter LambdaArchitecture: default arm64, allowed arm64 and x86_64".into());
    }
    for (function, folder) in FUNCTIONS {
        if type_of(t, function).is_none() {
            continue;
        }
        let r = &t["Resources"][function];
        if fn_prop(t, function, "Runtime") != "provided.al2023" {
            violations.push(format!("{function}: Runtime must be provided.al2023"));
        }
        if fn_prop(t, function, "Handler") != "bootstrap" {
            violations.push(format!("{function}: Handler must be bootstrap"));
        }
        if fn_prop(t, function, "Architectures") != &json!([{"Ref": "LambdaArchitecture"}]) {
            violations.push(format!("{function}: Architectures must be [!Ref LambdaArchitecture]"));
        }
        if r["Metadata"]["BuildMethod"] != "rust-cargolambda" {
            violations.push(format!("{function}: Metadata.BuildMethod must be rust-cargolambda"));
        }
        let code_uri = format!("../functions/{folder}");
        if r["Properties"]["CodeUri"] != code_uri.as_str() {
            violations.push(format!("{function}: CodeUri must be {code_uri} (relative to infra/)"));
        }
        let manifest = repo_root().join("functions").join(folder).join("Cargo.toml");
        // The package gateway-<folder>, whose one binary is the function's name.
        let package_line = format!("name = \"gateway-{folder}\"");
        let bin = format!("[[bin]]\nname = \"{folder}\"");
        match std::fs::read_to_string(&manifest) {
            Ok(text) if text.lines().any(|l| l.trim() == package_line) && text.contains(&bin) => {}
            _ => violations.push(format!(
                "{function}: {} is not the crate gateway-{folder} with bin {folder}",
                manifest.display()
            )),
        }
        match ref_of(&r["Properties"]["LoggingConfig"]["LogGroup"]) {
            Some(group) if type_of(t, group) == Some("AWS::Logs::LogGroup") => {}
            _ => violations.push(format!("{function}: LoggingConfig.LogGroup must be !Ref its AWS::Logs::LogGroup")),
        }
    }
    for (name, group) in of_type(t, "AWS::Logs::LogGroup") {
        if group["Properties"]["RetentionInDays"].is_null() {
            violations.push(format!("{name}: log group without RetentionInDays"));
        }
    }
    // The reconciler: on a schedule (a parameter), retried, with a dead-letter queue.
    let schedule = t["Resources"]["ReconcileFunction"]["Properties"]["Events"]
        .as_object()
        .and_then(|events| events.values().find(|e| e["Type"] == "Schedule"));
    match schedule.map(|e| &e["Properties"]) {
        Some(s) if ref_of(&s["Schedule"]) == Some("ReconcileSchedule") && !s["RetryPolicy"].is_null() => {
            if named_resource(t, &s["DeadLetterConfig"]["Arn"]).is_err() {
                violations.push("ReconcileFunction: its schedule needs a dead-letter queue".into());
            }
        }
        _ => violations.push("ReconcileFunction: a Schedule event on !Ref ReconcileSchedule with a RetryPolicy".into()),
    }
    violations
}

/// The public webhook route throttled on its own parameters; the cases API and the
/// webhook capped by a reserved concurrency (a parameter, 0 = unreserved); the
/// reconciler exactly 1, so that no two runs overlap.
fn check_throttles_and_concurrency(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let api = of_type(t, "AWS::Serverless::HttpApi");
    let webhook_route =
        api.first().map(|(_, a)| &a["Properties"]["RouteSettings"]["POST /webhooks/cabital"]).unwrap_or(&Value::Null);
    for (setting, parameter) in
        [("ThrottlingRateLimit", "WebhookThrottleRateLimit"), ("ThrottlingBurstLimit", "WebhookThrottleBurstLimit")]
    {
        if ref_of(&webhook_route[setting]) != Some(parameter) || t["Parameters"][parameter].is_null() {
            violations.push(format!("the webhook route: {setting} must be !Ref {parameter}, a parameter"));
        }
    }
    for (function, parameter, condition) in [
        ("CasesApiFunction", "CasesApiReservedConcurrency", "ReservesCasesApi"),
        ("WebhookFunction", "WebhookReservedConcurrency", "ReservesWebhook"),
    ] {
        let expected = json!({"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]});
        if fn_prop(t, function, "ReservedConcurrentExecutions") != &expected || t["Parameters"][parameter].is_null() {
            violations.push(format!(
                "{function}: ReservedConcurrentExecutions must be !If [{condition}, !Ref {parameter}, !Ref AWS::NoValue]"
            ));
        }
    }
    if fn_prop(t, "ReconcileFunction", "ReservedConcurrentExecutions") != &json!(1) {
        violations.push("ReconcileFunction: ReservedConcurrentExecutions must be 1 (one run at a time)".into());
    }
    violations
}

/// Alarms reach a person: a prod stack cannot be deployed without a topic, and every
/// alarm notifies it; API Gateway's own 5xx and a surge of 4xx on the webhook route
/// (route-level metrics, on) are watched.
fn check_alarms_reach_someone(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let rule = &t["Rules"]["ProdNeedsAlarmTopic"];
    let asserted = one_or_many(&rule["Assertions"])
        .iter()
        .any(|a| a["Assert"] == json!({"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}));
    if rule["RuleCondition"] != json!({"Fn::Equals": [{"Ref": "Stage"}, "prod"]}) || !asserted {
        violations.push("Rules.ProdNeedsAlarmTopic: in prod, AlarmTopicArn must not be empty".into());
    }
    let notify = json!({"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]});
    for (name, a) in of_type(t, "AWS::CloudWatch::Alarm") {
        if a["Properties"]["AlarmActions"] != notify {
            violations.push(format!("{name}: AlarmActions must notify AlarmTopicArn"));
        }
    }
    let api = json!({"Name": "ApiId", "Value": {"Ref": "HttpApi"}});
    let stage = json!({"Name": "Stage", "Value": "$default"});
    let watched = |metric: &str, dimensions: &Value| {
        of_type(t, "AWS::CloudWatch::Alarm").into_iter().any(|(_, a)| {
            let p = &a["Properties"];
            p["Namespace"] == "AWS/ApiGateway" && p["MetricName"] == metric && &p["Dimensions"] == dimensions
        })
    };
    if !watched("5xx", &json!([api, stage])) {
        violations.push("no alarm on API Gateway's 5xx (ApiId, Stage $default)".into());
    }
    let (method, path) = PUBLIC_ROUTE;
    let route = json!([api, {"Name": "Method", "Value": method}, {"Name": "Resource", "Value": path}, stage]);
    if !watched("4xx", &route) {
        violations.push(format!("no alarm on 4xx of the route {method} {path}"));
    }
    let settings = of_type(t, "AWS::Serverless::HttpApi")
        .first()
        .map(|(_, a)| &a["Properties"]["RouteSettings"][format!("{method} {path}")])
        .unwrap_or(&Value::Null);
    if settings["DetailedMetricsEnabled"] != true {
        violations.push(format!("{method} {path}: DetailedMetricsEnabled must be on (its 4xx alarm reads them)"));
    }
    violations
}

/// The partner's own KMS key, when given, encrypts every store of data: the table, the
/// secret and every log group; without it each keeps its AWS-managed key.
fn check_keys(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let parameter = &t["Parameters"][KMS_KEY];
    let pattern = parameter["AllowedPattern"].as_str().unwrap_or_default();
    if parameter["Type"] != "String" || parameter["Default"] != "" || !pattern.starts_with("^$|^arn:") {
        violations.push(format!("the {KMS_KEY} parameter: a String, default empty, AllowedPattern '^$|^arn:...'"));
    }
    if t["Conditions"]["HasKmsKey"] != json!({"Fn::Not": [{"Fn::Equals": [{"Ref": KMS_KEY}, ""]}]}) {
        violations.push(format!("Conditions.HasKmsKey must be !Not [!Equals [!Ref {KMS_KEY}, \"\"]]"));
    }
    let key_or_default = |default: Value| json!({"Fn::If": ["HasKmsKey", {"Ref": KMS_KEY}, default]});
    let no_value = json!({"Ref": "AWS::NoValue"});
    match the_table(t) {
        Ok((name, table)) => {
            let sse = &table["Properties"]["SSESpecification"];
            if sse["SSEType"] != json!({"Fn::If": ["HasKmsKey", "KMS", no_value]})
                || sse["KMSMasterKeyId"] != key_or_default(no_value.clone())
            {
                violations
                    .push(format!("{name}: SSESpecification must use {KMS_KEY} when given (SSEType, KMSMasterKeyId)"));
            }
        }
        Err(e) => violations.push(e),
    }
    for ty in ["AWS::SecretsManager::Secret", "AWS::Logs::LogGroup"] {
        for (name, r) in of_type(t, ty) {
            if r["Properties"]["KmsKeyId"] != key_or_default(no_value.clone()) {
                violations.push(format!("{name}: KmsKeyId must be !If [HasKmsKey, !Ref {KMS_KEY}, !Ref AWS::NoValue]"));
            }
        }
    }
    // The key's use is scoped to Secrets Manager: the function cannot decrypt anything else with it.
    for (place, doc) in policy_documents(t) {
        for s in statements(doc) {
            let on_key = one_or_many(&s["Resource"]).iter().any(|r| ref_of(r) == Some(KMS_KEY));
            let via = &s["Condition"]["StringEquals"]["kms:ViaService"];
            // The pipe's role reads the table's stream: through DynamoDB only.
            let service = if place.starts_with("CaseEventsPipeRole.") { "dynamodb" } else { "secretsmanager" };
            if on_key && via != &json!({"Fn::Sub": format!("{service}.${{AWS::Region}}.amazonaws.com")}) {
                violations.push(format!("{place}: a grant on {KMS_KEY} must be kms:ViaService Secrets Manager only"));
            }
        }
    }
    violations
}

/// The first alarm on `namespace` / `metric`, if any.
fn alarm<'t>(t: &'t Value, namespace: &str, metric: &str) -> Option<&'t Value> {
    of_type(t, "AWS::CloudWatch::Alarm")
        .into_iter()
        .map(|(_, a)| &a["Properties"])
        .find(|p| p["Namespace"] == namespace && p["MetricName"] == metric)
}

fn check_alarms_and_outputs(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    for (function, _) in FUNCTIONS {
        for metric in ["Errors", "Throttles"] {
            let found = of_type(t, "AWS::CloudWatch::Alarm").into_iter().any(|(_, a)| {
                let p = &a["Properties"];
                p["Namespace"] == "AWS/Lambda"
                    && p["MetricName"] == metric
                    && p["Dimensions"] == json!([{"Name": "FunctionName", "Value": {"Ref": function}}])
            });
            if !found {
                violations.push(format!("no alarm on {function}'s {metric}"));
            }
        }
    }
    let namespace = gateway_runtime::metrics::NAMESPACE;
    // The dimension-less alarms below see the functions' metrics only because every
    // EMF line also declares the empty dimension set.
    let line = gateway_runtime::metrics::render(0, &[("Function", "f")], &[("M", 1.0, Unit::Count)]);
    let emf: Value = serde_json::from_str(&line).unwrap_or_default();
    let declared = &emf["_aws"]["CloudWatchMetrics"][0];
    if declared["Namespace"] != namespace || !one_or_many(&declared["Dimensions"]).contains(&&json!([])) {
        violations.push(format!("gateway_runtime::metrics no longer emits every metric without dimensions: {line}"));
    }
    for (metric, crate_dir) in CUSTOM_METRIC_ALARMS {
        match alarm(t, namespace, metric) {
            None => violations.push(format!("no alarm on {namespace}/{metric}")),
            Some(p) if !p["Dimensions"].is_null() => {
                violations.push(format!("the {metric} alarm must use no dimensions (the total)"))
            }
            Some(_) => {}
        }
        let source = repo_root().join("functions").join(crate_dir).join("src/lib.rs");
        let text = std::fs::read_to_string(&source).unwrap_or_default();
        if !text.contains(&format!("\"{metric}\"")) {
            violations.push(format!("{} never emits {metric}", source.display()));
        }
    }
    // Any other alarm on our namespace must watch a metric some function emits.
    for (name, a) in of_type(t, "AWS::CloudWatch::Alarm") {
        let p = &a["Properties"];
        if p["Namespace"] == namespace {
            let metric = p["MetricName"].as_str().unwrap_or_default();
            // SecretFallback is emitted by the credential store every function builds.
            let emitted = metric == gateway_runtime::settings::SECRET_FALLBACK_METRIC
                || FUNCTIONS.iter().any(|(_, dir)| {
                    let source = repo_root().join("functions").join(dir).join("src/lib.rs");
                    std::fs::read_to_string(source).unwrap_or_default().contains(&format!("\"{metric}\""))
                });
            if !emitted {
                violations.push(format!("{name}: no function emits {namespace}/{metric}"));
            }
        }
    }
    // The reconciler's dead-letter queue.
    let dlq = named_resource(
        t,
        &t["Resources"]["ReconcileFunction"]["Properties"]["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"],
    );
    match dlq {
        Ok(queue) => {
            let found = of_type(t, "AWS::CloudWatch::Alarm").into_iter().any(|(_, a)| {
                let p = &a["Properties"];
                p["Namespace"] == "AWS/SQS"
                    && p["MetricName"] == "ApproximateNumberOfMessagesVisible"
                    && p["Dimensions"] == json!([{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}])
            });
            if !found {
                violations.push(format!("no alarm on messages in {queue} (the reconciler's dead-letter queue)"));
            }
        }
        Err(e) => violations.push(format!("ReconcileFunction's on-failure destination: {e}")),
    }
    for (output, suffix) in [("ApiUrl", ""), ("WebhookUrl", PUBLIC_ROUTE.1)] {
        let value = t["Outputs"][output]["Value"]["Fn::Sub"].as_str().unwrap_or_default();
        if !value.starts_with("https://${HttpApi}.execute-api.") || !value.ends_with(suffix) {
            violations.push(format!("output {output} must be the HttpApi's URL{suffix}, is {value:?}"));
        }
    }
    violations
}

// ------------------------------------------------------------------ the tests

fn assert_none(what: &str, violations: Vec<String>) {
    assert!(violations.is_empty(), "{} ({what}):\n- {}", template_path().display(), violations.join("\n- "));
}

#[test]
fn table_equals_the_store_definition() {
    assert_none("table vs gateway_store::table_definition()", check_table_definition(&load()));
}

#[test]
fn table_is_protected() {
    assert_none("PITR, SSE, deletion protection", check_table_protection(&load()));
}

#[test]
fn no_wildcard_action_or_resource() {
    assert_none("wildcards", check_no_wildcards(&load()));
}

#[test]
fn each_function_has_exactly_the_permissions_its_code_uses() {
    assert_none("per-function permissions", check_function_permissions(&load()));
}

#[test]
fn only_the_webhook_route_is_public() {
    assert_none("routes", check_routes(&load()));
}

#[test]
fn functions_are_cargo_lambda_builds_with_logs() {
    assert_none("functions", check_functions(&load()));
}

#[test]
fn alarms_and_outputs_exist() {
    assert_none("alarms and outputs", check_alarms_and_outputs(&load()));
}

#[test]
fn the_webhook_route_is_throttled_apart_and_concurrency_is_reserved() {
    assert_none("throttles and concurrency", check_throttles_and_concurrency(&load()));
}

#[test]
fn alarms_reach_someone() {
    assert_none("alarms reach a person", check_alarms_reach_someone(&load()));
}

#[test]
fn a_partner_kms_key_encrypts_every_store_of_data() {
    assert_none("keys", check_keys(&load()));
}

// ------------------------------------------------------------------ each rule, broken once

/// Breaks the repository's template with `edit` and expects `check` to report
/// `expected`. (Always the repository's: these test the checks, not a file.)
fn caught(check: fn(&Value) -> Vec<String>, expected: &str, edit: impl FnOnce(&mut Value)) {
    let mut t = load_from(&repo_template());
    assert_eq!(check(&t), Vec::<String>::new(), "the unbroken template must pass first");
    edit(&mut t);
    let violations = check(&t);
    assert!(
        violations.iter().any(|v| v.contains(expected)),
        "expected a violation containing {expected:?}, got {violations:#?}"
    );
}

fn table(t: &mut Value) -> &mut Value {
    let name = the_table(t).map(|(n, _)| n.to_owned()).expect("one table");
    &mut t["Resources"][name]["Properties"]
}

fn role_statements<'t>(t: &'t mut Value, role: &str) -> &'t mut Vec<Value> {
    t["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        .as_array_mut()
        .expect("a list of statements")
}

fn event_auth<'t>(t: &'t mut Value, function: &str, event: &str) -> &'t mut Value {
    &mut t["Resources"][function]["Properties"]["Events"][event]["Properties"]["Auth"]["Authorizer"]
}

#[test]
fn table_drift_is_caught() {
    caught(check_table_definition, "GlobalSecondaryIndexes differs", |t| {
        table(t)["GlobalSecondaryIndexes"].as_array_mut().unwrap().pop();
    });
    caught(check_table_definition, "GlobalSecondaryIndexes differs", |t| {
        table(t)["GlobalSecondaryIndexes"][0]["Projection"]["ProjectionType"] = json!("ALL");
    });
    caught(check_table_definition, "KeySchema differs", |t| {
        table(t)["KeySchema"][1]["KeyType"] = json!("HASH");
    });
    caught(check_table_definition, "AttributeDefinitions differs", |t| {
        table(t)["AttributeDefinitions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"AttributeName": "x", "AttributeType": "S"}));
    });
    caught(check_table_definition, "BillingMode differs", |t| table(t)["BillingMode"] = json!("PROVISIONED"));
}

#[test]
fn stream_drift_is_caught() {
    caught(check_table_definition, "StreamSpecification differs", |t| {
        table(t).as_object_mut().unwrap().remove("StreamSpecification");
    });
    caught(check_table_definition, "StreamSpecification differs", |t| {
        table(t)["StreamSpecification"]["StreamViewType"] = json!("KEYS_ONLY");
    });
}

#[test]
fn time_to_live_drift_is_caught() {
    caught(check_table_definition, "TimeToLiveSpecification differs", |t| {
        table(t).as_object_mut().unwrap().remove("TimeToLiveSpecification");
    });
    caught(check_table_definition, "TimeToLiveSpecification differs", |t| {
        table(t)["TimeToLiveSpecification"]["Enabled"] = json!(false);
    });
    caught(check_table_definition, "TimeToLiveSpecification differs", |t| {
        table(t)["TimeToLiveSpecification"]["AttributeName"] = json!("ttl");
    });
}

#[test]
fn unprotected_table_is_caught() {
    caught(check_table_protection, "point-in-time recovery", |t| {
        table(t)["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] = json!(false);
    });
    caught(check_table_protection, "SSEEnabled", |t| {
        table(t).as_object_mut().unwrap().remove("SSESpecification");
    });
    caught(check_table_protection, "DeletionProtectionEnabled", |t| {
        table(t)["DeletionProtectionEnabled"] = json!(true);
    });
    caught(check_table_protection, "DeletionProtectionEnabled", |t| {
        t["Conditions"]["IsProd"] = json!({"Fn::Equals": [{"Ref": "Stage"}, "dev"]});
    });
}

#[test]
fn wildcards_are_caught() {
    caught(check_no_wildcards, "wildcard or unnamed action", |t| {
        role_statements(t, "WebhookRole")[1]["Action"] = json!("dynamodb:*");
    });
    caught(check_no_wildcards, "wildcard resource", |t| {
        role_statements(t, "CasesApiRole")[1]["Resource"] = json!("*");
    });
    caught(check_no_wildcards, "wildcard resource", |t| {
        let s = role_statements(t, "ReconcileRole");
        s[2]["Resource"] = json!({"Fn::Sub": "${CasesTable.Arn}/index/*"});
    });
    caught(check_no_wildcards, "NotAction", |t| {
        role_statements(t, "WebhookRole")
            .push(json!({"Effect": "Allow", "NotAction": "iam:*", "Resource": {"Ref": "CabitalApiSecret"}}));
    });
}

#[test]
fn unused_or_missing_permissions_are_caught() {
    // A permission the code never uses.
    caught(check_function_permissions, "dynamodb:deleteitem on CasesTable is not used", |t| {
        role_statements(t, "WebhookRole")[1]["Action"].as_array_mut().unwrap().push(json!("dynamodb:DeleteItem"));
    });
    caught(check_function_permissions, "dynamodb:query on CasesTable is not used", |t| {
        role_statements(t, "WebhookRole")[1]["Action"].as_array_mut().unwrap().push(json!("dynamodb:Query"));
    });
    // The index where only the table is used, and the other way round.
    caught(check_function_permissions, "CasesTable/index/attention is not used", |t| {
        role_statements(t, "CasesApiRole")[1]["Resource"] =
            json!([{"Fn::GetAtt": ["CasesTable", "Arn"]}, {"Fn::Sub": "${CasesTable.Arn}/index/attention"}]);
    });
    caught(
        check_function_permissions,
        "dynamodb:query on CasesTable/index/ogs is used by its code but not granted",
        |t| {
            role_statements(t, "ReconcileRole")[2]["Resource"] =
                json!({"Fn::Sub": "${CasesTable.Arn}/index/attention"});
        },
    );
    // The secret on something else; logs on another function's group.
    caught(check_function_permissions, "secretsmanager:getsecretvalue on CabitalApiSecret is used", |t| {
        role_statements(t, "CasesApiRole")[2]["Resource"] = json!({"Fn::GetAtt": ["ReconcileDlq", "Arn"]});
    });
    caught(check_function_permissions, "logs:putlogevents on ReconcileLogGroup is not used", |t| {
        role_statements(t, "WebhookRole")[0]["Resource"] = json!({"Fn::GetAtt": ["ReconcileLogGroup", "Arn"]});
    });
    // SAM policies (and their AWSLambdaBasicExecutionRole), managed policies, a shared role.
    caught(check_function_permissions, "SAM Policies", |t| {
        t["Resources"]["WebhookFunction"]["Properties"]["Policies"] = json!(["AWSLambdaBasicExecutionRole"]);
    });
    caught(check_function_permissions, "ManagedPolicyArns", |t| {
        t["Resources"]["WebhookRole"]["Properties"]["ManagedPolicyArns"] =
            json!(["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]);
    });
    caught(check_function_permissions, "one role per function", |t| {
        t["Resources"]["WebhookFunction"]["Properties"]["Role"] = json!({"Fn::GetAtt": ["ReconcileRole", "Arn"]});
    });
}

#[test]
fn a_second_public_route_is_caught() {
    caught(check_routes, "GET /v1/cases is not IAM-authorized", |t| {
        *event_auth(t, "CasesApiFunction", "ListCases") = json!("NONE");
    });
    caught(check_routes, "is missing or not public", |t| {
        *event_auth(t, "WebhookFunction", "CabitalWebhook") = json!("AWS_IAM");
    });
    caught(check_routes, "function URL", |t| {
        t["Resources"]["ReconcileFunction"]["Properties"]["FunctionUrlConfig"] = json!({"AuthType": "NONE"});
    });
    caught(check_routes, "make it the default", |t| {
        t["Resources"]["HttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"] = json!("NONE");
    });
}

#[test]
fn broken_functions_are_caught() {
    caught(check_functions, "provided.al2023", |t| t["Globals"]["Function"]["Runtime"] = json!("provided.al2"));
    caught(check_functions, "Handler must be bootstrap", |t| {
        t["Resources"]["WebhookFunction"]["Properties"]["Handler"] = json!("main");
    });
    caught(check_functions, "rust-cargolambda", |t| {
        t["Resources"]["ReconcileFunction"]["Metadata"] = json!({});
    });
    caught(check_functions, "CodeUri", |t| {
        t["Resources"]["CasesApiFunction"]["Properties"]["CodeUri"] = json!("../functions/webhook");
    });
    caught(check_functions, "RetentionInDays", |t| {
        t["Resources"]["WebhookLogGroup"]["Properties"].as_object_mut().unwrap().remove("RetentionInDays");
    });
    caught(check_functions, "LambdaArchitecture", |t| {
        t["Parameters"]["LambdaArchitecture"]["Default"] = json!("x86_64")
    });
}

#[test]
fn missing_alarms_and_outputs_are_caught() {
    caught(check_alarms_and_outputs, "ReconcileBacklog", |t| {
        resources_mut(t).retain(|_, r| r["Properties"]["MetricName"] != "ReconcileBacklog");
    });
    caught(check_alarms_and_outputs, "WebhookFunction's Throttles", |t| {
        resources_mut(t).remove("WebhookThrottlesAlarm");
    });
    caught(check_alarms_and_outputs, "dead-letter queue", |t| {
        resources_mut(t).retain(|_, r| r["Properties"]["Namespace"] != "AWS/SQS");
    });
    caught(check_alarms_and_outputs, "output WebhookUrl", |t| {
        t["Outputs"].as_object_mut().unwrap().remove("WebhookUrl");
    });
}

fn resources_mut(t: &mut Value) -> &mut Map<String, Value> {
    t["Resources"].as_object_mut().expect("Resources")
}

// ------------------------------------------------------------------ cases without suggestion

/// The give-up setting reaches the reconciler from a parameter that refuses zero, and
/// each case given up (counted once, in one run) raises an alarm into the topic.
fn check_no_suggestion(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let env = &fn_prop(t, "ReconcileFunction", "Environment")["Variables"]["RECONCILE_NO_SUGGESTION_GIVE_UP_SECS"];
    match ref_of(env).map(|p| &t["Parameters"][p]) {
        Some(p) if p["MinValue"].as_u64().is_some_and(|m| m >= 1) && p["Default"] == 604_800 => {}
        _ => violations.push(
            "ReconcileFunction: RECONCILE_NO_SUGGESTION_GIVE_UP_SECS from a parameter (default 604800, MinValue >= 1)"
                .into(),
        ),
    }
    match alarm(t, gateway_runtime::metrics::NAMESPACE, "ReconcileNoSuggestionGivenUp") {
        Some(p)
            if p["Statistic"] == "Sum"
                && p["Threshold"] == 1
                && p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
                && p["TreatMissingData"] == "notBreaching"
                && p["AlarmActions"].to_string().contains("AlarmTopicArn") => {}
        _ => violations.push("no alarm (Sum >= 1, into the alarm topic) on ReconcileNoSuggestionGivenUp".into()),
    }
    violations
}

#[test]
fn cases_without_suggestion_are_given_up_by_setting_and_alarmed() {
    assert_none("cases without suggestion", check_no_suggestion(&load()));
}

#[test]
fn a_missing_no_suggestion_setting_or_alarm_is_caught() {
    caught(check_no_suggestion, "RECONCILE_NO_SUGGESTION_GIVE_UP_SECS", |t| {
        t["Resources"]["ReconcileFunction"]["Properties"]["Environment"]["Variables"]
            .as_object_mut()
            .unwrap()
            .remove("RECONCILE_NO_SUGGESTION_GIVE_UP_SECS");
    });
    caught(check_no_suggestion, "ReconcileNoSuggestionGivenUp", |t| {
        resources_mut(t).remove("ReconcileNoSuggestionAlarm");
    });
    caught(check_alarms_and_outputs, "ReconcileNoSuggestionGivenUp", |t| {
        resources_mut(t).remove("ReconcileNoSuggestionAlarm");
    });
}

#[test]
fn shared_throttles_and_unbounded_concurrency_are_caught() {
    caught(check_throttles_and_concurrency, "ThrottlingRateLimit", |t| {
        t["Resources"]["HttpApi"]["Properties"].as_object_mut().unwrap().remove("RouteSettings");
    });
    caught(check_throttles_and_concurrency, "WebhookFunction: ReservedConcurrentExecutions", |t| {
        t["Resources"]["WebhookFunction"]["Properties"].as_object_mut().unwrap().remove("ReservedConcurrentExecutions");
    });
    caught(check_throttles_and_concurrency, "CasesApiFunction: ReservedConcurrentExecutions", |t| {
        t["Resources"]["CasesApiFunction"]["Properties"]["ReservedConcurrentExecutions"] = json!(5);
    });
    caught(check_throttles_and_concurrency, "one run at a time", |t| {
        t["Resources"]["ReconcileFunction"]["Properties"]["ReservedConcurrentExecutions"] = json!(2);
    });
}

#[test]
fn alarms_that_reach_no_one_are_caught() {
    caught(check_alarms_reach_someone, "ProdNeedsAlarmTopic", |t| {
        t.as_object_mut().unwrap().remove("Rules");
    });
    caught(check_alarms_reach_someone, "ProdNeedsAlarmTopic", |t| {
        t["Rules"]["ProdNeedsAlarmTopic"]["RuleCondition"] = json!({"Fn::Equals": [{"Ref": "Stage"}, "dev"]});
    });
    caught(check_alarms_reach_someone, "Api5xxAlarm: AlarmActions", |t| {
        t["Resources"]["Api5xxAlarm"]["Properties"].as_object_mut().unwrap().remove("AlarmActions");
    });
    caught(check_alarms_reach_someone, "API Gateway's 5xx", |t| {
        resources_mut(t).remove("Api5xxAlarm");
    });
    caught(check_alarms_reach_someone, "4xx of the route", |t| {
        t["Resources"]["WebhookRoute4xxAlarm"]["Properties"]["Dimensions"][2]["Value"] = json!("/v1/cases");
    });
    caught(check_alarms_reach_someone, "DetailedMetricsEnabled", |t| {
        t["Resources"]["HttpApi"]["Properties"]["RouteSettings"]["POST /webhooks/cabital"]["DetailedMetricsEnabled"] =
            json!(false);
    });
    caught(check_alarms_and_outputs, "CabitalGateway/CasesApi5xx", |t| {
        resources_mut(t).remove("CasesApi5xxAlarm");
    });
}

#[test]
fn data_left_on_the_default_key_is_caught() {
    caught(check_keys, "SSESpecification must use KmsKeyArn", |t| {
        table(t)["SSESpecification"].as_object_mut().unwrap().remove("KMSMasterKeyId");
    });
    caught(check_keys, "WebhookLogGroup: KmsKeyId", |t| {
        t["Resources"]["WebhookLogGroup"]["Properties"].as_object_mut().unwrap().remove("KmsKeyId");
    });
    caught(check_keys, "CabitalApiSecret: KmsKeyId", |t| {
        t["Resources"]["CabitalApiSecret"]["Properties"]["KmsKeyId"] = json!("alias/aws/secretsmanager");
    });
    caught(check_keys, "the KmsKeyArn parameter", |t| {
        t["Parameters"]["KmsKeyArn"]["Default"] = json!("arn:aws:kms:eu-west-1:123456789012:key/x");
    });
    caught(check_keys, "kms:ViaService", |t| {
        let statements = role_statements(t, "WebhookRole");
        let at = statements.iter().position(|s| s.get("Fn::If").is_some()).unwrap();
        statements[at]["Fn::If"][1].as_object_mut().unwrap().remove("Condition");
    });
    caught(check_function_permissions, "kms:decrypt on KmsKeyArn is used by its code but not granted", |t| {
        role_statements(t, "ReconcileRole").retain(|s| s.get("Fn::If").is_none());
    });
}

// ------------------------------------------------------------------ the reconciler at scale

/// The reconciler reads the schedule it runs on (it sizes its ongoing-screening sweep
/// and its per-item backoff in runs), which must then be a rate; what every run leaves
/// due for hours, and each item no retry settles, raise alarms (dimension-less totals of
/// metrics the reconciler emits) that reach the alarm topic.
fn check_reconciler_at_scale(t: &Value) -> Vec<String> {
    let mut violations = Vec::new();
    let env = &fn_prop(t, "ReconcileFunction", "Environment")["Variables"]["RECONCILE_SCHEDULE"];
    if ref_of(env) != Some("ReconcileSchedule") {
        violations
            .push("ReconcileFunction: RECONCILE_SCHEDULE must be !Ref ReconcileSchedule (its own schedule)".into());
    }
    let schedule = &t["Parameters"]["ReconcileSchedule"];
    let pattern = schedule["AllowedPattern"].as_str().unwrap_or_default();
    let default = schedule["Default"].as_str().unwrap_or_default();
    if !pattern.starts_with("^rate\\(") || !pattern.ends_with("\\)$") || !default.starts_with("rate(") {
        violations.push(format!(
            "parameter ReconcileSchedule: only rate(...) expressions (AllowedPattern ^rate\\(...\\)$), is {pattern:?}, default {default:?}"
        ));
    }
    let namespace = gateway_runtime::metrics::NAMESPACE;
    let notify = json!({"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]});
    let source = repo_root().join("functions/reconcile/src/lib.rs");
    let text = std::fs::read_to_string(&source).unwrap_or_default();
    for metric in ["ReconcileDueNotChecked", "ReconcileStuck"] {
        if !text.contains(&format!("\"{metric}\"")) {
            violations.push(format!("{} never emits {metric}", source.display()));
        }
        let Some(p) = alarm(t, namespace, metric) else {
            violations.push(format!("no alarm on {namespace}/{metric}"));
            continue;
        };
        let common =
            p["Dimensions"].is_null() && p["TreatMissingData"] == "notBreaching" && p["AlarmActions"] == notify;
        let shape = match metric {
            // Above zero in every run of several periods in a row: not a burst draining.
            "ReconcileDueNotChecked" => {
                let periods = p["EvaluationPeriods"].as_u64().unwrap_or(0);
                p["Statistic"] == "Minimum"
                    && p["Threshold"] == 0
                    && p["ComparisonOperator"] == "GreaterThanThreshold"
                    && periods >= 2
                    && p["DatapointsToAlarm"].as_u64().is_none_or(|d| d == periods)
            }
            // Each item, each time it is counted.
            _ => {
                p["Statistic"] == "Sum"
                    && p["Threshold"] == 1
                    && p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            }
        };
        if !common || !shape {
            violations.push(format!(
                "the {metric} alarm: no dimensions, into the alarm topic, notBreaching, and {}",
                if metric == "ReconcileDueNotChecked" {
                    "Minimum > 0 in every one of 2 or more periods"
                } else {
                    "Sum >= 1"
                }
            ));
        }
    }
    violations
}

#[test]
fn the_reconciler_reads_its_schedule_and_its_shortfall_and_stuck_items_are_alarmed() {
    assert_none("the reconciler at scale", check_reconciler_at_scale(&load()));
}

#[test]
fn a_reconciler_blind_to_its_schedule_or_its_shortfall_is_caught() {
    caught(check_reconciler_at_scale, "RECONCILE_SCHEDULE", |t| {
        t["Resources"]["ReconcileFunction"]["Properties"]["Environment"]["Variables"]
            .as_object_mut()
            .unwrap()
            .remove("RECONCILE_SCHEDULE");
    });
    caught(check_reconciler_at_scale, "parameter ReconcileSchedule", |t| {
        t["Parameters"]["ReconcileSchedule"].as_object_mut().unwrap().remove("AllowedPattern");
    });
    caught(check_reconciler_at_scale, "no alarm on CabitalGateway/ReconcileDueNotChecked", |t| {
        resources_mut(t).remove("ReconcileDueNotCheckedAlarm");
    });
    caught(check_reconciler_at_scale, "the ReconcileDueNotChecked alarm", |t| {
        t["Resources"]["ReconcileDueNotCheckedAlarm"]["Properties"]["Statistic"] = json!("Sum");
    });
    caught(check_reconciler_at_scale, "the ReconcileDueNotChecked alarm", |t| {
        t["Resources"]["ReconcileDueNotCheckedAlarm"]["Properties"]["EvaluationPeriods"] = json!(1);
        t["Resources"]["ReconcileDueNotCheckedAlarm"]["Properties"]["DatapointsToAlarm"] = json!(1);
    });
    caught(check_reconciler_at_scale, "the ReconcileDueNotChecked alarm", |t| {
        t["Resources"]["ReconcileDueNotCheckedAlarm"]["Properties"].as_object_mut().unwrap().remove("AlarmActions");
    });
    caught(check_alarms_reach_someone, "ReconcileDueNotCheckedAlarm: AlarmActions", |t| {
        t["Resources"]["ReconcileDueNotCheckedAlarm"]["Properties"].as_object_mut().unwrap().remove("AlarmActions");
    });
    caught(check_reconciler_at_scale, "no alarm on CabitalGateway/ReconcileStuck", |t| {
        resources_mut(t).remove("ReconcileStuckAlarm");
    });
}

// ------------------------------------------------------------------ the secret fallback

/// Each time a function served its cached secret because Secrets Manager failed, it
/// emits `SecretFallback`: one such emission raises an alarm into the topic.
fn check_secret_fallback_alarm(t: &Value) -> Vec<String> {
    let metric = gateway_runtime::settings::SECRET_FALLBACK_METRIC;
    let notify = json!({"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]});
    match alarm(t, gateway_runtime::metrics::NAMESPACE, metric) {
        Some(p)
            if p["Statistic"] == "Sum"
                && p["Threshold"] == 1
                && p["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
                && p["TreatMissingData"] == "notBreaching"
                && p["Dimensions"].is_null()
                && p["AlarmActions"] == notify =>
        {
            vec![]
        }
        _ => vec![format!("no alarm (Sum >= 1, no dimensions, into the alarm topic) on {metric}")],
    }
}

#[test]
fn the_secret_fallback_is_alarmed() {
    assert_none("the secret fallback", check_secret_fallback_alarm(&load()));
}

#[test]
fn a_missing_or_deaf_secret_fallback_alarm_is_caught() {
    caught(check_secret_fallback_alarm, "SecretFallback", |t| {
        resources_mut(t).remove("SecretFallbackAlarm");
    });
    caught(check_secret_fallback_alarm, "SecretFallback", |t| {
        t["Resources"]["SecretFallbackAlarm"]["Properties"].as_object_mut().unwrap().remove("AlarmActions");
    });
    caught(check_secret_fallback_alarm, "SecretFallback", |t| {
        t["Resources"]["SecretFallbackAlarm"]["Properties"]["Threshold"] = json!(10);
    });
}

// ---------------------------------------------------------------- events out (#16)

/// What an event item carries for the pipe (shared/store/src/codec.rs `event_item`):
/// the only attributes its input template may read. None is personal.
const EVENT_ATTRIBUTES_FOR_THE_PIPE: &[&str] = &[
    "kind",
    "at",
    "source",
    "caseSystemId",
    "externalCaseId",
    "caseVersion",
    "caseStatus",
    "caseSuggestion",
    "caseDecision",
    "caseOgs",
];

/// The bus the pipe puts on and its role may put on: the stack's own, or the named one.
fn the_bus() -> Value {
    json!({"Fn::If": ["CreatesEventBus", {"Fn::GetAtt": ["CaseEventsBus", "Arn"]},
        {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${EventBusName}"}]})
}

fn get_att(resource: &str, attribute: &str) -> Value {
    json!({"Fn::GetAtt": [resource, attribute]})
}

/// The stream, the pipe (source, filter, template, target), its role (exactly the
/// stream's read actions, PutEvents on the one bus, SendMessage to its DLQ), the DLQ and
/// its alarm.
fn check_case_events(t: &Value) -> Vec<String> {
    let mut v = Vec::new();
    let table = match the_table(t) {
        Ok((name, _)) => name.to_owned(),
        Err(e) => return vec![e],
    };
    let pipes = of_type(t, "AWS::Pipes::Pipe");
    let [(name, pipe)] = pipes.as_slice() else {
        return vec![format!("expected one AWS::Pipes::Pipe, found {}", pipes.len())];
    };
    let p = &pipe["Properties"];
    if p["Source"] != get_att(&table, "StreamArn") {
        v.push(format!("{name}: Source must be !GetAtt {table}.StreamArn"));
    }
    let stream = &p["SourceParameters"]["DynamoDBStreamParameters"];
    if stream["StartingPosition"] != "TRIM_HORIZON" {
        v.push(format!("{name}: StartingPosition must be TRIM_HORIZON (no event skipped at creation)"));
    }
    if stream["DeadLetterConfig"]["Arn"] != get_att("CaseEventsDeadLetterQueue", "Arn")
        || type_of(t, "CaseEventsDeadLetterQueue") != Some("AWS::SQS::Queue")
    {
        v.push(format!("{name}: DeadLetterConfig must be the CaseEventsDeadLetterQueue queue"));
    }
    if stream["MaximumRetryAttempts"].as_i64().is_none_or(|n| n < 1) {
        v.push(format!("{name}: MaximumRetryAttempts must retry (>= 1) before the DLQ"));
    }
    let patterns: Vec<Value> = one_or_many(&p["SourceParameters"]["FilterCriteria"]["Filters"])
        .into_iter()
        .filter_map(|f| f["Pattern"].as_str().and_then(|s| serde_json::from_str(s).ok()))
        .collect();
    let new_events_only = json!({"eventName": ["INSERT"], "dynamodb": {"Keys": {"sk": {"S": [{"prefix": "EVENT#"}]}}}});
    if patterns != [new_events_only.clone()] {
        v.push(format!("{name}: the filter must be exactly {new_events_only} (new event items only)"));
    }
    if p["Target"] != the_bus() {
        v.push(format!("{name}: Target must be the bus (!If [CreatesEventBus, CaseEventsBus, EventBusName])"));
    }
    let bus = &p["TargetParameters"]["EventBridgeEventBusParameters"];
    if bus["DetailType"] != "$.dynamodb.NewImage.kind.S" || bus["Source"] != json!({"Ref": "EventSourceName"}) {
        v.push(format!("{name}: DetailType must be the event's kind, Source the EventSourceName parameter"));
    }
    let template = p["TargetParameters"]["InputTemplate"].as_str().unwrap_or_default();
    let mut placeholders = 0;
    for (i, _) in template.match_indices("<$.") {
        placeholders += 1;
        let path = &template[i + 3..template[i..].find('>').map_or(template.len(), |e| i + e)];
        let quoted = template[..i].ends_with('"')
            && template[i..].find('>').is_some_and(|e| template[i + e + 1..].starts_with('"'));
        if !quoted {
            v.push(format!("{name}: <$.{path}> must be quoted (a pipe places values as text)"));
        }
        let ok = path == "dynamodb.Keys.sk.S"
            || path.strip_prefix("dynamodb.NewImage.").and_then(|rest| rest.split_once('.')).is_some_and(
                |(attribute, ty)| EVENT_ATTRIBUTES_FOR_THE_PIPE.contains(&attribute) && (ty == "S" || ty == "N"),
            );
        if !ok {
            v.push(format!(
                "{name}: the input template reads $.{path}: only the event's key and {EVENT_ATTRIBUTES_FOR_THE_PIPE:?}"
            ));
        }
    }
    if placeholders == 0 || serde_json::from_str::<Value>(&template.replace("<$.", "").replace('>', "")).is_err() {
        v.push(format!("{name}: the input template must be a JSON object of placeholders"));
    }

    // The role: exactly these grants.
    let Some(role) = get_att_of(&p["RoleArn"], "Arn").map(str::to_owned) else {
        v.push(format!("{name}: RoleArn must be !GetAtt <role>.Arn"));
        return v;
    };
    let rp = &t["Resources"][&role]["Properties"];
    if strings(&rp["AssumeRolePolicyDocument"]).iter().filter(|s| s.ends_with(".amazonaws.com")).collect::<Vec<_>>()
        != [&"pipes.amazonaws.com"]
    {
        v.push(format!("{role}: only pipes.amazonaws.com may assume it"));
    }
    if !rp["ManagedPolicyArns"].is_null() {
        v.push(format!("{role}: no managed policies"));
    }
    let mut granted = BTreeSet::new();
    for policy in one_or_many(&rp["Policies"]) {
        for s in statements(&policy["PolicyDocument"]) {
            if one_or_many(&s["Resource"]).iter().any(|r| ref_of(r) == Some(KMS_KEY)) {
                continue; // checked by check_keys
            }
            for action in one_or_many(&s["Action"]) {
                for resource in one_or_many(&s["Resource"]) {
                    granted.insert((action.as_str().unwrap_or("?").to_owned(), resource.to_string()));
                }
            }
        }
    }
    let stream = get_att(&table, "StreamArn").to_string();
    let expected: BTreeSet<(String, String)> = [
        ("dynamodb:DescribeStream", stream.clone()),
        ("dynamodb:GetRecords", stream.clone()),
        ("dynamodb:GetShardIterator", stream.clone()),
        ("dynamodb:ListStreams", stream),
        ("events:PutEvents", the_bus().to_string()),
        ("sqs:SendMessage", get_att("CaseEventsDeadLetterQueue", "Arn").to_string()),
    ]
    .into_iter()
    .map(|(a, r)| (a.to_owned(), r))
    .collect();
    for extra in granted.difference(&expected) {
        v.push(format!(
            "{role}: grants {} on {} (only the stream's reads, PutEvents on the bus, the DLQ)",
            extra.0, extra.1
        ));
    }
    for missing in expected.difference(&granted) {
        v.push(format!("{role}: lacks {} on {}", missing.0, missing.1));
    }

    // The bus parameter and the DLQ's alarm.
    if t["Conditions"]["CreatesEventBus"] != json!({"Fn::Equals": [{"Ref": "EventBusName"}, ""]})
        || t["Parameters"]["EventBusName"]["Default"] != ""
        || t["Resources"]["CaseEventsBus"]["Condition"] != "CreatesEventBus"
    {
        v.push("EventBusName: default empty, the stack's own bus (CaseEventsBus) created only then".into());
    }
    let notify = json!({"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]});
    let alarmed = of_type(t, "AWS::CloudWatch::Alarm").into_iter().any(|(_, a)| {
        let a = &a["Properties"];
        a["Namespace"] == "AWS/SQS"
            && a["MetricName"] == "ApproximateNumberOfMessagesVisible"
            && a["Dimensions"]
                == json!([{"Name": "QueueName", "Value": get_att("CaseEventsDeadLetterQueue", "QueueName")}])
            && a["Threshold"] == 1
            && a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            && a["AlarmActions"] == notify
    });
    if !alarmed {
        v.push("no alarm (>= 1 visible, into the alarm topic) on CaseEventsDeadLetterQueue".into());
    }
    v
}

#[test]
fn every_case_event_leaves_through_the_pipe_with_least_privilege() {
    assert_none("case events", check_case_events(&load()));
}

#[test]
fn a_leaky_or_overprivileged_or_deaf_pipe_is_caught() {
    fn pipe(t: &mut Value) -> &mut Value {
        &mut t["Resources"]["CaseEventsPipe"]["Properties"]
    }
    caught(check_case_events, "the input template reads $.dynamodb.NewImage.submitted.S", |t| {
        let p = pipe(t);
        let template = p["TargetParameters"]["InputTemplate"]
            .as_str()
            .unwrap()
            .replace("\"at\":", "\"submitted\": \"<$.dynamodb.NewImage.submitted.S>\", \"at\":");
        p["TargetParameters"]["InputTemplate"] = json!(template);
    });
    caught(check_case_events, "must be quoted", |t| {
        let p = pipe(t);
        let template = p["TargetParameters"]["InputTemplate"]
            .as_str()
            .unwrap()
            .replace("\"<$.dynamodb.NewImage.caseVersion.N>\"", "<$.dynamodb.NewImage.caseVersion.N>");
        p["TargetParameters"]["InputTemplate"] = json!(template);
    });
    caught(check_case_events, "the filter must be exactly", |t| {
        pipe(t)["SourceParameters"]["FilterCriteria"]["Filters"][0]["Pattern"] =
            json!(r#"{"eventName": ["INSERT", "MODIFY"]}"#);
    });
    caught(check_case_events, "grants dynamodb:GetItem", |t| {
        t["Resources"]["CaseEventsPipeRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"]
            .as_array_mut()
            .unwrap()
            .push(json!("dynamodb:GetItem"));
    });
    caught(check_case_events, "grants events:PutEvents", |t| {
        t["Resources"]["CaseEventsPipeRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][1]["Resource"] =
            json!({"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"});
    });
    caught(check_case_events, "DeadLetterConfig", |t| {
        pipe(t)["SourceParameters"]["DynamoDBStreamParameters"].as_object_mut().unwrap().remove("DeadLetterConfig");
    });
    caught(check_case_events, "no alarm", |t| {
        resources_mut(t).remove("CaseEventsDeadLetterAlarm");
    });
}

// ---------------------------------------------------------------- erasure (#17)

/// Erasure has its own IAM-authorized route, so that an IAM policy can grant
/// `execute-api:Invoke` on `.../DELETE/v1/cases/*/personal-data` to few: no other route
/// (a catch-all, a shared path) may reach it.
#[test]
fn erasure_is_its_own_iam_authorized_route() {
    let t = load();
    let (routes, _) = routes(&t);
    let erase: Vec<_> = routes.iter().filter(|(_, p, _)| p.ends_with("/personal-data")).collect();
    assert_eq!(
        erase,
        [&("DELETE".to_owned(), "/v1/cases/{caseSystemId}/personal-data".to_owned(), "AWS_IAM".to_owned())]
    );
    let events = &t["Resources"]["CasesApiFunction"]["Properties"]["Events"];
    assert_eq!(events["ErasePersonalData"]["Properties"]["Path"], "/v1/cases/{caseSystemId}/personal-data");
    caught(check_routes, "the API's routes differ", |t| {
        t["Resources"]["CasesApiFunction"]["Properties"]["Events"].as_object_mut().unwrap().remove("ErasePersonalData");
    });
    caught(check_routes, "the API's routes differ", |t| {
        t["Resources"]["CasesApiFunction"]["Properties"]["Events"]["ErasePersonalData"]["Properties"]["Path"] =
            json!("/v1/cases/{proxy+}");
    });
    caught(check_routes, "is not IAM-authorized", |t| {
        t["Resources"]["CasesApiFunction"]["Properties"]["Events"]["ErasePersonalData"]["Properties"]["Auth"]["Authorizer"] =
            json!("NONE");
    });
}

// ------------------------------------------------------------------ retention

/// A function's environment variable: its own, or the Globals' (SAM merges the two).
fn env_var<'t>(t: &'t Value, function: &str, name: &str) -> &'t Value {
    let own = &t["Resources"][function]["Properties"]["Environment"]["Variables"][name];
    if own.is_null() { &t["Globals"]["Function"]["Environment"]["Variables"][name] } else { own }
}

/// Every function keeps cases for `RETENTION_DAYS` from one parameter whose range and
/// default are the code's (`gateway_store::Retention`), and the table deletes by the
/// TTL attribute the store writes on every item of a case.
fn check_retention(t: &Value) -> Vec<String> {
    use gateway_store::Retention;
    let mut violations = Vec::new();
    let p = &t["Parameters"]["RetentionDays"];
    if p["Type"] != "Number"
        || p["MinValue"] != Retention::MIN_DAYS
        || p["MaxValue"] != Retention::MAX_DAYS
        || p["Default"] != Retention::DEFAULT_DAYS
    {
        violations.push(format!(
            "parameter RetentionDays must be a Number from {} to {}, default {}",
            Retention::MIN_DAYS,
            Retention::MAX_DAYS,
            Retention::DEFAULT_DAYS
        ));
    }
    for (name, _) in of_type(t, "AWS::Serverless::Function") {
        if ref_of(env_var(t, name, "RETENTION_DAYS")) != Some("RetentionDays") {
            violations.push(format!("{name}: RETENTION_DAYS must be !Ref RetentionDays"));
        }
    }
    let ttl = match the_table(t) {
        Ok((_, table)) => &table["Properties"]["TimeToLiveSpecification"],
        Err(e) => return vec![e],
    };
    if ttl["AttributeName"] != table_definition().time_to_live_attribute || ttl["Enabled"] != true {
        violations.push("the table's TimeToLiveSpecification must enable the store's TTL attribute".into());
    }
    violations
}

#[test]
fn every_function_keeps_cases_for_the_retention_parameter_and_the_table_deletes_by_ttl() {
    assert_none("retention", check_retention(&load()));
}

#[test]
fn a_missing_overridden_or_unbounded_retention_is_caught() {
    caught(check_retention, "WebhookFunction: RETENTION_DAYS", |t| {
        t["Resources"]["WebhookFunction"]["Properties"]["Environment"]["Variables"]["RETENTION_DAYS"] = json!("30");
    });
    caught(check_retention, "CasesApiFunction: RETENTION_DAYS", |t| {
        t["Globals"]["Function"]["Environment"]["Variables"].as_object_mut().unwrap().remove("RETENTION_DAYS");
    });
    caught(check_retention, "parameter RetentionDays", |t| {
        t["Parameters"]["RetentionDays"].as_object_mut().unwrap().remove("MaxValue");
    });
    caught(check_retention, "parameter RetentionDays", |t| t["Parameters"]["RetentionDays"]["MinValue"] = json!(0));
    caught(check_retention, "TimeToLiveSpecification", |t| {
        table(t)["TimeToLiveSpecification"]["Enabled"] = json!(false);
    });
}
