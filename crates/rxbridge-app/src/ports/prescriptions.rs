//! The prescription port: intake with idempotency, a clinic's own reads, transitions, and the
//! cross-clinic staff views.

use super::records::{
    IdempotencyRecord, InsertOutcome, ListFilter, Mode, NewPrescription, Page, PrescriptionRecord,
    StaffLookup, StoreError,
};
use crate::events::NewEvent;
use async_trait::async_trait;
use jiff::civil::Date;
use rxbridge_domain::lifecycle::Status;

/// Prescriptions as a clinic sees them: written once at intake, read back within the clinic
/// and mode, moved through the lifecycle one optimistic step at a time.
///
/// Contract (both stores; `contract::prescriptions`):
/// - **Atomicity**: `insert_prescription` writes the record, its patient lookup keys, its
///   idempotency record and its event in one transaction, or nothing. `transition` changes the
///   status, bumps the version and appends the event together.
/// - **Idempotency**: the key (clinic, mode, idempotency key) is unique. Of any number of
///   concurrent inserts under one key exactly one is `Inserted`; every other answers
///   `KeyExists` with the stored record and writes nothing.
/// - **Isolation**: `get_prescription` and `list_prescriptions` never return another clinic's
///   or another mode's record (`None` / absent, never an error that tells it exists).
/// - **Ordering**: `list_prescriptions` is newest first and pages without gaps or repeats
///   (`after` = the previous page's `next`; `limit` is clamped to 1..=100);
///   `undispatched_issued_before` is oldest first.
/// - **Concurrency**: `transition` is optimistic on `version`; the loser of a race gets
///   `Conflict` and nothing is written.
/// - **Consistency**: reads by id (`get_prescription`, `find_idempotency`) see every `Ok`
///   write on both stores. Listings (`list_prescriptions`, `undispatched_issued_before`) read
///   GSIs on DynamoDB and may trail a write by a moment; SQLite's do not.
/// - **Errors**: `NotFound` (`transition` of an unknown id), `Conflict` (version moved on);
///   anything else is `Unexpected` and wrote nothing.
#[async_trait]
pub trait PrescriptionStore: Send + Sync + 'static {
    /// The completed request stored under an idempotency key of this clinic and mode.
    async fn find_idempotency(
        &self,
        clinic_id: &str,
        mode: Mode,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;

    /// Insert a prescription, its patient keys, its idempotency record and its event in one
    /// transaction. The idempotency key (clinic, mode, key) is unique: when it exists, nothing
    /// is written and `KeyExists` carries the stored record.
    async fn insert_prescription(&self, new: NewPrescription) -> Result<InsertOutcome, StoreError>;

    /// One prescription of this clinic and mode; `None` for any other clinic's or mode's.
    async fn get_prescription(
        &self,
        clinic_id: &str,
        mode: Mode,
        id: &str,
    ) -> Result<Option<PrescriptionRecord>, StoreError>;

    /// Newest first; `after` is the `next` of the previous page. `limit` is 1..=100.
    async fn list_prescriptions(
        &self,
        clinic_id: &str,
        mode: Mode,
        filter: &ListFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError>;

    /// Move a prescription to `to` if its version is still `expected_version`, appending
    /// `event`; returns the updated record (version + 1).
    /// # Errors
    /// `NotFound` if there is no such prescription; `Conflict` if the version moved on.
    async fn transition(
        &self,
        id: &str,
        expected_version: i64,
        to: Status,
        event: NewEvent,
    ) -> Result<PrescriptionRecord, StoreError>;

    /// Prescriptions not yet dispatched (any mode) issued before `before`, oldest first: the
    /// expiry sweep's candidates.
    async fn undispatched_issued_before(
        &self,
        before: Date,
        limit: u32,
    ) -> Result<Vec<PrescriptionRecord>, StoreError>;
}

/// Prescriptions as staff see them: across clinics, within one mode. Reads only.
///
/// Contract (both stores; `contract::prescriptions::staff_views_span_clinics`):
/// - **Isolation**: every read is scoped by mode and never returns the other mode's records;
///   it spans clinics on purpose.
/// - **Ordering**: `worklist` is oldest first (first come, first checked) and pages like
///   `list_prescriptions`; `search` is newest first, at most `limit` (clamped to 1..=200).
/// - **Access paths**: every lookup is indexed (a keyed hash, an exact reference or an id),
///   never a scan.
/// - **Consistency**: `get_prescription_for_staff` reads by id and sees every `Ok` write. The
///   worklist and the reference search read GSIs on DynamoDB and may trail a write by a
///   moment; the patient-key searches read the base table and do not. SQLite's never trail.
/// - **Errors**: only `Unexpected`.
#[async_trait]
pub trait StaffViews: Send + Sync + 'static {
    /// Staff view: one prescription whatever its clinic, in `mode`.
    async fn get_prescription_for_staff(
        &self,
        mode: Mode,
        id: &str,
    ) -> Result<Option<PrescriptionRecord>, StoreError>;

    /// Staff worklist: prescriptions in `status` across clinics, oldest first, after `after`.
    async fn worklist(
        &self,
        mode: Mode,
        status: Status,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError>;

    /// Staff search: newest first, at most `limit`, through indexed lookups only.
    async fn search(
        &self,
        mode: Mode,
        lookup: &StaffLookup,
        limit: u32,
    ) -> Result<Vec<PrescriptionRecord>, StoreError>;
}
