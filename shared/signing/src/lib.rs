//! Cabital's request signing, both ways, and the credentials it needs.
//!
//! Every call to Cabital and every webhook from it carries `ACCESS-KEY`,
//! `ACCESS-TIMESTAMP` and `ACCESS-SIGN`, the last being
//! `HMAC-SHA256(apiSecret, timestamp + METHOD + requestPath + body)`.
//! [`sign`] makes them for outgoing calls; [`verify`] checks them on incoming webhooks.
//! The key and secret come from one Secrets Manager secret through [`CredentialStore`].

mod credentials;
mod scheme;

pub use credentials::{ApiKey, CredentialSource, CredentialStore, Credentials, CredentialsError};
pub use scheme::{
    HEADER_KEY, HEADER_SIGN, HEADER_TIMESTAMP, IncomingHeaders, SignatureEncoding, SignedHeaders, UnknownEncoding,
    VerifyError, VerifyPolicy, prehash, sign, verify,
};

#[cfg(test)]
mod tests;
