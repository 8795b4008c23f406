//! The command-line contract of `dialcast import` and `dialcast blocklist`,
//! through the real binary: the JSON report of `--validate-only`, the exit
//! status of an import with failing rows, `--accept-partial`, the import
//! subcommands, the blocklist, and an import killed midway.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const SCRIPT: &str = "payment_reminder";

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn workdir(test: &str) -> Dir {
    let dir = std::env::temp_dir().join(format!("dialcast-cli-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    Dir(dir)
}

fn write_config(dir: &Path) -> PathBuf {
    common::import_config::ImportConfig::new(dir, "CLI test").write()
}

fn dialcast(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dialcast-engine"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("dialcast runs")
}

/// The one JSON object dialcast printed on stdout.
fn json(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line on stdout: {text}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn u(value: &Value, field: &str) -> u64 {
    value
        .get(field)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{field} missing in {value}"))
}

const FILE: &str = "IDENTIFICATION_RECORD_ID;PERSON_LANGUAGE;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;INVOICE_DUE_DATE\n\
A1;en;0612345678;10.50;2026-12-31\n\
A2;en;0612345679;1.250;2026-12-31\n\
A3;nl;0201234567;12,50;31-12-2026\n";

#[test]
fn validate_only_prints_the_report_and_imports_nothing_then_partial_import() {
    let dir = workdir("validate");
    let config = write_config(&dir.0);
    let file = dir.0.join("records.csv");
    std::fs::write(&file, FILE).expect("file");
    let file = file.display().to_string();

    let out = dialcast(
        &[
            "import",
            &file,
            "--script",
            SCRIPT,
            "--validate-only",
            "--json",
        ],
        &config,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(
        (
            u(&report, "records"),
            u(&report, "will_import"),
            u(&report, "will_fail")
        ),
        (3, 2, 1)
    );
    for field in ["duplicates", "blocklisted", "invalid_numbers", "inserted"] {
        u(&report, field);
    }
    assert!(report.get("warnings").is_some_and(Value::is_array));
    let errors = report
        .get("errors")
        .and_then(Value::as_array)
        .expect("errors");
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["row"], 3);
    assert_eq!(errors[0]["column"], "INVOICE_AMOUNT_OPEN");
    assert!(errors[0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("1.250")));
    assert_eq!(report["status"], "validated");
    let validated_id = u(&report, "import_id");

    let status = dialcast(&["campaign", "status", SCRIPT, "--json"], &config);
    assert_eq!(u(&json(&status), "records"), 0, "nothing imported");

    // Without --accept-partial: nothing imported, exit status 1, report printed.
    let out = dialcast(&["import", &file, "--script", SCRIPT, "--json"], &config);
    assert!(!out.status.success());
    let report = json(&out);
    assert_eq!(u(&report, "inserted"), 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("--accept-partial"));
    let status = dialcast(&["campaign", "status", SCRIPT, "--json"], &config);
    assert_eq!(u(&json(&status), "records"), 0, "still nothing imported");

    // Confirm the validated import, accepting the failing row.
    let id = validated_id.to_string();
    let out = dialcast(
        &["import", "confirm", &id, "--accept-partial", "--json"],
        &config,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    assert_eq!(
        (u(&report, "inserted"), report["status"].clone()),
        (2, "finished".into())
    );
    let status = dialcast(&["campaign", "status", SCRIPT, "--json"], &config);
    assert_eq!(u(&json(&status), "records"), 2);

    let list = json(&dialcast(&["import", "list", "--json"], &config));
    let list = list.as_array().expect("a list");
    assert_eq!(list.len(), 2);
    let shown = json(&dialcast(&["import", "show", &id, "--json"], &config));
    assert_eq!(shown["status"], "finished");
    assert_eq!(u(&shown, "imported"), 2);
    assert_eq!(shown["report"]["will_fail"], 1);

    let copy = dir.0.join("copy.csv");
    let out = dialcast(
        &[
            "import",
            "download",
            &id,
            "--out",
            &copy.display().to_string(),
        ],
        &config,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&copy).expect("copy"), FILE);

    let other = u(&list[0], "id").to_string();
    let out = dialcast(&["import", "cancel", &other], &config);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = dialcast(&["import", "cancel", &id], &config);
    assert!(
        !out.status.success(),
        "a finished import cannot be cancelled"
    );
}

#[test]
fn the_blocklist_normalises_numbers_and_stops_pending_records() {
    let dir = workdir("blocklist");
    let config = write_config(&dir.0);
    let file = dir.0.join("records.csv");
    std::fs::write(
        &file,
        "IDENTIFICATION_RECORD_ID;PERSON_LANGUAGE;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN\n\
         B1;en;0612345678;10.50\nB2;en;0612345679;10.50\n",
    )
    .expect("file");
    let out = dialcast(
        &[
            "import",
            &file.display().to_string(),
            "--script",
            SCRIPT,
            "--json",
        ],
        &config,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = dialcast(
        &[
            "blocklist",
            "add",
            "06 1234 5678",
            "--reason",
            "asked not to be called",
            "--json",
        ],
        &config,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let added = json(&out);
    assert_eq!(added["number"], "+31612345678");
    assert_eq!(u(&added, "records_blocked"), 1);
    let status = json(&dialcast(
        &["campaign", "status", SCRIPT, "--json"],
        &config,
    ));
    assert_eq!(
        (u(&status, "pending"), status["statuses"]["blocked"].clone()),
        (1, 1.into())
    );

    let list = json(&dialcast(&["blocklist", "list", "--json"], &config));
    assert_eq!(list[0]["number"], "+31612345678");
    assert_eq!(list[0]["reason"], "asked not to be called");

    let bad = dialcast(&["blocklist", "add", "12ab", "--reason", "x"], &config);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("12ab"));

    let removed = json(&dialcast(
        &["blocklist", "remove", "+31612345678", "--json"],
        &config,
    ));
    assert_eq!(removed["removed"], true);
}

/// `dialcast import` killed with SIGKILL while it stores a large file:
/// nothing of it is seen by dialling, statuses, results or statistics, and
/// the next start-up marks it failed and deletes what it had stored.
#[tokio::test]
async fn an_import_killed_midway_is_never_seen_and_is_cleaned_at_start_up() {
    use dialcast_engine::store::{CampaignState, ImportStatus, ImportStore, StatsStore, Store};

    let dir = workdir("killed");
    let config = write_config(&dir.0);
    let file = dir.0.join("big.csv");
    // Several staging batches of 10,000 rows, so the kill lands between two.
    dialcast_loadtest::import::write_file(&file, 100_000, 7).expect("file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialcast-engine"))
        .args(["import", &file.display().to_string(), "--script", SCRIPT])
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("dialcast runs");
    let db = dir.0.join("dialcast.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let stored = loop {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the import ended before a batch was seen; use a larger file"
        );
        assert!(std::time::Instant::now() < deadline, "no batch stored");
        if db.exists() {
            if let Ok(pool) = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await
            {
                let n: Result<i64, _> = sqlx::query_scalar("SELECT COUNT(*) FROM records")
                    .fetch_one(&pool)
                    .await;
                pool.close().await;
                if let Ok(n @ 1..) = n {
                    break n;
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");

    let store = dialcast_engine::store::SqliteStore::open(&db)
        .await
        .expect("store");
    let campaign = store.campaign_by_name(SCRIPT).await.expect("campaign").id;
    let imports = store.imports_in_progress().await.expect("imports");
    assert_eq!(imports.len(), 1);
    assert_eq!(imports[0].status, ImportStatus::Importing);
    let status = store.campaign_status(campaign).await.expect("status");
    assert_eq!(status.records, 0, "{stored} stored rows are not records");
    assert!(store
        .record_finals(campaign)
        .await
        .expect("finals")
        .is_empty());
    assert!(store
        .result_rows(campaign, 0, i64::MAX)
        .await
        .expect("rows")
        .is_empty());
    let totals = store
        .stats_totals(campaign, 0, i64::MAX)
        .await
        .expect("stats");
    assert_eq!(totals.records_imported, 0);
    assert_eq!(store.next_due(campaign).await.expect("due"), None);
    store
        .set_campaign_state(campaign, CampaignState::Running, 0)
        .await
        .expect("running");
    let now = dialcast_engine::campaign::now_ms();
    assert!(
        common::campaigns::claim_any_hour(&store, campaign, now)
            .await
            .is_none(),
        "nothing to dial"
    );

    // What a service does when it starts.
    let recovered = dialcast_engine::imports::recover_imports(&store, now)
        .await
        .expect("recovers");
    assert_eq!(recovered, 1);
    let info = store.import_info(imports[0].id).await.expect("info");
    assert_eq!((info.status, info.imported), (ImportStatus::Failed, 0));
    assert!(store
        .existing_record_ids(campaign, &["BR-0000000", "BR-0000001"])
        .await
        .expect("lookup")
        .is_empty());
}
