//! Campaign statistics: 5-minute buckets of counters per campaign, kept as
//! things happen (the store adds to them in the transaction that commits
//! the change, see `store::sqlite::stats`), never by rescanning attempts.
//! This module owns what is counted ([`counters`]), local-time periods
//! ([`range`]), the report with its percentages ([`report`]) and the
//! in-process stream of bucket updates ([`feed`]).

pub mod counters;
pub mod feed;
pub mod range;
pub mod report;

use chrono_tz::Tz;

pub use counters::{
    bucket_start, day_start, Colour, Counters, DaySplit, ImportTally, StatsEvent, BUCKET_MS, DAY_MS,
};
pub use feed::{BucketUpdate, StatsFeed, STATS_FEED_CAPACITY};
pub use range::Range;
pub use report::{BucketRow, Share, StatsReport};

use crate::store::{Campaign, StatsStore, StoreResult};

/// The statistics of `campaign` over `range`, with its 5-minute buckets
/// when `with_buckets`.
pub async fn campaign_report<S: StatsStore>(
    store: &S,
    campaign: &Campaign,
    range: Range,
    time_zone: Tz,
    with_buckets: bool,
) -> StoreResult<StatsReport> {
    let totals = store
        .stats_totals(campaign.id, range.from, range.to)
        .await?;
    let to_end = store.stats_totals(campaign.id, 0, range.to).await?;
    let mut report = StatsReport::build(
        &report::Period {
            campaign: &campaign.name,
            script: &campaign.script_name,
            time_zone,
            range,
        },
        &totals,
        &to_end,
    );
    if with_buckets {
        let buckets = store
            .stats_buckets(campaign.id, range.from, range.to)
            .await?;
        report.buckets = Some(
            buckets
                .into_iter()
                .map(|(start, counters)| BucketRow {
                    start: chrono::DateTime::from_timestamp_millis(start)
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_default(),
                    start_ms: start,
                    counters,
                })
                .collect(),
        );
    }
    Ok(report)
}
