//! `dialcast demo --portal-addr 127.0.0.1:0 --linger N --json`: the summary
//! names the portal and a fresh manager key of the demo organisation, and
//! the portal answers with that key while the demo lingers, with its
//! OpenAPI document and interactive docs served from the binary.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::io::Read as _;
use std::net::SocketAddr;
use std::process::Stdio;

use common::{dialcast, get, read_db, spawn_and_find_addr};

#[test]
fn the_demo_serves_the_portal_with_a_fresh_manager_key() {
    let dir = tempfile::tempdir().unwrap();
    let (mut demo, portal, log) = spawn_and_find_addr(
        dialcast()
            .args(["demo", "--json", "--records", "20", "--dir"])
            .arg(dir.path())
            .args([
                "--metrics-addr",
                "127.0.0.1:0",
                "--portal-addr",
                "127.0.0.1:0",
            ])
            .args(["--linger", "120"])
            .env("DIALCAST_LOG", "warn,dialcast=info")
            .stdout(Stdio::piped()),
        "portal API on http://",
    );
    // Served while the campaign runs, before the summary: the documents
    // need no key.
    let openapi = get(portal, "/api-docs/openapi.json", None);
    assert_eq!(openapi.status, 200);
    let openapi = openapi.json();
    assert!(
        openapi["openapi"].as_str().unwrap().starts_with("3.1"),
        "{openapi}"
    );
    assert!(openapi["paths"]["/api/v1/me"].is_object());

    // The summary is the last line of stdout, after the table; stdout
    // stays open while the demo lingers, so read up to that line.
    let mut stdout = demo.0.stdout.take().unwrap();
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.lines().any(|l| l.starts_with('{')) || !text.ends_with('\n') {
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "stdout closed before the summary: {text}\n{}", {
            let lines: Vec<String> = log.try_iter().collect();
            lines.join("\n")
        });
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    let summary: serde_json::Value =
        serde_json::from_str(text.lines().find(|l| l.starts_with('{')).unwrap()).unwrap();
    assert_eq!(summary["records"], 20, "{summary}");
    let portal_url = summary["portal_url"].as_str().unwrap();
    assert_eq!(portal_url, format!("http://{portal}"));
    let key = summary["api_key"].as_str().unwrap();
    assert!(key.starts_with("dc_"), "{summary}");
    // The key is in the JSON, not in the table above it.
    assert_eq!(text.matches(key).count(), 1, "{text}");
    let addr: SocketAddr = portal_url.trim_start_matches("http://").parse().unwrap();

    // After the summary, while lingering.
    let me = get(addr, "/api/v1/me", Some(key));
    assert_eq!(me.status, 200, "{}", me.text());
    let me = me.json();
    assert_eq!(me["role"], "manager");
    let demo_org: i64 = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let db = read_db(&dir.path().join("dialcast-demo.db")).await;
        sqlx::query_scalar("SELECT id FROM organisations WHERE name = 'Demo'")
            .fetch_one(&db)
            .await
            .unwrap()
    });
    assert_eq!(me["organisation_id"], demo_org);
    assert_eq!(get(addr, "/api/v1/me", None).status, 401);

    let docs = get(addr, "/docs", None);
    assert_eq!(docs.status, 200);
    assert!(docs
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(docs.text().contains("<rapi-doc"), "{}", docs.text());
    assert!(docs
        .header("content-security-policy")
        .unwrap()
        .contains("default-src 'self'"));
    let script = get(addr, "/docs/rapidoc-min.js", None);
    assert_eq!(script.status, 200);
    assert!(script.body.len() > 100_000, "{} bytes", script.body.len());
    assert!(script.text().contains("RapiDoc 9.3.8"));

    let status = demo.terminate();
    assert!(
        status.success(),
        "the demo ends cleanly on SIGTERM: {status}"
    );
}
