//! What NHS EPS must hear about the prescriptions it released to this pharmacy, as outbox
//! messages to `eps:{mode}`, written in the same transaction as the change that causes them:
//!
//! - the dispense notification when the warehouse dispatches the parcel (`NOTIFY`);
//! - the return when an NHS prescription will not be dispensed here — cancelled, rejected or
//!   expired — so the patient can take it to another pharmacy (`RETURN`);
//! - the withdraw of the notification when a dispatched parcel comes back (`WITHDRAW`);
//! - the month's claim per dispensed prescription (`CLAIM`, written by [`queue_claims`]).
//!
//! The bodies hold our ids and what was done; the EPS adapter builds the FHIR message from them
//! and the released original (kept sealed as a document, named on the prescription's
//! `prescription.received` event, or by a [`RELEASED_EVENT`] when a release matched an earlier
//! record) at delivery, and keeps the message it sent with the answer. A return of a
//! prescription EPS never released to us (a paper NHS prescription) is answered by the adapter
//! as not applicable and kept for the record; the other messages exist only for electronic
//! prescriptions and wait, retried, until the release attaches the original.

use crate::crypto::PatientVault;
use crate::events::NewEvent;
use crate::outbox::{Body, NewMessage, new_message_id};
use crate::payments::{Change, PaymentStatus};
use crate::ports::{Mode, PrescriptionRecord, Store, StoreError};
use jiff::Timestamp;
use jiff::civil::Date;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::{AuthorityKind, Prescription, PrescriptionType};
use rxbridge_domain::pricing::QuoteKind;
use serde_json::{Value, json};

pub const NOTIFY: &str = "eps.dispense_notification";
pub const RETURN: &str = "eps.return";
pub const WITHDRAW: &str = "eps.withdraw";
pub const CLAIM: &str = "eps.claim";

/// The event a release writes on an earlier record it matches (a prescription it records
/// carries the same detail as `eps_released` on its `prescription.received` event): the sealed
/// original (`document.id`), the release (`release_id`) and the short-form id.
pub const RELEASED_EVENT: &str = "eps.released";
/// The event the adapter writes for every message it sent, with the answer's status and the
/// document that keeps the message and the answer (sealed).
pub const SENT_EVENT: &str = "eps.sent";
/// The event a released prescription that could not be recorded gets (subject
/// `eps:{short-form id}`), with the codes of why and the return sent.
pub const RETURNED_UNRECORDED_EVENT: &str = "eps.returned_unrecorded";

/// The destination of EPS messages in `mode` (the sandbox's go to the configured stand-in).
pub fn destination(mode: Mode) -> String {
    format!("eps:{}", mode.as_str())
}

/// Whether `d` is an EPS destination.
pub fn is_destination(d: &str) -> bool {
    matches!(d, "eps:test" | "eps:live")
}

/// Whether the prescription is an NHS electronic prescription (the ones EPS can release).
pub fn is_electronic(rx: &Prescription) -> bool {
    rx.kind == PrescriptionType::Nhs
        && rx.authority.kind == AuthorityKind::Eps
        && rx.authority.eps_prescription_id.is_some()
}

fn message(rec: &PrescriptionRecord, event_type: &str, at: Timestamp) -> NewMessage {
    NewMessage {
        id: new_message_id(),
        destination: destination(rec.mode),
        event_type: event_type.into(),
        subject: rec.id.clone(),
        payload: Body::Clear(Value::Null),
        created_at: at,
    }
}

fn sealed(vault: &PatientVault, mut m: NewMessage, payload: Value) -> NewMessage {
    m.payload = crate::outbox::sealed::seal_body(vault, &m, &payload);
    m
}

/// The dispense notification of an electronic prescription the warehouse dispatched: every
/// item supplied in full (the warehouse ships the prescribed quantity).
pub fn notification(
    vault: &PatientVault,
    rec: &PrescriptionRecord,
    rx: &Prescription,
    at: Timestamp,
) -> Option<NewMessage> {
    if !is_electronic(rx) {
        return None;
    }
    let items: Vec<Value> = rx
        .items
        .iter()
        .map(|i| json!({ "product_code": i.product_code, "quantity": i.quantity.get() }))
        .collect();
    Some(sealed(
        vault,
        message(rec, NOTIFY, at),
        json!({
            "prescription_id": rec.id,
            "eps_prescription_id": rx.authority.eps_prescription_id,
            "handed_over": at.to_string(),
            "items": items,
        }),
    ))
}

