//! `dialcast stats`, `dialcast campaign results` and `dialcast results list`
//! run as the real binary on a database filled through the store, and the
//! nightly catch-up of result files (empty days give header-only files;
//! a second catch-up writes nothing).

mod common;

use common::campaigns::claim_any_hour;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{NaiveTime, TimeZone as _, Utc};
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::result_files::nightly::catch_up;
use dialcast_engine::result_files::ResultFileSettings;
use dialcast_engine::service::{prepare_campaign, CampaignSetup};
use dialcast_engine::store::{
    AttemptOutcome, CampaignSettings, CampaignState, NextStep, SqliteStore, StatsStore, Store,
    TrunkSettings,
};
use serde_json::Value;

fn record(id: &str, phone: Option<&str>) -> ImportedRecord {
    let mut fields = BTreeMap::new();
    fields.insert("IDENTIFICATION_RECORD_ID".to_string(), id.to_string());
    ImportedRecord {
        line: 2,
        record_id: id.to_string(),
        client_reference: None,
        script: "reminder".to_string(),
        fields,
        phones: phone.map(str::to_string).into_iter().collect(),
        rejected_phones: Vec::new(),
        invalid_number: phone.is_none(),
    }
}

async fn campaign(store: &SqliteStore, name: &str, script: &str) -> i64 {
    let id = prepare_campaign(
        store,
        &CampaignSetup {
            organisation: "Org",
            default_country: "NL",
            calendar: &dialcast_engine::store::OrganisationCalendar::every_day("UTC"),
            trunk: &TrunkSettings {
                name: "main".into(),
                uri: "sip:127.0.0.1:5090".into(),
                transport: "udp".into(),
                max_cps: 1,
                max_channels: 1,
                caller_id: None,
            },
            settings: &CampaignSettings::default(),
            script_name: script,
            script_file: &format!("{script}.toml"),
            script_source: "",
            campaign: name,
        },
    )
    .await
    .expect("campaign");
    id
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dialcast-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn write_config(dir: &Path) -> PathBuf {
    let config = format!(
        r#"
[storage]
database = "{db}"
[organisation]
name = "Org"
default_country = "NL"
time_zone = "Europe/Amsterdam"
[results]
dir = "{results}"
outbox_dir = "{outbox}"
xml_scripts = ["reminder"]
[[trunks]]
name = "main"
uri = "sip:127.0.0.1:5090"
max_cps = 1
max_channels = 1
caller_id = "+31201234567"
[campaign]
trunk = "main"
max_attempts = 2
retry_delay_s = 60
ring_timeout_s = 30
max_call_s = 60
amd = false
"#,
        db = dir.join("d.db").display(),
        results = dir.join("results").display(),
        outbox = dir.join("outbox").display(),
    );
    let path = dir.join("dialcast.toml");
    std::fs::write(&path, config).expect("config");
    path
}

/// Runs `dialcast args...` and returns its standard output; fails the test
/// with its standard error when it fails.
fn dialcast(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dialcast-engine"))
        .args(args)
        .output()
        .expect("run dialcast");
    assert!(
        out.status.success(),
        "dialcast {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

fn json(text: &str) -> Value {
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {text}"))
}

#[tokio::test]
async fn the_commands_report_counts_beside_percentages_and_list_files() {
    let dir = scratch("stats-cli");
    let config = write_config(&dir);
    let config = config.to_str().expect("UTF-8 path");
    {
        let store = SqliteStore::open(&dir.join("d.db")).await.expect("store");
        let id = campaign(&store, "march", "reminder").await;
        let now = Utc::now().timestamp_millis();
        store
            .set_campaign_state(id, CampaignState::Running, now)
            .await
            .expect("running");
        store
            .insert_records(
                id,
                &[
                    record("A", Some("+31612345601")),
                    record("B", Some("+31612345602")),
                    record("C", Some("+31612345603")),
                    record("D", None),
                ],
                now,
            )
            .await
            .expect("import");
        for status in ["success", "busy", "no_answer"] {
            let claim = claim_any_hour(&store, id, now).await.expect("due");
            let outcome = AttemptOutcome {
                status: status.into(),
                ended_at: now + 1,
                ..AttemptOutcome::default()
            };
            let next = if status == "success" {
                NextStep::Final
            } else {
                NextStep::RetryAt(now + 3_600_000)
            };
            store
                .finish_attempt(&claim, &outcome, next)
                .await
                .expect("finish");
        }
    }

    let today = json(&dialcast(&["stats", "march", "--config", config, "--json"]));
    assert_eq!(today["campaign"], "march");
    assert_eq!(today["script"], "reminder");
    assert_eq!(today["time_zone"], "Europe/Amsterdam");
    assert_eq!(today["attempts"], 4);
    assert_eq!(today["dialled"], 3);
    assert_eq!(today["delivered"]["count"], 1);
    assert_eq!(today["delivered"]["percent"], 25.0);
    assert_eq!(today["not_reached"]["count"], 2);
    assert_eq!(today["not_reached"]["percent"], 50.0);
    assert_eq!(today["invalid"]["count"], 1);
    assert_eq!(today["invalid"]["percent"], 25.0);
    assert_eq!(today["forwarded"]["count"], 0);
    assert_eq!(today["called_back"]["count"], 0);
    assert_eq!(today["statuses"]["busy"], 1);
    assert_eq!(today["imported"]["voice"], 4);
    assert_eq!(today["voice_completed"]["done"], 2);
    assert_eq!(today["voice_completed"]["records"], 4);
    assert_eq!(today["voice_completed"]["percent"], 50.0);
    assert!(today.get("buckets").is_none());

    let with_buckets = json(&dialcast(&[
        "stats",
        "march",
        "--config",
        config,
        "--day",
        "today",
        "--buckets",
        "--json",
    ]));
    let buckets = with_buckets["buckets"].as_array().expect("buckets");
    let sum: u64 = buckets
        .iter()
        .map(|b| b["attempts"].as_u64().expect("attempts"))
        .sum();
    assert_eq!(sum, 4);
    assert!(buckets[0]["start"].as_str().expect("start").ends_with('Z'));

    let yesterday = json(&dialcast(&[
        "stats",
        "march",
        "--config",
        config,
        "--day",
        "yesterday",
        "--json",
    ]));
    assert_eq!(yesterday["attempts"], 0);
    assert_eq!(yesterday["delivered"]["percent"], 0.0);

    let hour = chrono::Duration::hours(1);
    let from = (Utc::now() - hour).to_rfc3339();
    let to = (Utc::now() + hour).to_rfc3339();
    let ranged = json(&dialcast(&[
        "stats", "march", "--config", config, "--from", &from, "--to", &to, "--json",
    ]));
    assert_eq!(ranged["attempts"], 4);

    let text = dialcast(&["stats", "march", "--config", config]);
    assert!(text.contains("delivered"), "{text}");

    let written = dialcast(&["campaign", "results", "march", "--config", config]);
    let paths: Vec<&str> = written.lines().collect();
    assert_eq!(paths.len(), 2, "CSV and XML (xml_scripts): {written}");
    assert!(paths[0].ends_with(".csv") && paths[1].ends_with(".xml"));
    let csv = std::fs::read_to_string(paths[0]).expect("csv");
    assert_eq!(csv.lines().count(), 1 + 4, "a header and four records");

    let listed = json(&dialcast(&[
        "results", "list", "--config", config, "--json",
    ]));
    let files = listed["files"].as_array().expect("files");
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["script"], "reminder");
    assert_eq!(files[0]["format"], "csv");
    assert_eq!(files[0]["size"], csv.len() as u64);
    assert_eq!(files[0]["rows"], 4);
    let copy = files[0]["outbox_path"].as_str().expect("outbox copy");
    assert_eq!(std::fs::read_to_string(copy).expect("copy"), csv);
    let plain = dialcast(&["results", "list", "--config", config]);
    assert!(plain.contains(paths[0]), "{plain}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_missed_night_is_caught_up_once_with_header_only_files() {
    let dir = scratch("stats-nightly");
    let store = SqliteStore::open(&dir.join("d.db")).await.expect("store");
    let tz = chrono_tz::Europe::Amsterdam;
    let local = |d: u32, h: u32| {
        tz.with_ymd_and_hms(2026, 3, d, h, 0, 0)
            .single()
            .expect("a local time")
            .with_timezone(&Utc)
    };
    // Running since 27 March, nothing dialled; another script never started.
    let running = campaign(&store, "quiet", "quiet").await;
    store
        .set_campaign_state(
            running,
            CampaignState::Running,
            local(27, 9).timestamp_millis(),
        )
        .await
        .expect("running");
    campaign(&store, "idle", "idle").await;
    let settings = ResultFileSettings {
        dir: dir.join("results"),
        outbox_dir: None,
        xml: false,
        xml_scripts: Vec::new(),
        time_zone: tz,
    };
    let at = NaiveTime::from_hms_opt(2, 0, 0).expect("time");

    // Started on the 29th (the spring change) at 04:00: the 02:00 run was
    // missed (it would have been at 03:00 CEST), so the 28th is written now.
    let now = local(29, 4);
    let files = catch_up(&store, &settings, at, now)
        .await
        .expect("catch up");
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].script, "quiet");
    assert_eq!(files[0].day.to_string(), "2026-03-28");
    let text = std::fs::read_to_string(&files[0].path).expect("file");
    assert_eq!(text.lines().count(), 1, "header only: {text}");
    assert!(text.starts_with("IDENTIFICATION_RECORD_ID;IDENTIFICATION_CLIENT_REFERENCE;"));
    assert_eq!(files[0].rows, 0);

    // Started again: nothing is missing, nothing is written.
    assert!(catch_up(&store, &settings, at, now)
        .await
        .expect("again")
        .is_empty());
    // The file is gone from disk: written again, under the same name.
    std::fs::remove_file(&files[0].path).expect("remove");
    let again = catch_up(&store, &settings, at, now).await.expect("rewrite");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].path, files[0].path);
    assert_eq!(store.result_files().await.expect("list").len(), 1);
    // Before the 29th's run time the last run's day is the 27th.
    let early = catch_up(&store, &settings, at, local(29, 1))
        .await
        .expect("early");
    assert_eq!(
        early.iter().map(|f| f.day.to_string()).collect::<Vec<_>>(),
        ["2026-03-27"]
    );
    let _ = std::fs::remove_dir_all(&dir);
}
