//! The authorisation matrix: every operation of the OpenAPI document × every
//! role × an object of the caller's own organisation and one of another
//! organisation, through the real router with API keys.
//!
//! The roles each operation needs are written down here from the issue's
//! rules (Normal < Dashboard < Scheduler < File < Manager), independently of
//! the code's own `Action` table, so a handler that checks the wrong action
//! fails here. An operation this table does not classify fails the test:
//! every new endpoint must be placed in it.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use dialcast_engine::service::{prepare_campaign, CampaignSetup};
use dialcast_engine::store::{
    CampaignSettings, CampaignState, OrganisationCalendar, SqliteStore, Store as _, TrunkSettings,
};
use dialcast_portal_api::apikey::{self, NewKey, PlainKey};
use dialcast_portal_api::files::Engine;
use dialcast_portal_api::{
    accounts, db, membership, openapi, router, AppState, EngineAccess, OrgId, Role,
};
use sqlx::SqlitePool;
use tower::ServiceExt;

/// 2026-12-06T10:00:00Z.
const T0: i64 = 1_796_551_200;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// Anyone, without credentials (login, password reset, and logout,
    /// which only clears the caller's own cookie).
    Public,
    /// The second step of a login: only with the cookie of a login waiting
    /// for its second factor (401 otherwise, whatever else is sent).
    PendingLogin,
    /// A logged-in user's own account: a session, never an API key (a key
    /// is no user).
    OwnAccount,
    /// An API key or session of at least this role in the organisation.
    Role(Role),
}

/// The rules, per operation.
fn needs(method: &str, path: &str) -> Option<Needs> {
    use Role::*;
    let scripts = path.starts_with("/api/v1/scripts/{script}/");
    Some(match (method, path) {
        ("get", "/api/v1/me") => Needs::Role(Normal),
        // "Dashboards and statistics of all services"; the list of scripts
        // with their state is what the dashboard already shows.
        (
            "get",
            "/api/v1/dashboard"
            | "/api/v1/statistics"
            | "/api/v1/events"
            | "/api/v1/insights/voice"
            | "/api/v1/scripts",
        ) => Needs::Role(Dashboard),
        // "Manager: script settings": a script's settings, its flow, its
        // recordings and its templates, read or changed.
        ("get" | "patch", "/api/v1/scripts/{script}/settings")
        | (
            "get",
            "/api/v1/scripts/{script}/flow"
            | "/api/v1/scripts/{script}/templates"
            | "/api/v1/scripts/{script}/prompts/{language}/{prompt}",
        ) => Needs::Role(Manager),
        // "Manager: calls/SMS/e-mails lists".
        ("get", "/api/v1/sms") => Needs::Role(Manager),
        ("get", "/api/v1/emails") => Needs::Role(Manager),
        ("post", _) if scripts && (path.ends_with("/pause") || path.ends_with("/resume")) => {
            Needs::Role(Scheduler)
        }
        // Imports are the File role's; result files too (the files a client
        // exchanges with the platform).
        ("get" | "post", "/api/v1/imports")
        | ("get", "/api/v1/imports/{id}" | "/api/v1/imports/{id}/original")
        | ("post", "/api/v1/imports/{id}/confirm" | "/api/v1/imports/{id}/cancel")
        | ("get", "/api/v1/result-files" | "/api/v1/result-files/{id}") => Needs::Role(File),
        // Calls lists, holidays and the blocklist are the Manager's.
        ("get", "/api/v1/calls" | "/api/v1/calls/{attempt}/voicelog")
        | ("get" | "post", "/api/v1/blocklist")
        | ("delete", "/api/v1/blocklist/{number}")
        | ("get" | "put", "/api/v1/calendar") => Needs::Role(Manager),
        // Users management is the Manager's.
        ("get" | "post", "/api/v1/users") | ("patch" | "delete", "/api/v1/users/{id}") => {
            Needs::Role(Manager)
        }
        ("get", "/api/v1/apikeys" | "/api/v1/audit")
        | ("post", "/api/v1/apikeys")
        | ("delete", "/api/v1/apikeys/{id}") => Needs::Role(Manager),
        (
            "post",
            "/api/v1/auth/login"
            | "/api/v1/auth/forgot"
            | "/api/v1/auth/reset"
            | "/api/v1/auth/logout",
        ) => Needs::Public,
        ("post", "/api/v1/auth/2fa") => Needs::PendingLogin,
        ("post", "/api/v1/auth/switch-org" | "/api/v1/me/password") => Needs::OwnAccount,
        // Where one's own login starts: a user's setting, not a key's.
        ("put", "/api/v1/me/default-organisation") => Needs::OwnAccount,
        ("post", p) if p.starts_with("/api/v1/me/2fa/") => Needs::OwnAccount,
        _ => return None,
    })
}

