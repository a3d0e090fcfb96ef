//! The pharmacist's clinical check: approve, query the prescriber, or reject — each with a
//! reason, each an event. Approving a prescription with flags requires acknowledging every
//! flag code. Two pharmacists cannot decide the same prescription: the decision carries the
//! version the pharmacist looked at, and the store refuses it if the record has moved on.
//!
//! Only a `Pharmacist` can call these; the staff portal constructs one from a
//! signed-in account with the pharmacist role and a GPhC number.

mod declare;

pub use declare::{DeclareError, Declared};

use crate::clock::Clock;
use crate::crypto::PatientVault;
use crate::events::NewEvent;
use crate::payments::{Change, LinkMessage, PaymentRecord, PaymentStatus, PaymentWrite, Payments};
use crate::ports::{Mode, PrescriptionRecord, Store, StoreError};
use rxbridge_domain::compliance::{self, Finding, Severity};
use rxbridge_domain::ids::GphcNumber;
use rxbridge_domain::lifecycle::{PaymentDue, Status};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A signed-in pharmacist: the only caller allowed to make clinical decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pharmacist {
    pub staff_id: String,
    pub gphc: GphcNumber,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Approve, acknowledging every flag on the prescription, each by its key (`Finding::key`:
    /// `code`, or `code.N` for item N; a bare code acknowledges a flag only when no other
    /// flag has that code), with the pharmacist's amendment for each flag that needs one.
    Approve {
        acknowledged_flags: Vec<String>,
        amendments: Vec<Amendment>,
    },
    QueryPrescriber,
    Reject,
}

/// What a pharmacist added to a prescription under MDR 2001 reg 16(1A)-(1B): the quantity in
/// words or in figures where only one was given, or a minor spelling mistake corrected. The
/// amendment is recorded, attributable (who, when, GPhC number), on the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Amendment {
    /// The finding it answers (`cd_quantity_words_missing`, …).
    pub flag: String,
    /// The item the finding concerns.
    pub item: Option<usize>,
    /// What the pharmacist added, as written.
    pub text: String,
}

/// Findings the pharmacist may clear only by amending the prescription.
pub const AMENDABLE: [&str; 3] = [
    compliance::CD_QUANTITY_WORDS_MISSING,
    compliance::CD_QUANTITY_FIGURES_MISSING,
    compliance::CD_QUANTITY_WORDS_MISSPELT,
];

/// The form field of an amendment in the portal (`amend.<flag>.<item>`).
pub fn amendment_key(flag: &str, item: Option<usize>) -> String {
    match item {
        Some(i) => format!("amend.{flag}.{i}"),
        None => format!("amend.{flag}"),
    }
}

/// Check that `a` states the quantity of the item (words that read as it, or its figures).
fn amendment_problem(a: &Amendment, quantity: Option<u32>) -> Option<String> {
    let text = a.text.trim();
    let item = a
        .item
        .map(|i| format!(" (item {})", i + 1))
        .unwrap_or_default();
    if text.is_empty() || text.chars().count() > 200 {
        return Some(format!(
            "record what you added for {}{item} (1 to 200 characters)",
            a.flag
        ));
    }
    let q = quantity?;
    let states = if a.flag == compliance::CD_QUANTITY_FIGURES_MISSING {
        text.parse::<u32>().ok()
    } else {
        rxbridge_domain::quantity::parse_quantity_words(text).ok()
    };
    (states != Some(q)).then(|| {
        format!(
            "the amendment \"{text}\" for {}{item} must state the quantity {q} ({})",
            a.flag,
            rxbridge_domain::quantity::to_words(q)
        )
    })
}

