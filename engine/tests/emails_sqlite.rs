//! The e-mail outbox against a real SQLite file: records imported with
//! `SERVICES_EMAIL=Y` are owed an e-mail once their import is published
//! (not while it runs, not after it is discarded), `queue_emails` writes
//! each message once with its event, failed ones keep their reason, and the
//! portal's list searches and pages them within the organisation.

mod common;

use std::path::PathBuf;

use dialcast_engine::imports::{self, PassOptions};
use dialcast_engine::store::imports::{PassCounts, Services, StagedOutcome, StagedRecord};
use dialcast_engine::store::sqlite::emails::EmailFilter;
use dialcast_engine::store::{
    CampaignSettings, EmailOutcome, ImportStatus, ImportStore, SqliteStore, Store, TrunkSettings,
};

struct Fixture {
    dir: PathBuf,
    store: SqliteStore,
    organisation: i64,
    campaign: i64,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

async fn fixture(test: &str) -> Fixture {
    let dir = std::env::temp_dir().join(format!("dialcast-emails-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = SqliteStore::open(&dir.join("dialcast.db"))
        .await
        .expect("store");
    let (organisation, campaign) =
        common::campaigns::bare_campaign(&store, &CampaignSettings::default()).await;
    Fixture {
        dir,
        store,
        organisation,
        campaign,
    }
}

/// A record to stage directly through the store, owed an e-mail to
/// `address` when one is given.
fn staged(record_id: &str, line: u64, address: Option<&str>) -> StagedRecord {
    let mut fields = serde_json::json!({ "IDENTIFICATION_RECORD_ID": record_id });
    if let Some(a) = address {
        fields["CONTACT_EMAIL"] = a.into();
        fields["SERVICES_EMAIL"] = "Y".into();
    }
    StagedRecord {
        line,
        record_id: record_id.into(),
        client_reference: None,
        fields_json: fields.to_string(),
        phones_json: "[\"+31612345678\"]".into(),
        outcome: StagedOutcome::Dial,
        services: Services {
            voice: true,
            sms: false,
            email: address.is_some(),
        },
    }
}

fn queued(address: &str, subject: &str) -> EmailOutcome {
    EmailOutcome::Queued {
        address: address.into(),
        template: "reminder_mail".into(),
        language: "en".into(),
        subject: subject.into(),
        body: format!("Dear customer, {subject}"),
    }
}

impl Fixture {
    /// An import of `records`, staged (in progress) but not published.
    async fn stage(&self, name: &str, records: Vec<StagedRecord>) -> i64 {
        let path = self.dir.join(name);
        std::fs::write(&path, "IDENTIFICATION_RECORD_ID\n").expect("file");
        let import = imports::upload(
            &self.store,
            &imports::Upload {
                organisation: self.organisation,
                campaign: self.campaign,
                script: "s",
                file: &path,
                name: None,
                archive_dir: &self.dir.join("archive"),
            },
            1_000,
        )
        .await
        .expect("upload");
        self.store
            .begin_pass(import, ImportStatus::Importing, 2_000)
            .await
            .expect("begin");
        self.store
            .stage_records(import, self.campaign, records)
            .await
            .expect("staged");
        import
    }

    async fn publish(&self, import: i64, records: u64) {
        let counts = PassCounts {
            records,
            imported: records,
            failed: 0,
        };
        self.store
            .publish_import(import, counts, "{}", 3_000)
            .await
            .expect("published");
    }

    /// The record ids of the campaign's pending e-mails, in order.
    async fn pending_ids(&self) -> Vec<String> {
        self.store
            .pending_emails(self.campaign, 100)
            .await
            .expect("pending")
            .into_iter()
            .map(|p| p.record_id)
            .collect()
    }

    async fn count(&self, sql: &str) -> i64 {
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            self.dir.join("dialcast.db").display()
        ))
        .await
        .expect("pool");
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_string()))
            .fetch_one(&pool)
            .await
            .expect("count");
        pool.close().await;
        n
    }
}

