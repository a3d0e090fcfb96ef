//! The `Store` port on DynamoDB: clinics and keys, prescriptions, patient lookups, events
//! and payments. The `commit` unit of work is built in `commit`, the items in `rx_items`.

use crate::items::{self, Get, Role, key, n, pad, parse_rx, s, work_pk};
use crate::rx_items::*;
use crate::{DynamoStore, Query, Tx, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::civil::Date;
use rxbridge_app::events::{EventRecord, NewEvent};
use rxbridge_app::payments::{Change, PaymentRecord};
use rxbridge_app::ports::*;
use rxbridge_app::state::Binding;
use rxbridge_domain::compliance::{HistoryEntry, IdentitySignals, MAX_COUNTED_AT_ADDRESS};
use rxbridge_domain::lifecycle::Status;

/// Statuses before dispatch (not dispatched, not ended): the expiry sweep's candidates.
fn undispatched() -> impl Iterator<Item = Status> {
    rxbridge_domain::lifecycle::ALL_STATUSES
        .into_iter()
        .filter(|s| !s.is_terminal() && *s != Status::Dispatched)
}

#[async_trait]
impl Store for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unexpected(crate::sdk_message(&e)))
    }

    async fn create_clinic(
        &self,
        clinic: Clinic,
        keys: Vec<ApiKeyRecord>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let t = self.table.as_str();
        self.write(|_| {
            let (clinic, keys, event) = (&clinic, &keys, &event);
            async move {
                let mut tx = Tx::default();
                tx.push(
                    items::put(t, clinic_item(clinic), Some("attribute_not_exists(#pk)"))?,
                    Role::Duplicate,
                );
                for mode in [Mode::Test, Mode::Live] {
                    let hashes: Vec<AttributeValue> = keys
                        .iter()
                        .filter(|k| k.mode == mode)
                        .map(|k| s(&k.key_hash))
                        .collect();
                    if !hashes.is_empty() {
                        tx.push(
                            items::put(
                                t,
                                items::item(
                                    format!("CLINIC#{}", clinic.id),
                                    format!("KEYS#{}", mode.as_str()),
                                    vec![("hashes", AttributeValue::L(hashes)), ("rev", n(1))],
                                ),
                                None,
                            )?,
                            Role::Other,
                        );
                    }
                }
                for k in keys {
                    tx.push(
                        items::put(t, key_item(k), Some("attribute_not_exists(#pk)"))?,
                        Role::Duplicate,
                    );
                }
                tx.events.push(event.clone());
                Ok((tx, ()))
            }
        })
        .await
    }

    async fn get_clinic(&self, clinic_id: &str) -> Result<Option<Clinic>, StoreError> {
        self.get(&format!("CLINIC#{clinic_id}"), "CLINIC")
            .await?
            .map(|i| parse_clinic(&i))
            .transpose()
    }

    async fn list_clinics(&self) -> Result<Vec<Clinic>, StoreError> {
        self.query(Query::partition(Some("gsi1"), "CLINICS"))
            .await?
            .iter()
            .map(parse_clinic)
            .collect()
    }

    async fn rotate_key(&self, key_rec: ApiKeyRecord, event: NewEvent) -> Result<(), StoreError> {
        let t = self.table.as_str();
        self.write(|_| {
            let (k, event) = (&key_rec, &event);
            async move {
                let clinic_pk = format!("CLINIC#{}", k.clinic_id);
                if self.get(&clinic_pk, "CLINIC").await?.is_none() {
                    return Err(StoreError::NotFound);
                }
                let keys_sk = format!("KEYS#{}", k.mode.as_str());
                let current = self.get(&clinic_pk, &keys_sk).await?;
                let mut tx = Tx::default();
                tx.push(
                    items::check(t, key(&clinic_pk, "CLINIC"), "attribute_exists(#pk)", [])?,
                    Role::NotFound,
                );
                let (old, rev) = match &current {
                    Some(i) => (Get(i).list_s("hashes"), Get(i).n("rev")?),
                    None => (vec![], 0),
                };
                for h in &old {
                    tx.push(
                        items::update(
                            t,
                            key(format!("KEY#{h}"), "KEY"),
                            "SET #revoked_at = :at",
                            Some("attribute_exists(#pk)"),
                            [(":at", s(k.created_at.to_string()))],
                        )?,
                        Role::Other,
                    );
                }
                tx.push(
                    items::put(t, key_item(k), Some("attribute_not_exists(#pk)"))?,
                    Role::Duplicate,
                );
                let pointer = items::item(
                    &clinic_pk,
                    &keys_sk,
                    vec![
                        ("hashes", AttributeValue::L(vec![s(&k.key_hash)])),
                        ("rev", n(rev + 1)),
                    ],
                );
                tx.push(
                    if current.is_some() {
                        items::put_if(t, pointer, "#rev = :r", [(":r", n(rev))])?
                    } else {
                        items::put(t, pointer, Some("attribute_not_exists(#pk)"))?
                    },
                    Role::Recheck,
                );
                tx.events.push(event.clone());
                Ok((tx, ()))
            }
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<Caller>, StoreError> {
        let Some(i) = self.get(&format!("KEY#{key_hash}"), "KEY").await? else {
            return Ok(None);
        };
        let g = Get(&i);
        if g.opt_s("revoked_at").is_some() {
            return Ok(None);
        }
        let mode = g.s("mode")?;
        Ok(Some(Caller {
            clinic_id: g.s("clinic_id")?,
            mode: Mode::parse(&mode).ok_or_else(|| unexpected(format!("bad mode {mode}")))?,
        }))
    }

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

    async fn record_event(&self, event: NewEvent) -> Result<(), StoreError> {
        self.write(|_| {
            let event = &event;
            async move {
                Ok((
                    Tx {
                        ops: vec![],
                        events: vec![event.clone()],
                    },
                    (),
                ))
            }
        })
        .await
    }

    async fn timeline(&self, subject: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self
            .query(Query::partition(Some("gsi1"), format!("SUBJ#{subject}")))
            .await?;
        rows.iter().map(items::parse_event).collect()
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self
            .query(
                Query::partition(None, "EVT")
                    .sort(">", pad(after))
                    .limit(limit as usize),
            )
            .await?;
        rows.iter().map(items::parse_event).collect()
    }

    async fn patient_history(
        &self,
        mode: Mode,
        keys: &PatientKeys,
        clinic_id: &str,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        // With an NHS number the patient is that number, plus records under their
        // demographics that carry no NHS number; without one, every record under the
        // demographics (see the SQLite store for the reasoning).
        let mut rows = match &keys.nhs {
            Some(nhs) => {
                let (a, b) = tokio::try_join!(
                    self.history_rows(pat_pk(mode, "n", nhs), limit),
                    self.history_rows(pat_pk(mode, "d0", &keys.demographic), limit),
                )?;
                let mut v = a;
                v.extend(b);
                v
            }
            None => {
                self.history_rows(pat_pk(mode, "d", &keys.demographic), limit)
                    .await?
            }
        };
        rows.sort_by_key(|i| std::cmp::Reverse(Get(i).n("seq").unwrap_or(0)));
        rows.truncate(limit as usize);
        let mut out = Vec::new();
        for i in &rows {
            let g = Get(i);
            let status = g.s("status")?;
            let status =
                Status::parse(&status).ok_or_else(|| unexpected(format!("bad status {status}")))?;
            let start: Date = g
                .s("issued_on")?
                .parse()
                .map_err(|e| unexpected(format!("issued_on: {e}")))?;
            let id = g.s("rx")?;
            let same = g.s("clinic_id")? == clinic_id;
            for it in g.json::<Vec<ItemSummary>>("items")? {
                out.push(HistoryEntry {
                    prescription_id: id.clone(),
                    same_clinic: same,
                    product_code: it.product_code,
                    active_ingredient: it.active_ingredient,
                    start,
                    days_supply: it.days_supply,
                    status,
                });
            }
        }
        Ok(out)
    }

    async fn identity_signals(
        &self,
        mode: Mode,
        keys: &PatientKeys,
    ) -> Result<IdentitySignals, StoreError> {
        // Distinct-value partitions, each read up to a fixed count (see `patient_items`).
        let me = keys.identity();
        let cap = MAX_COUNTED_AT_ADDRESS as usize;
        let at_address = self.distinct(pat_pk(mode, "ai", &keys.address), cap + 1);
        let nhs_other = async {
            match &keys.nhs {
                // At most one item is this patient's own value: two tell whether another exists.
                Some(nhs) => Ok(self
                    .distinct(pat_pk(mode, "nn", nhs), 2)
                    .await?
                    .iter()
                    .any(|nd| *nd != keys.name_dob)),
                None => Ok(false),
            }
        };
        let details_other = async {
            match &keys.nhs {
                Some(nhs) => Ok(self
                    .distinct(pat_pk(mode, "dn", &keys.name_dob), 2)
                    .await?
                    .iter()
                    .any(|n| n != nhs)),
                None => Ok(false),
            }
        };
        let (at_address, nhs_number_with_other_details, details_with_other_nhs_number) =
            tokio::try_join!(at_address, nhs_other, details_other)?;
        let others = at_address.iter().filter(|id| *id != me).take(cap).count();
        Ok(IdentitySignals {
            other_patients_at_address: u32::try_from(others).unwrap_or(u32::MAX),
            nhs_number_with_other_details,
            details_with_other_nhs_number,
        })
    }

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
            StaffLookup::Postcode(k) => by("p", k),
            StaffLookup::FamilyNameAndDob(k) => by("f", k),
        };
        let ids = self.ids_by_lookup(pk, limit).await?;
        self.rx_many(&ids).await
    }

    async fn commit(&self, change: Change) -> Result<Option<PrescriptionRecord>, StoreError> {
        if change.transition.is_some() && change.events.is_empty() {
            return Err(unexpected("a transition needs an event"));
        }
        let change = &change;
        self.write(|seq| self.build_commit(change, seq)).await
    }

    async fn seen(&self, source: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(&format!("SEEN#{source}#{id}"), "SEEN")
            .await?
            .is_some())
    }

    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_item_of(id)
            .await?
            .map(|i| parse_payment(&i))
            .transpose()
    }

    async fn payment_for_prescription(
        &self,
        prescription_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_by_pointer(format!("PAYRX#{prescription_id}"), "PAYRX")
            .await
    }

    async fn payment_by_session(
        &self,
        session_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_by_pointer(format!("PAYSESS#{session_id}"), "PAYSESS")
            .await
    }

    async fn payment_by_ref(&self, payment_ref: &str) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_by_pointer(format!("PAYREF#{payment_ref}"), "PAYREF")
            .await
    }

    async fn payments_needing_attention(
        &self,
        limit: u32,
    ) -> Result<Vec<(PaymentRecord, Status)>, StoreError> {
        let rows = self
            .query(Query::partition(Some("gsi2"), "PAYATTN").limit(limit as usize))
            .await?;
        let payments: Vec<PaymentRecord> =
            rows.iter().map(parse_payment).collect::<Result<_, _>>()?;
        let rx = self
            .rx_records(payments.iter().map(|p| p.prescription_id.clone()).collect())
            .await?;
        Ok(payments
            .into_iter()
            .filter_map(|p| {
                let st = rx.get(&p.prescription_id)?.status;
                // The index is eventually consistent: keep only what still needs the sweep.
                needs_attention(p.status, st).then_some((p, st))
            })
            .collect())
    }

    async fn payments_charged_between(
        &self,
        mode: Mode,
        from: Date,
        to: Date,
    ) -> Result<Vec<(PaymentRecord, PrescriptionRecord)>, StoreError> {
        let mut payments = Vec::new();
        let mut month = from.first_of_month();
        while month <= to {
            let rows = self
                .query(
                    Query::partition(
                        Some("gsi3"),
                        format!(
                            "PAYMONTH#{}#{:04}-{:02}",
                            mode.as_str(),
                            month.year(),
                            month.month()
                        ),
                    )
                    .between(from.to_string(), format!("{to}~")),
                )
                .await?;
            for r in &rows {
                payments.push(parse_payment(r)?);
            }
            month = month
                .checked_add(jiff::Span::new().months(1))
                .map_err(unexpected)?;
        }
        let rx = self
            .rx_records(payments.iter().map(|p| p.prescription_id.clone()).collect())
            .await?;
        Ok(payments
            .into_iter()
            .filter_map(|p| {
                let r = rx.get(&p.prescription_id)?.clone();
                Some((p, r))
            })
            .collect())
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
            for st in undispatched() {
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

    async fn patient_context(
        &self,
        mode: Mode,
        keys: &PatientKeys,
        clinic_id: &str,
        limit: u32,
    ) -> Result<(Vec<HistoryEntry>, IdentitySignals), StoreError> {
        tokio::try_join!(
            self.patient_history(mode, keys, clinic_id, limit),
            self.identity_signals(mode, keys)
        )
    }
}
