//! Imports against a real SQLite file in a temporary directory: validate
//! then confirm, partial imports, cancel, all-or-nothing on failure and at
//! start-up, duplicates, the blocklist in an import and blocking a number of
//! pending records.

mod common;

use common::campaigns::claim_any_hour;

use std::path::{Path, PathBuf};

use dialcast_engine::imports::{self, PassOptions, ValidationReport};
use dialcast_engine::store::blocklist::entry;
use dialcast_engine::store::imports::{StagedOutcome, StagedRecord};
use dialcast_engine::store::{
    BlocklistStore, CampaignSettings, ImportStatus, ImportStore, SqliteStore, Store, StoreError,
};

const HEADER: &str =
    "IDENTIFICATION_RECORD_ID;CONTACT_PHONE_1;CONTACT_PHONE_2;INVOICE_AMOUNT_OPEN;CONTROL_SCRIPT\n";

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
    let dir = std::env::temp_dir().join(format!("dialcast-imports-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let store = SqliteStore::open(&dir.join("dialcast.db"))
        .await
        .expect("store");
    let (organisation, campaign) =
        common::campaigns::bare_campaign(&store, &CampaignSettings::default()).await;
    store
        .set_campaign_state(campaign, dialcast_engine::store::CampaignState::Running, 0)
        .await
        .expect("running");
    Fixture {
        dir,
        store,
        organisation,
        campaign,
    }
}

impl Fixture {
    /// Claims under rules that allow a call at any hour.
    async fn claim(&self) -> Option<dialcast_engine::store::Claim> {
        claim_any_hour(
            &self.store,
            self.campaign,
            dialcast_engine::campaign::now_ms(),
        )
        .await
    }

    /// Writes `rows` under [`HEADER`] and uploads the file.
    async fn upload(&self, name: &str, rows: &str) -> i64 {
        let path = self.dir.join(name);
        std::fs::write(&path, format!("{HEADER}{rows}")).expect("file");
        self.upload_path(&path).await
    }

    async fn upload_path(&self, path: &Path) -> i64 {
        imports::upload(
            &self.store,
            &imports::Upload {
                organisation: self.organisation,
                campaign: self.campaign,
                script: "s",
                file: path,
                name: None,
                archive_dir: &self.dir.join("archive"),
            },
            1_000,
        )
        .await
        .expect("upload")
    }

    async fn status(&self, import: i64) -> ImportStatus {
        self.store.import_info(import).await.expect("info").status
    }

    /// Rows of the records table of the campaign in any state (staged too).
    async fn stored_ids(&self, ids: &[&str]) -> usize {
        self.store
            .existing_record_ids(self.campaign, ids)
            .await
            .expect("lookup")
            .len()
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

fn options() -> PassOptions {
    PassOptions::new("NL")
}

fn partial() -> PassOptions {
    PassOptions {
        accept_partial: true,
        ..options()
    }
}

fn issue_at(report: &ValidationReport, row: u64) -> &imports::Issue {
    report
        .errors
        .iter()
        .find(|i| i.row == row)
        .unwrap_or_else(|| panic!("no error at row {row}: {:?}", report.errors))
}

/// Two good rows, a bad amount (line 3), a repeated id (line 5) and a row
/// of another script (line 6).
const MIXED: &str = "A;0612345678;;10.00;s\n\
B;0612345679;;abc;s\n\
C;0612345670;;12.00;s\n\
A;0612345671;;13.00;s\n\
D;0612345672;;14.00;other\n";

#[tokio::test]
async fn validate_only_imports_nothing_and_reports_row_column_reason() {
    let f = fixture("validate").await;
    let import = f.upload("mixed.csv", MIXED).await;
    assert_eq!(f.status(import).await, ImportStatus::Uploaded);
    let report = imports::validate(&f.store, import, &options())
        .await
        .expect("validates");
    assert_eq!(report.status, ImportStatus::Validated);
    assert_eq!(
        (report.records, report.will_import, report.will_fail),
        (5, 2, 3)
    );
    assert_eq!((report.duplicates, report.duplicates_in_file), (1, 1));
    let amount = issue_at(&report, 3);
    assert_eq!(amount.column.as_deref(), Some("INVOICE_AMOUNT_OPEN"));
    assert!(amount.reason.contains("abc"), "{amount:?}");
    let repeated = issue_at(&report, 5);
    assert_eq!(repeated.column.as_deref(), Some("IDENTIFICATION_RECORD_ID"));
    assert!(repeated.reason.contains("line 2"), "{repeated:?}");
    let script = issue_at(&report, 6);
    assert_eq!(script.column.as_deref(), Some("CONTROL_SCRIPT"));
    assert!(script.reason.contains("other"), "{script:?}");

    assert_eq!(f.stored_ids(&["A", "B", "C", "D"]).await, 0);
    let info = f.store.import_info(import).await.expect("info");
    assert_eq!(info.status, ImportStatus::Validated);
    assert_eq!((info.records, info.imported, info.failed), (5, 0, 3));
    assert_eq!(
        info.report.as_ref().and_then(|r| r.get("will_fail")),
        Some(&serde_json::json!(3))
    );
}

#[tokio::test]
async fn accept_partial_imports_the_good_rows_only() {
    let f = fixture("partial").await;
    let import = f.upload("mixed.csv", MIXED).await;
    imports::validate(&f.store, import, &options())
        .await
        .expect("validates");
    let report = imports::confirm(&f.store, import, &partial())
        .await
        .expect("imports");
    assert_eq!(report.status, ImportStatus::Finished);
    assert_eq!((report.inserted, report.will_fail), (2, 3));
    let status = f.store.campaign_status(f.campaign).await.expect("status");
    assert_eq!((status.records, status.pending), (2, 2));
    let finals = f.store.record_finals(f.campaign).await.expect("finals");
    let ids: Vec<&str> = finals.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, ["A", "C"]);
    let info = f.store.import_info(import).await.expect("info");
    assert_eq!((info.status, info.imported), (ImportStatus::Finished, 2));
}

#[tokio::test]
async fn without_accept_partial_a_file_with_failures_imports_nothing() {
    let f = fixture("refused").await;
    let import = f.upload("mixed.csv", MIXED).await;
    let report = imports::confirm(&f.store, import, &options())
        .await
        .expect("pass runs");
    assert_eq!(report.status, ImportStatus::Validated);
    assert_eq!(
        (report.inserted, report.will_import, report.will_fail),
        (0, 2, 3)
    );
    assert_eq!(
        f.stored_ids(&["A", "B", "C", "D"]).await,
        0,
        "no staged rows left"
    );
    assert_eq!(f.status(import).await, ImportStatus::Validated);
    // It can still be imported partially.
    let report = imports::confirm(&f.store, import, &partial())
        .await
        .expect("imports");
    assert_eq!(report.inserted, 2);
}

#[tokio::test]
async fn an_import_is_cancelled_only_before_it_is_confirmed() {
    let f = fixture("cancel").await;
    let import = f.upload("good.csv", "A;0612345678;;10.00;s\n").await;
    imports::validate(&f.store, import, &options())
        .await
        .expect("validates");
    imports::cancel(&f.store, import).await.expect("cancels");
    assert_eq!(f.status(import).await, ImportStatus::Cancelled);
    let err = imports::confirm(&f.store, import, &options())
        .await
        .expect_err("cancelled");
    assert!(err.to_string().contains("cancelled"), "{err:#}");
    assert_eq!(f.stored_ids(&["A"]).await, 0);

    let other = f.upload("good2.csv", "B;0612345678;;10.00;s\n").await;
    imports::confirm(&f.store, other, &options())
        .await
        .expect("imports");
    let err = imports::cancel(&f.store, other)
        .await
        .expect_err("finished");
    assert!(
        matches!(
            err.downcast_ref::<StoreError>(),
            Some(StoreError::WrongState { .. })
        ),
        "{err:#}"
    );
}

#[tokio::test]
async fn a_failure_after_the_first_batches_leaves_no_records() {
    let f = fixture("midway").await;
    let mut bytes = HEADER.as_bytes().to_vec();
    for i in 0..5 {
        bytes.extend_from_slice(format!("R{i};061234567{i};;10.00;s\n").as_bytes());
    }
    bytes.extend_from_slice(b"R9;\xff\xfe;;10.00;s\n");
    let path = f.dir.join("broken.csv");
    std::fs::write(&path, bytes).expect("file");
    let import = f.upload_path(&path).await;
    let options = PassOptions {
        batch_rows: 2,
        ..partial()
    };
    let err = imports::confirm(&f.store, import, &options)
        .await
        .expect_err("not UTF-8");
    assert!(err.to_string().contains(":7:"), "names the line: {err:#}");
    assert_eq!(f.stored_ids(&["R0", "R1", "R2", "R3", "R4"]).await, 0);
    let info = f.store.import_info(import).await.expect("info");
    assert_eq!(info.status, ImportStatus::Failed);
    assert!(info.error.is_some_and(|e| e.contains("UTF-8")));
}

#[tokio::test]
async fn staged_rows_of_an_interrupted_import_are_deleted_at_start_up() {
    let f = fixture("recover").await;
    let import = f.upload("good.csv", "A;0612345678;;10.00;s\n").await;
    f.store
        .begin_pass(import, ImportStatus::Importing, 2_000)
        .await
        .expect("begin");
    f.store
        .stage_records(
            import,
            f.campaign,
            vec![
                staged("A", 2, "+31612345678", StagedOutcome::Dial),
                staged(
                    "B",
                    3,
                    "+31612345679",
                    StagedOutcome::Blocked {
                        number: "+31612345679".into(),
                    },
                ),
            ],
        )
        .await
        .expect("staged");
    assert_eq!(f.stored_ids(&["A", "B"]).await, 2);
    let status = f.store.campaign_status(f.campaign).await.expect("status");
    assert_eq!(status.records, 0, "staged rows are not records yet");
    assert!(f.claim().await.is_none());

    // The process died here; the service starts.
    let recovered = imports::recover_imports(&f.store, 3_000)
        .await
        .expect("recovers");
    assert_eq!(recovered, 1);
    assert_eq!(f.stored_ids(&["A", "B"]).await, 0);
    assert_eq!(f.count("SELECT COUNT(*) FROM attempts").await, 0);
    let info = f.store.import_info(import).await.expect("info");
    assert_eq!(info.status, ImportStatus::Failed);
    assert!(info.error.is_some_and(|e| e.contains("interrupted")));
}

/// A record to stage directly through the store.
fn staged(record_id: &str, line: u64, number: &str, outcome: StagedOutcome) -> StagedRecord {
    StagedRecord {
        line,
        record_id: record_id.into(),
        client_reference: None,
        fields_json: "{}".into(),
        phones_json: format!("[\"{number}\"]"),
        outcome,
        services: Default::default(),
    }
}

impl Fixture {
    /// An import whose pass starts at `at` (its records wait at that
    /// instant) and stages `records`; published when `publish` is set.
    async fn import_at(
        &self,
        name: &str,
        at: i64,
        records: Vec<StagedRecord>,
        publish: bool,
    ) -> i64 {
        let import = self.upload(name, "").await;
        self.store
            .begin_pass(import, ImportStatus::Importing, at)
            .await
            .expect("begin");
        let n = records.len() as u64;
        self.store
            .stage_records(import, self.campaign, records)
            .await
            .expect("staged");
        if publish {
            self.publish(import, n).await;
        }
        import
    }

    async fn publish(&self, import: i64, records: u64) {
        let counts = dialcast_engine::store::imports::PassCounts {
            records,
            imported: records,
            failed: 0,
        };
        self.store
            .publish_import(import, counts, "{}", 9_000)
            .await
            .expect("published");
    }
}

#[tokio::test]
async fn records_of_an_import_in_progress_are_absent_until_it_is_published() {
    let f = fixture("in-progress").await;
    // Due before and after the import in progress, which starts at 2,000.
    let dial = StagedOutcome::Dial;
    f.import_at(
        "before.csv",
        1_000,
        vec![staged("V1", 2, "+31612345671", dial.clone())],
        true,
    )
    .await;
    let hidden = f
        .import_at(
            "hidden.csv",
            2_000,
            vec![
                staged("H1", 2, "+31612345672", dial.clone()),
                staged(
                    "H2",
                    3,
                    "+31612345673",
                    StagedOutcome::Blocked {
                        number: "+31612345673".into(),
                    },
                ),
                staged("H3", 4, "+31612345674", dial.clone()),
            ],
            false,
        )
        .await;
    f.import_at(
        "after.csv",
        3_000,
        vec![staged("V3", 2, "+31612345675", dial)],
        true,
    )
    .await;

    // Statuses, records, results and statistics do not see H1..H3.
    let status = f.store.campaign_status(f.campaign).await.expect("status");
    assert_eq!((status.records, status.pending, status.done), (2, 2, 0));
    assert!(status.statuses.is_empty(), "{:?}", status.statuses);
    let finals = f.store.record_finals(f.campaign).await.expect("finals");
    let ids: Vec<&str> = finals.iter().map(|r| r.record_id.as_str()).collect();
    assert_eq!(ids, ["V1", "V3"]);
    assert!(f
        .store
        .result_rows(f.campaign, 0, i64::MAX)
        .await
        .expect("rows")
        .is_empty());
    assert_eq!(
        f.store.next_due(f.campaign).await.expect("due"),
        Some(1_000)
    );
    assert_eq!(
        f.store
            .pending_due_before(f.campaign, i64::MAX)
            .await
            .expect("count"),
        2
    );
    let totals =
        dialcast_engine::store::StatsStore::stats_totals(&f.store, f.campaign, 0, i64::MAX)
            .await
            .expect("stats");
    assert_eq!((totals.records_imported, totals.records_done), (2, 0));
    assert_eq!(
        f.count("SELECT COUNT(*) FROM events WHERE kind = 'record_done'")
            .await,
        0
    );
    // Blocking H3's only number leaves it alone (the claim checks again).
    let blocked = f
        .store
        .block_number(f.organisation, &entry("+31612345674", "asked", None, 5_000))
        .await
        .expect("blocks");
    assert_eq!(blocked.records_blocked, 0);

    // Dialling reads around the import's instant: the records due before
    // and after it, then nothing.
    let first = f.claim().await.expect("V1 due");
    let second = f.claim().await.expect("V3 due");
    assert_eq!(
        (first.record_id.as_str(), second.record_id.as_str()),
        ("V1", "V3")
    );
    assert!(f.claim().await.is_none(), "H1 is not a record yet");
    assert_eq!(f.store.next_due(f.campaign).await.expect("due"), None);

    // Published: seen as they were stored.
    f.publish(hidden, 3).await;
    let status = f.store.campaign_status(f.campaign).await.expect("status");
    assert_eq!((status.records, status.pending, status.done), (5, 2, 1));
    assert_eq!(status.statuses.get("blocked"), Some(&1));
    assert_eq!(
        f.store.next_due(f.campaign).await.expect("due"),
        Some(2_000)
    );
    let rows = f
        .store
        .result_rows(f.campaign, 0, i64::MAX)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].record_id.as_str(), rows[0].calls[0].status.as_str()),
        ("H2", "blocked")
    );
    assert_eq!(
        f.count("SELECT COUNT(*) FROM events WHERE kind = 'record_done'")
            .await,
        1
    );
    let info = f.store.import_info(hidden).await.expect("info");
    assert_eq!((info.status, info.imported), (ImportStatus::Finished, 3));
    let totals =
        dialcast_engine::store::StatsStore::stats_totals(&f.store, f.campaign, 0, i64::MAX)
            .await
            .expect("stats");
    assert_eq!((totals.records_imported, totals.records_done), (5, 1));
    let next = f.claim().await.expect("H1 due");
    assert_eq!(next.record_id, "H1");
    // H3's only number is blocked: the claim ends it without a call.
    assert!(f.claim().await.is_none());
    let finals = f.store.record_finals(f.campaign).await.expect("finals");
    let h3 = finals.iter().find(|r| r.record_id == "H3").expect("H3");
    assert_eq!(h3.final_status.as_deref(), Some("blocked"));
}

