//! Running SIPp (Debian package `sip-tester`) with a scenario from
//! `engine/tests/sipp/` as the far end of a call.
//!
//! Each run gets its own SIP, media and control ports, works in the test's
//! [`Workdir`] (where the scenario is copied, so that the pcap files it plays
//! are found next to it) and writes its error, message, call-debug and screen
//! logs there; [`Sipp::attach_logs`] puts them in a failure report.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::ports::{self, Proto};
use super::{log_tail, Ended, Guarded, Verdict, Workdir};

/// How long SIPp may run in all before it gives up (`-timeout`, counted as a
/// failure with `-timeout_error`). Tests wait for it a little longer.
const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// How long a SIPp server may take to bind its SIP port.
const STARTUP_LIMIT: Duration = Duration::from_secs(10);

/// Ports per SIPp media block: `-mp` and, for its echo of video, `-mp` + 2.
const MEDIA_PORTS: u16 = 4;

/// SIP transport of a SIPp run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    /// The value of dialcast's `--transport`.
    pub fn as_arg(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// The directory of the suite's scenario files.
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("sipp")
}

/// Panics with an installation hint when `sipp` is not on PATH: the suite is
/// only built on request (`--features interop`), so a missing SIPp is an error.
pub fn require_sipp() {
    let found = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(
        found,
        "`sipp` is not on PATH: install it with `apt-get install -y sip-tester`"
    );
}

/// A SIPp server (UAS) waiting for our call.
pub fn uas(work: &Workdir, scenario: &str) -> Builder {
    Builder::new(work, scenario, None)
}

/// A SIPp client (UAC) calling `remote`.
pub fn uac(work: &Workdir, scenario: &str, remote: SocketAddr) -> Builder {
    Builder::new(work, scenario, Some(remote))
}

/// Options of one SIPp run; [`Builder::start`] starts it.
pub struct Builder {
    dir: PathBuf,
    sip_port: u16,
    scenario: String,
    remote: Option<SocketAddr>,
    transport: Transport,
    calls: u32,
    rtp_echo: bool,
    no_retransmissions: bool,
    loss_percent: u32,
    time_wait: Duration,
    limit: Duration,
    variables: Vec<(String, String)>,
}

impl Builder {
    fn new(work: &Workdir, scenario: &str, remote: Option<SocketAddr>) -> Builder {
        Builder {
            dir: work.path().to_path_buf(),
            sip_port: ports::one(),
            scenario: scenario.to_string(),
            remote,
            transport: Transport::Udp,
            calls: 1,
            rtp_echo: false,
            no_retransmissions: false,
            loss_percent: 0,
            time_wait: Duration::from_millis(1000),
            limit: DEFAULT_LIMIT,
            variables: Vec::new(),
        }
    }

    /// The SIP port SIPp will use (`-p`), known before it starts.
    pub fn sip_port(&self) -> u16 {
        self.sip_port
    }

    /// SIP over TCP (`-t t1`). Also sets the time-wait to 0: SIPp counts a
    /// connection closed while a call is in time-wait as a failed call.
    pub fn tcp(mut self) -> Builder {
        self.transport = Transport::Tcp;
        self.time_wait = Duration::ZERO;
        self
    }

    /// Sends every RTP packet received on the media port back (`-rtp_echo`).
    pub fn rtp_echo(mut self) -> Builder {
        self.rtp_echo = true;
        self
    }

    /// Turns off SIPp's UDP retransmissions and its detection of
    /// retransmitted messages (`-nr`), for scenarios that send or expect
    /// identical messages on purpose.
    pub fn no_retransmissions(mut self) -> Builder {
        self.no_retransmissions = true;
        self
    }

    /// Ends after `calls` calls (`-m`).
    pub fn calls(mut self, calls: u32) -> Builder {
        self.calls = calls;
        self
    }

    /// Drops this share of the SIP messages SIPp sends and receives (`-lost`).
    pub fn loss_percent(mut self, percent: u32) -> Builder {
        self.loss_percent = percent;
        self
    }

    /// How long a finished call lingers to answer retransmissions: the
    /// `<timewait/>` of the scenarios, which takes its length from `-d`.
    pub fn time_wait(mut self, time_wait: Duration) -> Builder {
        self.time_wait = time_wait;
        self
    }

    /// Gives up (and fails) after this long in all (`-timeout`).
    pub fn limit(mut self, limit: Duration) -> Builder {
        self.limit = limit;
        self
    }

    /// Sets a variable the scenario declares with `<Global variables=..>`.
    pub fn set(mut self, name: &str, value: &str) -> Builder {
        self.variables.push((name.to_string(), value.to_string()));
        self
    }

