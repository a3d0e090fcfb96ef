//! Ports: the traits the use cases talk to the world through, with their written contracts.
//! Every store adapter (SQLite now, DynamoDB later) must pass `crate::contract`.

use crate::crypto::LookupHash;
use crate::events::{EventRecord, NewEvent};
use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use rxbridge_domain::compliance::{Finding, HistoryEntry, IdentitySignals};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::PrescriptionType;
use serde::{Deserialize, Serialize};

/// Sandbox (`rxb_test_…`) or live (`rxb_live_…`). Data of one mode is invisible to the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// An optimistic-concurrency check failed: the record changed since it was read.
    #[error("the record was changed by someone else")]
    Conflict,
    /// A unique value (clinic id, key hash) already exists.
    #[error("already exists")]
    Duplicate,
    /// The write would break an invariant (a register balance below zero); nothing written.
    #[error("{0}")]
    Rejected(String),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clinic {
    pub id: String,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// SHA-256 of the whole key, hex. The key itself is never stored.
    pub key_hash: String,
    /// The first characters of the key (`rxb_test_ab12`), to tell keys apart in listings.
    pub prefix: String,
    pub clinic_id: String,
    pub mode: Mode,
    pub created_at: Timestamp,
}

/// Who is calling the clinic API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub clinic_id: String,
    pub mode: Mode,
}

/// The stored response of a completed idempotent request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    pub clinic_id: String,
    pub mode: Mode,
    pub key: String,
    /// SHA-256 of the canonical request body: a different body under the same key is refused.
    pub request_hash: String,
    pub response_status: u16,
    pub response_body: String,
    pub created_at: Timestamp,
}

/// An item as history checks and listings need it (no patient data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemSummary {
    pub product_code: String,
    pub active_ingredient: String,
    pub quantity: u32,
    pub days_supply: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrescriptionRecord {
    pub id: String,
    pub clinic_id: String,
    pub mode: Mode,
    pub clinic_reference: String,
    pub kind: PrescriptionType,
    pub status: Status,
    /// Incremented by every transition; the optimistic-concurrency token.
    pub version: i64,
    pub issued_on: Date,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub findings: Vec<Finding>,
    pub items: Vec<ItemSummary>,
    /// The whole validated prescription (patient data included), AES-256-GCM sealed with the
    /// record id as associated data.
    #[serde(with = "crate::transfer::base64_bytes")]
    pub sealed: Vec<u8>,
    /// The event that produced this state (`crate::state`); 0 before the store writes it.
    #[serde(default)]
    pub event_seq: i64,
}

/// Keyed hashes of a prescription's patient, for history, identity checks and staff search.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PatientKeys {
    pub nhs: Option<LookupHash>,
    /// Family name + given name + date of birth + postcode.
    pub demographic: LookupHash,
    /// Family name + given name + date of birth.
    pub name_dob: LookupHash,
    /// Family name + date of birth (staff search).
    pub family_dob: LookupHash,
    pub email: Option<LookupHash>,
    pub postcode: LookupHash,
    /// First address line + postcode, for "several patients at one address".
    pub address: LookupHash,
}

impl PatientKeys {
    /// The identity this prescription counts as: NHS number when present, else demographics.
    pub fn identity(&self) -> &str {
        self.nhs.as_deref().unwrap_or(&self.demographic)
    }
}

pub struct NewPrescription {
    pub record: PrescriptionRecord,
    pub patient: PatientKeys,
    pub idempotency: IdempotencyRecord,
    pub event: NewEvent,
}

pub enum InsertOutcome {
    Inserted,
    /// The idempotency key was already used (by a concurrent or earlier request): nothing was
    /// written; here is what is stored under it.
    KeyExists(IdempotencyRecord),
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub clinic_reference: Option<String>,
}

pub struct Page {
    pub items: Vec<PrescriptionRecord>,
    /// Opaque position after the last item, when there may be more.
    pub next: Option<i64>,
}

/// What staff search by (each through a keyed-hash lookup or an exact column, never a scan).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffLookup {
    PrescriptionId(String),
    ClinicReference(String),
    /// Keyed hashes, as `PatientKeys` holds them.
    NhsNumber(String),
    Email(String),
    Postcode(String),
    FamilyNameAndDob(String),
}

