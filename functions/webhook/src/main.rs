//! The webhook Lambda: tracing, settings, clients once per cold start, then `run`.

use lambda_http::{Error, run, service_fn};
use webhook::{App, handle};

#[tokio::main]
async fn main() -> Result<(), Error> {
    gateway_runtime::logging::init();
    let app = App::from_env().await?;
    run(service_fn(|request| handle(&app, request))).await
}
