//! The file functions through a real server on `127.0.0.1:0`: imports
//! (upload, validation report, confirm, cancel, original), result files,
//! calls and voicelog playback with Range, the blocklist and the calendar;
//! for each, another organisation's objects are invisible and a role below
//! the required one is refused.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod harness;

use dialcast_portal_api::Role;
use harness::{empty, wav, Harness};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

const HEADER: &str =
    "IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;CONTROL_SCRIPT\n";
/// Line 3 has a bad amount.
const ONE_BAD: &str = "A;0612345678;10.00;s\nB;0612345679;abc;s\nC;0612345670;12.00;s\n";
const ALL_GOOD: &str = "D;0612345671;10.00;s\nE;0612345672;11.00;s\n";

async fn count(h: &Harness, sql: &str, bind: i64) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(bind)
        .fetch_one(&h.db)
        .await
        .unwrap()
}

async fn audit_actions(h: &Harness, org: i64) -> Vec<String> {
    // Key creation by the harness is audited too; these tests look at the rest.
    sqlx::query_scalar(
        "SELECT action FROM portal_audit_log WHERE org_id = ? AND action NOT LIKE 'apikey.%' \
         ORDER BY id",
    )
    .bind(org)
    .fetch_all(&h.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn upload_reports_the_bad_line_then_confirm_stores_records() {
    let h = Harness::start().await;
    let key = h.key(h.portal_a, Role::File).await;
    let file = format!("{HEADER}{ONE_BAD}");
    let up = h.upload(&key, "c", "delivery.csv", file.as_bytes()).await;
    assert_eq!(up.status, StatusCode::ACCEPTED, "{:?}", up.json());
    let id = up.json()["id"].as_i64().unwrap();
    assert_eq!(up.header("location"), format!("/api/v1/imports/{id}"));
    assert_eq!(up.json()["file_name"], "delivery.csv");

    let v = h.settled_import(&key, id).await;
    assert_eq!(v["status"], "validated", "{v}");
    assert_eq!(
        (v["records"].as_u64(), v["failed"].as_u64()),
        (Some(3), Some(1))
    );
    let errors = v["report"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["row"], 3);
    assert_eq!(errors[0]["column"], "INVOICE_AMOUNT_OPEN");
    assert!(errors[0]["reason"].as_str().unwrap().contains("abc"));

    // Rows fail, so a plain confirm imports nothing.
    let c = h.post(&format!("/api/v1/imports/{id}/confirm"), &key).await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.json()["status"], "validated");
    let records = "SELECT COUNT(*) FROM records WHERE campaign_id = ?";
    assert_eq!(count(&h, records, h.campaign_a).await, 0);

    let c = h
        .json(
            Method::POST,
            &format!("/api/v1/imports/{id}/confirm"),
            &key,
            &json!({"accept_partial": true}),
        )
        .await;
    assert_eq!(c.status, StatusCode::OK, "{:?}", c.json());
    assert_eq!(c.json()["status"], "finished");
    assert_eq!(c.json()["imported"], 2);
    assert_eq!(count(&h, records, h.campaign_a).await, 2);

    // The original, byte for byte, as an attachment.
    let o = h.get(&format!("/api/v1/imports/{id}/original"), &key).await;
    assert_eq!(o.status, StatusCode::OK);
    assert_eq!(o.body.as_ref(), file.as_bytes());
    assert_eq!(o.header("content-type"), "text/csv");
    assert!(o.header("content-disposition").contains("delivery.csv"));

    // The list shows it with its counts.
    let l = h.get("/api/v1/imports", &key).await;
    assert_eq!(l.status, StatusCode::OK);
    let list = l.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["status"], "finished");
    assert_eq!(list[0]["imported"], 2);
    assert_eq!(list[0]["failed"], 1);
    assert_eq!(list[0]["campaign"], "c");

    // Confirmed again: a conflict, not a second import.
    let again = h.post(&format!("/api/v1/imports/{id}/confirm"), &key).await;
    again.assert_problem(StatusCode::CONFLICT, "wrong-state");
    assert_eq!(
        audit_actions(&h, h.portal_a.0).await,
        ["import.upload", "import.confirm", "import.confirm"]
    );
}

