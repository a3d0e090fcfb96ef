//! The warehouse's events: verified, applied once, each moving the order on and making the
//! register entries it calls for; the patient emailed on dispatch.

use super::model::{WarehouseError, WarehouseOutcome, product_heading, section};
use super::service::Fulfilment;
use crate::outbox;
use crate::payments::{Change, OutgoingEmail};
use crate::ports::{Mode, PrescriptionRecord, StoreError};
use crate::registers::{EntryKind, NewEntry, Particulars, Register};
use crate::state::StateGuard;
use rxbridge_domain::dates::london_date;
use rxbridge_domain::formulary::{Formulary, Schedule};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::Prescription;
use serde_json::{Value, json};

/// Every event type the warehouse may send (docs/fulfilment.md).
pub const WAREHOUSE_EVENT_TYPES: [&str; 6] = [
    "picked",
    "dispatched",
    "delivered",
    "delivery_failed",
    "returned",
    "stock_received",
];

fn unknown_type(kind: &str) -> WarehouseError {
    WarehouseError::BadEvent(format!(
        "unknown event type {kind:?}: type must be one of {}",
        WAREHOUSE_EVENT_TYPES.join(", ")
    ))
}

/// A required text field of a warehouse event's `data`, 1 to 200 characters.
fn required_text(d: &Value, k: &str) -> Result<String, WarehouseError> {
    d[k].as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(String::from)
        .ok_or_else(|| {
            WarehouseError::BadEvent(format!("data.{k} is required (1 to 200 characters)"))
        })
}

