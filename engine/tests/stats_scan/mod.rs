//! The statistics a campaign should have, computed the slow way: a scan of
//! the attempts and records tables grouped by 5-minute bucket. Tests
//! compare it with the counters the store kept as things happened.
#![allow(dead_code)]

use std::collections::BTreeMap;

use dialcast_engine::stats::Counters;

/// Every bucket of `campaign` by scan: attempts by status in the bucket of
/// their end (voicemail never has a message left yet), records done in the
/// bucket where their last attempt ended, records imported (all for voice) in the bucket of their import.
pub async fn scanned(db: &sqlx::SqlitePool, campaign: i64) -> BTreeMap<i64, Counters> {
    let mut buckets: BTreeMap<i64, Counters> = BTreeMap::new();
    let attempts: Vec<(i64, String, i64, i64)> = sqlx::query_as(
        "SELECT (a.ended_at / 300000) * 300000 AS b, a.status, a.dialled, COUNT(*) \
         FROM attempts a JOIN records r ON r.id = a.record_id \
         WHERE r.campaign_id = ? AND a.state = 'ended' GROUP BY b, a.status, a.dialled",
    )
    .bind(campaign)
    .fetch_all(db)
    .await
    .expect("scan attempts");
    for (bucket, status, dialled, n) in attempts {
        buckets
            .entry(bucket)
            .or_default()
            .merge(&Counters::attempts_ended(
                &status,
                false,
                dialled != 0,
                n as u64,
            ));
    }
    let done: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT (a.ended_at / 300000) * 300000 AS b, COUNT(*) FROM records r \
         JOIN attempts a ON a.record_id = r.id \
         AND a.attempt_no = (SELECT MAX(attempt_no) FROM attempts x WHERE x.record_id = r.id) \
         WHERE r.campaign_id = ? AND r.state = 'done' GROUP BY b",
    )
    .bind(campaign)
    .fetch_all(db)
    .await
    .expect("scan records");
    for (bucket, n) in done {
        buckets.entry(bucket).or_default().records_done += n as u64;
    }
    let imported: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT (imported_at / 300000) * 300000 AS b, COUNT(*) FROM records \
         WHERE campaign_id = ? GROUP BY b",
    )
    .bind(campaign)
    .fetch_all(db)
    .await
    .expect("scan imports");
    for (bucket, n) in imported {
        let counters = buckets.entry(bucket).or_default();
        *counters.imported.entry("voice".into()).or_default() += n as u64;
        counters.records_imported += n as u64;
    }
    buckets
}