#[tokio::test]
async fn cancel_imports_nothing_and_is_final() {
    let h = Harness::start().await;
    let key = h.key(h.portal_a, Role::Manager).await;
    let up = h
        .upload(
            &key,
            "c",
            "good.csv",
            format!("{HEADER}{ALL_GOOD}").as_bytes(),
        )
        .await;
    let id = up.json()["id"].as_i64().unwrap();
    assert_eq!(h.settled_import(&key, id).await["status"], "validated");
    let c = h.post(&format!("/api/v1/imports/{id}/cancel"), &key).await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(c.json()["status"], "cancelled");
    h.post(&format!("/api/v1/imports/{id}/confirm"), &key)
        .await
        .assert_problem(StatusCode::CONFLICT, "wrong-state");
    h.post(&format!("/api/v1/imports/{id}/cancel"), &key)
        .await
        .assert_problem(StatusCode::CONFLICT, "wrong-state");
    let records = "SELECT COUNT(*) FROM records WHERE campaign_id = ?";
    assert_eq!(count(&h, records, h.campaign_a).await, 0);
    assert!(audit_actions(&h, h.portal_a.0)
        .await
        .contains(&"import.cancel".to_owned()));
}

#[tokio::test]
async fn upload_problems_are_clear() {
    let h = Harness::start_with(|e| e.max_upload_bytes = 1000).await;
    let key = h.key(h.portal_a, Role::File).await;
    let big = h.path("big.csv");
    std::fs::write(&big, format!("{HEADER}{}", ALL_GOOD.repeat(40))).unwrap();
    // Refused on its declared length, and while streaming without one.
    for sized in [true, false] {
        h.upload_from_disk(&key, "c", &big, sized)
            .await
            .assert_problem(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    }
    let small = format!("{HEADER}{ALL_GOOD}");
    h.upload(&key, "nope", "x.csv", small.as_bytes())
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "unknown-campaign");
    // Another organisation's campaign is as unknown as a missing one.
    h.upload(&key, "cb", "x.csv", small.as_bytes())
        .await
        .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "unknown-campaign");
    h.send(
        Method::POST,
        "/api/v1/imports",
        &key,
        &[("content-type", "text/csv")],
        harness::full(small),
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    assert_eq!(h.get("/api/v1/imports", &key).await.json(), json!([]));
    // Nothing left behind in the spool directory.
    let spooled = std::fs::read_dir(&h.engine.upload_dir)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(spooled, 0);
}

#[tokio::test]
async fn another_organisations_imports_are_invisible() {
    let h = Harness::start().await;
    let a = h.key(h.portal_a, Role::Manager).await;
    let b = h.key(h.portal_b, Role::Manager).await;
    let up = h
        .upload(
            &a,
            "c",
            "good.csv",
            format!("{HEADER}{ALL_GOOD}").as_bytes(),
        )
        .await;
    let id = up.json()["id"].as_i64().unwrap();
    h.settled_import(&a, id).await;
    assert_eq!(h.get("/api/v1/imports", &b).await.json(), json!([]));
    for path in [
        format!("/api/v1/imports/{id}"),
        format!("/api/v1/imports/{id}/original"),
    ] {
        h.get(&path, &b)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    for path in [
        format!("/api/v1/imports/{id}/confirm"),
        format!("/api/v1/imports/{id}/cancel"),
    ] {
        h.post(&path, &b)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    // Untouched by B's attempts.
    assert_eq!(h.settled_import(&a, id).await["status"], "validated");
}

/// Seeds attempts: returns the ids of (A's recorded success, A's busy, B's).
async fn seed_calls(h: &Harness) -> (i64, i64, i64) {
    async fn record(h: &Harness, campaign: i64, rid: &str) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO records (campaign_id, record_id, fields_json, phones_json, import_line, \
             state, attempts, next_attempt_at, imported_at) \
             VALUES (?, ?, '{}', '[]', 2, 'done', 1, 0, 0) RETURNING id",
        )
        .bind(campaign)
        .bind(rid)
        .fetch_one(&h.db)
        .await
        .unwrap()
    }
    async fn attempt(
        h: &Harness,
        record: i64,
        no: i64,
        number: &str,
        status: &str,
        at: i64,
    ) -> i64 {
        sqlx::query_scalar(
            "INSERT INTO attempts (record_id, attempt_no, number, dialled, state, status, \
             started_at, success_point, dtmf, outputs_json) \
             VALUES (?, ?, ?, 1, 'done', ?, ?, 0, '', '{}') RETURNING id",
        )
        .bind(record)
        .bind(no)
        .bind(number)
        .bind(status)
        .bind(at)
        .fetch_one(&h.db)
        .await
        .unwrap()
    }
    async fn voicelog(h: &Harness, attempt: i64, record: i64, path: &str) {
        sqlx::query(
            "INSERT INTO voicelogs (attempt_id, record_id, script_name, policy, path, state, \
             started_at) VALUES (?, ?, 's', 'all', ?, 'complete', 0)",
        )
        .bind(attempt)
        .bind(record)
        .bind(path)
        .execute(&h.db)
        .await
        .unwrap();
        let file = h.engine.voicelog_dir.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, wav(1000)).unwrap();
    }
    // 2026-12-01 and 2026-12-02, 10:00 UTC.
    let day1 = 1_796_119_200_000;
    let day2 = day1 + 86_400_000;
    let r1 = record(h, h.campaign_a, "R1").await;
    let r2 = record(h, h.campaign_a, "R2").await;
    let rb = record(h, h.campaign_b, "R1").await;
    let success = attempt(h, r1, 1, "+31612345678", "success", day1).await;
    voicelog(h, success, r1, "2026/12/01/a.wav").await;
    attempt(h, r1, 2, "+31612345678", "no_answer", day2).await;
    let busy = attempt(h, r2, 1, "+31612345679", "busy", day2 + 60_000).await;
    let b = attempt(h, rb, 1, "+31612345678", "success", day1).await;
    voicelog(h, b, rb, "2026/12/01/b.wav").await;
    (success, busy, b)
}