/// The store port.
///
/// Contract for every implementation (enforced by `crate::contract`):
/// - A method that returns `Ok` after a write has made it durable: a crash afterwards loses
///   nothing.
/// - Every write that records a state change appends its event to the hash-chained log in the
///   same transaction, with `seq` one more than the last and `prev_hash` the last one's hash.
/// - Reads scoped by clinic and mode never return another clinic's or mode's records.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `Ok` when the store can serve requests.
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

    /// The caller owning an active key with this hash, if any.
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<Caller>, StoreError>;

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

    /// Append an event that changes no record (an audited read, a note, a search).
    async fn record_event(&self, event: NewEvent) -> Result<(), StoreError>;

    /// Events about one subject, oldest first.
    async fn timeline(&self, subject: &str) -> Result<Vec<EventRecord>, StoreError>;

    /// Up to `limit` events with `seq > after`, in order (for chain verification and export).
    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError>;

    /// Earlier prescription items of the patient matching `keys` (by NHS number or by the
    /// demographic key) in `mode`, across clinics, newest first, at most `limit`, through
    /// indexed lookups only. `clinic_id` marks which are the caller's own.
    async fn patient_history(
        &self,
        mode: Mode,
        keys: &PatientKeys,
        clinic_id: &str,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError>;

    /// Identity signals about the patient matching `keys` in `mode` (see `IdentitySignals`).
    async fn identity_signals(
        &self,
        mode: Mode,
        keys: &PatientKeys,
    ) -> Result<IdentitySignals, StoreError>;

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

    // ----- money (issue #5) -----

    /// Write a unit of work atomically: an optional prescription transition (optimistic on
    /// its version), an optional payment insert or update (optimistic on its version), an
    /// optional provider-event de-duplication mark, and events in order. Returns the
    /// prescription after the transition, if there was one.
    /// # Errors
    /// `Conflict` if the prescription's or payment's version moved on; `NotFound` if the
    /// prescription does not exist; `Duplicate` if the de-duplication mark exists or a
    /// payment for the prescription already exists. Nothing is written on any error.
    async fn commit(
        &self,
        change: crate::payments::Change,
    ) -> Result<Option<PrescriptionRecord>, StoreError>;

    /// Whether a `Change::dedupe` mark `(source, id)` was written.
    async fn seen(&self, source: &str, id: &str) -> Result<bool, StoreError>;

    async fn get_payment(
        &self,
        id: &str,
    ) -> Result<Option<crate::payments::PaymentRecord>, StoreError>;

    async fn payment_for_prescription(
        &self,
        prescription_id: &str,
    ) -> Result<Option<crate::payments::PaymentRecord>, StoreError>;

    /// The payment whose current checkout session is `session_id`.
    async fn payment_by_session(
        &self,
        session_id: &str,
    ) -> Result<Option<crate::payments::PaymentRecord>, StoreError>;

    /// The payment with this provider payment reference.
    async fn payment_by_ref(
        &self,
        payment_ref: &str,
    ) -> Result<Option<crate::payments::PaymentRecord>, StoreError>;

    /// Payments the sweep must look at, with their prescription's status: awaiting payment,
    /// refund pending, or paid while the prescription ended unsupplied. Oldest first.
    async fn payments_needing_attention(
        &self,
        limit: u32,
    ) -> Result<Vec<(crate::payments::PaymentRecord, Status)>, StoreError>;

    /// Payments of `mode` charged on `from..=to` (London dates), with their prescriptions,
    /// oldest first (month-end exports).
    async fn payments_charged_between(
        &self,
        mode: Mode,
        from: Date,
        to: Date,
    ) -> Result<Vec<(crate::payments::PaymentRecord, PrescriptionRecord)>, StoreError>;

    /// Prescriptions not yet dispatched (any mode) issued before `before`, oldest first: the
    /// expiry sweep's candidates.
    async fn undispatched_issued_before(
        &self,
        before: Date,
        limit: u32,
    ) -> Result<Vec<PrescriptionRecord>, StoreError>;

    /// `patient_history` and `identity_signals` together; a store may answer both in one round
    /// trip (the default asks twice).
    async fn patient_context(
        &self,
        mode: Mode,
        keys: &PatientKeys,
        clinic_id: &str,
        limit: u32,
    ) -> Result<(Vec<HistoryEntry>, IdentitySignals), StoreError> {
        let history = self.patient_history(mode, keys, clinic_id, limit).await?;
        let signals = self.identity_signals(mode, keys).await?;
        Ok((history, signals))
    }
}
