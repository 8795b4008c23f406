//! CPU time and peak memory of this process and of child processes, read from
//! `/proc` (Linux only), so both sides of a benchmark are measured the same way.

use std::time::Duration;

/// CPU time (user + system) and resident-set figures of one process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcSample {
    pub cpu: Duration,
    /// Current resident set in MiB.
    pub rss_mb: f64,
    /// Peak resident set (VmHWM) in MiB.
    pub rss_peak_mb: f64,
}

/// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let path = if pid == std::process::id() {
        "/proc/self".to_string()
    } else {
        format!("/proc/{pid}")
    };
    let stat = std::fs::read_to_string(format!("{path}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after it.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the ')' the fields start at "state" (field 3); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks_per_second();
    let cpu = Duration::from_secs_f64((utime + stime) as f64 / ticks);
    let status = std::fs::read_to_string(format!("{path}/status")).ok()?;
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some(ProcSample {
        cpu,
        rss_mb: kb("VmRSS:") / 1024.0,
        rss_peak_mb: kb("VmHWM:") / 1024.0,
    })
}

fn clock_ticks_per_second() -> f64 {
    #[allow(unsafe_code)]
    // SAFETY: sysconf has no preconditions; it only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let s = sample(std::process::id()).expect("own /proc entry");
        assert!(s.rss_peak_mb > 0.5, "{s:?}");
        assert!(s.rss_peak_mb >= s.rss_mb);
    }
}
