//! A campaign's history for the portal benchmark: finished attempts spread
//! evenly over the last days up to now, written through the engine's store
//! API — the same `claim_next` and `finish_attempt` a live call takes, so
//! the 5-minute statistics, results and events are the engine's own, not a
//! copy of its bookkeeping. Only the clock is virtual.
//!
//! The campaign comes first, set up from a configuration by `dialcast
//! import` (a public interface); this program opens the same database file
//! afterwards, with nothing else writing to it, adds records as its clock
//! goes (`insert_records`, due when added) and prints one JSON object. It feeds the
//! portal benchmark (`dialcast-loadtest portal`), which cannot link the
//! engine itself (the engine's demo links the load test's callee farm).
//!
//! ```text
//! cargo run --release -p dialcast-portal-api --example fill_history -- \
//!     --db DIR/dialcast.db --campaign NAME --attempts 10000000 --days 30
//! ```

use std::path::Path;
use std::time::Instant;

use anyhow::Context as _;
use std::collections::BTreeMap;

use dialcast_engine::campaign::schedule::{Candidate, DialRules};
use dialcast_engine::import::ImportedRecord;
use dialcast_engine::store::{
    AttemptOutcome, CampaignState, ClaimResult, NextStep, OrganisationCalendar, ScheduleSettings,
    SqliteStore, Store,
};
use serde::Serialize;

/// Call statuses of the history, with their weights, and whether the
/// record is tried again after one (a second attempt, as campaigns retry
/// the not-reached).
const OUTCOMES: [(&str, u32, bool); 6] = [
    ("success", 45, false),
    ("voicemail", 10, false),
    ("no_answer", 20, true),
    ("busy", 10, true),
    ("rejected", 5, true),
    ("invalid_number", 10, false),
];

