//! Running SIPp (Debian package `sip-tester`) as a child process: the callee for
//! every benchmark and the baseline caller. Scenario files live in
//! `loadtest/scenarios/`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::procstat::{self, ProcSample};

/// Where the scenario files are.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
}

/// A SIPp process, killed when dropped.
pub struct Sipp {
    child: Child,
    peak: ProcSample,
    pub work_dir: PathBuf,
}

impl Sipp {
    /// Starts `sipp` with `args`, in `work_dir` (its logs go there).
    pub fn spawn(args: &[String], work_dir: &Path) -> anyhow::Result<Sipp> {
        std::fs::create_dir_all(work_dir)?;
        let child = Command::new("sipp")
            .args(args)
            .current_dir(work_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start sipp: install it with `apt-get install -y sip-tester`")?;
        Ok(Sipp {
            child,
            peak: ProcSample::default(),
            work_dir: work_dir.to_path_buf(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Samples CPU and memory now, keeping the peak.
    pub fn sample(&mut self) -> ProcSample {
        if let Some(s) = procstat::sample(self.child.id()) {
            self.peak.cpu = self.peak.cpu.max(s.cpu);
            self.peak.rss_mb = s.rss_mb;
            self.peak.rss_peak_mb = self.peak.rss_peak_mb.max(s.rss_peak_mb);
        }
        self.peak
    }

    /// Waits for SIPp to exit by itself, sampling it every 100 ms, up to `limit`.
    /// Returns its exit code and its last CPU/memory sample.
    pub fn wait(&mut self, limit: Duration) -> anyhow::Result<(i32, ProcSample)> {
        let deadline = Instant::now() + limit;
        loop {
            self.sample();
            if let Some(status) = self.child.try_wait()? {
                return Ok((status.code().unwrap_or(-1), self.peak));
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                anyhow::bail!("sipp did not finish within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether it is still running (a callee that died would fail every call).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Sipp {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// The arguments every benchmark SIPp shares: scenario, loopback address, SIP
/// and media ports, no keyboard, room for many calls, a 4 MiB socket buffer
/// (SIPp's default 64 KiB overflows at 2,000 calls/s) and an error log.
pub fn base_args(scenario: &Path, port: u16, media_port: u16) -> Vec<String> {
    [
        "-sf",
        &scenario.display().to_string(),
        "-i",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-mp",
        &media_port.to_string(),
        "-nostdin",
        "-max_socket",
        "65000",
        "-buff_size",
        "4194304",
        "-trace_err",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// A free UDP port on loopback (bound, then released).
pub fn free_udp_port() -> anyhow::Result<u16> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    Ok(socket.local_addr()?.port())
}
