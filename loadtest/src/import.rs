//! The import benchmark: a generated delivery file of N rows (record ids,
//! names, Dutch numbers written the ways people write them, amounts with
//! either decimal mark, dates in both accepted forms) imported by the
//! `dialcast` binary into a fresh SQLite database, through its public
//! command line only: first `dialcast import --validate-only`, then the
//! import itself. Each run is a child process; its wall time and peak
//! resident set (`wait4`'s `ru_maxrss`) are measured from here.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context as _;
use serde::Serialize;

use crate::campaign::records::iso_date;

/// The issue's target for CSV into SQLite on the 2-vCPU machine.
pub const TARGET_ROWS_PER_S: f64 = 100_000.0;
/// The script the rows are for (`scripts/examples/payment_reminder.toml`).
const SCRIPT: &str = "payment_reminder";
const CAMPAIGN: &str = "import-bench";

const HEADER: &str = "IDENTIFICATION_RECORD_ID;IDENTIFICATION_CLIENT_REFERENCE;PERSON_FIRST_NAME;\
PERSON_LAST_NAME;PERSON_LANGUAGE;CONTACT_PHONE_1;CONTACT_MOBILE;INVOICE_NUMBER;INVOICE_DATE;\
INVOICE_DUE_DATE;INVOICE_AMOUNT_OPEN;INVOICE_CURRENCY;INVOICE_DESCRIPTION;CONTROL_SCRIPT\n";

const FIRST_NAMES: [&str; 8] = [
    "Anna", "Bram", "Chloé", "Daan", "Emma", "Finn", "Grace", "Henk",
];
const LAST_NAMES: [&str; 8] = [
    "de Vries", "Jansen", "Smith", "Bakker", "Visser", "Brown", "Mulder", "Jones",
];
/// Dutch area codes of geographic numbers (7 subscriber digits after a
/// 3-digit code).
const AREAS: [&str; 6] = ["010", "020", "030", "040", "050", "070"];

/// Writes the file; returns its size in bytes.
pub fn write_file(path: &Path, rows: usize, seed: u64) -> anyhow::Result<u64> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    out.write_all(HEADER.as_bytes())?;
    for i in 0..rows {
        write_row(&mut out, i, seed)?;
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    Ok(file.metadata()?.len())
}

fn write_row(out: &mut impl std::io::Write, i: usize, seed: u64) -> std::io::Result<()> {
    let k = (i as u64).wrapping_mul(2_654_435_761).wrapping_add(seed);
    let dutch = k % 10 < 3;
    let subscriber = 1_000_000 + (k / 11) % 8_999_999;
    // Mobile numbers 06-1… to 06-5….
    let mobile = 10_000_000 + (k / 13) % 49_999_999;
    // The ways numbers are written in delivery files.
    let phone = match k % 3 {
        0 => format!("{}-{subscriber}", AREAS[(k % 6) as usize]),
        1 => format!("+31 {} {subscriber}", &AREAS[(k % 6) as usize][1..]),
        _ => format!("{}{subscriber}", AREAS[(k % 6) as usize]),
    };
    let mobile = if k.is_multiple_of(4) {
        String::new()
    } else if k.is_multiple_of(2) {
        format!("06{mobile}")
    } else {
        format!("+316{mobile}")
    };
    let euros = 5 + k % 1995;
    let cents = (k / 7) % 100;
    let amount = if dutch {
        format!("{euros},{cents:02}")
    } else {
        format!("{euros}.{cents:02}")
    };
    let day = 20_000 + (k % 300) as i64;
    let invoice_date = iso_date(day);
    let due = iso_date(day + 30);
    // Half the due dates as DD-MM-YYYY.
    let due = if k.is_multiple_of(2) {
        let (y, rest) = due.split_at(4);
        format!("{}-{}-{y}", &rest[4..6], &rest[1..3])
    } else {
        due
    };
    writeln!(
        out,
        "BR-{i:07};CR-{};{};{};{};{phone};{mobile};INV-{};{invoice_date};{due};{amount};EUR;\
         \"Energy, {} kWh\";{SCRIPT}",
        100_000 + i,
        FIRST_NAMES[(k % 8) as usize],
        LAST_NAMES[((k / 8) % 8) as usize],
        if dutch { "nl" } else { "en" },
        500_000 + i,
        100 + k % 4000,
    )
}