#[tokio::test]
async fn a_record_due_at_the_instant_an_import_started_waits_for_it_only() {
    let f = fixture("same-instant").await;
    let dial = StagedOutcome::Dial;
    f.import_at(
        "first.csv",
        2_000,
        vec![staged("V1", 2, "+31612345671", dial.clone())],
        true,
    )
    .await;
    let hidden = f
        .import_at(
            "second.csv",
            2_000,
            vec![staged("H1", 2, "+31612345672", dial)],
            false,
        )
        .await;
    assert!(f.claim().await.is_none(), "waits while the import runs");
    assert_eq!(f.store.next_due(f.campaign).await.expect("due"), None);
    f.store
        .discard_import(
            hidden,
            ImportStatus::Failed,
            Default::default(),
            None,
            Some("test"),
            9_000,
        )
        .await
        .expect("discarded");
    assert_eq!(f.stored_ids(&["H1"]).await, 0);
    assert_eq!(f.claim().await.expect("V1 due").record_id, "V1");
    assert!(f.claim().await.is_none());
}

#[tokio::test]
async fn duplicates_within_the_file_fail_and_those_of_the_campaign_are_skipped() {
    let f = fixture("duplicates").await;
    let first = f
        .upload(
            "first.csv",
            "A;0612345678;;10.00;s\nB;0612345679;;10.00;s\n",
        )
        .await;
    imports::confirm(&f.store, first, &options())
        .await
        .expect("imports");
    let second = f
        .upload(
            "second.csv",
            "B;0612345679;;10.00;s\nC;0612345670;;10.00;s\nC;0612345671;;10.00;s\n",
        )
        .await;
    let validated = imports::validate(&f.store, second, &options())
        .await
        .expect("validates");
    let imported = imports::confirm(&f.store, second, &partial())
        .await
        .expect("imports");
    for report in [&validated, &imported] {
        assert_eq!(report.duplicates, 2, "{report:?}");
        assert_eq!(report.duplicates_in_file, 1);
        assert_eq!(report.already_in_campaign, 1);
        assert_eq!((report.will_import, report.will_fail), (1, 1));
        assert_eq!(
            issue_at(report, 4).column.as_deref(),
            Some("IDENTIFICATION_RECORD_ID")
        );
        let skipped = report
            .warnings
            .iter()
            .find(|w| w.row == 2)
            .expect("a warning for the row already in the campaign");
        assert!(
            skipped.reason.contains("already in campaign c"),
            "{skipped:?}"
        );
    }
    assert_eq!(imported.inserted, 1);
    let status = f.store.campaign_status(f.campaign).await.expect("status");
    assert_eq!(status.records, 3);
}

