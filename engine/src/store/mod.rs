//! Storage: the one place the engine's state lives. The [`Store`] trait says
//! what the engine needs, [`ImportStore`] and [`BlocklistStore`] what imports
//! and the blocklist need; [`sqlite::SqliteStore`] is the embedded default (one
//! file, migrations run at open). PostgreSQL follows the same trait and the same
//! portable SQL.
//!
//! The store is the truth: every state change is committed, with its outbox
//! event, before anything announces it, so a killed process restarts without
//! losing a record or dialling an attempt twice:
//!
//! ```text
//! record of an import in progress (unseen): pending | done (invalid_number,
//!         blocked) ──publish_import──► seen as it is
//!                  ──discard_import──► deleted
//! record: pending ──claim_next──► dialing ──finish_attempt──► done
//!            ▲                        │   (final status)
//!            └──── retry later ───────┘
//! record: pending ──block_number (no other number)──► done (blocked)
//! e-mail of a record (SERVICES_EMAIL=Y, once published): pending
//!         ──queue_emails──► email_outbox row, queued | failed (one per record)
//! attempt: dialing ──finish_attempt──► ended
//!          dialing ──recover_interrupted (after a crash)──► ended (interrupted)
//! ```

pub mod blocklist;
pub mod imports;
pub mod notifications;
pub mod schedule;
pub mod sqlite;
pub mod stats;
pub mod voicelogs;

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;

use crate::import::ImportedRecord;
use crate::results::ResultRow;

pub use blocklist::{BlockEntry, BlockOutcome, BlocklistStore};
pub use imports::{ImportInfo, ImportStatus, ImportStore};
pub use notifications::{NewNotification, Notification, NotificationChannel, NotificationStore};
pub use schedule::{OrganisationCalendar, ScheduleSettings, DEFAULT_NUMBER_ORDER};
pub use sqlite::SqliteStore;
pub use stats::{ResultFile, ScriptCampaigns, StatsStore};
pub use voicelogs::{NewVoicelog, VoicelogEnd, VoicelogFilter, VoicelogInfo, VoicelogStore};

use crate::campaign::schedule::{Candidate, Decision};

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{kind} {name:?} does not exist")]
    NotFound { kind: &'static str, name: String },
    #[error("{kind} {id} is {state}; expected {expected}")]
    WrongState {
        kind: &'static str,
        id: Id,
        state: String,
        expected: &'static str,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Database ids.
pub type Id = i64;

/// Milliseconds since the Unix epoch, UTC: how every timestamp is stored.
pub type EpochMs = i64;

/// A trunk as the engine dials it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrunkSettings {
    pub name: String,
    /// Where INVITEs go, e.g. `sip:trunk.example.net:5060`; the dialled number
    /// becomes the user part.
    pub uri: String,
    /// `udp` or `tcp`.
    pub transport: String,
    pub max_cps: u32,
    pub max_channels: u32,
    pub caller_id: Option<String>,
}

/// How a campaign runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CampaignSettings {
    /// Attempts per record, the first included.
    pub max_attempts: u32,
    pub retry_delay_ms: i64,
    pub ring_timeout_ms: i64,
    /// Hard cap on an answered call.
    pub max_call_ms: i64,
    /// Detect answering machines before the script starts.
    pub amd: bool,
    /// Call windows, daily and weekly limits, number order, rate, priority.
    pub schedule: ScheduleSettings,
}

impl Default for CampaignSettings {
    /// Three attempts half an hour apart, AMD on, and calls at any hour
    /// ([`ScheduleSettings::around_the_clock`]): a default for tests and
    /// demos. `dialcast import` takes the windows from the configuration.
    fn default() -> Self {
        CampaignSettings {
            max_attempts: 3,
            retry_delay_ms: 30 * 60 * 1000,
            ring_timeout_ms: 30_000,
            max_call_ms: 5 * 60 * 1000,
            amd: true,
            schedule: ScheduleSettings::around_the_clock(),
        }
    }
}

/// A campaign's life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CampaignState {
    /// Records may be imported; nothing is dialled.
    Idle,
    Running,
    Paused,
    /// Every record has its final status.
    Finished,
}

impl CampaignState {
    pub fn as_str(self) -> &'static str {
        match self {
            CampaignState::Idle => "idle",
            CampaignState::Running => "running",
            CampaignState::Paused => "paused",
            CampaignState::Finished => "finished",
        }
    }

    pub fn parse(s: &str) -> Option<CampaignState> {
        Some(match s {
            "idle" => CampaignState::Idle,
            "running" => CampaignState::Running,
            "paused" => CampaignState::Paused,
            "finished" => CampaignState::Finished,
            _ => return None,
        })
    }
}