fn attempt_ids(v: &Value) -> Vec<i64> {
    v["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["attempt_id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn calls_are_searched_by_number_record_status_and_date() {
    let h = Harness::start().await;
    let (success, busy, b_attempt) = seed_calls(&h).await;
    let key = h.key(h.portal_a, Role::Manager).await;
    let all = h.get("/api/v1/calls", &key).await;
    assert_eq!(all.status, StatusCode::OK);
    let ids = attempt_ids(&all.json());
    assert_eq!(ids.len(), 3, "B's attempt is not listed: {ids:?}");
    assert!(!ids.contains(&b_attempt));
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first");

    let q = |s: &str| format!("/api/v1/calls?{s}");
    let by_number = h.get(&q("number=%2B31612345678"), &key).await.json();
    assert_eq!(attempt_ids(&by_number).len(), 2);
    let by_record = h.get(&q("record_id=R2"), &key).await.json();
    assert_eq!(attempt_ids(&by_record), [busy]);
    let by_status = h.get(&q("status=success"), &key).await.json();
    assert_eq!(attempt_ids(&by_status), [success]);
    assert_eq!(by_status["calls"][0]["has_voicelog"], true);
    assert_eq!(by_status["calls"][0]["record_id"], "R1");
    let day1 = h
        .get(&q("from=2026-12-01&to=2026-12-02T00:00:00Z"), &key)
        .await
        .json();
    assert_eq!(attempt_ids(&day1), [success]);
    let day2_r1 = h.get(&q("from=2026-12-02&record_id=R1"), &key).await.json();
    assert_eq!(attempt_ids(&day2_r1).len(), 1);

    // Keyset pages: two, then one, then no cursor.
    let p1 = h.get(&q("limit=2"), &key).await.json();
    assert_eq!(attempt_ids(&p1).len(), 2);
    let cursor = p1["next_cursor"].as_str().unwrap().to_owned();
    let p2 = h
        .get(&q(&format!("limit=2&cursor={cursor}")), &key)
        .await
        .json();
    assert_eq!(attempt_ids(&p2).len(), 1);
    assert!(p2["next_cursor"].is_null());
    let mut paged = attempt_ids(&p1);
    paged.extend(attempt_ids(&p2));
    assert_eq!(paged, ids);

    h.get(&q("from=yesterday"), &key)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    h.get(&q("cursor=abc"), &key)
        .await
        .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    // B sees only its own.
    let b = h.key(h.portal_b, Role::Manager).await;
    assert_eq!(
        attempt_ids(&h.get("/api/v1/calls", &b).await.json()),
        [b_attempt]
    );
}

#[tokio::test]
async fn voicelogs_play_with_ranges() {
    let h = Harness::start().await;
    let (success, busy, b_attempt) = seed_calls(&h).await;
    let key = h.key(h.portal_a, Role::Manager).await;
    let whole = wav(1000);
    let path = format!("/api/v1/calls/{success}/voicelog");

    let full = h.get(&path, &key).await;
    assert_eq!(full.status, StatusCode::OK);
    assert_eq!(full.header("content-type"), "audio/wav");
    assert_eq!(full.header("accept-ranges"), "bytes");
    assert_eq!(full.body.as_ref(), whole.as_slice());

    let first = h.get_range(&path, &key, "bytes=0-99").await;
    assert_eq!(first.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        first.header("content-range"),
        format!("bytes 0-99/{}", whole.len())
    );
    assert_eq!(first.header("content-type"), "audio/wav");
    assert_eq!(first.body.as_ref(), &whole[..100]);

    let last = h.get_range(&path, &key, "bytes=-100").await;
    assert_eq!(last.status, StatusCode::PARTIAL_CONTENT);
    let n = whole.len();
    assert_eq!(
        last.header("content-range"),
        format!("bytes {}-{}/{n}", n - 100, n - 1)
    );
    assert_eq!(last.body.as_ref(), &whole[n - 100..]);

    let middle = h.get_range(&path, &key, "bytes=44-").await;
    assert_eq!(middle.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(middle.body.as_ref(), &whole[44..]);

    let outside = h.get_range(&path, &key, "bytes=99999-100000").await;
    outside.assert_problem(StatusCode::RANGE_NOT_SATISFIABLE, "range-not-satisfiable");
    assert_eq!(outside.header("content-range"), format!("bytes */{n}"));

    // No recording, and another organisation's recording: both 404.
    h.get(&format!("/api/v1/calls/{busy}/voicelog"), &key)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    h.get(&format!("/api/v1/calls/{b_attempt}/voicelog"), &key)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    h.get("/api/v1/calls/x/voicelog", &key)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
}

/// Registers a result file of `script` in the engine: returns its id.
async fn result_file(h: &Harness, org: i64, script: &str, format: &str, body: &str) -> i64 {
    let script_id: i64 =
        sqlx::query_scalar("SELECT id FROM scripts WHERE organisation_id = ? AND name = ?")
            .bind(org)
            .bind(script)
            .fetch_one(&h.db)
            .await
            .unwrap();
    // Registered as the engine does: the path it wrote, directory included.
    let dir = h.path("results");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{script}-2026-12-05.{format}"));
    std::fs::write(&path, body).unwrap();
    let name = path.display().to_string();
    sqlx::query_scalar(
        "INSERT INTO result_files (script_id, day, format, path, size, rows, written_at) \
         VALUES (?, '2026-12-05', ?, ?, ?, 1, 0) RETURNING id",
    )
    .bind(script_id)
    .bind(format)
    .bind(name)
    .bind(body.len() as i64)
    .fetch_one(&h.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn result_files_are_listed_and_downloaded() {
    let h = Harness::start().await;
    let csv = "IDENTIFICATION_RECORD_ID;CALLRESULTS_CALL_1_STATUS\nA;success\n";
    let xml = "<records><record/></records>";
    let a_csv = result_file(&h, h.engine_a, "s", "csv", csv).await;
    let a_xml = result_file(&h, h.engine_a, "s", "xml", xml).await;
    let b_csv = result_file(&h, h.engine_b, "sb", "csv", "X\n").await;
    let key = h.key(h.portal_a, Role::File).await;
    let list = h.get("/api/v1/result-files", &key).await.json();
    let ids: Vec<i64> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [a_csv, a_xml]);
    assert_eq!(list[0]["script"], "s");
    assert_eq!(list[0]["day"], "2026-12-05");

    let d = h.get(&format!("/api/v1/result-files/{a_csv}"), &key).await;
    assert_eq!(d.status, StatusCode::OK);
    assert_eq!(d.header("content-type"), "text/csv; charset=utf-8");
    assert_eq!(d.body.as_ref(), csv.as_bytes());
    assert!(d.header("content-disposition").contains("s-2026-12-05.csv"));
    let x = h.get(&format!("/api/v1/result-files/{a_xml}"), &key).await;
    assert_eq!(x.header("content-type"), "application/xml");
    assert_eq!(x.body.as_ref(), xml.as_bytes());

    h.get(&format!("/api/v1/result-files/{b_csv}"), &key)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    h.get("/api/v1/result-files/999", &key)
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn blocklist_add_list_remove() {
    let h = Harness::start().await;
    let a = h.key(h.portal_a, Role::Manager).await;
    let b = h.key(h.portal_b, Role::Manager).await;
    let add = h
        .json(
            Method::POST,
            "/api/v1/blocklist",
            &a,
            &json!({"number": "06 1234 5678", "reason": "asked not to be called"}),
        )
        .await;
    assert_eq!(add.status, StatusCode::OK, "{:?}", add.json());
    assert_eq!(
        add.json(),
        json!({"number": "+31612345678", "added": true, "records_blocked": 0})
    );
    let list = h.get("/api/v1/blocklist", &a).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["number"], "+31612345678");
    assert_eq!(list[0]["reason"], "asked not to be called");
    assert!(list[0]["added_by"].as_str().unwrap().starts_with("apikey:"));
    assert_eq!(h.get("/api/v1/blocklist", &b).await.json(), json!([]));
    // B cannot remove A's number.
    let del = "/api/v1/blocklist/%2B31612345678";
    h.send(Method::DELETE, del, &b, &[], empty())
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    let r = h.send(Method::DELETE, del, &a, &[], empty()).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(h.get("/api/v1/blocklist", &a).await.json(), json!([]));
    h.send(Method::DELETE, del, &a, &[], empty())
        .await
        .assert_problem(StatusCode::NOT_FOUND, "not-found");
    h.json(
        Method::POST,
        "/api/v1/blocklist",
        &a,
        &json!({"number": "not a number", "reason": "x"}),
    )
    .await
    .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    h.json(
        Method::POST,
        "/api/v1/blocklist",
        &a,
        &json!({"number": "0612345678", "reason": " "}),
    )
    .await
    .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    assert_eq!(
        audit_actions(&h, h.portal_a.0).await,
        ["blocklist.add", "blocklist.remove"]
    );
    assert!(audit_actions(&h, h.portal_b.0).await.is_empty());
}

#[tokio::test]
async fn calendar_round_trips_per_organisation() {
    let h = Harness::start().await;
    let a = h.key(h.portal_a, Role::Manager).await;
    let b = h.key(h.portal_b, Role::Manager).await;
    let before = h.get("/api/v1/calendar", &b).await.json();
    let cal = json!({
        "time_zone": "Europe/Amsterdam",
        "workdays": [true, true, true, true, false, false, false],
        "holidays": ["2026-12-25", "2026-12-24"],
        "yearly_holidays": ["01-01"],
    });
    let put = h.json(Method::PUT, "/api/v1/calendar", &a, &cal).await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.json());
    let got = h.get("/api/v1/calendar", &a).await.json();
    assert_eq!(got["time_zone"], "Europe/Amsterdam");
    assert_eq!(got["workdays"], cal["workdays"]);
    assert_eq!(got["holidays"], json!(["2026-12-24", "2026-12-25"]));
    assert_eq!(got["yearly_holidays"], json!(["01-01"]));
    // The engine reads it as the organisation's calendar.
    let stored = h
        .store
        .organisation_calendar(h.engine_a)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.time_zone, "Europe/Amsterdam");
    assert_eq!(
        stored.workdays,
        [true, true, true, true, false, false, false]
    );
    assert_eq!(h.get("/api/v1/calendar", &b).await.json(), before);

    for bad in [
        json!({"time_zone": "Mars/Olympus", "workdays": [true, true, true, true, true, true, true], "holidays": [], "yearly_holidays": []}),
        json!({"time_zone": "UTC", "workdays": [true, true, true, true, true, true, true], "holidays": ["25-12-2026"], "yearly_holidays": []}),
        json!({"time_zone": "UTC", "workdays": [true, true, true, true, true, true, true], "holidays": [], "yearly_holidays": ["13-01"]}),
    ] {
        h.json(Method::PUT, "/api/v1/calendar", &a, &bad)
            .await
            .assert_problem(StatusCode::UNPROCESSABLE_ENTITY, "invalid");
    }
    h.json(
        Method::PUT,
        "/api/v1/calendar",
        &a,
        &json!({"time_zone": "UTC", "workdays": [true]}),
    )
    .await
    .assert_problem(StatusCode::BAD_REQUEST, "bad-request");
    assert_eq!(
        h.get("/api/v1/calendar", &a).await.json()["time_zone"],
        "Europe/Amsterdam"
    );
    assert_eq!(audit_actions(&h, h.portal_a.0).await, ["calendar.update"]);
}

#[tokio::test]
async fn an_organisation_unknown_to_the_engine_sees_nothing() {
    let h = Harness::start().await;
    let org = dialcast_portal_api::accounts::create_organisation(&h.db, "new", harness::T0)
        .await
        .unwrap();
    seed_calls(&h).await;
    let key = h.key(org, Role::Manager).await;
    for path in [
        "/api/v1/imports",
        "/api/v1/result-files",
        "/api/v1/blocklist",
    ] {
        let r = h.get(path, &key).await;
        assert_eq!((r.status, r.json()), (StatusCode::OK, json!([])), "{path}");
    }
    assert_eq!(
        h.get("/api/v1/calls", &key).await.json()["calls"],
        json!([])
    );
    for path in [
        "/api/v1/imports/1",
        "/api/v1/result-files/1",
        "/api/v1/calls/1/voicelog",
    ] {
        h.get(path, &key)
            .await
            .assert_problem(StatusCode::NOT_FOUND, "not-found");
    }
    // Changes are refused: the portal never creates engine organisations.
    h.json(
        Method::POST,
        "/api/v1/blocklist",
        &key,
        &json!({"number": "0612345678", "reason": "asked"}),
    )
    .await
    .assert_problem(StatusCode::CONFLICT, "wrong-state");
    let cal = json!({"time_zone": "UTC", "workdays": [true, true, true, true, true, false, false],
                     "holidays": [], "yearly_holidays": []});
    h.json(Method::PUT, "/api/v1/calendar", &key, &cal)
        .await
        .assert_problem(StatusCode::CONFLICT, "wrong-state");
    assert_eq!(h.store.organisation_by_name("new").await.unwrap(), None);
}

/// Every file endpoint × every role: refused (403) below its role, let
/// through (neither 401 nor 403) from it up.
#[tokio::test]
async fn every_endpoint_refuses_roles_below_its_own() {
    let h = Harness::start().await;
    let endpoints: [(Method, &str, Role); 15] = [
        (Method::GET, "/api/v1/imports", Role::File),
        (Method::POST, "/api/v1/imports", Role::File),
        (Method::GET, "/api/v1/imports/1", Role::File),
        (Method::POST, "/api/v1/imports/1/confirm", Role::File),
        (Method::POST, "/api/v1/imports/1/cancel", Role::File),
        (Method::GET, "/api/v1/imports/1/original", Role::File),
        (Method::GET, "/api/v1/result-files", Role::File),
        (Method::GET, "/api/v1/result-files/1", Role::File),
        (Method::GET, "/api/v1/calls", Role::Manager),
        (Method::GET, "/api/v1/calls/1/voicelog", Role::Manager),
        (Method::GET, "/api/v1/blocklist", Role::Manager),
        (Method::POST, "/api/v1/blocklist", Role::Manager),
        (
            Method::DELETE,
            "/api/v1/blocklist/%2B31612345678",
            Role::Manager,
        ),
        (Method::GET, "/api/v1/calendar", Role::Manager),
        (Method::PUT, "/api/v1/calendar", Role::Manager),
    ];
    for role in Role::ALL {
        let key = h.key(h.portal_a, role).await;
        for (method, path, needed) in &endpoints {
            let r = h
                .send(
                    method.clone(),
                    path,
                    &key,
                    &[("content-type", "application/json")],
                    harness::full("{}"),
                )
                .await;
            if role < *needed {
                r.assert_problem(StatusCode::FORBIDDEN, "forbidden");
            } else {
                assert!(
                    r.status != StatusCode::FORBIDDEN && r.status != StatusCode::UNAUTHORIZED,
                    "{role} {method} {path}: {}",
                    r.status
                );
            }
        }
    }
}

/// With a session cookie instead of an API key: reads need nothing more,
/// changes need the CSRF header, and the audit log names the user.
#[tokio::test]
async fn sessions_work_and_changes_need_the_csrf_header() {
    let h = Harness::start().await;
    let (user, cookie) = h
        .session(h.portal_a, "ann@example.org", Role::Manager)
        .await;
    let body = json!({"number": "0612345678", "reason": "asked"}).to_string();
    let json_type = ("content-type", "application/json");
    h.send_raw(
        Method::POST,
        "/api/v1/blocklist",
        &[("cookie", &cookie), json_type],
        harness::full(body.clone()),
    )
    .await
    .assert_problem(StatusCode::FORBIDDEN, "csrf-header-missing");
    let (name, file) = ("x.csv", format!("{HEADER}{ALL_GOOD}"));
    let (head, tail) = harness::multipart_frame("c", name);
    let upload = format!("{head}{file}{tail}");
    h.send_raw(
        Method::POST,
        "/api/v1/imports",
        &[
            ("cookie", &cookie),
            ("content-type", harness::MULTIPART_TYPE),
        ],
        harness::full(upload.clone()),
    )
    .await
    .assert_problem(StatusCode::FORBIDDEN, "csrf-header-missing");
    assert_eq!(
        count(&h, "SELECT COUNT(*) FROM imports WHERE id > ?", 0).await,
        0
    );

    let csrf = ("x-dialcast-csrf", "1");
    let r = h
        .send_raw(
            Method::POST,
            "/api/v1/blocklist",
            &[("cookie", &cookie), json_type, csrf],
            harness::full(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.json());
    let r = h
        .send_raw(
            Method::POST,
            "/api/v1/imports",
            &[
                ("cookie", &cookie),
                ("content-type", harness::MULTIPART_TYPE),
                csrf,
            ],
            harness::full(upload),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.json());
    let list = h
        .send_raw(
            Method::GET,
            "/api/v1/blocklist",
            &[("cookie", &cookie)],
            empty(),
        )
        .await;
    assert_eq!(list.json()[0]["added_by"], format!("user:{user}"));
    let actors: Vec<String> = sqlx::query_scalar(
        "SELECT actor FROM portal_audit_log WHERE action IN ('blocklist.add', 'import.upload')",
    )
    .fetch_all(&h.db)
    .await
    .unwrap();
    assert_eq!(actors, [format!("user:{user}"), format!("user:{user}")]);
}

#[tokio::test]
async fn the_openapi_document_lists_every_file_endpoint() {
    let h = Harness::start().await;
    let key = h.key(h.portal_a, Role::Normal).await;
    let doc = h.get("/api-docs/openapi.json", &key).await.json();
    for (path, methods) in [
        ("/api/v1/imports", &["get", "post"][..]),
        ("/api/v1/imports/{id}", &["get"]),
        ("/api/v1/imports/{id}/confirm", &["post"]),
        ("/api/v1/imports/{id}/cancel", &["post"]),
        ("/api/v1/imports/{id}/original", &["get"]),
        ("/api/v1/result-files", &["get"]),
        ("/api/v1/result-files/{id}", &["get"]),
        ("/api/v1/calls", &["get"]),
        ("/api/v1/calls/{attempt}/voicelog", &["get"]),
        ("/api/v1/blocklist", &["get", "post"]),
        ("/api/v1/blocklist/{number}", &["delete"]),
        ("/api/v1/calendar", &["get", "put"]),
    ] {
        for m in methods {
            assert!(
                doc["paths"][path][m].is_object(),
                "{m} {path} is not documented"
            );
        }
    }
    let upload = &doc["paths"]["/api/v1/imports"]["post"];
    assert!(upload["requestBody"]["content"]["multipart/form-data"].is_object());
    assert!(upload["responses"]["413"].is_object());
    let voicelog = &doc["paths"]["/api/v1/calls/{attempt}/voicelog"]["get"]["responses"];
    assert!(voicelog["200"]["content"]["audio/wav"].is_object());
    assert!(voicelog["416"].is_object());
}

/// A confirm or cancel sent while the background validation may still run
/// is either done or refused as a conflict, never a server error; the
/// import always ends in a settled state.
#[tokio::test]
async fn confirm_or_cancel_right_after_upload_never_fails_the_server() {
    let h = Harness::start().await;
    let key = h.key(h.portal_a, Role::File).await;
    for i in 0..12 {
        let rows = format!("R{i};0612345671;10.00;s\n");
        let up = h
            .upload(&key, "c", "race.csv", format!("{HEADER}{rows}").as_bytes())
            .await;
        let id = up.json()["id"].as_i64().unwrap();
        let action = if i % 2 == 0 { "confirm" } else { "cancel" };
        let r = h
            .post(&format!("/api/v1/imports/{id}/{action}"), &key)
            .await;
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::CONFLICT,
            "{action} right after upload: {} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        let settled = h.settled_import(&key, id).await;
        let status = settled["status"].as_str().unwrap().to_owned();
        assert!(
            ["validated", "finished", "cancelled"].contains(&status.as_str()),
            "{action}: {settled}"
        );
    }
}
