//! Voicelogs without a network: the forward hook and the other policy
//! moments on a real media session (no peer: the recording is silence of
//! the span the media clock gives it), the store rows, crash repair at
//! start, deletion after retention, and listing and fetching.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::campaigns::{claim_any_hour, running_campaign};
use dialcast_engine::campaign::now_ms;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::store::{
    AttemptOutcome, Claim, SqliteStore, Store, VoicelogFilter, VoicelogStore,
};
use dialcast_engine::voicelog::housekeeping::{purge_expired, repair_unsettled};
use dialcast_engine::voicelog::{access, CallRecorder, Moment, Policy, VoicelogSettings};
use dialcast_media::wav::{WavFile, FRAME_BYTES, HEADER_LEN};
use dialcast_media::{MediaConfig, MediaEngine};

fn record(id: &str) -> ImportedRecord {
    let mut fields = BTreeMap::new();
    fields.insert("IDENTIFICATION_RECORD_ID".to_string(), id.to_string());
    ImportedRecord {
        line: 2,
        record_id: id.to_string(),
        client_reference: None,
        script: "s".to_string(),
        fields,
        phones: vec!["+31612345678".to_string()],
        rejected_phones: Vec::new(),
        invalid_number: false,
    }
}

/// A store with one running campaign and `n` claimed attempts.
async fn claims(n: usize) -> (Arc<SqliteStore>, Vec<Claim>) {
    let store = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
    let campaign = running_campaign(&store, 1, 0).await;
    let records: Vec<_> = (0..n).map(|i| record(&format!("R{i}"))).collect();
    store
        .insert_records(campaign, &records, 0)
        .await
        .expect("records");
    let mut claims = Vec::new();
    for _ in 0..n {
        claims.push(
            claim_any_hour(&store, campaign, now_ms())
                .await
                .expect("claim"),
        );
    }
    (store, claims)
}

fn settings(dir: &std::path::Path, policy: Policy) -> Arc<VoicelogSettings> {
    let mut s = VoicelogSettings::disabled();
    s.dir = dir.to_path_buf();
    s.scripts.insert("s".to_string(), policy);
    Arc::new(s)
}

fn media() -> MediaEngine {
    MediaEngine::start(MediaConfig {
        bind_ip: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        port_min: 47000,
        port_max: 47999,
        ..MediaConfig::default()
    })
    .expect("media")
}

#[tokio::test]
async fn the_forward_hook_records_only_under_the_forwarded_policy() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, claims) = claims(2).await;
    let media = media();
    let mut recorded = Vec::new();
    for (claim, policy) in claims.iter().zip([Policy::Forwarded, Policy::All]) {
        let settings = settings(dir.path(), policy);
        let mut rec = CallRecorder::new(&settings, "s", claim);
        let session = media.open_session().expect("session");
        // Under `all` the answer would have started it; here the call was
        // answered before (not told), so only the forward could.
        let forward = Instant::now();
        rec.at_moment(&*store, &session, Moment::SuccessPoint, forward)
            .await;
        rec.at_moment(&*store, &session, Moment::ForwardStarted, forward)
            .await;
        recorded.push(rec.is_recording());
        let ended = forward + Duration::from_millis(1234);
        rec.call_ended(&session, ended);
        let stats = session.close().await;
        rec.settle(&*store, &stats, now_ms()).await;
    }
    assert_eq!(recorded, vec![true, false]);
    let logs = access::list(&*store, &VoicelogFilter::default())
        .await
        .expect("list");
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert_eq!(
        (
            log.script.as_str(),
            log.record_id.as_str(),
            log.attempt_id,
            log.attempt_no
        ),
        ("s", claims[0].record_id.as_str(), claims[0].attempt_id, 1)
    );
    assert_eq!(
        (log.policy.as_str(), log.state.as_str()),
        ("forwarded", "complete")
    );
    // 1234 ms is 61.7 frames: 62 frames, 1240 ms, on the media clock.
    assert_eq!(log.duration_ms, Some(1240));
    let (_, path) = access::get(&*store, dir.path(), log.id)
        .await
        .expect("get")
        .expect("found");
    let wav = hound::WavReader::open(&path).expect("a WAV file");
    assert_eq!((wav.spec().channels, wav.spec().sample_rate), (2, 8000));
    assert_eq!(wav.duration(), 62 * 160);
    let mut copy = Vec::new();
    let (_, n) = access::copy_to(&*store, dir.path(), log.id, &mut copy)
        .await
        .expect("copy");
    assert_eq!(n, HEADER_LEN + 62 * FRAME_BYTES);
}

