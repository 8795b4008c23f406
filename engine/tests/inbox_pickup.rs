//! The organisation's inbox: files dropped into `<inbox>/<script>/` are
//! imported at a pickup and moved to `done/` or `failed/` with their report
//! beside them; a file with failing rows imports nothing, a folder that
//! names no script fails with the reason, and files still arriving are left
//! alone.

mod common;

use std::path::Path;
use std::time::{Duration, SystemTime};

use common::import_config::ImportConfig;
use dialcast_engine::config::Config;
use dialcast_engine::inbox::pickup::pick_up;
use dialcast_engine::service::audio_catalog;
use dialcast_engine::store::{SqliteStore, Store as _};

const GOOD: &str = "IDENTIFICATION_RECORD_ID;PERSON_LANGUAGE;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;INVOICE_DUE_DATE\n\
G1;en;0612345678;10.50;2026-12-31\n\
G2;nl;0612345679;12,50;31-12-2026\n";

const BAD: &str = "IDENTIFICATION_RECORD_ID;PERSON_LANGUAGE;CONTACT_PHONE_1;INVOICE_AMOUNT_OPEN;INVOICE_DUE_DATE\n\
B1;en;0612345670;10.50;2026-12-31\n\
B2;en;0612345671;lots;2026-12-31\n";

fn config(dir: &Path) -> Config {
    ImportConfig::new(dir, "Inbox test").with_inbox().parse()
}

/// Writes a file as if its upload had finished a minute ago.
fn drop_file(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    std::fs::write(path, text).expect("file");
    let file = std::fs::File::options()
        .write(true)
        .open(path)
        .expect("open");
    file.set_modified(SystemTime::now() - Duration::from_secs(60))
        .expect("mtime");
}

#[tokio::test]
async fn dropped_files_are_imported_and_moved_with_their_reports() {
    let dir = std::env::temp_dir().join(format!("dialcast-inbox-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = config(&dir);
    let inbox = dir.join("inbox");
    let script = inbox.join("payment_reminder");
    drop_file(&script.join("good.csv"), GOOD);
    drop_file(&script.join("bad.csv"), BAD);
    drop_file(&inbox.join("nosuch/x.csv"), GOOD);
    // Still arriving: written just now.
    std::fs::write(script.join("fresh.csv"), GOOD).expect("fresh");

    let store = SqliteStore::open(&config.storage.database)
        .await
        .expect("store");
    let catalog = audio_catalog(&[]).expect("catalog");
    let handled = pick_up(&store, &catalog, &config, &inbox)
        .await
        .expect("pickup");
    assert_eq!(handled, 3);

    let report = |path: &Path| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).expect("report")).expect("json")
    };
    let good = report(&script.join("done/good.csv.report.json"));
    assert_eq!(good["status"], "finished", "{good}");
    assert_eq!(good["inserted"], 2, "{good}");
    assert!(script.join("done/good.csv").exists());

    let bad = report(&script.join("failed/bad.csv.report.json"));
    assert_eq!(bad["will_fail"], 1, "{bad}");
    assert_eq!(bad["errors"][0]["row"], 3, "{bad}");
    assert_eq!(bad["errors"][0]["column"], "INVOICE_AMOUNT_OPEN", "{bad}");
    assert!(script.join("failed/bad.csv").exists());

    let unknown = report(&inbox.join("nosuch/failed/x.csv.report.json"));
    assert!(
        unknown["error"]
            .as_str()
            .is_some_and(|e| e.contains("nosuch")),
        "{unknown}"
    );

    // Only the good file's records are in the campaign; the fresh file waits.
    let campaign = store
        .campaign_by_name("payment_reminder")
        .await
        .expect("campaign");
    let finals = store.record_finals(campaign.id).await.expect("finals");
    let ids: Vec<&str> = finals.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, ["G1", "G2"]);
    assert!(script.join("fresh.csv").exists());
    let again = pick_up(&store, &catalog, &config, &inbox)
        .await
        .expect("pickup");
    assert_eq!(
        again, 0,
        "handled files are gone, the fresh one still settles"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
