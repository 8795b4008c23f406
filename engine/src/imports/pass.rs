//! One pass over an import file. Rows are read, checked (the reader's rules,
//! then the import's script and the blocklist) and turned into
//! [`StagedRecord`]s on a thread of their own, which frees each row's many
//! small strings where it allocated them; chunks of records and their issues
//! go through a bounded channel, so reading and storing overlap and memory
//! stays bounded (at most 64 chunks, one batch and the record ids seen, which
//! duplicates within the file need). The async side checks what needs the
//! store (RECORD_IDs the campaign has) and either only counts
//! ([`Mode::Validate`]) or stages each batch ([`Mode::Stage`]).

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use super::report::{Issue, ValidationReport};
use crate::import::columns::{DIALABLE_PHONES, RECORD_ID, SCRIPT};
use crate::import::{
    open_rows, ImportError, ImportIssue, ImportOptions, ImportedRecord, RowResult,
};
use crate::store::imports::{reported_number, StagedOutcome, StagedRecord};
use crate::store::{Id, ImportStore};

/// Rows per message from the reading thread. A chunk's buffer stays under
/// 64 KiB: glibc's malloc consolidates its free lists whenever a larger
/// block is freed, and chunks are freed on another thread than the one that
/// filled them (this was 8 % of a validation's time at 1,024 rows).
const ROWS_PER_CHUNK: usize = 256;
/// Chunks in flight between the reading thread and the store, at least:
/// the reader waits when they are full.
const MIN_CHUNKS_IN_FLIGHT: usize = 16;
/// ... and at most: with room for a whole batch (and a little more) the
/// reader checks the next batch while the store stages this one, instead
/// of waiting for it (with 16 chunks the two sides took turns, and a
/// million-row import left a third of both cores idle).
const MAX_CHUNKS_IN_FLIGHT: usize = 64;
/// Rows per staging transaction by default.
pub const DEFAULT_BATCH_ROWS: usize = 10_000;

/// What a message of the reader says of a repeated RECORD_ID (see
/// `import::record`); such rows are counted as duplicates within the file.
const REPEATED_ID_MARK: &str = "is already used on line";

/// Validate only, or stage the rows too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Validate,
    Stage,
}

/// The rows of a file, whatever its format.
pub(super) struct FileRows {
    pub header_warnings: Vec<ImportIssue>,
    pub rows: Box<dyn Iterator<Item = Result<RowResult, ImportError>> + Send>,
}

/// The one place an import file is opened: CSV, XLSX, ODS or XML, told
/// apart by [`crate::import::FileFormat::detect`].
fn open_import_rows(path: &Path, options: &ImportOptions) -> Result<FileRows, ImportError> {
    let rows = open_rows(path, options)?;
    Ok(FileRows {
        header_warnings: rows.header_warnings().to_vec(),
        rows: Box::new(rows),
    })
}

/// What the reading thread hands over: checked records and what was found.
struct Checked {
    records: Vec<StagedRecord>,
    report: ValidationReport,
}

type Chunk = Result<Checked, anyhow::Error>;

/// What the reading thread checks rows against.
struct Screen {
    script: String,
    blocked: HashSet<String>,
    mode: Mode,
}

/// Opens the file (its header is checked here) and starts the thread that
/// reads and checks its rows.
fn spawn_reader(
    path: &Path,
    options: &ImportOptions,
    screen: Screen,
    batch_rows: usize,
) -> Result<(Vec<ImportIssue>, tokio::sync::mpsc::Receiver<Chunk>), ImportError> {
    let FileRows {
        header_warnings,
        mut rows,
    } = open_import_rows(path, options)?;
    let in_flight = (batch_rows.div_ceil(ROWS_PER_CHUNK) + MIN_CHUNKS_IN_FLIGHT / 2)
        .clamp(MIN_CHUNKS_IN_FLIGHT, MAX_CHUNKS_IN_FLIGHT);
    let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(in_flight);
    std::thread::Builder::new()
        .name("dialcast-import".into())
        .spawn(move || loop {
            let mut checked = Checked {
                records: Vec::with_capacity(ROWS_PER_CHUNK),
                report: ValidationReport::new(0, "", "", ""),
            };
            let mut failed = None;
            let mut read = 0;
            for row in rows.by_ref() {
                read += 1;
                match row
                    .map_err(anyhow::Error::from)
                    .and_then(|row| screen_row(row, &screen, &mut checked.report))
                {
                    Ok(Some(record)) => checked.records.push(record),
                    Ok(None) => {}
                    Err(err) => {
                        failed = Some(err);
                        break;
                    }
                }
                if read == ROWS_PER_CHUNK {
                    break;
                }
            }
            let last = read < ROWS_PER_CHUNK || failed.is_some();
            if read > 0 && tx.blocking_send(Ok(checked)).is_err() {
                return;
            }
            if let Some(err) = failed {
                let _ = tx.blocking_send(Err(err));
                return;
            }
            if last {
                return;
            }
        })
        .map_err(|source| ImportError::Read {
            file: options.file_name.clone(),
            source,
        })?;
    Ok((header_warnings, rx))
}