/// The configuration of the benchmark's `dialcast` (a fresh database in
/// `dir`; nothing is dialled).
pub fn config_text(dir: &Path, scripts_dir: &Path) -> String {
    let quoted = |p: &Path| serde_json::Value::String(p.display().to_string()).to_string();
    format!(
        r#"# Written by dialcast-loadtest import.
[storage]
database = {db}

[organisation]
name = "Dialcast loadtest"
default_country = "NL"

[scripts]
dir = {scripts}

[results]
dir = {results}

[imports]
archive_dir = {archive}
retention_days = 92

[[trunks]]
name = "none"
uri = "sip:127.0.0.1:9"
transport = "udp"
max_cps = 1
max_channels = 1
caller_id = "+31201234567"

[campaign]
trunk = "none"
max_attempts = 1
retry_delay_s = 60
ring_timeout_s = 30
max_call_s = 300
amd = false
"#,
        db = quoted(&dir.join("dialcast.db")),
        scripts = quoted(scripts_dir),
        results = quoted(&dir.join("results")),
        archive = quoted(&dir.join("archive")),
    )
}

/// One `dialcast import` run.
#[derive(Clone, Debug, Serialize)]
pub struct Run {
    pub seconds: f64,
    pub rows_per_s: f64,
    /// The child's peak resident set (`ru_maxrss`).
    pub peak_rss_mib: f64,
    pub will_import: u64,
    pub will_fail: u64,
    pub inserted: u64,
}

/// The benchmark's report.
#[derive(Clone, Debug, Serialize)]
pub struct ImportReport {
    pub benchmark: &'static str,
    pub rows: usize,
    pub file_mib: f64,
    pub machine: crate::Machine,
    pub validate_only: Run,
    pub import: Run,
    /// Rows per second of the import run (validation included).
    pub rows_per_s: f64,
    pub seconds: f64,
    pub peak_rss_mib: f64,
    pub target_rows_per_s: f64,
    pub met: bool,
    pub work_dir: Option<String>,
}

/// What to run.
pub struct ImportBench {
    pub rows: usize,
    pub seed: u64,
    pub dialcast: PathBuf,
    pub scripts_dir: PathBuf,
    pub keep_dir: Option<PathBuf>,
    pub progress: bool,
}