/// A campaign with what is needed to run it.
#[derive(Clone, Debug)]
pub struct Campaign {
    pub id: Id,
    pub organisation: Id,
    pub name: String,
    pub state: CampaignState,
    /// The organisation's days.
    pub calendar: OrganisationCalendar,
    /// When voice was last paused and resumed.
    pub paused_at: Option<EpochMs>,
    pub resumed_at: Option<EpochMs>,
    /// While set, the script takes its "outside opening hours" branch
    /// instead of forwarding.
    pub forwarding_paused: bool,
    pub script_name: String,
    pub script_file: String,
    pub script_source: String,
    pub trunk: TrunkSettings,
    pub settings: CampaignSettings,
}

/// What an import added.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct InsertSummary {
    pub inserted: u64,
    /// Records whose RECORD_ID the campaign already had (left unchanged).
    pub duplicates: u64,
    /// Records with no dialable number: reported `invalid_number`, not dialled.
    pub invalid_number: u64,
}

/// An attempt the store has committed as dialing: dial it exactly once.
#[derive(Clone, Debug)]
pub struct Claim {
    pub attempt_id: Id,
    pub record: Id,
    pub record_id: String,
    /// Which dialled attempt of the record this is (1-based): what the
    /// retry rule counts. Inbound calls and undialled reports do not count.
    pub attempt_no: u32,
    pub number: String,
    pub fields: BTreeMap<String, String>,
}

/// A call from a number the engine dialled recently, matched to the record
/// it dialled it for, with an inbound attempt committed for it.
#[derive(Clone, Debug)]
pub struct CallbackClaim {
    /// The campaign of the record: its script runs the call.
    pub campaign: Campaign,
    pub claim: Claim,
}

/// What [`Store::claim_next`] found.
#[derive(Clone, Debug)]
pub enum ClaimResult {
    /// An attempt committed as dialing: dial it exactly once.
    Claimed(Claim),
    /// No record may be dialled now.
    NothingDue,
    /// The campaign is not running (paused, or stopped from elsewhere).
    NotRunning,
}

/// What [`Store::claim_batch`] found.
#[derive(Clone, Debug)]
pub enum ClaimBatch {
    /// Attempts committed as dialing (at least one), oldest due first: dial
    /// each exactly once.
    Claimed(Vec<Claim>),
    /// No record may be dialled now.
    NothingDue,
    /// The campaign is not running (paused, or stopped from elsewhere).
    NotRunning,
}

/// How an attempt ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// A call status of the formats README.
    pub status: String,
    pub sip_code: Option<u16>,
    pub answered_at: Option<EpochMs>,
    pub ended_at: EpochMs,
    pub ring_ms: i64,
    pub talk_ms: i64,
    pub amd: Option<String>,
    pub dtmf: String,
    pub outputs: Vec<(String, String)>,
    pub call_id: Option<String>,
    /// The script's voicemail block was spoken to its end on a machine.
    pub voicemail_left: bool,
    /// The call centre answered a forward: the call was bridged to it.
    pub forwarded: Option<ForwardStats>,
}

/// What a bridge to the call centre carried, for the outbox event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ForwardStats {
    /// 20 ms frames of the callee's audio sent on to the call centre.
    pub to_centre_frames: u64,
    /// 20 ms frames of the call centre's audio sent on to the callee.
    pub to_callee_frames: u64,
    /// How long the bridge lasted, ms.
    pub bridged_ms: i64,
    /// The trunk connected the callee itself (REFER): no bridge of ours.
    pub referred: bool,
}

/// The waiting part of an outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxBacklog {
    /// Messages waiting.
    pub depth: u64,
    /// When the oldest waiting message was queued (`None`: none waits).
    pub oldest_at: Option<EpochMs>,
}

/// A text message a script queued for a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsRequest {
    pub attempt: Id,
    /// The number the call reached.
    pub number: String,
    pub template: String,
    pub language: String,
    /// The template filled in for the record, or why it could not be (the
    /// message is then stored as `failed` with that reason).
    pub body: Result<String, String>,
}

/// A record still owed its e-mail (`SERVICES_EMAIL=Y`, of a published
/// import, no `email_outbox` row yet), as [`Store::pending_emails`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEmail {
    /// The record's row id: what [`Store::queue_emails`] takes back.
    pub record: Id,
    /// Its RECORD_ID.
    pub record_id: String,
    /// Every field of the record, for the template.
    pub fields: BTreeMap<String, String>,
    /// `CONTACT_EMAIL` as imported; empty when the record has none (queue
    /// it as [`EmailOutcome::Failed`]).
    pub address: String,
}

