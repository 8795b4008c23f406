//! Running `dial` or `listen` as a child process (`dialcast-engine`: the
//! `dialcast` binary's commands without the portal) and checking the JSON
//! outcome it prints.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ports::{self, Proto};
use super::{log_tail, Ended, Guarded, Verdict, Workdir};

/// The log filter given to dialcast when the environment sets none: enough
/// to follow the SIP and media decisions in a failure report.
const LOG_FILTER: &str = "info,dialcast=debug";

/// A running dialcast; killed when dropped.
pub struct Dialcast {
    process: Guarded,
    label: String,
    args: Vec<String>,
    stdout: PathBuf,
    stderr: PathBuf,
}

/// Starts `dialcast <args>`; `label` names its output files in the work dir.
pub fn spawn(work: &Workdir, label: &str, args: &[String]) -> Dialcast {
    let stdout = work.file(&format!("{label}-stdout.log"));
    let stderr = work.file(&format!("{label}-stderr.log"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_dialcast-engine"));
    command
        .args(args)
        .current_dir(work.path())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("create dialcast's stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("create dialcast's stderr file"));
    if std::env::var_os("DIALCAST_LOG").is_none() {
        command.env("DIALCAST_LOG", LOG_FILTER);
    }
    // Plain text in the log files (tracing-subscriber honours NO_COLOR).
    command.env("NO_COLOR", "1");
    let child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start dialcast: {e}"));
    Dialcast {
        process: Guarded::new(child),
        label: label.to_string(),
        args: args.to_vec(),
        stdout,
        stderr,
    }
}

impl Dialcast {
    /// Waits until dialcast has bound `port` (a `listen` ready for calls):
    /// a UDP socket, or a listening TCP socket. Returns false if it exited or
    /// took longer than `limit`.
    pub fn await_bound(&mut self, port: u16, proto: Proto, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !ports::bound(port, proto) {
            if self.process.poll().is_some() || Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Waits up to `limit` for dialcast to exit (killing it after that) and
    /// collects what it printed.
    pub fn finish(mut self, limit: Duration) -> Run {
        let ended = self.process.wait(limit);
        Run {
            label: self.label.clone(),
            args: std::mem::take(&mut self.args),
            ended,
            stdout: std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            stderr_path: self.stderr.clone(),
        }
    }
}

/// A finished dialcast run.
pub struct Run {
    pub label: String,
    pub args: Vec<String>,
    pub ended: Ended,
    pub stdout: String,
    stderr_path: PathBuf,
}

impl Run {
    /// Every stdout line that is a JSON object, in order.
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line.trim()).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// The JSON object on the last non-empty stdout line (the `--json`
    /// contract of `dial`), or a failure recorded and `Value::Null`.
    pub fn outcome(&self, verdict: &mut Verdict) -> Value {
        let last = self.stdout.lines().rev().find(|l| !l.trim().is_empty());
        match last.map(|l| serde_json::from_str::<Value>(l.trim())) {
            Some(Ok(value)) if value.is_object() => value,
            Some(_) => {
                verdict.fail(format!(
                    "{}: the last stdout line is not a JSON object",
                    self.label
                ));
                Value::Null
            }
            None => {
                verdict.fail(format!("{}: printed nothing on stdout", self.label));
                Value::Null
            }
        }
    }

    /// Records a failure unless dialcast exited by itself with code 0 (a
    /// final outcome was reached).
    pub fn check_exit(&self, verdict: &mut Verdict) {
        if self.ended != Ended::Exited(Some(0)) {
            verdict.fail(format!(
                "{} {}",
                self.label,
                match self.ended {
                    Ended::TimedOut => "was still running and was killed".to_string(),
                    Ended::Exited(code) => format!("exited with {code:?}, expected 0"),
                }
            ));
        }
    }

    /// Attaches dialcast's command line and output to a verdict.
    pub fn attach_logs(&self, verdict: &mut Verdict) {
        verdict
            .log(
                format!("{} command", self.label),
                format!("dialcast {}", self.args.join(" ")),
            )
            .log(format!("{} stdout", self.label), self.stdout.clone())
            .log(
                format!("{} stderr", self.label),
                log_tail(&self.stderr_path, 200),
            );
    }
}

/// Reads fields of a JSON outcome, recording a failure for each field that
/// is missing, has the wrong type or the wrong value.
pub struct Fields<'a> {
    who: &'a str,
    json: &'a Value,
}

impl<'a> Fields<'a> {
    pub fn new(who: &'a str, json: &'a Value) -> Fields<'a> {
        Fields { who, json }
    }

    /// Expects `field` to equal `expected` exactly.
    pub fn expect(&self, verdict: &mut Verdict, field: &str, expected: impl Into<Value>) {
        let expected = expected.into();
        let actual = self.json.get(field);
        if actual != Some(&expected) {
            verdict.fail(format!(
                "{}: {field} is {}, expected {expected}",
                self.who,
                actual.map_or("missing".to_string(), Value::to_string)
            ));
        }
    }

    /// An unsigned number field; 0 (with a failure recorded) if it is not one.
    pub fn number(&self, verdict: &mut Verdict, field: &str) -> u64 {
        match self.json.get(field).and_then(Value::as_u64) {
            Some(n) => n,
            None => {
                verdict.fail(format!(
                    "{}: {field} is {}, expected a number",
                    self.who,
                    self.json
                        .get(field)
                        .map_or("missing".to_string(), Value::to_string)
                ));
                0
            }
        }
    }

    /// Expects a number field within `range`, and returns it.
    pub fn number_in(
        &self,
        verdict: &mut Verdict,
        field: &str,
        range: std::ops::RangeInclusive<u64>,
    ) -> u64 {
        let n = self.number(verdict, field);
        if self.json.get(field).is_some_and(Value::is_u64) && !range.contains(&n) {
            verdict.fail(format!(
                "{}: {field} is {n}, expected {}..={}",
                self.who,
                range.start(),
                range.end()
            ));
        }
        n
    }
}
