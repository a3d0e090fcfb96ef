//! The records the store ports carry: modes, errors, clinics and keys, prescriptions and
//! their patient lookup keys, pages and staff lookups.

use crate::crypto::LookupHash;
use crate::events::NewEvent;
use jiff::Timestamp;
use jiff::civil::Date;
use rxbridge_domain::compliance::Finding;
use rxbridge_domain::declaration::NhsExemption;
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
    /// NHS only, when the prescription did not carry the patient's charge exemption (an EPS
    /// message never does): still to be declared, or as declared at the pharmacy. `None` for a
    /// private prescription or one that carried its `nhs` block (and on records stored before
    /// declarations existed), so their bound state is unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs_exemption: Option<NhsExemption>,
}

impl PrescriptionRecord {
    /// True while the patient's NHS charge exemption is still to be declared.
    pub fn exemption_to_be_declared(&self) -> bool {
        self.nhs_exemption == Some(NhsExemption::ToBeDeclared)
    }
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
    /// The phone number in E.164 (staff search); `None` without one, and on records stored
    /// before phone search.
    #[serde(default)]
    pub phone: Option<LookupHash>,
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
    Phone(String),
    Postcode(String),
    FamilyNameAndDob(String),
}
