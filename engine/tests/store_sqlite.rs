//! The SQLite store against a real (in-memory or temporary-file) database:
//! claims, outcomes, retries, crash recovery, duplicates and result rows.

use std::collections::BTreeMap;

use dialcast_engine::campaign::retry;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::store::{
    AttemptOutcome, CampaignSettings, CampaignState, NextStep, SqliteStore, Store, TrunkSettings,
};

fn record(id: &str, phones: &[&str]) -> ImportedRecord {
    let mut fields = BTreeMap::new();
    fields.insert("IDENTIFICATION_RECORD_ID".to_string(), id.to_string());
    if let Some(p) = phones.first() {
        fields.insert("CONTACT_PHONE_1".to_string(), p.to_string());
    }
    ImportedRecord {
        line: 2,
        record_id: id.to_string(),
        client_reference: Some(format!("ref-{id}")),
        script: "s".to_string(),
        fields,
        phones: phones.iter().map(|p| p.to_string()).collect(),
        rejected_phones: Vec::new(),
        invalid_number: phones.is_empty(),
    }
}

async fn setup(store: &SqliteStore, max_attempts: u32) -> i64 {
    let org = store.ensure_organisation("Org", "NL").await.expect("org");
    let trunk = store
        .upsert_trunk(
            org,
            &TrunkSettings {
                name: "t".into(),
                uri: "sip:127.0.0.1:5090".into(),
                transport: "udp".into(),
                max_cps: 5,
                max_channels: 5,
                caller_id: None,
            },
        )
        .await
        .expect("trunk");
    let script = store
        .upsert_script(org, "s", "s.toml", "name = \"s\"")
        .await
        .expect("script");
    store
        .ensure_campaign(
            org,
            "c",
            script,
            trunk,
            &CampaignSettings {
                max_attempts,
                retry_delay_ms: 1000,
                ..CampaignSettings::default()
            },
        )
        .await
        .expect("campaign")
}

fn outcome(status: &str, at: i64) -> AttemptOutcome {
    AttemptOutcome {
        status: status.to_string(),
        sip_code: Some(200),
        ended_at: at,
        ..AttemptOutcome::default()
    }
}

#[tokio::test]
async fn a_record_is_claimed_once_and_finished() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 3).await;
    let summary = store
        .insert_records(
            campaign,
            &[
                record("A", &["+31612345678"]),
                record("B", &["+31612345679"]),
            ],
            0,
        )
        .await
        .expect("insert");
    assert_eq!(summary.inserted, 2);

    let a = store
        .claim_next(campaign, 10)
        .await
        .expect("claim")
        .expect("due");
    let b = store
        .claim_next(campaign, 10)
        .await
        .expect("claim")
        .expect("due");
    assert_ne!(a.record_id, b.record_id);
    assert!(
        store
            .claim_next(campaign, 10)
            .await
            .expect("claim")
            .is_none(),
        "both are dialing"
    );
    assert_eq!(a.attempt_no, 1);
    assert_eq!(
        a.fields.get("IDENTIFICATION_RECORD_ID").map(String::as_str),
        Some(a.record_id.as_str())
    );

    store
        .mark_success_point(a.attempt_id, 20)
        .await
        .expect("success point");
    store
        .finish_attempt(&a, &outcome("success", 30), NextStep::Final)
        .await
        .expect("finish");
    let status = store.campaign_status(campaign).await.expect("status");
    assert_eq!((status.records, status.done, status.dialing), (2, 1, 1));
    assert_eq!(status.statuses.get("success"), Some(&1));
    assert_eq!(status.success, 1);
    assert_eq!(status.attempts, 2);
}

#[tokio::test]
async fn a_retry_waits_for_its_time_and_dials_the_next_number() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 2).await;
    store
        .insert_records(
            campaign,
            &[record("A", &["+31612345678", "+31201234567"])],
            0,
        )
        .await
        .expect("insert");
    let first = store
        .claim_next(campaign, 0)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!(first.number, "+31612345678");
    let next = retry::next_step("busy", first.attempt_no, 2, 1000, 100);
    assert_eq!(next, NextStep::RetryAt(1100));
    store
        .finish_attempt(&first, &outcome("busy", 100), next)
        .await
        .expect("finish");

    assert!(
        store
            .claim_next(campaign, 1099)
            .await
            .expect("claim")
            .is_none(),
        "not due yet"
    );
    assert_eq!(store.next_due(campaign).await.expect("due"), Some(1100));
    let second = store
        .claim_next(campaign, 1100)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!(
        (second.attempt_no, second.number.as_str()),
        (2, "+31201234567")
    );
    let next = retry::next_step("busy", second.attempt_no, 2, 1000, 1200);
    assert_eq!(next, NextStep::Final);
    store
        .finish_attempt(&second, &outcome("busy", 1200), next)
        .await
        .expect("finish");
    assert_eq!(store.next_due(campaign).await.expect("due"), None);
    let finals = store.record_finals(campaign).await.expect("finals");
    assert_eq!(finals[0].final_status.as_deref(), Some("busy"));
    assert_eq!(finals[0].attempts, 2);
}

