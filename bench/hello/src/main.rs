//! `gateway-hello`: the `lambda_runtime` example's hello world, as the runtime's own
//! examples write it (tokio's multi-thread runtime, the default tracing subscriber, then
//! `run`). The second floor beside `gateway-hello-lean`; it answers every event with the event itself.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

async fn echo(event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(event.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    run(service_fn(echo)).await
}
