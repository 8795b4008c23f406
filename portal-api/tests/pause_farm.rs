//! A pause issued over the API stops new calls within one second, measured
//! where the calls arrive: the callee farm (a SIP UAS in this process)
//! counts the INVITEs of a campaign that `dialcast serve` runs at 20 calls
//! per second; `POST /api/v1/scripts/{script}/pause` with a scheduler's API
//! key must leave no INVITE arriving later than one second after the
//! request was sent. The resume over the API starts calls again.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{dialcast, post, run_ok, spawn_and_find_addr};
use dialcast_loadtest::farm::{numbers, Farm, FarmConfig, Mix};

const SCRIPT: &str = "payment_reminder";
const ORG: &str = "Pause test";
const RECORDS: usize = 400;

fn write_config(dir: &Path, farm: SocketAddr) -> PathBuf {
    let every_day = r#"["00:00-24:00"]"#;
    let windows: String = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|d| format!("{d} = {every_day}\n"))
        .collect();
    let text = format!(
        r#"
[storage]
database = "{db}"
[sip]
bind = "127.0.0.1:0"
tcp = false
[media]
bind_ip = "127.0.0.1"
rtp_port_min = 53000
rtp_port_max = 53999
inactivity_timeout_s = 30
[organisation]
name = "{ORG}"
default_country = "NL"
time_zone = "UTC"
workdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
[scripts]
dir = "{scripts}"
[results]
dir = "{results}"
[imports]
archive_dir = "{archive}"
[[trunks]]
name = "farm"
uri = "sip:{farm}"
transport = "udp"
max_cps = 20
max_channels = 60
caller_id = "+31201234567"
[campaign]
trunk = "farm"
max_attempts = 1
retry_delay_s = 60
ring_timeout_s = 9
max_call_s = 60
amd = false
max_attempts_per_day = 0
[campaign.windows]
{windows}"#,
        db = dir.join("dialcast.db").display(),
        scripts = dialcast_engine::demo::examples_dir().display(),
        results = dir.join("results").display(),
        archive = dir.join("archive").display(),
    );
    let path = dir.join("dialcast.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn write_records(dir: &Path) -> PathBuf {
    let mix: Mix = "human=1".parse().unwrap();
    let mut csv = String::from(
        "IDENTIFICATION_RECORD_ID;PERSON_LANGUAGE;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;INVOICE_DUE_DATE\n",
    );
    for (i, (number, _)) in numbers(&mix, RECORDS, 7).iter().enumerate() {
        csv.push_str(&format!("P{i:04};en;{number};{}.50;2026-12-31\n", 20 + i));
    }
    let path = dir.join("records.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// INVITEs the farm has received so far.
fn invites(farm: &Farm) -> u64 {
    farm.stats().behaviours.values().map(|b| b.calls).sum()
}

/// Watches the farm's INVITE count every 2 ms and keeps when it last rose.
struct Watch {
    last_rise: Arc<Mutex<(u64, Instant)>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Watch {
    fn start(farm: Arc<Farm>) -> Watch {
        let last_rise = Arc::new(Mutex::new((invites(&farm), Instant::now())));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (seen, halt) = (last_rise.clone(), stop.clone());
        tokio::spawn(async move {
            while !halt.load(std::sync::atomic::Ordering::Relaxed) {
                let n = invites(&farm);
                {
                    let mut last = seen.lock().unwrap();
                    if n > last.0 {
                        *last = (n, Instant::now());
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Watch { last_rise, stop }
    }

    fn last(&self) -> (u64, Instant) {
        *self.last_rise.lock().unwrap()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn wait_for(farm: &Farm, at_least: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while invites(farm) < at_least {
        assert!(
            Instant::now() < deadline,
            "{what}: only {} INVITEs",
            invites(farm)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_over_the_api_stops_new_calls_within_one_second() {
    let dir = tempfile::tempdir().unwrap();
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = 54000;
    farm_config.media.port_max = 54999;
    let farm = Arc::new(Farm::start(farm_config).await.unwrap());
    let config = write_config(dir.path(), farm.local_addr());
    let records = write_records(dir.path());
    let imported = run_ok(
        dialcast()
            .args(["import"])
            .arg(&records)
            .args(["--script", SCRIPT, "--json", "--config"])
            .arg(&config),
    );
    assert!(
        imported.contains(&format!("\"inserted\":{RECORDS}")),
        "{imported}"
    );
    let key = run_ok(
        dialcast()
            .args([
                "apikey",
                "create",
                "--org",
                ORG,
                "--role",
                "scheduler",
                "--config",
            ])
            .arg(&config),
    )
    .trim()
    .to_owned();
    run_ok(
        dialcast()
            .args(["campaign", "start", SCRIPT, "--config"])
            .arg(&config),
    );
    let (_serve, portal, _log) = spawn_and_find_addr(
        dialcast()
            .args(["serve", "--config"])
            .arg(&config)
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--portal-addr",
                "127.0.0.1:0",
            ])
            .env("DIALCAST_LOG", "warn,dialcast=info"),
        "portal API on http://",
    );

    // Calls flowing at the trunk's pace.
    wait_for(&farm, 30, "before the pause").await;
    let watch = Watch::start(farm.clone());
    let before = invites(&farm);
    let sent = Instant::now();
    let path = format!("/api/v1/scripts/{SCRIPT}/pause");
    let pause_key = key.clone();
    let paused = tokio::task::spawn_blocking(move || post(portal, &path, Some(&pause_key)).status)
        .await
        .unwrap();
    let answered = sent.elapsed();
    assert_eq!(paused, 200, "the pause was refused");
    // Three seconds without a call would have been 60 at the trunk's pace.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (total, last_rise) = watch.last();
    let last_call_after = last_rise.saturating_duration_since(sent);
    eprintln!(
        "pause answered in {} ms; {} INVITEs arrived after the request was sent, the last \
         {} ms after it",
        answered.as_millis(),
        total - before,
        last_call_after.as_millis()
    );
    assert!(
        last_call_after < Duration::from_secs(1),
        "an INVITE arrived {} ms after the pause was sent",
        last_call_after.as_millis()
    );
    assert!(
        total < RECORDS as u64,
        "the campaign ended before it could be paused"
    );

    drop(watch);

    // Resumed over the API, calls start again.
    let path = format!("/api/v1/scripts/{SCRIPT}/resume");
    let resumed = tokio::task::spawn_blocking(move || post(portal, &path, Some(&key)).status)
        .await
        .unwrap();
    assert_eq!(resumed, 200, "the resume was refused");
    wait_for(&farm, total + 10, "after the resume").await;
}
