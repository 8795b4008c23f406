//! A campaign end to end against the callee farm over real SIP and RTP on
//! loopback: every record must end in the status its callee's behaviour
//! implies, and the point of success must be reached exactly by those who
//! listened past it.

mod common;

use common::campaigns::{any_hour, payment_reminder, Trunk, SCRIPT};

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dialcast_engine::campaign::now_ms;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::loopback::start_engine;
use dialcast_engine::store::{CampaignState, RecordFinal, SqliteStore, Store};
use dialcast_loadtest::farm::{numbers, Behaviour, Farm, FarmConfig, FarmStats, Mix};
use tokio_util::sync::CancellationToken;

fn record(i: usize, number: &str) -> ImportedRecord {
    let mut fields = BTreeMap::new();
    for (k, v) in [
        ("IDENTIFICATION_RECORD_ID", format!("R{i}")),
        (
            "PERSON_LANGUAGE",
            if i.is_multiple_of(3) { "nl" } else { "en" }.to_string(),
        ),
        ("CONTACT_PHONE_1", number.to_string()),
        (
            "INVOICE_AMOUNT_OPEN",
            format!("{}.{:02}", 10 + i * 37 % 900, i % 100),
        ),
        ("INVOICE_CURRENCY", "EUR".to_string()),
        ("INVOICE_DUE_DATE", "2026-12-24".to_string()),
        ("INVOICE_NUMBER", format!("INV{i}")),
    ] {
        fields.insert(k.to_string(), v);
    }
    ImportedRecord {
        line: i as u64 + 2,
        record_id: format!("R{i}"),
        client_reference: None,
        script: SCRIPT.to_string(),
        fields,
        phones: vec![number.to_string()],
        rejected_phones: Vec::new(),
        invalid_number: false,
    }
}

/// Whether a callee of this behaviour hears the message past its point of
/// success.
fn listens_past_success(b: Behaviour) -> bool {
    matches!(
        b,
        Behaviour::Human | Behaviour::SlowAnswer | Behaviour::PressesKeys
    )
}

/// What a campaign run against a fresh farm left behind.
struct Ran {
    finals: Vec<RecordFinal>,
    /// Keys received per record (all its calls).
    dtmf: BTreeMap<String, String>,
    farm: FarmStats,
    peak_in_flight: u64,
    elapsed: Duration,
    finished: bool,
}

/// Runs one campaign of `dialled` numbers against a fresh farm.
/// Each run gets its own RTP port ranges (tests in this file run at once).
static PORT_BLOCK: AtomicU16 = AtomicU16::new(0);

