//! Operators' controls against the callee farm over real SIP and RTP on
//! loopback: a campaign paused mid-run starts no call once the pause is
//! committed and shows as paused; resumed inside the same call window, it
//! speeds up to finish before the window closes; afterwards every record has
//! its final status and the result file agrees with the attempts table.

mod common;

use common::campaigns::{any_hour, payment_reminder, reminder_record, with_field, Trunk, SCRIPT};

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use chrono::{Timelike as _, Utc};
use dialcast_engine::campaign::catch_up::{catch_up_cps, Limits};
use dialcast_engine::campaign::now_ms;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::loopback::start_engine;
use dialcast_engine::service::write_result_file;
use dialcast_engine::store::{
    CampaignSettings, CampaignState, OrganisationCalendar, ScheduleSettings, SqliteStore,
    StatsStore as _, Store,
};
use dialcast_loadtest::farm::{numbers, Farm, FarmConfig, Mix};
use sqlx::Row as _;
use tokio_util::sync::CancellationToken;

const RECORDS: usize = 80;
/// The campaign's normal rate; the trunk allows far more.
const BASE_CPS: u32 = 1;
const TRUNK_CPS: u32 = 20;
const CHANNELS: u32 = 60;

/// A fixed-offset zone in which it is now between 06:00 and 18:00, so the
/// test's windows never cross midnight, whenever it runs.
fn daytime_zone() -> (String, chrono::FixedOffset) {
    let hour = i32::try_from(Utc::now().hour()).unwrap_or(0);
    let offset = (12 - hour).clamp(-12, 14);
    // Etc/GMT-5 is five hours ahead of UTC (POSIX signs are inverted).
    let name = match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    let fixed = chrono::FixedOffset::east_opt(offset * 3600).expect("offset");
    (name, fixed)
}

