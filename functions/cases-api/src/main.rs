//! The cases API Lambda: tracing, settings, clients once per cold start, then `run`.

use cases_api::{App, handle};
use lambda_http::{Error, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gateway_runtime::logging::init();
    let app = App::from_env().await?;
    run(service_fn(|request| handle(&app, request))).await
}
