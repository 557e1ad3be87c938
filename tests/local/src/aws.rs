//! AWS clients for moto, and only for moto.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;

use crate::{Failure, Result};

/// moto's URL: `MOTO_ENDPOINT`, else `AWS_ENDPOINT_URL`. Never none: without an
/// endpoint the SDK would go to real AWS.
pub fn endpoint() -> Result<String> {
    ["MOTO_ENDPOINT", "AWS_ENDPOINT_URL"]
        .iter()
        .filter_map(|name| std::env::var(name).ok())
        .find(|v| !v.trim().is_empty())
        .ok_or_else(|| {
            Failure(
                "no emulator endpoint: set MOTO_ENDPOINT (or AWS_ENDPOINT_URL) to moto's URL, \
                 e.g. http://127.0.0.1:5000 (./scripts/local.sh does)"
                    .to_owned(),
            )
        })
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_owned())
}

/// The SDK's configuration for moto: its endpoint, the region of `AWS_REGION`
/// (default `us-east-1`), the test credentials of the environment (default `testing`).
pub async fn config() -> Result<SdkConfig> {
    let endpoint = endpoint()?;
    let credentials = Credentials::new(
        env_or("AWS_ACCESS_KEY_ID", "testing"),
        env_or("AWS_SECRET_ACCESS_KEY", "testing"),
        None,
        None,
        "gateway-local",
    );
    Ok(aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(env_or("AWS_REGION", "us-east-1")))
        .credentials_provider(credentials)
        .load()
        .await)
}