async fn run(dialled: &[(String, Behaviour)], max_cps: u32, max_channels: u32) -> Ran {
    let base = 41000 + 2000 * PORT_BLOCK.fetch_add(1, Ordering::Relaxed);
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = base;
    farm_config.media.port_max = base + 999;
    let farm = Farm::start(farm_config).await.expect("farm");
    let records: Vec<ImportedRecord> = dialled
        .iter()
        .enumerate()
        .map(|(i, (n, _))| record(i, n))
        .collect();

    let store = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
    let campaign = payment_reminder(
        &store,
        "Test",
        None,
        Trunk {
            addr: farm.local_addr(),
            max_cps,
            max_channels,
        },
        any_hour(1, 0, 9_000, true),
    )
    .await;
    store
        .insert_records(campaign, &records, now_ms())
        .await
        .expect("records");
    store
        .set_campaign_state(campaign, CampaignState::Running, now_ms())
        .await
        .expect("running");
    let (engine, sip) = start_engine(Arc::clone(&store), (base + 1000, base + 1999))
        .await
        .expect("engine");
    let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
    let started = std::time::Instant::now();
    tokio::time::timeout(
        Duration::from_secs(120),
        engine.run_campaign(running, CancellationToken::new()),
    )
    .await
    .expect("the campaign finishes within two minutes")
    .expect("the campaign runs");
    let elapsed = started.elapsed();
    let finished = store
        .campaign_by_name(SCRIPT)
        .await
        .expect("campaign")
        .state
        == CampaignState::Finished;
    let finals = store.record_finals(campaign).await.expect("finals");
    let dtmf = store
        .result_rows(campaign, 0, i64::MAX)
        .await
        .expect("rows")
        .into_iter()
        .map(|row| {
            let keys = row.calls.iter().map(|c| c.dtmf.as_str()).collect();
            (row.record_id, keys)
        })
        .collect();
    sip.shutdown();
    Ran {
        finals,
        dtmf,
        farm: farm.shutdown().await,
        peak_in_flight: engine.counters.peak_in_flight.load(Ordering::Relaxed),
        elapsed,
        finished,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_ends_as_its_callee_behaves() {
    // Every behaviour, twice.
    let mix: Mix = Behaviour::ALL
        .iter()
        .map(|b| format!("{b}=1"))
        .collect::<Vec<_>>()
        .join(",")
        .parse()
        .expect("mix");
    let dialled = numbers(&mix, Behaviour::ALL.len() * 2, 11);
    let ran = run(&dialled, 20, 30).await;
    let mut wrong = Vec::new();
    for (i, (number, behaviour)) in dialled.iter().enumerate() {
        let got = ran
            .finals
            .iter()
            .find(|f| f.record_id == format!("R{i}"))
            .expect("stored");
        let expected = behaviour.expected_status();
        let keys = ran.dtmf.get(&got.record_id).map_or("", String::as_str);
        // The farm's keys ("1") arrive as RFC 4733 events while the message plays.
        let keys_expected = if *behaviour == Behaviour::PressesKeys {
            "1"
        } else {
            ""
        };
        if keys != keys_expected {
            wrong.push(format!(
                "{number} ({behaviour}): keys {keys:?}, expected {keys_expected:?}"
            ));
        }
        if got.final_status.as_deref() != Some(expected)
            || got.success_point != listens_past_success(*behaviour)
        {
            wrong.push(format!(
                "{number} ({behaviour}): status {:?}, success point {} (expected {expected}, {})",
                got.final_status,
                got.success_point,
                listens_past_success(*behaviour)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "records that ended wrongly:\n{}",
        wrong.join("\n")
    );
    assert!(ran.finished, "the campaign is marked finished");
    assert_eq!(
        ran.farm.total().calls,
        dialled.len() as u64,
        "one INVITE per record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_and_call_rate_are_never_exceeded() {
    // Short calls (the callee hangs up after 1.5 s), more than the channels.
    let mix: Mix = "hangup_halfway=1".parse().expect("mix");
    let dialled = numbers(&mix, 8, 3);
    let (max_cps, max_channels) = (4, 2);
    let ran = run(&dialled, max_cps, max_channels).await;
    assert!(ran.finished);
    assert_eq!(ran.farm.total().calls, 8);
    assert!(
        ran.farm.peak_active <= max_channels as usize,
        "the farm saw {} calls at once",
        ran.farm.peak_active
    );
    assert_eq!(
        ran.peak_in_flight,
        u64::from(max_channels),
        "all channels were used"
    );
    // Two channels, calls of at least 1.5 s: four rounds at the least.
    assert!(
        ran.elapsed >= Duration::from_millis(4 * 1500),
        "{:?}",
        ran.elapsed
    );
    for f in &ran.finals {
        assert_eq!(
            f.final_status.as_deref(),
            Some("answered_no_success"),
            "{f:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_campaign_claims_ahead_and_still_dials_each_record_once() {
    // At 200 calls/s the claimer holds four records ahead of the start
    // slots (`claim_ahead::batch_size`), claimed in batches; the channels
    // bound it as well.
    let mix: Mix = "hangup_halfway=1".parse().expect("mix");
    let dialled = numbers(&mix, 60, 5);
    let (max_cps, max_channels) = (200, 20);
    let ran = run(&dialled, max_cps, max_channels).await;
    assert!(ran.finished, "the campaign is marked finished");
    assert_eq!(ran.farm.total().calls, 60, "one INVITE per record");
    assert!(
        ran.farm.peak_active <= max_channels as usize,
        "the farm saw {} calls at once",
        ran.farm.peak_active
    );
    assert_eq!(ran.finals.len(), 60);
    for f in &ran.finals {
        assert_eq!(
            f.final_status.as_deref(),
            Some("answered_no_success"),
            "{f:?}"
        );
    }
}