    /// Starts SIPp; a server is started when its SIP port is bound.
    pub fn start(self) -> Sipp {
        require_sipp();
        let source = scenario_dir().join(&self.scenario);
        let copy = self.dir.join(&self.scenario);
        std::fs::copy(&source, &copy)
            .unwrap_or_else(|e| panic!("copy {} to the work dir: {e}", source.display()));

        let sip_port = self.sip_port;
        let media_port = ports::block(MEDIA_PORTS);
        let control_port = ports::one();
        let mut args: Vec<String> = Vec::new();
        if let Some(remote) = self.remote {
            args.push(remote.to_string());
        }
        let path = |name: &str| self.dir.join(name).display().to_string();
        args.extend(
            [
                "-sf",
                &copy.display().to_string(),
                "-t",
                match self.transport {
                    Transport::Udp => "u1",
                    Transport::Tcp => "t1",
                },
                "-i",
                "127.0.0.1",
                "-bind_local",
                "-p",
                &sip_port.to_string(),
                "-mp",
                &media_port.to_string(),
                "-cp",
                &control_port.to_string(),
                "-m",
                &self.calls.to_string(),
                "-d",
                &self.time_wait.as_millis().to_string(),
                "-timeout",
                &format!("{}s", self.limit.as_secs()),
                "-timeout_error",
                "-nostdin",
                "-trace_err",
                "-error_file",
                &path(ERRORS),
                "-trace_msg",
                "-message_file",
                &path(MESSAGES),
                "-trace_calldebug",
                "-calldebug_file",
                &path(CALL_DEBUG),
                "-trace_screen",
                "-screen_file",
                &path(SCREEN),
            ]
            .map(String::from),
        );
        if self.rtp_echo {
            args.push("-rtp_echo".into());
        }
        if self.no_retransmissions {
            args.push("-nr".into());
        }
        if self.loss_percent > 0 {
            args.extend(["-lost".into(), self.loss_percent.to_string()]);
        }
        for (name, value) in &self.variables {
            args.extend(["-set".into(), name.clone(), value.clone()]);
        }

        let output =
            std::fs::File::create(self.dir.join(OUTPUT)).expect("create SIPp's output file");
        let child = Command::new("sipp")
            .args(&args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("share SIPp's output file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|e| panic!("start sipp: {e}"));
        let mut sipp = Sipp {
            process: Guarded::new(child),
            dir: self.dir,
            scenario: self.scenario,
            args,
            sip_port,
            media_port,
            transport: self.transport,
        };
        if self.remote.is_none() {
            sipp.await_bound();
        }
        sipp
    }
}

const ERRORS: &str = "sipp-errors.log";
const MESSAGES: &str = "sipp-messages.log";
const CALL_DEBUG: &str = "sipp-calldebug.log";
const SCREEN: &str = "sipp-screen.log";
const OUTPUT: &str = "sipp-output.log";

/// A running SIPp; killed when dropped.
pub struct Sipp {
    process: Guarded,
    dir: PathBuf,
    scenario: String,
    args: Vec<String>,
    /// SIPp's SIP port on 127.0.0.1.
    pub sip_port: u16,
    /// SIPp's media port (`-mp`), as written in its SDP.
    pub media_port: u16,
    pub transport: Transport,
}

impl Sipp {
    /// SIPp's SIP address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.sip_port))
    }

    fn await_bound(&mut self) {
        let proto = match self.transport {
            Transport::Udp => Proto::Udp,
            Transport::Tcp => Proto::Tcp,
        };
        let deadline = Instant::now() + STARTUP_LIMIT;
        while !ports::bound(self.sip_port, proto) {
            let exited = self.process.poll();
            if exited.is_some() || Instant::now() >= deadline {
                let mut verdict = Verdict::new(&self.scenario);
                verdict.fail(format!(
                    "SIPp did not bind port {} ({exited:?})",
                    self.sip_port
                ));
                self.attach_logs(&mut verdict);
                verdict.finish();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for SIPp to end by itself (after `-m` calls).
    pub fn wait(&mut self, limit: Duration) -> Ended {
        self.process.wait(limit)
    }

    /// Records a failure unless SIPp ended with exit code 0 (every call of
    /// the scenario went through it to the end).
    pub fn check_passed(&self, ended: Ended, verdict: &mut Verdict) {
        if ended != Ended::Exited(Some(0)) {
            verdict.fail(format!(
                "SIPp ({}) {}",
                self.scenario,
                match ended {
                    Ended::TimedOut => "was still running and was killed".to_string(),
                    Ended::Exited(code) => describe_exit(code),
                }
            ));
        }
    }

    /// Attaches SIPp's command line and logs to a verdict.
    pub fn attach_logs(&self, verdict: &mut Verdict) {
        let file = |name: &str| self.dir.join(name);
        verdict
            .log(
                format!("SIPp command ({})", self.dir.display()),
                format!("sipp {}", self.args.join(" ")),
            )
            .log("SIPp errors", log_tail(&file(ERRORS), 100))
            .log("SIPp call debug", log_tail(&file(CALL_DEBUG), 100))
            .log("SIPp messages", log_tail(&file(MESSAGES), 300))
            .log(
                "SIPp final screen",
                strip_ansi(&log_tail(&file(SCREEN), 60)),
            )
            .log("SIPp output", strip_ansi(&log_tail(&file(OUTPUT), 15)));
    }
}

/// What a SIPp exit code means (`sipp -h`, "Exit codes").
pub fn describe_exit(code: Option<i32>) -> String {
    let meaning = match code {
        Some(0) => "all calls were successful",
        Some(1) => "at least one call failed",
        Some(97) => "exit on internal command",
        Some(99) => "normal exit without calls processed",
        Some(255) => "fatal error (or an <error> action of the scenario)",
        Some(254) => "fatal error binding a socket",
        None => "killed by a signal",
        Some(_) => "unknown exit code",
    };
    format!("exited with {code:?}: {meaning}")
}

/// Removes the terminal control sequences of SIPp's screens.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters final-letter
            for next in chars.by_ref() {
                if next.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