async fn attempt_starts(db: &sqlx::SqlitePool) -> Vec<i64> {
    sqlx::query_scalar("SELECT started_at FROM attempts WHERE dialled = 1 ORDER BY started_at")
        .fetch_all(db)
        .await
        .expect("attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_campaign_stops_at_once_and_catches_up_after_the_resume() {
    let dir = std::env::temp_dir().join(format!("dialcast-control-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("dir");
    let mix: Mix = "busy=1,human=1".parse().expect("mix");
    let dialled = numbers(&mix, RECORDS, 5);
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = 51000;
    farm_config.media.port_max = 51999;
    let farm = Farm::start(farm_config).await.expect("farm");

    // Window A ends 45 s from now; window B runs from there to midnight.
    let (zone, offset) = daytime_zone();
    let window_end = Utc::now() + chrono::Duration::seconds(45);
    let end_local = window_end.with_timezone(&offset).format("%H:%M:%S");
    let mut schedule = ScheduleSettings::around_the_clock();
    schedule.windows =
        std::array::from_fn(|_| vec![format!("00:00-{end_local}"), format!("{end_local}-24:00")]);
    schedule.cps = Some(BASE_CPS);
    let database = dir.join("dialcast.db");
    let store = Arc::new(SqliteStore::open(&database).await.expect("store"));
    let reader = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display()))
        .await
        .expect("reader");
    let settings = CampaignSettings {
        schedule,
        ..any_hour(1, 0, 9_000, false)
    };
    let campaign = payment_reminder(
        &store,
        "Control",
        Some(OrganisationCalendar::every_day(&zone)),
        Trunk {
            addr: farm.local_addr(),
            max_cps: TRUNK_CPS,
            max_channels: CHANNELS,
        },
        settings,
    )
    .await;
    let records: Vec<ImportedRecord> = dialled
        .iter()
        .enumerate()
        .map(|(i, (n, _))| with_field(reminder_record(i, Some(n)), "PERSON_TIME_ZONE", &zone))
        .collect();
    store
        .insert_records(campaign, &records, now_ms())
        .await
        .expect("records");
    store
        .set_campaign_state(campaign, CampaignState::Running, now_ms())
        .await
        .expect("running");
    let (engine, sip) = start_engine(Arc::clone(&store), (52000, 52999))
        .await
        .expect("engine");

    // Run at the normal rate for a while, then pause.
    let first = {
        let engine = Arc::clone(&engine);
        let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
        tokio::spawn(async move { engine.run_campaign(running, CancellationToken::new()).await })
    };
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    store
        .set_campaign_state(campaign, CampaignState::Paused, now_ms())
        .await
        .expect("pause");
    let paused_at = now_ms();
    let before_pause = attempt_starts(&reader).await;
    assert!(
        (3..=6).contains(&before_pause.len()),
        "about one start a second before the pause: {}",
        before_pause.len()
    );
    tokio::time::timeout(Duration::from_secs(60), first)
        .await
        .expect("calls in progress finish")
        .expect("task")
        .expect("run");
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let during_pause = attempt_starts(&reader).await;
    assert_eq!(
        during_pause, before_pause,
        "no call starts once the pause is committed"
    );
    assert!(during_pause.iter().all(|t| *t <= paused_at));
    let status = store.campaign_status(campaign).await.expect("status");
    assert_eq!(status.state, "paused");

    // Resume inside window A: the rate needed to finish in it.
    store
        .set_campaign_state(campaign, CampaignState::Running, now_ms())
        .await
        .expect("resume");
    let resumed_at = now_ms();
    let remaining = (RECORDS - during_pause.len()) as u64;
    let time_left = Duration::from_millis((window_end.timestamp_millis() - resumed_at) as u64);
    let expected_cps = catch_up_cps(
        remaining,
        time_left,
        Limits {
            base_cps: f64::from(BASE_CPS),
            max_cps: f64::from(TRUNK_CPS),
            channels: CHANNELS,
            mean_call: engine
                .counters
                .mean_call()
                .unwrap_or(Duration::from_secs(30)),
        },
    );
    assert!(
        expected_cps > 1.5 * f64::from(BASE_CPS),
        "the test must need a catch-up: {expected_cps}"
    );
    let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
    let second = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move { engine.run_campaign(running, CancellationToken::new()).await })
    };
    tokio::time::sleep(Duration::from_secs(8)).await;
    let after_resume = attempt_starts(&reader).await;
    let measured: Vec<i64> = after_resume
        .iter()
        .copied()
        .filter(|t| *t >= resumed_at && *t < resumed_at + 8_000)
        .collect();
    let rate = measured.len() as f64 / 8.0;
    eprintln!(
        "resume: {remaining} left, {:.1} s of window A left; {rate:.2} calls/s measured, \
         {expected_cps:.2} expected, {BASE_CPS} normal",
        time_left.as_secs_f64()
    );
    assert!(
        rate > 1.5 * f64::from(BASE_CPS) && rate > 0.7 * expected_cps,
        "after the resume {rate:.2} calls/s, expected about {expected_cps:.2} (normal {BASE_CPS})"
    );
    assert!(
        rate < 1.3 * expected_cps + 0.5,
        "not faster than needed: {rate:.2} vs {expected_cps:.2}"
    );

    tokio::time::timeout(Duration::from_secs(120), second)
        .await
        .expect("the campaign finishes")
        .expect("task")
        .expect("run");
    let finished = store.campaign_by_name(SCRIPT).await.expect("campaign");
    assert_eq!(finished.state, CampaignState::Finished);

    // Every record ended as its callee behaved, dialled once.
    let finals = store.record_finals(campaign).await.expect("finals");
    for (i, (_, behaviour)) in dialled.iter().enumerate() {
        let got = finals
            .iter()
            .find(|f| f.record_id == format!("R{i}"))
            .expect("stored");
        assert_eq!(
            got.final_status.as_deref(),
            Some(behaviour.expected_status()),
            "R{i} ({behaviour})"
        );
        assert_eq!(got.attempts, 1, "R{i} dialled once");
    }
    assert_eq!(farm.stats().total().calls, RECORDS as u64);

    // The result file against the attempts table.
    let results = dir.join("results");
    let tz: chrono_tz::Tz = zone.parse().expect("zone");
    let day = Utc::now().with_timezone(&tz).date_naive();
    let path = write_result_file(&*store, campaign, SCRIPT, day, tz, &results)
        .await
        .expect("result file");
    let mut file = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_path(&path)
        .expect("csv");
    let header = file.headers().expect("header").clone();
    let column = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (id_col, status_col) = (
        column("IDENTIFICATION_RECORD_ID"),
        column("CALLRESULTS_CALL_1_STATUS"),
    );
    let mut from_file = BTreeMap::new();
    for row in file.records() {
        let row = row.expect("row");
        from_file.insert(row[id_col].to_string(), row[status_col].to_string());
    }
    let from_table: BTreeMap<String, String> = sqlx::query(
        "SELECT r.record_id, a.status FROM attempts a JOIN records r ON r.id = a.record_id",
    )
    .fetch_all(&reader)
    .await
    .expect("attempts")
    .iter()
    .map(|row| (row.get::<String, _>(0), row.get::<String, _>(1)))
    .collect();
    assert_eq!(from_file, from_table);
    assert_eq!(from_table.len(), RECORDS);

    // The 5-minute buckets, kept as calls ended, against a scan of the
    // attempts table by their end (a call started before a bucket boundary
    // and ended after it counts in the later bucket).
    let buckets = store
        .stats_buckets(campaign, 0, i64::MAX)
        .await
        .expect("buckets");
    let counted: BTreeMap<(i64, String), u64> = buckets
        .iter()
        .flat_map(|(start, counters)| {
            counters
                .statuses
                .iter()
                .map(move |(status, n)| ((*start, status.clone()), *n))
        })
        .collect();
    let scanned: BTreeMap<(i64, String), u64> = sqlx::query(
        "SELECT (ended_at / 300000) * 300000 AS bucket, status, COUNT(*) AS n \
         FROM attempts GROUP BY bucket, status",
    )
    .fetch_all(&reader)
    .await
    .expect("scan")
    .iter()
    .map(|row| {
        (
            (row.get::<i64, _>(0), row.get::<String, _>(1)),
            row.get::<i64, _>(2) as u64,
        )
    })
    .collect();
    assert_eq!(counted, scanned);
    let attempts: u64 = buckets.iter().map(|(_, c)| c.attempts).sum();
    assert_eq!(attempts, RECORDS as u64);
    sip.shutdown();
    farm.shutdown().await;
    std::fs::remove_dir_all(&dir).ok();
}

