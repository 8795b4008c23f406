//! Load drivers and benchmarks for Dialcast. They drive Dialcast through its
//! public crates and SIP only, and measure SIPp (a peer nobody here wrote) in the
//! same run as the baseline. The [`farm`] is the other end: callees that answer
//! like people, voicemail boxes, busy lines and dead numbers. The [`campaign`]
//! benchmark runs the `dialcast` binary itself against the farm, and the bare
//! dialer as its baseline; the [`import`] benchmark times `dialcast import` on
//! a generated file of a million rows; the [`portal`] benchmark measures the
//! portal API's dashboard and statistics over a long campaign history; [`rtp_floor`]
//! measures the least CPU the kernel needs per RTP packet on this host.

pub mod campaign;
pub mod dialer;
pub mod farm;
pub mod import;
pub mod portal;
pub mod procstat;
pub mod rtp_floor;
pub mod scrape;
pub mod sipp;
pub mod wire;

use serde::Serialize;

/// The tokio runtime a benchmark side runs on: work-stealing across the cores
/// (as the `dialcast` binary) or one thread.
pub fn runtime(multi_thread: bool) -> std::io::Result<tokio::runtime::Runtime> {
    if multi_thread {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    }
}

/// What the benchmark ran on, written next to every figure.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub sipp_version: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let sipp_version = std::process::Command::new("sipp")
            .arg("-v")
            .output()
            .ok()
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .find(|l| l.contains("SIPp"))
                    .map(|l| l.trim().to_string())
            })
            .unwrap_or_default();
        Machine {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model,
            kernel,
            sipp_version,
        }
    }
}