#[tokio::test]
async fn an_email_is_pending_only_once_its_import_is_published() {
    let f = fixture("publish").await;
    let import = f
        .stage(
            "a.csv",
            vec![
                staged("A1", 2, Some("a1@example.org")),
                staged("A2", 3, None),
                staged("A3", 4, Some("a3@example.org")),
            ],
        )
        .await;
    // Staged records are not records yet: nothing is owed, and queuing one
    // anyway is skipped.
    assert!(f.pending_ids().await.is_empty());
    let a1: i64 = f
        .count("SELECT id FROM records WHERE record_id = 'A1'")
        .await;
    let ids = f
        .store
        .queue_emails(f.campaign, &[(a1, queued("a1@example.org", "s"))], 2_500)
        .await
        .expect("queue");
    assert!(ids.is_empty(), "an unpublished record was queued");

    f.publish(import, 3).await;
    let pending = f
        .store
        .pending_emails(f.campaign, 100)
        .await
        .expect("pending");
    let seen: Vec<(&str, &str)> = pending
        .iter()
        .map(|p| (p.record_id.as_str(), p.address.as_str()))
        .collect();
    assert_eq!(seen, [("A1", "a1@example.org"), ("A3", "a3@example.org")]);
    assert_eq!(pending[0].record, a1);
    assert_eq!(
        pending[0].fields.get("SERVICES_EMAIL").map(String::as_str),
        Some("Y")
    );
    // At most `limit`, oldest first.
    let first = f
        .store
        .pending_emails(f.campaign, 1)
        .await
        .expect("pending");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].record_id, "A1");

    // A discarded import's records are never owed anything.
    let discarded = f
        .stage("b.csv", vec![staged("B1", 2, Some("b1@example.org"))])
        .await;
    f.store
        .discard_import(
            discarded,
            ImportStatus::Failed,
            PassCounts::default(),
            None,
            Some("test"),
            4_000,
        )
        .await
        .expect("discarded");
    assert_eq!(f.pending_ids().await, ["A1", "A3"]);
}

#[tokio::test]
async fn a_csv_import_owes_an_email_to_the_records_with_services_email() {
    let f = fixture("csv").await;
    let path = f.dir.join("mail.csv");
    std::fs::write(
        &path,
        "IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;CONTACT_EMAIL;SERVICES_EMAIL;CONTROL_SCRIPT\n\
         M1;0612345678;m1@example.org;Y;s\n\
         M2;0612345679;m2@example.org;N;s\n\
         M3;;m3@example.org;Y;s\n",
    )
    .expect("file");
    let import = imports::upload(
        &f.store,
        &imports::Upload {
            organisation: f.organisation,
            campaign: f.campaign,
            script: "s",
            file: &path,
            name: None,
            archive_dir: &f.dir.join("archive"),
        },
        1_000,
    )
    .await
    .expect("upload");
    let report = imports::confirm(&f.store, import, &PassOptions::new("NL"))
        .await
        .expect("imports");
    assert_eq!(report.status, ImportStatus::Finished, "{report:?}");
    // M3 has no number (reported invalid_number, never dialled) but still
    // gets its e-mail. (Whether a record without an address is owed one is
    // the import's rule; queuing it as failed is tested below.)
    let pending = f
        .store
        .pending_emails(f.campaign, 100)
        .await
        .expect("pending");
    let seen: Vec<(&str, &str)> = pending
        .iter()
        .map(|p| (p.record_id.as_str(), p.address.as_str()))
        .collect();
    assert_eq!(seen, [("M1", "m1@example.org"), ("M3", "m3@example.org")]);
}