/// The return of an NHS prescription that will not be dispensed here (`to` is cancelled,
/// rejected or expired). The body carries only ids and the coded reason.
pub fn return_for(rec: &PrescriptionRecord, to: Status, at: Timestamp) -> Option<NewMessage> {
    if rec.kind != PrescriptionType::Nhs {
        return None;
    }
    let reason = match to {
        Status::Cancelled => "cancelled",
        Status::Rejected => "rejected",
        Status::Expired => "expired",
        _ => return None,
    };
    let mut m = message(rec, RETURN, at);
    m.payload =
        Body::Clear(json!({ "prescription_id": rec.id, "reason": reason, "at": at.to_string() }));
    Some(m)
}

/// The withdraw of an electronic prescription's notification when its parcel came back.
/// The warehouse's free-text reason stays out of it: the reason sent is coded.
pub fn withdraw(rec: &PrescriptionRecord, rx: &Prescription, at: Timestamp) -> Option<NewMessage> {
    if !is_electronic(rx) {
        return None;
    }
    let mut m = message(rec, WITHDRAW, at);
    m.payload = Body::Clear(
        json!({ "prescription_id": rec.id, "reason": "returned_undelivered", "at": at.to_string() }),
    );
    Some(m)
}

/// What [`queue_claims`] did (runs over several months add up with `+=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClaimRun {
    pub queued: u32,
    pub already_queued: u32,
    /// NHS prescriptions of the month that are not EPS releases (claimed on paper).
    pub not_electronic: u32,
    /// Dispatched, but the parcel came back: not dispensed, not claimed.
    pub returned: u32,
}

impl std::ops::AddAssign for ClaimRun {
    fn add_assign(&mut self, other: ClaimRun) {
        self.queued += other.queued;
        self.already_queued += other.already_queued;
        self.not_electronic += other.not_electronic;
        self.returned += other.returned;
    }
}

/// Queue the claim of every electronic prescription dispensed from an NHS charge dated in
/// `first..=last` in `mode` (dispatched or delivered, and not come back): one `CLAIM` message
/// per prescription, once — a second run finds each already queued (the `eps-claim` mark)
/// and writes nothing.
pub async fn queue_claims(
    store: &dyn Store,
    vault: &PatientVault,
    mode: Mode,
    (first, last): (Date, Date),
    now: Timestamp,
) -> Result<ClaimRun, StoreError> {
    let mut run = ClaimRun::default();
    for (p, rec) in store.payments_charged_between(mode, first, last).await? {
        let nhs = matches!(p.quote.kind, QuoteKind::NhsCharge | QuoteKind::NhsExempt);
        let settled = matches!(p.status, PaymentStatus::Paid | PaymentStatus::NotDue);
        if !nhs || !settled || !matches!(rec.status, Status::Dispatched | Status::Delivered) {
            continue;
        }
        let rx = vault
            .open_prescription(&rec)
            .map_err(StoreError::Unexpected)?;
        if !is_electronic(&rx) {
            run.not_electronic += 1;
            continue;
        }
        let timeline = store.timeline(&rec.id).await?;
        if timeline
            .iter()
            .any(|e| e.event.kind == "fulfilment.returned")
        {
            run.returned += 1;
            continue;
        }
        let charges_paid = u8::from(p.quote.kind == QuoteKind::NhsCharge);
        let items: Vec<Value> = p
            .quote
            .lines
            .iter()
            .map(|l| json!({ "product_code": l.product_code, "quantity": l.quantity, "charges_paid": charges_paid }))
            .collect();
        let m = sealed(
            vault,
            message(&rec, CLAIM, now),
            json!({
                "prescription_id": rec.id,
                "eps_prescription_id": rx.authority.eps_prescription_id,
                "month": first.strftime("%Y-%m").to_string(),
                "exemption": p.quote.exemption,
                "evidence_seen": p.quote.evidence_seen.unwrap_or(false),
                "items": items,
            }),
        );
        let change = Change {
            dedupe: Some(("eps-claim".into(), rec.id.clone())),
            events: vec![NewEvent {
                at: now,
                kind: "eps.claim_queued".into(),
                actor: "system:eps".into(),
                subject: rec.id.clone(),
                detail: json!({ "message_id": m.id, "month": first.strftime("%Y-%m").to_string() }),
            }],
            outbox: vec![m],
            ..Change::default()
        };
        match store.commit(change).await {
            Ok(_) => run.queued += 1,
            Err(StoreError::Duplicate) => run.already_queued += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(run)
}
