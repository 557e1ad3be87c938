//! Writes Mozilla's root certificates (`webpki-root-certs`) as one PEM document, for the
//! AWS SDK's trust store, which takes PEM only: encoded here once rather than at every
//! cold start (`./bench/run.sh` measures the init).

use std::fmt::Write as _;

use base64::Engine;

fn main() {
    let mut pem = String::with_capacity(webpki_root_certs::TLS_SERVER_ROOT_CERTS.len() * 2200);
    for cert in webpki_root_certs::TLS_SERVER_ROOT_CERTS {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        let mut rest = b64.as_str();
        while !rest.is_empty() {
            // Base64 is ASCII: any split is on a character boundary.
            let (line, tail) = rest.split_at(rest.len().min(64));
            let _ = writeln!(pem, "{line}");
            rest = tail;
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("mozilla_roots.pem"), pem).expect("OUT_DIR is writable");
    println!("cargo::rerun-if-changed=build.rs");
}
