//! The scripts, voice insights and SMS functions end to end through the
//! router, on a real engine store with a campaign of a shipped example
//! script: the scripts list, settings read and changed (and what the
//! engine's store then reports), the flow, a prompt with HTTP Range, the
//! templates, insights against counters written through the engine's store,
//! and the SMS and e-mail lists with their filters and cursor. A fresh
//! in-memory portal database and engine store per test.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use chrono::{TimeZone as _, Utc};
use dialcast_engine::campaign::schedule::{Candidate, DialRules};
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::service::{prepare_campaign, CampaignSetup};
use dialcast_engine::stats::{bucket_start, Counters, BUCKET_MS};
use dialcast_engine::store::{
    AttemptOutcome, CampaignSettings, CampaignState, Claim, ClaimResult, EmailOutcome, NextStep,
    OrganisationCalendar, ScheduleSettings, SmsRequest, SqliteStore, StatsStore as _, Store as _,
    TrunkSettings,
};
use dialcast_portal_api::apikey::{self, NewKey, PlainKey};
use dialcast_portal_api::files::Engine;
use dialcast_portal_api::{accounts, db, router, AppState, EngineAccess, OrgId, Role};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::SqlitePool;
use tower::ServiceExt;

const TZ: &str = "Europe/Amsterdam";
const SCRIPT: &str = "notice_with_agent";

/// 2026-12-06T10:02:00Z (11:02 in Amsterdam), in Unix seconds.
fn t0() -> i64 {
    Utc.with_ymd_and_hms(2026, 12, 6, 10, 2, 0)
        .unwrap()
        .timestamp()
}

struct App {
    _dir: tempfile::TempDir,
    db: SqlitePool,
    store: SqliteStore,
    router: Router,
    org_a: OrgId,
    org_b: OrgId,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn example_source() -> String {
    std::fs::read_to_string(dialcast_engine::demo::examples_dir().join(format!("{SCRIPT}.toml")))
        .unwrap()
}

impl App {
    async fn spawn() -> App {
        let db = db::open_in_memory().await.unwrap();
        let org_a = accounts::create_organisation(&db, "a", 0).await.unwrap();
        let org_b = accounts::create_organisation(&db, "b", 0).await.unwrap();
        let store = SqliteStore::open_in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let now = t0();
        let router = router(
            AppState::new(db.clone())
                .with_clock(Arc::new(move || now))
                .with_engine(EngineAccess::new(store.clone()))
                .with_files(Engine::under(Arc::new(store.clone()), dir.path())),
        );
        App {
            _dir: dir,
            db,
            store,
            router,
            org_a,
            org_b,
        }
    }

    /// A running campaign of the engine organisation `org` with the
    /// example script (its source as shipped) named `script`.
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
                script_source: &example_source(),
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

    async fn import(&self, campaign: i64, prefix: &str, n: usize, at: i64) {
        self.import_with(campaign, prefix, n, at, &[]).await;
    }

    /// Imports `n` records `<prefix><i>` with `extra` fields besides their
    /// RECORD_ID (`{i}` in a value becomes the record's number).
    async fn import_with(
        &self,
        campaign: i64,
        prefix: &str,
        n: usize,
        at: i64,
        extra: &[(&str, &str)],
    ) {
        let records: Vec<ImportedRecord> = (0..n)
            .map(|i| {
                let id = format!("{prefix}{i}");
                let mut fields = BTreeMap::new();
                fields.insert("IDENTIFICATION_RECORD_ID".to_string(), id.clone());
                for (key, value) in extra {
                    fields.insert((*key).to_string(), value.replace("{i}", &i.to_string()));
                }
                ImportedRecord {
                    line: 2,
                    record_id: id,
                    client_reference: None,
                    script: SCRIPT.to_string(),
                    fields,
                    phones: vec![format!("+3120123456{i}")],
                    rejected_phones: Vec::new(),
                    invalid_number: false,
                }
            })
            .collect();
        self.store
            .insert_records(campaign, &records, at)
            .await
            .unwrap();
    }