#[tokio::test]
async fn each_email_is_queued_once_with_its_event_and_failures_keep_their_reason() {
    let f = fixture("queue").await;
    let import = f
        .stage(
            "a.csv",
            vec![
                staged("A1", 2, Some("a1@example.org")),
                staged("A2", 3, Some("")),
                staged("A3", 4, Some("a3@example.org")),
            ],
        )
        .await;
    f.publish(import, 3).await;
    let pending = f
        .store
        .pending_emails(f.campaign, 100)
        .await
        .expect("pending");
    assert_eq!(pending.len(), 3);
    let (a1, a2, a3) = (pending[0].record, pending[1].record, pending[2].record);
    let items = vec![
        (a1, queued("a1@example.org", "Your invoice")),
        (
            a2,
            EmailOutcome::Failed {
                address: String::new(),
                template: Some("reminder_mail".into()),
                reason: "CONTACT_EMAIL is empty".into(),
            },
        ),
        // The same record twice in one batch: the second is skipped.
        (a1, queued("a1@example.org", "again")),
    ];
    let ids = f
        .store
        .queue_emails(f.campaign, &items, 5_000)
        .await
        .expect("queued");
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert_eq!(f.pending_ids().await, ["A3"]);

    // Called again after a crash between commit and reply: nothing doubles.
    let again = f
        .store
        .queue_emails(f.campaign, &items, 6_000)
        .await
        .expect("again");
    assert!(again.is_empty(), "{again:?}");
    // Another campaign's id cannot take this campaign's record.
    let stray = f
        .store
        .queue_emails(
            f.campaign + 1,
            &[(a3, queued("a3@example.org", "x"))],
            6_000,
        )
        .await
        .expect("stray");
    assert!(stray.is_empty());
    assert_eq!(f.pending_ids().await, ["A3"]);

    assert_eq!(f.count("SELECT COUNT(*) FROM email_outbox").await, 2);
    assert_eq!(
        f.count("SELECT COUNT(*) FROM events WHERE kind = 'email_queued'")
            .await,
        1
    );
    assert_eq!(
        f.count("SELECT COUNT(*) FROM events WHERE kind = 'email_failed'")
            .await,
        1
    );
    assert_eq!(
        f.count(&format!(
            "SELECT COUNT(*) FROM events WHERE kind = 'email_queued' AND record_id = {a1} \
             AND json_extract(payload_json, '$.email_id') = {}",
            ids[0]
        ))
        .await,
        1
    );

    let rows = f
        .store
        .search_emails(
            f.organisation,
            &EmailFilter {
                limit: 10,
                ..EmailFilter::default()
            },
        )
        .await
        .expect("list");
    assert_eq!(rows.len(), 2);
    let (failed, sent) = (&rows[0], &rows[1]);
    assert_eq!((failed.id, sent.id), (ids[1], ids[0]), "newest first");
    assert_eq!(sent.state, "queued");
    assert_eq!(sent.record_id, "A1");
    assert_eq!(sent.address, "a1@example.org");
    assert_eq!(sent.subject.as_deref(), Some("Your invoice"));
    assert_eq!(sent.body.as_deref(), Some("Dear customer, Your invoice"));
    assert_eq!(sent.language.as_deref(), Some("en"));
    assert_eq!(sent.created_at, 5_000);
    assert_eq!(sent.error, None);
    assert_eq!(failed.state, "failed");
    assert_eq!(failed.error.as_deref(), Some("CONTACT_EMAIL is empty"));
    assert_eq!(failed.template.as_deref(), Some("reminder_mail"));
    assert_eq!(
        (failed.subject.as_ref(), failed.body.as_ref()),
        (None, None)
    );

    // Only queued messages wait in the outbox.
    let backlog = f.store.email_outbox_backlog().await.expect("backlog");
    assert_eq!((backlog.depth, backlog.oldest_at), (1, Some(5_000)));
}