/// What became of a pending record's e-mail, for [`Store::queue_emails`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EmailOutcome {
    /// Rendered: stored `queued` for the messaging adapters.
    Queued {
        address: String,
        template: String,
        language: String,
        subject: String,
        body: String,
    },
    /// No message could be made (no address, a field the template needs is
    /// empty, no such template): stored `failed` with `reason`, never sent.
    Failed {
        address: String,
        template: Option<String>,
        reason: String,
    },
}

/// What happens to the record after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// The record is done with this status.
    Final,
    /// Try again, not before this time.
    RetryAt(EpochMs),
}

/// Counts for `dialcast campaign status` and the demo.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CampaignStatus {
    pub name: String,
    pub state: String,
    pub records: u64,
    pub pending: u64,
    pub dialing: u64,
    pub done: u64,
    pub attempts: u64,
    /// Final status per record that is done.
    pub statuses: BTreeMap<String, u64>,
    /// Records whose point of success was reached.
    pub success: u64,
}

/// Where one record ended up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordFinal {
    pub record_id: String,
    pub state: String,
    pub final_status: Option<String>,
    /// Attempts dialled (an undialled `invalid_number` report is not one).
    pub attempts: u32,
    /// Whether any attempt reached the point of success.
    pub success_point: bool,
}

