//! The nightly task of `dialcast serve`: at `results.nightly_at` local
//! time it writes, for every script that was active the day before, that
//! day's result files. At start it first catches up: if the files of the
//! last run's day are missing (not registered, or gone from disk), they are
//! written then. Writing a day again replaces its files, so a catch-up and
//! a run for the same day never leave two different files.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use tokio_util::sync::CancellationToken;

use super::schedule::{day_of_run, last_nightly_run, next_nightly_run};
use super::{write_script_day, ResultFileSettings};
use crate::stats::range::day_range;
use crate::store::{ResultFile, ScriptCampaigns, Store};

/// Longest single sleep: the wall clock is looked at again after this, so
/// a suspended machine or a clock change is noticed.
const CLOCK_CHECK: Duration = Duration::from_secs(60);

/// Whether every file `script` should have for `day` is registered and on disk.
async fn has_files<S: Store>(
    store: &S,
    settings: &ResultFileSettings,
    script: &ScriptCampaigns,
    day: NaiveDate,
) -> anyhow::Result<bool> {
    for format in settings.formats(&script.script) {
        match store.result_file(script.script_id, day, format).await? {
            Some(file) if std::path::Path::new(&file.path).exists() => {}
            _ => return Ok(false),
        }
    }
    Ok(true)
}

/// Writes the files of the local `day` for every script active that day;
/// with `only_missing`, only for scripts whose files are missing. A script
/// that fails is logged and the others are still written.
pub async fn write_day<S: Store>(
    store: &S,
    settings: &ResultFileSettings,
    day: NaiveDate,
    only_missing: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<ResultFile>> {
    let range = day_range(day, settings.time_zone)
        .ok_or_else(|| anyhow::anyhow!("no range for day {day}"))?;
    let mut written = Vec::new();
    for script in store.scripts_active(range.from, range.to).await? {
        if only_missing && has_files(store, settings, &script, day).await? {
            continue;
        }
        match write_script_day(store, settings, &script, day, now.timestamp_millis()).await {
            Ok(files) => written.extend(files),
            Err(e) => {
                tracing::error!(script = %script.script, %day, "result file not written: {e:#}")
            }
        }
    }
    Ok(written)
}

/// The files of the last run's day that are missing, written now.
pub async fn catch_up<S: Store>(
    store: &S,
    settings: &ResultFileSettings,
    at: NaiveTime,
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<ResultFile>> {
    let day = day_of_run(
        last_nightly_run(now, at, settings.time_zone),
        settings.time_zone,
    );
    write_day(store, settings, day, true, now).await
}

/// Sleeps until the wall clock reaches `until`; false if cancelled first.
async fn sleep_until(until: DateTime<Utc>, cancel: &CancellationToken) -> bool {
    loop {
        let left = (until - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if left.is_zero() {
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(left.min(CLOCK_CHECK)) => {}
            _ = cancel.cancelled() => return false,
        }
    }
}

fn log_written(files: &[ResultFile]) {
    for file in files {
        tracing::info!(script = %file.script, day = %file.day, rows = file.rows, "result file {}", file.path);
    }
}

/// Catches up, then writes each night's files until `cancel`.
pub async fn run<S: Store>(
    store: Arc<S>,
    settings: ResultFileSettings,
    at: NaiveTime,
    cancel: CancellationToken,
) {
    match catch_up(&*store, &settings, at, Utc::now()).await {
        Ok(files) => log_written(&files),
        Err(e) => tracing::error!("catching up on result files failed: {e:#}"),
    }
    loop {
        let run_at = next_nightly_run(Utc::now(), at, settings.time_zone);
        if !sleep_until(run_at, &cancel).await {
            return;
        }
        let day = day_of_run(run_at, settings.time_zone);
        match write_day(&*store, &settings, day, false, Utc::now()).await {
            Ok(files) => log_written(&files),
            Err(e) => tracing::error!(%day, "nightly result files failed: {e:#}"),
        }
    }
}
