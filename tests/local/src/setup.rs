//! `setup`: the table and the secret in moto, idempotently.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use crate::args::Args;
use crate::show::error_chain;
use crate::{Failure, Result, aws};

/// The flags `setup` takes.
pub const FLAGS: &[&str] = &[
    "table",
    "secret-id",
    "api-key",
    "api-secret",
    "webhook-key",
    "webhook-secret",
    "template",
    "events-bus",
    "events-queue",
    "events-dlq",
];

/// Creates the table and the secret (or finds them there).
pub async fn run(args: &Args) -> Result<()> {
    let table = args.required("table")?;
    let secret_id = args.required("secret-id")?;
    let api_key = args.required("api-key")?;
    let api_secret = args.required("api-secret")?;
    let endpoint = aws::endpoint()?;
    let sdk = aws::config().await?;

    let dynamodb = gateway_store::dynamodb_client(&sdk).await;
    if table_exists(&dynamodb, table).await? {
        println!("table {table}: already there (kept)");
    } else {
        match gateway_store::create_table(&dynamodb, table).await {
            Ok(()) => println!("table {table}: created from the store's definition"),
            // Created meanwhile by another run: that is the same table.
            Err(_) if table_exists(&dynamodb, table).await? => println!("table {table}: already there (kept)"),
            Err(e) => return Err(Failure(format!("creating table {table} in moto at {endpoint}: {e}"))),
        }
    }

    let secrets = aws_sdk_secretsmanager::Client::new(&sdk);
    let mut value = serde_json::json!({ "apiKey": api_key, "apiSecret": api_secret });
    // A separate secret for webhooks (and its key), when Cabital signs them with one.
    if let Some(secret) = args.get("webhook-secret") {
        value["webhookSecret"] = serde_json::json!(secret);
        if let Some(key) = args.get("webhook-key") {
            value["webhookKey"] = serde_json::json!(key);
        }
    }
    let value = value.to_string();
    match secrets.create_secret().name(secret_id).secret_string(&value).send().await {
        Ok(_) => println!("secret {secret_id}: created ({{\"apiKey\", \"apiSecret\"}})"),
        Err(e) if e.code() == Some("ResourceExistsException") => {
            secrets
                .put_secret_value()
                .secret_id(secret_id)
                .secret_string(&value)
                .send()
                .await
                .map_err(|e| Failure(format!("updating secret {secret_id} in moto: {}", error_chain(&e))))?;
            println!("secret {secret_id}: already there (value set again)");
        }
        Err(e) => {
            return Err(Failure(format!("creating secret {secret_id} in moto at {endpoint}: {}", error_chain(&e))));
        }
    }
    if let Some(bus) = args.get("events-bus") {
        let template = args.required("template")?;
        let queue = args.required("events-queue")?;
        let dlq = args.required("events-dlq")?;
        let source = crate::pipe::PipeSpec::from_template(std::path::Path::new(template))?.source;
        events_out(&sdk, bus, &source, queue, dlq).await?;
    }
    Ok(())
}

/// The case events' way out, as a consumer would set it up: the bus (which the stack
/// creates on AWS), a rule on the gateway's source into a queue, and the pipe's DLQ.
async fn events_out(sdk: &aws_config::SdkConfig, bus: &str, source: &str, queue: &str, dlq: &str) -> Result<()> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let fail = |what: String| move |e: String| Failure(format!("{what} in moto: {e}"));
    match events.create_event_bus().name(bus).send().await {
        Ok(_) => {}
        Err(e) if e.code() == Some("ResourceAlreadyExistsException") => {}
        Err(e) => return Err(fail(format!("creating bus {bus}"))(error_chain(&e))),
    }
    let mut arns = Vec::new();
    for name in [queue, dlq] {
        let url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(|e| fail(format!("creating queue {name}"))(error_chain(&e)))?
            .queue_url
            .ok_or("no queue URL")?;
        let attrs = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| fail(format!("reading queue {name}"))(error_chain(&e)))?;
        let arn = attrs
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .ok_or("no queue ARN")?
            .clone();
        arns.push(arn);
    }
    let pattern = serde_json::json!({ "source": [source] }).to_string();
    events
        .put_rule()
        .name("case-events-to-queue")
        .event_bus_name(bus)
        .event_pattern(&pattern)
        .send()
        .await
        .map_err(|e| fail("creating the rule".into())(error_chain(&e)))?;
    let target =
        aws_sdk_eventbridge::types::Target::builder().id("queue").arn(&arns[0]).build().map_err(|e| e.to_string())?;
    events
        .put_targets()
        .rule("case-events-to-queue")
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| fail("targeting the queue".into())(error_chain(&e)))?;
    println!("events: bus {bus}, rule {pattern} -> queue {queue}; the pipe's DLQ {dlq}");
    Ok(())
}

/// A queue's URL in moto, by name.
pub async fn queue_url(sdk: &aws_config::SdkConfig, name: &str) -> Result<String> {
    aws_sdk_sqs::Client::new(sdk)
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| Failure(format!("queue {name} in moto: {}", error_chain(&e))))?
        .queue_url
        .ok_or_else(|| Failure(format!("queue {name}: no URL")))
}

async fn table_exists(client: &aws_sdk_dynamodb::Client, table: &str) -> Result<bool> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(false),
        Err(e) => Err(Failure(format!(
            "asking moto at {} about table {table}: {}",
            aws::endpoint().unwrap_or_default(),
            error_chain(&e)
        ))),
    }
}
