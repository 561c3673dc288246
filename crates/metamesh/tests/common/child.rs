//! A child process that cannot outlive its test: killed (SIGKILL) when dropped, so a failed
//! assertion never leaves a mesh running. Its stdout and stderr go to a log file, shown when
//! something goes wrong. Include it with `#[path = "common/child.rs"] mod child;`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct ChildGuard {
    /// For messages.
    pub name: String,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    child: Option<Child>,
}

impl ChildGuard {
    /// Spawns `command` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut command: Command, log: &Path) -> ChildGuard {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let err = out.try_clone().unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        ChildGuard { name: name.to_owned(), log: log.to_owned(), child: Some(child) }
    }

    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it exited already (and how).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Waits up to `timeout` for it to exit by itself; SIGKILL and `None` when it does not.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut child = self.child.take()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM (the `kill` command: no libc here), then waits up to `timeout`; SIGKILL and
    /// `None` when it does not stop in time.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let pid = self.id()?;
        let _ = Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
        self.wait_for_exit(timeout)
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `command` to its end within `timeout` (killed after it), output appended to `log`.
/// Returns the exit status (`None`: killed for taking too long) and the log so far.
pub fn run_to_end(name: &str, command: Command, log: &Path, timeout: Duration) -> (Option<ExitStatus>, String) {
    let mut child = ChildGuard::spawn(name, command, log);
    let status = child.wait_for_exit(timeout);
    (status, child.log_text())
}
