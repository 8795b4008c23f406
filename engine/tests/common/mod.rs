//! Helpers shared by the engine's integration tests: a scratch directory per
//! test, free local ports, child processes that die with the test, and a
//! verdict that collects every failed expectation and prints the logs of
//! both sides before failing.
//!
//! Every integration test crate that says `mod common;` compiles all of this,
//! and each uses only part of it.
#![allow(dead_code)]

pub mod campaigns;
pub mod dialcast;
pub mod import_config;
pub mod media;
pub mod ports;
pub mod sipp;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A directory under the system temp dir for one test's files: scenario
/// copies, generated media, SIPp logs, dialcast output. Removed when the test
/// passes, kept (and named in the failure message) when it fails, and always
/// kept when the environment sets `DIALCAST_KEEP_WORKDIR`.
pub struct Workdir {
    name: String,
    path: PathBuf,
}

impl Workdir {
    pub fn new(test: &str) -> Workdir {
        static SERIAL: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "dialcast-{test}-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        if path.exists() {
            std::fs::remove_dir_all(&path).expect("remove a stale work dir");
        }
        std::fs::create_dir_all(&path).expect("create the work dir");
        Workdir {
            name: test.to_string(),
            path,
        }
    }

    /// The test name given to [`Workdir::new`].
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if !std::thread::panicking() && std::env::var_os("DIALCAST_KEEP_WORKDIR").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A child process that is killed when dropped, so that a failing assertion
/// never leaves SIPp or dialcast running (and holding ports) behind.
pub struct Guarded {
    child: Option<Child>,
    status: Option<ExitStatus>,
}

/// How a guarded child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// It exited by itself, with this exit code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// It was still running when the time was up, and was killed.
    TimedOut,
}

impl Ended {
    pub fn code(self) -> Option<i32> {
        match self {
            Ended::Exited(code) => code,
            Ended::TimedOut => None,
        }
    }
}

impl Guarded {
    pub fn new(child: Child) -> Guarded {
        Guarded {
            child: Some(child),
            status: None,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The exit status if the child has ended, without waiting.
    pub fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Some(child) = self.child.as_mut() {
                self.status = child.try_wait().expect("poll a child process");
            }
        }
        self.status
    }

    /// Waits up to `limit` for the child to exit; kills it after that.
    pub fn wait(&mut self, limit: Duration) -> Ended {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.poll() {
                return Ended::Exited(status.code());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Ended::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if self.status.is_none() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Reads a log file for a failure report: the whole file, or its last
/// `max_lines` lines when it is longer. Missing files say so.
pub fn log_tail(path: &Path, max_lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            if lines.len() <= max_lines {
                text.into_owned()
            } else {
                format!(
                    "[... {} earlier lines ...]\n{}",
                    lines.len() - max_lines,
                    lines[lines.len() - max_lines..].join("\n")
                )
            }
        }
        Err(_) => "(no such file)".to_string(),
    }
}

/// Collects failed expectations about one test run, then fails the test once
/// with all of them and with every log attached.
pub struct Verdict {
    test: String,
    failures: Vec<String>,
    logs: Vec<(String, String)>,
}

impl Verdict {
    pub fn new(test: &str) -> Verdict {
        Verdict {
            test: test.to_string(),
            failures: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Records a failure unless `ok`.
    pub fn check(&mut self, ok: bool, what: impl FnOnce() -> String) -> &mut Verdict {
        if !ok {
            self.failures.push(what());
        }
        self
    }

    pub fn fail(&mut self, what: String) -> &mut Verdict {
        self.failures.push(what);
        self
    }

    /// Attaches a log shown only if the verdict fails.
    pub fn log(&mut self, title: impl Into<String>, text: impl Into<String>) -> &mut Verdict {
        self.logs.push((title.into(), text.into()));
        self
    }

    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }

    /// How many expectations failed so far.
    pub fn failure_count(&self) -> usize {
        self.failures.len()
    }

    /// Panics with every failure and every attached log, if anything failed.
    pub fn finish(&self) {
        if self.failures.is_empty() {
            return;
        }
        let mut report = format!(
            "{}: {} expectation(s) failed:\n",
            self.test,
            self.failures.len()
        );
        for failure in &self.failures {
            let _ = writeln!(report, "  - {failure}");
        }
        for (title, text) in &self.logs {
            let _ = write!(report, "\n===== {title} =====\n{}\n", text.trim_end());
        }
        panic!("{report}");
    }
}
