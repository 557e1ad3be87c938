//! Properties: verification never panics on anything, and accepts exactly what was signed.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code: a panic is a failed test")]

use gateway_signing::{Credentials, IncomingHeaders, SignatureEncoding, VerifyPolicy, sign, verify};
use proptest::prelude::*;

fn creds() -> Credentials {
    Credentials::new("prop-key", "prop-secret").unwrap()
}

const POLICY: VerifyPolicy = VerifyPolicy { tolerance_secs: 300 };

proptest! {
    #[test]
    fn verify_never_panics_on_arbitrary_input(
        key in proptest::option::of(".{0,40}"),
        ts in proptest::option::of(".{0,24}"),
        sig in proptest::option::of(".{0,90}"),
        now in any::<i64>(),
        method in "[A-Za-z]{0,8}",
        path in ".{0,64}",
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let headers = IncomingHeaders { access_key: key.as_deref(), access_timestamp: ts.as_deref(), access_sign: sig.as_deref() };
        let _ = verify(&creds(), POLICY, headers, now, &method, &path, &body);
    }

    #[test]
    fn what_is_signed_verifies_and_any_change_does_not(
        ts in 1_000_000_000i64..4_000_000_000,
        method in prop::sample::select(vec!["GET", "POST", "DELETE"]),
        path in "/[a-z0-9/?=&-]{0,60}",
        body in proptest::collection::vec(any::<u8>(), 0..256),
        flip in any::<prop::sample::Index>(),
        encoding in prop::sample::select(vec![SignatureEncoding::Hex, SignatureEncoding::Base64]),
    ) {
        let h = sign(&creds(), encoding, ts, method, &path, &body);
        let headers = IncomingHeaders {
            access_key: Some(&h.access_key),
            access_timestamp: Some(&h.access_timestamp),
            access_sign: Some(&h.access_sign),
        };
        prop_assert_eq!(verify(&creds(), POLICY, headers, ts, method, &path, &body), Ok(ts));
        if !body.is_empty() {
            let mut altered = body.clone();
            let i = flip.index(altered.len());
            altered[i] ^= 0x01;
            prop_assert!(verify(&creds(), POLICY, headers, ts, method, &path, &altered).is_err());
        }
        let longer = format!("{path}x");
        prop_assert!(verify(&creds(), POLICY, headers, ts, method, &longer, &body).is_err());
    }
}
