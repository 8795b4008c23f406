//! CPU time and peak memory of this process and of child processes, read from
//! `/proc` (Linux only), so both sides of a benchmark are measured the same way.

use std::collections::BTreeMap;
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
    let (_, cpu) = parse_stat(&stat)?;
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

/// The command name and CPU time (user + system) of a `stat` line.
fn parse_stat(stat: &str) -> Option<(&str, Duration)> {
    // The command name is in parentheses and may hold spaces: split after it.
    let (head, after) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the ')' the fields start at "state" (field 3); utime is field 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks_per_second();
    Some((
        comm,
        Duration::from_secs_f64((utime + stime) as f64 / ticks),
    ))
}

/// CPU time of a process's live threads, summed by thread name (tokio's
/// workers, the media scheduler, SQLite's workers, ...). Threads that have
/// exited are not counted; empty once the process is gone.
pub fn threads(pid: u32) -> BTreeMap<String, Duration> {
    let mut out: BTreeMap<String, Duration> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.filter_map(Result::ok) {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        if let Some((comm, cpu)) = parse_stat(&stat) {
            *out.entry(comm.to_string()).or_default() += cpu;
        }
    }
    out
}

/// Per thread name, the CPU spent between two [`threads`] samples, in
/// seconds (names that only appear in `after` count from zero).
pub fn threads_delta(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(name, cpu)| {
            let start = before.get(name).copied().unwrap_or_default();
            (name.clone(), cpu.saturating_sub(start).as_secs_f64())
        })
        .collect()
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
        let threads = threads(std::process::id());
        assert!(!threads.is_empty());
        let summed: Duration = threads.values().sum();
        assert!(
            summed <= s.cpu + Duration::from_millis(50),
            "{threads:?} {s:?}"
        );
    }

    #[test]
    fn a_stat_line_with_spaces_in_the_name() {
        let line = "42 (tokio runtime) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0";
        let (comm, cpu) = parse_stat(line).expect("parses");
        assert_eq!(comm, "tokio runtime");
        let ticks = clock_ticks_per_second();
        assert!((cpu.as_secs_f64() - 300.0 / ticks).abs() < 1e-9);
        let before = BTreeMap::from([("a".to_string(), Duration::from_secs(1))]);
        let after = BTreeMap::from([
            ("a".to_string(), Duration::from_secs(3)),
            ("b".to_string(), Duration::from_secs(2)),
        ]);
        let delta = threads_delta(&before, &after);
        assert_eq!(delta["a"], 2.0);
        assert_eq!(delta["b"], 2.0);
    }
}

/// CPU time the hypervisor gave to other guests while this machine's
/// processors wanted to run (the `steal` column of `/proc/stat`, all
/// processors together); `None` where the kernel does not report it.
pub fn machine_steal() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_steal(&stat)
}

fn parse_steal(stat: &str) -> Option<Duration> {
    // "cpu  user nice system idle iowait irq softirq steal ...", in clock ticks.
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: u64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second(),
    ))
}

#[cfg(test)]
mod steal_tests {
    use super::*;

    #[test]
    fn steal_is_the_eighth_figure_of_the_cpu_line() {
        let stat = "cpu  552714 0 55727 134208 854 0 8506 2573 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let steal = parse_steal(stat).map(|d| d.as_secs_f64());
        assert_eq!(steal, Some(2573.0 / clock_ticks_per_second()));
        assert_eq!(parse_steal("cpu  1 2 3\n"), None);
    }
}

/// The whole machine's processor time from the `cpu` line of `/proc/stat`
/// (all processors together): busy (user, nice, system, irq, softirq),
/// everything counted (busy, idle, iowait, steal) and steal alone.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MachineTimes {
    pub busy: Duration,
    pub total: Duration,
    pub steal: Duration,
}

/// Reads [`MachineTimes`]; `None` where `/proc/stat` is missing or odd.
pub fn machine_times() -> Option<MachineTimes> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    parse_machine_times(&stat)
}

