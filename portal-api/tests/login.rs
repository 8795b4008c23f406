//! Logins end to end through the router (`tower::ServiceExt::oneshot`), on
//! a fresh in-memory database per test and a virtual clock: nothing sleeps,
//! the tests move the clock.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use axum::Router;
use dialcast_portal_api::second_factor::{self, Channel, Content, SendFuture};
use dialcast_portal_api::{
    accounts, db, router, AppState, AuthConfig, CodeSender, OrgId, Outbound, Role,
};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use sqlx::SqlitePool;
use tower::ServiceExt;

/// A multiple of 30, so TOTP steps start on it.
const T0: i64 = 1_800_000_000;
const DAY: i64 = 24 * 3600;
const PASSWORD: &str = "a long enough password";
const HOME: &str = "192.0.2.1:40000";

/// Records what would go to the outbox.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Outbound>>>);

impl CodeSender for Recorder {
    fn send<'a>(&'a self, message: &'a Outbound) -> SendFuture<'a> {
        self.0.lock().unwrap().push(message.clone());
        Box::pin(async { Ok(()) })
    }
}

impl Recorder {
    fn take(&self) -> Vec<Outbound> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }

    fn last_code(&self) -> String {
        match self.take().pop().unwrap().content {
            Content::LoginCode { code, .. } => code,
            other => panic!("not a login code: {other:?}"),
        }
    }
}

struct Res {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

impl Res {
    /// `name=value` of the Set-Cookie header, to send back.
    fn cookie(&self) -> String {
        self.set_cookie().split(';').next().unwrap().to_owned()
    }

    fn set_cookie(&self) -> &str {
        self.headers
            .get(header::SET_COOKIE)
            .expect("a Set-Cookie header")
            .to_str()
            .unwrap()
    }

    fn problem(&self, status: StatusCode, slug: &str) {
        assert_eq!(self.status, status, "{}", self.json);
        assert_eq!(
            self.headers.get(header::CONTENT_TYPE).unwrap(),
            "application/problem+json"
        );
        assert_eq!(
            self.json["type"],
            format!("https://dialcast.dev/problems/{slug}"),
            "{}",
            self.json
        );
    }

    fn ok(&self) -> &Self {
        assert!(self.status.is_success(), "{} {}", self.status, self.json);
        self
    }
}

struct App {
    db: SqlitePool,
    router: Router,
    now: Arc<AtomicI64>,
    sent: Recorder,
    org_a: OrgId,
    org_b: OrgId,
    org_c: OrgId,
}

impl App {
    async fn spawn() -> App {
        App::with_config(AuthConfig::default()).await
    }

    async fn with_config(cfg: AuthConfig) -> App {
        let db = db::open_in_memory().await.unwrap();
        let org_a = accounts::create_organisation(&db, "a", T0).await.unwrap();
        let org_b = accounts::create_organisation(&db, "b", T0).await.unwrap();
        let org_c = accounts::create_organisation(&db, "c", T0).await.unwrap();
        let now = Arc::new(AtomicI64::new(T0));
        let clock = now.clone();
        let sent = Recorder::default();
        let router = router(
            AppState::new(db.clone())
                .with_clock(Arc::new(move || clock.load(Ordering::SeqCst)))
                .with_auth(cfg)
                .with_code_sender(Arc::new(sent.clone())),
        );
        App {
            db,
            router,
            now,
            sent,
            org_a,
            org_b,
            org_c,
        }
    }

    fn now(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }

    fn advance(&self, secs: i64) {
        self.now.fetch_add(secs, Ordering::SeqCst);
    }

    async fn request(
        &self,
        method: Method,
        uri: &str,
        cookie: Option<&str>,
        body: Option<Value>,
        from: &str,
        csrf: bool,
    ) -> Res {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(c) = cookie {
            req = req.header(header::COOKIE, c);
        }
        if csrf {
            req = req.header("X-Dialcast-CSRF", "1");
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).unwrap();
        let addr: SocketAddr = from.parse().unwrap();
        req.extensions_mut().insert(ConnectInfo(addr));
        let res = self.router.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Res {
            status,
            headers,
            json,
        }
    }

