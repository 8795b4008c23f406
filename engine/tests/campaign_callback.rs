//! People who call back after a missed call, over real SIP and RTP on
//! loopback: a record whose callee did not answer is matched when that
//! number calls the engine, hears the script's inbound flow, and, having
//! heard the point of success, is done as `success` and never dialled again;
//! the callback is in the results as an inbound call. A number the engine
//! never dialled is refused.

mod common;

use common::campaigns::{any_hour, payment_reminder, reminder_record, Trunk, SCRIPT};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use dialcast_engine::campaign::callback::CallbackSettings;
use dialcast_engine::campaign::now_ms;
use dialcast_engine::loopback::start_engine_with_inbound;
use dialcast_engine::results::Direction;
use dialcast_engine::single_call::{self, DialOptions};
use dialcast_engine::store::{CampaignState, SqliteStore, StatsStore as _, Store};
use dialcast_loadtest::farm::{numbers, Farm, FarmConfig, Mix};
use dialcast_media::{MediaConfig, MediaEngine};
use dialcast_sip::{SipConfig, SipEndpoint, Transport};
use tokio_util::sync::CancellationToken;

/// Calls the engine from `caller` and listens until the engine hangs up.
async fn call_engine(
    engine_sip: SocketAddr,
    caller: &str,
) -> dialcast_engine::single_call::CallOutcome {
    let (endpoint, _inbound) = SipEndpoint::start(SipConfig {
        bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        tcp: false,
        ..SipConfig::default()
    })
    .await
    .expect("caller endpoint");
    let media = MediaEngine::start(MediaConfig {
        bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port_min: 54000,
        port_max: 54999,
        inactivity_timeout: Duration::from_secs(30),
        send_silence: true,
        metrics: true,
        ..MediaConfig::default()
    })
    .expect("caller media");
    let outcome = single_call::dial(
        &endpoint,
        &media,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        DialOptions {
            target: format!("sip:+31201234567@{engine_sip}"),
            transport: Transport::Udp,
            username: None,
            password: None,
            caller_id: Some(caller.to_string()),
            prompt: None,
            record: None,
            ring_timeout: Duration::from_secs(5),
            linger: Duration::from_secs(90),
            max_talk: Duration::from_secs(90),
        },
    )
    .await
    .expect("call");
    endpoint.shutdown();
    outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_is_matched_heard_and_ends_the_record() {
    let mix: Mix = "no_answer=1".parse().expect("mix");
    let dialled = numbers(&mix, 1, 9);
    let number = dialled[0].0.clone();
    let mut farm_config = FarmConfig::new(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
    farm_config.media.port_min = 55000;
    farm_config.media.port_max = 55999;
    let farm = Farm::start(farm_config).await.expect("farm");

    let store = Arc::new(SqliteStore::open_in_memory().await.expect("store"));
    let campaign = payment_reminder(
        &store,
        "Callbacks",
        None,
        Trunk {
            addr: farm.local_addr(),
            max_cps: 10,
            max_channels: 10,
        },
        // The retry would come in an hour: the callback comes first.
        any_hour(3, 3_600_000, 2_000, false),
    )
    .await;
    store
        .insert_records(campaign, &[reminder_record(1, Some(&number))], now_ms())
        .await
        .expect("record");
    store
        .set_campaign_state(campaign, CampaignState::Running, now_ms())
        .await
        .expect("running");
    let organisation = store
        .ensure_organisation("Callbacks", "NL")
        .await
        .expect("organisation");
    let (engine, sip, mut inbound) = start_engine_with_inbound(Arc::clone(&store), (56000, 56999))
        .await
        .expect("engine");
    let callbacks = Arc::new(CallbackSettings {
        organisation,
        default_country: "NL".into(),
        match_days: 14,
    });
    let answering = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            while let Some(call) = inbound.next().await {
                let engine = Arc::clone(&engine);
                let callbacks = Arc::clone(&callbacks);
                tokio::spawn(async move { engine.answer_callback(call, &callbacks).await });
            }
        })
    };

    // The first attempt rings out; the retry is an hour away.
    let cancel = CancellationToken::new();
    let dialling = {
        let engine = Arc::clone(&engine);
        let running = store.campaign_by_name(SCRIPT).await.expect("campaign");
        let cancel = cancel.clone();
        tokio::spawn(async move { engine.run_campaign(running, cancel).await })
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = store
            .result_rows(campaign, 0, i64::MAX)
            .await
            .expect("rows");
        if rows.first().is_some_and(|r| !r.calls.is_empty()) {
            assert_eq!(rows[0].calls[0].status, "no_answer");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no first attempt");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A stranger is refused; the callee calling back (in national format)
    // hears the inbound flow, to the end.
    let stranger = call_engine(sip.local_addr(), "+31687654321").await;
    assert_eq!(stranger.sip_code, 404, "{stranger:?}");
    let national = format!("0{}", &number[3..]);
    let back = call_engine(sip.local_addr(), &national).await;
    assert!(back.answered, "{back:?}");
    assert!(back.rtp_received > 100, "the script was heard: {back:?}");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let finals = loop {
        let finals = store.record_finals(campaign).await.expect("finals");
        if finals[0].state == "done" {
            break finals;
        }
        assert!(tokio::time::Instant::now() < deadline, "{finals:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(finals[0].final_status.as_deref(), Some("success"));
    assert!(finals[0].success_point);
    let rows = store
        .result_rows(campaign, 0, i64::MAX)
        .await
        .expect("rows");
    let calls = &rows[0].calls;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(calls[1].direction, Direction::In);
    assert_eq!(calls[1].status, "success");
    assert_eq!(calls[1].number, number);
    assert!(calls[1].success_point);
    // The 5-minute statistics: one outbound attempt, one matched callback.
    let totals = store
        .stats_totals(campaign, 0, i64::MAX)
        .await
        .expect("stats");
    assert_eq!(
        (totals.attempts, totals.inbound, totals.callbacks),
        (1, 1, 1),
        "{totals:?}"
    );
    assert_eq!(totals.statuses.get("no_answer"), Some(&1));
    // Nothing is left to dial.
    assert_eq!(store.next_due(campaign).await.expect("due"), None);
    cancel.cancel();
    dialling.await.expect("task").expect("run");
    assert_eq!(farm.stats().total().calls, 1, "dialled once");
    sip.shutdown();
    answering.abort();
    farm.shutdown().await;
}
