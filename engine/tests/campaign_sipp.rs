//! Campaigns against SIPp (a peer nobody here wrote) instead of our own
//! callee farm: every record of a campaign dialled into a SIPp UAS ends in
//! the status the scenario implies, and SIPp passes each call (it saw the ACK
//! and our BYE, or a clean failure response).
//!
//! Run with `cargo test -p dialcast-engine --features interop --test
//! campaign_sipp`.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use common::campaigns::{any_hour, payment_reminder, Trunk, SCRIPT};
use common::sipp;
use common::{ports, Verdict, Workdir};
use dialcast_engine::campaign::callback::CallbackSettings;
use dialcast_engine::campaign::now_ms;
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::loopback::{start_engine, start_engine_with_inbound};
use dialcast_engine::results::Direction;
use dialcast_engine::store::{CampaignState, RecordFinal, SqliteStore, Store};
use tokio_util::sync::CancellationToken;

fn record(i: usize) -> ImportedRecord {
    let number = format!("+3161000{i:04}");
    let mut fields = BTreeMap::new();
    for (k, v) in [
        ("IDENTIFICATION_RECORD_ID", format!("S{i}")),
        ("PERSON_LANGUAGE", "en".to_string()),
        ("CONTACT_PHONE_1", number.clone()),
        ("INVOICE_AMOUNT_OPEN", format!("{}.25", 100 + i)),
        ("INVOICE_DUE_DATE", "2026-12-01".to_string()),
    ] {
        fields.insert(k.to_string(), v);
    }
    ImportedRecord {
        line: i as u64 + 2,
        record_id: format!("S{i}"),
        client_reference: None,
        script: SCRIPT.to_string(),
        fields,
        phones: vec![number],
        rejected_phones: Vec::new(),
        invalid_number: false,
    }
}

/// Runs a campaign of `count` records against `trunk` and returns how each
/// record ended.
async fn run_campaign(trunk: SocketAddr, count: usize) -> Vec<RecordFinal> {
    let records: Vec<_> = (0..count).map(record).collect();
    let store = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
    let campaign = payment_reminder(
        &store,
        "Test",
        None,
        Trunk {
            addr: trunk,
            max_cps: 10,
            max_channels: 10,
        },
        any_hour(1, 0, 10_000, false),
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
    let rtp = ports::block(200);
    let (engine, sip) = start_engine(Arc::clone(&store), (rtp, rtp + 199))
        .await
        .expect("engine");
    let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
    tokio::time::timeout(
        Duration::from_secs(90),
        engine.run_campaign(running, CancellationToken::new()),
    )
    .await
    .expect("finishes in time")
    .expect("runs");
    sip.shutdown();
    store.record_finals(campaign).await.expect("finals")
}

fn check_all(verdict: &mut Verdict, finals: &[RecordFinal], status: &str, success: bool) {
    for f in finals {
        verdict.check(
            f.final_status.as_deref() == Some(status) && f.success_point == success,
            || format!("{f:?}: expected {status}, success point {success}"),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_answered_by_sipp_hear_the_script_to_its_success_point() {
    sipp::require_sipp();
    let work = Workdir::new("campaign_sipp_answer");
    let mut server = sipp::uas(&work, "uas-200-echo-expect-bye.xml")
        .rtp_echo()
        .calls(6)
        .start();
    let finals = run_campaign(server.addr(), 6).await;
    let mut verdict = Verdict::new("campaign against a SIPp UAS that answers");
    check_all(&mut verdict, &finals, "success", true);
    let ended = server.wait(Duration::from_secs(30));
    server.check_passed(ended, &mut verdict);
    server.attach_logs(&mut verdict);
    verdict.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_refused_busy_by_sipp_end_busy_without_a_success_point() {
    sipp::require_sipp();
    let work = Workdir::new("campaign_sipp_busy");
    let mut server = sipp::uas(&work, "uas-486-busy.xml").calls(4).start();
    let finals = run_campaign(server.addr(), 4).await;
    let mut verdict = Verdict::new("campaign against a SIPp UAS that is busy");
    check_all(&mut verdict, &finals, "busy", false);
    let ended = server.wait(Duration::from_secs(30));
    server.check_passed(ended, &mut verdict);
    server.attach_logs(&mut verdict);
    verdict.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sipp_caller_calling_back_is_matched_to_its_record_and_hears_the_script() {
    sipp::require_sipp();
    let work = Workdir::new("campaign_sipp_callback");
    // The outbound attempt: SIPp refuses it busy.
    let mut busy = sipp::uas(&work, "uas-486-busy.xml").calls(1).start();
    let store = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
    let campaign = payment_reminder(
        &store,
        "Test",
        None,
        Trunk {
            addr: busy.addr(),
            max_cps: 10,
            max_channels: 10,
        },
        any_hour(1, 0, 10_000, false),
    )
    .await;
    let record = record(7);
    let number = record.phones[0].clone();
    store
        .insert_records(campaign, &[record], now_ms())
        .await
        .expect("records");
    store
        .set_campaign_state(campaign, CampaignState::Running, now_ms())
        .await
        .expect("running");
    let organisation = store
        .ensure_organisation("Test", "NL")
        .await
        .expect("organisation");
    let rtp = ports::block(200);
    let (engine, sip, mut inbound) =
        start_engine_with_inbound(Arc::clone(&store), (rtp, rtp + 199))
            .await
            .expect("engine");
    let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
    tokio::time::timeout(
        Duration::from_secs(60),
        engine.run_campaign(running, CancellationToken::new()),
    )
    .await
    .expect("finishes in time")
    .expect("runs");
    let mut verdict = Verdict::new("a SIPp caller calling back after a busy attempt");
    let ended = busy.wait(Duration::from_secs(30));
    busy.check_passed(ended, &mut verdict);

    // The callee calls back from SIPp's UAC.
    let answering = {
        let engine = Arc::clone(&engine);
        let settings = CallbackSettings {
            organisation,
            default_country: "NL".into(),
            match_days: 14,
        };
        tokio::spawn(async move {
            if let Some(call) = inbound.next().await {
                engine.answer_callback(call, &settings).await;
            }
        })
    };
    let mut caller = sipp::uac(
        &work,
        "uac-callback-from-number-expect-bye.xml",
        sip.local_addr(),
    )
    .set("caller", &number)
    .start();
    let ended = caller.wait(Duration::from_secs(90));
    caller.check_passed(ended, &mut verdict);
    tokio::time::timeout(Duration::from_secs(10), answering)
        .await
        .ok();
    let finals = store.record_finals(campaign).await.expect("finals");
    verdict.check(
        finals[0].final_status.as_deref() == Some("success") && finals[0].success_point,
        || format!("the callback ends the record as success: {:?}", finals[0]),
    );
    let rows = store
        .result_rows(campaign, 0, i64::MAX)
        .await
        .expect("rows");
    let calls: Vec<(Direction, String)> = rows[0]
        .calls
        .iter()
        .map(|c| (c.direction, c.status.clone()))
        .collect();
    verdict.check(
        calls
            == vec![
                (Direction::Out, "busy".to_string()),
                (Direction::In, "success".to_string()),
            ],
        || format!("the results show the busy call and the callback: {calls:?}"),
    );
    busy.attach_logs(&mut verdict);
    caller.attach_logs(&mut verdict);
    sip.shutdown();
    verdict.finish();
}