/// Every operation of the served OpenAPI document, as (method, path template).
fn operations() -> Vec<(String, String)> {
    let doc = serde_json::to_value(openapi()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_some() {
                ops.push((method.to_string(), path.clone()));
            }
        }
    }
    ops
}

/// One organisation's objects, to fill path templates with.
struct Objects {
    org: OrgId,
    script: &'static str,
    campaign: i64,
    spare_key: i64,
    /// A normal user of the organisation.
    spare_user: i64,
}

struct App {
    /// The file functions' directories.
    _dir: tempfile::TempDir,
    db: SqlitePool,
    store: SqliteStore,
    router: Router,
    own: Objects,
    other: Objects,
}

impl App {
    async fn spawn() -> App {
        let db = db::open_in_memory().await.unwrap();
        let store = SqliteStore::open_in_memory().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let router = router(
            AppState::new(db.clone())
                .with_clock(Arc::new(|| T0))
                .with_engine(EngineAccess::new(store.clone()))
                .with_files(Engine::under(Arc::new(store.clone()), dir.path())),
        );
        let own = objects(&db, &store, "own", "own_script").await;
        let other = objects(&db, &store, "other", "other_script").await;
        App {
            _dir: dir,
            db,
            store,
            router,
            own,
            other,
        }
    }

    async fn key(&self, org: OrgId, role: Role) -> PlainKey {
        let new = NewKey {
            name: format!("{role} key"),
            cidrs: Vec::new(),
        };
        apikey::create(&self.db, org, role, new, "test", T0)
            .await
            .unwrap()
            .1
    }