/// Checks one row: a failing one is counted and its issues kept; a passing
/// one becomes a record to stage.
fn screen_row(
    row: RowResult,
    screen: &Screen,
    report: &mut ValidationReport,
) -> anyhow::Result<Option<StagedRecord>> {
    report.records += 1;
    match row {
        RowResult::Rejected {
            errors, warnings, ..
        } => {
            if errors.iter().any(|e| {
                e.field.as_deref() == Some(RECORD_ID) && e.message.contains(REPEATED_ID_MARK)
            }) {
                report.duplicates += 1;
                report.duplicates_in_file += 1;
            }
            report.fail_row(errors.into_iter().map(Issue::from));
            for warning in warnings {
                report.warn(warning.into());
            }
            Ok(None)
        }
        RowResult::Imported { record, warnings } => {
            report.invalid_numbers += record.rejected_phones.len() as u64;
            for warning in warnings {
                report.warn(warning.into());
            }
            if record.script != screen.script {
                report.fail_row([Issue {
                    row: record.line,
                    column: Some(SCRIPT.to_owned()),
                    reason: format!(
                        "{:?} is not the script of this import ({}); import those rows \
                         with --script {}",
                        record.script, screen.script, record.script
                    ),
                }]);
                return Ok(None);
            }
            let (record, outcome) = screen_numbers(record, &screen.blocked, report);
            Ok(Some(StagedRecord::new(
                record,
                outcome,
                screen.mode == Mode::Stage,
            )?))
        }
    }
}

/// Discards blocklisted numbers and decides what the record becomes.
fn screen_numbers(
    mut record: ImportedRecord,
    blocked: &HashSet<String>,
    report: &mut ValidationReport,
) -> (ImportedRecord, StagedOutcome) {
    let mut first_blocked: Option<String> = None;
    if !blocked.is_empty() {
        let mut discarded = Vec::new();
        record.phones.retain(|number| {
            let is_blocked = blocked.contains(number);
            if is_blocked {
                discarded.push(number.clone());
            }
            !is_blocked
        });
        for number in discarded {
            report.blocklisted += 1;
            let column = column_of(&record, &number);
            let left = if record.phones.is_empty() {
                "the record has no other number: it is stored as blocked and not dialled"
            } else {
                "the record's other numbers are dialled"
            };
            report.warn(Issue {
                row: record.line,
                column,
                reason: format!("{number} is on the blocklist and is discarded; {left}"),
            });
            first_blocked.get_or_insert(number);
        }
    }
    let outcome = match (record.phones.is_empty(), first_blocked) {
        (false, _) => StagedOutcome::Dial,
        (true, Some(number)) => {
            report.blocked_records += 1;
            StagedOutcome::Blocked { number }
        }
        (true, None) => {
            report.without_valid_number += 1;
            StagedOutcome::InvalidNumber {
                number: reported_number(&record),
            }
        }
    };
    (record, outcome)
}

/// What a pass needs to know.
pub struct PassSetup<'a> {
    pub import: Id,
    pub campaign: Id,
    pub script: &'a str,
    pub path: &'a Path,
    pub options: ImportOptions,
    pub blocked: HashSet<String>,
    pub batch_rows: usize,
}

/// Reads the whole file; in [`Mode::Stage`] its records are staged batch by
/// batch. The report is complete when this returns `Ok`; on `Err` the caller
/// discards what was staged.
pub async fn run<S: ImportStore>(
    store: &S,
    mut setup: PassSetup<'_>,
    mode: Mode,
    report: &mut ValidationReport,
) -> anyhow::Result<()> {
    let started = Instant::now();
    let screen = Screen {
        script: setup.script.to_owned(),
        blocked: std::mem::take(&mut setup.blocked),
        mode,
    };
    let (header_warnings, mut rx) =
        spawn_reader(setup.path, &setup.options, screen, setup.batch_rows)?;
    for issue in header_warnings {
        report.warn(issue.into());
    }
    let mut pass = Pass {
        store,
        setup: &setup,
        mode,
        batch: Vec::with_capacity(setup.batch_rows.min(100_000)),
    };
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        report.absorb(chunk.report);
        pass.batch.extend(chunk.records);
        if pass.batch.len() >= setup.batch_rows {
            pass.flush(report).await?;
        }
    }
    pass.flush(report).await?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(())
}

struct Pass<'a, S> {
    store: &'a S,
    setup: &'a PassSetup<'a>,
    mode: Mode,
    batch: Vec<StagedRecord>,
}

impl<S: ImportStore> Pass<'_, S> {
    /// Checks the batch against the campaign, and stages it in
    /// [`Mode::Stage`].
    async fn flush(&mut self, report: &mut ValidationReport) -> anyhow::Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let (existing, staged) = match self.mode {
            Mode::Validate => {
                let ids: Vec<&str> = batch.iter().map(|s| s.record_id.as_str()).collect();
                let found = self
                    .store
                    .existing_record_ids(self.setup.campaign, &ids)
                    .await?;
                let existing: Vec<(u64, String)> = batch
                    .iter()
                    .filter(|s| found.contains(&s.record_id))
                    .map(|s| (s.line, s.record_id.clone()))
                    .collect();
                let staged = (batch.len() - existing.len()) as u64;
                (existing, staged)
            }
            Mode::Stage => {
                let summary = self
                    .store
                    .stage_records(self.setup.import, self.setup.campaign, batch)
                    .await?;
                let existing = summary
                    .existing_lines
                    .into_iter()
                    .map(|line| (line, String::new()))
                    .collect();
                (existing, summary.staged)
            }
        };
        report.will_import += staged;
        for (line, record_id) in existing {
            report.duplicates += 1;
            report.already_in_campaign += 1;
            let what = if record_id.is_empty() {
                "the RECORD_ID".to_owned()
            } else {
                format!("{record_id:?}")
            };
            report.warn(Issue {
                row: line,
                column: Some(RECORD_ID.to_owned()),
                reason: format!(
                    "{what} is already in campaign {}; the row is skipped and the stored \
                     record kept",
                    report.campaign
                ),
            });
        }
        Ok(())
    }
}

/// The phone column holding `number`.
fn column_of(record: &ImportedRecord, number: &str) -> Option<String> {
    DIALABLE_PHONES
        .iter()
        .find(|column| record.fields.get(**column).map(String::as_str) == Some(number))
        .map(|column| (*column).to_owned())
}
