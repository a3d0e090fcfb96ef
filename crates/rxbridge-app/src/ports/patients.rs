//! The patient-index port: a patient's earlier prescriptions and identity signals, found by
//! keyed hashes (`PatientKeys`), never by patient data.

use super::records::{Mode, PatientKeys, StoreError};
use async_trait::async_trait;
use rxbridge_domain::compliance::{HistoryEntry, IdentitySignals};

/// The lookups the clinical checks decide on. Reads only; written by `insert_prescription`.
///
/// Contract (both stores; `contract::patients`):
/// - **Consistency**: strongly consistent on both stores (DynamoDB queries the base table, not
///   a GSI): a prescription inserted with `Ok` is in the next check's history, so two
///   prescriptions for one patient cannot both pass a check that counts the other.
/// - **Isolation**: scoped by mode; spans clinics on purpose (`clinic_id` only marks which
///   entries are the caller's own).
/// - **Ordering**: history newest first, at most `limit`.
/// - **Bounded**: every lookup reads a bounded number of rows however many records share a
///   key (an address, a name and date of birth): the counts in `IdentitySignals` stop at
///   their caps (`MAX_COUNTED_AT_ADDRESS`).
/// - **Errors**: only `Unexpected`.
#[async_trait]
pub trait PatientIndex: Send + Sync + 'static {
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
