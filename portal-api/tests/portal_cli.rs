//! `dialcast user create`, `dialcast apikey create` and the portal API
//! served by `dialcast serve`, through the real binary: secrets on standard
//! output, what they become in the database, and a key used over HTTP on
//! 127.0.0.1.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{dialcast, get, read_db, run, run_ok, spawn_and_find_addr, write_config};
use dialcast_portal_api::accounts;

/// The engine's id of an organisation, read from its own table.
async fn engine_org_id(db: &sqlx::SqlitePool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT id FROM organisations WHERE name = ?")
        .bind(name)
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn user_create_prints_a_temporary_password_that_the_stored_hash_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "Acme");
    let started = chrono::Utc::now().timestamp();
    let out = run(dialcast()
        .args([
            "user",
            "create",
            "--org",
            "Acme",
            "--email",
            "ops@acme.example",
        ])
        .args(["--role", "manager", "--config"])
        .arg(&config));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line, the password: {stdout:?}");
    let password = lines[0];
    assert_eq!(password.len(), 20, "{password:?}");
    assert!(
        !stderr.contains(password),
        "the password only on stdout: {stderr}"
    );

    let db = read_db(&dir.path().join("dialcast.db")).await;
    let org = engine_org_id(&db, "Acme").await;
    let (hash, must_change, temp_expires_at, default_org): (String, bool, i64, i64) =
        sqlx::query_as(
            "SELECT password_hash, must_change_password, temp_expires_at, default_org_id
             FROM portal_users WHERE email = ?",
        )
        .bind("ops@acme.example")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(accounts::verify_password(password, &hash));
    assert!(!accounts::verify_password(&format!("{password}x"), &hash));
    assert!(
        must_change,
        "a temporary password must be changed at first login"
    );
    let lifetime = temp_expires_at - started;
    assert!(
        (accounts::TEMP_PASSWORD_LIFETIME_SECS..=accounts::TEMP_PASSWORD_LIFETIME_SECS + 60)
            .contains(&lifetime),
        "{lifetime}"
    );
    // The portal's organisation is the engine's, same id and name.
    assert_eq!(default_org, org);
    let (role, member_org): (String, i64) = sqlx::query_as(
        "SELECT m.role, m.org_id FROM portal_memberships m
         JOIN portal_users u ON u.id = m.user_id WHERE u.email = ?",
    )
    .bind("ops@acme.example")
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!((role.as_str(), member_org), ("manager", org));
    let portal_name: String =
        sqlx::query_scalar("SELECT name FROM portal_organisations WHERE id = ?")
            .bind(org)
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(portal_name, "Acme");
    let audited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM portal_audit_log
         WHERE org_id = ? AND action = 'user.create' AND actor = 'cli'",
    )
    .bind(org)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // The same address again: refused, nothing printed on stdout.
    let again = run(dialcast()
        .args([
            "user",
            "create",
            "--org",
            "Acme",
            "--email",
            "OPS@acme.example",
        ])
        .args(["--role", "normal", "--config"])
        .arg(&config));
    assert!(!again.status.success());
    assert!(again.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already exists"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[tokio::test]
async fn an_organisation_the_engine_has_is_found_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "Acme");
    // Another organisation in the engine's store (as an import for another
    // configuration would make it).
    {
        use dialcast_engine::store::Store as _;
        let store = dialcast_engine::store::SqliteStore::open(&dir.path().join("dialcast.db"))
            .await
            .unwrap();
        store.ensure_organisation("Beta Corp", "BE").await.unwrap();
    }
    let out = run_ok(
        dialcast()
            .args([
                "apikey",
                "create",
                "--org",
                "Beta Corp",
                "--role",
                "file",
                "--json",
            ])
            .arg("--config")
            .arg(&config),
    );
    let created: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let db = read_db(&dir.path().join("dialcast.db")).await;
    assert_eq!(
        created["organisation_id"],
        engine_org_id(&db, "Beta Corp").await
    );
    assert_eq!(created["role"], "file");
    assert!(
        created["key"].as_str().unwrap().starts_with("dc_"),
        "{created}"
    );
}

