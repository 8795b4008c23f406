//! `dialcast voicelogs list|get` as the real binary, on a database with a
//! recording made through the call hook.

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::campaigns::{claim_any_hour, running_campaign};
use common::import_config::ImportConfig;
use dialcast_engine::campaign::now_ms;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::store::{SqliteStore, Store};
use dialcast_engine::voicelog::{CallRecorder, Moment, Policy, VoicelogSettings};
use dialcast_media::{MediaConfig, MediaEngine};
use serde_json::Value;

fn dialcast(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dialcast-engine"))
        .args(args)
        .output()
        .expect("run dialcast")
}

#[tokio::test]
async fn voicelogs_are_listed_and_fetched_by_the_cli() {
    let dir = tempfile::tempdir().expect("dir");
    let voicelogs = dir.path().join("voicelogs");
    let config_path = ImportConfig::new(dir.path(), "Org").write();
    let mut text = std::fs::read_to_string(&config_path).expect("config");
    text.push_str(&format!("[voicelogs]\ndir = \"{}\"\n", voicelogs.display()));
    std::fs::write(&config_path, text).expect("config");
    let config = config_path.to_str().expect("UTF-8");

    let store = Arc::new(
        SqliteStore::open(&dir.path().join("dialcast.db"))
            .await
            .expect("store"),
    );
    let campaign = running_campaign(&store, 1, 0).await;
    let mut fields = BTreeMap::new();
    fields.insert("IDENTIFICATION_RECORD_ID".to_string(), "R7".to_string());
    let record = ImportedRecord {
        line: 2,
        record_id: "R7".to_string(),
        client_reference: None,
        script: "s".to_string(),
        fields,
        phones: vec!["+31612345678".to_string()],
        rejected_phones: Vec::new(),
        invalid_number: false,
    };
    store
        .insert_records(campaign, &[record], 0)
        .await
        .expect("record");
    let claim = claim_any_hour(&store, campaign, now_ms())
        .await
        .expect("claim");
    let mut settings = VoicelogSettings::disabled();
    settings.dir = voicelogs.clone();
    settings.default_policy = Policy::All;
    let media = MediaEngine::start(MediaConfig {
        bind_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        port_min: 48000,
        port_max: 48999,
        ..MediaConfig::default()
    })
    .expect("media");
    let mut rec = CallRecorder::new(&Arc::new(settings), "s", &claim);
    let session = media.open_session().expect("session");
    let t = Instant::now();
    rec.at_moment(&*store, &session, Moment::Answered, t).await;
    rec.call_ended(&session, t + Duration::from_millis(500));
    let stats = session.close().await;
    rec.settle(&*store, &stats, now_ms()).await;
    drop(store);

    let out = dialcast(&[
        "voicelogs",
        "list",
        "--json",
        "--script",
        "s",
        "--config",
        config,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let logs = list["voicelogs"].as_array().expect("array");
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["record_id"], "R7");
    assert_eq!(logs[0]["attempt_id"], claim.attempt_id);
    assert_eq!(logs[0]["script"], "s");
    assert_eq!(logs[0]["duration_ms"], 500);
    let id = logs[0]["id"].to_string();
    let other = dialcast(&[
        "voicelogs",
        "list",
        "--json",
        "--script",
        "x",
        "--config",
        config,
    ]);
    let other: Value = serde_json::from_slice(&other.stdout).expect("JSON");
    assert_eq!(other["voicelogs"].as_array().map(Vec::len), Some(0));

    let wav = dir.path().join("out.wav");
    let wav_arg = wav.to_str().expect("UTF-8");
    let out = dialcast(&[
        "voicelogs",
        "get",
        &id,
        "--out",
        wav_arg,
        "--config",
        config,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = hound::WavReader::open(&wav).expect("a WAV");
    assert_eq!((reader.spec().channels, reader.duration()), (2, 25 * 160));

    let missing = dir.path().join("missing.wav");
    let out = dialcast(&[
        "voicelogs",
        "get",
        "999",
        "--out",
        missing.to_str().expect("UTF-8"),
        "--config",
        config,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no voicelog 999"));
    assert!(
        !missing.exists(),
        "no file for a voicelog that does not exist"
    );
}
