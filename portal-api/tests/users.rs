//! Users management end to end through the router (`oneshot`), on a fresh
//! in-memory database per test and a virtual clock: listing, adding (a new
//! account with its temporary password, or a membership of an existing
//! one), changing role and modules, removing, the last-manager rule,
//! another organisation's user as 404, the audit log, and a user's own
//! default organisation.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use dialcast_portal_api::apikey::{self, NewKey, PlainKey};
use dialcast_portal_api::{accounts, db, router, AppState, OrgId, Role};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::SqlitePool;
use tower::ServiceExt;

const T0: i64 = 1_800_000_000;
const DAY: i64 = 24 * 3600;
const PASSWORD: &str = "a long enough password";

/// Who calls: an API key, or a session cookie.
#[derive(Clone, Copy)]
enum As<'a> {
    Key(&'a PlainKey),
    Session(&'a str),
}

struct App {
    db: SqlitePool,
    router: Router,
    now: Arc<AtomicI64>,
    org_a: OrgId,
    org_b: OrgId,
}

impl App {
    async fn spawn() -> App {
        let db = db::open_in_memory().await.unwrap();
        let org_a = accounts::create_organisation(&db, "a", T0).await.unwrap();
        let org_b = accounts::create_organisation(&db, "b", T0).await.unwrap();
        let now = Arc::new(AtomicI64::new(T0));
        let clock = now.clone();
        let router = router(
            AppState::new(db.clone()).with_clock(Arc::new(move || clock.load(Ordering::SeqCst))),
        );
        App {
            db,
            router,
            now,
            org_a,
            org_b,
        }
    }

    fn advance(&self, secs: i64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }

    async fn key(&self, org: OrgId, role: Role) -> (i64, PlainKey) {
        let new = NewKey {
            name: format!("{role} key"),
            cidrs: Vec::new(),
        };
        let (row, key) = apikey::create(&self.db, org, role, new, "cli", T0)
            .await
            .unwrap();
        (row.id, key)
    }

    async fn call(
        &self,
        method: Method,
        uri: &str,
        who: As<'_>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        req = match who {
            As::Key(k) => req.header("X-AUTH-TOKEN", k.expose()),
            As::Session(c) => req.header(header::COOKIE, c).header("X-Dialcast-CSRF", "1"),
        };
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_owned())
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        let addr: SocketAddr = "192.0.2.1:40000".parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let problem = res
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v == "application/problem+json");
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        if !status.is_success() {
            assert!(problem, "{status}: an error is a problem+json: {json}");
        }
        (status, json)
    }

    async fn json(
        &self,
        method: Method,
        uri: &str,
        who: As<'_>,
        body: Value,
    ) -> (StatusCode, Value) {
        self.call(method, uri, who, Some(&body.to_string())).await
    }

    async fn users(&self, who: As<'_>) -> Vec<Value> {
        let (status, body) = self.call(Method::GET, "/api/v1/users", who, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array().unwrap().clone()
    }

    /// A user of `org` who has set [`PASSWORD`], logged in: id and cookie.
    async fn session(&self, org: OrgId, email: &str, role: Role) -> (i64, String) {
        let now = self.now.load(Ordering::SeqCst);
        let (id, _) = accounts::create_user(&self.db, org, email, role, "cli", now)
            .await
            .unwrap();
        let mut tx = self.db.begin().await.unwrap();
        accounts::set_password(&mut tx, id, PASSWORD, now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        (id, self.login(email, PASSWORD).await)
    }

    async fn login(&self, email: &str, password: &str) -> String {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/api/v1/auth/login")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                json!({"email": email, "password": password}).to_string(),
            ))
            .unwrap();
        let res = self.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.headers()
            .get(header::SET_COOKIE)
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned()
    }

    async fn audit(&self, org: OrgId) -> Vec<(String, String, String, String)> {
        sqlx::query_as(
            "SELECT actor, action, target, detail FROM portal_audit_log WHERE org_id = ? ORDER BY id",
        )
        .bind(org.0)
        .fetch_all(&self.db)
        .await
        .unwrap()
    }
}

