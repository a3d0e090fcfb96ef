//! The store ports on SQLite (`ClinicStore`, `PrescriptionStore`, `StaffViews`, `PatientIndex`,
//! `EventLog`, `UnitOfWork`, `PaymentStore`): each method hands its statements to the writer
//! (`write`) or a read connection (`read`, `read_now`).

use crate::{SqliteStore, fulfilment, patients, payments, queries};
use async_trait::async_trait;
use rxbridge_app::events::{EventRecord, NewEvent};
use rxbridge_app::ports::*;
use rxbridge_domain::compliance::{HistoryEntry, IdentitySignals};
use rxbridge_domain::lifecycle::Status;

#[async_trait]
impl ClinicStore for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.read(|c| {
            c.query_row("SELECT count(*) FROM clinics", [], |r| r.get::<_, i64>(0))
                .map(|_| ())
                .map_err(queries::unexpected)
        })
        .await
    }

    async fn create_clinic(
        &self,
        clinic: Clinic,
        keys: Vec<ApiKeyRecord>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        self.write(move |c, chain| queries::create_clinic(c, chain, &clinic, &keys, &event))
            .await
    }

    async fn get_clinic(&self, clinic_id: &str) -> Result<Option<Clinic>, StoreError> {
        let id = clinic_id.to_string();
        self.read(move |c| queries::get_clinic(c, &id)).await
    }

    async fn list_clinics(&self) -> Result<Vec<Clinic>, StoreError> {
        self.read(queries::list_clinics).await
    }

    async fn rotate_key(&self, key: ApiKeyRecord, event: NewEvent) -> Result<(), StoreError> {
        self.write(move |c, chain| queries::rotate_key(c, chain, &key, &event))
            .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<Caller>, StoreError> {
        self.read_now(|c| queries::find_api_key(c, key_hash))
    }

    async fn api_key_generation(&self) -> Result<Option<i64>, StoreError> {
        self.read_now(queries::api_key_generation).map(Some)
    }
}

#[async_trait]
impl PrescriptionStore for SqliteStore {
    async fn find_idempotency(
        &self,
        clinic_id: &str,
        mode: Mode,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        self.read_now(|c| queries::find_idempotency(c, clinic_id, mode, key))
    }

    async fn insert_prescription(&self, new: NewPrescription) -> Result<InsertOutcome, StoreError> {
        self.write(move |c, chain| queries::insert_prescription(c, chain, &new))
            .await
    }

    async fn get_prescription(
        &self,
        clinic_id: &str,
        mode: Mode,
        id: &str,
    ) -> Result<Option<PrescriptionRecord>, StoreError> {
        let (cl, id) = (clinic_id.to_string(), id.to_string());
        self.read(move |c| queries::get_prescription(c, &cl, mode, &id))
            .await
    }

    async fn list_prescriptions(
        &self,
        clinic_id: &str,
        mode: Mode,
        filter: &ListFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let (cl, f) = (clinic_id.to_string(), filter.clone());
        self.read(move |c| queries::list_prescriptions(c, &cl, mode, &f, after, limit))
            .await
    }

    async fn transition(
        &self,
        id: &str,
        expected_version: i64,
        to: Status,
        event: NewEvent,
    ) -> Result<PrescriptionRecord, StoreError> {
        let id = id.to_string();
        self.write(move |c, chain| queries::transition(c, chain, &id, expected_version, to, &event))
            .await
    }

    async fn undispatched_issued_before(
        &self,
        before: jiff::civil::Date,
        limit: u32,
    ) -> Result<Vec<PrescriptionRecord>, StoreError> {
        let before = before.to_string();
        self.read(move |c| fulfilment::undispatched_issued_before(c, &before, limit))
            .await
    }
}

#[async_trait]
impl StaffViews for SqliteStore {
    async fn get_prescription_for_staff(
        &self,
        mode: Mode,
        id: &str,
    ) -> Result<Option<PrescriptionRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |c| queries::get_prescription_for_staff(c, mode, &id))
            .await
    }

    async fn worklist(
        &self,
        mode: Mode,
        status: Status,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        self.read(move |c| queries::worklist(c, mode, status, after, limit))
            .await
    }

    async fn search(
        &self,
        mode: Mode,
        lookup: &StaffLookup,
        limit: u32,
    ) -> Result<Vec<PrescriptionRecord>, StoreError> {
        let l = lookup.clone();
        self.read(move |c| patients::search(c, mode, &l, limit))
            .await
    }
}

