//! The reconcile Lambda: tracing, settings, clients once per cold start, then `run`.

use gateway_reconcile::{App, handle};
use lambda_runtime::{Error, run, service_fn};

// One thread: Lambda hands a process one event at a time, on one vCPU up to 1,769 MB;
// worker threads would only be spawned and parked at each cold start (`./bench/run.sh`
// measures the init). I/O still runs concurrently (the init's secret, DynamoDB and
// Cabital warm-ups; reconcile's checks).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    gateway_runtime::logging::init();
    let app = App::from_env().await?;
    run(service_fn(|event| handle(&app, event))).await
}
