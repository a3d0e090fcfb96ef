//! Fulfilment (issue #6): releasing ready prescriptions to the warehouse, the warehouse's
//! events coming back (picked, dispatched, delivered, failed, returned, stock received), the
//! expiry sweep, and the CD and POM register entries those events make.
//!
//! Sandbox (test-mode) data keeps its own register sections, prefixed `test/`, so a demo never
//! touches the live register.

use crate::clock::Clock;
use crate::events::NewEvent;
use crate::finance::Report;
use crate::intake::Intake;
use crate::outbox::{self, NewMessage, OutboxStore};
use crate::payments::{Change, Notifier, OutgoingEmail, Payments};
use crate::ports::{Mode, PrescriptionRecord, Store, StoreError};
use crate::registers::{EntryKind, NewEntry, Particulars, Register, RegisterStore};
use crate::state::StateGuard;
use jiff::civil::Date;
use rxbridge_domain::dates::london_date;
use rxbridge_domain::formulary::{Formulary, Product, Schedule};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::{Prescription, PrescriptionType};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct FulfilmentConfig {
    /// Formulary product code → the warehouse's SKU (the product code when absent).
    pub skus: HashMap<String, String>,
    /// Secrets the warehouse signs its events with (Standard Webhooks), newest first.
    pub inbound_secrets: Vec<String>,
    pub pharmacy_name: String,
    /// The closing line of patient emails (`payments::contact_line`).
    pub contact_line: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error(transparent)]
    Signature(#[from] outbox::VerifyError),
    #[error("{0}")]
    BadEvent(String),
    /// No secret to verify warehouse events with: nothing can be accepted until one is set.
    #[error(
        "no warehouse signing secret is configured: set warehouse.inbound_secrets (RXBRIDGE_WAREHOUSE_INBOUND_SECRETS)"
    )]
    NoInboundSecret,
    #[error("no order {0}")]
    UnknownOrder(String),
    #[error("{0}")]
    Illegal(String),
    #[error(transparent)]
    Store(StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseOutcome {
    Applied(&'static str),
    Duplicate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub released: u32,
    pub held: u32,
    pub expired: u32,
    /// Not released: the stored row does not match the audit chain (`crate::state`).
    pub refused: u32,
}

/// The register section for a product in a mode.
pub fn section(mode: Mode, product_code: &str) -> String {
    match mode {
        Mode::Live => product_code.to_string(),
        Mode::Test => format!("test/{product_code}"),
    }
}

/// The section heading: drug name, strength and form (the formulary name carries all three).
fn product_heading(p: &Product) -> String {
    format!("{} [{}]", p.name, p.code)
}

fn address_line(a: &rxbridge_domain::contact::Address) -> String {
    let mut parts = a.lines.clone();
    parts.push(a.town.clone());
    parts.push(a.postcode.clone());
    parts.join(", ")
}

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

/// The last day `rx` may be supplied: 28 days for Schedule 2–4, six months otherwise.
pub fn last_valid_day(rx: &Prescription, formulary: &Formulary) -> Date {
    rxbridge_domain::pricing::cd_last_valid_day(rx, formulary)
        .unwrap_or_else(|| rx.issued_on.saturating_add(jiff::Span::new().months(6)))
}

pub struct Fulfilment {
    store: Arc<dyn Store>,
    registers: Arc<dyn RegisterStore>,
    outbox: Arc<dyn OutboxStore>,
    intake: Arc<Intake>,
    payments: Arc<Payments>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    cfg: FulfilmentConfig,
}

impl Fulfilment {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        registers: Arc<dyn RegisterStore>,
        outbox: Arc<dyn OutboxStore>,
        intake: Arc<Intake>,
        payments: Arc<Payments>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        cfg: FulfilmentConfig,
    ) -> Self {
        Self {
            store,
            registers,
            outbox,
            intake,
            payments,
            notifier,
            clock,
            cfg,
        }
    }

    fn event(&self, kind: &str, actor: &str, subject: &str, detail: Value) -> NewEvent {
        NewEvent {
            at: self.clock.now(),
            kind: kind.into(),
            actor: actor.into(),
            subject: subject.into(),
            detail,
        }
    }

    fn seal(
        &self,
        register: Register,
        section: &str,
        at: jiff::Timestamp,
        p: &Particulars,
    ) -> Vec<u8> {
        self.intake.vault().seal(
            &NewEntry::seal_context(register, section, at),
            &serde_json::to_vec(p).expect("particulars serialise"),
        )
    }

    pub fn open_particulars(&self, e: &NewEntry) -> anyhow::Result<Particulars> {
        let bytes = self.intake.vault().open(
            &NewEntry::seal_context(e.register, &e.section, e.at),
            &e.sealed,
        )?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    // ----- release ----------------------------------------------------------------------------

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

    /// A section's balance, read from its last entry once that entry is checked against the
    /// event that recorded it.
    async fn checked_balance(
        &self,
        register: Register,
        section: &str,
        action: &str,
    ) -> Result<i64, StoreError> {
        match self
            .registers
            .last_register_entry(register, section)
            .await?
        {
            Some(e) => {
                StateGuard::new(self.store.as_ref())
                    .entry(&e, action)
                    .await?;
                Ok(e.balance_after)
            }
            None => Ok(0),
        }
    }

    /// Check the last entry of every register section `change` appends to.
    async fn guard_sections(&self, change: &Change, action: &str) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::new();
        for e in &change.register {
            if seen.insert((e.register, e.section.as_str())) {
                self.checked_balance(e.register, &e.section, action).await?;
            }
        }
        Ok(())
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
        let rx = self.intake.open(rec).map_err(StoreError::Unexpected)?;
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
        message.payload = crate::sealed::seal_body(self.intake.vault(), &message, &payload);
        let mut change = Change::move_to(
            rec,
            Status::WithWarehouse,
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
            let rx = self.intake.open(&rec).map_err(StoreError::Unexpected)?;
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

    // ----- events from the warehouse ------------------------------------------------------------

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

    /// CD register supply entries (Schedule 2 lines) and POM register entries (private
    /// prescriptions' other lines; NHS supplies are exempt, HMR 2012 reg 253).
    fn supply_entries(
        &self,
        rec: &PrescriptionRecord,
        rx: &Prescription,
        carrier: &str,
        tracking: &str,
        now: jiff::Timestamp,
    ) -> Vec<NewEntry> {
        let f = Formulary::builtin();
        let pr = &rx.prescriber;
        let mut out = Vec::new();
        for item in &rx.items {
            let Some(p) = f.get(&item.product_code) else {
                continue;
            };
            let register = if p.schedule == Schedule::Cd2 {
                Register::Cd
            } else if rx.kind == PrescriptionType::Private {
                Register::Pom
            } else {
                continue;
            };
            let sec = section(rec.mode, &p.code);
            let particulars = Particulars {
                product: product_heading(p),
                supplied_to: Some(format!(
                    "{} {}",
                    rx.patient.given_name, rx.patient.family_name
                )),
                supplied_to_address: Some(address_line(&rx.patient.address)),
                prescriber: Some(format!(
                    "{} {} ({} {})",
                    pr.given_name,
                    pr.family_name,
                    pr.registration.body().to_uppercase(),
                    pr.registration.number()
                )),
                prescriber_address: Some(address_line(&pr.address)),
                prescription_date: Some(rx.issued_on),
                collector: Some(format!(
                    "Delivery to the patient's address by {carrier} (tracking {tracking}), signature on delivery"
                )),
                id_requested: (register == Register::Cd).then_some(true),
                id_provided: None,
                reference: Some(rec.id.clone()),
                ..Particulars::default()
            };
            out.push(NewEntry {
                register,
                sealed: self.seal(register, &sec, now, &particulars),
                section: sec,
                kind: EntryKind::Supply,
                entry_date: london_date(now),
                at: now,
                author: "warehouse".into(),
                subject: Some(rec.id.clone()),
                quantity: i64::from(item.quantity.get()),
            });
        }
        out
    }

    fn annotations(
        &self,
        rec: &PrescriptionRecord,
        now: jiff::Timestamp,
        note: &str,
        collector: Option<String>,
        id_provided: Option<bool>,
    ) -> Vec<NewEntry> {
        let f = Formulary::builtin();
        rec.items
            .iter()
            .filter_map(|i| f.get(&i.product_code))
            .filter(|p| p.schedule == Schedule::Cd2)
            .map(|p| {
                let sec = section(rec.mode, &p.code);
                let particulars = Particulars {
                    product: product_heading(p),
                    note: Some(note.to_string()),
                    collector: collector.clone(),
                    id_provided,
                    reference: Some(rec.id.clone()),
                    ..Particulars::default()
                };
                NewEntry {
                    register: Register::Cd,
                    sealed: self.seal(Register::Cd, &sec, now, &particulars),
                    section: sec,
                    kind: EntryKind::Annotation,
                    entry_date: london_date(now),
                    at: now,
                    author: "warehouse".into(),
                    subject: Some(rec.id.clone()),
                    quantity: 0,
                }
            })
            .collect()
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

    // ----- registers and files --------------------------------------------------------------------

    /// A dated correction or note on a register section (MDR 2001 reg 20: never an edit).
    pub async fn annotate(
        &self,
        register: Register,
        section_name: &str,
        corrects_seq: Option<i64>,
        note: &str,
        author: &str,
    ) -> Result<(), StoreError> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > 500 {
            return Err(StoreError::Rejected(
                "a note of 1 to 500 characters is required".into(),
            ));
        }
        let entries = self
            .registers
            .register_entries(register, Some(section_name))
            .await?;
        if entries.is_empty() {
            return Err(StoreError::NotFound);
        }
        if let Some(seq) = corrects_seq
            && !entries.iter().any(|e| e.seq == seq)
        {
            return Err(StoreError::Rejected(format!(
                "entry {seq} is not in this section"
            )));
        }
        let now = self.clock.now();
        let code = section_name.trim_start_matches("test/");
        let particulars = Particulars {
            product: Formulary::builtin()
                .get(code)
                .map(product_heading)
                .unwrap_or_else(|| code.to_string()),
            note: Some(match corrects_seq {
                Some(seq) => format!(
                    "Correction to entry {seq}, made {}: {note}",
                    london_date(now)
                ),
                None => format!("Note made {}: {note}", london_date(now)),
            }),
            corrects_seq,
            ..Particulars::default()
        };
        let change = Change {
            events: vec![self.event(
                "register.annotated",
                author,
                &format!("register:{}:{section_name}", register.as_str()),
                json!({ "corrects": corrects_seq }),
            )],
            register: vec![NewEntry {
                register,
                sealed: self.seal(register, section_name, now, &particulars),
                section: section_name.to_string(),
                kind: EntryKind::Annotation,
                entry_date: london_date(now),
                at: now,
                author: author.to_string(),
                subject: None,
                quantity: 0,
            }],
            ..Change::default()
        };
        self.guard_sections(&change, "register entry").await?;
        self.store.commit(change).await.map(|_| ())
    }

    /// One register section as a printable report (patient particulars opened; the read is
    /// audited).
    pub async fn register_report(
        &self,
        register: Register,
        section_name: &str,
        actor: &str,
    ) -> Result<Report, StoreError> {
        let entries = self
            .registers
            .register_entries(register, Some(section_name))
            .await?;
        self.store
            .record_event(self.event(
                "register.viewed",
                actor,
                &format!("register:{}:{section_name}", register.as_str()),
                json!({ "entries": entries.len() }),
            ))
            .await?;
        let code = section_name.trim_start_matches("test/");
        let heading = Formulary::builtin()
            .get(code)
            .map(product_heading)
            .unwrap_or_else(|| code.to_string());
        let mut rows = Vec::new();
        for e in &entries {
            let p = self
                .open_particulars(&e.entry)
                .map_err(StoreError::Unexpected)?;
            let yn = |b: Option<bool>| match b {
                Some(true) => "Y",
                Some(false) => "N",
                None => "",
            };
            rows.push(vec![
                e.seq.to_string(),
                e.entry.entry_date.to_string(),
                e.entry.kind.as_str().to_string(),
                p.supplied_to
                    .map(|n| format!("{n}, {}", p.supplied_to_address.unwrap_or_default()))
                    .or(p.received_from)
                    .unwrap_or_default(),
                p.prescriber
                    .map(|n| format!("{n}, {}", p.prescriber_address.unwrap_or_default()))
                    .unwrap_or_default(),
                match e.entry.kind {
                    EntryKind::Receipt => format!("+{}", e.entry.quantity),
                    EntryKind::Supply => format!("-{}", e.entry.quantity),
                    EntryKind::Annotation => String::new(),
                },
                p.collector.unwrap_or_default(),
                yn(p.id_requested).into(),
                yn(p.id_provided).into(),
                p.invoice_ref.or(p.note).or(p.reference).unwrap_or_default(),
                if register == Register::Cd {
                    e.balance_after.to_string()
                } else {
                    String::new()
                },
                e.entry.author.clone(),
            ]);
        }
        let balance = entries.last().map_or(0, |e| e.balance_after);
        Ok(Report {
            kind: crate::finance::ExportKind::Payments,
            month: section_name.to_string(),
            title: match register {
                Register::Cd => format!("Controlled Drugs register: {heading}"),
                Register::Pom => format!("POM register: {heading}"),
            },
            header: vec![
                ("Pharmacy".into(), self.cfg.pharmacy_name.clone()),
                ("Section".into(), section_name.to_string()),
                (
                    "Printed".into(),
                    self.clock.now().strftime("%Y-%m-%d %H:%M UTC").to_string(),
                ),
            ],
            columns: [
                "entry",
                "date",
                "kind",
                "supplied to / received from",
                "prescriber",
                "quantity",
                "collected by",
                "ID requested",
                "ID provided",
                "invoice / note / order",
                "balance",
                "author",
            ]
            .map(String::from)
            .to_vec(),
            rows,
            totals: if register == Register::Cd {
                vec![
                    ("Running balance".into(), balance.to_string()),
                    ("Entries".into(), entries.len().to_string()),
                ]
            } else {
                vec![("Entries".into(), entries.len().to_string())]
            },
            differences: Vec::new(),
        })
    }

    /// The ERP file for warehouses that import files: every order released to the warehouse
    /// on `date` (London), one row per line, in release order. Same date, same file.
    pub async fn orders_file(
        &self,
        mode: Mode,
        date: Date,
        actor: &str,
    ) -> Result<Report, StoreError> {
        let tz = rxbridge_domain::dates::london().clone();
        let from = date
            .to_zoned_datetime(tz.clone())
            .map_err(|e| StoreError::Unexpected(e.into()))?
            .timestamp();
        let to = date
            .saturating_add(jiff::Span::new().days(1))
            .to_zoned_datetime(tz)
            .map_err(|e| StoreError::Unexpected(e.into()))?
            .timestamp();
        let messages = self
            .outbox
            .messages_between(
                "fulfilment.requested",
                &outbox::warehouse_destination(mode),
                from,
                to,
            )
            .await?;
        let mut rows = Vec::new();
        for m in &messages {
            // Opened as the file is rendered; the file goes to the caller, not to disk.
            let payload = crate::sealed::open_body(self.intake.vault(), &m.message)
                .map_err(|e| StoreError::Unexpected(e.into()))?;
            let d = &payload["data"];
            let to = &d["deliver_to"];
            for l in d["lines"].as_array().into_iter().flatten() {
                rows.push(vec![
                    d["order_id"].as_str().unwrap_or_default().to_string(),
                    m.message.created_at.to_string(),
                    l["line"].to_string(),
                    l["sku"].as_str().unwrap_or_default().to_string(),
                    l["description"].as_str().unwrap_or_default().to_string(),
                    l["quantity"].to_string(),
                    l["controlled_drug"].to_string(),
                    d["service"].as_str().unwrap_or_default().to_string(),
                    to["name"].as_str().unwrap_or_default().to_string(),
                    to["address_lines"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default(),
                    to["town"].as_str().unwrap_or_default().to_string(),
                    to["postcode"].as_str().unwrap_or_default().to_string(),
                ]);
            }
        }
        self.store
            .record_event(self.event(
                "export.generated",
                actor,
                &format!("export:orders:{date}"),
                json!({ "export": "orders", "date": date.to_string(), "mode": mode.as_str(), "rows": rows.len() }),
            ))
            .await?;
        Ok(Report {
            kind: crate::finance::ExportKind::Payments,
            month: date.to_string(),
            title: "Released orders".into(),
            header: vec![
                ("Date".into(), date.to_string()),
                ("Data".into(), mode.as_str().into()),
            ],
            columns: [
                "order_id",
                "released_at",
                "line",
                "sku",
                "description",
                "quantity",
                "controlled_drug",
                "service",
                "deliver_to_name",
                "address",
                "town",
                "postcode",
            ]
            .map(String::from)
            .to_vec(),
            totals: vec![
                ("Orders".into(), messages.len().to_string()),
                ("Lines".into(), rows.len().to_string()),
            ],
            rows,
            differences: Vec::new(),
        })
    }
}
