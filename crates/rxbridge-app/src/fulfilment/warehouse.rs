//! The warehouse's events: deliveries verified and applied once, each event moving the order on
//! (the domain's transitions decide what is allowed) and making the register entries it calls
//! for; the patient emailed on dispatch. The wire format is the HTTP adapter's.

use super::event::{OrderEvent, StockReceipt, WarehouseEvent};
use super::model::{WarehouseError, WarehouseOutcome, product_heading, section};
use super::service::Fulfilment;
use crate::outbox;
use crate::payments::{Change, OutgoingEmail};
use crate::ports::{Mode, PrescriptionRecord, StoreError};
use crate::registers::{EntryKind, NewEntry, Particulars, Register};
use crate::state::StateGuard;
use rxbridge_domain::dates::london_date;
use rxbridge_domain::formulary::{Formulary, Schedule};
use rxbridge_domain::lifecycle::TransitionError;
use rxbridge_domain::prescription::Prescription;
use serde_json::{Value, json};

impl Fulfilment {
    /// A delivery's Standard Webhooks headers, verified on the raw body against the inbound
    /// secrets: the `webhook-id` to apply the event under once.
    pub fn verify_warehouse_delivery(
        &self,
        raw: &[u8],
        webhook_id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<String, WarehouseError> {
        if self.cfg.inbound_secrets.is_empty() {
            return Err(WarehouseError::NoInboundSecret);
        }
        outbox::verify(
            &self.cfg.inbound_secrets,
            webhook_id,
            timestamp,
            signature,
            raw,
            self.clock.now().as_second(),
        )?;
        let id = webhook_id.unwrap_or_default().to_string();
        if id.is_empty() || id.len() > 255 {
            return Err(WarehouseError::BadEvent(
                "webhook-id must be 1 to 255 characters".into(),
            ));
        }
        Ok(id)
    }

    /// Apply a verified delivery's event once: a `webhook_id` seen before is a duplicate.
    pub async fn warehouse_event(
        &self,
        webhook_id: &str,
        event: WarehouseEvent,
    ) -> Result<WarehouseOutcome, WarehouseError> {
        // A redelivery is answered as such before anything else is checked: the order has
        // usually moved on since the first delivery.
        if self
            .store
            .seen("warehouse", webhook_id)
            .await
            .map_err(WarehouseError::Store)?
        {
            return Ok(WarehouseOutcome::Duplicate);
        }
        let result = match event {
            WarehouseEvent::StockReceived(receipt) => {
                self.stock_received(webhook_id, receipt).await
            }
            WarehouseEvent::Order { order_id, event } => {
                self.order_event(webhook_id, &order_id, event).await
            }
        };
        match result {
            Err(WarehouseError::Store(StoreError::Duplicate)) => Ok(WarehouseOutcome::Duplicate),
            Err(WarehouseError::Store(StoreError::Rejected(why))) => {
                Err(WarehouseError::Illegal(why))
            }
            other => other,
        }
    }

    async fn stock_received(
        &self,
        id: &str,
        receipt: StockReceipt,
    ) -> Result<WarehouseOutcome, WarehouseError> {
        let StockReceipt {
            product_code: code,
            supplier,
            supplier_address,
            invoice_ref: invoice,
            quantity: qty,
            mode,
        } = receipt;
        let p = Formulary::builtin().get(&code).ok_or_else(|| {
            WarehouseError::BadEvent(format!("data.product_code {code} is not in the formulary"))
        })?;
        let now = self.clock.now();
        let sec = section(mode, &code);
        let mut change = Change {
            dedupe: Some(("warehouse".into(), id.into())),
            events: vec![self.event(
                "stock.received",
                "warehouse",
                &format!("stock:{sec}"),
                json!({ "product_code": code, "quantity": qty, "invoice_ref": invoice, "webhook_id": id }),
            )],
            ..Change::default()
        };
        if p.schedule == Schedule::Cd2 {
            let particulars = Particulars {
                product: product_heading(p),
                received_from: Some(format!(
                    "{supplier}{}",
                    supplier_address
                        .map(|a| format!(", {a}"))
                        .unwrap_or_default()
                )),
                invoice_ref: Some(invoice),
                ..Particulars::default()
            };
            change.register.push(NewEntry {
                register: Register::Cd,
                sealed: self.seal(Register::Cd, &sec, now, &particulars),
                section: sec,
                kind: EntryKind::Receipt,
                entry_date: london_date(now),
                at: now,
                author: "warehouse".into(),
                subject: None,
                quantity: qty,
            });
        }
        self.commit_checked(None, change).await?;
        Ok(WarehouseOutcome::Applied("stock recorded"))
    }

    /// The order, live or sandbox.
    async fn order(&self, order_id: &str) -> Result<PrescriptionRecord, WarehouseError> {
        for mode in [Mode::Live, Mode::Test] {
            if let Some(r) = self
                .store
                .get_prescription_for_staff(mode, order_id)
                .await
                .map_err(WarehouseError::Store)?
            {
                return Ok(r);
            }
        }
        Err(WarehouseError::UnknownOrder(order_id.to_string()))
    }

    async fn order_event(
        &self,
        id: &str,
        order_id: &str,
        event: OrderEvent,
    ) -> Result<WarehouseOutcome, WarehouseError> {
        let rec = self.order(order_id).await?;
        let to = event.next_status(rec.status).map_err(|e| {
            let TransitionError::Illegal { from, action } = e;
            WarehouseError::Illegal(format!("order {} is {from}: it cannot be {action}", rec.id))
        })?;
        let now = self.clock.now();
        let dedupe = Some(("warehouse".to_string(), id.to_string()));
        let event_only = |kind: &str, detail: Value| Change {
            dedupe: dedupe.clone(),
            events: vec![self.event(kind, "warehouse", &rec.id, detail)],
            ..Change::default()
        };
        let (change, what, notify) = match event {
            OrderEvent::Picked => (
                event_only("fulfilment.picked", json!({ "webhook_id": id })),
                "picked",
                None,
            ),
            OrderEvent::Dispatched {
                carrier,
                tracking_number: tracking,
            } => {
                let rx = self
                    .vault
                    .open_prescription(&rec)
                    .map_err(|e| WarehouseError::Store(StoreError::Unexpected(e)))?;
                let mut change = Change::move_to(
                    &rec,
                    to,
                    vec![self.event(
                        "prescription.dispatched",
                        "warehouse",
                        &rec.id,
                        json!({ "carrier": carrier, "tracking_number": tracking, "webhook_id": id }),
                    )],
                );
                change.dedupe = dedupe.clone();
                let supplier = self
                    .supplying_pharmacist(&rec.id)
                    .await
                    .map_err(WarehouseError::Store)?;
                change.register =
                    self.supply_entries(&rec, &rx, &carrier, &tracking, &supplier, now);
                change
                    .outbox
                    .extend(crate::eps::notification(&self.vault, &rec, &rx, now));
                (change, "dispatched", Some((rx, carrier, tracking)))
            }
            OrderEvent::Delivered {
                received_by,
                recipient,
                id_checked,
            } => {
                let recipient = recipient.as_str();
                let mut change = Change::move_to(
                    &rec,
                    to,
                    vec![self.event(
                        "prescription.delivered",
                        "warehouse",
                        &rec.id,
                        json!({ "recipient": recipient, "id_checked": id_checked, "webhook_id": id }),
                    )],
                );
                change.dedupe = dedupe.clone();
                change.register = self.annotations(
                    &rec,
                    now,
                    &format!(
                        "Delivered {}: received by {received_by} ({recipient}); proof of identity {}",
                        london_date(now),
                        match id_checked {
                            Some(true) => "requested and provided",
                            Some(false) => "not provided",
                            None => "not recorded",
                        }
                    ),
                    Some(received_by.clone()),
                    id_checked,
                );
                (change, "delivered", None)
            }
            OrderEvent::DeliveryFailed { reason } => (
                event_only(
                    "fulfilment.delivery_failed",
                    json!({ "reason": reason, "webhook_id": id }),
                ),
                "delivery failure recorded",
                None,
            ),
            OrderEvent::Returned { reason } => {
                let mut change = event_only(
                    "fulfilment.returned",
                    json!({ "reason": reason, "webhook_id": id, "action": "quarantine for the pharmacist; not added back to stock" }),
                );
                change.register = self.annotations(
                    &rec,
                    now,
                    &format!(
                        "Returned undelivered {} ({reason}); quarantined for the pharmacist",
                        london_date(now)
                    ),
                    None,
                    None,
                );
                // A parcel that came back was not dispensed after all: EPS's notification of
                // it is withdrawn (for an electronic prescription).
                let rx = self
                    .vault
                    .open_prescription(&rec)
                    .map_err(|e| WarehouseError::Store(StoreError::Unexpected(e)))?;
                change.outbox.extend(crate::eps::withdraw(&rec, &rx, now));
                (change, "return recorded", None)
            }
        };
        self.commit_checked(Some(&rec), change).await?;
        if let Some((rx, carrier, tracking)) = notify {
            self.dispatch_email(&rec, &rx, &carrier, &tracking).await;
        }
        Ok(WarehouseOutcome::Applied(what))
    }

    /// What the warehouse reports is applied only to a row the audit chain speaks for, and
    /// register entries only after the entries they continue.
    async fn commit_checked(
        &self,
        rec: Option<&PrescriptionRecord>,
        change: Change,
    ) -> Result<(), WarehouseError> {
        if let Some(rec) = rec {
            StateGuard::new(self.store.as_ref())
                .prescription(rec, "warehouse event")
                .await
                .map_err(|e| WarehouseError::Store(e.into()))?;
        }
        self.guard_sections(&change, "register entry")
            .await
            .map_err(WarehouseError::Store)?;
        self.store
            .commit(change)
            .await
            .map_err(WarehouseError::Store)?;
        Ok(())
    }

    async fn dispatch_email(
        &self,
        rec: &PrescriptionRecord,
        rx: &Prescription,
        carrier: &str,
        tracking: &str,
    ) {
        let Some(email) = &rx.patient.email else {
            return;
        };
        let m = OutgoingEmail {
            to: email.as_str().to_string(),
            subject: format!("Your order {} is on its way", rec.id),
            text: format!(
                "Hello {},\n\nYour order {} has been dispatched with {carrier}.\nTracking number: {tracking}\n\nSomeone will need to sign for it on delivery.\n\n{}\n\n{}\n",
                rx.patient.given_name, rec.id, self.cfg.contact_line, self.cfg.pharmacy_name
            ),
            reference: format!("dispatched-{}", rec.id),
        };
        let ev = match self.notifier.send(&m).await {
            Ok(()) => self.event(
                "notification.sent",
                "system",
                &rec.id,
                json!({ "kind": "dispatched", "channel": "email" }),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "the dispatch email could not be sent");
                self.event(
                    "notification.failed",
                    "system",
                    &rec.id,
                    json!({ "kind": "dispatched", "channel": "email" }),
                )
            }
        };
        if let Err(e) = self.store.record_event(ev).await {
            tracing::warn!(error = %e, "recording a notification failed");
        }
    }
}