impl Fulfilment {
    /// `POST /v1/warehouse/events`: Standard Webhooks headers verified on the raw body, the
    /// `webhook-id` applied once.
    pub async fn warehouse_event(
        &self,
        raw: &[u8],
        webhook_id: Option<&str>,
        timestamp: Option<&str>,
        signature: Option<&str>,
    ) -> Result<WarehouseOutcome, WarehouseError> {
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
        let v: Value = serde_json::from_slice(raw)
            .map_err(|e| WarehouseError::BadEvent(format!("the body is not JSON: {e}")))?;
        let kind = v["type"]
            .as_str()
            .ok_or_else(|| WarehouseError::BadEvent("type is required".into()))?
            .to_string();
        // The type is checked first: an event we do not know is answered as such, not with
        // whatever field the known kinds would have needed.
        if !WAREHOUSE_EVENT_TYPES.contains(&kind.as_str()) {
            return Err(unknown_type(&kind));
        }
        let data = &v["data"];
        if !data.is_object() {
            return Err(WarehouseError::BadEvent("data must be an object".into()));
        }
        // A redelivery is answered as such before anything else is checked: the order has
        // usually moved on since the first delivery.
        if self
            .store
            .seen("warehouse", &id)
            .await
            .map_err(WarehouseError::Store)?
        {
            return Ok(WarehouseOutcome::Duplicate);
        }
        let result = if kind == "stock_received" {
            self.stock_received(&id, data).await
        } else {
            self.order_event(&id, &kind, data).await
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
        d: &Value,
    ) -> Result<WarehouseOutcome, WarehouseError> {
        let text = |k: &str| required_text(d, k);
        let code = text("product_code")?;
        let supplier = text("supplier")?;
        let invoice = text("invoice_ref")?;
        let qty = d["quantity"]
            .as_i64()
            .filter(|q| (1..=1_000_000).contains(q))
            .ok_or_else(|| {
                WarehouseError::BadEvent("data.quantity must be a whole number 1 to 1000000".into())
            })?;
        let mode = match d["mode"].as_str() {
            None | Some("live") => Mode::Live,
            Some("test") => Mode::Test,
            Some(_) => {
                return Err(WarehouseError::BadEvent(
                    "data.mode must be live or test".into(),
                ));
            }
        };
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
                    d["supplier_address"]
                        .as_str()
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
        self.guard_sections(&change, "register entry")
            .await
            .map_err(WarehouseError::Store)?;
        self.store
            .commit(change)
            .await
            .map_err(WarehouseError::Store)?;
        Ok(WarehouseOutcome::Applied("stock recorded"))
    }

    async fn order_event(
        &self,
        id: &str,
        kind: &str,
        d: &Value,
    ) -> Result<WarehouseOutcome, WarehouseError> {
        let order = d["order_id"]
            .as_str()
            .ok_or_else(|| WarehouseError::BadEvent("data.order_id is required".into()))?
            .to_string();
        let mut rec = None;
        for mode in [Mode::Live, Mode::Test] {
            if let Some(r) = self
                .store
                .get_prescription_for_staff(mode, &order)
                .await
                .map_err(WarehouseError::Store)?
            {
                rec = Some(r);
                break;
            }
        }
        let rec = rec.ok_or_else(|| WarehouseError::UnknownOrder(order.clone()))?;
        let illegal = |what: &str| {
            WarehouseError::Illegal(format!(
                "order {} is {}: it cannot be {what}",
                rec.id,
                rec.status.as_str()
            ))
        };
        let text = |k: &str| required_text(d, k);
        let now = self.clock.now();
        let dedupe = Some(("warehouse".to_string(), id.to_string()));
        let event_only = |kind: &str, detail: Value| Change {
            dedupe: dedupe.clone(),
            events: vec![self.event(kind, "warehouse", &rec.id, detail)],
            ..Change::default()
        };
        let (change, what, notify) = match kind {
            "picked" => {
                if rec.status != Status::WithWarehouse {
                    return Err(illegal("picked"));
                }
                (
                    event_only("fulfilment.picked", json!({ "webhook_id": id })),
                    "picked",
                    None,
                )
            }
            "dispatched" => {
                if rec.status != Status::WithWarehouse {
                    return Err(illegal("dispatched"));
                }
                let carrier = text("carrier")?;
                let tracking = text("tracking_number")?;
                let rx = self
                    .intake
                    .open(&rec)
                    .map_err(|e| WarehouseError::Store(StoreError::Unexpected(e)))?;
                let mut change = Change::move_to(
                    &rec,
                    Status::Dispatched,
                    vec![self.event(
                        "prescription.dispatched",
                        "warehouse",
                        &rec.id,
                        json!({ "carrier": carrier, "tracking_number": tracking, "webhook_id": id }),
                    )],
                );
                change.dedupe = dedupe.clone();
                change.register = self.supply_entries(&rec, &rx, &carrier, &tracking, now);
                (change, "dispatched", Some((rx, carrier, tracking)))
            }
            "delivered" => {
                if rec.status != Status::Dispatched {
                    return Err(illegal("delivered"));
                }
                let received_by = text("received_by")?;
                let recipient = d["recipient"].as_str().unwrap_or("patient");
                if !matches!(
                    recipient,
                    "patient" | "representative" | "healthcare_professional"
                ) {
                    return Err(WarehouseError::BadEvent(
                        "data.recipient must be patient, representative or healthcare_professional"
                            .into(),
                    ));
                }
                let id_checked = d["id_checked"].as_bool();
                let mut change = Change::move_to(
                    &rec,
                    Status::Delivered,
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
            "delivery_failed" => {
                if rec.status != Status::Dispatched {
                    return Err(illegal("marked failed"));
                }
                let reason = text("reason")?;
                (
                    event_only(
                        "fulfilment.delivery_failed",
                        json!({ "reason": reason, "webhook_id": id }),
                    ),
                    "delivery failure recorded",
                    None,
                )
            }
            "returned" => {
                if rec.status != Status::Dispatched {
                    return Err(illegal("returned"));
                }
                let reason = text("reason")?;
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
                (change, "return recorded", None)
            }
            other => return Err(unknown_type(other)),
        };
        // What the warehouse reports is applied only to a row the audit chain speaks for, and
        // register entries only after the entries they continue.
        StateGuard::new(self.store.as_ref())
            .prescription(&rec, "warehouse event")
            .await
            .map_err(|e| WarehouseError::Store(e.into()))?;
        self.guard_sections(&change, "register entry")
            .await
            .map_err(WarehouseError::Store)?;
        self.store
            .commit(change)
            .await
            .map_err(WarehouseError::Store)?;
        if let Some((rx, carrier, tracking)) = notify {
            self.dispatch_email(&rec, &rx, &carrier, &tracking).await;
        }
        Ok(WarehouseOutcome::Applied(what))
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