/// Generates the file, validates it, imports it.
pub fn run(bench: &ImportBench) -> anyhow::Result<ImportReport> {
    let dir = bench.keep_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("dialcast-import-bench-{}", std::process::id()))
    });
    if dir.exists() {
        let empty = std::fs::read_dir(&dir)?.next().is_none();
        anyhow::ensure!(empty, "{} is not empty", dir.display());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = dir.join("records.csv");
    let size = write_file(&file, bench.rows, bench.seed)?;
    if bench.progress {
        eprintln!(
            "{} rows, {:.1} MiB in {}",
            bench.rows,
            size as f64 / 1048576.0,
            file.display()
        );
    }
    let config = dir.join("dialcast.toml");
    std::fs::write(&config, config_text(&dir, &bench.scripts_dir))?;
    let validate = import_once(bench, &dir, &file, &config, true)?;
    if bench.progress {
        eprintln!(
            "validate-only: {:.2} s, {:.0} rows/s",
            validate.seconds, validate.rows_per_s
        );
    }
    let import = import_once(bench, &dir, &file, &config, false)?;
    if bench.progress {
        eprintln!(
            "import: {:.2} s, {:.0} rows/s",
            import.seconds, import.rows_per_s
        );
    }
    anyhow::ensure!(
        import.inserted == bench.rows as u64,
        "dialcast imported {} of {} rows",
        import.inserted,
        bench.rows
    );
    let keep = bench.keep_dir.is_some();
    if !keep {
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(ImportReport {
        benchmark: "import",
        rows: bench.rows,
        file_mib: size as f64 / 1048576.0,
        machine: crate::Machine::describe(),
        rows_per_s: import.rows_per_s,
        seconds: import.seconds,
        peak_rss_mib: import.peak_rss_mib,
        met: import.rows_per_s >= TARGET_ROWS_PER_S,
        target_rows_per_s: TARGET_ROWS_PER_S,
        validate_only: validate,
        import,
        work_dir: keep.then(|| dir.display().to_string()),
    })
}

/// The fields of `dialcast import --json` the benchmark reads.
#[derive(serde::Deserialize)]
struct Printed {
    will_import: u64,
    will_fail: u64,
    inserted: u64,
}

fn import_once(
    bench: &ImportBench,
    dir: &Path,
    file: &Path,
    config: &Path,
    validate_only: bool,
) -> anyhow::Result<Run> {
    let label = if validate_only { "validate" } else { "import" };
    let stdout_path = dir.join(format!("{label}.out"));
    let stderr_path = dir.join(format!("{label}.err"));
    let mut command = Command::new(&bench.dialcast);
    command
        .arg("import")
        .arg(file)
        .args([
            "--script",
            SCRIPT,
            "--campaign",
            CAMPAIGN,
            "--json",
            "--config",
        ])
        .arg(config)
        .env_remove("DIALCAST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path)?)
        .stderr(std::fs::File::create(&stderr_path)?);
    if validate_only {
        command.arg("--validate-only");
    }
    let started = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot run {}", bench.dialcast.display()))?;
    let (status, maxrss_kib) = wait_with_rusage(child.id())?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        status == 0,
        "`dialcast import` ({label}) exited with status {status}; see {}",
        stderr_path.display()
    );
    let text = std::fs::read_to_string(&stdout_path)?;
    let printed: Printed = serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "unexpected `dialcast import --json` output in {}",
            stdout_path.display()
        )
    })?;
    Ok(Run {
        seconds,
        rows_per_s: bench.rows as f64 / seconds,
        peak_rss_mib: maxrss_kib as f64 / 1024.0,
        will_import: printed.will_import,
        will_fail: printed.will_fail,
        inserted: printed.inserted,
    })
}

/// Waits for the child `pid` and returns its exit code (or 128 + signal)
/// and peak resident set in KiB.
fn wait_with_rusage(pid: u32) -> anyhow::Result<(i32, i64)> {
    let pid = libc::pid_t::try_from(pid).context("pid out of range")?;
    let mut status: libc::c_int = 0;
    #[allow(unsafe_code)]
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        #[allow(unsafe_code)]
        // SAFETY: `status` and `usage` are valid for writes for the call;
        // `pid` is our own child, not yet reaped.
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err).context("wait4 failed");
        }
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    Ok((code, usage.ru_maxrss))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_the_header_s_columns_and_dutch_numbers() {
        let mut out = Vec::new();
        for i in 0..50 {
            write_row(&mut out, i, 3).expect("row");
        }
        let text = String::from_utf8(out).expect("utf-8");
        let columns = HEADER.trim_end().split(';').count();
        for line in text.lines() {
            // The description is quoted and holds a comma, not a `;`.
            assert_eq!(line.split(';').count(), columns, "{line}");
            let phone = line.split(';').nth(5).unwrap_or_default();
            assert!(
                phone.starts_with('0') || phone.starts_with("+31"),
                "{phone}"
            );
        }
        assert!(text.starts_with("BR-0000000;CR-100000;"));
    }
}