    /// Claims the next record and ends its attempt with `status` at
    /// `ended_at` (ms); returns the claim.
    async fn finish(&self, campaign: i64, status: &str, ended_at: i64) -> Claim {
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
            voicemail_left: status == "voicemail",
            ..AttemptOutcome::default()
        };
        self.store
            .finish_attempt(&claim, &outcome, NextStep::Final)
            .await
            .unwrap();
        claim
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

    async fn send(
        &self,
        method: Method,
        uri: &str,
        key: &PlainKey,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("X-AUTH-TOKEN", key.expose());
        for (n, v) in headers {
            req = req.header(*n, *v);
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply {
            status,
            headers,
            body,
        }
    }

    async fn get(&self, uri: &str, key: &PlainKey) -> Reply {
        self.send(Method::GET, uri, key, &[], None).await
    }

    async fn patch(&self, uri: &str, key: &PlainKey, body: Value) -> Reply {
        self.send(Method::PATCH, uri, key, &[], Some(body)).await
    }
}

#[tokio::test]
async fn the_list_shows_each_script_with_its_state_to_the_dashboard_role() {
    let app = App::spawn().await;
    app.campaign("a", "c1", SCRIPT).await;
    app.campaign("b", "c2", "other_script").await;
    let dashboard = app.key(app.org_a, Role::Dashboard).await;
    let r = app.get("/api/v1/scripts", &dashboard).await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["script"], SCRIPT);
    assert_eq!(list[0]["voice"], "active");
    assert_eq!(list[0]["campaigns"][0]["name"], "c1");
    let normal = app.key(app.org_a, Role::Normal).await;
    assert_eq!(
        app.get("/api/v1/scripts", &normal).await.status,
        StatusCode::FORBIDDEN
    );
    // The details are the manager's.
    let path = format!("/api/v1/scripts/{SCRIPT}/settings");
    assert_eq!(
        app.get(&path, &dashboard).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_manager_changes_settings_that_the_engine_store_then_reports() {
    let app = App::spawn().await;
    app.campaign("a", "c1", SCRIPT).await;
    app.campaign("b", "c2", SCRIPT).await;
    let manager = app.key(app.org_a, Role::Manager).await;
    let path = format!("/api/v1/scripts/{SCRIPT}/settings");

    let r = app.get(&path, &manager).await;
    assert_eq!(r.status, StatusCode::OK);
    let before = r.json();
    let defaults = CampaignSettings::default();
    assert_eq!(before["campaigns"][0]["campaign"], "c1");
    assert_eq!(
        before["campaigns"][0]["max_attempts"],
        defaults.max_attempts
    );
    assert_eq!(
        before["campaigns"][0]["retry_delay_s"],
        defaults.retry_delay_ms / 1000
    );
    assert_eq!(
        before["campaigns"][0]["schedule"]["windows"]["mon"][0],
        "00:00-24:00"
    );

    let r = app
        .patch(
            &path,
            &manager,
            json!({"max_attempts": 5, "retry_delay_s": 900}),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.json()["campaigns"][0]["max_attempts"], 5);
    let stored = app.store.campaign_by_name("c1").await.unwrap();
    assert_eq!(stored.settings.max_attempts, 5);
    assert_eq!(stored.settings.retry_delay_ms, 900_000);
    assert_eq!(stored.settings.ring_timeout_ms, defaults.ring_timeout_ms);
    // The other organisation's campaign of the same script name is untouched.
    let other = app.store.campaign_by_name("c2").await.unwrap();
    assert_eq!(other.settings, defaults);

    let audit = app.get("/api/v1/audit", &manager).await.json();
    assert_eq!(audit[0]["action"], "script.settings");
    assert_eq!(audit[0]["target"], format!("script:{SCRIPT}"));
    assert!(
        audit[0]["detail"]
            .as_str()
            .unwrap()
            .contains("max_attempts=5 retry_delay_s=900"),
        "{audit}"
    );

    // Out of range: 400 naming the field, nothing stored.
    for (body, field) in [
        (json!({"max_attempts": 0}), "max_attempts"),
        (json!({"retry_delay_s": 1e40}), "retry_delay_s"),
        (json!({"ring_timeout_s": -3}), "ring_timeout_s"),
        (json!({"max_call_s": "long"}), "max_call_s"),
        (json!({"amd": false}), "amd"),
    ] {
        let r = app.patch(&path, &manager, body.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/problem+json");
        let detail = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(field), "{body}: {detail}");
    }
    let stored = app.store.campaign_by_name("c1").await.unwrap();
    assert_eq!(stored.settings.max_attempts, 5);

    // Roles below manager are refused; another organisation's script is
    // not found.
    let file = app.key(app.org_a, Role::File).await;
    let r = app.patch(&path, &file, json!({"max_attempts": 2})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .patch(
            "/api/v1/scripts/nope/settings",
            &manager,
            json!({"max_attempts": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let manager_b = app.key(app.org_b, Role::Manager).await;
    app.store
        .upsert_script(
            app.store.ensure_organisation("b", "NL").await.unwrap(),
            "only_b",
            "only_b.toml",
            "",
        )
        .await
        .unwrap();
    let r = app.get("/api/v1/scripts/only_b/settings", &manager).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.get("/api/v1/scripts/only_b/settings", &manager_b).await;
    assert_eq!(r.status, StatusCode::OK);
    // A script without campaigns has no settings to change yet.
    let r = app
        .patch(
            "/api/v1/scripts/only_b/settings",
            &manager_b,
            json!({"max_attempts": 2}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_flow_and_templates_come_from_the_parsed_script() {
    let app = App::spawn().await;
    app.campaign("a", "c1", SCRIPT).await;
    let manager = app.key(app.org_a, Role::Manager).await;
    let r = app
        .get(&format!("/api/v1/scripts/{SCRIPT}/flow"), &manager)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let flow = r.json();
    assert_eq!(flow["source"], example_source());
    assert_eq!(flow["problems"], json!([]));
    assert_eq!(flow["flow"]["languages"], json!(["en", "nl"]));
    assert_eq!(
        flow["flow"]["steps"][0],
        json!({"step": "play", "prompt": "notice_intro"})
    );
    assert_eq!(flow["flow"]["steps"][3]["step"], "success_point");
    assert_eq!(
        flow["flow"]["steps"][4]["options"],
        json!({"1": "paid", "2": "agent"})
    );
    assert_eq!(
        flow["flow"]["blocks"]["agent"][1]["closed"],
        "call_back_later"
    );
    assert_eq!(flow["flow"]["has_success_point"], true);
    assert!(flow["flow"]["prompts"]
        .as_array()
        .unwrap()
        .contains(&json!("notice_menu")));

    let r = app
        .get(&format!("/api/v1/scripts/{SCRIPT}/templates"), &manager)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let t = r.json();
    assert_eq!(t["sms"][0]["name"], "payment_check_confirmation");
    assert_eq!(t["sms"][0]["channel"], "sms");
    assert_eq!(t["sms"][0]["languages"], json!(["en", "nl"]));
    assert_eq!(
        t["sms"][0]["texts"]["nl"],
        "Dank u. Wij controleren de betaling van factuur {INVOICE_NUMBER} en laten het u weten."
    );
    assert_eq!(t["sms"][0]["subjects"], json!({}));
    assert_eq!(t["email_template"], "overdue_notice");
    assert_eq!(t["email"][0]["name"], "overdue_notice");
    assert_eq!(
        t["email"][0]["subjects"]["en"],
        "Invoice {INVOICE_NUMBER} is overdue"
    );
    assert!(t["email"][0]["texts"]["en"]
        .as_str()
        .unwrap()
        .starts_with("Dear {PERSON_FIRST_NAME|customer},"));

    // A stored script that no longer loads: its source and why, no flow.
    let org = app.store.ensure_organisation("a", "NL").await.unwrap();
    app.store
        .upsert_script(org, "broken", "broken.toml", "name = \"broken\"\n")
        .await
        .unwrap();
    let r = app.get("/api/v1/scripts/broken/flow", &manager).await;
    assert_eq!(r.status, StatusCode::OK);
    let broken = r.json();
    assert_eq!(broken["flow"], Value::Null);
    assert!(!broken["problems"].as_array().unwrap().is_empty());
    let r = app.get("/api/v1/scripts/broken/templates", &manager).await;
    assert_eq!(r.status, StatusCode::OK);
    let broken = r.json();
    assert_eq!(broken["sms"], json!([]));
    assert!(!broken["problems"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_prompt_is_served_as_wav_with_ranges() {
    let app = App::spawn().await;
    app.campaign("a", "c1", SCRIPT).await;
    let manager = app.key(app.org_a, Role::Manager).await;
    let file = dialcast_scripts::default_audio_root().join("nl/notice_menu.wav");
    let whole = std::fs::read(&file).unwrap();
    let path = format!("/api/v1/scripts/{SCRIPT}/prompts/nl/notice_menu");

    let r = app.get(&path, &manager).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(r.body, whole);

    let r = app
        .send(
            Method::GET,
            &path,
            &manager,
            &[("Range", "bytes=0-99")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers[header::CONTENT_TYPE], "audio/wav");
    assert_eq!(
        r.headers[header::CONTENT_RANGE],
        format!("bytes 0-99/{}", whole.len())
    );
    assert_eq!(r.body, &whole[..100]);

    let past = format!("bytes={}-", whole.len() + 10);
    let r = app
        .send(Method::GET, &path, &manager, &[("Range", &past)], None)
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);

    // A segment the script speaks values from, `/` percent-encoded.
    let r = app
        .get(
            &format!("/api/v1/scripts/{SCRIPT}/prompts/en/say%2F7"),
            &manager,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        std::fs::read(dialcast_scripts::default_audio_root().join("en/say/7.wav")).unwrap()
    );
    // Clips the script does not play, languages it does not speak, files
    // outside the catalogue: not found.
    for uri in [
        format!("/api/v1/scripts/{SCRIPT}/prompts/nl/payment_intro"),
        format!("/api/v1/scripts/{SCRIPT}/prompts/de/notice_menu"),
        format!("/api/v1/scripts/{SCRIPT}/prompts/nl/..%2F..%2FLICENSE"),
        "/api/v1/scripts/nope/prompts/nl/notice_menu".to_owned(),
    ] {
        let r = app.get(&uri, &manager).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}");
    }
    let dashboard = app.key(app.org_a, Role::Dashboard).await;
    assert_eq!(
        app.get(&path, &dashboard).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn insights_match_the_counters_of_the_engine_store() {
    let app = App::spawn().await;
    let c1 = app.campaign("a", "c1", SCRIPT).await;
    let c2 = app.campaign("a", "c2", SCRIPT).await;
    let c3 = app.campaign("a", "c3", "second").await;
    let cb = app.campaign("b", "cb", SCRIPT).await;
    let now = t0() * 1000;
    let min = 60_000;
    for c in [c1, c2, c3, cb] {
        app.import(c, "r", 6, now - 10 * 3600 * 1000).await;
    }
    // c1: two in the current bucket, one 3 hours ago, one 9 hours ago
    // (outside the 8 hours).
    app.finish(c1, "success", now - min).await;
    app.finish(c1, "answered_no_success", now - min).await;
    app.finish(c1, "no_answer", now - 3 * 3600 * 1000).await;
    app.finish(c1, "success", now - 9 * 3600 * 1000).await;
    // c2 (same script): a forward and a voicemail left 20 minutes ago.
    app.finish(c2, "forwarded", now - 20 * min).await;
    app.finish(c2, "voicemail", now - 20 * min).await;
    app.finish(c3, "busy", now - 30 * min).await;
    app.finish(cb, "success", now - min).await;

    let dashboard = app.key(app.org_a, Role::Dashboard).await;
    let r = app.get("/api/v1/insights/voice", &dashboard).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let ins = r.json();
    assert_eq!(ins["time_zone"], TZ);
    let to = bucket_start(now) + BUCKET_MS;
    let from = to - 96 * BUCKET_MS;
    assert_eq!(ins["to_ms"], to);
    assert_eq!(ins["from_ms"], from);
    assert!(
        ins["to"].as_str().unwrap().ends_with("+01:00"),
        "{}",
        ins["to"]
    );
    let scripts = ins["scripts"].as_array().unwrap();
    assert_eq!(scripts.len(), 2);
    assert_eq!(scripts[0]["script"], SCRIPT);
    assert_eq!(scripts[1]["script"], "second");

    // The engine's own sums of the same buckets.
    let mut expected = Counters::default();
    for c in [c1, c2] {
        for (_, counters) in app.store.stats_buckets(c, from, to).await.unwrap() {
            expected.merge(&counters);
        }
    }
    let totals = &scripts[0]["totals"];
    assert_eq!(totals["attempts"], expected.attempts);
    assert_eq!(totals["attempts"], 5);
    assert_eq!(totals["reached"], expected.green);
    assert_eq!(totals["not_reached"], expected.yellow);
    assert_eq!(totals["invalid"], expected.red);
    assert_eq!(totals["voicemail_left"], expected.voicemail_left);
    assert_eq!(totals["voicemail_left"], 1);
    assert_eq!(totals["statuses"]["success"], 1);
    assert_eq!(totals["statuses"]["forwarded"], 1);
    // success + forwarded of success + forwarded + answered_no_success.
    assert_eq!(totals["success_point"]["count"], 2);
    assert_eq!(totals["success_point"]["percent"], 66.7);

    let buckets = scripts[0]["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 96);
    let last = &buckets[95];
    assert_eq!(last["start_ms"], bucket_start(now));
    assert_eq!(last["start"], "2026-12-06T11:00:00+01:00");
    assert_eq!(last["figures"]["attempts"], 2);
    let sum: u64 = buckets
        .iter()
        .map(|b| b["figures"]["attempts"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 5);

    // One script; another organisation's script or none is not found.
    let r = app
        .get("/api/v1/insights/voice?script=second", &dashboard)
        .await;
    assert_eq!(r.json()["scripts"][0]["totals"]["not_reached"], 1);
    let r = app
        .get("/api/v1/insights/voice?script=nope", &dashboard)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let normal = app.key(app.org_a, Role::Normal).await;
    let r = app.get("/api/v1/insights/voice", &normal).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_sms_list_searches_and_pages_within_the_organisation() {
    let app = App::spawn().await;
    let c1 = app.campaign("a", "c1", SCRIPT).await;
    let cb = app.campaign("b", "cb", SCRIPT).await;
    let now = t0() * 1000;
    app.import(c1, "r", 3, now - 3600 * 1000).await;
    app.import(cb, "r", 1, now - 3600 * 1000).await;
    let mut ids = Vec::new();
    for (i, at) in [
        (0, now - 30 * 60_000),
        (1, now - 20 * 60_000),
        (2, now - 60_000),
    ] {
        let claim = app.finish(c1, "success", at).await;
        let id = app
            .store
            .queue_sms(
                &SmsRequest {
                    attempt: claim.attempt_id,
                    number: claim.number.clone(),
                    template: "payment_check_confirmation".into(),
                    language: if i == 1 { "nl" } else { "en" }.into(),
                    body: Ok(format!("message {i}")),
                },
                at,
            )
            .await
            .unwrap();
        ids.push((id, claim));
    }
    let claim_b = app.finish(cb, "success", now - 60_000).await;
    app.store
        .queue_sms(
            &SmsRequest {
                attempt: claim_b.attempt_id,
                number: claim_b.number.clone(),
                template: "t".into(),
                language: "en".into(),
                body: Ok("other organisation".into()),
            },
            now,
        )
        .await
        .unwrap();

    let manager = app.key(app.org_a, Role::Manager).await;
    let r = app.get("/api/v1/sms", &manager).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let page = r.json();
    let listed: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        listed,
        [ids[2].0, ids[1].0, ids[0].0],
        "newest first, own only"
    );
    let m = &page["messages"][1];
    assert_eq!(m["script"], SCRIPT);
    assert_eq!(m["campaign"], "c1");
    assert_eq!(m["record_id"], ids[1].1.record_id);
    assert_eq!(m["attempt_id"], ids[1].1.attempt_id);
    assert_eq!(m["language"], "nl");
    assert!(m.as_object().unwrap().contains_key("text"), "{m}");
    assert_eq!(m["state"], "queued");
    assert_eq!(page["next_cursor"], Value::Null);

    // Filters.
    let number = ids[0].1.number.replace('+', "%2B");
    let r = app
        .get(&format!("/api/v1/sms?number={number}"), &manager)
        .await;
    assert_eq!(r.json()["messages"].as_array().unwrap().len(), 1);
    let r = app
        .get(
            &format!("/api/v1/sms?record_id={}", ids[1].1.record_id),
            &manager,
        )
        .await;
    assert_eq!(r.json()["messages"][0]["id"], ids[1].0);
    let r = app.get("/api/v1/sms?state=sent", &manager).await;
    assert_eq!(r.json()["messages"], json!([]));
    let from = Utc
        .timestamp_millis_opt(now - 25 * 60_000)
        .unwrap()
        .to_rfc3339();
    let r = app
        .get(
            &format!("/api/v1/sms?from={}", from.replace('+', "%2B")),
            &manager,
        )
        .await;
    assert_eq!(r.json()["messages"].as_array().unwrap().len(), 2);
    let r = app.get("/api/v1/sms?script=nope", &manager).await;
    assert_eq!(r.json()["messages"], json!([]));

    // Pages of one.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/sms?limit=1".to_owned();
    loop {
        let page = app.get(&uri, &manager).await.json();
        seen.extend(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/sms?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, listed);

    for bad in [
        "/api/v1/sms?limit=0",
        "/api/v1/sms?limit=99999999999",
        "/api/v1/sms?cursor=abc",
        "/api/v1/sms?from=yesterday",
        "/api/v1/sms?colour=red",
    ] {
        assert_eq!(
            app.get(bad, &manager).await.status,
            StatusCode::BAD_REQUEST,
            "{bad}"
        );
    }
    let file = app.key(app.org_a, Role::File).await;
    assert_eq!(
        app.get("/api/v1/sms", &file).await.status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_email_list_shows_queued_and_failed_emails_within_the_organisation() {
    let app = App::spawn().await;
    let c1 = app.campaign("a", "c1", SCRIPT).await;
    let cb = app.campaign("b", "cb", SCRIPT).await;
    let now = t0() * 1000;
    let email = [
        ("SERVICES_EMAIL", "Y"),
        ("CONTACT_EMAIL", "person{i}@example.org"),
    ];
    app.import_with(c1, "e", 3, now - 3600 * 1000, &email).await;
    app.import_with(c1, "v", 2, now - 3600 * 1000, &[]).await;
    app.import_with(cb, "e", 1, now - 3600 * 1000, &email).await;

    // As the e-mail worker does: take the pending records, render, queue.
    let pending = app.store.pending_emails(c1, 100).await.unwrap();
    let owed: Vec<&str> = pending.iter().map(|p| p.record_id.as_str()).collect();
    assert_eq!(owed, ["e0", "e1", "e2"], "only SERVICES_EMAIL=Y records");
    let items: Vec<(i64, EmailOutcome)> = pending
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let outcome = if i == 1 {
                EmailOutcome::Failed {
                    address: p.address.clone(),
                    template: Some("reminder".into()),
                    reason: "INVOICE_AMOUNT_OPEN is empty".into(),
                }
            } else {
                EmailOutcome::Queued {
                    address: p.address.clone(),
                    template: "reminder".into(),
                    language: "nl".into(),
                    subject: format!("Herinnering {}", p.record_id),
                    body: "Beste klant".into(),
                }
            };
            (p.record, outcome)
        })
        .collect();
    let ids = app
        .store
        .queue_emails(c1, &items[..2], now - 30 * 60_000)
        .await
        .unwrap();
    let later = app
        .store
        .queue_emails(c1, &items[2..], now - 60_000)
        .await
        .unwrap();
    let ids: Vec<i64> = ids.into_iter().chain(later).collect();
    assert_eq!(ids.len(), 3);
    let theirs = app.store.pending_emails(cb, 100).await.unwrap();
    app.store
        .queue_emails(
            cb,
            &[(
                theirs[0].record,
                EmailOutcome::Queued {
                    address: theirs[0].address.clone(),
                    template: "t".into(),
                    language: "en".into(),
                    subject: "s".into(),
                    body: "b".into(),
                },
            )],
            now,
        )
        .await
        .unwrap();

    let manager = app.key(app.org_a, Role::Manager).await;
    let r = app.get("/api/v1/emails", &manager).await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    let page = r.json();
    let listed: Vec<i64> = page["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(listed, [ids[2], ids[1], ids[0]], "newest first, own only");
    let queued = &page["emails"][2];
    assert_eq!(queued["script"], SCRIPT);
    assert_eq!(queued["campaign"], "c1");
    assert_eq!(queued["record_id"], "e0");
    assert_eq!(queued["address"], "person0@example.org");
    assert_eq!(queued["subject"], "Herinnering e0");
    assert_eq!(queued["body"], "Beste klant");
    assert_eq!(queued["language"], "nl");
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["error"], Value::Null);
    let failed = &page["emails"][1];
    assert_eq!(failed["state"], "failed");
    assert_eq!(failed["error"], "INVOICE_AMOUNT_OPEN is empty");
    assert_eq!(failed["subject"], Value::Null);
    assert_eq!(page["next_cursor"], Value::Null);

    // Filters.
    let r = app
        .get("/api/v1/emails?address=person2%40example.org", &manager)
        .await;
    let only: Vec<i64> = r.json()["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_i64().unwrap())
        .collect();
    assert_eq!(only, [ids[2]]);
    let r = app.get("/api/v1/emails?record_id=e1", &manager).await;
    assert_eq!(r.json()["emails"][0]["id"], ids[1]);
    let r = app.get("/api/v1/emails?state=failed", &manager).await;
    assert_eq!(r.json()["emails"].as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/emails?state=sent", &manager).await;
    assert_eq!(r.json()["emails"], json!([]));
    let from = Utc
        .timestamp_millis_opt(now - 25 * 60_000)
        .unwrap()
        .to_rfc3339();
    let r = app
        .get(
            &format!("/api/v1/emails?from={}", from.replace('+', "%2B")),
            &manager,
        )
        .await;
    assert_eq!(r.json()["emails"][0]["id"], ids[2]);
    assert_eq!(r.json()["emails"].as_array().unwrap().len(), 1);
    let r = app.get("/api/v1/emails?script=nope", &manager).await;
    assert_eq!(r.json()["emails"], json!([]));

    // Pages of one.
    let mut seen = Vec::new();
    let mut uri = "/api/v1/emails?limit=1".to_owned();
    loop {
        let page = app.get(&uri, &manager).await.json();
        seen.extend(
            page["emails"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_i64().unwrap()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => uri = format!("/api/v1/emails?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, listed);

    // The other organisation sees its own e-mail only.
    let manager_b = app.key(app.org_b, Role::Manager).await;
    let r = app.get("/api/v1/emails", &manager_b).await;
    let theirs = r.json();
    assert_eq!(theirs["emails"].as_array().unwrap().len(), 1, "{theirs}");
    assert_eq!(theirs["emails"][0]["campaign"], "cb");
    let r = app.get("/api/v1/emails?record_id=e0", &manager_b).await;
    assert_eq!(r.json()["emails"][0]["campaign"], "cb");

    // Bad queries are problems naming the parameter.
    for (bad, named) in [
        ("/api/v1/emails?limit=0", "limit"),
        ("/api/v1/emails?limit=99999999999", "limit"),
        ("/api/v1/emails?cursor=abc", "cursor"),
        ("/api/v1/emails?from=yesterday", "from"),
        ("/api/v1/emails?to=2026-13-01", "to"),
        ("/api/v1/emails?colour=red", "colour"),
    ] {
        let r = app.get(bad, &manager).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            r.headers[header::CONTENT_TYPE],
            "application/problem+json",
            "{bad}"
        );
        let detail = r.json()["detail"].as_str().unwrap().to_owned();
        assert!(detail.contains(named), "{bad}: {detail}");
    }
    let file = app.key(app.org_a, Role::File).await;
    assert_eq!(
        app.get("/api/v1/emails", &file).await.status,
        StatusCode::FORBIDDEN
    );
}