    /// The status of one call; the body is not read (the event stream
    /// would not end).
    async fn status(&self, method: &str, uri: &str, key: Option<&PlainKey>) -> StatusCode {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
            .uri(uri);
        if let Some(key) = key {
            req = req.header("X-AUTH-TOKEN", key.expose());
        }
        if method != "get" && method != "delete" {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let body = if method == "get" || method == "delete" {
            Body::empty()
        } else {
            Body::from("{}")
        };
        let res = self
            .router
            .clone()
            .oneshot(req.body(body).unwrap())
            .await
            .unwrap();
        res.status()
    }
}

async fn objects(db: &SqlitePool, store: &SqliteStore, org: &str, script: &'static str) -> Objects {
    let org_id = accounts::create_organisation(db, org, T0).await.unwrap();
    let campaign = prepare_campaign(
        store,
        &CampaignSetup {
            organisation: org,
            default_country: "NL",
            calendar: &OrganisationCalendar::every_day("UTC"),
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
            campaign: script,
        },
    )
    .await
    .unwrap();
    store
        .set_campaign_state(campaign, CampaignState::Running, 0)
        .await
        .unwrap();
    let (row, _) = apikey::create(
        db,
        org_id,
        Role::Normal,
        NewKey {
            name: "spare".into(),
            cidrs: Vec::new(),
        },
        "test",
        T0,
    )
    .await
    .unwrap();
    let (spare_user, _) = accounts::create_user(
        db,
        org_id,
        &format!("spare@{org}.example"),
        Role::Normal,
        "test",
        T0,
    )
    .await
    .unwrap();
    Objects {
        org: org_id,
        script,
        campaign,
        spare_key: row.id,
        spare_user,
    }
}

/// The path with its parameters taken from `objects`; `None` when the path
/// has no parameter (it then acts in the caller's organisation only).
fn fill(path: &str, objects: &Objects) -> (String, bool) {
    let id = if path.starts_with("/api/v1/users/") {
        objects.spare_user
    } else {
        objects.spare_key
    };
    let filled = path
        .replace("{script}", objects.script)
        .replace("{id}", &id.to_string())
        .replace("{attempt}", &objects.campaign.to_string())
        .replace("{number}", "%2B31612345678")
        .replace("{language}", "en")
        .replace("{prompt}", "notice_intro");
    assert!(
        !filled.contains('{'),
        "{path}: a path parameter this test cannot fill; add it to `fill`"
    );
    (filled.clone(), filled != path)
}

#[tokio::test]
async fn every_operation_is_classified() {
    let unclassified: Vec<String> = operations()
        .into_iter()
        .filter(|(m, p)| needs(m, p).is_none())
        .map(|(m, p)| format!("{} {p}", m.to_uppercase()))
        .collect();
    assert!(
        unclassified.is_empty(),
        "operations with no rule in this matrix (add them to `needs`): {unclassified:?}"
    );
}

#[tokio::test]
async fn every_operation_every_role_own_and_other_organisation() {
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (method, path) in operations() {
        let Some(rule) = needs(&method, &path) else {
            continue;
        };
        for role in Role::ALL {
            // A fresh store per case: an allowed call may change what the
            // next one finds (a revoked key, a paused script).
            let app = App::spawn().await;
            let key = app.key(app.own.org, role).await;
            let (own_uri, has_object) = fill(&path, &app.own);
            let status = app.status(&method, &own_uri, Some(&key)).await;
            checked += 1;
            let allowed = match rule {
                Needs::Public => true,
                Needs::OwnAccount | Needs::PendingLogin => false,
                Needs::Role(min) => role >= min,
            };
            let ok = if status.is_server_error() {
                false
            } else if allowed {
                status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN
            } else {
                // Refused: 403 (or 401 where a session is required), never
                // a success or a validation answer that reveals more.
                status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED
            };
            if !ok {
                wrong.push(format!(
                    "{} {own_uri} as {role} (own organisation): {status}, rule {rule:?}",
                    method.to_uppercase()
                ));
            }

            // The same operation on the other organisation's object: never
            // granted, whatever the role, and the object is left as it was.
            if has_object {
                let (other_uri, _) = fill(&path, &app.other);
                let status = app.status(&method, &other_uri, Some(&key)).await;
                checked += 1;
                let refused = matches!(
                    status,
                    StatusCode::NOT_FOUND | StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED
                );
                if !refused || status.is_server_error() {
                    wrong.push(format!(
                        "{} {other_uri} as {role} of another organisation: {status}",
                        method.to_uppercase()
                    ));
                }
                let campaign = app.store.campaign_by_name(app.other.script).await.unwrap();
                assert_eq!(campaign.id, app.other.campaign);
                if campaign.state != CampaignState::Running || campaign.forwarding_paused {
                    wrong.push(format!(
                        "{} {other_uri} as {role} of another organisation changed its campaign",
                        method.to_uppercase()
                    ));
                }
                let spare = apikey::list(&app.db, app.other.org).await.unwrap();
                if spare.iter().any(|k| k.revoked_at.is_some()) {
                    wrong.push(format!(
                        "{} {other_uri} as {role} of another organisation revoked its key",
                        method.to_uppercase()
                    ));
                }
                let member = membership::get(&app.db, app.other.org, app.other.spare_user).await;
                if !member.is_ok_and(|m| m.role == Role::Normal && m.modules.is_empty()) {
                    wrong.push(format!(
                        "{} {other_uri} as {role} of another organisation changed its user",
                        method.to_uppercase()
                    ));
                }
            }
        }
        // Without credentials only the public operations answer.
        let app = App::spawn().await;
        let (uri, _) = fill(&path, &app.own);
        let status = app.status(&method, &uri, None).await;
        checked += 1;
        let ok = match rule {
            Needs::Public => status != StatusCode::UNAUTHORIZED && !status.is_server_error(),
            _ => status == StatusCode::UNAUTHORIZED,
        };
        if !ok {
            wrong.push(format!(
                "{} {uri} without credentials: {status}, rule {rule:?}",
                method.to_uppercase()
            ));
        }
    }
    assert!(checked > 100, "only {checked} cases");
    assert!(
        wrong.is_empty(),
        "{} wrong:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
