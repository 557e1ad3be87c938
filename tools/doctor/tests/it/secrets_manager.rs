//! The secret read from Secrets Manager (moto), as the functions read it. Needs
//! `MOTO_ENDPOINT` (`./scripts/test.sh` sets it): without it the helpers panic.

use gateway_sandbox::{SandboxConfig, SignatureEncoding};

use crate::{API_KEY, API_SECRET, Run, doctor};

async fn doctor_with_secret_id(base_url: &str, secret_id: &str) -> Run {
    let moto = gateway_support::moto_endpoint();
    doctor(
        &[
            ("CABITAL_BASE_URL", base_url),
            ("CABITAL_SECRET_ID", secret_id),
            ("AWS_ENDPOINT_URL", &moto),
            ("AWS_REGION", gateway_support::REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn the_secret_from_secrets_manager_names_the_encoding() {
    let config = SandboxConfig {
        signature_encoding: SignatureEncoding::Base64,
        ..SandboxConfig::with_credential(API_KEY, API_SECRET)
    };
    let sandbox = gateway_sandbox::spawn(config).await.expect("the sandbox starts");
    let secret_id = gateway_support::fresh_secret(API_KEY, API_SECRET).await;
    let run = doctor_with_secret_id(&sandbox.base_url(), &secret_id).await;
    assert_eq!(run.code, Some(0), "{}", run.all());
    assert_eq!(run.last_line(), "CABITAL_SIGNATURE_ENCODING=base64", "{}", run.all());
    assert!(run.stdout.contains(&format!("Secrets Manager secret {secret_id}")), "{}", run.stdout);
    run.assert_no_secret();
}

#[tokio::test]
async fn a_missing_secret_is_named() {
    let _ = gateway_support::moto_endpoint();
    let run = doctor_with_secret_id("http://127.0.0.1:9", "gateway-doctor-no-such-secret").await;
    run.assert_failed(1, "resourcenotfoundexception");
}
