//! `gateway-hello-lean`: the leanest Rust Lambda, the strict floor the functions' init is
//! judged against: tokio's current-thread runtime, as the functions run, and no tracing
//! subscriber. It answers every event with the event itself.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    run(service_fn(echo)).await
}
