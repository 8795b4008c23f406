//! Campaigns for the integration tests: the payment reminder on a trunk
//! (the callee farm or SIPp) with settings that call at any hour, its
//! records, and claims under any-hour rules for the store tests (the
//! schedule's own rules are tested in `campaign::schedule`).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use dialcast_engine::campaign::schedule::{Candidate, DialRules};
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::service::{prepare_campaign, CampaignSetup};
use dialcast_engine::store::{
    CampaignSettings, Claim, ClaimResult, OrganisationCalendar, ScheduleSettings, SqliteStore,
    Store, TrunkSettings,
};

/// The script every campaign test runs.
pub const SCRIPT: &str = "payment_reminder";

/// A payment-reminder record `R<i>` in English with an amount, a due date
/// and, when given, its number.
pub fn reminder_record(i: usize, number: Option<&str>) -> ImportedRecord {
    let mut fields = BTreeMap::new();
    for (k, v) in [
        ("IDENTIFICATION_RECORD_ID", format!("R{i}")),
        ("PERSON_LANGUAGE", "en".to_string()),
        ("INVOICE_AMOUNT_OPEN", format!("{}.50", 10 + i)),
        ("INVOICE_CURRENCY", "EUR".to_string()),
        ("INVOICE_DUE_DATE", "2026-12-24".to_string()),
        ("INVOICE_NUMBER", format!("INV{i}")),
    ] {
        fields.insert(k.to_string(), v);
    }
    if let Some(n) = number {
        fields.insert("CONTACT_PHONE_1".to_string(), n.to_string());
    }
    ImportedRecord {
        line: i as u64 + 2,
        record_id: format!("R{i}"),
        client_reference: Some(format!("C{i}")),
        script: SCRIPT.to_string(),
        fields,
        phones: number.map(str::to_string).into_iter().collect(),
        rejected_phones: Vec::new(),
        invalid_number: number.is_none(),
    }
}

/// The record with one more field.
pub fn with_field(mut record: ImportedRecord, key: &str, value: &str) -> ImportedRecord {
    record.fields.insert(key.to_string(), value.to_string());
    record
}

/// Campaign settings that call at any hour.
pub fn any_hour(
    max_attempts: u32,
    retry_delay_ms: i64,
    ring_timeout_ms: i64,
    amd: bool,
) -> CampaignSettings {
    CampaignSettings {
        max_attempts,
        retry_delay_ms,
        ring_timeout_ms,
        max_call_ms: 60_000,
        amd,
        schedule: ScheduleSettings::around_the_clock(),
    }
}

/// What a test campaign dials through.
pub struct Trunk {
    pub addr: SocketAddr,
    pub max_cps: u32,
    pub max_channels: u32,
}

/// Stores the payment-reminder campaign of `organisation` (every day a
/// workday, in Amsterdam unless `calendar` says otherwise) on `trunk`;
/// returns its id. It is idle: tests start it.
pub async fn payment_reminder(
    store: &SqliteStore,
    organisation: &str,
    calendar: Option<OrganisationCalendar>,
    trunk: Trunk,
    settings: CampaignSettings,
) -> i64 {
    let source = std::fs::read_to_string(
        dialcast_engine::demo::examples_dir().join(format!("{SCRIPT}.toml")),
    )
    .expect("script");
    prepare_campaign(
        store,
        &CampaignSetup {
            organisation,
            default_country: "NL",
            calendar: &calendar
                .unwrap_or_else(|| OrganisationCalendar::every_day("Europe/Amsterdam")),
            trunk: &TrunkSettings {
                name: "trunk".into(),
                uri: format!("sip:{}", trunk.addr),
                transport: "udp".into(),
                max_cps: trunk.max_cps,
                max_channels: trunk.max_channels,
                caller_id: Some("+31201234567".into()),
            },
            settings: &settings,
            script_name: SCRIPT,
            script_file: "payment_reminder.toml",
            script_source: &source,
            campaign: SCRIPT,
        },
    )
    .await
    .expect("campaign")
}

/// The next claim of a running campaign under rules that allow a call at
/// any hour; panics when the campaign is not running.
pub async fn claim_any_hour(store: &SqliteStore, campaign: i64, now: i64) -> Option<Claim> {
    let rules = DialRules::new(
        &OrganisationCalendar::every_day("UTC"),
        &ScheduleSettings::around_the_clock(),
    )
    .expect("rules");
    let decide = |candidate: &Candidate<'_>| rules.decide(candidate, now);
    match store
        .claim_next(campaign, now, &decide)
        .await
        .expect("claim")
    {
        ClaimResult::Claimed(claim) => Some(claim),
        ClaimResult::NothingDue => None,
        ClaimResult::NotRunning => panic!("campaign {campaign} is not running"),
    }
}

/// A bare campaign `c` of organisation `Org` with a stand-in script and
/// trunk, for tests of the store alone; returns (organisation, campaign).
/// It is idle.
pub async fn bare_campaign(store: &SqliteStore, settings: &CampaignSettings) -> (i64, i64) {
    let org = store.ensure_organisation("Org", "NL").await.expect("org");
    let trunk = store
        .upsert_trunk(
            org,
            &TrunkSettings {
                name: "t".into(),
                uri: "sip:127.0.0.1:5090".into(),
                transport: "udp".into(),
                max_cps: 5,
                max_channels: 5,
                caller_id: None,
            },
        )
        .await
        .expect("trunk");
    let script = store
        .upsert_script(org, "s", "s.toml", "name = \"s\"")
        .await
        .expect("script");
    let campaign = store
        .ensure_campaign(org, "c", script, trunk, settings)
        .await
        .expect("campaign");
    (org, campaign)
}

/// [`bare_campaign`] with `max_attempts` and `retry_delay_ms`, running.
pub async fn running_campaign(store: &SqliteStore, max_attempts: u32, retry_delay_ms: i64) -> i64 {
    let settings = CampaignSettings {
        max_attempts,
        retry_delay_ms,
        ..CampaignSettings::default()
    };
    let (_, campaign) = bare_campaign(store, &settings).await;
    store
        .set_campaign_state(campaign, dialcast_engine::store::CampaignState::Running, 0)
        .await
        .expect("running");
    campaign
}