/// A zone where it is now the middle of the night (01:00–05:00), so no call
/// window is open there.
fn night_zone() -> String {
    let hour = i32::try_from(Utc::now().hour()).unwrap_or(0);
    let offset = (3 - hour).rem_euclid(24);
    let offset = if offset > 14 { offset - 24 } else { offset };
    match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_waiting_for_their_callees_hours_do_not_hold_up_the_others() {
    let mix: Mix = "human=1".parse().expect("mix");
    let dialled = numbers(&mix, 402, 8);
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = 51000;
    farm_config.media.port_max = 51999;
    let farm = Farm::start(farm_config).await.expect("farm");
    let store = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
    let mut schedule = ScheduleSettings::around_the_clock();
    schedule.windows = std::array::from_fn(|_| vec!["08:00-21:00".to_string()]);
    let settings = CampaignSettings {
        schedule,
        ..any_hour(1, 0, 9_000, false)
    };
    let (day, _) = daytime_zone();
    let campaign = payment_reminder(
        &store,
        "Control",
        Some(OrganisationCalendar::every_day(&day)),
        Trunk {
            addr: farm.local_addr(),
            max_cps: TRUNK_CPS,
            max_channels: CHANNELS,
        },
        settings,
    )
    .await;
    // The first and the last record can be called now; the 400 between
    // them live where it is night.
    let night = night_zone();
    let records: Vec<ImportedRecord> = dialled
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            let zone = if i == 0 || i == 401 { &day } else { &night };
            with_field(reminder_record(i, Some(n)), "PERSON_TIME_ZONE", zone)
        })
        .collect();
    store
        .insert_records(campaign, &records, now_ms())
        .await
        .expect("records");
    store
        .set_campaign_state(campaign, CampaignState::Running, now_ms())
        .await
        .expect("running");
    let (engine, sip) = start_engine(Arc::clone(&store), (52000, 52999))
        .await
        .expect("engine");
    let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
    let started = now_ms();
    let cancel = CancellationToken::new();
    let task = {
        let engine = Arc::clone(&engine);
        let cancel = cancel.clone();
        tokio::spawn(async move { engine.run_campaign(running, cancel).await })
    };
    // The last record is dialled while the first call is still going (a
    // person listens for about 15 s), not after 400 deferrals, 32 a
    // second.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let last_started = loop {
        let rows = store
            .result_rows(campaign, 0, i64::MAX)
            .await
            .expect("rows");
        let finals = store.record_finals(campaign).await.expect("finals");
        if finals
            .iter()
            .any(|f| f.record_id == "R401" && f.state != "pending")
        {
            break now_ms();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "R401 still waits: {} rows",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        last_started - started < 5_000,
        "R401 started {} ms after the campaign",
        last_started - started
    );
    let waiting = store.campaign_status(campaign).await.expect("status");
    assert_eq!(waiting.pending, 400, "the night records wait: {waiting:?}");
    assert!(store.next_due(campaign).await.expect("due") > Some(now_ms()));
    cancel.cancel();
    task.await.expect("task").expect("run");
    sip.shutdown();
    farm.shutdown().await;
}