#[tokio::test]
async fn a_blocklisted_number_in_an_import_is_discarded_and_reported() {
    let f = fixture("import-blocked").await;
    f.store
        .block_number(f.organisation, &entry("+31612345678", "asked", None, 500))
        .await
        .expect("blocks");
    let import = f
        .upload(
            "blocked.csv",
            "A;0612345678;0201234567;10.00;s\nB;0612345678;;10.00;s\nC;0612345670;;10.00;s\n",
        )
        .await;
    let report = imports::confirm(&f.store, import, &options())
        .await
        .expect("imports");
    assert_eq!((report.inserted, report.will_fail), (3, 0));
    assert_eq!((report.blocklisted, report.blocked_records), (2, 1));
    let warning = report
        .warnings
        .iter()
        .find(|w| w.row == 3)
        .expect("row 3 reported");
    assert_eq!(warning.column.as_deref(), Some("CONTACT_PHONE_1"));
    assert!(warning.reason.contains("blocklist"), "{warning:?}");

    let finals = f.store.record_finals(f.campaign).await.expect("finals");
    let b = finals.iter().find(|r| r.record_id == "B").expect("B");
    assert_eq!(
        (b.state.as_str(), b.final_status.as_deref()),
        ("done", Some("blocked"))
    );
    // A keeps its other number, and only that one is dialled.
    let claim = f.claim().await.expect("due");
    let numbers = [claim.number.clone()];
    assert!(numbers.iter().all(|n| n != "+31612345678"), "{numbers:?}");
    let rows = f
        .store
        .result_rows(f.campaign, 0, i64::MAX)
        .await
        .expect("rows");
    let b_row = rows.iter().find(|r| r.record_id == "B").expect("B result");
    assert_eq!(b_row.calls[0].status, "blocked");
    assert_eq!(
        f.count("SELECT COUNT(*) FROM events WHERE kind = 'record_done'")
            .await,
        1
    );
    // The statistics count the import when it is published: three records
    // for voice, one of them reported blocked without a call.
    let totals =
        dialcast_engine::store::StatsStore::stats_totals(&f.store, f.campaign, 0, i64::MAX)
            .await
            .expect("stats");
    assert_eq!(totals.records_imported, 3, "{totals:?}");
    assert_eq!(totals.imported.get("voice"), Some(&3));
    assert_eq!(totals.statuses.get("blocked"), Some(&1));
    assert_eq!(
        (totals.attempts, totals.dialled, totals.records_done),
        (1, 0, 1)
    );
}