#[derive(clap::Parser)]
struct Args {
    /// The SQLite database file.
    #[arg(long)]
    db: std::path::PathBuf,
    /// The campaign, by name.
    #[arg(long)]
    campaign: String,
    #[arg(long, default_value_t = 1_000_000)]
    attempts: u64,
    /// The history ends now and starts this many days before.
    #[arg(long, default_value_t = 30)]
    days: u32,
    /// No progress lines on standard error.
    #[arg(long)]
    quiet: bool,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let report = fill(
        &args.db,
        &args.campaign,
        args.attempts,
        args.days,
        now_ms,
        !args.quiet,
    )
    .await?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// What [`fill`] did.
#[derive(Debug, Serialize)]
struct FillReport {
    attempts: u64,
    records: u64,
    first_ended_ms: i64,
    last_ended_ms: i64,
    seconds: f64,
    attempts_per_s: f64,
}

/// Finishes `attempts` attempts of the running campaign `campaign`, ending
/// evenly between `days` days before `now_ms` and `now_ms`. Records not
/// reached are retried once, a little later on the same virtual clock.
/// Stops early (and says so in the report) when no record is due any more.
async fn fill(
    db: &Path,
    campaign: &str,
    attempts: u64,
    days: u32,
    now_ms: i64,
    progress: bool,
) -> anyhow::Result<FillReport> {
    let store = SqliteStore::open(db)
        .await
        .with_context(|| format!("{}: the store", db.display()))?;
    let campaign = store
        .campaign_by_name(campaign)
        .await
        .with_context(|| format!("campaign {campaign}"))?;
    store
        .set_campaign_state(campaign.id, CampaignState::Running, now_ms)
        .await
        .context("running")?;
    let rules = DialRules::new(
        &OrganisationCalendar::every_day("UTC"),
        &ScheduleSettings::around_the_clock(),
    )
    .context("dial rules")?;
    let span_ms = i64::from(days) * 86_400_000;
    let step_ms = (span_ms / i64::try_from(attempts.max(1)).unwrap_or(i64::MAX)).max(1);
    let first = now_ms - span_ms;
    let total_weight: u32 = OUTCOMES.iter().map(|(_, w, _)| w).sum();
    let started = Instant::now();
    let mut done = 0u64;
    let mut last_ended = first;
    let mut records = 0u64;
    while done < attempts {
        let now = first + i64::try_from(done).unwrap_or(i64::MAX) * step_ms;
        let decide = |candidate: &Candidate<'_>| rules.decide(candidate, now);
        let claim = match store.claim_next(campaign.id, now, &decide).await? {
            ClaimResult::Claimed(claim) => claim,
            ClaimResult::NothingDue => {
                // The next batch of records, due from now on.
                let batch: Vec<ImportedRecord> = (records..records + RECORD_BATCH)
                    .map(|i| record(first, i, &campaign.script_name))
                    .collect();
                let added = store.insert_records(campaign.id, &batch, now).await?;
                anyhow::ensure!(added.inserted > 0, "no record was inserted: {added:?}");
                records += RECORD_BATCH;
                continue;
            }
            ClaimResult::NotRunning => anyhow::bail!("the campaign stopped running"),
        };
        // A fixed spread of outcomes by attempt id (no randomness needed).
        let pick = u32::try_from(claim.attempt_id.rem_euclid(i64::from(total_weight))).unwrap_or(0);
        let (status, retry) = outcome_at(pick);
        let answered = matches!(status, "success" | "voicemail");
        let ended_at = now + if answered { 25_000 } else { 8_000 }.min(step_ms.max(1));
        let outcome = AttemptOutcome {
            status: status.to_string(),
            sip_code: Some(match status {
                _ if answered => 200,
                "invalid_number" => 404,
                "no_answer" => 480,
                "rejected" => 603,
                _ => 486,
            }),
            answered_at: answered.then_some(now + 3_000.min(step_ms)),
            ended_at,
            ring_ms: 3_000,
            talk_ms: if answered { 22_000 } else { 0 },
            amd: answered.then(|| {
                if status == "voicemail" {
                    "machine"
                } else {
                    "human"
                }
                .to_string()
            }),
            voicemail_left: status == "voicemail",
            ..AttemptOutcome::default()
        };
        let next = if retry && claim.attempt_no < 2 {
            NextStep::RetryAt(ended_at + 1)
        } else {
            NextStep::Final
        };
        store.finish_attempt(&claim, &outcome, next).await?;
        done += 1;
        last_ended = ended_at;
        if progress && done.is_multiple_of(100_000) {
            let rate = done as f64 / started.elapsed().as_secs_f64();
            eprintln!("history: {done} of {attempts} attempts ({rate:.0}/s)");
        }
    }
    store
        .set_campaign_state(campaign.id, CampaignState::Paused, now_ms)
        .await
        .context("paused")?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(FillReport {
        attempts: done,
        records,
        first_ended_ms: first,
        last_ended_ms: last_ended,
        seconds,
        attempts_per_s: done as f64 / seconds.max(1e-9),
    })
}

/// Records added at once when none is due.
const RECORD_BATCH: u64 = 5_000;

/// History record `H<run>-<i>` (`run`: when this history starts, so runs
/// never collide): a Dutch mobile number and an amount.
fn record(run: i64, i: u64, script: &str) -> ImportedRecord {
    let id = format!("H{run}-{i}");
    let mut fields = BTreeMap::new();
    fields.insert("IDENTIFICATION_RECORD_ID".to_string(), id.clone());
    fields.insert("PERSON_LANGUAGE".to_string(), "nl".to_string());
    fields.insert(
        "INVOICE_AMOUNT_OPEN".to_string(),
        format!("{}.50", 10 + i % 990),
    );
    ImportedRecord {
        line: i + 2,
        record_id: id,
        client_reference: None,
        script: script.to_string(),
        fields,
        phones: vec![format!("+3161{:07}", i % 10_000_000)],
        rejected_phones: Vec::new(),
        invalid_number: false,
    }
}

/// The status at `pick` (below the weights' total) and whether it is retried.
fn outcome_at(pick: u32) -> (&'static str, bool) {
    let mut left = pick;
    for (status, weight, retry) in OUTCOMES {
        if left < weight {
            return (status, retry);
        }
        left -= weight;
    }
    ("success", false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pick_below_the_total_has_its_outcome() {
        let total: u32 = OUTCOMES.iter().map(|(_, w, _)| w).sum();
        let mut seen = std::collections::BTreeMap::new();
        for pick in 0..total {
            *seen.entry(outcome_at(pick).0).or_insert(0u32) += 1;
        }
        for (status, weight, _) in OUTCOMES {
            assert_eq!(seen.get(status), Some(&weight), "{status}");
        }
    }
}
