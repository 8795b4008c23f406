//! The SQLite store against a real (in-memory or temporary-file) database:
//! claims, outcomes, retries, crash recovery, duplicates and result rows.

mod common;

use std::collections::BTreeMap;

use common::campaigns::claim_any_hour;

use dialcast_engine::campaign::retry;
use dialcast_engine::campaign::schedule::{Candidate, DialRules};
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::store::{
    AttemptOutcome, CampaignSettings, CampaignState, ClaimBatch, ClaimResult, NextStep,
    OrganisationCalendar, ScheduleSettings, SqliteStore, Store,
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
    common::campaigns::running_campaign(store, max_attempts, 1000).await
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

    let a = claim_any_hour(&store, campaign, 10).await.expect("due");
    let b = claim_any_hour(&store, campaign, 10).await.expect("due");
    assert_ne!(a.record_id, b.record_id);
    assert!(
        claim_any_hour(&store, campaign, 10).await.is_none(),
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
    let first = claim_any_hour(&store, campaign, 0).await.expect("due");
    assert_eq!(first.number, "+31612345678");
    let next = retry::next_step("busy", first.attempt_no, 2, 1000, 100);
    assert_eq!(next, NextStep::RetryAt(1100));
    store
        .finish_attempt(&first, &outcome("busy", 100), next)
        .await
        .expect("finish");

    assert!(
        claim_any_hour(&store, campaign, 1099).await.is_none(),
        "not due yet"
    );
    assert_eq!(store.next_due(campaign).await.expect("due"), Some(1100));
    let second = claim_any_hour(&store, campaign, 1100).await.expect("due");
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
        let cut = claim_any_hour(&store, campaign, 0).await.expect("due");
        let reached = claim_any_hour(&store, campaign, 0).await.expect("due");
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
    let again = claim_any_hour(&store, campaign, 60).await.expect("due");
    assert_eq!(again.record_id, cut.record_id);
    assert_eq!(again.attempt_no, 2);
    assert_ne!(again.attempt_id, cut.attempt_id);
    assert!(claim_any_hour(&store, campaign, 60).await.is_none());
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
    let claimed = claim_any_hour(&store, campaign, 0).await.expect("due");
    assert_ne!(claimed.record_id, "A");
}

#[tokio::test]
async fn a_paused_campaign_claims_nothing_and_notes_when_it_resumed() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 1).await;
    store
        .insert_records(campaign, &[record("A", &["+31612345678"])], 0)
        .await
        .expect("insert");
    store
        .set_campaign_state(campaign, CampaignState::Paused, 10)
        .await
        .expect("pause");
    let rules = DialRules::new(
        &OrganisationCalendar::every_day("UTC"),
        &ScheduleSettings::around_the_clock(),
    )
    .expect("rules");
    let decide = |candidate: &Candidate<'_>| rules.decide(candidate, 11);
    assert!(matches!(
        store
            .claim_next(campaign, 11, &decide)
            .await
            .expect("claim"),
        ClaimResult::NotRunning
    ));
    let paused = store.campaign_by_name("c").await.expect("c");
    assert_eq!(paused.state, CampaignState::Paused);
    assert_eq!((paused.paused_at, paused.resumed_at), (Some(10), None));
    store
        .set_campaign_state(campaign, CampaignState::Running, 20)
        .await
        .expect("resume");
    let resumed = store.campaign_by_name("c").await.expect("c");
    assert_eq!(
        (resumed.paused_at, resumed.resumed_at),
        (Some(10), Some(20))
    );
    assert!(claim_any_hour(&store, campaign, 21).await.is_some());
    // Running again from running is not a resume.
    store
        .set_campaign_state(campaign, CampaignState::Running, 30)
        .await
        .expect("again");
    let again = store.campaign_by_name("c").await.expect("c");
    assert_eq!(again.resumed_at, Some(20));
    store
        .set_forwarding_paused(campaign, true, 40)
        .await
        .expect("forwarding");
    assert!(
        store
            .campaign_by_name("c")
            .await
            .expect("c")
            .forwarding_paused
    );
}

