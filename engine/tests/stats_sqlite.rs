//! The 5-minute statistics against a real SQLite store: counters kept as
//! attempts end must equal what a scan of the attempts table gives, however
//! imports, claims, outcomes, repeated finishes and crash recovery
//! interleave; and the result-file register.

mod common;

use common::campaigns::claim_any_hour;

use std::collections::BTreeMap;

use dialcast_engine::campaign::retry;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::stats::{Counters, BUCKET_MS};
use dialcast_engine::store::{
    AttemptOutcome, Claim, NextStep, ResultFile, SqliteStore, StatsStore, Store,
};
use proptest::prelude::*;

mod stats_scan;
use stats_scan::scanned;

const STATUSES: [&str; 12] = [
    "success",
    "forwarded",
    "voicemail",
    "answered_no_success",
    "no_answer",
    "busy",
    "rejected",
    "unavailable",
    "invalid_number",
    "blocked",
    "failed",
    "interrupted",
];

fn record(id: &str, dialable: bool) -> ImportedRecord {
    let mut fields = BTreeMap::new();
    fields.insert("IDENTIFICATION_RECORD_ID".to_string(), id.to_string());
    let phones = if dialable {
        vec!["+31612345678".to_string()]
    } else {
        Vec::new()
    };
    ImportedRecord {
        line: 2,
        record_id: id.to_string(),
        client_reference: None,
        script: "s".to_string(),
        fields,
        phones,
        rejected_phones: Vec::new(),
        invalid_number: !dialable,
    }
}

async fn setup(store: &SqliteStore, max_attempts: u32) -> i64 {
    common::campaigns::running_campaign(store, max_attempts, 60_000).await
}

/// One step of a simulated day.
#[derive(Clone, Debug)]
enum Step {
    /// Claim the next due record.
    Claim,
    /// Finish the oldest attempt in flight with this status.
    Finish(usize),
    /// Finish the last finished attempt again (a retried commit).
    FinishAgain,
    /// Import records, dialable or not.
    Import(Vec<bool>),
}

fn step() -> impl Strategy<Value = (u32, Step)> {
    let step = prop_oneof![
        4 => Just(Step::Claim),
        4 => (0..STATUSES.len()).prop_map(Step::Finish),
        1 => Just(Step::FinishAgain),
        1 => prop::collection::vec(any::<bool>(), 1..4).prop_map(Step::Import),
    ];
    (0u32..200_000, step)
}

