//! Cabital's request signing, both ways, and the credentials it needs.
//!
//! Every call to Cabital and every webhook from it carries `ACCESS-KEY`,
//! `ACCESS-TIMESTAMP` and `ACCESS-SIGN`, the last being
//! `HMAC-SHA256(apiSecret, timestamp + METHOD + requestPath + body)`.
//! [`sign`] makes them for outgoing calls (base64 by default, hex a setting);
//! [`verify_signature`] and [`verify`] check them on incoming webhooks, in either
//! encoding, with the API secret or a separate webhook secret. The keys and secrets come
//! from one Secrets Manager secret through [`CredentialStore`].

mod credentials;
mod scheme;

pub use credentials::{
    ApiKey, CredentialPolicy, CredentialSource, CredentialStore, Credentials, CredentialsError, Fallback, FallbackHook,
};
pub use scheme::{
    HEADER_KEY, HEADER_SIGN, HEADER_TIMESTAMP, IncomingHeaders, SignatureEncoding, SignedHeaders, SignedWith,
    UnknownEncoding, Verified, VerifyError, VerifyPolicy, prehash, sign, verify, verify_signature,
};

#[cfg(test)]
mod tests;