    async fn post(&self, uri: &str, cookie: Option<&str>, body: Value) -> Res {
        self.request(Method::POST, uri, cookie, Some(body), HOME, true)
            .await
    }

    async fn get(&self, uri: &str, cookie: &str) -> Res {
        self.request(Method::GET, uri, Some(cookie), None, HOME, false)
            .await
    }

    async fn login_from(&self, email: &str, password: &str, from: &str) -> Res {
        self.request(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
            from,
            false,
        )
        .await
    }

    async fn login(&self, email: &str, password: &str) -> Res {
        self.login_from(email, password, HOME).await
    }

    /// A new user of org a with a temporary password, issued now.
    async fn new_user(&self, email: &str, role: Role) -> (i64, String) {
        let (id, pw) = accounts::create_user(&self.db, self.org_a, email, role, "cli", self.now())
            .await
            .unwrap();
        (id, pw.expose().to_owned())
    }

    /// A user who has logged in once and set [`PASSWORD`]; returns the id
    /// and the session cookie.
    async fn ready_user(&self, email: &str, role: Role) -> (i64, String) {
        let (id, temp) = self.new_user(email, role).await;
        let res = self.login(email, &temp).await;
        res.ok();
        let cookie = res.cookie();
        self.post(
            "/api/v1/me/password",
            Some(&cookie),
            json!({"current_password": temp, "new_password": PASSWORD}),
        )
        .await
        .ok();
        (id, cookie)
    }

