//! `pipe`: the local stand-in for the case-events pipe (`CaseEventsPipe` in
//! infra/template.yaml), which AWS runs and moto does not.
//!
//! It reads the table's stream from moto (DynamoDB Streams), keeps the records the
//! pipe's filter keeps, turns each into an event with the pipe's input template, detail
//! type and source, and puts them on moto's bus (EventBridge), where a rule routes them
//! to a queue (SQS), as a consumer's rule would. The filter, the template, the detail
//! type, the source, the batch size and the retries are read from the template itself,
//! never copied here: a change there is what runs here. Anything in them this stand-in
//! does not know how to apply exactly (another filter operator, a reserved variable) stops
//! it with a message rather than being guessed at.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::args::Args;
use crate::show::error_chain;
use crate::{Failure, Result, aws, ensure};

/// The flags `pipe` takes.
pub const FLAGS: &[&str] = &["template", "table", "bus", "dlq"];

/// What the template says the pipe does.
#[derive(Debug, Clone)]
pub struct PipeSpec {
    /// The filter patterns (a record is kept if any matches).
    pub filters: Vec<Value>,
    /// The input template: the event's detail.
    pub input_template: String,
    /// The detail type: a JSON path into the record (`$.…`) or a fixed text.
    pub detail_type: String,
    /// The events' source.
    pub source: String,
    /// Records read at once.
    pub batch_size: i32,
    /// Tries of a failing batch after the first.
    pub max_retries: u32,
}

impl PipeSpec {
    /// The one `AWS::Pipes::Pipe` of the template at `path`.
    pub fn from_template(path: &Path) -> Result<PipeSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let yaml: serde_norway::Value =
            serde_norway::from_str(&text).map_err(|e| format!("parsing {}: {e}", path.display()))?;
        let template = untag(yaml);
        let pipes: Vec<&Value> = template["Resources"]
            .as_object()
            .map(|r| r.values().filter(|v| v["Type"] == "AWS::Pipes::Pipe").collect())
            .unwrap_or_default();
        let [pipe] = pipes.as_slice() else {
            return Err(Failure(format!("{}: expected one AWS::Pipes::Pipe, found {}", path.display(), pipes.len())));
        };
        let p = &pipe["Properties"];
        let text_at = |v: &Value, what: &str| -> Result<String> {
            v.as_str().map(str::to_owned).ok_or_else(|| Failure(format!("the pipe's {what} is not a text: {v}")))
        };
        let filters = p["SourceParameters"]["FilterCriteria"]["Filters"]
            .as_array()
            .ok_or("the pipe has no FilterCriteria.Filters")?
            .iter()
            .map(|f| {
                let pattern = text_at(&f["Pattern"], "filter Pattern")?;
                serde_json::from_str(&pattern).map_err(|e| Failure(format!("a filter pattern is not JSON: {e}")))
            })
            .collect::<Result<Vec<Value>>>()?;
        let stream = &p["SourceParameters"]["DynamoDBStreamParameters"];
        ensure(stream["StartingPosition"] == "TRIM_HORIZON", || {
            format!("the stand-in reads from TRIM_HORIZON; the pipe says {}", stream["StartingPosition"])
        })?;
        let bus = &p["TargetParameters"]["EventBridgeEventBusParameters"];
        let source = match &bus["Source"] {
            Value::String(s) => s.clone(),
            // `!Ref Parameter`: its default.
            Value::Object(o) if o.contains_key("Ref") => {
                let name = text_at(&o["Ref"], "Source's !Ref")?;
                text_at(&template["Parameters"][&name]["Default"], "Source parameter's default")?
            }
            other => return Err(Failure(format!("the pipe's Source is neither a text nor a !Ref: {other}"))),
        };
        Ok(PipeSpec {
            filters,
            input_template: text_at(&p["TargetParameters"]["InputTemplate"], "InputTemplate")?,
            detail_type: text_at(&bus["DetailType"], "DetailType")?,
            source,
            batch_size: stream["BatchSize"].as_i64().and_then(|n| i32::try_from(n).ok()).unwrap_or(10),
            max_retries: stream["MaximumRetryAttempts"].as_u64().and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
        })
    }

    /// Whether the pipe keeps `record` (a stream record as the pipe sees it).
    pub fn keeps(&self, record: &Value) -> Result<bool> {
        for filter in &self.filters {
            if matches(filter, record)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The event's detail, from the input template.
    pub fn detail(&self, record: &Value) -> Result<Value> {
        transform(&self.input_template, record)
    }

    /// The event's detail type.
    pub fn detail_type_of(&self, record: &Value) -> Result<String> {
        match self.detail_type.strip_prefix("$.") {
            Some(path) => match lookup(record, path) {
                Some(Value::String(s)) => Ok(s.clone()),
                other => Err(Failure(format!("DetailType {}: not a text in the record ({other:?})", self.detail_type))),
            },
            None => Ok(self.detail_type.clone()),
        }
    }
}

/// CloudFormation's short tags (`!Ref X`, `!GetAtt A.B`, ...) as their long forms
/// (`{"Ref": X}`, `{"Fn::GetAtt": ...}`), the rest as JSON.
fn untag(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => serde_json::to_value(&n).unwrap_or(Value::Null),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(untag).collect()),
        Y::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other).unwrap_or_default().trim().to_owned(),
                };
                out.insert(key, untag(v));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let key = if name == "Ref" || name == "Condition" { name.to_owned() } else { format!("Fn::{name}") };
            json!({ key: untag(tagged.value) })
        }
    }
}