#[tokio::test]
async fn records_outside_their_window_wait_and_blocked_records_end() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 3).await;
    store
        .insert_records(campaign, &[record("A", &["+31612345678"])], 0)
        .await
        .expect("insert");
    let mut schedule = ScheduleSettings::around_the_clock();
    // 1970-01-01 was a Thursday. The organisation (UTC) calls 08:00-10:00;
    // the callee's number is Dutch, and 08:00-10:00 in Amsterdam (UTC+1 in
    // January) is 07:00-09:00 UTC: only 08:00-09:00 UTC suits both.
    schedule.windows = std::array::from_fn(|_| vec!["08:00-10:00".to_string()]);
    let rules = DialRules::new(&OrganisationCalendar::every_day("UTC"), &schedule).expect("rules");
    let now = 3_600_000; // 01:00
    let decide = |candidate: &Candidate<'_>| rules.decide(candidate, now);
    assert!(matches!(
        store
            .claim_next(campaign, now, &decide)
            .await
            .expect("claim"),
        ClaimResult::NothingDue
    ));
    assert_eq!(
        store.next_due(campaign).await.expect("due"),
        Some(8 * 3_600_000)
    );
    let late = 9 * 3_600_000 + 1;
    let decide = |candidate: &Candidate<'_>| rules.decide(candidate, late);
    assert!(matches!(
        store
            .claim_next(campaign, late, &decide)
            .await
            .expect("claim"),
        ClaimResult::NothingDue
    ));
    assert_eq!(
        store.next_due(campaign).await.expect("due"),
        Some(32 * 3_600_000),
        "too late in Amsterdam: tomorrow 08:00 UTC"
    );
    let finish = |_: &Candidate<'_>| dialcast_engine::campaign::schedule::Decision::Finish {
        status: "blocked",
    };
    assert!(matches!(
        store
            .claim_next(campaign, 32 * 3_600_000, &finish)
            .await
            .expect("claim"),
        ClaimResult::NothingDue
    ));
    let rows = store
        .result_rows(campaign, 0, i64::MAX)
        .await
        .expect("rows");
    assert_eq!(rows[0].calls[0].status, "blocked");
    assert_eq!(store.next_due(campaign).await.expect("due"), None);
}

#[tokio::test]
async fn a_batch_claims_due_records_in_order_skipping_those_it_defers_or_ends() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 3).await;
    let records: Vec<ImportedRecord> = (0..10)
        .map(|i| record(&format!("R{i}"), &[&format!("+3161234560{i}")]))
        .collect();
    store
        .insert_records(campaign, &records, 0)
        .await
        .expect("insert");
    // R1 is deferred to later, R2 ends blocked; the batch of four takes
    // the next due records in their order instead.
    let decide = |candidate: &Candidate<'_>| match candidate
        .fields
        .get("IDENTIFICATION_RECORD_ID")
        .map(String::as_str)
    {
        Some("R1") => dialcast_engine::campaign::schedule::Decision::Defer {
            until: 1_000_000,
            why: dialcast_engine::campaign::schedule::DeferCause::Closed,
        },
        Some("R2") => dialcast_engine::campaign::schedule::Decision::Finish { status: "blocked" },
        _ => dialcast_engine::campaign::schedule::Decision::Dial {
            number: candidate.phones[0].clone(),
        },
    };
    let ClaimBatch::Claimed(first) = store
        .claim_batch(campaign, 10, 4, &decide)
        .await
        .expect("claim")
    else {
        panic!("records are due");
    };
    let ids: Vec<&str> = first.iter().map(|c| c.record_id.as_str()).collect();
    assert_eq!(ids, ["R0", "R3", "R4", "R5"]);
    let attempt_ids: std::collections::BTreeSet<i64> = first.iter().map(|c| c.attempt_id).collect();
    assert_eq!(attempt_ids.len(), 4, "one attempt each");
    let status = store.campaign_status(campaign).await.expect("status");
    assert_eq!((status.dialing, status.done), (4, 1));

    // The rest: fewer are due than asked for.
    let ClaimBatch::Claimed(rest) = store
        .claim_batch(campaign, 11, 16, &decide)
        .await
        .expect("claim")
    else {
        panic!("records are due");
    };
    let ids: Vec<&str> = rest.iter().map(|c| c.record_id.as_str()).collect();
    assert_eq!(ids, ["R6", "R7", "R8", "R9"]);
    assert!(matches!(
        store
            .claim_batch(campaign, 12, 16, &decide)
            .await
            .expect("claim"),
        ClaimBatch::NothingDue
    ));

    // A paused campaign claims nothing, whatever the batch.
    store
        .set_campaign_state(campaign, CampaignState::Paused, 13)
        .await
        .expect("pause");
    assert!(matches!(
        store
            .claim_batch(campaign, 2_000_000, 16, &decide)
            .await
            .expect("claim"),
        ClaimBatch::NotRunning
    ));
}