#[tokio::test]
async fn a_crash_leaves_no_attempt_to_dial_twice() {
    let dir = std::env::temp_dir().join(format!("dialcast-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("crash.db");
    let _ = std::fs::remove_file(&path);
    let (campaign, cut, reached) = {
        let store = SqliteStore::open(&path).await.expect("store");
        let campaign = setup(&store, 3).await;
        store
            .insert_records(
                campaign,
                &[
                    record("A", &["+31612345678"]),
                    record("B", &["+31612345679"]),
                ],
                0,
            )
            .await
            .expect("insert");
        let cut = store
            .claim_next(campaign, 0)
            .await
            .expect("claim")
            .expect("due");
        let reached = store
            .claim_next(campaign, 0)
            .await
            .expect("claim")
            .expect("due");
        store
            .mark_success_point(reached.attempt_id, 5)
            .await
            .expect("success");
        // The process dies here: neither attempt is finished.
        (campaign, cut, reached)
    };
    let store = SqliteStore::open(&path).await.expect("reopen");
    let rule = |status: &str, n: u32, max: u32| retry::next_step(status, n, max, 0, 50);
    assert_eq!(
        store.recover_interrupted(50, &rule).await.expect("recover"),
        2
    );
    assert_eq!(
        store.recover_interrupted(60, &rule).await.expect("recover"),
        0,
        "idempotent"
    );

    let finals = store.record_finals(campaign).await.expect("finals");
    let of = |id: &str| {
        finals
            .iter()
            .find(|f| f.record_id == id)
            .expect("record")
            .clone()
    };
    assert_eq!(
        of(&reached.record_id).final_status.as_deref(),
        Some("success")
    );
    assert_eq!(of(&cut.record_id).state, "pending");

    // The cut record gets a new attempt (number 2), never attempt 1 again.
    let again = store
        .claim_next(campaign, 60)
        .await
        .expect("claim")
        .expect("due");
    assert_eq!(again.record_id, cut.record_id);
    assert_eq!(again.attempt_no, 2);
    assert_ne!(again.attempt_id, cut.attempt_id);
    assert!(store
        .claim_next(campaign, 60)
        .await
        .expect("claim")
        .is_none());
    let rows = store.result_rows(campaign, 0, 1_000).await.expect("rows");
    let statuses: Vec<_> = rows
        .iter()
        .flat_map(|r| r.calls.iter().map(|c| c.status.clone()))
        .collect();
    assert!(
        statuses.contains(&"interrupted".to_string()),
        "{statuses:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn invalid_numbers_are_reported_without_a_call_and_duplicates_skipped() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 3).await;
    let first = store
        .insert_records(
            campaign,
            &[record("A", &[]), record("B", &["+31612345678"])],
            0,
        )
        .await
        .expect("insert");
    assert_eq!((first.inserted, first.invalid_number), (2, 1));
    let again = store
        .insert_records(
            campaign,
            &[
                record("B", &["+31612345678"]),
                record("C", &["+31612345670"]),
            ],
            0,
        )
        .await
        .expect("insert");
    assert_eq!((again.inserted, again.duplicates), (1, 1));

    let status = store.campaign_status(campaign).await.expect("status");
    assert_eq!(status.statuses.get("invalid_number"), Some(&1));
    assert_eq!(status.attempts, 0, "nothing was dialled");
    let rows = store.result_rows(campaign, 0, 1).await.expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].record_id, "A");
    assert_eq!(rows[0].calls[0].status, "invalid_number");
    let claimed = store
        .claim_next(campaign, 0)
        .await
        .expect("claim")
        .expect("due");
    assert_ne!(claimed.record_id, "A");
}

#[tokio::test]
async fn campaign_state_changes_are_stored() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 1).await;
    assert_eq!(
        store.campaign_by_name("c").await.expect("c").state,
        CampaignState::Idle
    );
    store
        .set_campaign_state(campaign, CampaignState::Running, 5)
        .await
        .expect("run");
    let running = store
        .campaigns_in_state(CampaignState::Running)
        .await
        .expect("list");
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].trunk.uri, "sip:127.0.0.1:5090");
    assert_eq!(running[0].settings.max_attempts, 1);
    assert!(store.campaign_by_name("nope").await.is_err());
    // Set-up again (a second import): same ids, the campaign keeps its settings.
    let org = store.ensure_organisation("Org", "NL").await.expect("org");
    let script = store
        .upsert_script(org, "s", "s.toml", "x")
        .await
        .expect("script");
    let trunk = running[0].trunk.clone();
    let trunk = store.upsert_trunk(org, &trunk).await.expect("trunk");
    let again = store
        .ensure_campaign(org, "c", script, trunk, &CampaignSettings::default())
        .await
        .expect("campaign");
    assert_eq!(again, campaign);
    assert_eq!(
        store
            .campaign_by_name("c")
            .await
            .expect("c")
            .settings
            .max_attempts,
        1
    );
    assert_eq!(
        store.campaign_by_name("c").await.expect("c").script_source,
        "x"
    );
}

#[test]
fn only_one_service_runs_on_a_database() {
    use dialcast_engine::service::ServeLock;
    let dir = std::env::temp_dir().join(format!("dialcast-lock-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("x.db");
    let first = ServeLock::acquire(&db).expect("first lock");
    let second = ServeLock::acquire(&db);
    let err = second.err().expect("second refused").to_string();
    assert!(err.contains("another `dialcast serve`"), "{err}");
    drop(first);
    assert!(ServeLock::acquire(&db).is_ok(), "free again");
    let _ = std::fs::remove_dir_all(&dir);
}
