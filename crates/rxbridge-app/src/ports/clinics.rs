//! The clinic port: clinics, their API keys, and the store's health check.

use super::records::{ApiKeyRecord, Caller, Clinic, StoreError};
use crate::events::NewEvent;
use async_trait::async_trait;

/// Clinics and the API keys they call with.
///
/// Contract (both stores; `contract::clinics`):
/// - **Atomicity**: `create_clinic` writes the clinic, all its keys and its event together, or
///   nothing; `rotate_key` revokes the old key of that mode, stores the new one and appends the
///   event in one transaction, so there is no moment with two working keys or none.
/// - **Idempotency**: none of its own — a repeated `create_clinic` is refused with `Duplicate`
///   and writes nothing; a repeated `rotate_key` with a new key rotates again.
/// - **Ordering**: `list_clinics` has no promised order.
/// - **Consistency**: `get_clinic` and `find_api_key` read what the last `Ok` write left (SQLite;
///   DynamoDB with strongly consistent `GetItem`). `list_clinics` on DynamoDB reads a GSI and
///   may miss a clinic created an instant before; SQLite's never does.
/// - **Errors**: `Duplicate` (clinic id or key hash exists), `NotFound` (`rotate_key` for a
///   clinic that does not exist); anything else is `Unexpected` and wrote nothing.
#[async_trait]
pub trait ClinicStore: Send + Sync + 'static {
    /// `Ok` when the store can serve requests (a cheap read, no write).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Create a clinic with its keys.
    /// # Errors
    /// `Duplicate` if the clinic id or a key hash exists (nothing is written).
    async fn create_clinic(
        &self,
        clinic: Clinic,
        keys: Vec<ApiKeyRecord>,
        event: NewEvent,
    ) -> Result<(), StoreError>;

    async fn get_clinic(&self, clinic_id: &str) -> Result<Option<Clinic>, StoreError>;
    async fn list_clinics(&self) -> Result<Vec<Clinic>, StoreError>;

    /// Replace the clinic's key for `key.mode`: the old key stops working in the same
    /// transaction.
    /// # Errors
    /// `NotFound` if the clinic does not exist.
    async fn rotate_key(&self, key: ApiKeyRecord, event: NewEvent) -> Result<(), StoreError>;

    /// The caller owning an active key with this hash, if any (a revoked key finds nothing).
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<Caller>, StoreError>;

    /// A number that changes whenever any API key is created, rotated or revoked, by this
    /// process or any other, read more cheaply than a key (`Clinics` caches lookups while it
    /// stays the same). `None` for a store without one: lookups are then cached for
    /// `clinics::KEY_CACHE_TTL` at most (DynamoDB).
    async fn api_key_generation(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }
}
