//! `setup`: the table and the secret in moto, idempotently.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;

use crate::args::Args;
use crate::show::error_chain;
use crate::{Failure, Result, aws};

/// The flags `setup` takes.
pub const FLAGS: &[&str] = &["table", "secret-id", "api-key", "api-secret", "webhook-key", "webhook-secret"];

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
    Ok(())
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
