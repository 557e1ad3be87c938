//! The reconcile Lambda: tracing, settings, clients once per cold start, then `run`.

use lambda_runtime::{Error, run, service_fn};
use reconcile::{App, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gateway_runtime::logging::init();
    let app = App::from_env().await?;
    run(service_fn(|event| handle(&app, event))).await
}
