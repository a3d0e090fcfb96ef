//! What the clinic API answers about a prescription, as typed values the HTTP adapter
//! serialises (its OpenAPI schemas mirror them). Built here because the 201 answer is stored
//! with the idempotency key in the same transaction as the prescription, so a replay answers
//! exactly what the first request was answered.

use crate::events::EventRecord;
use crate::ports::{ItemSummary, PrescriptionRecord};
use rxbridge_domain::compliance::Finding;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FindingView {
    /// Stable rule code, e.g. `cd_expired`.
    pub code: String,
    /// `block` (the law forbids supply), `flag` (a pharmacist decides) or `info`.
    pub severity: String,
    /// Index of the item concerned, or null for the whole prescription.
    pub item: Option<usize>,
    pub message: String,
    /// The regulation or guidance the rule comes from.
    pub rule: String,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> Self {
        Self {
            code: f.code.clone(),
            severity: f.severity.as_str().to_string(),
            item: f.item,
            message: f.message.clone(),
            rule: f.rule.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ItemView {
    pub product_code: String,
    pub active_ingredient: String,
    pub quantity: u32,
    pub days_supply: u32,
}

impl From<&ItemSummary> for ItemView {
    fn from(i: &ItemSummary) -> Self {
        Self {
            product_code: i.product_code.clone(),
            active_ingredient: i.active_ingredient.clone(),
            quantity: i.quantity,
            days_supply: i.days_supply,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_: String,
    /// Present only while a cancel would take effect (until dispatch, and not once cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TimelineEntry {
    pub at: String,
    pub event: String,
    pub actor: String,
    pub detail: serde_json::Value,
}

impl From<&EventRecord> for TimelineEntry {
    fn from(e: &EventRecord) -> Self {
        Self {
            at: e.event.at.to_string(),
            event: e.event.kind.clone(),
            actor: e.event.actor.clone(),
            detail: e.event.detail.clone(),
        }
    }
}

/// A prescription as the clinic sees it. `timeline` is present on `GET /v1/prescriptions/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrescriptionView {
    pub id: String,
    pub status: String,
    pub clinic_reference: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub issued_on: String,
    pub items: Vec<ItemView>,
    pub findings: Vec<FindingView>,
    pub created_at: String,
    pub updated_at: String,
    pub links: Links,
    /// NHS prescriptions that did not carry the patient's charge exemption (an EPS message):
    /// `to_be_declared` until the patient declares it at the pharmacy, then `declared`. Absent
    /// otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nhs_exemption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntry>>,
}

impl PrescriptionView {
    pub fn from_record(r: &PrescriptionRecord, timeline: Option<&[EventRecord]>) -> Self {
        let base = format!("/v1/prescriptions/{}", r.id);
        Self {
            id: r.id.clone(),
            status: r.status.as_str().to_string(),
            clinic_reference: r.clinic_reference.clone(),
            kind: r.kind.as_str().to_string(),
            issued_on: r.issued_on.to_string(),
            items: r.items.iter().map(ItemView::from).collect(),
            findings: r.findings.iter().map(FindingView::from).collect(),
            created_at: r.created_at.to_string(),
            updated_at: r.updated_at.to_string(),
            links: Links {
                cancel: (r.status.cancel().is_ok()).then(|| format!("{base}/cancel")),
                self_: base,
            },
            nhs_exemption: r.nhs_exemption.as_ref().map(|e| e.as_str().to_string()),
            timeline: timeline.map(|t| t.iter().map(TimelineEntry::from).collect()),
        }
    }
}

/// The answer of the dry run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DryRunView {
    pub findings: Vec<FindingView>,
    pub would_be_status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrescriptionList {
    pub data: Vec<PrescriptionView>,
    pub next_cursor: Option<String>,
}
