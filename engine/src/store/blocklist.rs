//! What the store keeps of the blocklist: numbers (E.164) an organisation
//! never dials. Blocking a number takes effect at once: in the same
//! transaction, the organisation's `pending` records whose every number is
//! now blocked become `done` with final status `blocked`, an undialled
//! `blocked` attempt and a `record_done` event. Records with another number
//! stay pending; the dialler skips blocked numbers at claim time through
//! [`BlocklistStore::is_blocked`]. Records `dialing` at that moment finish
//! their call.

use std::collections::HashSet;
use std::future::Future;

use serde::Serialize;

use super::{EpochMs, Id, StoreResult};

/// One blocked number.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockEntry {
    /// E.164.
    pub number: String,
    pub reason: String,
    pub added_at: EpochMs,
    pub added_by: Option<String>,
}

/// What blocking a number did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct BlockOutcome {
    /// False when the number was already blocked (its entry is updated).
    pub added: bool,
    /// Pending records that became `done` with status `blocked`.
    pub records_blocked: u64,
}

/// The blocklist of each organisation.
pub trait BlocklistStore: Send + Sync + 'static {
    /// Blocks `entry.number` and stops the records that only had blocked
    /// numbers, in one transaction.
    fn block_number(
        &self,
        organisation: Id,
        entry: &BlockEntry,
    ) -> impl Future<Output = StoreResult<BlockOutcome>> + Send;

    /// Removes a number; false when it was not blocked. Records already
    /// `blocked` stay so.
    fn unblock_number(
        &self,
        organisation: Id,
        number: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The organisation's blocklist, by number.
    fn blocklist(
        &self,
        organisation: Id,
    ) -> impl Future<Output = StoreResult<Vec<BlockEntry>>> + Send;

    /// Whether the organisation blocks `number` (E.164).
    fn is_blocked(
        &self,
        organisation: Id,
        number: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Every number the organisation blocks (for an import's check; a
    /// blocklist is small next to an import).
    fn blocked_numbers(
        &self,
        organisation: Id,
    ) -> impl Future<Output = StoreResult<HashSet<String>>> + Send;
}

/// An entry for `number`, added at `now`.
pub fn entry(number: &str, reason: &str, added_by: Option<&str>, now: EpochMs) -> BlockEntry {
    BlockEntry {
        number: number.to_owned(),
        reason: reason.to_owned(),
        added_at: now,
        added_by: added_by.map(str::to_owned),
    }
}