/// EventBridge's pattern matching, the part the pipe's filter uses: nested objects,
/// arrays of exact values, `{"prefix": ...}`. Anything else is refused, not guessed.
pub fn matches(pattern: &Value, event: &Value) -> Result<bool> {
    let Value::Object(fields) = pattern else {
        return Err(Failure(format!("a filter pattern must be an object: {pattern}")));
    };
    for (key, wanted) in fields {
        let value = event.get(key);
        let ok = match wanted {
            Value::Object(_) => match value {
                Some(inner @ Value::Object(_)) => matches(wanted, inner)?,
                _ => false,
            },
            Value::Array(choices) => {
                let mut any = false;
                for choice in choices {
                    if matches_one(choice, value)? {
                        any = true;
                        break;
                    }
                }
                any
            }
            other => return Err(Failure(format!("filter {key}: a pattern's leaf must be an array, not {other}"))),
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

fn matches_one(choice: &Value, value: Option<&Value>) -> Result<bool> {
    match choice {
        Value::Object(op) => match (op.len(), op.get("prefix")) {
            (1, Some(Value::String(prefix))) => {
                Ok(matches!(value, Some(Value::String(s)) if s.starts_with(prefix.as_str())))
            }
            _ => Err(Failure(format!("filter operator {choice} is not one the stand-in applies (prefix only)"))),
        },
        Value::String(_) | Value::Number(_) | Value::Bool(_) | Value::Null => Ok(value == Some(choice)),
        Value::Array(_) => Err(Failure(format!("a filter value may not be an array: {choice}"))),
    }
}

/// A dotted JSON path (`dynamodb.NewImage.kind.S`) in `v`.
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| v.get(key))
}

/// The input template with each `<$.path>` replaced, as EventBridge Pipes documents it:
/// inside quotes the value's text (escaped, so the result stays valid JSON), outside
/// quotes the value as JSON. A path the record lacks, or a reserved variable, is an
/// error. The result must be a JSON object (an event's detail).
pub fn transform(template: &str, record: &Value) -> Result<Value> {
    let mut out = String::with_capacity(template.len() * 2);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = template;
    while let Some(c) = rest.chars().next() {
        if c == '<' && rest.starts_with("<$.") {
            let end =
                rest.find('>').ok_or_else(|| Failure(format!("an unclosed placeholder in the template: {rest}")))?;
            let path = &rest[3..end];
            let value = lookup(record, path)
                .ok_or_else(|| Failure(format!("the record has no $.{path} (the input template names it)")))?;
            if in_string {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    other => return Err(Failure(format!("$.{path} inside quotes is not a scalar: {other}"))),
                };
                let quoted = serde_json::to_string(&text)?;
                out.push_str(&quoted[1..quoted.len() - 1]);
            } else {
                out.push_str(&serde_json::to_string(value)?);
            }
            rest = &rest[end + 1..];
            continue;
        }
        if c == '<' && rest.starts_with("<aws.") {
            return Err(Failure("the input template uses a reserved variable the stand-in does not have".into()));
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    let detail: Value = serde_json::from_str(&out).map_err(|e| format!("the transformed template is not JSON: {e}"))?;
    ensure(detail.is_object(), || format!("an event's detail must be a JSON object, not {detail}"))?;
    Ok(detail)
}

/// A stream record, as the SDK gives it, in the JSON a pipe sees (DynamoDB JSON images).
pub fn record_json(r: &aws_sdk_dynamodbstreams::types::Record) -> Value {
    let mut dynamodb = Map::new();
    if let Some(d) = r.dynamodb() {
        let image = |m: Option<&HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>>| {
            m.map(|m| Value::Object(m.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect()))
        };
        for (name, value) in
            [("Keys", image(d.keys())), ("NewImage", image(d.new_image())), ("OldImage", image(d.old_image()))]
        {
            if let Some(v) = value {
                dynamodb.insert(name.into(), v);
            }
        }
        if let Some(seq) = d.sequence_number() {
            dynamodb.insert("SequenceNumber".into(), json!(seq));
        }
        if let Some(view) = d.stream_view_type() {
            dynamodb.insert("StreamViewType".into(), json!(view.as_str()));
        }
    }
    json!({
        "eventID": r.event_id(),
        "eventName": r.event_name().map(|n| n.as_str()),
        "eventVersion": r.event_version(),
        "eventSource": r.event_source(),
        "awsRegion": r.aws_region(),
        "dynamodb": dynamodb,
    })
}

/// One attribute value in DynamoDB JSON (`{"S": "..."}`, `{"N": "1"}`, ...).
fn attribute_json(v: &aws_sdk_dynamodbstreams::types::AttributeValue) -> Value {
    use aws_sdk_dynamodbstreams::primitives::Blob;
    use aws_sdk_dynamodbstreams::types::AttributeValue as A;
    use base64::Engine;
    let b64 = |b: &Blob| base64::engine::general_purpose::STANDARD.encode(b.as_ref());
    match v {
        A::S(s) => json!({ "S": s }),
        A::N(n) => json!({ "N": n }),
        A::Bool(b) => json!({ "BOOL": b }),
        A::Null(b) => json!({ "NULL": b }),
        A::B(b) => json!({ "B": b64(b) }),
        A::Ss(v) => json!({ "SS": v }),
        A::Ns(v) => json!({ "NS": v }),
        A::Bs(v) => json!({ "BS": v.iter().map(b64).collect::<Vec<_>>() }),
        A::L(items) => json!({ "L": items.iter().map(attribute_json).collect::<Vec<_>>() }),
        A::M(m) => json!({ "M": m.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<Map<_, _>>() }),
        _ => json!({ "UNKNOWN": true }),
    }
}

/// `pipe --template PATH --table NAME --bus NAME [--dlq QUEUE]`: runs until stopped.
pub async fn run(args: &Args) -> Result<()> {
    let spec = PipeSpec::from_template(Path::new(args.required("template")?))?;
    let table = args.required("table")?;
    let bus = args.required("bus")?;
    let sdk = aws::config().await?;
    let dlq = match args.get("dlq") {
        Some(name) => Some(crate::setup::queue_url(&sdk, name).await?),
        None => None,
    };
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let streams = aws_sdk_dynamodbstreams::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);

    let described = dynamodb.describe_table().table_name(table).send().await.map_err(|e| error_chain(&e))?;
    let arn = described
        .table()
        .and_then(|t| t.latest_stream_arn())
        .ok_or_else(|| Failure(format!("table {table} has no stream (its definition turns one on)")))?
        .to_owned();
    let stream = streams.describe_stream().stream_arn(&arn).send().await.map_err(|e| error_chain(&e))?;
    let shard = stream
        .stream_description()
        .and_then(|d| d.shards().first())
        .and_then(|s| s.shard_id())
        .ok_or("the stream has no shard")?
        .to_owned();
    let mut iterator = streams
        .get_shard_iterator()
        .stream_arn(&arn)
        .shard_id(&shard)
        .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::TrimHorizon)
        .send()
        .await
        .map_err(|e| error_chain(&e))?
        .shard_iterator
        .ok_or("no shard iterator")?;
    println!(
        "pipe: {table}'s stream -> bus {bus} (source {}, detail-type {}, {} filter(s), from {})",
        spec.source,
        spec.detail_type,
        spec.filters.len(),
        args.required("template")?
    );
    let mut put = 0u64;
    loop {
        // A failed read (moto frozen by the chaos run, say) is tried again, as the pipe
        // does; the iterator stays valid.
        let out = match streams.get_records().shard_iterator(&iterator).limit(spec.batch_size.max(1) * 10).send().await
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("pipe: reading the stream failed, again in 1 s: {}", error_chain(&e));
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let records = out.records();
        for batch in records.chunks(usize::try_from(spec.batch_size.max(1)).unwrap_or(10)) {
            let mut entries = Vec::new();
            for r in batch {
                let record = record_json(r);
                if !spec.keeps(&record)? {
                    continue;
                }
                entries.push(
                    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                        .event_bus_name(bus)
                        .source(&spec.source)
                        .detail_type(spec.detail_type_of(&record)?)
                        .detail(spec.detail(&record)?.to_string())
                        .build(),
                );
            }
            if entries.is_empty() {
                continue;
            }
            let count = entries.len() as u64;
            if put_with_retries(&events, entries, spec.max_retries).await {
                put += count;
            } else if let Some(dlq) = &dlq {
                let first = batch.first().and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number());
                let last = batch.last().and_then(|r| r.dynamodb()).and_then(|d| d.sequence_number());
                let body = json!({
                    "context": {"condition": "RetryAttemptsExhausted"},
                    "dynamoDbStreamBatchInfo": {
                        "shardId": shard, "streamArn": arn,
                        "startSequenceNumber": first, "endSequenceNumber": last, "batchSize": batch.len(),
                    }
                });
                sqs.send_message()
                    .queue_url(dlq)
                    .message_body(body.to_string())
                    .send()
                    .await
                    .map_err(|e| error_chain(&e))?;
                eprintln!("pipe: a batch of {count} event(s) failed every retry: recorded on the DLQ");
            }
        }
        if put > 0 && !records.is_empty() {
            println!("pipe: {put} event(s) put so far");
        }
        let idle = records.is_empty();
        iterator = out.next_shard_iterator.ok_or("the stream's shard closed")?;
        if idle {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// PutEvents, the failed entries retried with backoff (up to 2 s apart) `retries` times,
/// the pipe's MaximumRetryAttempts: whether every entry was put.
async fn put_with_retries(
    events: &aws_sdk_eventbridge::Client,
    mut entries: Vec<aws_sdk_eventbridge::types::PutEventsRequestEntry>,
    retries: u32,
) -> bool {
    for attempt in 0..=retries {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis((100u64 << attempt.min(5)).min(2_000))).await;
        }
        match events.put_events().set_entries(Some(entries.clone())).send().await {
            Ok(out) if out.failed_entry_count() == 0 => return true,
            Ok(out) => {
                // Keep only the entries that failed (results are in request order).
                entries = entries
                    .into_iter()
                    .zip(out.entries())
                    .filter(|(_, r)| r.error_code().is_some())
                    .map(|(e, _)| e)
                    .collect();
            }
            Err(e) => eprintln!("pipe: PutEvents failed: {}", error_chain(&e)),
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: &str, sk: &str, event: &str) -> Value {
        json!({
            "eventName": event,
            "dynamodb": {
                "Keys": {"pk": {"S": "CASE#1"}, "sk": {"S": sk}},
                "NewImage": {"kind": {"S": kind}, "caseVersion": {"N": "12"}, "externalCaseId": {"S": "a \"quoted\" \\ id"}}
            }
        })
    }

    fn spec() -> PipeSpec {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/template.yaml");
        PipeSpec::from_template(&root).unwrap()
    }

    #[test]
    fn the_templates_filter_keeps_new_event_items_only() {
        let spec = spec();
        assert!(spec.keeps(&record("DECISION", "EVENT#2026#DECISION#00", "INSERT")).unwrap());
        assert!(!spec.keeps(&record("DECISION", "EVENT#2026#DECISION#00", "MODIFY")).unwrap(), "a count going up");
        assert!(!spec.keeps(&record("", "CASE", "INSERT")).unwrap(), "the case item");
        assert!(!spec.keeps(&record("", "WEBHOOK#abc", "INSERT")).unwrap(), "a de-duplication item");
        assert_eq!(spec.source, "cabital-kyc-gateway", "the parameter's default");
        assert_eq!(spec.detail_type_of(&record("OGS_ON", "EVENT#x", "INSERT")).unwrap(), "OGS_ON");
    }

    #[test]
    fn placeholders_in_quotes_are_escaped_text_and_outside_are_json() {
        let r = record("DECISION", "EVENT#1", "INSERT");
        let detail = transform(
            r#"{"v": "<$.dynamodb.NewImage.caseVersion.N>", "ext": "<$.dynamodb.NewImage.externalCaseId.S>", "raw": <$.dynamodb.Keys.sk>, "t": "id <$.dynamodb.Keys.sk.S>!"}"#,
            &r,
        )
        .unwrap();
        assert_eq!(
            detail,
            json!({"v": "12", "ext": "a \"quoted\" \\ id", "raw": {"S": "EVENT#1"}, "t": "id EVENT#1!"})
        );
    }

    #[test]
    fn what_the_stand_in_cannot_apply_exactly_stops_it() {
        let r = record("DECISION", "EVENT#1", "INSERT");
        assert!(transform(r#"{"x": "<$.dynamodb.NewImage.missing.S>"}"#, &r).is_err(), "a path the record lacks");
        assert!(transform(r#"{"x": "<aws.pipes.pipe-arn>"}"#, &r).is_err(), "a reserved variable");
        assert!(transform(r#""just text""#, &r).is_err(), "a detail that is no object");
        assert!(matches(&json!({"eventName": [{"anything-but": "REMOVE"}]}), &r).is_err());
        assert!(matches(&json!({"eventName": "INSERT"}), &r).is_err(), "a leaf that is no array");
    }
}
