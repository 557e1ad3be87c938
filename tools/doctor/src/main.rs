//! `doctor`: see the crate's documentation and `tools/doctor/README.md`.
//!
//! Exit 0: the last line of stdout is the setting to use. Exit 1: a check failed, the
//! reason on stderr. Exit 2: the command line or the environment is wrong.

use std::io::Write;
use std::process::ExitCode;

use gateway_doctor::{Invocation, USAGE, invocation, run, settings_from};

fn main() -> ExitCode {
    match invocation(std::env::args_os().skip(1)) {
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Ok(Invocation::Run) => {}
        Err(e) => return setup_failed(&e),
    }
    let settings = match settings_from(|name| std::env::var(name).ok()) {
        Ok(s) => s,
        Err(e) => return setup_failed(&e),
    };
    // One thread is plenty: the requests go one after another.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let mut stdout = std::io::stdout();
    match runtime.block_on(run(&settings, &mut stdout)) {
        Ok(encoding) => match writeln!(stdout, "CABITAL_SIGNATURE_ENCODING={encoding}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => failed(&e),
        },
        Err(e) => failed(&e),
    }
}

fn setup_failed(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("doctor: {e}");
    ExitCode::from(2)
}

fn failed(e: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("doctor: FAILED: {e}");
    ExitCode::from(1)
}
