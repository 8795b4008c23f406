//! Statistics of a real campaign against the callee farm (SIP and RTP on
//! loopback): the 5-minute buckets kept while it ran must equal a scan of
//! its attempts, the broadcast must have delivered each bucket as
//! committed, and the day's result file must list exactly its attempts.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dialcast_engine::campaign::now_ms;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::loopback::start_engine;
use dialcast_engine::result_files::{write_script_day, ResultFileSettings};
use dialcast_engine::stats::{range, BucketUpdate, Counters};
use dialcast_engine::store::{CampaignState, SqliteStore, StatsStore, Store};
use dialcast_loadtest::farm::{numbers, Farm, FarmConfig, Mix};
use tokio_util::sync::CancellationToken;

mod common;
mod stats_scan;

use common::campaigns::{any_hour, payment_reminder, reminder_record as record, Trunk, SCRIPT};

/// RTP ports of this test (other farm tests use 41000–50999).
const PORT_BASE: u16 = 52000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_broadcast_and_result_file_match_the_attempts() {
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = PORT_BASE;
    farm_config.media.port_max = PORT_BASE + 999;
    let farm = Farm::start(farm_config).await.expect("farm");
    let mix: Mix = "human=2,busy=2,no_answer=1,invalid=1,rejected=1,hangup_halfway=1,voicemail=1"
        .parse()
        .expect("mix");
    let dialled = numbers(&mix, 14, 5);
    let mut records: Vec<ImportedRecord> = dialled
        .iter()
        .enumerate()
        .map(|(i, (n, _))| record(i, Some(n)))
        .collect();
    records.push(record(100, None));
    records.push(record(101, None));

    let dir = std::env::temp_dir().join(format!("dialcast-stats-farm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let db_path = dir.join("d.db");
    let store = Arc::new(SqliteStore::open(&db_path).await.expect("store"));
    let campaign = payment_reminder(
        &store,
        "Test",
        None,
        Trunk {
            addr: farm.local_addr(),
            max_cps: 20,
            max_channels: 20,
        },
        any_hour(2, 0, 3_000, true),
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
    let (engine, sip) = start_engine(Arc::clone(&store), (PORT_BASE + 1000, PORT_BASE + 1999))
        .await
        .expect("engine");
    let mut updates = engine.subscribe_stats();
    let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
    tokio::time::timeout(
        Duration::from_secs(120),
        engine.run_campaign(running, CancellationToken::new()),
    )
    .await
    .expect("the campaign finishes within two minutes")
    .expect("the campaign runs");
    sip.shutdown();
    farm.shutdown().await;

    // The buckets kept as calls ended equal a scan of the attempts.
    let kept: BTreeMap<i64, Counters> = store
        .stats_buckets(campaign, 0, i64::MAX)
        .await
        .expect("buckets")
        .into_iter()
        .collect();
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", db_path.display()))
        .await
        .expect("scan connection");
    let scan = stats_scan::scanned(&db, campaign).await;
    assert_eq!(kept, scan);
    let totals = store
        .stats_totals(campaign, 0, i64::MAX)
        .await
        .expect("totals");
    let dialled_attempts: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM attempts a JOIN records r ON r.id = a.record_id \
         WHERE r.campaign_id = ? AND a.dialled = 1",
    )
    .bind(campaign)
    .fetch_one(&db)
    .await
    .expect("count");
    assert_eq!(totals.dialled, dialled_attempts as u64);
    assert_eq!(
        totals.records_done,
        records.len() as u64,
        "every record is done"
    );
    // What the callees' behaviours imply: a not-reached status is tried
    // twice (the campaign's attempts), a final one once; voicemail leaves no
    // message yet.
    let mut expected = Counters::default();
    for (_, behaviour) in &dialled {
        let status = behaviour.expected_status();
        let tries = if dialcast_engine::campaign::retry::is_final_status(status) {
            1
        } else {
            2
        };
        expected.merge(&Counters::attempts_ended(status, false, true, tries));
    }
    expected.merge(&Counters::attempts_ended("invalid_number", false, false, 2));
    assert_eq!(
        (totals.green, totals.yellow, totals.red, totals.other),
        (
            expected.green,
            expected.yellow,
            expected.red,
            expected.other
        ),
        "{totals:?}"
    );
    assert_eq!(totals.statuses, expected.statuses);
    assert_eq!(
        totals.green + totals.yellow + totals.red + totals.other,
        totals.attempts
    );

    // Each update carries its bucket as committed: the newest update of a
    // bucket (the most attempts) is the bucket as the store has it now.
    let mut newest: BTreeMap<i64, BucketUpdate> = BTreeMap::new();
    let mut received = 0;
    while let Ok(update) = updates.try_recv() {
        received += 1;
        assert_eq!(
            (update.campaign.as_str(), update.script.as_str()),
            (SCRIPT, SCRIPT)
        );
        let slot = newest
            .entry(update.bucket_start)
            .or_insert_with(|| update.clone());
        if update.counters.attempts > slot.counters.attempts {
            *slot = update;
        }
    }
    assert_eq!(received as u64, totals.dialled, "one update per ended call");
    for (bucket, update) in &newest {
        assert_eq!(Some(&update.counters), kept.get(bucket), "bucket {bucket}");
    }

    // The day's result file lists exactly the attempts started that day.
    let settings = ResultFileSettings {
        dir: dir.join("results"),
        outbox_dir: Some(dir.join("outbox")),
        xml: false,
        xml_scripts: Vec::new(),
        time_zone: chrono_tz::Europe::Amsterdam,
    };
    let now = chrono::Utc::now();
    let day = range::today(now, settings.time_zone);
    let day_range = range::day_range(day, settings.time_zone).expect("range");
    let script = store.script_of_campaign(campaign).await.expect("script");
    let files = write_script_day(&*store, &settings, &script, day, now.timestamp_millis())
        .await
        .expect("result file");
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0].path).expect("file");
    let copy = std::fs::read_to_string(files[0].outbox_path.as_deref().expect("outbox"))
        .expect("outbox copy");
    assert_eq!(text, copy);
    assert_eq!(files[0].size, text.len() as u64);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    let mut in_file: BTreeMap<(String, usize), String> = BTreeMap::new();
    for row in reader.records() {
        let row = row.expect("row");
        let id = row[0].to_string();
        for (i, name) in header.iter().enumerate() {
            let Some(n) = name
                .strip_prefix("CALLRESULTS_CALL_")
                .and_then(|rest| rest.strip_suffix("_STATUS"))
            else {
                continue;
            };
            if !row[i].is_empty() {
                let n: usize = n.parse().expect("call number");
                in_file.insert((id.clone(), n), row[i].to_string());
            }
        }
    }
    let attempts: Vec<(String, String)> = sqlx::query_as(
        "SELECT r.record_id, a.status FROM attempts a \
         JOIN records r ON r.id = a.record_id \
         WHERE r.campaign_id = ? AND a.started_at >= ? AND a.started_at < ? \
         ORDER BY r.record_id, a.attempt_no",
    )
    .bind(campaign)
    .bind(day_range.from)
    .bind(day_range.to)
    .fetch_all(&db)
    .await
    .expect("attempts");
    // The file numbers a record's calls of the day from 1, in order.
    let mut expected: BTreeMap<(String, usize), String> = BTreeMap::new();
    for (id, status) in attempts {
        let n = expected.keys().filter(|(other, _)| *other == id).count() + 1;
        expected.insert((id, n), status);
    }
    assert_eq!(in_file, expected);
    assert_eq!(files[0].rows as usize, {
        let mut ids: Vec<&String> = expected.keys().map(|(id, _)| id).collect();
        ids.dedup();
        ids.len()
    });
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