/// What the engine needs from storage (the statistics and voicelogs
/// included, see [`StatsStore`] and [`VoicelogStore`]).
pub trait Store: StatsStore + VoicelogStore + Send + Sync + 'static {
    /// Creates the organisation if needed; returns its id.
    fn ensure_organisation(
        &self,
        name: &str,
        default_country: &str,
    ) -> impl Future<Output = StoreResult<Id>> + Send;

    /// Every organisation's name, in name order.
    fn organisation_names(&self) -> impl Future<Output = StoreResult<Vec<String>>> + Send;

    /// Creates or updates a trunk by name.
    fn upsert_trunk(
        &self,
        organisation: Id,
        trunk: &TrunkSettings,
    ) -> impl Future<Output = StoreResult<Id>> + Send;

    /// Creates or updates a script by name (its source is stored verbatim).
    fn upsert_script(
        &self,
        organisation: Id,
        name: &str,
        file_name: &str,
        source: &str,
    ) -> impl Future<Output = StoreResult<Id>> + Send;

    /// Creates the campaign if needed (settings of an existing one are kept).
    fn ensure_campaign(
        &self,
        organisation: Id,
        name: &str,
        script: Id,
        trunk: Id,
        settings: &CampaignSettings,
    ) -> impl Future<Output = StoreResult<Id>> + Send;

    fn campaign_by_name(&self, name: &str) -> impl Future<Output = StoreResult<Campaign>> + Send;

    /// Campaigns in this state.
    fn campaigns_in_state(
        &self,
        state: CampaignState,
    ) -> impl Future<Output = StoreResult<Vec<Campaign>>> + Send;

    /// Moves the campaign to `state`; pausing and resuming note the time.
    fn set_campaign_state(
        &self,
        campaign: Id,
        state: CampaignState,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Stores the organisation's time zone, workdays and holidays.
    fn set_organisation_calendar(
        &self,
        organisation: Id,
        calendar: &OrganisationCalendar,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Pauses or resumes forwarding for the campaign's script.
    fn set_forwarding_paused(
        &self,
        campaign: Id,
        paused: bool,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Pending records of the campaign due before `until`: the attempts a
    /// resumed campaign still has to start in its window.
    fn pending_due_before(
        &self,
        campaign: Id,
        until: EpochMs,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Adds imported records in one transaction. Records without a dialable
    /// number are stored done, with an undialled `invalid_number` attempt;
    /// those with `SERVICES_EMAIL=Y` are owed an e-mail
    /// ([`Store::pending_emails`]).
    fn insert_records(
        &self,
        campaign: Id,
        records: &[ImportedRecord],
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<InsertSummary>> + Send;

    /// After a crash: attempts left dialing become `interrupted` (or `success`
    /// when their point of success was already stored) and their records are
    /// rescheduled under `next_step`. Returns how many were recovered.
    fn recover_interrupted(
        &self,
        now: EpochMs,
        next_step: &(dyn Fn(&str, u32, u32) -> NextStep + Sync),
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Takes the next due record of a running campaign that `decide` lets
    /// dial and commits a new dialing attempt for it. Due records that
    /// `decide` defers get their new time, and those it finishes their final
    /// status, in the same transaction.
    fn claim_next(
        &self,
        campaign: Id,
        now: EpochMs,
        decide: &(dyn Fn(&Candidate<'_>) -> Decision + Sync),
    ) -> impl Future<Output = StoreResult<ClaimResult>> + Send;

    /// As [`Store::claim_next`], for up to `max` records in one transaction
    /// (at least one is asked for): the campaign loop at a high rate claims
    /// the starts of the next few pacing slots at once, so one commit, not
    /// one per call, sits in front of the INVITEs.
    fn claim_batch(
        &self,
        campaign: Id,
        now: EpochMs,
        max: usize,
        decide: &(dyn Fn(&Candidate<'_>) -> Decision + Sync),
    ) -> impl Future<Output = StoreResult<ClaimBatch>> + Send;

    /// Matches a call from `number` to the record of the organisation's
    /// latest outbound attempt to that number started at or after `since`,
    /// and commits an inbound attempt for it; `None` when nobody dialled it.
    fn claim_callback(
        &self,
        organisation: Id,
        number: &str,
        since: EpochMs,
        now: EpochMs,
    ) -> impl Future<Output = StoreResult<Option<CallbackClaim>>> + Send;

    /// Ends an inbound attempt. A callback that reached the point of success
    /// ends its record as `success` unless an outbound call is in flight.
    fn finish_callback(
        &self,
        callback: &CallbackClaim,
        outcome: &AttemptOutcome,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The point of success was reached on this attempt (committed before it
    /// is announced).
    fn mark_success_point(
        &self,
        attempt: Id,
        at: EpochMs,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Queues a text message for the attempt's record (an `sms_outbox` row
    /// and an `sms_queued` event in one transaction); returns its id.
    fn queue_sms(
        &self,
        sms: &SmsRequest,
        at: EpochMs,
    ) -> impl Future<Output = StoreResult<Id>> + Send;

    /// Text messages queued in the outbox and not yet taken: how many, and
    /// when the oldest of them was queued.
    fn sms_outbox_backlog(&self) -> impl Future<Output = StoreResult<OutboxBacklog>> + Send;

    /// Records of the campaign still owed their e-mail, oldest (lowest id)
    /// first, at most `limit`: those with `SERVICES_EMAIL=Y` whose import is
    /// published and that [`Store::queue_emails`] has not taken yet. A
    /// record of an import in progress is not pending until it is published.
    fn pending_emails(
        &self,
        campaign: Id,
        limit: usize,
    ) -> impl Future<Output = StoreResult<Vec<PendingEmail>>> + Send;

    /// Stores what became of pending records' e-mails, in one transaction:
    /// per item an `email_outbox` row (`queued` or `failed`), the record no
    /// longer pending, and an `email_queued` or `email_failed` event. An
    /// item whose record is not pending (already taken, by an earlier call
    /// or earlier in `items`), not of `campaign`, or not yet published is
    /// skipped, so calling again after a crash neither loses nor doubles a
    /// message. Returns the ids of the rows written, in the order of
    /// `items`, skipped items left out.
    fn queue_emails(
        &self,
        campaign: Id,
        items: &[(Id, EmailOutcome)],
        at: EpochMs,
    ) -> impl Future<Output = StoreResult<Vec<Id>>> + Send;

    /// E-mails queued in the outbox and not yet taken: how many, and when
    /// the oldest of them was queued.
    fn email_outbox_backlog(&self) -> impl Future<Output = StoreResult<OutboxBacklog>> + Send;

    /// Ends the attempt and moves its record on, with outbox events, in one
    /// transaction.
    fn finish_attempt(
        &self,
        claim: &Claim,
        outcome: &AttemptOutcome,
        next: NextStep,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// When the campaign's next pending record is due (`None`: none pending).
    fn next_due(&self, campaign: Id) -> impl Future<Output = StoreResult<Option<EpochMs>>> + Send;

    fn campaign_status(
        &self,
        campaign: Id,
    ) -> impl Future<Output = StoreResult<CampaignStatus>> + Send;

    /// Every record of the campaign with its state, in import order.
    fn record_finals(
        &self,
        campaign: Id,
    ) -> impl Future<Output = StoreResult<Vec<RecordFinal>>> + Send;

    /// One row per record of the campaign with an attempt started in
    /// `[from, to)`, its attempts of that period in order.
    fn result_rows(
        &self,
        campaign: Id,
        from: EpochMs,
        to: EpochMs,
    ) -> impl Future<Output = StoreResult<Vec<ResultRow>>> + Send;
}
