//! Login codes and reset links through the real wiring: `dialcast serve`
//! queues them on the engine's `notifications` outbox in the shared
//! database file, and a login completes with the code found there.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use common::{dialcast, read_db, request, run_ok, spawn_and_find_addr, write_config};
use dialcast_portal_api::{accounts, db};

const PASSWORD: &str = "a long and permanent passphrase 42";

/// The `name=value` of a response's Set-Cookie header.
fn cookie(res: &common::Response) -> String {
    res.header("set-cookie")
        .expect("a Set-Cookie header")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// The first run of six digits in `text`.
fn six_digits(text: &str) -> String {
    text.as_bytes()
        .windows(6)
        .find(|w| w.iter().all(u8::is_ascii_digit))
        .map(|w| String::from_utf8(w.to_vec()).unwrap())
        .unwrap_or_else(|| panic!("no code in {text:?}"))
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
);

async fn queued(path: &std::path::Path) -> Vec<Row> {
    let db = read_db(path).await;
    let rows = sqlx::query_as(
        "SELECT channel, recipient, subject, body, purpose, state, created_at, expires_at
         FROM notifications ORDER BY id",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    db.close().await;
    rows
}

#[test]
fn an_email_code_login_finds_its_code_in_the_engine_outbox_and_completes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "Acme");
    let email = "ann@acme.example";
    run_ok(
        dialcast()
            .args(["user", "create", "--org", "Acme", "--email", email])
            .args(["--role", "manager", "--config"])
            .arg(&config),
    );
    let db_path = dir.path().join("dialcast.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The user has chosen a password and codes by e-mail.
    rt.block_on(async {
        let portal = db::open(&db_path).await.unwrap();
        let id: i64 = sqlx::query_scalar("SELECT id FROM portal_users WHERE email = ?")
            .bind(email)
            .fetch_one(&portal)
            .await
            .unwrap();
        let mut tx = portal.begin().await.unwrap();
        accounts::set_password(&mut tx, id, PASSWORD, chrono::Utc::now().timestamp())
            .await
            .unwrap();
        sqlx::query("UPDATE portal_users SET second_factor = 'email' WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        portal.close().await;
    });

    let (serve, addr, log) = spawn_and_find_addr(
        dialcast()
            .args(["serve", "--config"])
            .arg(&config)
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--portal-addr",
                "127.0.0.1:0",
            ])
            .env("DIALCAST_LOG", "debug"),
        "portal API on http://",
    );
    let login = serde_json::json!({"email": email, "password": PASSWORD}).to_string();
    let res = request(addr, "POST", "/api/v1/auth/login", &[], Some(&login));
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["status"], "second_factor_required");
    assert_eq!(res.json()["second_factor"], "email");
    let pending = cookie(&res);

    let rows = rt.block_on(queued(&db_path));
    assert_eq!(rows.len(), 1, "one message queued");
    let (channel, recipient, subject, body, purpose, state, created_at, expires_at) =
        rows[0].clone();
    assert_eq!(
        (
            channel.as_str(),
            recipient.as_str(),
            purpose.as_str(),
            state.as_str()
        ),
        ("email", email, "login_code", "queued")
    );
    assert!(subject.contains("login code"), "{subject}");
    assert_eq!(expires_at, Some(created_at + 5 * 60 * 1000));
    let code = six_digits(&body);

    let res = request(
        addr,
        "POST",
        "/api/v1/auth/2fa",
        &[("Cookie", &pending), ("X-Dialcast-CSRF", "1")],
        Some(&serde_json::json!({ "code": code }).to_string()),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    assert_eq!(res.json()["status"], "logged_in");
    let session = cookie(&res);
    let me = request(addr, "GET", "/api/v1/me", &[("Cookie", &session)], None);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["account"]["email"], email);

    // A reset link goes the same way.
    let forgot = serde_json::json!({ "email": email }).to_string();
    let res = request(addr, "POST", "/api/v1/auth/forgot", &[], Some(&forgot));
    assert_eq!(res.status, 202, "{}", res.text());
    let rows = rt.block_on(queued(&db_path));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].4, "password_reset");
    assert!(rows[1].3.contains("?token="), "the link is in the body");
    let token = rows[1].3.split("?token=").nth(1).unwrap()[..64].to_owned();

    let status = serve.terminate();
    assert!(status.success(), "serve ends cleanly on SIGTERM: {status}");
    // Neither the code nor the link is logged.
    let logged: Vec<String> = log.try_iter().collect();
    let logged = logged.join("\n");
    assert!(!logged.is_empty());
    assert!(!logged.contains(&body), "the message is logged:\n{logged}");
    assert!(
        !logged
            .split(|c: char| !c.is_ascii_digit())
            .any(|digits| digits == code),
        "the code is logged:\n{logged}"
    );
    assert!(!logged.contains(&token), "the link is logged:\n{logged}");
}