#[tokio::test]
async fn blocking_a_number_stops_pending_records_that_have_no_other_number() {
    let f = fixture("block-pending").await;
    let import = f
        .upload(
            "records.csv",
            "A;0612345678;;10.00;s\nB;0612345678;0201234567;10.00;s\n",
        )
        .await;
    imports::confirm(&f.store, import, &options())
        .await
        .expect("imports");
    let outcome = f
        .store
        .block_number(
            f.organisation,
            &entry("+31612345678", "asked", Some("ops"), 9_000),
        )
        .await
        .expect("blocks");
    assert!(outcome.added);
    assert_eq!(outcome.records_blocked, 1);
    assert!(f
        .store
        .is_blocked(f.organisation, "+31612345678")
        .await
        .expect("query"));

    let finals = f.store.record_finals(f.campaign).await.expect("finals");
    let a = finals.iter().find(|r| r.record_id == "A").expect("A");
    let b = finals.iter().find(|r| r.record_id == "B").expect("B");
    assert_eq!(
        (a.state.as_str(), a.final_status.as_deref()),
        ("done", Some("blocked"))
    );
    assert_eq!(
        (b.state.as_str(), b.final_status.as_deref()),
        ("pending", None)
    );
    let rows = f
        .store
        .result_rows(f.campaign, 0, i64::MAX)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].calls[0].status, "blocked");
    assert_eq!(rows[0].calls[0].number, "+31612345678");
    assert_eq!(
        f.count(
            "SELECT COUNT(*) FROM events WHERE kind = 'record_done' AND payload_json LIKE '%blocked%'"
        )
        .await,
        1
    );
    let list = f.store.blocklist(f.organisation).await.expect("list");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].added_by.as_deref(), Some("ops"));
    // Blocking again changes nothing more.
    let again = f
        .store
        .block_number(
            f.organisation,
            &entry("+31612345678", "asked twice", None, 9_500),
        )
        .await
        .expect("blocks");
    assert_eq!((again.added, again.records_blocked), (false, 0));
}

#[tokio::test]
async fn archived_files_are_downloadable_until_their_retention_ends() {
    let f = fixture("retention").await;
    let import = f.upload("good.csv", "A;0612345678;;10.00;s\n").await;
    let out = f.dir.join("copy.csv");
    imports::download(&f.store, import, &out)
        .await
        .expect("downloads");
    assert_eq!(
        std::fs::read_to_string(&out).expect("copy"),
        format!("{HEADER}A;0612345678;;10.00;s\n")
    );
    let day = 24 * 3600 * 1000;
    let kept = imports::purge_expired_import_files(&f.store, 92 * day, 1_000 + 91 * day)
        .await
        .expect("purge");
    assert_eq!(kept, 0);
    let purged = imports::purge_expired_import_files(&f.store, 92 * day, 1_000 + 93 * day)
        .await
        .expect("purge");
    assert_eq!(purged, 1);
    let info = f.store.import_info(import).await.expect("info");
    assert!(info.stored_path.is_none() && info.file_deleted_at.is_some());
    let err = imports::download(&f.store, import, &out)
        .await
        .expect_err("deleted");
    assert!(err.to_string().contains("retention"), "{err:#}");
}
