//! The e-mail of records imported with `SERVICES_EMAIL=Y`, end to end on a
//! real SQLite file: a CSV import is confirmed, the queue fills the
//! script's `email_template` in for each record in its language, failed
//! ones keep the reason, a second pass writes nothing, and a campaign whose
//! script does not load keeps its records pending.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use dialcast_engine::imports::{self, PassOptions};
use dialcast_engine::messaging::email::queue_pending;
use dialcast_engine::store::{CampaignSettings, ImportStatus, SqliteStore, Store, TrunkSettings};
use dialcast_scripts::{default_audio_root, AudioCatalog};

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/examples")
        .join(format!("{name}.toml"));
    std::fs::read_to_string(path).expect("example script")
}

/// A campaign of `script` (stored under its own name) in organisation
/// `org`; returns (organisation, campaign).
async fn campaign(store: &SqliteStore, name: &str, script: &str, source: &str) -> (i64, i64) {
    let org = store.ensure_organisation("Org", "NL").await.expect("org");
    let trunk = store
        .upsert_trunk(
            org,
            &TrunkSettings {
                name: "t".into(),
                uri: "sip:127.0.0.1:5090".into(),
                transport: "udp".into(),
                max_cps: 5,
                max_channels: 5,
                caller_id: None,
            },
        )
        .await
        .expect("trunk");
    let script_id = store
        .upsert_script(org, script, &format!("{script}.toml"), source)
        .await
        .expect("script");
    let campaign = store
        .ensure_campaign(org, name, script_id, trunk, &CampaignSettings::default())
        .await
        .expect("campaign");
    (org, campaign)
}

async fn import(
    store: &SqliteStore,
    dir: &Path,
    (org, campaign): (i64, i64),
    script: &str,
    csv: &str,
) {
    let path = dir.join(format!("{script}.csv"));
    std::fs::write(&path, csv).expect("file");
    let import = imports::upload(
        store,
        &imports::Upload {
            organisation: org,
            campaign,
            script,
            file: &path,
            name: None,
            archive_dir: &dir.join("archive"),
        },
        1_000,
    )
    .await
    .expect("upload");
    let report = imports::confirm(store, import, &PassOptions::new("NL"))
        .await
        .expect("import");
    assert_eq!(report.status, ImportStatus::Finished, "{report:?}");
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

#[tokio::test]
async fn imported_records_get_the_scripts_email_once_in_their_language() {
    let dir =
        Dir(std::env::temp_dir().join(format!("dialcast-email-queue-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    std::fs::create_dir_all(&dir.0).expect("dir");
    let store = SqliteStore::open(&dir.0.join("dialcast.db"))
        .await
        .expect("store");
    let catalog = AudioCatalog::from_roots(&[default_audio_root()]).expect("catalog");

    let notice = campaign(
        &store,
        "c",
        "notice_with_agent",
        &example("notice_with_agent"),
    )
    .await;
    import(
        &store,
        &dir.0,
        notice,
        "notice_with_agent",
        "IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;CONTACT_EMAIL;SERVICES_EMAIL;INVOICE_NUMBER;\
         PERSON_FIRST_NAME;PERSON_LANGUAGE\n\
         E1;0612345678;e1@example.org;Y;1001;Jan;\n\
         E2;0612345679;e2@example.org;Y;1002;;nl-BE\n\
         E3;0612345670;e3@example.org;Y;;Ann;en\n\
         E4;0612345671;e4@example.org;N;1004;;\n\
         E5;0612345672;not an address;Y;1005;;\n",
    )
    .await;
    // A second campaign whose stored script no longer loads.
    let broken = campaign(&store, "b", "broken", "name = \"broken\"\n").await;
    import(
        &store,
        &dir.0,
        broken,
        "broken",
        "IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;CONTACT_EMAIL;SERVICES_EMAIL\n\
         B1;0612345678;b1@example.org;Y\n",
    )
    .await;

    let mut warned = HashSet::new();
    let written = queue_pending(&store, &catalog, 5_000, &mut warned)
        .await
        .expect("queue");
    assert_eq!(
        written, 3,
        "E1, E2 and E3; E4 asked for none, E5 has no address"
    );
    assert_eq!(warned, HashSet::from([broken.1]));
    // Nothing is written twice.
    let again = queue_pending(&store, &catalog, 6_000, &mut warned)
        .await
        .expect("queue again");
    assert_eq!(again, 0);
    // The broken campaign's record still waits for its script.
    assert_eq!(
        store
            .pending_emails(broken.1, 10)
            .await
            .expect("pending")
            .len(),
        1
    );

    let pool =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.0.join("dialcast.db").display()))
            .await
            .expect("read");
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT r.record_id, m.address, m.state, m.language, m.subject, m.body, m.error \
         FROM email_outbox m JOIN records r ON r.id = m.record_id ORDER BY r.record_id",
    )
    .fetch_all(&pool)
    .await
    .expect("outbox");
    let [e1, e2, e3] = rows.as_slice() else {
        panic!("{rows:#?}")
    };
    assert_eq!(
        (
            e1.0.as_str(),
            e1.1.as_str(),
            e1.2.as_str(),
            e1.3.as_deref(),
            e1.4.as_deref()
        ),
        (
            "E1",
            "e1@example.org",
            "queued",
            Some("en"),
            Some("Invoice 1001 is overdue")
        )
    );
    assert!(
        e1.5.as_deref()
            .is_some_and(|b| b.starts_with("Dear Jan,\n\nInvoice 1001 has not")),
        "{e1:?}"
    );
    assert_eq!(
        (e2.2.as_str(), e2.3.as_deref(), e2.4.as_deref()),
        ("queued", Some("nl"), Some("Factuur 1002 is niet betaald"))
    );
    assert!(
        e2.5.as_deref()
            .is_some_and(|b| b.starts_with("Beste klant,")),
        "{e2:?}"
    );
    assert_eq!(
        (e3.0.as_str(), e3.2.as_str(), e3.5.as_deref()),
        ("E3", "failed", None)
    );
    assert!(
        e3.6.as_deref()
            .is_some_and(|e| e.contains("INVOICE_NUMBER")),
        "the reason names the blank field: {e3:?}"
    );
    let events: Vec<String> =
        sqlx::query_scalar("SELECT kind FROM events WHERE kind LIKE 'email_%' ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("events");
    assert_eq!(events, ["email_queued", "email_queued", "email_failed"]);
}
