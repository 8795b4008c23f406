//! The API end to end through the router (`tower::ServiceExt::oneshot`), on
//! a fresh in-memory database per test.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use dialcast_portal_api::apikey::{self, NewKey, PlainKey};
use dialcast_portal_api::{accounts, cidr, db, router, AppState, OrgId, Role};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::SqlitePool;
use tower::ServiceExt;

const T0: i64 = 1_800_000_000;

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

    async fn key(&self, org: OrgId, role: Role, cidrs: &[&str]) -> (i64, PlainKey) {
        let new = NewKey {
            name: format!("{role} key"),
            cidrs: cidr::parse_list(cidrs).unwrap(),
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
        key: Option<&PlainKey>,
        body: Option<Value>,
        from: Option<&str>,
    ) -> (StatusCode, String, Value) {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(k) = key {
            req = req.header("X-AUTH-TOKEN", k.expose());
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        if let Some(addr) = from {
            let addr: SocketAddr = addr.parse().unwrap();
            req.extensions_mut().insert(ConnectInfo(addr));
        }
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let ctype = res
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, ctype, json)
    }

    async fn get(&self, uri: &str, key: &PlainKey) -> (StatusCode, String, Value) {
        self.call(Method::GET, uri, Some(key), None, None).await
    }
}

fn assert_problem(res: &(StatusCode, String, Value), status: StatusCode, slug: &str) {
    assert_eq!(res.0, status, "{:?}", res.2);
    assert_eq!(res.1, "application/problem+json");
    assert_eq!(
        res.2["type"],
        format!("https://dialcast.dev/problems/{slug}")
    );
    assert_eq!(res.2["status"], status.as_u16());
    assert!(res.2["title"].is_string());
    assert!(res.2["detail"].is_string());
}

#[tokio::test]
async fn me_names_the_key_organisation_and_role() {
    let app = App::spawn().await;
    let (id, key) = app.key(app.org_a, Role::Dashboard, &[]).await;
    let (status, _, body) = app.get("/api/v1/me", &key).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"organisation_id": app.org_a.0, "role": "dashboard", "api_key_id": id})
    );
}