async fn simulate(start: i64, first: Vec<bool>, steps: Vec<(u32, Step)>) {
    let dir = std::env::temp_dir().join(format!("dialcast-stats-{}-{start}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("s.db");
    let _ = std::fs::remove_file(&path);
    let store = SqliteStore::open(&path).await.expect("store");
    let campaign = setup(&store, 3).await;
    let mut clock = start;
    let mut serial = 0;
    let mut import = |dialable: &[bool]| {
        dialable
            .iter()
            .map(|d| {
                serial += 1;
                record(&format!("R{serial}"), *d)
            })
            .collect::<Vec<_>>()
    };
    store
        .insert_records(campaign, &import(&first), clock)
        .await
        .expect("import");
    let mut in_flight: Vec<Claim> = Vec::new();
    let mut last: Option<(Claim, AttemptOutcome, NextStep)> = None;
    for (dt, step) in steps {
        clock += i64::from(dt);
        match step {
            Step::Claim => {
                if let Some(claim) = claim_any_hour(&store, campaign, clock).await {
                    in_flight.push(claim);
                }
            }
            Step::Finish(status) if !in_flight.is_empty() => {
                let claim = in_flight.remove(0);
                let status = STATUSES[status];
                let outcome = AttemptOutcome {
                    status: status.to_string(),
                    ended_at: clock,
                    ..AttemptOutcome::default()
                };
                let next = retry::next_step(status, claim.attempt_no, 3, 60_000, clock);
                store
                    .finish_attempt(&claim, &outcome, next)
                    .await
                    .expect("finish");
                last = Some((claim, outcome, next));
            }
            Step::Finish(_) => {}
            Step::FinishAgain => {
                if let Some((claim, outcome, next)) = &last {
                    store
                        .finish_attempt(claim, outcome, *next)
                        .await
                        .expect("finish again");
                }
            }
            Step::Import(dialable) => {
                store
                    .insert_records(campaign, &import(&dialable), clock)
                    .await
                    .expect("import");
            }
        }
    }
    // The process dies with calls in flight; the next start recovers them.
    drop(store);
    let store = SqliteStore::open(&path).await.expect("reopen");
    let rule = |status: &str, n: u32, max: u32| retry::next_step(status, n, max, 0, clock);
    store
        .recover_interrupted(clock + 1, &rule)
        .await
        .expect("recover");

    let kept: BTreeMap<i64, Counters> = store
        .stats_buckets(campaign, 0, i64::MAX)
        .await
        .expect("buckets")
        .into_iter()
        .collect();
    let db = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("scan connection");
    let scan = scanned(&db, campaign).await;
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(kept, scan);
    assert!(kept.keys().all(|b| b % BUCKET_MS == 0));
    for counters in kept.values() {
        assert_eq!(
            counters.green + counters.yellow + counters.red + counters.other,
            counters.attempts
        );
        assert_eq!(counters.statuses.values().sum::<u64>(), counters.attempts);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn buckets_equal_a_scan_of_the_attempts(
        start in 1_700_000_000_000i64..1_800_000_000_000,
        first in prop::collection::vec(any::<bool>(), 1..12),
        steps in prop::collection::vec(step(), 0..80),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(simulate(start, first, steps));
    }
}

#[tokio::test]
async fn totals_sum_the_buckets_of_a_range() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 1).await;
    let t0 = 1_750_000_200_000; // a bucket start
    store
        .insert_records(
            campaign,
            &[record("A", true), record("B", true), record("C", false)],
            t0,
        )
        .await
        .expect("import");
    for (i, status) in ["success", "busy"].iter().enumerate() {
        let at = t0 + BUCKET_MS * (i as i64 + 1);
        let claim = claim_any_hour(&store, campaign, at).await.expect("due");
        let outcome = AttemptOutcome {
            status: status.to_string(),
            ended_at: at + 1000,
            ..AttemptOutcome::default()
        };
        store
            .finish_attempt(&claim, &outcome, NextStep::Final)
            .await
            .expect("finish");
    }
    let all = store
        .stats_totals(campaign, t0, t0 + 3 * BUCKET_MS)
        .await
        .expect("totals");
    assert_eq!((all.attempts, all.dialled), (3, 2));
    assert_eq!((all.green, all.yellow, all.red), (1, 1, 1));
    assert_eq!(all.records_done, 3);
    assert_eq!(all.imported.get("voice"), Some(&3));
    let everyone = store
        .stats_totals_all(t0, t0 + BUCKET_MS)
        .await
        .expect("all campaigns");
    assert_eq!(everyone.imported.get("voice"), Some(&3));
    assert_eq!(everyone.attempts, 1);
    // A range that starts inside the first bucket still counts all of it.
    let first = store
        .stats_totals(campaign, t0 + 1, t0 + BUCKET_MS)
        .await
        .expect("totals");
    assert_eq!((first.attempts, first.red), (1, 1));
    let later = store
        .stats_totals(campaign, t0 + BUCKET_MS, i64::MAX)
        .await
        .expect("totals");
    assert_eq!((later.attempts, later.green, later.yellow), (2, 1, 1));
    let buckets = store
        .stats_buckets(campaign, t0, i64::MAX)
        .await
        .expect("buckets");
    assert_eq!(
        buckets.iter().map(|(b, _)| *b).collect::<Vec<_>>(),
        vec![t0, t0 + BUCKET_MS, t0 + 2 * BUCKET_MS]
    );
    let update = store
        .bucket_update(campaign, t0 + BUCKET_MS + 5)
        .await
        .expect("bucket");
    assert_eq!(
        (update.campaign.as_str(), update.script.as_str()),
        ("c", "s")
    );
    assert_eq!(update.counters.statuses.get("success"), Some(&1));
}

#[tokio::test]
async fn result_files_are_registered_once_per_script_day_and_format() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 1).await;
    let script = store.script_of_campaign(campaign).await.expect("script");
    assert_eq!(script.script, "s");
    assert_eq!(script.campaigns, vec![(campaign, "c".to_string())]);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("day");
    let mut file = ResultFile {
        script_id: script.script_id,
        script: "s".into(),
        day,
        format: "csv".into(),
        path: "/r/results_s_2026-11-21.csv".into(),
        outbox_path: None,
        size: 10,
        rows: 0,
        written_at: 1,
    };
    store.record_result_file(&file).await.expect("register");
    file.size = 20;
    file.written_at = 2;
    store.record_result_file(&file).await.expect("rewrite");
    let listed = store.result_files().await.expect("list");
    assert_eq!(listed, vec![file.clone()]);
    assert_eq!(
        store
            .result_file(script.script_id, day, "csv")
            .await
            .expect("one"),
        Some(file)
    );
    assert_eq!(
        store
            .result_file(script.script_id, day, "xml")
            .await
            .expect("none"),
        None
    );
}
