//! The portal functions end to end through the router: the dashboard and
//! the statistics against the engine's own statistics for attempts made
//! through the engine's store, organisation scoping, roles, pause and
//! resume with the audit log, and the live stream with `Last-Event-ID`.
//! A fresh in-memory portal database and engine store per test.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use chrono::{TimeZone as _, Utc};
use dialcast_engine::campaign::schedule::{Candidate, DialRules};
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::service::{prepare_campaign, CampaignSetup};
use dialcast_engine::stats::{self, bucket_start, range, BUCKET_MS};
use dialcast_engine::store::{
    AttemptOutcome, CampaignSettings, CampaignState, ClaimResult, NextStep, OrganisationCalendar,
    ScheduleSettings, SqliteStore, StatsStore as _, Store as _, TrunkSettings,
};
use dialcast_portal_api::apikey::{self, NewKey, PlainKey};
use dialcast_portal_api::{accounts, db, router, AppState, EngineAccess, OrgId, Role};
use http_body_util::BodyExt;
use serde_json::Value;
use sqlx::SqlitePool;
use tower::ServiceExt;

const TZ: &str = "Europe/Amsterdam";
const MIN: i64 = 60_000;

/// 2026-12-06T10:02:00Z (11:02 in Amsterdam), in Unix seconds.
fn t0() -> i64 {
    Utc.with_ymd_and_hms(2026, 12, 6, 10, 2, 0)
        .unwrap()
        .timestamp()
}

struct App {
    db: SqlitePool,
    store: SqliteStore,
    router: Router,
    org_a: OrgId,
    org_b: OrgId,
}

fn record(id: &str, phone: Option<&str>) -> ImportedRecord {
    let mut fields = BTreeMap::new();
    fields.insert("IDENTIFICATION_RECORD_ID".to_string(), id.to_string());
    ImportedRecord {
        line: 2,
        record_id: id.to_string(),
        client_reference: None,
        script: "s".to_string(),
        fields,
        phones: phone.map(str::to_string).into_iter().collect(),
        rejected_phones: Vec::new(),
        invalid_number: phone.is_none(),
    }
}

impl App {
    async fn spawn() -> App {
        let db = db::open_in_memory().await.unwrap();
        let org_a = accounts::create_organisation(&db, "a", 0).await.unwrap();
        let org_b = accounts::create_organisation(&db, "b", 0).await.unwrap();
        let store = SqliteStore::open_in_memory().await.unwrap();
        let now = t0();
        let router = router(
            AppState::new(db.clone())
                .with_clock(Arc::new(move || now))
                .with_engine(EngineAccess::new(store.clone())),
        );
        App {
            db,
            store,
            router,
            org_a,
            org_b,
        }
    }

    /// A running campaign of the engine organisation `org` with `script`.
    async fn campaign(&self, org: &str, name: &str, script: &str) -> i64 {
        let id = prepare_campaign(
            &self.store,
            &CampaignSetup {
                organisation: org,
                default_country: "NL",
                calendar: &OrganisationCalendar::every_day(TZ),
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
        .unwrap();
        self.store
            .set_campaign_state(id, CampaignState::Running, 0)
            .await
            .unwrap();
        id
    }

    /// Imports `n` dialable records into `campaign` at `at` (ms).
    async fn import(&self, campaign: i64, prefix: &str, n: usize, at: i64) {
        let records: Vec<ImportedRecord> = (0..n)
            .map(|i| record(&format!("{prefix}{i}"), Some("+31201234567")))
            .collect();
        self.store
            .insert_records(campaign, &records, at)
            .await
            .unwrap();
    }

    /// Claims the next record of the (running) campaign and ends its
    /// attempt with `status` at `ended_at` (ms).
    async fn finish(&self, campaign: i64, status: &str, ended_at: i64) {
        let rules = DialRules::new(
            &OrganisationCalendar::every_day("UTC"),
            &ScheduleSettings::around_the_clock(),
        )
        .unwrap();
        let now = ended_at - 1000;
        let decide = |c: &Candidate<'_>| rules.decide(c, now);
        let ClaimResult::Claimed(claim) =
            self.store.claim_next(campaign, now, &decide).await.unwrap()
        else {
            panic!("nothing to claim in campaign {campaign}");
        };
        let outcome = AttemptOutcome {
            status: status.into(),
            ended_at,
            ..AttemptOutcome::default()
        };
        self.store
            .finish_attempt(&claim, &outcome, NextStep::Final)
            .await
            .unwrap();
    }

    async fn key(&self, org: OrgId, role: Role) -> PlainKey {
        let new = NewKey {
            name: format!("{role} key"),
            cidrs: Vec::new(),
        };
        apikey::create(&self.db, org, role, new, "cli", 0)
            .await
            .unwrap()
            .1
    }

    async fn call(&self, method: Method, uri: &str, key: &PlainKey) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("X-AUTH-TOKEN", key.expose())
            .body(Body::empty())
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, json)
    }