#[tokio::test]
async fn a_recording_cut_off_by_a_crash_is_repaired_at_start() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, claims) = claims(2).await;
    let media = media();
    let settings = settings(dir.path(), Policy::All);
    // Two recordings start; the process "dies" before either is settled.
    let mut paths = Vec::new();
    for claim in &claims {
        let mut rec = CallRecorder::new(&settings, "s", claim);
        let session = media.open_session().expect("session");
        rec.at_moment(&*store, &session, Moment::Answered, Instant::now())
            .await;
        assert!(rec.is_recording());
        std::mem::forget(rec);
        drop(session);
    }
    for log in store.unsettled_voicelogs().await.expect("unsettled") {
        paths.push(dir.path().join(&log.path));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The first file: 25 frames written, header synced after 10, plus a
    // torn half sample; the second file is gone.
    let mut w = WavFile::create(&paths[0]).expect("create");
    w.append_silence(10).expect("write");
    w.sync_header().expect("sync");
    w.append_silence(15).expect("write");
    drop(w); // the buffer reaches the file; the header still says 10 frames
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&paths[0])
            .expect("open");
        f.write_all(&[1, 2]).expect("torn");
    }
    std::fs::remove_file(&paths[1]).expect("rm");

    let summary = repair_unsettled(&*store, dir.path(), now_ms())
        .await
        .expect("repair");
    assert_eq!((summary.repaired, summary.missing), (1, 1));
    let wav = hound::WavReader::open(&paths[0]).expect("readable after repair");
    assert_eq!(wav.duration(), 25 * 160);
    let logs = access::list(&*store, &VoicelogFilter::default())
        .await
        .expect("list");
    let mut states: Vec<_> = logs.iter().map(|l| l.state.clone()).collect();
    states.sort();
    assert_eq!(states, vec!["missing", "repaired"]);
    let repaired = logs.iter().find(|l| l.state == "repaired").expect("row");
    assert_eq!(repaired.duration_ms, Some(500));
    assert!(store.unsettled_voicelogs().await.expect("none").is_empty());
}

#[tokio::test]
async fn voicelogs_past_retention_are_deleted_with_their_files() {
    let dir = tempfile::tempdir().expect("dir");
    let (store, claims) = claims(2).await;
    let media = media();
    let settings = settings(dir.path(), Policy::All);
    for claim in &claims {
        let mut rec = CallRecorder::new(&settings, "s", claim);
        let session = media.open_session().expect("session");
        let t = Instant::now();
        rec.at_moment(&*store, &session, Moment::Answered, t).await;
        rec.call_ended(&session, t + Duration::from_millis(100));
        let stats = session.close().await;
        rec.settle(&*store, &stats, now_ms()).await;
    }
    // Finish the attempts, as the campaign would.
    for claim in &claims {
        store
            .finish_attempt(
                claim,
                &AttemptOutcome {
                    status: "success".into(),
                    ended_at: now_ms(),
                    ..AttemptOutcome::default()
                },
                dialcast_engine::store::NextStep::Final,
            )
            .await
            .expect("finish");
    }
    let logs = access::list(&*store, &VoicelogFilter::default())
        .await
        .expect("list");
    assert_eq!(logs.len(), 2);
    let files: Vec<_> = logs.iter().map(|l| dir.path().join(&l.path)).collect();
    assert!(files.iter().all(|f| f.exists()));
    // Within retention: nothing goes.
    let day = 86_400_000;
    assert_eq!(
        purge_expired(&*store, dir.path(), 90 * day, now_ms())
            .await
            .expect("purge"),
        0
    );
    // 91 days later: both go, files first.
    let deleted = purge_expired(&*store, dir.path(), 90 * day, now_ms() + 91 * day)
        .await
        .expect("purge");
    assert_eq!(deleted, 2);
    assert!(files.iter().all(|f| !f.exists()));
    assert!(access::list(&*store, &VoicelogFilter::default())
        .await
        .expect("list")
        .is_empty());
}