fn problem(res: &(StatusCode, Value), status: StatusCode, slug: &str) {
    assert_eq!(res.0, status, "{}", res.1);
    assert_eq!(
        res.1["type"],
        format!("https://dialcast.dev/problems/{slug}"),
        "{}",
        res.1
    );
}

#[tokio::test]
async fn a_manager_creates_lists_changes_and_removes_a_user() {
    let app = App::spawn().await;
    let (key_id, key) = app.key(app.org_a, Role::Manager).await;
    let (_, manager) = app
        .session(app.org_a, "boss@a.example", Role::Manager)
        .await;
    let actor = format!("apikey:{key_id}");

    let (status, created) = app
        .json(
            Method::POST,
            "/api/v1/users",
            As::Key(&key),
            json!({"email": " ann@a.example ", "role": "file", "modules": ["emandate", "paylink", "emandate"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["existing_account"], false);
    let temp = created["temporary_password"].as_str().unwrap().to_owned();
    assert_eq!(temp.len(), 20);
    let user = &created["user"];
    let id = user["id"].as_i64().unwrap();
    assert_eq!(user["email"], "ann@a.example");
    assert_eq!(user["role"], "file");
    assert_eq!(user["modules"], json!(["paylink", "emandate"]));
    assert_eq!(user["default_organisation"], true);
    assert_eq!(user["temporary_password_pending"], true);
    assert_eq!(user["temporary_password_expired"], false);
    assert_eq!(user["temporary_password_expires_at"], T0 + 14 * DAY);
    assert_eq!(user["second_factor"], Value::Null);

    // The list shows both users, and no secret.
    let list = app.users(As::Session(&manager)).await;
    let emails: Vec<&str> = list.iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["ann@a.example", "boss@a.example"]);
    let text = serde_json::to_string(&list).unwrap();
    for secret in [temp.as_str(), "argon2", "password_hash", PASSWORD] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    let boss = list
        .iter()
        .find(|u| u["email"] == "boss@a.example")
        .unwrap();
    assert_eq!(boss["temporary_password_pending"], false);
    assert_eq!(boss["temporary_password_expires_at"], Value::Null);

    // The temporary password works, for a password change first.
    let cookie = app.login("ann@a.example", &temp).await;
    let (status, me) = app
        .call(Method::GET, "/api/v1/me", As::Session(&cookie), None)
        .await;
    problem(
        &(status, me),
        StatusCode::FORBIDDEN,
        "password-change-required",
    );

    // Role and modules change; absent fields stay.
    let uri = format!("/api/v1/users/{id}");
    let (status, changed) = app
        .json(
            Method::PATCH,
            &uri,
            As::Key(&key),
            json!({"role": "dashboard"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["role"], "dashboard");
    assert_eq!(changed["modules"], json!(["paylink", "emandate"]));
    let (status, changed) = app
        .json(
            Method::PATCH,
            &uri,
            As::Session(&manager),
            json!({"modules": []}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["role"], "dashboard");
    assert_eq!(changed["modules"], json!([]));
    // Nothing to change: the same member, nothing audited.
    let (status, _) = app
        .json(Method::PATCH, &uri, As::Key(&key), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Removed: gone from the list, and their session with it.
    let (status, _) = app.call(Method::DELETE, &uri, As::Key(&key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let list = app.users(As::Key(&key)).await;
    assert_eq!(list.len(), 1);
    problem(
        &app.call(Method::DELETE, &uri, As::Key(&key), None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    let (status, _) = app
        .call(Method::GET, "/api/v1/me", As::Session(&cookie), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Added again: the account is kept, and this is its default again.
    let (status, again) = app
        .json(
            Method::POST,
            "/api/v1/users",
            As::Key(&key),
            json!({"email": "ann@a.example", "role": "normal"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again["existing_account"], true);
    assert_eq!(again["user"]["id"], id);
    assert_eq!(again["user"]["default_organisation"], true);

    // Every change is audited with the credential that made it.
    let audit: Vec<(String, String, String, String)> = app
        .audit(app.org_a)
        .await
        .into_iter()
        .filter(|(_, action, _, _)| action.starts_with("user.") && action != "user.password_change")
        .collect();
    let target = format!("user:{id}");
    let manager_actor = audit
        .iter()
        .find(|(_, a, _, d)| a == "user.modules" && d.ends_with("to="))
        .map(|(actor, ..)| actor.clone())
        .unwrap();
    assert!(manager_actor.starts_with("user:"), "{manager_actor}");
    let mine: Vec<(&str, &str, &str)> = audit
        .iter()
        .filter(|(_, _, t, _)| *t == target)
        .map(|(actor, action, _, detail)| (actor.as_str(), action.as_str(), detail.as_str()))
        .collect();
    assert_eq!(
        mine,
        [
            (actor.as_str(), "user.create", "role=file"),
            (actor.as_str(), "user.modules", "from= to=paylink,emandate"),
            (actor.as_str(), "user.role", "from=file to=dashboard"),
            (
                manager_actor.as_str(),
                "user.modules",
                "from=paylink,emandate to="
            ),
            (actor.as_str(), "user.remove", "role=dashboard"),
            (
                actor.as_str(),
                "user.membership",
                "role=normal modules= existing_account"
            ),
        ]
    );
    let all = serde_json::to_string(&app.audit(app.org_a).await).unwrap();
    assert!(!all.contains(&temp), "no password in the audit log");
}

#[tokio::test]
async fn an_existing_account_gets_a_membership_and_nothing_of_its_other_organisations() {
    let app = App::spawn().await;
    let (_, key_a) = app.key(app.org_a, Role::Manager).await;
    let (_, key_b) = app.key(app.org_b, Role::Manager).await;
    let (id, cookie) = app
        .session(app.org_b, "bob@b.example", Role::Scheduler)
        .await;
    let (status, created) = app
        .json(
            Method::POST,
            "/api/v1/users",
            As::Key(&key_a),
            json!({"email": "BOB@b.example", "role": "normal", "modules": ["paylink"]}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["existing_account"], true);
    assert_eq!(created["temporary_password"], Value::Null);
    assert!(created["message"]
        .as_str()
        .unwrap()
        .contains("already had an account"));
    assert_eq!(created["user"]["id"], id);
    assert_eq!(created["user"]["role"], "normal");
    assert_eq!(created["user"]["default_organisation"], false);
    let text = created.to_string();
    for other in ["scheduler", "\"b\""] {
        assert!(!text.contains(other), "{other} of organisation b in {text}");
    }
    // Organisation b's view is unchanged; the account keeps its password.
    let b = app.users(As::Key(&key_b)).await;
    assert_eq!(b[0]["role"], "scheduler");
    assert_eq!(b[0]["modules"], json!([]));
    app.login("bob@b.example", PASSWORD).await;
    // Again: already a member.
    problem(
        &app.json(
            Method::POST,
            "/api/v1/users",
            As::Key(&key_a),
            json!({"email": "bob@b.example", "role": "normal"}),
        )
        .await,
        StatusCode::CONFLICT,
        "already-a-member",
    );
    // The membership audit is in a only, and says what it is.
    let audit = app.audit(app.org_a).await;
    assert!(audit
        .iter()
        .any(|(_, action, target, detail)| action == "user.membership"
            && *target == format!("user:{id}")
            && detail.contains("existing_account")
            && detail.contains("modules=paylink")));
    assert!(!app
        .audit(app.org_b)
        .await
        .iter()
        .any(|(_, action, ..)| action == "user.membership"));

    // /me shows the module access per organisation.
    let (status, me) = app
        .call(Method::GET, "/api/v1/me", As::Session(&cookie), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let orgs = me["account"]["organisations"].as_array().unwrap();
    let modules: Vec<(i64, Value)> = orgs
        .iter()
        .map(|o| (o["organisation_id"].as_i64().unwrap(), o["modules"].clone()))
        .collect();
    assert_eq!(
        modules,
        [(app.org_a.0, json!(["paylink"])), (app.org_b.0, json!([]))]
    );
    assert_eq!(me["account"]["default_organisation_id"], app.org_b.0);
}

#[tokio::test]
async fn another_organisations_user_is_404_and_left_alone() {
    let app = App::spawn().await;
    let (_, key_a) = app.key(app.org_a, Role::Manager).await;
    let (_, key_b) = app.key(app.org_b, Role::Manager).await;
    let (bob, _) = app.session(app.org_b, "bob@b.example", Role::Manager).await;
    let (_, _) = app.session(app.org_b, "bea@b.example", Role::Manager).await;
    let uri = format!("/api/v1/users/{bob}");
    problem(
        &app.json(
            Method::PATCH,
            &uri,
            As::Key(&key_a),
            json!({"role": "normal"}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    problem(
        &app.call(Method::DELETE, &uri, As::Key(&key_a), None).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    // Missing ids and bad ones look the same.
    for uri in [
        "/api/v1/users/999999",
        "/api/v1/users/abc",
        "/api/v1/users/99999999999999999999",
    ] {
        problem(
            &app.json(Method::PATCH, uri, As::Key(&key_a), json!({}))
                .await,
            StatusCode::NOT_FOUND,
            "not-found",
        );
    }
    assert!(app.users(As::Key(&key_a)).await.is_empty());
    let b = app.users(As::Key(&key_b)).await;
    assert!(b.iter().all(|u| u["role"] == "manager"), "{b:?}");
    assert_eq!(b.len(), 2);
    assert!(!app
        .audit(app.org_a)
        .await
        .iter()
        .any(|(_, action, ..)| action.starts_with("user.")));
}

#[tokio::test]
async fn the_last_manager_and_oneself_stay() {
    let app = App::spawn().await;
    let (_, key) = app.key(app.org_a, Role::Manager).await;
    let (boss, cookie) = app
        .session(app.org_a, "boss@a.example", Role::Manager)
        .await;
    let uri = format!("/api/v1/users/{boss}");
    problem(
        &app.json(Method::PATCH, &uri, As::Key(&key), json!({"role": "file"}))
            .await,
        StatusCode::CONFLICT,
        "last-manager",
    );
    problem(
        &app.call(Method::DELETE, &uri, As::Key(&key), None).await,
        StatusCode::CONFLICT,
        "last-manager",
    );
    // Manager to manager is no demotion.
    let (status, _) = app
        .json(
            Method::PATCH,
            &uri,
            As::Key(&key),
            json!({"role": "manager", "modules": ["paylink"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // With a second manager, the first may go, but not by their own hand.
    let (status, second) = app
        .json(
            Method::POST,
            "/api/v1/users",
            As::Key(&key),
            json!({"email": "two@a.example", "role": "manager"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let two = second["user"]["id"].as_i64().unwrap();
    problem(
        &app.call(Method::DELETE, &uri, As::Session(&cookie), None)
            .await,
        StatusCode::CONFLICT,
        "own-membership",
    );
    let (status, _) = app.call(Method::DELETE, &uri, As::Key(&key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    problem(
        &app.json(
            Method::PATCH,
            &format!("/api/v1/users/{two}"),
            As::Key(&key),
            json!({"role": "normal"}),
        )
        .await,
        StatusCode::CONFLICT,
        "last-manager",
    );
    assert_eq!(app.users(As::Key(&key)).await.len(), 1);
}

#[tokio::test]
async fn below_manager_is_refused_and_bad_bodies_are_400() {
    let app = App::spawn().await;
    let (_, manager) = app.key(app.org_a, Role::Manager).await;
    let (target, _) = app.session(app.org_a, "t@a.example", Role::Normal).await;
    let uri = format!("/api/v1/users/{target}");
    for role in [Role::Normal, Role::Dashboard, Role::Scheduler, Role::File] {
        let (_, key) = app.key(app.org_a, role).await;
        let who = As::Key(&key);
        for res in [
            app.call(Method::GET, "/api/v1/users", who, None).await,
            app.json(
                Method::POST,
                "/api/v1/users",
                who,
                json!({"email": "x@a.example", "role": "normal"}),
            )
            .await,
            // Not even a role at or below its own.
            app.json(Method::PATCH, &uri, who, json!({"role": "normal"}))
                .await,
            app.call(Method::DELETE, &uri, who, None).await,
        ] {
            problem(&res, StatusCode::FORBIDDEN, "forbidden");
        }
    }
    let who = As::Key(&manager);
    for body in [
        "not json",
        r#"{"email": "x@a.example"}"#,
        r#"{"email": "x@a.example", "role": "admin"}"#,
        r#"{"email": "x@a.example", "role": "file", "modules": ["payroll"]}"#,
    ] {
        problem(
            &app.call(Method::POST, "/api/v1/users", who, Some(body))
                .await,
            StatusCode::BAD_REQUEST,
            "bad-request",
        );
    }
    problem(
        &app.call(Method::PATCH, &uri, who, Some(r#"{"role": "root"}"#))
            .await,
        StatusCode::BAD_REQUEST,
        "bad-request",
    );
    problem(
        &app.json(
            Method::POST,
            "/api/v1/users",
            who,
            json!({"email": "no-at-sign", "role": "file"}),
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid",
    );
    // Nothing was written.
    assert_eq!(app.users(who).await.len(), 1);
    assert!(!app
        .audit(app.org_a)
        .await
        .iter()
        .any(|(_, action, ..)| action.starts_with("user.") && action != "user.create"));
}

#[tokio::test]
async fn an_unchanged_temporary_password_shows_as_expired_after_14_days() {
    let app = App::spawn().await;
    let (_, key) = app.key(app.org_a, Role::Manager).await;
    let (_, created) = app
        .json(
            Method::POST,
            "/api/v1/users",
            As::Key(&key),
            json!({"email": "late@a.example", "role": "normal"}),
        )
        .await;
    app.advance(14 * DAY);
    let list = app.users(As::Key(&key)).await;
    assert_eq!(list[0]["id"], created["user"]["id"]);
    assert_eq!(list[0]["temporary_password_pending"], false);
    assert_eq!(list[0]["temporary_password_expired"], true);
}

#[tokio::test]
async fn a_user_sets_their_own_default_organisation_among_their_memberships() {
    let app = App::spawn().await;
    let (_, key_b) = app.key(app.org_b, Role::Manager).await;
    let (id, cookie) = app.session(app.org_a, "ann@a.example", Role::File).await;
    let body = json!({"organisation_id": app.org_b.0});
    // Not a member of b yet.
    problem(
        &app.json(
            Method::PUT,
            "/api/v1/me/default-organisation",
            As::Session(&cookie),
            body.clone(),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    app.json(
        Method::POST,
        "/api/v1/users",
        As::Key(&key_b),
        json!({"email": "ann@a.example", "role": "dashboard"}),
    )
    .await;
    let (status, account) = app
        .json(
            Method::PUT,
            "/api/v1/me/default-organisation",
            As::Session(&cookie),
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["default_organisation_id"], app.org_b.0);
    // The next login starts there.
    let again = app.login("ann@a.example", PASSWORD).await;
    let (_, me) = app
        .call(Method::GET, "/api/v1/me", As::Session(&again), None)
        .await;
    assert_eq!(me["organisation_id"], app.org_b.0);
    assert_eq!(me["role"], "dashboard");
    // Organisation b's managers see it; the audit names the user.
    let b = app.users(As::Key(&key_b)).await;
    assert_eq!(b[0]["default_organisation"], true);
    assert!(app
        .audit(app.org_b)
        .await
        .iter()
        .any(|(actor, action, ..)| action == "user.default_org" && *actor == format!("user:{id}")));
    // An API key has no default organisation.
    let (_, key_a) = app.key(app.org_a, Role::Manager).await;
    let (status, _) = app
        .json(
            Method::PUT,
            "/api/v1/me/default-organisation",
            As::Key(&key_a),
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    problem(
        &app.call(
            Method::PUT,
            "/api/v1/me/default-organisation",
            As::Session(&cookie),
            Some("{}"),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "bad-request",
    );
}