#[derive(Debug, thiserror::Error)]
pub enum DecisionError {
    #[error("no such prescription")]
    NotFound,
    #[error("a reason is required (1 to 1000 characters)")]
    ReasonRequired,
    #[error("acknowledge every flag before approving; not acknowledged: {}", .0.join(", "))]
    FlagsNotAcknowledged(Vec<String>),
    /// An amendable flag without a valid amendment (MDR 2001 reg 16(1A)-(1B)).
    #[error("{}", .0.join("; "))]
    AmendmentRequired(Vec<String>),
    #[error("{0}")]
    Illegal(String),
    /// An NHS prescription whose charge exemption the patient has not declared yet: approval
    /// fixes the charge, so the declaration comes first.
    #[error(
        "record the patient's NHS charge exemption declaration first: until then the charge is not yet known"
    )]
    ExemptionToBeDeclared,
    /// Someone else decided (or the record changed) since this pharmacist looked at it.
    #[error("another pharmacist has already decided this prescription (it is now {0}); reload it")]
    AlreadyDecided(Status),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct ClinicalCheck {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Opens the sealed document (the NHS exemption lives there).
    vault: PatientVault,
    /// Prices an approved prescription and sends the payment link.
    payments: Arc<Payments>,
}

impl ClinicalCheck {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        vault: PatientVault,
        payments: Arc<Payments>,
    ) -> Self {
        Self {
            store,
            clock,
            vault,
            payments,
        }
    }

    /// Decide on `id` (in `mode`, whichever clinic sent it) as seen at `seen_version`.
    pub async fn decide(
        &self,
        who: &Pharmacist,
        mode: Mode,
        id: &str,
        seen_version: i64,
        decision: Decision,
        reason: &str,
    ) -> Result<PrescriptionRecord, DecisionError> {
        let rec = self
            .store
            .get_prescription_for_staff(mode, id)
            .await?
            .ok_or(DecisionError::NotFound)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.chars().count() > 1000 {
            return Err(DecisionError::ReasonRequired);
        }
        if rec.version != seen_version {
            return Err(DecisionError::AlreadyDecided(rec.status));
        }
        let mut payment: Option<PaymentRecord> = None;
        let (to, kind, detail) = match &decision {
            Decision::Approve {
                acknowledged_flags,
                amendments,
            } => {
                let (flags, missing) = unacknowledged(&rec.findings, acknowledged_flags);
                if !missing.is_empty() {
                    return Err(DecisionError::FlagsNotAcknowledged(missing));
                }
                let problems: Vec<String> = rec
                    .findings
                    .iter()
                    .filter(|f| AMENDABLE.contains(&f.code.as_str()))
                    .filter_map(|f| {
                        let quantity = f.item.and_then(|i| rec.items.get(i)).map(|i| i.quantity);
                        match amendments
                            .iter()
                            .find(|a| a.flag == f.code && a.item == f.item)
                        {
                            Some(a) => amendment_problem(a, quantity),
                            None => amendment_problem(
                                &Amendment {
                                    flag: f.code.clone(),
                                    item: f.item,
                                    text: String::new(),
                                },
                                quantity,
                            ),
                        }
                    })
                    .collect();
                if !problems.is_empty() {
                    return Err(DecisionError::AmendmentRequired(problems));
                }
                if rec.exemption_to_be_declared() {
                    return Err(DecisionError::ExemptionToBeDeclared);
                }
                let rx = self
                    .vault
                    .open_prescription(&rec)
                    .map_err(|e| DecisionError::Store(StoreError::Unexpected(e)))?;
                let planned = self
                    .payments
                    .plan(&rec, &rx)
                    .map_err(|e| DecisionError::Illegal(format!("cannot price it: {e}")))?;
                let due = if planned.status == PaymentStatus::AwaitingPayment {
                    PaymentDue::Yes
                } else {
                    PaymentDue::No
                };
                payment = Some(planned);
                let to = rec
                    .status
                    .approve(due)
                    .map_err(|e| DecisionError::Illegal(e.to_string()))?;
                let amended: Vec<serde_json::Value> = rec
                    .findings
                    .iter()
                    .filter(|f| AMENDABLE.contains(&f.code.as_str()))
                    .filter_map(|f| amendments.iter().find(|a| a.flag == f.code && a.item == f.item))
                    .map(|a| serde_json::json!({ "flag": a.flag, "item": a.item, "added": a.text.trim() }))
                    .collect();
                (
                    to,
                    "prescription.approved",
                    serde_json::json!({ "acknowledged_flags": flags.codes, "acknowledged": flags.keys, "reason": reason, "amendments": amended }),
                )
            }
            Decision::QueryPrescriber => {
                let to = rec
                    .status
                    .query_prescriber()
                    .map_err(|e| DecisionError::Illegal(e.to_string()))?;
                (
                    to,
                    "prescription.queried",
                    serde_json::json!({ "question": reason }),
                )
            }
            Decision::Reject => {
                let to = rec
                    .status
                    .reject()
                    .map_err(|e| DecisionError::Illegal(e.to_string()))?;
                (
                    to,
                    "prescription.rejected_by_pharmacist",
                    serde_json::json!({ "reason": reason }),
                )
            }
        };
        let mut detail = detail;
        detail["from"] = rec.status.as_str().into();
        detail["gphc"] = who.gphc.as_str().into();
        let event = NewEvent {
            at: self.clock.now(),
            kind: kind.into(),
            actor: format!("staff:{}", who.staff_id),
            subject: id.to_string(),
            detail,
        };
        let actor = event.actor.clone();
        // Each amendment is its own entry on the timeline: who, when, what was added.
        let mut events: Vec<NewEvent> = event
            .detail
            .get("amendments")
            .and_then(|a| a.as_array())
            .into_iter()
            .flatten()
            .map(|a| NewEvent {
                at: event.at,
                kind: "prescription.amended".into(),
                actor: actor.clone(),
                subject: id.to_string(),
                detail: serde_json::json!({
                    "flag": a["flag"],
                    "item": a["item"],
                    "added": a["added"],
                    "gphc": who.gphc.as_str(),
                    "rule": "MDR 2001 reg 16(1A)-(1B)",
                }),
            })
            .collect();
        events.insert(0, event);
        if let Some(p) = &payment {
            events.push(self.payments.planned_event(p, &actor));
        }
        let mut change = Change::move_to(&rec, to, events);
        change.payment = payment.clone().map(PaymentWrite::Insert);
        match self.store.commit(change).await {
            Ok(Some(r)) => {
                if let Some(p) = payment.filter(|p| p.status == PaymentStatus::AwaitingPayment)
                    && let Err(e) = self
                        .payments
                        .send_link(&p.id, LinkMessage::First, "system")
                        .await
                {
                    // The approval stands; the sweep sends the link when it can.
                    tracing::warn!(payment = %p.id, error = %e, "sending the payment link failed; the sweep will retry");
                }
                Ok(r)
            }
            Ok(None) => Err(DecisionError::NotFound),
            Err(StoreError::Conflict) => {
                let now = self
                    .store
                    .get_prescription_for_staff(mode, id)
                    .await?
                    .map(|r| r.status)
                    .unwrap_or(rec.status);
                Err(DecisionError::AlreadyDecided(now))
            }
            Err(StoreError::NotFound) => Err(DecisionError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}

/// The flags acknowledged, by code and by key (for the decision's event).
struct Acknowledged {
    codes: BTreeSet<String>,
    keys: Vec<String>,
}

/// Every flag among `findings` against what the pharmacist acknowledged: the flags, and those
/// not acknowledged, in words (the code; `code (item N)`, counted from 1, when the code is on
/// more than one item). A flag is acknowledged by its key, or by its bare code when
/// it is the only flag with that code (so a flag on each of two items needs two ticks).
fn unacknowledged(findings: &[Finding], acknowledged: &[String]) -> (Acknowledged, Vec<String>) {
    let flags: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.severity == Severity::Flag)
        .collect();
    let given = |k: &str| acknowledged.iter().any(|a| a == k);
    let alone = |code: &str| flags.iter().filter(|g| g.code == code).count() == 1;
    let missing = flags
        .iter()
        .filter(|f| !(given(&f.key()) || (alone(&f.code) && given(&f.code))))
        .map(|f| match f.item {
            Some(i) if !alone(&f.code) => format!("{} (item {})", f.code, i + 1),
            _ => f.code.clone(),
        })
        .collect();
    let done = Acknowledged {
        codes: flags.iter().map(|f| f.code.clone()).collect(),
        keys: flags.iter().map(|f| f.key()).collect(),
    };
    (done, missing)
}
