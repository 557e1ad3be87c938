//! `gateway-rng-probe`: prints, in milliseconds, how long this fresh process's first and
//! second 32 random bytes from aws-lc took. The first is what the first TLS handshake
//! of a function pays (rustls over aws-lc draws its key share from it): with aws-lc's
//! CPU jitter entropy source, it seeds the generator then. `./bench/run.sh` builds it
//! twice, with and without `AWS_LC_SYS_NO_JITTER_ENTROPY=1`, and runs each ten times.

use std::process::ExitCode;
use std::time::Instant;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

fn main() -> ExitCode {
    let rng = SystemRandom::new();
    let mut bytes = [0u8; 32];
    let t = Instant::now();
    let first = rng.fill(&mut bytes).map(|()| t.elapsed());
    let t = Instant::now();
    let second = rng.fill(&mut bytes).map(|()| t.elapsed());
    match (first, second) {
        (Ok(first), Ok(second)) => {
            println!("{} {}", first.as_secs_f64() * 1000.0, second.as_secs_f64() * 1000.0);
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("gateway-rng-probe: aws-lc gave no randomness");
            ExitCode::FAILURE
        }
    }
}
