//! Releasing ready prescriptions to the warehouse (held while the CD register cannot cover
//! them) and expiring what was not dispatched in time.

use super::model::{SweepReport, last_valid_day, section};
use super::service::Fulfilment;
use crate::outbox::{self, NewMessage};
use crate::payments::Change;
use crate::ports::{Mode, PrescriptionRecord, StoreError};
use crate::registers::Register;
use crate::state::StateGuard;
use rxbridge_domain::dates::london_date;
use rxbridge_domain::formulary::{Formulary, Schedule};
use rxbridge_domain::lifecycle::Status;
use serde_json::{Value, json};
use std::collections::HashMap;

impl Fulfilment {
    /// Release every `ready_for_fulfilment` prescription to the warehouse, holding (and
    /// flagging once) any whose Schedule 2 lines the CD register balance cannot cover, and
    /// expire what is past its validity. Run by the server's sweep; idempotent.
    pub async fn sweep(&self) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport {
            expired: self.expire_overdue().await?,
            ..SweepReport::default()
        };
        for mode in [Mode::Live, Mode::Test] {
            // What the warehouse already holds, counted once per sweep and kept up to date as
            // orders are released.
            let mut committed = self.committed(mode).await?;
            let mut after = None;
            loop {
                let page = self
                    .store
                    .worklist(mode, Status::ReadyForFulfilment, after, 100)
                    .await?;
                for rec in &page.items {
                    match self.release_with(rec, &mut committed).await {
                        Ok(true) => report.released += 1,
                        Ok(false) => report.held += 1,
                        Err(StoreError::Conflict) => {}
                        // Logged and counted by the guard; the others still go.
                        Err(StoreError::Rejected(_)) => report.refused += 1,
                        Err(e) => return Err(e),
                    }
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
        }
        Ok(report)
    }

    /// Schedule 2 units committed to orders the warehouse holds but has not dispatched.
    async fn committed(&self, mode: Mode) -> Result<HashMap<String, i64>, StoreError> {
        let f = Formulary::builtin();
        let mut out: HashMap<String, i64> = HashMap::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .worklist(mode, Status::WithWarehouse, after, 100)
                .await?;
            for rec in &page.items {
                for i in &rec.items {
                    if f.get(&i.product_code)
                        .is_some_and(|p| p.schedule == Schedule::Cd2)
                    {
                        *out.entry(i.product_code.clone()).or_default() += i64::from(i.quantity);
                    }
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// Release one prescription: `true` when released, `false` when held for stock.
    pub async fn release(&self, rec: &PrescriptionRecord) -> Result<bool, StoreError> {
        let mut committed = self.committed(rec.mode).await?;
        self.release_with(rec, &mut committed).await
    }

    async fn release_with(
        &self,
        rec: &PrescriptionRecord,
        committed: &mut HashMap<String, i64>,
    ) -> Result<bool, StoreError> {
        // Only a ready order goes: one that moved on since it was listed is left alone.
        let to = rec
            .status
            .hand_to_warehouse()
            .map_err(|_| StoreError::Conflict)?;
        // The warehouse is sent only what the audit chain says is ready: the row, its payment
        // and the register entries its balance comes from must match their events.
        let guard = StateGuard::new(self.store.as_ref());
        guard.prescription(rec, "release").await?;
        if let Some(p) = self.store.payment_for_prescription(&rec.id).await? {
            guard.payment(&p, "release").await?;
        }
        let f = Formulary::builtin();
        let mut short = Vec::new();
        let mut need: HashMap<&str, i64> = HashMap::new();
        for i in &rec.items {
            if f.get(&i.product_code)
                .is_some_and(|p| p.schedule == Schedule::Cd2)
            {
                *need.entry(i.product_code.as_str()).or_default() += i64::from(i.quantity);
            }
        }
        for (code, qty) in &need {
            let balance = self
                .checked_balance(Register::Cd, &section(rec.mode, code), "release")
                .await?;
            let available = balance - committed.get(*code).copied().unwrap_or(0);
            if available < *qty {
                short.push(json!({ "product_code": code, "needed": qty, "available": available }));
            }
        }
        if !short.is_empty() {
            let last = self.store.timeline(&rec.id).await?;
            if last
                .last()
                .is_none_or(|e| e.event.kind != "fulfilment.held")
            {
                self.store
                    .record_event(self.event(
                        "fulfilment.held",
                        "system",
                        &rec.id,
                        json!({ "reason": "the CD register balance does not cover this order", "short": short }),
                    ))
                    .await?;
            }
            return Ok(false);
        }
        let rx = self
            .vault
            .open_prescription(rec)
            .map_err(StoreError::Unexpected)?;
        let now = self.clock.now();
        let lines: Vec<Value> = rx
            .items
            .iter()
            .enumerate()
            .map(|(n, i)| {
                let p = f.get(&i.product_code);
                json!({
                    "line": n + 1,
                    "sku": self.cfg.skus.get(&i.product_code).cloned().unwrap_or_else(|| i.product_code.clone()),
                    "product_code": i.product_code,
                    "description": p.map(|p| p.name.clone()).unwrap_or_default(),
                    "quantity": i.quantity.get(),
                    "schedule": p.map(|p| p.schedule.as_str()).unwrap_or(""),
                    "controlled_drug": p.is_some_and(|p| p.schedule.has_28_day_validity()),
                })
            })
            .collect();
        let cd = rx.items.iter().any(|i| {
            f.get(&i.product_code)
                .is_some_and(|p| p.schedule.has_28_day_validity())
        });
        let pt = &rx.patient;
        let mut message = NewMessage {
            id: outbox::new_message_id(),
            destination: outbox::warehouse_destination(rec.mode),
            event_type: "fulfilment.requested".into(),
            subject: rec.id.clone(),
            payload: outbox::Body::Clear(Value::Null),
            created_at: now,
        };
        // The order names the patient and where they live: sealed before it is stored.
        let payload = json!({
            "type": "fulfilment.requested",
            "timestamp": now.to_string(),
            "data": {
                "order_id": rec.id,
                "mode": rec.mode.as_str(),
                "service": "tracked_signed",
                "controlled_drug": cd,
                "signature_required": true,
                "id_check_on_delivery": cd,
                "lines": lines,
                "deliver_to": {
                    "name": format!("{} {}", pt.given_name, pt.family_name),
                    "address_lines": pt.address.lines,
                    "town": pt.address.town,
                    "postcode": pt.address.postcode,
                    "country": pt.address.country,
                    "phone": pt.phone.as_ref().map(|p| p.as_str().to_string()),
                },
            },
        });
        message.payload = crate::outbox::sealed::seal_body(&self.vault, &message, &payload);
        let mut change = Change::move_to(
            rec,
            to,
            vec![self.event(
                "prescription.released",
                "system",
                &rec.id,
                json!({ "from": rec.status.as_str(), "message_id": message.id }),
            )],
        );
        change.outbox.push(message);
        self.store.commit(change).await?;
        for (code, qty) in need {
            *committed.entry(code.to_string()).or_default() += qty;
        }
        Ok(true)
    }

    /// Expire what was not dispatched within its validity (28 days for Schedule 2–4, six months
    /// otherwise); the clinic is told, the warehouse told to cancel, paid ones refunded.
    pub async fn expire_overdue(&self) -> Result<u32, StoreError> {
        let f = Formulary::builtin();
        let today = london_date(self.clock.now());
        let cutoff = today.saturating_sub(jiff::Span::new().days(28));
        let mut n = 0;
        for rec in self.store.undispatched_issued_before(cutoff, 500).await? {
            let rx = self
                .vault
                .open_prescription(&rec)
                .map_err(StoreError::Unexpected)?;
            let last = last_valid_day(&rx, f);
            if today <= last {
                continue;
            }
            let Ok(to) = rec.status.expire() else {
                continue;
            };
            let change = Change::move_to(
                &rec,
                to,
                vec![self.event(
                    "prescription.expired",
                    "system",
                    &rec.id,
                    json!({ "from": rec.status.as_str(), "reason": format!("not dispatched by its last valid day, {last}") }),
                )],
            );
            match self.store.commit(change).await {
                Ok(_) => {
                    n += 1;
                    self.payments.prescription_changed(&rec.id, "system").await;
                }
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}
