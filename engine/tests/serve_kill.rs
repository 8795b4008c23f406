//! `dialcast serve` killed with SIGKILL in the middle of a campaign and started
//! again finishes the campaign without losing a record and without dialling
//! any attempt twice. Drives the real binary through its shell commands
//! against the callee farm.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dialcast_engine::store::{CampaignState, SqliteStore, Store};
use dialcast_loadtest::farm::{numbers, Farm, FarmConfig, Mix};

const SCRIPT: &str = "payment_reminder";
const RECORDS: usize = 40;

fn dialcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dialcast-engine"))
}

fn write_config(dir: &Path, farm: SocketAddr) -> PathBuf {
    let examples = dialcast_engine::demo::examples_dir();
    let config = format!(
        r#"
[storage]
database = "{db}"
[sip]
bind = "127.0.0.1:0"
tcp = false
[media]
bind_ip = "127.0.0.1"
rtp_port_min = 47000
rtp_port_max = 48999
inactivity_timeout_s = 30
[organisation]
name = "Kill test"
default_country = "NL"
time_zone = "UTC"
workdays = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
[scripts]
dir = "{scripts}"
[results]
dir = "{results}"
[[trunks]]
name = "farm"
uri = "sip:{farm}"
transport = "udp"
max_cps = 10
max_channels = 20
caller_id = "+31201234567"
[campaign]
trunk = "farm"
max_attempts = 2
retry_delay_s = 1
ring_timeout_s = 9
max_call_s = 60
amd = false
max_attempts_per_day = 0
[campaign.windows]
mon = ["00:00-24:00"]
tue = ["00:00-24:00"]
wed = ["00:00-24:00"]
thu = ["00:00-24:00"]
fri = ["00:00-24:00"]
sat = ["00:00-24:00"]
sun = ["00:00-24:00"]
"#,
        db = dir.join("dialcast.db").display(),
        scripts = examples.display(),
        results = dir.join("results").display(),
    );
    let path = dir.join("dialcast.toml");
    std::fs::write(&path, config).expect("config");
    path
}

fn write_records(dir: &Path) -> PathBuf {
    let mix: Mix = "human=6,busy=1,hangup_halfway=1".parse().expect("mix");
    let mut csv = String::from(
        "IDENTIFICATION_RECORD_ID;PERSON_LANGUAGE;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;INVOICE_DUE_DATE\n",
    );
    for (i, (number, _)) in numbers(&mix, RECORDS, 5).iter().enumerate() {
        csv.push_str(&format!("K{i:03};en;{number};{}.50;2026-12-31\n", 20 + i));
    }
    let path = dir.join("records.csv");
    std::fs::write(&path, csv).expect("records");
    path
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().expect("dialcast runs");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn serve(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log");
    dialcast()
        .args(["serve", "--config"])
        .arg(config)
        // Any free port: the default 9464 may be taken on a shared machine.
        .args(["--metrics-addr", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_service_finishes_the_campaign_without_loss_or_double_dial() {
    let dir = std::env::temp_dir().join(format!("dialcast-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = 49000;
    farm_config.media.port_max = 50999;
    let farm = Farm::start(farm_config).await.expect("farm");
    let config = write_config(&dir, farm.local_addr());
    let records = write_records(&dir);

    let imported = run_ok(
        dialcast()
            .args(["import"])
            .arg(&records)
            .args(["--script", SCRIPT, "--json", "--config"])
            .arg(&config),
    );
    assert!(imported.contains("\"inserted\":40"), "{imported}");
    run_ok(
        dialcast()
            .args(["campaign", "start", SCRIPT, "--config"])
            .arg(&config),
    );

    let store = SqliteStore::open(&dir.join("dialcast.db"))
        .await
        .expect("store");
    let campaign = store.campaign_by_name(SCRIPT).await.expect("campaign").id;

    // First run: kill it while calls are in flight and records remain.
    let mut first = serve(&config, &dir.join("serve-1.log"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = store.campaign_status(campaign).await.expect("status");
        if status.done >= 8 && status.dialing >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no progress: {status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let at_kill = store.campaign_status(campaign).await.expect("status");
    assert!(at_kill.dialing > 0, "calls were in flight: {at_kill:?}");
    assert!(at_kill.pending > 0, "records were left: {at_kill:?}");

    // Second run: it recovers and finishes.
    let mut second = serve(&config, &dir.join("serve-2.log"));
    let deadline = Instant::now() + Duration::from_secs(120);
    let finished = loop {
        let status = store.campaign_status(campaign).await.expect("status");
        if status.state == CampaignState::Finished.as_str() {
            break status;
        }
        assert!(Instant::now() < deadline, "not finished: {status:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    second.kill().ok();
    second.wait().ok();

    // Nothing lost: every record is done with a final status.
    let finals = store.record_finals(campaign).await.expect("finals");
    assert_eq!(finals.len(), RECORDS);
    for f in &finals {
        assert_eq!(f.state, "done", "{f:?}");
        assert!(f.final_status.is_some(), "{f:?}");
        assert!(f.attempts <= 2, "at most max_attempts: {f:?}");
    }
    // The kill cut calls: they are reported as interrupted (or success if
    // the callee had already heard the core of the message).
    let rows = store
        .result_rows(campaign, 0, i64::MAX)
        .await
        .expect("rows");
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for call in rows.iter().flat_map(|r| &r.calls) {
        *statuses.entry(call.status.clone()).or_default() += 1;
    }
    let cut = statuses.get("interrupted").copied().unwrap_or(0);
    assert!(cut <= at_kill.dialing, "{statuses:?}");
    let log = std::fs::read_to_string(dir.join("serve-2.log")).expect("log");
    assert!(
        log.contains(&format!("{} attempts were cut off", at_kill.dialing)),
        "the restart recovers the {} attempts in flight:\n{log}",
        at_kill.dialing
    );
    // No attempt dialled twice: the farm saw at most one INVITE per stored
    // attempt (an attempt claimed just before the kill may never have left).
    let farm_stats = farm.shutdown().await;
    let invites = farm_stats.total().calls;
    assert!(
        invites <= finished.attempts,
        "{invites} INVITEs for {} attempts",
        finished.attempts
    );
    assert!(
        invites + at_kill.dialing >= finished.attempts,
        "{invites} INVITEs for {} attempts",
        finished.attempts
    );
    let _ = std::fs::remove_dir_all(&dir);
}
