//! The organisation's inbox folder, where an SFTP drop (or any file copy)
//! delivers import files: a file in `<inbox>/<script>/` is imported into
//! that script's campaign at the organisation's pickup times. This module
//! owns when to look ([`next_pickup`]) and which files are ready
//! ([`ready_files`]); `serve` does the importing and moves each file to
//! `done/` or `failed/` beside a `<file>.report.json`.
//!
//! A file is left alone while it may still be arriving: until it has not
//! changed for [`SETTLE`], and always when its name is hidden (`.x`) or
//! marks a partial upload (`.part`, `.filepart`, `.tmp`, `.partial`).
//! Files directly in the inbox (not in a script's folder) are not imported:
//! the script would be a guess.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::result_files::schedule::next_nightly_run;

pub mod pickup;

/// How often the inbox is looked at when no pickup times are configured.
pub const POLL_WITHOUT_TIMES: Duration = Duration::from_secs(300);

/// How long a file must stay unchanged before it is taken.
pub const SETTLE: Duration = Duration::from_secs(30);

/// Where processed files go, inside the script's folder.
pub const DONE_DIR: &str = "done";
pub const FAILED_DIR: &str = "failed";

/// Name endings of uploads in progress.
const PARTIAL_ENDINGS: [&str; 4] = [".part", ".filepart", ".tmp", ".partial"];

/// The first pickup strictly after `now`: the earliest of the next
/// occurrences of `times` (local times of `tz`).
pub fn next_pickup(now: DateTime<Utc>, times: &[NaiveTime], tz: Tz) -> Option<DateTime<Utc>> {
    times.iter().map(|at| next_nightly_run(now, *at, tz)).min()
}

/// A file ready to import, with the script its folder names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxFile {
    pub script: String,
    pub path: PathBuf,
}

/// Files under `inbox/<script>/` that have settled by `now`, in name order
/// per script; scripts in name order.
pub fn ready_files(inbox: &Path, now: SystemTime) -> std::io::Result<Vec<InboxFile>> {
    let mut ready = Vec::new();
    if !inbox.is_dir() {
        return Ok(ready);
    }
    let mut scripts: Vec<(String, PathBuf)> = std::fs::read_dir(inbox)?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|entry| {
            let name = entry.file_name().to_str()?.to_string();
            (!name.starts_with('.')).then(|| (name, entry.path()))
        })
        .collect();
    scripts.sort();
    for (script, dir) in scripts {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|t| t.is_file()))
            .filter(|entry| entry.file_name().to_str().is_some_and(is_candidate_name))
            .filter(|entry| {
                entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|modified| settled(modified, now))
            })
            .map(|entry| entry.path())
            .collect();
        files.sort();
        ready.extend(files.into_iter().map(|path| InboxFile {
            script: script.clone(),
            path,
        }));
    }
    Ok(ready)
}

/// Whether a name may be an import file (not hidden, not a partial upload).
pub fn is_candidate_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.starts_with('.')
        && !lower.ends_with(".report.json")
        && !PARTIAL_ENDINGS.iter().any(|ending| lower.ends_with(ending))
}

fn settled(modified: SystemTime, now: SystemTime) -> bool {
    now.duration_since(modified).is_ok_and(|age| age >= SETTLE)
}

/// Where a processed file goes: `<script dir>/<done|failed>/<name>`, with a
/// time prefix when a file of that name is already there.
pub fn destination(file: &Path, succeeded: bool, now: DateTime<Utc>) -> PathBuf {
    let dir = file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(if succeeded { DONE_DIR } else { FAILED_DIR });
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let plain = dir.join(&name);
    if plain.exists() {
        dir.join(format!("{}_{name}", now.format("%Y%m%dT%H%M%S")))
    } else {
        plain
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().expect("RFC 3339")
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("time")
    }

    #[test]
    fn the_next_pickup_is_the_earliest_of_the_times_in_local_time() {
        let tz = chrono_tz::Europe::Amsterdam;
        let times = [t(7, 0), t(13, 30)];
        // 10:00 local (UTC+1 in January): next is 13:30 local.
        assert_eq!(
            next_pickup(utc("2026-01-13T09:00:00Z"), &times, tz),
            Some(utc("2026-01-13T12:30:00Z"))
        );
        // After the last one: tomorrow 07:00, in summer time.
        assert_eq!(
            next_pickup(utc("2026-07-14T12:00:00Z"), &times, tz),
            Some(utc("2026-07-15T05:00:00Z"))
        );
        assert_eq!(next_pickup(utc("2026-07-14T12:00:00Z"), &[], tz), None);
    }

    #[test]
    fn partial_and_hidden_names_are_left_alone() {
        for name in [
            "x.csv.part",
            ".upload.csv",
            "x.CSV.FILEPART",
            "a.tmp",
            "a.csv.report.json",
        ] {
            assert!(!is_candidate_name(name), "{name}");
        }
        for name in ["debtors.csv", "Debtors 2026-11.xlsx", "x.ods", "x.xml"] {
            assert!(is_candidate_name(name), "{name}");
        }
    }

    #[test]
    fn only_settled_files_in_script_folders_are_ready() {
        let inbox =
            std::env::temp_dir().join(format!("dialcast-inbox-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&inbox);
        std::fs::create_dir_all(inbox.join("reminder/done")).expect("dirs");
        std::fs::write(inbox.join("loose.csv"), "x").expect("loose");
        std::fs::write(inbox.join("reminder/b.csv"), "x").expect("b");
        std::fs::write(inbox.join("reminder/a.xlsx"), "x").expect("a");
        std::fs::write(inbox.join("reminder/c.csv.part"), "x").expect("c");
        std::fs::write(inbox.join("reminder/done/old.csv"), "x").expect("old");
        let now = SystemTime::now();
        assert!(
            ready_files(&inbox, now).expect("scan").is_empty(),
            "too fresh"
        );
        let later = now + SETTLE + Duration::from_secs(1);
        let ready = ready_files(&inbox, later).expect("scan");
        let names: Vec<(String, String)> = ready
            .iter()
            .map(|f| {
                (
                    f.script.clone(),
                    f.path
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("reminder".to_string(), "a.xlsx".to_string()),
                ("reminder".to_string(), "b.csv".to_string())
            ]
        );
        let moved = destination(&ready[0].path, true, utc("2026-01-13T09:00:00Z"));
        assert_eq!(moved, inbox.join("reminder/done/a.xlsx"));
        let again = destination(
            &inbox.join("reminder/old.csv"),
            true,
            utc("2026-01-13T09:00:00Z"),
        );
        assert_eq!(again, inbox.join("reminder/done/20260113T090000_old.csv"));
        let _ = std::fs::remove_dir_all(&inbox);
    }
}