    async fn get(&self, uri: &str, key: &PlainKey) -> (StatusCode, Value) {
        self.call(Method::GET, uri, key).await
    }

    async fn post(&self, uri: &str, key: &PlainKey) -> (StatusCode, Value) {
        self.call(Method::POST, uri, key).await
    }

    /// Opens the live stream, resuming after `last` if given.
    async fn stream(&self, key: &PlainKey, last: Option<i64>) -> Sse {
        let mut req = Request::builder()
            .uri("/api/v1/events")
            .header("X-AUTH-TOKEN", key.expose());
        if let Some(id) = last {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let res = self
            .router
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            res.headers()["content-type"].to_str().unwrap(),
            "text/event-stream"
        );
        Sse {
            body: res.into_body(),
            buf: String::new(),
        }
    }
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
struct SseEvent {
    id: i64,
    event: String,
    data: Value,
}

struct Sse {
    body: Body,
    buf: String,
}

impl Sse {
    /// The next event (comments skipped), or `None` if none comes within `wait`.
    async fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse::<i64>().unwrap());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                match id {
                    Some(id) => {
                        return Some(SseEvent {
                            id,
                            event,
                            data: serde_json::from_str(&data).unwrap(),
                        })
                    }
                    None => continue, // a keep-alive comment
                }
            }
            let frame = tokio::time::timeout_at(deadline, self.body.frame())
                .await
                .ok()??
                .unwrap();
            if let Ok(bytes) = frame.into_data() {
                self.buf.push_str(std::str::from_utf8(&bytes).unwrap());
            }
        }
    }
}

/// Organisation a: scripts s1 (two campaigns) and s2; organisation b:
/// script s1 too (same name, other organisation). Attempts in several
/// buckets and colours, today and yesterday. Returns a's campaign ids.
async fn fill(app: &App) -> (i64, i64, i64, i64) {
    let now = t0() * 1000;
    let a1 = app.campaign("a", "a1", "s1").await;
    let a2 = app.campaign("a", "a2", "s1").await;
    let a3 = app.campaign("a", "a3", "s2").await;
    let b1 = app.campaign("b", "b1", "s1").await;
    // Yesterday's imports (local), then today's, one invalid number.
    app.import(a1, "y", 2, now - 21 * 60 * MIN).await;
    app.import(a1, "r", 6, now - 6 * 60 * MIN).await;
    app.import(a2, "r", 3, now - 6 * 60 * MIN).await;
    app.import(a3, "r", 2, now - 6 * 60 * MIN).await;
    app.store
        .insert_records(a3, &[record("bad", None)], now - 30_000)
        .await
        .unwrap();
    app.import(b1, "b", 5, now - 6 * 60 * MIN).await;
    // Yesterday (15:02 local on the 5th).
    app.finish(a1, "success", now - 20 * 60 * MIN).await;
    app.finish(a1, "busy", now - 20 * 60 * MIN + MIN).await;
    // Today, outside the 4 hours.
    app.finish(a1, "success", now - 5 * 60 * MIN).await;
    // Inside: the current bucket, 7 and 30 minutes ago.
    app.finish(a1, "success", now - MIN).await;
    app.finish(a2, "no_answer", now - MIN).await;
    app.finish(a1, "busy", now - 7 * MIN).await;
    app.finish(a2, "success", now - 7 * MIN).await;
    app.finish(a3, "failed", now - 30 * MIN).await;
    // Organisation b, in the same buckets: never seen by a.
    for i in 0..5 {
        app.finish(b1, "success", now - (i + 1) * MIN).await;
    }
    (a1, a2, a3, b1)
}

