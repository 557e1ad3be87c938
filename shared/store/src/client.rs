//! The DynamoDB client with deliberate retry and timeout settings.

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::interceptors::InterceptorContext;
use aws_sdk_dynamodb::config::retry::{ClassifyRetry, RetryAction, RetryConfig};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;

use crate::error::is_transient_reason;

/// Attempts per call, the first included. Standard mode retries throttling, 5xx and
/// transport errors with exponential backoff and full jitter; with the short backoff
/// below, four attempts span well under a second of waiting, which a Lambda behind API
/// Gateway (30 s) can afford, while a table that stays throttled fails fast with
/// [`crate::StoreError::Throttled`] instead of eating the invocation's time.
pub const MAX_ATTEMPTS: u32 = 4;

/// The client's time limits.
///
/// The defaults suit DynamoDB behind a Lambda: a healthy call takes milliseconds, and a
/// hung connection must fail within the invocation, not at the Lambda's own timeout.
/// A function that must answer sooner (the webhook, whose sender gives up after some
/// seconds of its own) or an emulator that can freeze chooses shorter ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreTimeouts {
    /// To open a connection (default 2 s).
    pub connect: Duration,
    /// One attempt (default 5 s).
    pub attempt: Duration,
    /// One call with all its retries (default 12 s).
    pub operation: Duration,
}

impl Default for StoreTimeouts {
    fn default() -> Self {
        StoreTimeouts {
            connect: Duration::from_secs(2),
            attempt: Duration::from_secs(5),
            operation: Duration::from_secs(12),
        }
    }
}

/// The DynamoDB client every function uses, with the default [`StoreTimeouts`].
///
/// - Retries: standard mode (a retry quota guards against retry storms), four
///   attempts, backoff from 20 ms up to 1 s: DynamoDB answers in milliseconds, so the
///   SDK's default initial backoff of 1 s would mostly waste time. Besides throttling
///   and server errors, transaction conflicts are retried: a transaction cancelled only
///   because another one held the same items (`TransactionConflict`), or a plain write
///   refused for the same reason, can succeed moments later, and every write here is
///   conditional, so a retry never applies anything twice.
/// - Timeouts: 2 s to connect, 5 s per attempt, 12 s per call with its retries: a
///   healthy call takes milliseconds, and a hung connection must fail within the
///   invocation, not at the Lambda's own timeout.
/// - Endpoint and region come from `sdk` (so `AWS_ENDPOINT_URL` /
///   `AWS_ENDPOINT_URL_DYNAMODB` work, as read by `aws_config`).
pub async fn dynamodb_client(sdk: &SdkConfig) -> Client {
    dynamodb_client_with(sdk, StoreTimeouts::default()).await
}

/// [`dynamodb_client`] with other time limits.
pub async fn dynamodb_client_with(sdk: &SdkConfig, timeouts: StoreTimeouts) -> Client {
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(20))
                .with_max_backoff(Duration::from_secs(1)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeouts.connect)
                .operation_attempt_timeout(timeouts.attempt)
                .operation_timeout(timeouts.operation)
                .build(),
        )
        .retry_classifier(TransactionConflictClassifier)
        .build();
    Client::from_conf(config)
}

/// Marks transaction conflicts as transient errors, which the SDK's own classifiers do
/// not (a cancelled transaction is a 400).
#[derive(Debug)]
struct TransactionConflictClassifier;

impl ClassifyRetry for TransactionConflictClassifier {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(err)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        let Some(op) = err.as_operation_error() else {
            return RetryAction::NoActionIndicated;
        };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) =
            op.downcast_ref::<TransactWriteItemsError>()
        {
            let codes: Vec<&str> =
                cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
            // Only when nothing but conflicts stopped it: a failed condition is an
            // answer, not a hiccup.
            let only_transient = codes.iter().all(|c| *c == "None" || is_transient_reason(c));
            if only_transient && codes.iter().any(|c| is_transient_reason(c)) {
                return RetryAction::transient_error();
            }
            return RetryAction::NoActionIndicated;
        }
        let code = op
            .downcast_ref::<UpdateItemError>()
            .and_then(|e| e.code())
            .or_else(|| op.downcast_ref::<PutItemError>().and_then(|e| e.code()));
        if code == Some("TransactionConflictException") {
            return RetryAction::transient_error();
        }
        RetryAction::NoActionIndicated
    }

    fn name(&self) -> &'static str {
        "gateway-store transaction conflict"
    }
}