fn parse_machine_times(stat: &str) -> Option<MachineTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let [user, nice, system, idle, iowait, irq, softirq, steal] = f[..] else {
        return None;
    };
    let secs = |t: u64| Duration::from_secs_f64(t as f64 / clock_ticks_per_second());
    let busy = user + nice + system + irq + softirq;
    Some(MachineTimes {
        busy: secs(busy),
        total: secs(busy + idle + iowait + steal),
        steal: secs(steal),
    })
}

/// What the machine and this benchmark process (which runs the callee farm)
/// spent over a window: [`Window::start`] before the side runs,
/// [`Window::finish`] after.
#[derive(Clone, Debug)]
pub struct Window {
    own: Option<ProcSample>,
    own_threads: BTreeMap<String, Duration>,
    machine: Option<MachineTimes>,
    udp_rcvbuf_errors: u64,
}

/// The figures of a finished [`Window`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WindowFigures {
    /// CPU (user + system) of this process: the farm's runtime and
    /// scheduler threads, plus the benchmark's own polling.
    pub own_cpu_s: Option<f64>,
    pub own_cpu_s_by_thread: BTreeMap<String, f64>,
    /// Steal over the window (see [`machine_steal`]).
    pub machine_steal_s: Option<f64>,
    /// Busy share of all processors over the window (0..=1).
    pub machine_busy_ratio: Option<f64>,
    /// UDP datagrams the kernel dropped on a full receive buffer over the
    /// window, every socket of the machine (`RcvbufErrors`).
    pub udp_rcvbuf_errors: u64,
}

impl Window {
    pub fn start() -> Window {
        let pid = std::process::id();
        Window {
            own: sample(pid),
            own_threads: threads(pid),
            machine: machine_times(),
            udp_rcvbuf_errors: crate::rtp_floor::udp_rcvbuf_errors(),
        }
    }

    pub fn finish(&self) -> WindowFigures {
        let pid = std::process::id();
        let own_cpu_s = self
            .own
            .zip(sample(pid))
            .map(|(a, b)| b.cpu.saturating_sub(a.cpu).as_secs_f64());
        let machine = self.machine.zip(machine_times());
        WindowFigures {
            own_cpu_s,
            own_cpu_s_by_thread: threads_delta(&self.own_threads, &threads(pid)),
            machine_steal_s: machine.map(|(a, b)| b.steal.saturating_sub(a.steal).as_secs_f64()),
            machine_busy_ratio: machine.and_then(|(a, b)| {
                let total = b.total.saturating_sub(a.total).as_secs_f64();
                (total > 0.0).then(|| b.busy.saturating_sub(a.busy).as_secs_f64() / total)
            }),
            udp_rcvbuf_errors: crate::rtp_floor::udp_rcvbuf_errors()
                .saturating_sub(self.udp_rcvbuf_errors),
        }
    }
}

#[cfg(test)]
mod machine_tests {
    use super::*;

    #[test]
    fn busy_total_and_steal_from_the_cpu_line() {
        let stat = "cpu  100 10 50 800 20 5 15 30 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let t = parse_machine_times(stat).expect("parses");
        let s = |ticks: f64| Duration::from_secs_f64(ticks / clock_ticks_per_second());
        assert_eq!(t.busy, s(180.0));
        assert_eq!(t.total, s(1030.0));
        assert_eq!(t.steal, s(30.0));
        assert_eq!(parse_machine_times("cpu  1 2 3\n"), None);
    }

    #[test]
    fn a_window_over_own_work() {
        let w = Window::start();
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let f = w.finish();
        assert!(f.own_cpu_s.is_some_and(|s| s >= 0.0), "{f:?}");
        assert!(
            f.machine_busy_ratio
                .is_none_or(|r| (0.0..=1.0).contains(&r)),
            "{f:?}"
        );
    }
}
