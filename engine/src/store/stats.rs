//! What the statistics and the result files need from storage: reading the
//! 5-minute buckets (written by the store's own transactions, see
//! [`crate::stats`]), finding the scripts that had a day to report, and the
//! register of result files written. Every [`super::Store`] is a
//! [`StatsStore`].

use std::collections::BTreeMap;
use std::future::Future;

use chrono::NaiveDate;
use serde::Serialize;

use super::{EpochMs, Id, StoreResult};
use crate::stats::{BucketUpdate, Counters};

/// A script with the campaigns that ran it in some period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptCampaigns {
    pub script_id: Id,
    pub script: String,
    /// `(id, name)`, oldest first.
    pub campaigns: Vec<(Id, String)>,
}

/// A result file as registered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResultFile {
    pub script_id: Id,
    pub script: String,
    /// The organisation's local day it reports.
    pub day: NaiveDate,
    /// `csv` or `xml`.
    pub format: String,
    pub path: String,
    /// The copy in the organisation's outbox, if one is configured.
    pub outbox_path: Option<String>,
    /// Bytes.
    pub size: u64,
    /// Records in the file.
    pub rows: u64,
    pub written_at: EpochMs,
}

/// Reads of the statistics and the result-file register.
pub trait StatsStore: Send + Sync + 'static {
    /// The campaign's buckets that overlap `[from, to)` (start from
    /// `bucket_start(from)` up to `to`), oldest first, each with its
    /// start.
    fn stats_buckets(
        &self,
        campaign: Id,
        from: EpochMs,
        to: EpochMs,
    ) -> impl Future<Output = StoreResult<Vec<(EpochMs, Counters)>>> + Send;

    /// The counters of the buckets overlapping `[from, to)`, summed.
    fn stats_totals(
        &self,
        campaign: Id,
        from: EpochMs,
        to: EpochMs,
    ) -> impl Future<Output = StoreResult<Counters>> + Send;

    /// The counters of every campaign summed over the buckets overlapping
    /// `[from, to)` (e.g. today's imported records per service).
    fn stats_totals_all(
        &self,
        from: EpochMs,
        to: EpochMs,
    ) -> impl Future<Output = StoreResult<Counters>> + Send;

    /// Records imported into any campaign in the buckets overlapping
    /// `[from, to)`, per service (`voice`, `sms`, `email`; the
    /// `imported.<service>` counters): over a local day from
    /// [`crate::stats::range::day_range`], that day's records per service.
    /// Only those three counters are read, campaign by campaign along the
    /// primary key, so it stays cheap enough to sample every few seconds.
    fn records_imported_per_service(
        &self,
        from: EpochMs,
        to: EpochMs,
    ) -> impl Future<Output = StoreResult<BTreeMap<String, u64>>> + Send;

    /// The campaign's bucket holding `at`, as committed now.
    fn bucket_update(
        &self,
        campaign: Id,
        at: EpochMs,
    ) -> impl Future<Output = StoreResult<BucketUpdate>> + Send;

    /// The bucket an attempt was counted in (that of its start), as
    /// committed now.
    fn attempt_bucket(&self, attempt: Id)
        -> impl Future<Output = StoreResult<BucketUpdate>> + Send;

    /// Scripts with a campaign that was started and not yet finished at
    /// some time in `[from, to)`, or that counted an attempt then.
    fn scripts_active(
        &self,
        from: EpochMs,
        to: EpochMs,
    ) -> impl Future<Output = StoreResult<Vec<ScriptCampaigns>>> + Send;

    /// The script of a campaign, with every campaign of that script.
    fn script_of_campaign(
        &self,
        campaign: Id,
    ) -> impl Future<Output = StoreResult<ScriptCampaigns>> + Send;

    /// Registers a written file, replacing the entry of the same script,
    /// day and format.
    fn record_result_file(&self, file: &ResultFile)
        -> impl Future<Output = StoreResult<()>> + Send;

    /// The entry of one script, day and format, if written.
    fn result_file(
        &self,
        script: Id,
        day: NaiveDate,
        format: &str,
    ) -> impl Future<Output = StoreResult<Option<ResultFile>>> + Send;

    /// Every registered file, newest day first.
    fn result_files(&self) -> impl Future<Output = StoreResult<Vec<ResultFile>>> + Send;
}
