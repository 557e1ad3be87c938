//! Writes the AWS SDK's trust stores as PEM documents (its trust store takes PEM only):
//! encoded here once rather than at every cold start (`./bench/run.sh` measures the
//! init).
//!
//! - `mozilla_roots.pem`: Mozilla's root certificates (`webpki-root-certs`), all of them.
//! - `amazon_roots.pem`: of those, the roots of Amazon Trust Services, which issues the
//!   certificates of AWS's service endpoints: Amazon Root CA 1 to 4 and Starfield
//!   Services Root Certificate Authority - G2 (which cross-signs them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a build script: a panic fails the build, never a function"
)]

use std::fmt::Write as _;

use base64::Engine;

/// The subjects of Amazon Trust Services' roots (<https://www.amazontrust.com/repository/>).
const AMAZON_ROOTS: [&str; 5] = [
    "Amazon Root CA 1",
    "Amazon Root CA 2",
    "Amazon Root CA 3",
    "Amazon Root CA 4",
    "Starfield Services Root Certificate Authority - G2",
];

fn pem_of<'a>(certs: impl Iterator<Item = &'a [u8]>) -> String {
    let mut pem = String::new();
    for der in certs {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let mut rest = b64.as_str();
        while !rest.is_empty() {
            // Base64 is ASCII: any split is on a character boundary.
            let (line, tail) = rest.split_at(rest.len().min(64));
            let _ = writeln!(pem, "{line}");
            rest = tail;
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// Whether `der` names `subject` (a root names itself twice: subject and issuer).
fn names(der: &[u8], subject: &str) -> bool {
    der.windows(subject.len()).any(|w| w == subject.as_bytes())
}

fn main() {
    let all: Vec<&[u8]> = webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().map(|c| c.as_ref()).collect();
    let mut amazon = Vec::new();
    for subject in AMAZON_ROOTS {
        let found: Vec<&[u8]> = all.iter().copied().filter(|der| names(der, subject)).collect();
        assert_eq!(found.len(), 1, "expected exactly one root named {subject:?} in webpki-root-certs");
        amazon.push(found[0]);
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("mozilla_roots.pem"), pem_of(all.into_iter())).expect("OUT_DIR is writable");
    std::fs::write(out.join("amazon_roots.pem"), pem_of(amazon.into_iter())).expect("OUT_DIR is writable");
    println!("cargo::rerun-if-changed=build.rs");
}
