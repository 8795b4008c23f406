//! Voicelogs end to end: a short campaign against the callee farm over real
//! SIP and RTP on loopback, every call recorded (`all`): each answered
//! attempt has one stereo 8 kHz WAV whose length matches the attempt's talk
//! time within 20 ms, with its record, attempt and script in the store; a
//! `from_success` campaign records only the calls that reach the point of
//! success, and never longer than their talk time.

mod common;

use common::campaigns::{any_hour, payment_reminder, Trunk, SCRIPT};

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dialcast_engine::campaign::now_ms;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::loopback::start_engine_with_voicelogs;
use dialcast_engine::store::{CampaignState, SqliteStore, Store, VoicelogFilter, VoicelogInfo};
use dialcast_engine::voicelog::{access, Policy, VoicelogSettings};
use dialcast_loadtest::farm::{numbers, Farm, FarmConfig, Mix};
use tokio_util::sync::CancellationToken;

fn record(i: usize, number: &str) -> ImportedRecord {
    let mut fields = BTreeMap::new();
    for (k, v) in [
        ("IDENTIFICATION_RECORD_ID", format!("R{i}")),
        ("PERSON_LANGUAGE", "en".to_string()),
        ("CONTACT_PHONE_1", number.to_string()),
        ("INVOICE_AMOUNT_OPEN", format!("{}.50", 10 + i)),
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

struct Ran {
    logs: Vec<VoicelogInfo>,
    /// (record id, status, talk ms, success point, voicelog id) per attempt.
    attempts: Vec<(String, String, i64, bool, Option<String>)>,
    dir: tempfile::TempDir,
}

async fn run(policy: Policy, base: u16, mix: &str, count: usize) -> Ran {
    let dir = tempfile::tempdir().expect("dir");
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = base;
    farm_config.media.port_max = base + 999;
    let farm = Farm::start(farm_config).await.expect("farm");
    let mix: Mix = mix.parse().expect("mix");
    let dialled = numbers(&mix, count, 5);
    let records: Vec<_> = dialled
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
            max_cps: 20,
            max_channels: 30,
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
    let mut voicelogs = VoicelogSettings::disabled();
    voicelogs.dir = dir.path().to_path_buf();
    voicelogs.scripts.insert(SCRIPT.to_string(), policy);
    let (engine, sip, _inbound) =
        start_engine_with_voicelogs(Arc::clone(&store), (base + 1000, base + 1999), voicelogs)
            .await
            .expect("engine");
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
    let logs = access::list(&*store, &VoicelogFilter::default())
        .await
        .expect("list");
    let attempts = store
        .result_rows(campaign, 0, i64::MAX)
        .await
        .expect("rows")
        .into_iter()
        .flat_map(|row| {
            let id = row.record_id.clone();
            row.calls.into_iter().map(move |c| {
                let talk_ms = (c.talk_s * 1000.0).round() as i64;
                (
                    id.clone(),
                    c.status,
                    talk_ms,
                    c.success_point,
                    c.voicelog_id,
                )
            })
        })
        .collect();
    Ran {
        logs,
        attempts,
        dir,
    }
}

/// (channels, sample rate, length in ms, RMS of the right channel).
fn inspect(path: &std::path::Path) -> (u16, u32, f64, f64) {
    let reader = hound::WavReader::open(path).expect("a readable WAV");
    let spec = reader.spec();
    let frames = reader.duration();
    let samples: Vec<i16> = reader
        .into_samples()
        .collect::<Result<_, _>>()
        .expect("samples");
    let right: Vec<f64> = samples
        .iter()
        .skip(1)
        .step_by(2)
        .map(|s| f64::from(*s))
        .collect();
    let rms = (right.iter().map(|s| s * s).sum::<f64>() / right.len().max(1) as f64).sqrt();
    (
        spec.channels,
        spec.sample_rate,
        f64::from(frames) * 1000.0 / f64::from(spec.sample_rate),
        rms,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answered_call_is_recorded_as_long_as_its_talk_time() {
    let ran = run(
        Policy::All,
        43000,
        "human=3,voicemail=1,busy=1,hangup_halfway=1",
        12,
    )
    .await;
    let answered: Vec<_> = ran
        .attempts
        .iter()
        .filter(|(_, _, talk, ..)| *talk > 0)
        .collect();
    assert!(answered.len() >= 8, "answered: {answered:?}");
    assert_eq!(
        ran.logs.len(),
        answered.len(),
        "one voicelog per answered call"
    );
    let mut report = Vec::new();
    for log in &ran.logs {
        let (record, status, _, _, voicelog_id) = ran
            .attempts
            .iter()
            .find(|(r, ..)| *r == log.record_id)
            .expect("the voicelog's record was dialled");
        assert_eq!(log.script, SCRIPT);
        assert_eq!(log.attempt_no, 1);
        assert_eq!(log.state, "complete");
        assert_eq!(
            voicelog_id.as_deref(),
            Some(log.id.to_string().as_str()),
            "in the result file"
        );
        let talk_ms = &log.talk_ms.expect("the attempt's talk time");
        let (channels, rate, ms, rms) = inspect(&ran.dir.path().join(&log.path));
        assert_eq!((channels, rate), (2, 8000), "{}", log.path);
        let diff = ms - *talk_ms as f64;
        report.push(format!(
            "{record} {status}: talk {talk_ms} ms, wav {ms:.1} ms ({diff:+.1}), theirs rms {rms:.0}, filled {:?}",
            log.frames_filled
        ));
        assert!(diff.abs() <= 20.0, "{}", report.join("\n"));
        assert_eq!(log.duration_ms.map(|d| d as f64), Some(ms));
        if status == "success" {
            assert!(
                rms > 10.0,
                "the callee's side is heard: {}",
                report.join("\n")
            );
        }
    }
    println!("{}", report.join("\n"));
    // Fetch through the portal's function.
    let mut bytes = Vec::new();
    let store = SqliteStore::open_in_memory().await.expect("other store");
    assert!(
        access::copy_to(&store, ran.dir.path(), ran.logs[0].id, &mut bytes)
            .await
            .is_err(),
        "an unknown id is an error, not a panic"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_success_records_only_calls_past_the_point_of_success() {
    let ran = run(
        Policy::FromSuccess,
        46000,
        "human=2,hangup_halfway=1,busy=1",
        8,
    )
    .await;
    let past: Vec<_> = ran.attempts.iter().filter(|a| a.3).collect();
    assert!(!past.is_empty());
    assert_eq!(ran.logs.len(), past.len(), "{:?}", ran.attempts);
    for log in &ran.logs {
        let (_, _, _, success, _) = ran
            .attempts
            .iter()
            .find(|(r, ..)| *r == log.record_id)
            .expect("dialled");
        assert!(success);
        let talk_ms = &log.talk_ms.expect("talk time");
        let (channels, rate, ms, _) = inspect(&ran.dir.path().join(&log.path));
        assert_eq!((channels, rate), (2, 8000));
        assert!(ms > 0.0 && ms < *talk_ms as f64, "{ms} of {talk_ms}");
        assert_eq!(log.policy, "from_success");
    }
}
