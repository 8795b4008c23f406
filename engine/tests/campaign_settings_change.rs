//! A settings change while a campaign runs, against the callee farm over
//! real SIP on loopback: every callee is busy and the campaign starts with
//! one attempt per record; raised to two a moment after the start, the
//! records first dialled before the change end after one attempt and those
//! first dialled once the running campaign has re-read its row get a
//! second one.

mod common;

use common::campaigns::{any_hour, payment_reminder, reminder_record, Trunk, SCRIPT};

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dialcast_engine::campaign::now_ms;
use dialcast_engine::campaign::settings_change::SettingsChange;
use dialcast_engine::loopback::start_engine;
use dialcast_engine::store::{CampaignSettings, CampaignState, SqliteStore, Store as _};
use dialcast_loadtest::farm::{numbers, Farm, FarmConfig, Mix};
use tokio_util::sync::CancellationToken;

const RECORDS: usize = 8;
/// How long after the change every new call must use it: the campaign's
/// state check (2 s) and a margin for a loaded machine.
const PICKED_UP_MS: i64 = 3_500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_started_after_a_change_use_the_new_attempts_limit() {
    let dir = std::env::temp_dir().join(format!("dialcast-settings-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).expect("dir");
    let mix: Mix = "busy=1".parse().expect("mix");
    let dialled = numbers(&mix, RECORDS, 3);
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = 57000;
    farm_config.media.port_max = 57999;
    let farm = Farm::start(farm_config).await.expect("farm");

    let database = dir.join("dialcast.db");
    let store = Arc::new(SqliteStore::open(&database).await.expect("store"));
    let reader = sqlx::SqlitePool::connect(&format!("sqlite://{}", database.display()))
        .await
        .expect("reader");
    let mut settings: CampaignSettings = any_hour(1, 0, 9_000, false);
    // One call a second, so that starts spread over the change.
    settings.schedule.cps = Some(1);
    let campaign = payment_reminder(
        &store,
        "Settings",
        None,
        Trunk {
            addr: farm.local_addr(),
            max_cps: 20,
            max_channels: 20,
        },
        settings,
    )
    .await;
    let records: Vec<_> = dialled
        .iter()
        .enumerate()
        .map(|(i, (n, _))| reminder_record(i, Some(n)))
        .collect();
    store
        .insert_records(campaign, &records, now_ms())
        .await
        .expect("records");
    store
        .set_campaign_state(campaign, CampaignState::Running, now_ms())
        .await
        .expect("running");
    let (engine, _sip) = start_engine(Arc::clone(&store), (58000, 58999))
        .await
        .expect("engine");
    let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
    let run = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move { engine.run_campaign(running, CancellationToken::new()).await })
    };

    tokio::time::sleep(Duration::from_millis(500)).await;
    let org = store
        .organisation_by_name("Settings")
        .await
        .expect("read")
        .expect("organisation");
    let change = SettingsChange {
        max_attempts: Some(2),
        ..SettingsChange::default()
    };
    change.check().expect("in range");
    let changed_at = now_ms();
    assert!(store
        .change_campaign_settings(org.id, campaign, &change, changed_at)
        .await
        .expect("change"));

    tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("the campaign finishes")
        .expect("task")
        .expect("run");

    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT r.record_id, COUNT(*), MIN(a.started_at) FROM attempts a \
         JOIN records r ON r.id = a.record_id WHERE a.dialled = 1 \
         GROUP BY r.id ORDER BY MIN(a.started_at)",
    )
    .fetch_all(&reader)
    .await
    .expect("attempts");
    assert_eq!(rows.len(), RECORDS, "{rows:?}");
    let before: Vec<_> = rows.iter().filter(|r| r.2 < changed_at).collect();
    let after: Vec<_> = rows
        .iter()
        .filter(|r| r.2 >= changed_at + PICKED_UP_MS)
        .collect();
    assert!(!before.is_empty() && after.len() >= 2, "{rows:?}");
    for (record, attempts, _) in before {
        assert_eq!(*attempts, 1, "{record} was dialled before the change");
    }
    for (record, attempts, _) in after {
        assert_eq!(*attempts, 2, "{record} was dialled after the change");
    }
    let stored = store.campaign_by_name(SCRIPT).await.expect("campaign");
    assert_eq!(stored.settings.max_attempts, 2);
    std::fs::remove_dir_all(&dir).ok();
}
