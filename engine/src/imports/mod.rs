//! The import lifecycle: upload (the original is archived), validate,
//! confirm or cancel, and the clean-up a service does (interrupted imports,
//! archived files past their retention). Reading a file is
//! [`crate::import`]'s; what is stored is [`crate::store::ImportStore`]'s.
//!
//! # Rules
//!
//! * **Validate, then confirm.** A validation pass reads the whole file and
//!   stores nothing but its report. An import pass checks every row again
//!   and stages the passing ones; at the end they are published in one
//!   transaction, unless rows failed and partial imports were not accepted:
//!   then the staged rows are deleted and the import is `validated` again
//!   (confirm it with `accept_partial`, or cancel it).
//! * **Failing rows** (never imported, listed in the report's `errors`):
//!   what [`crate::import`] rejects (a repeated RECORD_ID in the file among
//!   them), and rows of another script than the import's.
//! * **Skipped rows**: a RECORD_ID the campaign already has (warning; the
//!   stored record is kept).
//! * **Blocklisted numbers** are discarded with a warning; a record left
//!   without a number is stored `done` with final status `blocked` and an
//!   undialled `blocked` attempt, so results show it (it is not a failing
//!   row). A record without any valid number is stored as `invalid_number`
//!   in the same way.
//! * **All or nothing.** A pass that fails (a read error, the database, a
//!   killed process) leaves no record: staged rows are deleted, at once or
//!   by [`recover_imports`] when the service starts.
//! * **Row numbers** in reports are the line a row starts on, the header
//!   being line 1.

mod archive;
pub mod pass;
pub mod report;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::import::ImportOptions;
use crate::store::imports::{NewImport, PassCounts};
use crate::store::{BlocklistStore, EpochMs, Id, ImportInfo, ImportStatus, ImportStore};
pub use archive::ImportLock;
pub use pass::{Mode, DEFAULT_BATCH_ROWS};
pub use report::{Issue, ValidationReport};

/// A file to upload into a campaign.
#[derive(Clone, Debug)]
pub struct Upload<'a> {
    pub organisation: Id,
    pub campaign: Id,
    pub script: &'a str,
    pub file: &'a Path,
    /// The name the file was uploaded under (default: `file`'s path); its
    /// extension chooses the reader.
    pub name: Option<&'a str>,
    pub archive_dir: &'a Path,
}

/// How a pass runs.
#[derive(Clone, Debug)]
pub struct PassOptions {
    /// Country for numbers without a country code.
    pub default_country: String,
    /// Import the passing rows even when others fail.
    pub accept_partial: bool,
    /// Rows per staging transaction.
    pub batch_rows: usize,
}

impl PassOptions {
    pub fn new(default_country: &str) -> PassOptions {
        PassOptions {
            default_country: default_country.to_owned(),
            accept_partial: false,
            batch_rows: DEFAULT_BATCH_ROWS,
        }
    }
}

/// Archives the file and records the import as `uploaded`.
pub async fn upload<S: ImportStore>(
    store: &S,
    upload: &Upload<'_>,
    now: EpochMs,
) -> anyhow::Result<Id> {
    let file_name = match upload.name {
        Some(name) => name.to_owned(),
        None => upload.file.display().to_string(),
    };
    let archived = archive::store_original(upload.file, upload.archive_dir, now)?;
    let stored_path = archived.path.display().to_string();
    let created = store
        .create_import(
            &NewImport {
                organisation: upload.organisation,
                campaign: upload.campaign,
                script_name: upload.script,
                file_name: &file_name,
                file_size: archived.size,
                stored_path: &stored_path,
            },
            now,
        )
        .await;
    match created {
        Ok(id) => Ok(id),
        Err(e) => {
            let _ = std::fs::remove_file(&archived.path);
            Err(e).context("cannot record the import")
        }
    }
}

/// Locks the archived file, moves the import to `status` and runs one pass
/// in `mode`; the pass's own failure is returned beside its report, with
/// the lock, which the caller holds until the import is settled (start-up
/// recovery leaves a locked import alone).
async fn begin_and_run<S: ImportStore + BlocklistStore>(
    store: &S,
    import: Id,
    options: &PassOptions,
    status: ImportStatus,
    mode: Mode,
) -> anyhow::Result<(ValidationReport, anyhow::Result<()>, ImportLock)> {
    let info = store.import_info(import).await?;
    let (path, lock) = archived_and_locked(&info)?;
    store
        .begin_pass(import, status, crate::campaign::now_ms())
        .await?;
    let mut report = ValidationReport::new(import, &info.file_name, &info.campaign, &info.script);
    let outcome = run_pass(store, &info, &path, options, mode, &mut report).await;
    Ok((report, outcome, lock))
}

/// Validates an `uploaded` or `validated` import: reads the whole archived
/// file and stores the report; imports nothing.
pub async fn validate<S: ImportStore + BlocklistStore>(
    store: &S,
    import: Id,
    options: &PassOptions,
) -> anyhow::Result<ValidationReport> {
    let (mut report, outcome, _lock) = begin_and_run(
        store,
        import,
        options,
        ImportStatus::Validating,
        Mode::Validate,
    )
    .await?;
    let now = crate::campaign::now_ms();
    if let Err(e) = outcome {
        let error = format!("{e:#}");
        store
            .discard_import(
                import,
                ImportStatus::Failed,
                counts(&report),
                None,
                Some(&error),
                now,
            )
            .await?;
        return Err(e);
    }
    report.status = ImportStatus::Validated;
    store
        .finish_validation(import, counts(&report), &report_json(&report)?, now)
        .await?;
    Ok(report)
}

