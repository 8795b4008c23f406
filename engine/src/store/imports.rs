//! What the store keeps of imports: the `imports` table (one uploaded file,
//! its lifecycle and its validation report) and the staging of an import's
//! records, so that an import is all or nothing.
//!
//! ```text
//! uploaded ──begin(Validating)──► validating ──finish_validation──► validated
//! uploaded | validated ──begin(Importing)──► importing ──publish_import──► finished
//! importing ──discard_import──► validated (rows failed) | failed | cancelled
//! uploaded | validated ──cancel_import──► cancelled
//! validating | importing ──fail_import (error, or interrupted)──► failed
//! ```
//!
//! While an import runs, [`ImportStore::stage_records`] adds its records in
//! their final state (`pending`, or `done` with an undialled attempt), but
//! `claim_next`, statuses, results and the blocklist treat the records of an
//! import that is not `finished` as absent. One transaction
//! ([`ImportStore::publish_import`]) marks it finished, which makes them
//! visible without rewriting them; [`ImportStore::discard_import`] deletes
//! them. A process killed mid-import leaves the import `importing`, which
//! start-up turns into `failed`, deleting its records.

use std::collections::HashSet;
use std::future::Future;

use serde::Serialize;

use super::{EpochMs, Id, Store, StoreResult};
use crate::import::ImportedRecord;

/// Where an import is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ImportStatus {
    /// The file is archived; nothing was checked yet.
    Uploaded,
    /// A validation pass is reading it.
    Validating,
    /// Its report is ready; waiting for confirm or cancel.
    Validated,
    /// Its records are being staged.
    Importing,
    /// Its records are published.
    Finished,
    /// Stopped by an error (or by a process that died); nothing imported.
    Failed,
    /// Cancelled before it was confirmed; nothing imported.
    Cancelled,
}

impl ImportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportStatus::Uploaded => "uploaded",
            ImportStatus::Validating => "validating",
            ImportStatus::Validated => "validated",
            ImportStatus::Importing => "importing",
            ImportStatus::Finished => "finished",
            ImportStatus::Failed => "failed",
            ImportStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<ImportStatus> {
        Some(match text {
            "uploaded" => ImportStatus::Uploaded,
            "validating" => ImportStatus::Validating,
            "validated" => ImportStatus::Validated,
            "importing" => ImportStatus::Importing,
            "finished" => ImportStatus::Finished,
            "failed" => ImportStatus::Failed,
            "cancelled" => ImportStatus::Cancelled,
            _ => return None,
        })
    }

    /// The statuses a pass may start from: validation from `uploaded` or
    /// `validated` (again), an import from the same two.
    pub fn may_start_pass(self) -> bool {
        matches!(self, ImportStatus::Uploaded | ImportStatus::Validated)
    }
}

/// A new import, its file already archived.
#[derive(Clone, Debug)]
pub struct NewImport<'a> {
    pub organisation: Id,
    pub campaign: Id,
    pub script_name: &'a str,
    /// The file's name as uploaded.
    pub file_name: &'a str,
    pub file_size: u64,
    /// The archived copy.
    pub stored_path: &'a str,
}

/// One import as stored (`dialcast import show --json`).
#[derive(Clone, Debug, Serialize)]
pub struct ImportInfo {
    pub id: Id,
    #[serde(skip)]
    pub organisation_id: Id,
    pub organisation: String,
    pub campaign: String,
    #[serde(skip)]
    pub campaign_id: Id,
    pub script: String,
    pub file_name: String,
    pub file_size: u64,
    pub status: ImportStatus,
    /// Data rows read by the last pass.
    pub records: u64,
    /// Records added (0 until finished).
    pub imported: u64,
    /// Rows that failed validation.
    pub failed: u64,
    pub uploaded_at: EpochMs,
    pub started_at: Option<EpochMs>,
    pub finished_at: Option<EpochMs>,
    /// The archived original; `None` once deleted by retention.
    pub stored_path: Option<String>,
    pub file_deleted_at: Option<EpochMs>,
    /// Why it failed.
    pub error: Option<String>,
    /// The last validation report (JSON object), if any.
    pub report: Option<serde_json::Value>,
}

/// The counts a pass ends with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PassCounts {
    pub records: u64,
    pub imported: u64,
    pub failed: u64,
}

/// What happens to a staged record when its import is published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StagedOutcome {
    /// `pending`: dialled.
    Dial,
    /// `done` with an undialled `invalid_number` attempt naming `number` (the
    /// first phone cell as given, or empty): no valid number.
    InvalidNumber { number: String },
    /// `done` with an undialled `blocked` attempt: every number it had is on
    /// the blocklist (the first is named).
    Blocked { number: String },
}

/// One record to stage, its fields already serialised (on the thread that
/// read them, so that the many small strings of a row are freed where they
/// were allocated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedRecord {
    /// The line the row starts on.
    pub line: u64,
    pub record_id: String,
    pub client_reference: Option<String>,
    /// The fields as a JSON object (empty when only validating).
    pub fields_json: String,
    /// The dialable numbers as a JSON list (empty when only validating).
    pub phones_json: String,
    pub outcome: StagedOutcome,
    /// The services it gets (for the statistics).
    pub services: Services,
}

