//! Writing result files: for one script and one local day of the
//! organisation, the rows of every campaign of that script, as CSV (always)
//! and XML (when the script is configured for it), into the results
//! directory and a copy into the outbox, each written atomically (a
//! temporary file renamed into place), and registered in the store. The
//! file name depends only on script, day and format, so writing a day again
//! replaces its file: a day never has two different files. The nightly
//! schedule is in [`schedule`], the task of `serve` in [`nightly`].

pub mod nightly;
pub mod schedule;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::config::Config;
use crate::results::{self, ResultRow};
use crate::stats::range::day_range;
use crate::store::{EpochMs, ResultFile, ScriptCampaigns, Store};

/// Where and how result files are written.
#[derive(Clone, Debug)]
pub struct ResultFileSettings {
    pub dir: PathBuf,
    pub outbox_dir: Option<PathBuf>,
    /// XML for every script.
    pub xml: bool,
    /// XML for these scripts.
    pub xml_scripts: Vec<String>,
    /// The organisation's zone: days are its local days.
    pub time_zone: Tz,
}

impl ResultFileSettings {
    pub fn from_config(config: &Config) -> ResultFileSettings {
        ResultFileSettings {
            dir: config.results.dir.clone(),
            outbox_dir: config.results.outbox_dir.clone(),
            xml: config.results.xml,
            xml_scripts: config.results.xml_scripts.clone(),
            time_zone: config.organisation.time_zone.0,
        }
    }

    /// The formats written for `script`: `csv`, then `xml` if enabled.
    pub fn formats(&self, script: &str) -> Vec<&'static str> {
        let mut formats = vec!["csv"];
        if self.xml || self.xml_scripts.iter().any(|s| s == script) {
            formats.push("xml");
        }
        formats
    }
}

/// The rows of every campaign of `script` for the local `day`.
pub async fn day_rows<S: Store>(
    store: &S,
    script: &ScriptCampaigns,
    day: NaiveDate,
    time_zone: Tz,
) -> anyhow::Result<Vec<ResultRow>> {
    let range = day_range(day, time_zone).with_context(|| format!("no range for day {day}"))?;
    let mut rows = Vec::new();
    for (campaign, _) in &script.campaigns {
        rows.extend(store.result_rows(*campaign, range.from, range.to).await?);
    }
    Ok(rows)
}

/// Writes and registers the files of `script` for the local `day`; returns
/// what was registered.
pub async fn write_script_day<S: Store>(
    store: &S,
    settings: &ResultFileSettings,
    script: &ScriptCampaigns,
    day: NaiveDate,
    now: EpochMs,
) -> anyhow::Result<Vec<ResultFile>> {
    let rows = day_rows(store, script, day, settings.time_zone).await?;
    let mut written = Vec::new();
    for format in settings.formats(&script.script) {
        let mut bytes = Vec::new();
        match format {
            "xml" => results::write_xml(&rows, &mut bytes)?,
            _ => results::write_csv(&rows, &mut bytes)?,
        }
        let name = results::file_name(&script.script, day, format);
        let path = settings.dir.join(&name);
        write_atomically(&path, &bytes)?;
        let outbox_path = match &settings.outbox_dir {
            Some(outbox) => {
                let copy = outbox.join(&name);
                write_atomically(&copy, &bytes)?;
                Some(copy.display().to_string())
            }
            None => None,
        };
        let file = ResultFile {
            script_id: script.script_id,
            script: script.script.clone(),
            day,
            format: format.to_owned(),
            path: path.display().to_string(),
            outbox_path,
            size: bytes.len() as u64,
            rows: rows.len() as u64,
            written_at: now,
        };
        store.record_result_file(&file).await?;
        crate::metrics::result_file_written(if format == "xml" { "xml" } else { "csv" });
        written.push(file);
    }
    Ok(written)
}

/// Writes `bytes` to `path` so that a reader sees the old file or the whole
/// new one, never a part: a temporary file beside it, synced, renamed over it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // A name of its own per write, so two writers of one file (the nightly
    // task and `dialcast campaign results`) never share a temporary file.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(
        ".{}-{}.partial",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let temporary = PathBuf::from(temporary);
    {
        let mut file = std::fs::File::create(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        file.write_all(bytes)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_is_written_for_all_scripts_or_the_listed_ones() {
        let mut settings = ResultFileSettings {
            dir: PathBuf::from("r"),
            outbox_dir: None,
            xml: false,
            xml_scripts: vec!["b".into()],
            time_zone: Tz::UTC,
        };
        assert_eq!(settings.formats("a"), ["csv"]);
        assert_eq!(settings.formats("b"), ["csv", "xml"]);
        settings.xml = true;
        assert_eq!(settings.formats("a"), ["csv", "xml"]);
    }

    #[test]
    fn an_atomic_write_replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("dialcast-atomic-{}", std::process::id()));
        let path = dir.join("sub").join("f.csv");
        write_atomically(&path, b"one").expect("write");
        write_atomically(&path, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .expect("list")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["f.csv"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