#[async_trait]
impl PatientIndex for SqliteStore {
    async fn patient_history(
        &self,
        mode: Mode,
        keys: &PatientKeys,
        clinic_id: &str,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        self.read_now(|c| patients::patient_history(c, mode, keys, clinic_id, limit))
    }

    async fn identity_signals(
        &self,
        mode: Mode,
        keys: &PatientKeys,
    ) -> Result<IdentitySignals, StoreError> {
        self.read_now(|c| patients::identity_signals(c, mode, keys))
    }

    async fn patient_context(
        &self,
        mode: Mode,
        keys: &PatientKeys,
        clinic_id: &str,
        limit: u32,
    ) -> Result<(Vec<HistoryEntry>, IdentitySignals), StoreError> {
        self.read_now(|c| {
            Ok((
                patients::patient_history(c, mode, keys, clinic_id, limit)?,
                patients::identity_signals(c, mode, keys)?,
            ))
        })
    }
}

#[async_trait]
impl EventLog for SqliteStore {
    async fn record_event(&self, event: NewEvent) -> Result<(), StoreError> {
        self.write(move |c, chain| queries::append_event(c, chain, &event))
            .await
    }

    async fn timeline(&self, subject: &str) -> Result<Vec<EventRecord>, StoreError> {
        let s = subject.to_string();
        self.read(move |c| queries::timeline(c, &s)).await
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        self.read(move |c| queries::events_after(c, after, limit))
            .await
    }
}

#[async_trait]
impl UnitOfWork for SqliteStore {
    async fn commit(
        &self,
        change: rxbridge_app::payments::Change,
    ) -> Result<Option<PrescriptionRecord>, StoreError> {
        self.write(move |c, chain| payments::commit(c, chain, &change))
            .await
    }

    async fn seen(&self, source: &str, id: &str) -> Result<bool, StoreError> {
        let (s, i) = (source.to_string(), id.to_string());
        self.read(move |c| {
            c.query_row(
                "SELECT EXISTS (SELECT 1 FROM provider_events_seen WHERE source = ?1 AND event_id = ?2)",
                [s, i],
                |r| r.get(0),
            )
            .map_err(queries::unexpected)
        })
        .await
    }
}

#[async_trait]
impl PaymentStore for SqliteStore {
    async fn get_payment(
        &self,
        id: &str,
    ) -> Result<Option<rxbridge_app::payments::PaymentRecord>, StoreError> {
        let id = id.to_string();
        self.read(move |c| payments::get_payment(c, &id)).await
    }

    async fn payment_for_prescription(
        &self,
        prescription_id: &str,
    ) -> Result<Option<rxbridge_app::payments::PaymentRecord>, StoreError> {
        let id = prescription_id.to_string();
        self.read(move |c| payments::payment_for_prescription(c, &id))
            .await
    }

    async fn payment_by_session(
        &self,
        session_id: &str,
    ) -> Result<Option<rxbridge_app::payments::PaymentRecord>, StoreError> {
        let id = session_id.to_string();
        self.read(move |c| payments::payment_by_session(c, &id))
            .await
    }

    async fn payment_by_ref(
        &self,
        payment_ref: &str,
    ) -> Result<Option<rxbridge_app::payments::PaymentRecord>, StoreError> {
        let r = payment_ref.to_string();
        self.read(move |c| payments::payment_by_ref(c, &r)).await
    }

    async fn payments_needing_attention(
        &self,
        limit: u32,
    ) -> Result<Vec<(rxbridge_app::payments::PaymentRecord, Status)>, StoreError> {
        self.read(move |c| payments::needing_attention(c, limit))
            .await
    }

    async fn payments_charged_between(
        &self,
        mode: Mode,
        from: jiff::civil::Date,
        to: jiff::civil::Date,
    ) -> Result<Vec<(rxbridge_app::payments::PaymentRecord, PrescriptionRecord)>, StoreError> {
        let (from, to) = (from.to_string(), to.to_string());
        self.read(move |c| payments::charged_between(c, mode, &from, &to))
            .await
    }
}
