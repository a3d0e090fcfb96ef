//! The prescription and staff-view ports on DynamoDB: intake with its idempotency item, reads
//! by id and by GSI page, transitions, and the cross-clinic worklist and search.

use crate::items::{self, Get, Role, parse_rx, s, work_pk};
use crate::rx_items::*;
use crate::{DynamoStore, Query, Tx, unexpected};
use async_trait::async_trait;
use jiff::civil::Date;
use rxbridge_app::events::NewEvent;
use rxbridge_app::payments::Change;
use rxbridge_app::ports::*;
use rxbridge_app::state::Binding;
use rxbridge_domain::lifecycle::Status;

#[async_trait]
impl PrescriptionStore for DynamoStore {
    async fn find_idempotency(
        &self,
        clinic_id: &str,
        mode: Mode,
        key_: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let Some(i) = self.get(&idem_pk(clinic_id, mode, key_), "IDEM").await? else {
            return Ok(None);
        };
        let g = Get(&i);
        Ok(Some(IdempotencyRecord {
            clinic_id: clinic_id.to_string(),
            mode,
            key: key_.to_string(),
            request_hash: g.s("request_hash")?,
            response_status: u16::try_from(g.n("response_status")?)
                .map_err(|_| unexpected("bad response status"))?,
            response_body: g.s("response_body")?,
            created_at: g.ts("created_at")?,
        }))
    }

    async fn insert_prescription(&self, new: NewPrescription) -> Result<InsertOutcome, StoreError> {
        let t = self.table.as_str();
        let r = self
            .write(|seq| {
                let new = &new;
                async move {
                    let mut tx = Tx::default();
                    let i = &new.idempotency;
                    tx.push(
                        items::put(t, idem_item(i), Some("attribute_not_exists(#pk)"))?,
                        Role::IdempotencyKey,
                    );
                    // The row names the event written with it, and that event binds the row.
                    let mut record = new.record.clone();
                    record.event_seq = seq;
                    let mut event = new.event.clone();
                    let mut binding = Binding::default();
                    binding.prescription(&record);
                    binding.apply(&mut event);
                    let (lookups, hist) = patient_items(&record, seq, &new.patient);
                    tx.push(
                        items::put(
                            t,
                            items::rx_item(&record, seq, &hist, &new.patient)?,
                            Some("attribute_not_exists(#pk)"),
                        )?,
                        Role::Duplicate,
                    );
                    for l in lookups {
                        tx.push(items::put(t, l, None)?, Role::Other);
                    }
                    tx.events.push(event);
                    Ok((tx, ()))
                }
            })
            .await;
        match r {
            Ok(()) => Ok(InsertOutcome::Inserted),
            Err(StoreError::Duplicate) => {
                let i = &new.idempotency;
                match self.find_idempotency(&i.clinic_id, i.mode, &i.key).await? {
                    Some(existing) => Ok(InsertOutcome::KeyExists(existing)),
                    None => Err(StoreError::Duplicate),
                }
            }
            Err(e) => Err(e),
        }
    }

    async fn get_prescription(
        &self,
        clinic_id: &str,
        mode: Mode,
        id: &str,
    ) -> Result<Option<PrescriptionRecord>, StoreError> {
        Ok(self
            .rx(id)
            .await?
            .filter(|r| r.clinic_id == clinic_id && r.mode == mode))
    }

