//! Child processes of the campaign benchmark (`dialcast serve`, the bare
//! dialer): killed when dropped, stopped with SIGTERM, and measured from
//! outside through `/proc` so that each side's CPU is its own process's only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::procstat::{self, ProcSample};

/// A running child, killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    child: Child,
    name: &'static str,
    /// The last sample taken while it ran.
    pub last: ProcSample,
    /// Where its standard error goes.
    pub log: PathBuf,
}

impl Proc {
    /// Spawns `command`, whose stderr is already directed to `log`.
    pub fn spawn(name: &'static str, command: &mut Command, log: &Path) -> anyhow::Result<Proc> {
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc {
            child,
            name,
            last: ProcSample::default(),
            log: log.to_path_buf(),
        })
    }

    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// CPU and memory now; errors once the process has exited, pointing at
    /// its log.
    pub fn sample(&mut self) -> anyhow::Result<ProcSample> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!(
                "{} exited ({status}) during the run; see {}",
                self.name,
                self.log.display()
            );
        }
        let sample = procstat::sample(self.child.id())
            .with_context(|| format!("{} has no /proc entry", self.name))?;
        self.last = sample;
        Ok(sample)
    }

    /// CPU time of its live threads by thread name.
    pub fn threads(&self) -> BTreeMap<String, Duration> {
        procstat::threads(self.child.id())
    }

    /// Asks it to stop (SIGTERM) and waits up to `limit`, then kills it.
    pub fn terminate(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        send_sigterm(self.child.id());
        self.wait(limit)
    }

    /// Waits up to `limit` for it to exit by itself, then kills it.
    pub fn wait(&mut self, limit: Duration) -> anyhow::Result<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                let status = self.child.wait()?;
                anyhow::bail!(
                    "{} did not stop within {limit:?} and was killed ({status}); see {}",
                    self.name,
                    self.log.display()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.child.kill().ok();
        }
        self.child.wait().ok();
    }
}

fn send_sigterm(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    #[allow(unsafe_code)]
    // SAFETY: kill(2) has no memory preconditions; `pid` is our own child,
    // not yet reaped, so the id cannot have been reused.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
}

/// The 1, 5 and 15 minute load averages (`/proc/loadavg`); zeros if unreadable.
pub fn load_average() -> [f64; 3] {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut out = [0.0; 3];
    for (slot, field) in out.iter_mut().zip(text.split_whitespace()) {
        *slot = field.parse().unwrap_or(0.0);
    }
    out
}

/// A file to send a child's standard error (or output) to.
pub fn log_file(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}