/// The channels a record gets: voice unless `SERVICES_VOICE` is `N`, SMS
/// and e-mail when theirs are `Y`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Services {
    pub voice: bool,
    pub sms: bool,
    pub email: bool,
}

impl Services {
    pub fn of(fields: &std::collections::BTreeMap<String, String>) -> Services {
        let flag = |key: &str| fields.get(key).map(String::as_str);
        Services {
            voice: flag("SERVICES_VOICE") != Some("N"),
            sms: flag("SERVICES_SMS") == Some("Y"),
            // The import left out a malformed address (with a warning).
            email: flag("SERVICES_EMAIL") == Some("Y") && flag("CONTACT_EMAIL").is_some(),
        }
    }
}

impl StagedRecord {
    /// A record with its fields serialised; `with_json` false leaves them
    /// out (a validation pass stores nothing).
    pub fn new(
        record: ImportedRecord,
        outcome: StagedOutcome,
        with_json: bool,
    ) -> Result<StagedRecord, serde_json::Error> {
        let services = Services::of(&record.fields);
        let (fields_json, phones_json) = if with_json {
            (
                serde_json::to_string(&record.fields)?,
                serde_json::to_string(&record.phones)?,
            )
        } else {
            (String::new(), String::new())
        };
        Ok(StagedRecord {
            line: record.line,
            record_id: record.record_id,
            client_reference: record.client_reference,
            fields_json,
            phones_json,
            outcome,
            services,
        })
    }
}

/// The number an undialled `invalid_number` attempt names: the first phone
/// cell as given, else the first dialable column's value, else empty.
pub fn reported_number(record: &ImportedRecord) -> String {
    record
        .rejected_phones
        .first()
        .map(|(_, value)| value.clone())
        .or_else(|| {
            crate::import::columns::DIALABLE_PHONES
                .iter()
                .find_map(|column| record.fields.get(*column).cloned())
        })
        .unwrap_or_default()
}

/// What the store did with staged records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StageSummary {
    pub staged: u64,
    /// Lines of the records whose RECORD_ID the campaign already has (not
    /// staged).
    pub existing_lines: Vec<u64>,
}

/// An archived file older than the retention period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiredFile {
    pub import: Id,
    pub stored_path: String,
}

/// What the store keeps of imports.
pub trait ImportStore: Store {
    /// Records a new import as `uploaded`; returns its id.
    fn create_import(
        &self,
        import: &NewImport<'_>,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<Id>> + Send;

    /// Moves an `uploaded` or `validated` import to `validating` or
    /// `importing`; errors with the current status otherwise.
    fn begin_pass(
        &self,
        import: Id,
        to: ImportStatus,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// `validating` → `validated`, with the counts and the report.
    fn finish_validation(
        &self,
        import: Id,
        counts: PassCounts,
        report: &str,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Which of `record_ids` the campaign already has (any state).
    fn existing_record_ids(
        &self,
        campaign: Id,
        record_ids: &[&str],
    ) -> impl Future<Output = StoreResult<HashSet<String>>> + Send;

    /// Adds records of an `importing` import, in one transaction, stamped
    /// with the import's start (`imported_at`, and `next_attempt_at` of the
    /// pending ones: they wait at that instant, unseen, until the import is
    /// published); record ids the campaign already has are left out and
    /// reported.
    fn stage_records(
        &self,
        import: Id,
        campaign: Id,
        records: Vec<StagedRecord>,
    ) -> impl Future<Output = StoreResult<StageSummary>> + Send;

    /// Publishes the import's records and marks it `finished`, in one
    /// transaction: their undialled attempts end (with an outbox event each)
    /// and the statistics count them; the records themselves are not
    /// rewritten. Returns how many were published.
    fn publish_import(
        &self,
        import: Id,
        counts: PassCounts,
        report: &str,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Deletes the records of an `importing` import and moves it to `to`
    /// (`validated`, `failed` or `cancelled`), in one transaction.
    fn discard_import(
        &self,
        import: Id,
        to: ImportStatus,
        counts: PassCounts,
        report: Option<&str>,
        error: Option<&str>,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// `uploaded` or `validated` → `cancelled`; errors with the current
    /// status otherwise.
    fn cancel_import(
        &self,
        import: Id,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    fn import_info(&self, import: Id) -> impl Future<Output = StoreResult<ImportInfo>> + Send;

    /// The organisation's imports, newest first (without their reports).
    fn imports(
        &self,
        organisation: Id,
    ) -> impl Future<Output = StoreResult<Vec<ImportInfo>>> + Send;

    /// Imports in `validating` or `importing` (any organisation).
    fn imports_in_progress(&self) -> impl Future<Output = StoreResult<Vec<ImportInfo>>> + Send;

    /// Archived files of imports uploaded before `uploaded_before`.
    fn expired_import_files(
        &self,
        uploaded_before: EpochMs,
    ) -> impl Future<Output = StoreResult<Vec<ExpiredFile>>> + Send;

    /// The archived file is gone: forget its path.
    fn mark_import_file_deleted(
        &self,
        import: Id,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<()>> + Send;
}