    async fn audit_actions(&self, org: OrgId) -> Vec<String> {
        sqlx::query_scalar("SELECT action FROM portal_audit_log WHERE org_id = ? ORDER BY id")
            .bind(org.0)
            .fetch_all(&self.db)
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn login_sets_a_strict_http_only_secure_cookie_and_logout_ends_it() {
    let app = App::spawn().await;
    app.ready_user("ann@example.org", Role::Manager).await;
    let res = app.login("ann@example.org", PASSWORD).await;
    res.ok();
    assert_eq!(res.json["status"], "logged_in");
    assert_eq!(res.json["organisation_id"], app.org_a.0);
    assert_eq!(res.json["role"], "manager");
    assert_eq!(res.json["session_expires_at"], T0 + 12 * 3600);
    let set = res.set_cookie();
    let cookie = res.cookie();
    let (name, value) = cookie.split_once('=').unwrap();
    assert_eq!(name, "__Host-dialcast_session");
    assert_eq!(value.len(), 64, "256 bits as hex");
    for attr in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(set.split("; ").any(|a| a == attr), "{attr} in {set}");
    }
    assert!(!set.contains("Domain"), "{set}");
    // Only the hash is stored.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("SELECT token_hash FROM portal_sessions")
        .fetch_all(&app.db)
        .await
        .unwrap();
    assert!(stored
        .iter()
        .all(|h| h.len() == 32 && h != value.as_bytes()));

    let me = app.get("/api/v1/me", &cookie).await;
    me.ok();
    assert_eq!(me.json["account"]["email"], "ann@example.org");
    assert_eq!(me.json["api_key_id"], Value::Null);
    // A session works on the manager's endpoints like a key does.
    app.get("/api/v1/apikeys", &cookie).await.ok();

    let out = app
        .post("/api/v1/auth/logout", Some(&cookie), json!({}))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(out.set_cookie().contains("Max-Age=0"));
    app.get("/api/v1/me", &cookie)
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");
    let actions = app.audit_actions(app.org_a).await;
    for action in [
        "user.create",
        "session.login",
        "user.password_change",
        "session.logout",
    ] {
        assert!(
            actions.contains(&action.to_owned()),
            "{action} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_address_get_the_same_answer() {
    let app = App::spawn().await;
    app.ready_user("ann@example.org", Role::Normal).await;
    let bad = app.login("ann@example.org", "not the password").await;
    bad.problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert!(bad.headers.get(header::SET_COOKIE).is_none());
    let unknown = app.login("nobody@example.org", PASSWORD).await;
    unknown.problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    assert_eq!(bad.json, unknown.json);
    // The address is matched without regard to case.
    app.login("ANN@example.org", PASSWORD).await.ok();
}

#[tokio::test]
async fn plain_http_development_cookie_has_no_secure_flag() {
    let app = App::with_config(AuthConfig {
        secure_cookies: false,
        ..AuthConfig::default()
    })
    .await;
    let (_, cookie) = app.ready_user("ann@example.org", Role::Normal).await;
    assert!(cookie.starts_with("dialcast_session="));
    let res = app.login("ann@example.org", PASSWORD).await;
    assert!(!res.set_cookie().contains("Secure"));
    app.get("/api/v1/me", &res.cookie()).await.ok();
}

#[tokio::test]
async fn state_changes_with_a_cookie_need_the_csrf_header() {
    let app = App::spawn().await;
    let (_, cookie) = app.ready_user("ann@example.org", Role::Manager).await;
    let res = app
        .request(
            Method::POST,
            "/api/v1/apikeys",
            Some(&cookie),
            Some(json!({"role": "normal"})),
            HOME,
            false,
        )
        .await;
    res.problem(StatusCode::FORBIDDEN, "csrf-header-missing");
    let res = app
        .post("/api/v1/apikeys", Some(&cookie), json!({"role": "normal"}))
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.json);
    // Reads need no header.
    app.get("/api/v1/apikeys", &cookie).await.ok();
    assert!(app
        .audit_actions(app.org_a)
        .await
        .contains(&"apikey.create".to_owned()));
}

#[tokio::test]
async fn temporary_password_works_14_days_and_must_be_changed_first() {
    let app = App::spawn().await;
    let (_, temp) = app.new_user("ann@example.org", Role::Manager).await;
    let (_, temp_b) = app.new_user("bob@example.org", Role::Manager).await;

    app.advance(14 * DAY - 3600); // 13 days 23 hours
    let res = app.login("ann@example.org", &temp).await;
    res.ok();
    assert_eq!(res.json["status"], "password_change_required");
    assert_eq!(res.json["account"]["must_change_password"], true);
    assert_eq!(
        res.json["account"]["temporary_password_expires_at"],
        T0 + 14 * DAY
    );
    let cookie = res.cookie();
    // Nothing but the password change.
    for uri in ["/api/v1/me", "/api/v1/apikeys", "/api/v1/audit"] {
        app.get(uri, &cookie)
            .await
            .problem(StatusCode::FORBIDDEN, "password-change-required");
    }
    app.post(
        "/api/v1/auth/switch-org",
        Some(&cookie),
        json!({"organisation_id": app.org_a.0}),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "password-change-required");
    app.post(
        "/api/v1/me/2fa/totp",
        Some(&cookie),
        json!({"password": temp}),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "password-change-required");
    // The policy: length, not the address, not the old one.
    for bad in ["too short", "ann@example.org", temp.as_str()] {
        app.post(
            "/api/v1/me/password",
            Some(&cookie),
            json!({"current_password": temp, "new_password": bad}),
        )
        .await
        .problem(StatusCode::UNPROCESSABLE_ENTITY, "password-policy");
    }
    app.post(
        "/api/v1/me/password",
        Some(&cookie),
        json!({"current_password": "wrong", "new_password": PASSWORD}),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    let res = app
        .post(
            "/api/v1/me/password",
            Some(&cookie),
            json!({"current_password": temp, "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.json);
    let me = app.get("/api/v1/me", &cookie).await;
    me.ok();
    assert_eq!(me.json["account"]["must_change_password"], false);
    assert_eq!(
        me.json["account"]["temporary_password_expires_at"],
        Value::Null
    );
    assert!(app
        .audit_actions(app.org_a)
        .await
        .contains(&"user.password_change".to_owned()));
    // The temporary password no longer works; the new one does.
    app.login("ann@example.org", &temp)
        .await
        .problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    app.login("ann@example.org", PASSWORD).await.ok();

    // Bob waited one second too long.
    app.advance(3600 + 1);
    assert_eq!(app.now(), T0 + 14 * DAY + 1);
    app.login("bob@example.org", &temp_b)
        .await
        .problem(StatusCode::UNAUTHORIZED, "temporary-password-expired");
}

#[tokio::test]
async fn password_expiry_notice_from_two_weeks_before_six_months_then_must_change() {
    let app = App::spawn().await;
    app.ready_user("ann@example.org", Role::Normal).await;
    let expires = T0 + 183 * DAY;

    app.advance(183 * DAY - 14 * DAY - 1);
    let res = app.login("ann@example.org", PASSWORD).await;
    assert_eq!(res.json["status"], "logged_in");
    assert_eq!(res.json["account"]["password_expiry_notice"], false);
    assert_eq!(res.json["account"]["password_expires_at"], expires);

    app.advance(1);
    let res = app.login("ann@example.org", PASSWORD).await;
    assert_eq!(res.json["status"], "logged_in");
    assert_eq!(res.json["account"]["password_expiry_notice"], true);
    let me = app.get("/api/v1/me", &res.cookie()).await;
    assert_eq!(me.json["account"]["password_expiry_notice"], true);
    assert_eq!(me.json["account"]["password_expires_at"], expires);

    app.advance(14 * DAY);
    assert_eq!(app.now(), expires);
    let res = app.login("ann@example.org", PASSWORD).await;
    assert_eq!(res.json["status"], "password_change_required");
    let cookie = res.cookie();
    app.get("/api/v1/me", &cookie)
        .await
        .problem(StatusCode::FORBIDDEN, "password-change-required");
    let res = app
        .post(
            "/api/v1/me/password",
            Some(&cookie),
            json!({"current_password": PASSWORD, "new_password": "another long password"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    let me = app.get("/api/v1/me", &cookie).await;
    me.ok();
    assert_eq!(me.json["account"]["password_expiry_notice"], false);
    assert_eq!(
        me.json["account"]["password_expires_at"],
        expires + 183 * DAY
    );
}

#[tokio::test]
async fn totp_enrolment_login_wrong_and_replayed_codes() {
    let app = App::spawn().await;
    let (id, cookie) = app.ready_user("ann@example.org", Role::Normal).await;
    // Re-authentication first.
    app.post(
        "/api/v1/me/2fa/totp",
        Some(&cookie),
        json!({"password": "wrong"}),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    let res = app
        .post(
            "/api/v1/me/2fa/totp",
            Some(&cookie),
            json!({"password": PASSWORD}),
        )
        .await;
    res.ok();
    let uri = res.json["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/Dialcast:ann%40example.org?"),
        "{uri}"
    );
    assert!(uri.contains(res.json["secret"].as_str().unwrap()));
    let seed: Vec<u8> =
        sqlx::query_scalar("SELECT totp_pending_secret FROM portal_users WHERE id = ?")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    // Not a factor until confirmed with a first code.
    app.post(
        "/api/v1/me/2fa/totp/confirm",
        Some(&cookie),
        json!({"code": "000000"}),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED, "invalid-code");
    let res = app
        .post(
            "/api/v1/me/2fa/totp/confirm",
            Some(&cookie),
            json!({"code": second_factor::totp_code(&seed, app.now())}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.json);
    assert!(app
        .audit_actions(app.org_a)
        .await
        .contains(&"user.second_factor".to_owned()));

    // Log in: password, then the code.
    app.advance(30);
    let res = app.login("ann@example.org", PASSWORD).await;
    res.ok();
    assert_eq!(res.json["status"], "second_factor_required");
    assert_eq!(res.json["second_factor"], "totp");
    let pending = res.cookie();
    app.get("/api/v1/me", &pending)
        .await
        .problem(StatusCode::UNAUTHORIZED, "second-factor-required");
    app.post(
        "/api/v1/me/password",
        Some(&pending),
        json!({"current_password": PASSWORD, "new_password": "another long password"}),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED, "second-factor-required");
    app.post(
        "/api/v1/auth/2fa",
        Some(&pending),
        json!({"code": "123456"}),
    )
    .await
    .problem(StatusCode::UNAUTHORIZED, "invalid-code");
    let code = second_factor::totp_code(&seed, app.now());
    let res = app
        .post("/api/v1/auth/2fa", Some(&pending), json!({"code": code}))
        .await;
    res.ok();
    assert_eq!(res.json["status"], "logged_in");
    let session = res.cookie();
    assert_ne!(session, pending, "a new token after the second factor");
    app.get("/api/v1/me", &session).await.ok();
    app.get("/api/v1/me", &pending)
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");

    // The same code again, within its window: refused.
    app.advance(5);
    let res = app.login("ann@example.org", PASSWORD).await;
    let pending = res.cookie();
    app.post("/api/v1/auth/2fa", Some(&pending), json!({"code": code}))
        .await
        .problem(StatusCode::UNAUTHORIZED, "invalid-code");
    // The next step's code works.
    app.advance(30);
    app.post(
        "/api/v1/auth/2fa",
        Some(&pending),
        json!({"code": second_factor::totp_code(&seed, app.now())}),
    )
    .await
    .ok();
}

#[tokio::test]
async fn email_code_is_single_use_short_lived_and_limited() {
    let app = App::spawn().await;
    let (id, cookie) = app.ready_user("ann@example.org", Role::Normal).await;
    let res = app
        .post(
            "/api/v1/me/2fa/code",
            Some(&cookie),
            json!({"password": PASSWORD, "channel": "email"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.json);

    let res = app.login("ann@example.org", PASSWORD).await;
    assert_eq!(res.json["second_factor"], "email");
    let pending = res.cookie();
    let sent = app.sent.take();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].user_id, id);
    assert_eq!(sent[0].channel, Channel::Email("ann@example.org".into()));
    let Content::LoginCode { code, valid_secs } = &sent[0].content else {
        panic!("{:?}", sent[0]);
    };
    assert_eq!(*valid_secs, 300);
    // Stored hashed only.
    let stored: Vec<u8> =
        sqlx::query_scalar("SELECT code_hash FROM portal_sessions WHERE stage = 'second_factor'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_ne!(stored, code.as_bytes());
    app.post("/api/v1/auth/2fa", Some(&pending), json!({"code": code}))
        .await
        .ok();
    // Single use: the pending login is gone with it.
    app.post("/api/v1/auth/2fa", Some(&pending), json!({"code": code}))
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");

    // Short-lived: 5 minutes.
    let pending = app.login("ann@example.org", PASSWORD).await.cookie();
    let code = app.sent.last_code();
    app.advance(299);
    let res = app
        .post("/api/v1/auth/2fa", Some(&pending), json!({"code": code}))
        .await;
    res.ok();
    let pending = app.login("ann@example.org", PASSWORD).await.cookie();
    let code = app.sent.last_code();
    app.advance(300);
    app.post("/api/v1/auth/2fa", Some(&pending), json!({"code": code}))
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");

    // Limited attempts: after 5 wrong codes even the right one is refused.
    let pending = app.login("ann@example.org", PASSWORD).await.cookie();
    let code = app.sent.last_code();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        app.post("/api/v1/auth/2fa", Some(&pending), json!({"code": wrong}))
            .await
            .problem(StatusCode::UNAUTHORIZED, "invalid-code");
    }
    app.post("/api/v1/auth/2fa", Some(&pending), json!({"code": code}))
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");
}

#[tokio::test]
async fn sms_code_goes_to_the_phone() {
    let app = App::spawn().await;
    let (_, cookie) = app.ready_user("ann@example.org", Role::Normal).await;
    app.post(
        "/api/v1/me/2fa/code",
        Some(&cookie),
        json!({"password": PASSWORD, "channel": "sms", "phone": "not a number"}),
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "bad-request");
    let res = app
        .post(
            "/api/v1/me/2fa/code",
            Some(&cookie),
            json!({"password": PASSWORD, "channel": "sms", "phone": "+31612345678"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.json);
    let pending = app.login("ann@example.org", PASSWORD).await.cookie();
    let sent = app.sent.take();
    assert_eq!(sent[0].channel, Channel::Sms("+31612345678".into()));
    let Content::LoginCode { code, .. } = &sent[0].content else {
        panic!()
    };
    app.post("/api/v1/auth/2fa", Some(&pending), json!({"code": code}))
        .await
        .ok();
}

#[tokio::test]
async fn login_code_without_an_outbox_is_503() {
    let db = db::open_in_memory().await.unwrap();
    let org = accounts::create_organisation(&db, "a", T0).await.unwrap();
    let (id, _) = accounts::create_user(&db, org, "ann@example.org", Role::Normal, "cli", T0)
        .await
        .unwrap();
    let mut tx = db.begin().await.unwrap();
    accounts::set_password(&mut tx, id, PASSWORD, T0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    sqlx::query("UPDATE portal_users SET second_factor = 'email'")
        .execute(&db)
        .await
        .unwrap();
    let app = router(AppState::new(db).with_clock(Arc::new(|| T0)));
    let req = Request::post("/api/v1/auth/login")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(
            json!({"email": "ann@example.org", "password": PASSWORD}).to_string(),
        ))
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn forgot_password_answers_the_same_and_the_link_is_single_use_and_short_lived() {
    let app = App::spawn().await;
    let (id, old_session) = app.ready_user("ann@example.org", Role::Normal).await;
    let known = app
        .post(
            "/api/v1/auth/forgot",
            None,
            json!({"email": "ann@example.org"}),
        )
        .await;
    let unknown = app
        .post(
            "/api/v1/auth/forgot",
            None,
            json!({"email": "nobody@example.org"}),
        )
        .await;
    assert_eq!(known.status, StatusCode::ACCEPTED);
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(known.json, unknown.json);
    assert_eq!(
        known.headers.get(header::CONTENT_TYPE),
        unknown.headers.get(header::CONTENT_TYPE)
    );
    let sent = app.sent.take();
    assert_eq!(sent.len(), 1, "only the known address gets a message");
    assert_eq!(sent[0].user_id, id);
    let Content::PasswordReset { link, valid_secs } = &sent[0].content else {
        panic!()
    };
    assert_eq!(*valid_secs, 1800);
    let token = link.split_once("?token=").unwrap().1.to_owned();

    app.post(
        "/api/v1/auth/reset",
        None,
        json!({"token": token, "new_password": "short"}),
    )
    .await
    .problem(StatusCode::UNPROCESSABLE_ENTITY, "password-policy");
    app.advance(1799);
    let res = app
        .post(
            "/api/v1/auth/reset",
            None,
            json!({"token": token, "new_password": "a brand new password"}),
        )
        .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT, "{}", res.json);
    // Sessions end with the reset; the new password works, the old not.
    app.get("/api/v1/me", &old_session)
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");
    app.login("ann@example.org", PASSWORD)
        .await
        .problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    app.login("ann@example.org", "a brand new password")
        .await
        .ok();
    assert!(app
        .audit_actions(app.org_a)
        .await
        .contains(&"user.password_reset".to_owned()));
    // Single use.
    app.post(
        "/api/v1/auth/reset",
        None,
        json!({"token": token, "new_password": "yet another password"}),
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "invalid-reset-token");

    // Short-lived: 30 minutes.
    app.post(
        "/api/v1/auth/forgot",
        None,
        json!({"email": "ann@example.org"}),
    )
    .await;
    let Content::PasswordReset { link, .. } = app.sent.take().pop().unwrap().content else {
        panic!()
    };
    let token = link.split_once("?token=").unwrap().1.to_owned();
    app.advance(1800);
    app.post(
        "/api/v1/auth/reset",
        None,
        json!({"token": token, "new_password": "yet another password"}),
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "invalid-reset-token");
    // An unknown token likewise.
    app.post(
        "/api/v1/auth/reset",
        None,
        json!({"token": "0".repeat(64), "new_password": "yet another password"}),
    )
    .await
    .problem(StatusCode::BAD_REQUEST, "invalid-reset-token");
}

#[tokio::test]
async fn forgot_password_sends_at_most_three_live_links() {
    let app = App::spawn().await;
    app.ready_user("ann@example.org", Role::Normal).await;
    let mut answers = Vec::new();
    for _ in 0..5 {
        let res = app
            .post(
                "/api/v1/auth/forgot",
                None,
                json!({"email": "ann@example.org"}),
            )
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED);
        answers.push(res.json);
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(app.sent.take().len(), 3);
    // Once they expire, a new one goes out.
    app.advance(1800);
    app.post(
        "/api/v1/auth/forgot",
        None,
        json!({"email": "ann@example.org"}),
    )
    .await;
    assert_eq!(app.sent.take().len(), 1);
}

#[tokio::test]
async fn forgot_password_with_a_temporary_password_past_14_days() {
    let app = App::spawn().await;
    app.new_user("ann@example.org", Role::Normal).await;
    app.advance(15 * DAY);
    app.post(
        "/api/v1/auth/forgot",
        None,
        json!({"email": "ann@example.org"}),
    )
    .await;
    let Content::PasswordReset { link, .. } = app.sent.take().pop().unwrap().content else {
        panic!()
    };
    let token = link.split_once("?token=").unwrap().1.to_owned();
    app.post(
        "/api/v1/auth/reset",
        None,
        json!({"token": token, "new_password": PASSWORD}),
    )
    .await;
    let res = app.login("ann@example.org", PASSWORD).await;
    assert_eq!(res.json["status"], "logged_in", "{}", res.json);
}

#[tokio::test]
async fn session_idle_timeout_is_30_minutes() {
    let app = App::spawn().await;
    let (_, cookie) = app.ready_user("ann@example.org", Role::Normal).await;
    app.advance(29 * 60 + 59);
    app.get("/api/v1/me", &cookie).await.ok();
    // Idle time counts from the last request.
    app.advance(29 * 60 + 59);
    app.get("/api/v1/me", &cookie).await.ok();
    app.advance(30 * 60);
    app.get("/api/v1/me", &cookie)
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");
    // And it stays ended.
    app.advance(-60 * 60);
    app.get("/api/v1/me", &cookie)
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");
}

#[tokio::test]
async fn session_absolute_timeout_is_12_hours() {
    let app = App::spawn().await;
    let (_, cookie) = app.ready_user("ann@example.org", Role::Normal).await;
    for _ in 0..35 {
        app.advance(20 * 60);
        app.get("/api/v1/me", &cookie).await.ok();
    }
    // 11 h 40 min in; 19 min 59 s more is still inside.
    app.advance(19 * 60 + 59);
    app.get("/api/v1/me", &cookie).await.ok();
    app.advance(1);
    app.get("/api/v1/me", &cookie)
        .await
        .problem(StatusCode::UNAUTHORIZED, "session-expired");
}

#[tokio::test]
async fn switch_org_only_to_member_organisations() {
    let app = App::spawn().await;
    let (id, _) = app.ready_user("ann@example.org", Role::Manager).await;
    accounts::add_membership(&app.db, id, app.org_b, Role::Dashboard, "cli", T0)
        .await
        .unwrap();
    let res = app.login("ann@example.org", PASSWORD).await;
    // The default organisation at login.
    assert_eq!(res.json["organisation_id"], app.org_a.0);
    let orgs = res.json["account"]["organisations"].as_array().unwrap();
    assert_eq!(orgs.len(), 2);
    let cookie = res.cookie();

    let res = app
        .post(
            "/api/v1/auth/switch-org",
            Some(&cookie),
            json!({"organisation_id": app.org_b.0}),
        )
        .await;
    res.ok();
    assert_eq!(res.json["organisation_id"], app.org_b.0);
    assert_eq!(res.json["role"], "dashboard");
    let me = app.get("/api/v1/me", &cookie).await;
    assert_eq!(me.json["organisation_id"], app.org_b.0);
    assert_eq!(me.json["role"], "dashboard");
    // The role follows the organisation: no manager endpoints in b.
    app.get("/api/v1/apikeys", &cookie)
        .await
        .problem(StatusCode::FORBIDDEN, "forbidden");
    assert!(app
        .audit_actions(app.org_b)
        .await
        .contains(&"session.switch_org".to_owned()));

    app.post(
        "/api/v1/auth/switch-org",
        Some(&cookie),
        json!({"organisation_id": app.org_c.0}),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    app.post(
        "/api/v1/auth/switch-org",
        Some(&cookie),
        json!({"organisation_id": 999}),
    )
    .await
    .problem(StatusCode::FORBIDDEN, "forbidden");
    let me = app.get("/api/v1/me", &cookie).await;
    assert_eq!(me.json["organisation_id"], app.org_b.0);
}

#[tokio::test]
async fn five_failures_per_user_in_15_minutes_then_429() {
    let app = App::spawn().await;
    app.ready_user("ann@example.org", Role::Normal).await;
    for _ in 0..5 {
        app.advance(10);
        app.login("ann@example.org", "wrong")
            .await
            .problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    }
    // Even the right password, even from elsewhere.
    let res = app
        .login_from("ann@example.org", PASSWORD, "198.51.100.7:1234")
        .await;
    res.problem(StatusCode::TOO_MANY_REQUESTS, "too-many-attempts");
    // The first failure was at T0 + 10; it leaves the window at +910.
    let retry: i64 = res.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(retry, T0 + 10 + 900 - app.now());
    // Another user is not affected.
    app.ready_user("bob@example.org", Role::Normal).await;
    app.advance(retry - 1);
    app.login("ann@example.org", PASSWORD)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "too-many-attempts");
    app.advance(1);
    app.login("ann@example.org", PASSWORD).await.ok();
}

#[tokio::test]
async fn twenty_failures_per_address_in_15_minutes_then_429() {
    let app = App::spawn().await;
    app.ready_user("ann@example.org", Role::Normal).await;
    let attacker = "203.0.113.9:5555";
    for i in 0..20 {
        app.login_from(&format!("guess{i}@example.org"), "wrong", attacker)
            .await
            .problem(StatusCode::UNAUTHORIZED, "invalid-credentials");
    }
    app.login_from("ann@example.org", PASSWORD, attacker)
        .await
        .problem(StatusCode::TOO_MANY_REQUESTS, "too-many-attempts");
    // The user from their own address is fine.
    app.login_from("ann@example.org", PASSWORD, HOME).await.ok();
    app.advance(15 * 60);
    app.login_from("ann@example.org", PASSWORD, attacker)
        .await
        .ok();
}

#[tokio::test]
async fn api_keys_still_work_beside_sessions() {
    let app = App::spawn().await;
    let (_, key) = dialcast_portal_api::apikey::create(
        &app.db,
        app.org_a,
        Role::Manager,
        Default::default(),
        "cli",
        T0,
    )
    .await
    .unwrap();
    // No CSRF header needed with X-AUTH-TOKEN.
    let req = Request::post("/api/v1/apikeys")
        .header("X-AUTH-TOKEN", key.expose())
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"role": "normal"}).to_string()))
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn openapi_documents_the_login_endpoints() {
    let doc = serde_json::to_value(dialcast_portal_api::openapi()).unwrap();
    for path in [
        "/api/v1/auth/login",
        "/api/v1/auth/2fa",
        "/api/v1/auth/logout",
        "/api/v1/auth/switch-org",
        "/api/v1/auth/forgot",
        "/api/v1/auth/reset",
        "/api/v1/me/password",
        "/api/v1/me/2fa/totp",
        "/api/v1/me/2fa/totp/confirm",
        "/api/v1/me/2fa/code",
    ] {
        let op = &doc["paths"][path]["post"];
        assert!(op.is_object(), "{path}");
        assert!(op["responses"].as_object().unwrap().len() >= 2, "{path}");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["session"]["in"],
        "cookie"
    );
    assert_eq!(
        doc["paths"]["/api/v1/auth/login"]["post"]["responses"]["429"]["content"]
            ["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
}
