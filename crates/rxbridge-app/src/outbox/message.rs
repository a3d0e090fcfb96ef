//! Outbox messages and endpoints, the store port that keeps them, and the destinations and
//! status messages a state change writes.

use crate::ports::{Mode, PrescriptionRecord, StoreError};
use async_trait::async_trait;
use jiff::Timestamp;
use rxbridge_domain::lifecycle::Status;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A message body as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Body {
    /// AES-256-GCM under the patient vault, bound to the message (see [`seal_context`](super::sealed::seal_context)).
    Sealed { sealed: Vec<u8> },
    /// A notice with no patient data. (Also how bodies written before sealing was introduced
    /// read, until [`seal_stored_bodies`](super::sealed::seal_stored_bodies) has sealed them.)
    Clear(Value),
}

impl Body {
    pub fn is_sealed(&self) -> bool {
        matches!(self, Body::Sealed { .. })
    }

    /// The clear JSON of a notice; `None` for a sealed body (open it with [`open_body`](super::sealed::open_body)).
    pub fn clear(&self) -> Option<&Value> {
        match self {
            Body::Clear(v) => Some(v),
            Body::Sealed { .. } => None,
        }
    }
}

/// A message to write with a state change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// `msg_…`: also the `webhook-id` the receiver de-duplicates by.
    pub id: String,
    pub destination: String,
    /// `prescription.status_changed`, `fulfilment.requested`, `fulfilment.cancelled`.
    pub event_type: String,
    /// The prescription it concerns (ordering key).
    pub subject: String,
    /// Sealed when it carries patient data (`super::sealed`).
    pub payload: Body,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    Pending,
    Delivered,
    /// Every attempt failed: on the dead-letter list until replayed.
    Dead,
    /// The destination has no enabled endpoint; kept for the record.
    NoEndpoint,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Pending => "pending",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Dead => "dead",
            MessageStatus::NoEndpoint => "no_endpoint",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Dead, Self::NoEndpoint]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxMessage {
    pub seq: i64,
    pub message: NewMessage,
    pub status: MessageStatus,
    pub attempts: u32,
    pub next_attempt_at: Timestamp,
    pub last_error: Option<String>,
    pub delivered_at: Option<Timestamp>,
    /// The event that wrote this message (`crate::state`).
    #[serde(default)]
    pub event_seq: i64,
}

/// One delivery attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub message_id: String,
    pub n: u32,
    pub at: Timestamp,
    pub endpoint_id: Option<String>,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: u64,
}

/// A receiver of webhooks. Secrets are sealed at rest (the store holds them opaque).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// `ep_…`
    pub id: String,
    pub destination: String,
    pub url: String,
    /// Sealed JSON list of `whsec_…` secrets, newest first (two while one is rolled).
    pub sealed_secrets: Vec<u8>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: Timestamp,
}

/// What the outbox needs from the store (implemented by every store adapter).
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Lease up to `limit` due messages (pending, `next_attempt_at <= now`, no earlier pending
    /// message for the same destination and subject, not leased) until `lease_until`.
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Record an attempt and the message's new state (clears the lease).
    async fn record_attempt(
        &self,
        message: &OutboxMessage,
        attempt: Option<Attempt>,
    ) -> Result<(), StoreError>;
    async fn messages(
        &self,
        status: MessageStatus,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    async fn message(&self, id: &str) -> Result<Option<OutboxMessage>, StoreError>;
    async fn attempts(&self, message_id: &str) -> Result<Vec<Attempt>, StoreError>;
    /// Dead messages (`ids`, or all when `None`) back to pending, due `now`. Returns how many.
    async fn replay(&self, ids: Option<Vec<String>>, now: Timestamp) -> Result<u64, StoreError>;
    /// (pending count, oldest pending `created_at`, dead count).
    async fn outbox_stats(&self) -> Result<(u64, Option<Timestamp>, u64), StoreError>;
    async fn put_endpoint(&self, endpoint: Endpoint) -> Result<(), StoreError>;
    async fn endpoint_for(&self, destination: &str) -> Result<Option<Endpoint>, StoreError>;
    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError>;
    /// Messages of a type to a destination created in `from..to` (the ERP file export).
    async fn messages_between(
        &self,
        event_type: &str,
        destination: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Up to `limit` messages of `event_type` to `destination` whose body is still clear
    /// (written before bodies were sealed), oldest first.
    async fn unsealed(
        &self,
        event_type: &str,
        destination: &str,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError>;
    /// Replace message `id`'s clear body by `sealed` (nothing else changes).
    async fn seal_body(&self, id: &str, sealed: Vec<u8>) -> Result<(), StoreError>;
}

// ----- destinations and messages --------------------------------------------------------------

pub fn clinic_destination(clinic_id: &str, mode: Mode) -> String {
    format!("clinic:{clinic_id}:{}", mode.as_str())
}

/// Why a destination is refused, or `Ok` with the clinic it names (if any). The destination
/// grammar is `warehouse:{mode}` or `clinic:{clinic id}:{mode}` (`eps:{mode}` is delivered by
/// the EPS adapter, never to a webhook endpoint).
pub fn parse_destination(d: &str) -> Result<Option<&str>, &'static str> {
    let parts: Vec<&str> = d.split(':').collect();
    match parts.as_slice() {
        ["warehouse", "test" | "live"] => Ok(None),
        ["clinic", id, "test" | "live"] if !id.is_empty() => Ok(Some(id)),
        _ => {
            Err("a destination is warehouse:test, warehouse:live or clinic:<clinic id>:<test|live>")
        }
    }
}

pub fn warehouse_destination(mode: Mode) -> String {
    format!("warehouse:{}", mode.as_str())
}

pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// The thin status message to the prescription's clinic: the clinic fetches the details.
pub fn status_changed(rec: &PrescriptionRecord, to: Status, at: Timestamp) -> NewMessage {
    NewMessage {
        id: new_message_id(),
        destination: clinic_destination(&rec.clinic_id, rec.mode),
        event_type: "prescription.status_changed".into(),
        subject: rec.id.clone(),
        payload: Body::Clear(serde_json::json!({
            "type": "prescription.status_changed",
            "timestamp": at.to_string(),
            "data": { "id": rec.id, "clinic_reference": rec.clinic_reference, "status": to.as_str() },
        })),
        created_at: at,
    }
}

/// The messages a status change sends: always the clinic's; the warehouse's cancellation when
/// an order it holds will not ship; EPS's return when an NHS prescription will not be
/// dispensed here (`crate::eps`).
pub fn messages_for(rec: &PrescriptionRecord, to: Status, at: Timestamp) -> Vec<NewMessage> {
    let mut out = vec![status_changed(rec, to, at)];
    out.extend(crate::eps::return_for(rec, to, at));
    if rec.status == Status::WithWarehouse && matches!(to, Status::Cancelled | Status::Expired) {
        out.push(NewMessage {
            id: new_message_id(),
            destination: warehouse_destination(rec.mode),
            event_type: "fulfilment.cancelled".into(),
            subject: rec.id.clone(),
            payload: Body::Clear(serde_json::json!({
                "type": "fulfilment.cancelled",
                "timestamp": at.to_string(),
                "data": { "order_id": rec.id, "reason": to.as_str() },
            })),
            created_at: at,
        });
    }
    out
}