#[test]
fn an_unknown_organisation_is_named_and_nothing_is_created() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "Acme");
    for args in [
        &[
            "user",
            "create",
            "--org",
            "Nope Ltd",
            "--email",
            "a@b.example",
        ][..],
        &["apikey", "create", "--org", "Nope Ltd"][..],
    ] {
        let out = run(dialcast()
            .args(args)
            .args(["--role", "manager", "--config"])
            .arg(&config));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            stderr.contains("no organisation named \"Nope Ltd\""),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("\"Acme\""), "the known ones: {stderr}");
    }
    // A bad role is refused by the parser, naming the choices.
    let out = run(dialcast()
        .args([
            "apikey", "create", "--org", "Acme", "--role", "boss", "--config",
        ])
        .arg(&config));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("scheduler"));
}

#[test]
fn an_api_key_from_the_command_authenticates_on_a_running_serve() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "Acme");
    let key = run_ok(
        dialcast()
            .args(["apikey", "create", "--org", "Acme", "--role", "manager"])
            .arg("--config")
            .arg(&config),
    );
    let key = key.trim().to_owned();
    assert!(key.starts_with("dc_"), "{key}");
    // Allowlists: one that holds 127.0.0.1 and one that does not, which
    // only works if the server passes the peer address to the API.
    let loopback_only = run_ok(
        dialcast()
            .args(["apikey", "create", "--org", "Acme", "--role", "dashboard"])
            .args(["--allow", "127.0.0.0/8", "--config"])
            .arg(&config),
    );
    let elsewhere_only = run_ok(
        dialcast()
            .args(["apikey", "create", "--org", "Acme", "--role", "dashboard"])
            .args(["--allow", "192.0.2.0/24", "--config"])
            .arg(&config),
    );

    let (serve, addr, _log) = spawn_and_find_addr(
        dialcast()
            .args(["serve", "--config"])
            .arg(&config)
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--portal-addr",
                "127.0.0.1:0",
            ])
            .env("DIALCAST_LOG", "info"),
        "portal API on http://",
    );
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    let me = get(addr, "/api/v1/me", Some(&key));
    assert_eq!(me.status, 200, "{}", me.text());
    let me = me.json();
    assert_eq!(me["role"], "manager");
    let db_path = dir.path().join("dialcast.db");
    let org = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = read_db(&db_path).await;
        engine_org_id(&db, "Acme").await
    });
    assert_eq!(me["organisation_id"], org);

    assert_eq!(get(addr, "/api/v1/me", None).status, 401);
    assert_eq!(
        get(addr, "/api/v1/me", Some(&format!("{key}x"))).status,
        401
    );
    let allowed = get(addr, "/api/v1/me", Some(loopback_only.trim()));
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(allowed.json()["role"], "dashboard");
    assert_eq!(
        get(addr, "/api/v1/me", Some(elsewhere_only.trim())).status,
        401
    );
    // The manager key lists the organisation's keys, without secrets.
    let keys = get(addr, "/api/v1/apikeys", Some(&key));
    assert_eq!(keys.status, 200);
    assert_eq!(keys.json().as_array().unwrap().len(), 3);
    assert!(!keys.text().contains(&key));
    // The file functions are served too, on the engine's store.
    for path in [
        "/api/v1/imports",
        "/api/v1/result-files",
        "/api/v1/blocklist",
    ] {
        let r = get(addr, path, Some(&key));
        assert_eq!((r.status, r.text()), (200, "[]".to_owned()), "{path}");
    }
    assert_eq!(get(addr, "/api/v1/calendar", Some(&key)).status, 200);

    let status = serve.terminate();
    assert!(status.success(), "serve ends cleanly on SIGTERM: {status}");
}