#[tokio::test]
async fn campaign_state_changes_are_stored() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    let campaign = setup(&store, 1).await;
    store
        .set_campaign_state(campaign, CampaignState::Idle, 1)
        .await
        .expect("idle");
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

#[tokio::test]
async fn voicemail_forwards_and_queued_sms_reach_results_statistics_and_the_outbox() {
    use dialcast_engine::store::{ForwardStats, SmsRequest};
    let dir = std::env::temp_dir().join(format!("dialcast-store-voice-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("store.sqlite");
    let _ = std::fs::remove_file(&db);
    let store = SqliteStore::open(&db).await.expect("store");
    let campaign = setup(&store, 1).await;
    store
        .insert_records(
            campaign,
            &[
                record("M", &["+31612345670"]),
                record("F", &["+31612345671"]),
            ],
            0,
        )
        .await
        .expect("insert");
    let first = claim_any_hour(&store, campaign, 10).await.expect("due");
    let second = claim_any_hour(&store, campaign, 10).await.expect("due");
    let (machine, forwarded) = if first.record_id == "M" {
        (first, second)
    } else {
        (second, first)
    };
    let sms = store
        .queue_sms(
            &SmsRequest {
                attempt: forwarded.attempt_id,
                number: forwarded.number.clone(),
                template: "confirmation".into(),
                language: "en".into(),
                body: Ok("Thanks".into()),
            },
            20,
        )
        .await
        .expect("sms queued");
    assert!(sms > 0);
    // A template whose field was blank: stored as failed, with the reason,
    // and not waiting to be sent.
    let failed = store
        .queue_sms(
            &SmsRequest {
                attempt: forwarded.attempt_id,
                number: forwarded.number.clone(),
                template: "confirmation".into(),
                language: "en".into(),
                body: Err("template \"confirmation\" needs INVOICE_NUMBER".into()),
            },
            21,
        )
        .await
        .expect("failed sms stored");
    assert!(failed > sms);
    let unknown = SmsRequest {
        attempt: 9_999,
        number: "+31".into(),
        template: "t".into(),
        language: "en".into(),
        body: Ok("x".into()),
    };
    assert!(store.queue_sms(&unknown, 20).await.is_err());
    assert_eq!(
        store.sms_outbox_backlog().await.expect("backlog"),
        dialcast_engine::store::OutboxBacklog {
            depth: 1,
            oldest_at: Some(20),
        },
        "the one queued message, queued at 20"
    );
    store
        .finish_attempt(
            &machine,
            &AttemptOutcome {
                voicemail_left: true,
                amd: Some("machine".into()),
                ..outcome("voicemail", 30)
            },
            NextStep::Final,
        )
        .await
        .expect("finish");
    store
        .finish_attempt(
            &forwarded,
            &AttemptOutcome {
                answered_at: Some(15),
                forwarded: Some(ForwardStats {
                    to_centre_frames: 10,
                    to_callee_frames: 12,
                    bridged_ms: 240,
                    referred: false,
                }),
                ..outcome("forwarded", 40)
            },
            NextStep::Final,
        )
        .await
        .expect("finish");
    let rows = store.result_rows(campaign, 0, 1_000).await.expect("rows");
    let call = |id: &str| {
        rows.iter()
            .find(|r| r.record_id == id)
            .and_then(|r| r.calls.first().cloned())
            .expect("a call")
    };
    assert!(call("M").voicemail_left && !call("M").forwarded);
    assert!(call("F").forwarded && !call("F").voicemail_left);

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("read the store");
    type Row = (
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
    );
    let queued: Vec<Row> = sqlx::query_as(
        "SELECT number, template, language, state, body, error FROM sms_outbox ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .expect("outbox");
    let row = |state: &str, body: Option<&str>, error: Option<&str>| -> Row {
        (
            "+31612345671".to_string(),
            "confirmation".to_string(),
            "en".to_string(),
            state.to_string(),
            body.map(str::to_string),
            error.map(str::to_string),
        )
    };
    assert_eq!(
        queued,
        [
            row("queued", Some("Thanks"), None),
            row(
                "failed",
                None,
                Some("template \"confirmation\" needs INVOICE_NUMBER")
            )
        ]
    );
    let events: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM events WHERE kind LIKE 'sms_%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("events");
    assert_eq!(events, ["sms_queued", "sms_failed"]);
    // The SMS list shows the stored text, or why there is none, newest
    // first; none for a message queued before texts were stored.
    let org = store
        .campaign_by_name("c")
        .await
        .expect("campaign")
        .organisation;
    let list = || async {
        store
            .search_sms(
                org,
                &dialcast_engine::store::sqlite::sms::SmsFilter {
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .expect("sms list")
            .into_iter()
            .map(|m| (m.state, m.text, m.error))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list().await,
        [
            (
                "failed".to_string(),
                None,
                Some("template \"confirmation\" needs INVOICE_NUMBER".to_string())
            ),
            ("queued".to_string(), Some("Thanks".to_string()), None),
        ]
    );
    sqlx::query("UPDATE sms_outbox SET body = NULL")
        .execute(&pool)
        .await
        .expect("no body");
    assert!(list().await.iter().all(|(_, text, _)| text.is_none()));
    let counters: Vec<(String, i64)> = sqlx::query_as(
        "SELECT counter, SUM(n) FROM stats_counters WHERE counter IN ('forwards', 'voicemail_left') GROUP BY counter ORDER BY counter",
    )
    .fetch_all(&pool)
    .await
    .expect("counters");
    assert_eq!(
        counters,
        [
            ("forwards".to_string(), 1),
            ("voicemail_left".to_string(), 1)
        ]
    );
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn organisations_are_found_by_their_exact_name() {
    let store = SqliteStore::open_in_memory().await.expect("store");
    assert_eq!(
        store
            .organisation_by_name("Acme")
            .await
            .expect("read")
            .map(|o| o.id),
        None
    );
    let acme = store.ensure_organisation("Acme", "NL").await.expect("org");
    let demo = store.ensure_organisation("Demo", "BE").await.expect("org");
    assert_ne!(acme, demo);
    assert_eq!(
        store
            .organisation_by_name("Acme")
            .await
            .expect("read")
            .map(|o| o.id),
        Some(acme)
    );
    assert_eq!(
        store
            .organisation_by_name("Demo")
            .await
            .expect("read")
            .map(|o| o.id),
        Some(demo)
    );
    assert_eq!(
        store
            .organisation_by_name("acme")
            .await
            .expect("read")
            .map(|o| o.id),
        None
    );
    assert_eq!(
        store.organisation_names().await.expect("names"),
        ["Acme", "Demo"]
    );
}