    async fn list_prescriptions(
        &self,
        clinic_id: &str,
        mode: Mode,
        filter: &ListFilter,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, 100);
        let clinic = (":c", s(clinic_id));
        match (&filter.clinic_reference, filter.status) {
            (Some(reference), status) => {
                let mut values = vec![clinic];
                let f = match status {
                    Some(st) => {
                        values.push((":st", s(st.as_str())));
                        "#clinic_id = :c AND #status = :st"
                    }
                    None => "#clinic_id = :c",
                };
                self.rx_page(
                    "gsi3",
                    format!("REF#{}#{reference}", mode.as_str()),
                    after,
                    true,
                    Some((f, values)),
                    limit,
                )
                .await
            }
            (None, Some(st)) => {
                self.rx_page(
                    "gsi2",
                    work_pk(mode, st),
                    after,
                    true,
                    Some(("#clinic_id = :c", vec![clinic])),
                    limit,
                )
                .await
            }
            (None, None) => {
                self.rx_page(
                    "gsi1",
                    format!("CLIN#{clinic_id}#{}", mode.as_str()),
                    after,
                    true,
                    None,
                    limit,
                )
                .await
            }
        }
    }

    async fn transition(
        &self,
        id: &str,
        expected_version: i64,
        to: Status,
        event: NewEvent,
    ) -> Result<PrescriptionRecord, StoreError> {
        let change = Change {
            transition: Some(rxbridge_app::payments::TransitionTo {
                id: id.to_string(),
                expected_version,
                to,
            }),
            events: vec![event],
            ..Change::default()
        };
        self.commit(change)
            .await?
            .ok_or_else(|| unexpected("a transition returned no record"))
    }

    async fn undispatched_issued_before(
        &self,
        before: Date,
        limit: u32,
    ) -> Result<Vec<PrescriptionRecord>, StoreError> {
        // A background sweep, not a request: one query per (mode, in-flight status) partition
        // of the worklist index, which only ever holds the prescriptions still in flight.
        let mut found: Vec<(Date, i64, PrescriptionRecord)> = Vec::new();
        for mode in [Mode::Test, Mode::Live] {
            for st in Status::expirable() {
                let rows = self
                    .query(
                        Query::partition(Some("gsi2"), work_pk(mode, st))
                            .filter("#issued_on < :b", vec![(":b", s(before.to_string()))]),
                    )
                    .await?;
                for i in &rows {
                    let (seq, r) = parse_rx(i)?;
                    found.push((r.issued_on, seq, r));
                }
            }
        }
        found.sort_by_key(|(d, seq, _)| (*d, *seq));
        Ok(found
            .into_iter()
            .take(limit as usize)
            .map(|(_, _, r)| r)
            .collect())
    }
}

#[async_trait]
impl StaffViews for DynamoStore {
    async fn get_prescription_for_staff(
        &self,
        mode: Mode,
        id: &str,
    ) -> Result<Option<PrescriptionRecord>, StoreError> {
        Ok(self.rx(id).await?.filter(|r| r.mode == mode))
    }

    async fn worklist(
        &self,
        mode: Mode,
        status: Status,
        after: Option<i64>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, 200);
        self.rx_page("gsi2", work_pk(mode, status), after, false, None, limit)
            .await
    }

    async fn search(
        &self,
        mode: Mode,
        lookup: &StaffLookup,
        limit: u32,
    ) -> Result<Vec<PrescriptionRecord>, StoreError> {
        let limit = limit.clamp(1, 200);
        let by = |tag: &str, v: &str| pat_pk(mode, tag, v);
        let pk = match lookup {
            StaffLookup::PrescriptionId(id) => {
                return Ok(self
                    .get_prescription_for_staff(mode, id)
                    .await?
                    .into_iter()
                    .collect());
            }
            StaffLookup::ClinicReference(r) => {
                return Ok(self
                    .rx_page(
                        "gsi3",
                        format!("REF#{}#{r}", mode.as_str()),
                        None,
                        true,
                        None,
                        limit,
                    )
                    .await?
                    .items);
            }
            StaffLookup::NhsNumber(k) => by("n", k),
            StaffLookup::Email(k) => by("e", k),
            StaffLookup::Phone(k) => by("ph", k),
            StaffLookup::Postcode(k) => by("p", k),
            StaffLookup::FamilyNameAndDob(k) => by("f", k),
        };
        let ids = self.ids_by_lookup(pk, limit).await?;
        self.rx_many(&ids).await
    }
}