#[tokio::test]
async fn the_dashboard_equals_the_engines_statistics_of_the_own_organisation() {
    let app = App::spawn().await;
    let (a1, a2, a3, _) = fill(&app).await;
    let key = app.key(app.org_a, Role::Dashboard).await;
    let (status, body) = app.get("/api/v1/dashboard", &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["time_zone"], TZ);

    let now = t0() * 1000;
    let buckets = body["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 48);
    assert_eq!(buckets[47]["start_ms"], bucket_start(now));
    assert_eq!(buckets[0]["start_ms"], bucket_start(now) - 47 * BUCKET_MS);
    // What the engine's own buckets say, summed over a's campaigns.
    for b in buckets {
        let start = b["start_ms"].as_i64().unwrap();
        let mut sum = stats::Counters::default();
        for c in [a1, a2, a3] {
            for (_, counters) in app
                .store
                .stats_buckets(c, start, start + BUCKET_MS)
                .await
                .unwrap()
            {
                sum.merge(&counters);
            }
        }
        for (field, n) in [
            ("attempts", sum.attempts),
            ("green", sum.green),
            ("yellow", sum.yellow),
            ("red", sum.red),
            ("other", sum.other),
        ] {
            assert_eq!(b[field], n, "{field} of bucket {start}");
        }
    }
    // And by hand: the current bucket has a's success and no_answer (not
    // b's five successes), plus the invalid number imported 30 s ago.
    let current = &buckets[47];
    assert_eq!(
        (
            &current["green"],
            &current["yellow"],
            &current["red"],
            &current["attempts"]
        ),
        (
            &Value::from(1),
            &Value::from(1),
            &Value::from(1),
            &Value::from(3)
        )
    );
    let total: u64 = buckets
        .iter()
        .map(|b| b["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 6, "five attempts and one invalid number in 4 hours");

    // Today (Amsterdam): 11 dialable + 1 invalid voice records imported,
    // 6 attempts plus the invalid number ended, every record final.
    let today = &body["today"];
    assert_eq!(today["day"], "2026-12-06");
    assert_eq!(today["records"]["voice"], 12);
    assert_eq!(today["records"]["sms"], 0);
    assert_eq!(today["attempts"], 7);
    assert_eq!(today["voice_completed"], 7);

    let scripts = body["scripts"].as_array().unwrap();
    let names: Vec<&str> = scripts
        .iter()
        .map(|s| s["script"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["s1", "s2"]);
    assert_eq!(scripts[0]["voice"], "active");
    assert_eq!(scripts[0]["campaigns"].as_array().unwrap().len(), 2);

    // Organisation b sees only its own campaign.
    let key_b = app.key(app.org_b, Role::Dashboard).await;
    let (_, body_b) = app.get("/api/v1/dashboard", &key_b).await;
    let scripts_b = body_b["scripts"].as_array().unwrap();
    assert_eq!(scripts_b.len(), 1);
    assert_eq!(scripts_b[0]["campaigns"][0]["name"], "b1");
    let total_b: u64 = body_b["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["green"].as_u64().unwrap())
        .sum();
    assert_eq!(total_b, 5);
}

#[tokio::test]
async fn an_organisation_without_engine_data_gets_empty_results() {
    let app = App::spawn().await;
    let lonely = accounts::create_organisation(&app.db, "nobody", 0)
        .await
        .unwrap();
    fill(&app).await;
    let key = app.key(lonely, Role::Manager).await;
    let (status, body) = app.get("/api/v1/dashboard", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scripts"], Value::Array(vec![]));
    assert!(body["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|b| b["attempts"] == 0));
    let (status, body) = app.get("/api/v1/statistics", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["campaigns"], Value::Array(vec![]));
    let (status, _) = app.post("/api/v1/scripts/s1/pause", &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// The engine's own reports (as `dialcast stats --json` prints them).
async fn reports(
    store: &SqliteStore,
    range: range::Range,
    tz: chrono_tz::Tz,
    names: &[&str],
) -> Value {
    let mut out = Vec::new();
    for name in names {
        let c = store.campaign_by_name(name).await.unwrap();
        let r = stats::campaign_report(store, &c, range, tz, false)
            .await
            .unwrap();
        out.push(serde_json::to_value(r).unwrap());
    }
    Value::Array(out)
}

#[tokio::test]
async fn statistics_equal_the_engines_campaign_reports() {
    let app = App::spawn().await;
    let (a1, a2, a3, _) = fill(&app).await;
    let key = app.key(app.org_a, Role::Dashboard).await;
    let tz: chrono_tz::Tz = TZ.parse().unwrap();
    let now = Utc.timestamp_opt(t0(), 0).unwrap();
    let yesterday = range::day_range(range::yesterday(now, tz), tz).unwrap();
    let today = range::day_range(range::today(now, tz), tz).unwrap();

    assert!(a1 < a2 && a2 < a3);

    let (status, body) = app.get("/api/v1/statistics", &key).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["from_ms"], yesterday.from);
    assert_eq!(
        body["campaigns"],
        reports(&app.store, yesterday, tz, &["a1", "a2", "a3"]).await
    );
    // Yesterday a1 had a success and a busy: 50 % delivered.
    assert_eq!(body["campaigns"][0]["delivered"]["count"], 1);
    assert_eq!(body["campaigns"][0]["delivered"]["percent"], 50.0);

    let (_, body) = app
        .get(
            "/api/v1/statistics?period=custom&from=2026-12-06&to=2026-12-07&script=s1",
            &key,
        )
        .await;
    assert_eq!(
        body["campaigns"],
        reports(&app.store, today, tz, &["a1", "a2"]).await
    );
    assert_eq!(body["campaigns"][0]["attempts"], 3);

    let (status, body) = app.get("/api/v1/statistics?period=day_before", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["campaigns"][0]["attempts"], 0);

    for bad in [
        "/api/v1/statistics?period=custom",
        "/api/v1/statistics?period=custom&from=2026-12-07&to=2026-12-06",
        "/api/v1/statistics?period=custom&from=2020-01-01&to=2026-01-01",
        "/api/v1/statistics?period=tomorrow",
    ] {
        let (status, body) = app.get(bad, &key).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["type"], "https://dialcast.dev/problems/bad-request");
    }
    let (status, _) = app.get("/api/v1/statistics?script=nope", &key).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn roles_gate_the_functions_and_other_organisations_scripts_are_not_found() {
    let app = App::spawn().await;
    fill(&app).await;
    let normal = app.key(app.org_a, Role::Normal).await;
    let dashboard = app.key(app.org_a, Role::Dashboard).await;
    let scheduler = app.key(app.org_a, Role::Scheduler).await;
    let other = app.key(app.org_b, Role::Manager).await;
    for uri in ["/api/v1/dashboard", "/api/v1/statistics"] {
        assert_eq!(
            app.get(uri, &normal).await.0,
            StatusCode::FORBIDDEN,
            "{uri}"
        );
        assert_eq!(app.get(uri, &dashboard).await.0, StatusCode::OK, "{uri}");
    }
    let req = Request::builder()
        .uri("/api/v1/events")
        .header("X-AUTH-TOKEN", normal.expose())
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    for action in ["pause", "resume", "forwarding/pause", "forwarding/resume"] {
        let uri = format!("/api/v1/scripts/s2/{action}");
        for key in [&normal, &dashboard] {
            let (status, body) = app.post(&uri, key).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{uri}");
            assert_eq!(body["type"], "https://dialcast.dev/problems/forbidden");
        }
        // b has a script s1 of its own, but not s2: not found, not forbidden.
        assert_eq!(
            app.post(&uri, &other).await.0,
            StatusCode::NOT_FOUND,
            "{uri}"
        );
    }
    // b pausing "s1" pauses b's s1, never a's.
    let (status, body) = app.post("/api/v1/scripts/s1/pause", &other).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for name in ["a1", "a2"] {
        let c = app.store.campaign_by_name(name).await.unwrap();
        assert_eq!(c.state, CampaignState::Running, "{name}");
    }
    let (status, body) = app.post("/api/v1/scripts/s2/pause", &scheduler).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn pause_and_resume_change_the_store_and_are_audited() {
    let app = App::spawn().await;
    fill(&app).await;
    let scheduler = app.key(app.org_a, Role::Scheduler).await;
    let (status, body) = app.post("/api/v1/scripts/s1/pause", &scheduler).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["voice"], "paused");
    for name in ["a1", "a2"] {
        let c = app.store.campaign_by_name(name).await.unwrap();
        assert_eq!(c.state, CampaignState::Paused, "{name}");
        assert_eq!(c.paused_at, Some(t0() * 1000));
    }
    // Another script and organisation untouched.
    let a3 = app.store.campaign_by_name("a3").await.unwrap();
    assert_eq!(a3.state, CampaignState::Running);
    let b1 = app.store.campaign_by_name("b1").await.unwrap();
    assert_eq!(b1.state, CampaignState::Running);

    let audit: Vec<(i64, String, String, String, String)> = sqlx::query_as(
        "SELECT org_id, actor, action, target, detail FROM portal_audit_log \
         WHERE action LIKE 'script.%' ORDER BY id",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, app.org_a.0);
    assert!(audit[0].1.starts_with("apikey:"), "{:?}", audit[0]);
    assert_eq!(
        (&audit[0].2[..], &audit[0].3[..], &audit[0].4[..]),
        ("script.pause", "script:s1", "campaigns: a1, a2")
    );

    let (status, body) = app.post("/api/v1/scripts/s1/resume", &scheduler).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["voice"], "active");
    // Resuming what runs is refused, as on the command line.
    let (status, body) = app.post("/api/v1/scripts/s1/resume", &scheduler).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["type"], "https://dialcast.dev/problems/wrong-state");

    let (status, body) = app
        .post("/api/v1/scripts/s2/forwarding/pause", &scheduler)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["forwarding_paused"], true);
    assert!(
        app.store
            .campaign_by_name("a3")
            .await
            .unwrap()
            .forwarding_paused
    );
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM portal_audit_log WHERE action LIKE 'script.%'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(
        n, 3,
        "pause, resume, pause-forwarding; not the refused resume"
    );

    // A finished script cannot be paused.
    app.store
        .set_campaign_state(a3.id, CampaignState::Finished, 0)
        .await
        .unwrap();
    assert_eq!(
        app.post("/api/v1/scripts/s2/pause", &scheduler).await.0,
        StatusCode::CONFLICT
    );
}

#[tokio::test]
async fn the_live_stream_sends_buckets_and_states_and_resumes_without_loss() {
    let app = App::spawn().await;
    let now = t0() * 1000;
    let a1 = app.campaign("a", "a1", "s1").await;
    let b1 = app.campaign("b", "b1", "s1").await;
    app.import(a1, "r", 6, now - 60 * MIN).await;
    app.import(b1, "r", 3, now - 60 * MIN).await;
    let dashboard = app.key(app.org_a, Role::Dashboard).await;
    let scheduler = app.key(app.org_a, Role::Scheduler).await;
    let wait = Duration::from_secs(5);

    // Connect where the dashboard read.
    let (_, body) = app.get("/api/v1/dashboard", &dashboard).await;
    let from = body["last_event_id"].as_i64().unwrap();
    let mut sse = app.stream(&dashboard, Some(from)).await;

    // Live: one attempt ends; another organisation's never arrives.
    app.finish(b1, "success", now - 2 * MIN).await;
    app.finish(a1, "busy", now - 2 * MIN).await;
    let first = sse.next(wait).await.expect("a live bucket update");
    assert_eq!(first.event, "bucket");
    assert!(first.id > from);
    assert_eq!(first.data["campaign"], "a1");
    assert_eq!(first.data["bucket_start"], bucket_start(now - 2 * MIN));
    assert_eq!(first.data["counters"]["yellow"], 1);
    assert_eq!(first.data["counters"]["attempts"], 1);
    assert_eq!(sse.next(Duration::from_millis(1500)).await, None);
    drop(sse);

    // While disconnected: two buckets change (one of them twice), the
    // script is paused and resumed, and b keeps calling.
    app.finish(a1, "success", now - 12 * MIN).await;
    app.finish(b1, "success", now - 12 * MIN).await;
    app.finish(a1, "invalid_number", now - 2 * MIN).await;
    app.finish(a1, "success", now - 12 * MIN).await;
    assert_eq!(
        app.post("/api/v1/scripts/s1/pause", &scheduler).await.0,
        StatusCode::OK
    );
    assert_eq!(
        app.post("/api/v1/scripts/s1/resume", &scheduler).await.0,
        StatusCode::OK
    );

    let mut sse = app.stream(&dashboard, Some(first.id)).await;
    let mut got = Vec::new();
    while let Some(e) = sse.next(Duration::from_millis(2500)).await {
        got.push(e);
    }
    let summary: Vec<(String, Value)> = got
        .iter()
        .map(|e| {
            let what = if e.event == "bucket" {
                e.data["bucket_start"].clone()
            } else {
                e.data["state"].clone()
            };
            (e.event.clone(), what)
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("bucket".to_string(), bucket_start(now - 2 * MIN).into()),
            ("bucket".to_string(), bucket_start(now - 12 * MIN).into()),
            ("script_state".to_string(), "paused".into()),
            ("script_state".to_string(), "running".into()),
        ],
        "{got:#?}"
    );
    assert!(got.windows(2).all(|w| w[0].id < w[1].id), "{got:#?}");
    assert!(got[0].id > first.id);
    assert!(got.iter().all(|e| e.data["campaign"] == "a1"));
    // Each bucket as the store has it now.
    for e in &got[..2] {
        let start = e.data["bucket_start"].as_i64().unwrap();
        let update = app.store.bucket_update(a1, start).await.unwrap();
        assert_eq!(
            e.data["counters"],
            serde_json::to_value(&update.counters).unwrap()
        );
    }
    assert_eq!(got[0].data["counters"]["attempts"], 2);
    assert_eq!(got[1].data["counters"]["green"], 2);

    // Resuming from the last one gives nothing again.
    let last = got.last().unwrap().id;
    let mut sse = app.stream(&dashboard, Some(last)).await;
    assert_eq!(sse.next(Duration::from_millis(1500)).await, None);
    // A pause through the portal wakes a connected stream (it need not
    // wait for its next poll).
    app.post("/api/v1/scripts/s1/pause", &scheduler).await;
    let paused = sse
        .next(Duration::from_millis(600))
        .await
        .expect("state change");
    assert_eq!(paused.event, "script_state");
    assert_eq!(paused.data["state"], "paused");
    assert!(paused.id > last);
}

#[tokio::test]
async fn a_bad_last_event_id_is_a_problem() {
    let app = App::spawn().await;
    let key = app.key(app.org_a, Role::Dashboard).await;
    let req = Request::builder()
        .uri("/api/v1/events")
        .header("X-AUTH-TOKEN", key.expose())
        .header("Last-Event-ID", "yesterday")
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn without_the_engine_the_functions_answer_503() {
    let db = db::open_in_memory().await.unwrap();
    let org = accounts::create_organisation(&db, "a", 0).await.unwrap();
    let (_, key) = apikey::create(
        &db,
        org,
        Role::Manager,
        NewKey {
            name: String::new(),
            cidrs: Vec::new(),
        },
        "cli",
        0,
    )
    .await
    .unwrap();
    let router = router(AppState::new(db));
    let req = Request::builder()
        .uri("/api/v1/dashboard")
        .header("X-AUTH-TOKEN", key.expose())
        .body(Body::empty())
        .unwrap();
    let res = router.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn after_a_pause_over_the_api_no_attempt_is_claimed() {
    let app = App::spawn().await;
    let now = t0() * 1000;
    let a1 = app.campaign("a", "a1", "s1").await;
    app.import(a1, "r", 3, now - MIN).await;
    let scheduler = app.key(app.org_a, Role::Scheduler).await;
    assert_eq!(
        app.post("/api/v1/scripts/s1/pause", &scheduler).await.0,
        StatusCode::OK
    );
    // The engine's next claim, in this process or another, sees the pause
    // inside its write transaction: no new call starts.
    let rules = DialRules::new(
        &OrganisationCalendar::every_day("UTC"),
        &ScheduleSettings::around_the_clock(),
    )
    .unwrap();
    let decide = |c: &Candidate<'_>| rules.decide(c, now);
    assert!(matches!(
        app.store.claim_next(a1, now, &decide).await.unwrap(),
        ClaimResult::NotRunning
    ));
    assert_eq!(
        app.post("/api/v1/scripts/s1/resume", &scheduler).await.0,
        StatusCode::OK
    );
    assert!(matches!(
        app.store.claim_next(a1, now, &decide).await.unwrap(),
        ClaimResult::Claimed(_)
    ));
}

#[tokio::test]
async fn a_session_pauses_only_with_the_csrf_header() {
    use dialcast_portal_api::session::{self, Stage, Token, CSRF_HEADER, SECURE_COOKIE_NAME};
    let app = App::spawn().await;
    app.campaign("a", "a1", "s1").await;
    let (user, _) = accounts::create_user(
        &app.db,
        app.org_a,
        "op@example.org",
        Role::Scheduler,
        "cli",
        t0(),
    )
    .await
    .unwrap();
    let mut tx = app.db.begin().await.unwrap();
    accounts::set_password(&mut tx, user, "a long enough passphrase 1", t0())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let token = Token::generate();
    session::create(&app.db, &token, user, app.org_a, Stage::Active, t0())
        .await
        .unwrap();
    let pause = |csrf: bool| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/scripts/s1/pause")
            .header("cookie", format!("{SECURE_COOKIE_NAME}={}", token.expose()));
        if csrf {
            req = req.header(CSRF_HEADER, "1");
        }
        app.router.clone().oneshot(req.body(Body::empty()).unwrap())
    };
    let res = pause(false).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        body["type"],
        "https://dialcast.dev/problems/csrf-header-missing"
    );
    assert_eq!(
        app.store.campaign_by_name("a1").await.unwrap().state,
        CampaignState::Running
    );
    assert_eq!(pause(true).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        app.store.campaign_by_name("a1").await.unwrap().state,
        CampaignState::Paused
    );
    let actor: String =
        sqlx::query_scalar("SELECT actor FROM portal_audit_log WHERE action = 'script.pause'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(actor, format!("user:{user}"));
}

/// In the engine's process the statistics feed wakes the stream: a
/// committed bucket arrives sooner than the stream's next poll.
#[tokio::test]
async fn the_engines_stats_feed_wakes_the_stream() {
    use dialcast_engine::stats::StatsFeed;
    let db = db::open_in_memory().await.unwrap();
    let org = accounts::create_organisation(&db, "a", 0).await.unwrap();
    let store = SqliteStore::open_in_memory().await.unwrap();
    let feed = StatsFeed::default();
    let now = t0();
    let app = App {
        router: router(
            AppState::new(db.clone())
                .with_clock(Arc::new(move || now))
                .with_engine(EngineAccess::new(store.clone()).with_stats_feed(feed.clone())),
        ),
        db,
        store,
        org_a: org,
        org_b: org,
    };
    let a1 = app.campaign("a", "a1", "s1").await;
    app.import(a1, "r", 2, t0() * 1000 - MIN).await;
    let key = app.key(org, Role::Dashboard).await;
    let mut sse = app.stream(&key, None).await;
    // As the engine does after committing an attempt's end. The first
    // update may come by poll; the stream waits a whole poll after each
    // read, so the second, committed right after the first arrived, comes
    // this soon only because the feed woke it.
    for (status, colour) in [("success", "green"), ("busy", "yellow")] {
        let at = t0() * 1000 - 1000;
        app.finish(a1, status, at).await;
        feed.publish(app.store.bucket_update(a1, at).await.unwrap());
        let e = sse
            .next(Duration::from_millis(600))
            .await
            .expect("woken by the feed");
        assert_eq!(e.event, "bucket");
        assert_eq!(e.data["counters"][colour], 1);
    }
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn openapi_documents_the_functions_and_every_reference_resolves() {
    let doc = serde_json::to_value(dialcast_portal_api::openapi()).unwrap();
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/dashboard", "get"),
        ("/api/v1/statistics", "get"),
        ("/api/v1/events", "get"),
        ("/api/v1/scripts/{script}/pause", "post"),
        ("/api/v1/scripts/{script}/resume", "post"),
        ("/api/v1/scripts/{script}/forwarding/pause", "post"),
        ("/api/v1/scripts/{script}/forwarding/resume", "post"),
    ] {
        let op = &paths[path][method];
        assert!(op.is_object(), "{method} {path} missing");
        assert!(op["responses"]["403"].is_object(), "{path}: 403");
        assert!(op["responses"]["401"].is_object(), "{path}: 401");
    }
    assert!(
        paths["/api/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
            .is_object()
    );
    let params: Vec<&str> = paths["/api/v1/statistics"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(params, ["period", "from", "to", "script"]);
    let mut all = Vec::new();
    refs(&doc, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap();
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{r} does not resolve"
        );
    }
}