#[tokio::test]
async fn missing_or_invalid_key_is_401_problem() {
    let app = App::spawn().await;
    let res = app.call(Method::GET, "/api/v1/me", None, None, None).await;
    assert_problem(&res, StatusCode::UNAUTHORIZED, "unauthorised");
    // Well-formed but unknown, and a known prefix with a wrong secret.
    let (_, real) = app.key(app.org_a, Role::Manager, &[]).await;
    let forged = format!("dc_{}_{}", real.prefix(), "0".repeat(64));
    for token in [
        PlainKey::generate().expose().to_owned(),
        forged,
        "junk".into(),
    ] {
        let req = Request::get("/api/v1/me")
            .header("X-AUTH-TOKEN", token)
            .body(Body::empty())
            .unwrap();
        let res = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn org_a_key_sees_only_org_a_keys() {
    let app = App::spawn().await;
    let (a_id, a_key) = app.key(app.org_a, Role::Manager, &[]).await;
    let (b_id, b_key) = app.key(app.org_b, Role::Manager, &[]).await;
    let (status, _, body) = app.get("/api/v1/apikeys", &a_key).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![a_id]);
    assert!(!body.to_string().contains(b_key.prefix()));
    // Nor can it revoke org B's key: it looks like a missing one.
    let res = app
        .call(
            Method::DELETE,
            &format!("/api/v1/apikeys/{b_id}"),
            Some(&a_key),
            None,
            None,
        )
        .await;
    assert_problem(&res, StatusCode::NOT_FOUND, "not-found");
    assert_eq!(app.get("/api/v1/me", &b_key).await.0, StatusCode::OK);
}

#[tokio::test]
async fn below_manager_is_403_on_key_and_audit_endpoints() {
    let app = App::spawn().await;
    for role in [Role::Normal, Role::Dashboard, Role::Scheduler, Role::File] {
        let (_, key) = app.key(app.org_a, role, &[]).await;
        let post = app
            .call(
                Method::POST,
                "/api/v1/apikeys",
                Some(&key),
                Some(json!({"role": "normal"})),
                None,
            )
            .await;
        assert_problem(&post, StatusCode::FORBIDDEN, "forbidden");
        assert_problem(
            &app.get("/api/v1/apikeys", &key).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        assert_problem(
            &app.get("/api/v1/audit", &key).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
        let del = app
            .call(Method::DELETE, "/api/v1/apikeys/1", Some(&key), None, None)
            .await;
        assert_problem(&del, StatusCode::FORBIDDEN, "forbidden");
    }
}

#[tokio::test]
async fn created_key_works_once_shown_and_revoked_key_is_401() {
    let app = App::spawn().await;
    let (manager_id, manager) = app.key(app.org_a, Role::Manager, &[]).await;
    let (status, _, created) = app
        .call(
            Method::POST,
            "/api/v1/apikeys",
            Some(&manager),
            Some(json!({"role": "scheduler", "name": "nightly"})),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["role"], "scheduler");
    assert_eq!(created["created_by"], format!("apikey:{manager_id}"));

    // The listing never shows the secret.
    let (_, _, list) = app.get("/api/v1/apikeys", &manager).await;
    assert!(!list.to_string().contains(&token));

    let new_key = |t: &str| {
        Request::get("/api/v1/me")
            .header("X-AUTH-TOKEN", t)
            .body(Body::empty())
            .unwrap()
    };
    let res = app.router.clone().oneshot(new_key(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let del = app
        .call(
            Method::DELETE,
            &format!("/api/v1/apikeys/{id}"),
            Some(&manager),
            None,
            None,
        )
        .await;
    assert_eq!(del.0, StatusCode::NO_CONTENT);
    let res = app.router.clone().oneshot(new_key(&token)).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Revoking twice is a 404: there is no live key with that id.
    let again = app
        .call(
            Method::DELETE,
            &format!("/api/v1/apikeys/{id}"),
            Some(&manager),
            None,
            None,
        )
        .await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not-found");

    // Both changes are in the audit log, newest first.
    let (status, _, audit) = app.get("/api/v1/audit", &manager).await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<(&str, &str)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["action"].as_str().unwrap(), r["target"].as_str().unwrap()))
        .collect();
    let target = format!("apikey:{id}");
    assert_eq!(
        actions[..2],
        [
            ("apikey.revoke", target.as_str()),
            ("apikey.create", target.as_str())
        ]
    );
}

#[tokio::test]
async fn manager_cannot_grant_above_own_role_and_bad_bodies_are_400() {
    let app = App::spawn().await;
    let (_, manager) = app.key(app.org_a, Role::Manager, &[]).await;
    for body in [
        json!({"role": "root"}),
        json!({"name": "no role"}),
        json!({"role": "normal", "allowed_cidrs": ["10.0.0.0/33"]}),
    ] {
        let res = app
            .call(
                Method::POST,
                "/api/v1/apikeys",
                Some(&manager),
                Some(body),
                None,
            )
            .await;
        assert_problem(&res, StatusCode::BAD_REQUEST, "bad-request");
    }
    // Managers may grant manager (their own role); the guard against
    // granting above one's own role is covered in authz unit tests, since
    // only managers reach this endpoint.
    let res = app
        .call(
            Method::POST,
            "/api/v1/apikeys",
            Some(&manager),
            Some(json!({"role": "manager"})),
            None,
        )
        .await;
    assert_eq!(res.0, StatusCode::CREATED);
}

#[tokio::test]
async fn allowlisted_key_checks_the_client_address() {
    let app = App::spawn().await;
    let (_, key) = app
        .key(app.org_a, Role::Normal, &["192.0.2.0/24", "2001:db8::/32"])
        .await;
    let me =
        |from: Option<&'static str>| app.call(Method::GET, "/api/v1/me", Some(&key), None, from);
    assert_eq!(me(Some("192.0.2.9:5000")).await.0, StatusCode::OK);
    assert_eq!(me(Some("[2001:db8::7]:5000")).await.0, StatusCode::OK);
    assert_eq!(me(Some("[::ffff:192.0.2.9]:5000")).await.0, StatusCode::OK);
    assert_problem(
        &me(Some("198.51.100.1:5000")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorised",
    );
    // Unknown address: an allowlisted key refuses.
    assert_eq!(me(None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn last_used_is_recorded_at_most_once_a_minute() {
    let app = App::spawn().await;
    let (_, key) = app.key(app.org_a, Role::Manager, &[]).await;
    let last_used = || async {
        let (_, _, list) = app.get("/api/v1/apikeys", &key).await;
        list[0]["last_used_at"].clone()
    };
    // The listing itself uses the key, at T0.
    assert_eq!(last_used().await, json!(T0));
    app.now.store(T0 + 30, Ordering::SeqCst);
    assert_eq!(last_used().await, json!(T0));
    app.now.store(T0 + 61, Ordering::SeqCst);
    assert_eq!(last_used().await, json!(T0 + 61));
}

#[tokio::test]
async fn unknown_route_and_method_are_problems() {
    let app = App::spawn().await;
    let (_, key) = app.key(app.org_a, Role::Manager, &[]).await;
    assert_problem(
        &app.get("/api/v1/nothing", &key).await,
        StatusCode::NOT_FOUND,
        "not-found",
    );
    let res = app
        .call(Method::PUT, "/api/v1/me", Some(&key), None, None)
        .await;
    assert_problem(&res, StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed");
}

#[tokio::test]
async fn openapi_json_is_served_and_lists_the_endpoints() {
    let app = App::spawn().await;
    let res = app
        .call(Method::GET, "/api-docs/openapi.json", None, None, None)
        .await;
    assert_eq!(res.0, StatusCode::OK);
    let doc = res.2;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{doc}");
    let paths = &doc["paths"];
    for (path, method) in [
        ("/api/v1/me", "get"),
        ("/api/v1/apikeys", "get"),
        ("/api/v1/apikeys", "post"),
        ("/api/v1/apikeys/{id}", "delete"),
        ("/api/v1/audit", "get"),
    ] {
        assert!(paths[path][method].is_object(), "{method} {path} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["name"],
        "X-AUTH-TOKEN"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn create_user_stores_an_argon2id_temporary_password() {
    let app = App::spawn().await;
    let (id, password) = accounts::create_user(
        &app.db,
        app.org_a,
        "ops@example.org",
        Role::Manager,
        "cli",
        T0,
    )
    .await
    .unwrap();
    let (hash, must_change, expires): (String, bool, i64) = sqlx::query_as(
        "SELECT password_hash, must_change_password, temp_expires_at FROM portal_users WHERE id = ?",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(hash.starts_with("$argon2id$"));
    assert!(accounts::verify_password(password.expose(), &hash));
    assert!(must_change);
    assert_eq!(expires, T0 + 14 * 24 * 3600);
    let role: String =
        sqlx::query_scalar("SELECT role FROM portal_memberships WHERE user_id = ? AND org_id = ?")
            .bind(id)
            .bind(app.org_a.0)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(role, "manager");
    // Same address again, in any case, is refused.
    let again = accounts::create_user(
        &app.db,
        app.org_b,
        "OPS@example.org",
        Role::Normal,
        "cli",
        T0,
    )
    .await;
    assert!(matches!(again, Err(accounts::AccountError::EmailTaken(_))));
    assert_eq!(
        accounts::organisation_by_name(&app.db, "a").await.unwrap(),
        app.org_a
    );
}

#[tokio::test]
async fn portal_migrations_keep_their_own_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    // Pretend the engine has applied its migrations in the same file.
    {
        let engine = sqlx::sqlite::SqlitePoolOptions::new()
            .connect_with(
                sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(&path)
                    .create_if_missing(true),
            )
            .await
            .unwrap();
        let m = sqlx::migrate::Migrator::with_migrations(vec![sqlx::migrate::Migration::new(
            1,
            "engine".into(),
            sqlx::migrate::MigrationType::Simple,
            sqlx::SqlSafeStr::into_sql_str("CREATE TABLE engine_thing (id INTEGER)"),
            false,
        )]);
        m.run(&engine).await.unwrap();
        engine.close().await;
    }
    let portal = db::open(&path).await.unwrap();
    // Opening again is a no-op.
    db::migrate(&portal).await.unwrap();
    let engine_versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&portal)
            .await
            .unwrap();
    let portal_versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _portal_migrations ORDER BY version")
            .fetch_all(&portal)
            .await
            .unwrap();
    assert_eq!(engine_versions, vec![1]);
    assert_eq!(portal_versions, vec![1000, 1001]);
    portal.close().await;
}
