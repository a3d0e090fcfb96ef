//! The event-log port: the hash-chained, append-only audit log.

use super::records::StoreError;
use crate::events::{EventRecord, NewEvent};
use async_trait::async_trait;

/// The audit log. Every port's writes append to it in their own transaction; this port
/// appends events that change no record and reads the log back.
///
/// Contract (both stores; `contract::events`):
/// - **Chain**: each event gets `seq` one more than the last and `prev_hash` the last one's
///   hash, under concurrent writers and across processes: SQLite re-reads the head inside
///   each write transaction under its write lock; DynamoDB conditions every append on the
///   chain's head item and retries the loser (up to a bound, then `Unexpected`, nothing
///   written).
/// - **Append-only**: nothing in the application updates or deletes an event (SQLite refuses
///   it with triggers); an edit outside is found by `audit::verify_chain`.
/// - **Durability**: `Ok` means the event is durable.
/// - **Ordering**: `events_after` in `seq` order with no gaps; `timeline` oldest first.
/// - **Consistency**: `events_after` sees every `Ok` append on both stores. `timeline` reads a
///   GSI on DynamoDB and may trail an append by a moment; SQLite's does not.
/// - **Errors**: only `Unexpected`.
#[async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Append an event that changes no record (an audited read, a note, a search).
    async fn record_event(&self, event: NewEvent) -> Result<(), StoreError>;

    /// Events about one subject, oldest first.
    async fn timeline(&self, subject: &str) -> Result<Vec<EventRecord>, StoreError>;

    /// Up to `limit` events with `seq > after`, in order (for chain verification and export).
    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError>;
}
