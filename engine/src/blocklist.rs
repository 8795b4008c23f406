//! The blocklist commands: a number as typed (`020 123 4567`, `+31…`) is
//! normalised to E.164 with the organisation's default country, the same
//! way import files are read, then added to or removed from the store's
//! blocklist (see [`crate::store::BlocklistStore`] for what adding does to
//! pending records).

use anyhow::Context as _;

use crate::import::normalise::{normalise_phone, phone_region};
use crate::store::blocklist::entry;
use crate::store::{BlockOutcome, BlocklistStore, EpochMs, Id};

/// `number` in E.164, read as a number of `default_country` when it has no
/// international prefix.
pub fn normalise(number: &str, default_country: &str) -> anyhow::Result<String> {
    let region = phone_region(default_country).with_context(|| {
        format!("organisation.default_country {default_country:?} is not a known country")
    })?;
    normalise_phone(number, region).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Blocks a number (normalised first); returns it and what blocking did.
pub async fn add<S: BlocklistStore>(
    store: &S,
    organisation: Id,
    default_country: &str,
    number: &str,
    reason: &str,
    added_by: Option<&str>,
    now: EpochMs,
) -> anyhow::Result<(String, BlockOutcome)> {
    anyhow::ensure!(
        !reason.trim().is_empty(),
        "--reason is empty; say why the number is blocked"
    );
    let number = normalise(number, default_country)?;
    let outcome = store
        .block_number(organisation, &entry(&number, reason.trim(), added_by, now))
        .await?;
    Ok((number, outcome))
}

/// Unblocks a number (normalised first); returns it and whether it was
/// blocked.
pub async fn remove<S: BlocklistStore>(
    store: &S,
    organisation: Id,
    default_country: &str,
    number: &str,
) -> anyhow::Result<(String, bool)> {
    let number = normalise(number, default_country)?;
    let removed = store.unblock_number(organisation, &number).await?;
    Ok((number, removed))
}