/// Imports an `uploaded` or `validated` import: checks every row again,
/// stages the passing ones and publishes them, or, when rows fail and
/// partial imports are not accepted, imports nothing and leaves it
/// `validated` (the report says why).
pub async fn confirm<S: ImportStore + BlocklistStore>(
    store: &S,
    import: Id,
    options: &PassOptions,
) -> anyhow::Result<ValidationReport> {
    let (mut report, outcome, _lock) =
        begin_and_run(store, import, options, ImportStatus::Importing, Mode::Stage).await?;
    let now = crate::campaign::now_ms();
    if let Err(e) = outcome {
        let error = format!("{e:#}");
        report.status = ImportStatus::Failed;
        crate::metrics::import_done("failed");
        store
            .discard_import(
                import,
                ImportStatus::Failed,
                counts(&report),
                Some(&report_json(&report)?),
                Some(&error),
                now,
            )
            .await?;
        return Err(e);
    }
    if report.will_fail > 0 && !options.accept_partial {
        report.status = ImportStatus::Validated;
        store
            .discard_import(
                import,
                ImportStatus::Validated,
                counts(&report),
                Some(&report_json(&report)?),
                None,
                now,
            )
            .await?;
        return Ok(report);
    }
    report.status = ImportStatus::Finished;
    report.inserted = report.will_import;
    let published = store
        .publish_import(import, counts(&report), &report_json(&report)?, now)
        .await?;
    report.inserted = published;
    crate::metrics::import_done("confirmed");
    crate::metrics::import_rows("accepted", report.inserted);
    crate::metrics::import_rows(
        "rejected",
        report.will_fail.saturating_sub(report.duplicates_in_file),
    );
    crate::metrics::import_rows("duplicate", report.duplicates);
    crate::metrics::import_rows("blocked", report.blocked_records);
    Ok(report)
}

/// Cancels an import that was not confirmed.
pub async fn cancel<S: ImportStore>(store: &S, import: Id) -> anyhow::Result<()> {
    store
        .cancel_import(import, crate::campaign::now_ms())
        .await?;
    crate::metrics::import_done("cancelled");
    Ok(())
}

/// Copies the archived original of an import to `out`.
pub async fn download<S: ImportStore>(store: &S, import: Id, out: &Path) -> anyhow::Result<u64> {
    let info = store.import_info(import).await?;
    let Some(stored) = &info.stored_path else {
        anyhow::bail!(
            "import {import}: its file {} was deleted after the retention period",
            info.file_name
        );
    };
    std::fs::copy(stored, out).with_context(|| format!("cannot copy {stored} to {}", out.display()))
}

/// At start-up: imports left `validating` or `importing` by a process that
/// is gone (nobody holds their lock) become `failed` and their staged rows
/// are deleted. Returns how many.
pub async fn recover_imports<S: ImportStore>(store: &S, now: EpochMs) -> anyhow::Result<u64> {
    let mut recovered = 0;
    for info in store.imports_in_progress().await? {
        let lock = match &info.stored_path {
            Some(path) => ImportLock::try_acquire(Path::new(path))?,
            None => None,
        };
        if info.stored_path.is_some() && lock.is_none() {
            continue; // a live process is working on it
        }
        let error = format!(
            "interrupted: the process that was {} it stopped; nothing was imported",
            if info.status == ImportStatus::Importing {
                "importing"
            } else {
                "validating"
            }
        );
        store
            .discard_import(
                info.id,
                ImportStatus::Failed,
                PassCounts {
                    records: info.records,
                    imported: 0,
                    failed: info.failed,
                },
                None,
                Some(&error),
                now,
            )
            .await?;
        recovered += 1;
    }
    Ok(recovered)
}

/// Deletes archived import files uploaded more than `retention_ms` before
/// `now` (the import and its report stay). Returns how many were deleted.
pub async fn purge_expired_import_files<S: ImportStore>(
    store: &S,
    retention_ms: i64,
    now: EpochMs,
) -> anyhow::Result<u64> {
    let mut deleted = 0;
    for expired in store
        .expired_import_files(now.saturating_sub(retention_ms))
        .await?
    {
        archive::remove(Path::new(&expired.stored_path))?;
        store.mark_import_file_deleted(expired.import, now).await?;
        deleted += 1;
    }
    Ok(deleted)
}

/// The archived file of an import and the lock that tells others a live
/// process works on it.
fn archived_and_locked(info: &ImportInfo) -> anyhow::Result<(PathBuf, ImportLock)> {
    let Some(stored) = &info.stored_path else {
        anyhow::bail!(
            "import {}: its file {} was deleted after the retention period",
            info.id,
            info.file_name
        );
    };
    let path = PathBuf::from(stored);
    let lock = ImportLock::try_acquire(&path)?
        .with_context(|| format!("import {} is being worked on by another process", info.id))?;
    Ok((path, lock))
}

async fn run_pass<S: ImportStore + BlocklistStore>(
    store: &S,
    info: &ImportInfo,
    path: &Path,
    options: &PassOptions,
    mode: Mode,
    report: &mut ValidationReport,
) -> anyhow::Result<()> {
    let blocked: HashSet<String> = store.blocked_numbers(info.organisation_id).await?;
    let mut read = ImportOptions::new(info.file_name.clone());
    read.default_country = options.default_country.clone();
    read.script = Some(info.script.clone());
    pass::run(
        store,
        pass::PassSetup {
            import: info.id,
            campaign: info.campaign_id,
            script: &info.script,
            path,
            options: read,
            blocked,
            batch_rows: options.batch_rows.max(1),
        },
        mode,
        report,
    )
    .await
}

fn counts(report: &ValidationReport) -> PassCounts {
    PassCounts {
        records: report.records,
        imported: report.inserted,
        failed: report.will_fail,
    }
}

fn report_json(report: &ValidationReport) -> anyhow::Result<String> {
    Ok(serde_json::to_string(report)?)
}
