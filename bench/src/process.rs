//! Starting a function as Lambda would (a clean environment, the Runtime API's
//! address), reading its peak RSS, stopping it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How often a waiting driver looks whether the process has exited.
const EXIT_POLL: Duration = Duration::from_millis(10);

/// What to start: a binary, or an interpreter with a script.
#[derive(Debug, Clone)]
pub struct Program {
    /// Shown in the table.
    pub name: String,
    /// The executable.
    pub path: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment added to (or replacing in) what it is started with.
    pub env: Vec<(String, String)>,
}

impl Program {
    /// A binary with no arguments.
    pub fn binary(name: &str, path: PathBuf) -> Self {
        Program { name: name.to_owned(), path, args: Vec::new(), env: Vec::new() }
    }
}

/// A started process, killed and reaped when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    /// Starts `program` with exactly `env` (nothing inherited, as on Lambda), its output
    /// appended to `log`. Returns it and the instant just before the spawn.
    pub fn start(program: &Program, env: &[(String, String)], log: &Path) -> std::io::Result<(Self, Instant)> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let mut command = Command::new(&program.path);
        command
            .args(&program.args)
            .env_clear()
            .envs(env.iter().chain(&program.env).map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        let started = Instant::now();
        let child = command.spawn()?;
        Ok((Process { child }, started))
    }

    /// Resolves when the process has exited, with its status in words.
    pub async fn exited(&mut self) -> String {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.to_string(),
                Ok(None) => tokio::time::sleep(EXIT_POLL).await,
                Err(e) => return e.to_string(),
            }
        }
    }

    /// Peak resident set size in KiB (`VmHWM` of `/proc/PID/status`).
    /// Time on CPU so far, all its threads together (`/proc/PID/task/*/schedstat`,
    /// nanoseconds; a thread that has exited is no longer counted).
    pub fn cpu_time(&self) -> Option<Duration> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).ok()?;
        let mut total = 0u64;
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(Duration::from_nanos(total))
    }

    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGKILL, then reap: the wait returns at once.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