#[tokio::test]
async fn the_email_list_filters_and_pages_within_the_organisation() {
    let f = fixture("list").await;
    // Records imported without an import (the older path) are owed an
    // e-mail at once.
    let records: Vec<_> = (0..4)
        .map(|i| {
            let r = common::campaigns::reminder_record(i, Some(&format!("+3161234567{i}")));
            let r = common::campaigns::with_field(r, "SERVICES_EMAIL", "Y");
            common::campaigns::with_field(r, "CONTACT_EMAIL", &format!("r{i}@example.org"))
        })
        .collect();
    f.store
        .insert_records(f.campaign, &records, 1_000)
        .await
        .expect("records");
    let pending = f
        .store
        .pending_emails(f.campaign, 100)
        .await
        .expect("pending");
    assert_eq!(pending.len(), 4);
    let mut ids = Vec::new();
    for (i, p) in pending.iter().enumerate() {
        let at = 10_000 + i as i64 * 1_000;
        let outcome = if i == 3 {
            EmailOutcome::Failed {
                address: p.address.clone(),
                template: None,
                reason: "no email_template in the script".into(),
            }
        } else {
            queued(&p.address, "s")
        };
        let got = f
            .store
            .queue_emails(f.campaign, &[(p.record, outcome)], at)
            .await
            .expect("queue");
        ids.extend(got);
    }
    assert_eq!(ids.len(), 4);

    // Another organisation with its own message sees only that one.
    let other = f
        .store
        .ensure_organisation("Other", "NL")
        .await
        .expect("org");
    let trunk = f
        .store
        .upsert_trunk(
            other,
            &TrunkSettings {
                name: "t".into(),
                uri: "sip:127.0.0.1:5090".into(),
                transport: "udp".into(),
                max_cps: 1,
                max_channels: 1,
                caller_id: None,
            },
        )
        .await
        .expect("trunk");
    let script = f
        .store
        .upsert_script(other, "o", "o.toml", "name = \"o\"")
        .await
        .expect("script");
    let oc = f
        .store
        .ensure_campaign(other, "oc", script, trunk, &CampaignSettings::default())
        .await
        .expect("campaign");
    f.store
        .insert_records(oc, &records[..1], 1_000)
        .await
        .expect("records");
    let theirs = f.store.pending_emails(oc, 10).await.expect("pending");
    let their_ids = f
        .store
        .queue_emails(
            oc,
            &[(theirs[0].record, queued("r0@example.org", "o"))],
            20_000,
        )
        .await
        .expect("queue");

    let search = |filter: EmailFilter| {
        let store = f.store.clone();
        let org = f.organisation;
        async move {
            store
                .search_emails(
                    org,
                    &EmailFilter {
                        limit: 100,
                        ..filter
                    },
                )
                .await
                .expect("search")
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<i64>>()
        }
    };
    let all = search(EmailFilter::default()).await;
    assert_eq!(all, [ids[3], ids[2], ids[1], ids[0]]);
    let text = |s: &str| Some(s.to_owned());
    assert_eq!(
        search(EmailFilter {
            address: text("r0@example.org"),
            ..EmailFilter::default()
        })
        .await,
        [ids[0]],
        "the other organisation's r0@example.org is not listed"
    );
    assert_eq!(
        search(EmailFilter {
            record_id: text("R1"),
            ..EmailFilter::default()
        })
        .await,
        [ids[1]]
    );
    assert_eq!(
        search(EmailFilter {
            state: text("failed"),
            ..EmailFilter::default()
        })
        .await,
        [ids[3]]
    );
    assert_eq!(
        search(EmailFilter {
            script: text("s"),
            from: Some(11_000),
            to: Some(13_000),
            ..EmailFilter::default()
        })
        .await,
        [ids[2], ids[1]]
    );
    assert!(search(EmailFilter {
        script: text("o"),
        ..EmailFilter::default()
    })
    .await
    .is_empty());
    assert_eq!(
        search(EmailFilter {
            before_id: Some(ids[2]),
            ..EmailFilter::default()
        })
        .await,
        [ids[1], ids[0]]
    );
    // Pages of one, by the cursor.
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = f
            .store
            .search_emails(
                f.organisation,
                &EmailFilter {
                    before_id: before,
                    limit: 1,
                    ..EmailFilter::default()
                },
            )
            .await
            .expect("page");
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        seen.extend(page.iter().map(|r| r.id));
    }
    assert_eq!(seen, all);
    // The other organisation sees its own only.
    let theirs = f
        .store
        .search_emails(
            other,
            &EmailFilter {
                limit: 100,
                ..EmailFilter::default()
            },
        )
        .await
        .expect("theirs");
    assert_eq!(theirs.iter().map(|r| r.id).collect::<Vec<_>>(), their_ids);
}
