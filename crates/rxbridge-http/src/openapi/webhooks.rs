//! The messages rxbridge sends (OpenAPI 3.1 `webhooks`) and the shapes of the events it
//! receives from the warehouse and the payment provider. The outbox builds its payloads as JSON
//! (`rxbridge_app::outbox`, `rxbridge_app::fulfilment`); these types describe them for the
//! document only, and `tests/openapi_webhooks.rs` compares them with real messages.
//!
//! Every outgoing message is a Standard Webhook (<https://www.standardwebhooks.com>): headers
//! `webhook-id`, `webhook-timestamp`, `webhook-signature`, HMAC-SHA256 over
//! `{id}.{timestamp}.{body}` with the endpoint's `whsec_…` secret.

#![allow(dead_code)] // the fields exist for the schema

use serde_json::{Value, json};
use utoipa::ToSchema;

/// `prescription.status_changed`: sent to the prescription's clinic on every status change
/// after intake. Thin on purpose: fetch the details with `GET /v1/prescriptions/{id}`.
#[derive(ToSchema)]
#[schema(example = json!({"type": "prescription.status_changed", "timestamp": "2026-11-27T10:15:00Z",
    "data": {"id": "rx_0192f0c2a1b27d3e8f00112233445566", "clinic_reference": "ADHD-2026-000123", "status": "dispatched"}}))]
pub struct PrescriptionStatusChangedEvent {
    #[schema(value_type = String, pattern = "^prescription\\.status_changed$")]
    pub r#type: String,
    /// When the change happened (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: PrescriptionStatusChangedData,
}

#[derive(ToSchema)]
pub struct PrescriptionStatusChangedData {
    /// The prescription id.
    pub id: String,
    pub clinic_reference: String,
    /// The new status.
    #[schema(value_type = crate::openapi::views::PrescriptionStatus)]
    pub status: String,
}

/// `fulfilment.requested`: the order the warehouse is to pick, pack and ship (sent when a
/// prescription is released to it).
#[derive(ToSchema)]
pub struct FulfilmentRequestedEvent {
    #[schema(value_type = String, pattern = "^fulfilment\\.requested$")]
    pub r#type: String,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: FulfilmentOrder,
}

#[derive(ToSchema)]
pub struct FulfilmentOrder {
    /// The prescription id; the warehouse names it in its events.
    pub order_id: String,
    #[schema(value_type = Mode)]
    pub mode: String,
    #[schema(example = "tracked_signed")]
    pub service: String,
    /// A Schedule 2–4 controlled drug is in the parcel.
    pub controlled_drug: bool,
    pub signature_required: bool,
    /// Check the recipient's identity on delivery (controlled drugs).
    pub id_check_on_delivery: bool,
    pub lines: Vec<FulfilmentLine>,
    pub deliver_to: DeliverTo,
}

#[derive(ToSchema)]
pub struct FulfilmentLine {
    /// 1-based line number.
    pub line: u32,
    /// The warehouse's SKU (the product code when none is configured).
    pub sku: String,
    pub product_code: String,
    pub description: String,
    pub quantity: u32,
    /// The product's schedule under the Misuse of Drugs Regulations 2001, or `POM`.
    #[schema(example = "CD2")]
    pub schedule: String,
    pub controlled_drug: bool,
}

#[derive(ToSchema)]
pub struct DeliverTo {
    pub name: String,
    pub address_lines: Vec<String>,
    pub town: String,
    pub postcode: String,
    pub country: Option<String>,
    pub phone: Option<String>,
}

/// `fulfilment.cancelled`: an order the warehouse holds will not ship (cancelled or expired).
#[derive(ToSchema)]
pub struct FulfilmentCancelledEvent {
    #[schema(value_type = String, pattern = "^fulfilment\\.cancelled$")]
    pub r#type: String,
    #[schema(format = DateTime)]
    pub timestamp: String,
    pub data: FulfilmentCancelledData,
}

#[derive(ToSchema)]
pub struct FulfilmentCancelledData {
    pub order_id: String,
    #[schema(value_type = CancelReason)]
    pub reason: String,
}

/// Why an order is called off: the clinic cancelled it, or it was not dispatched within the
/// prescription's validity.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    Cancelled,
    Expired,
}

/// Test (sandbox) or live: which endpoint and which stock a message concerns.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Test,
    Live,
}

/// An event the warehouse sends to `POST /v1/warehouse/events`.
#[derive(ToSchema)]
#[schema(example = json!({"type": "dispatched", "data": {"order_id": "rx_0192f0c2a1b27d3e8f00112233445566", "carrier": "Royal Mail", "tracking_number": "AB123456789GB"}}))]
pub struct WarehouseEvent {
    /// `stock_received`, `picked`, `dispatched`, `delivered`, `delivery_failed` or `returned`.
    #[schema(value_type = WarehouseEventType)]
    pub r#type: String,
    /// For order events `order_id` and, per type: `dispatched` — `carrier`, `tracking_number`;
    /// `delivered` — `received_by`, optional `recipient`, `id_checked`; `delivery_failed` and
    /// `returned` — `reason`. For `stock_received`: `product_code`, `quantity`, `supplier`,
    /// `invoice_ref`, optional `supplier_address`, `mode`.
    #[schema(value_type = Object)]
    pub data: Value,
}

#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WarehouseEventType {
    StockReceived,
    Picked,
    Dispatched,
    Delivered,
    DeliveryFailed,
    Returned,
}

/// What rxbridge answers a received event with (warehouse or payment provider).
#[derive(ToSchema)]
pub struct EventReceived {
    pub received: bool,
    #[schema(value_type = EventOutcome)]
    pub outcome: String,
    pub detail: String,
}

/// `applied`; `duplicate` (this event id was processed before: nothing done twice); `ignored`
/// (an event type that needs nothing).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    Applied,
    Duplicate,
    Ignored,
}

/// A Stripe event (`checkout.session.completed`, `checkout.session.async_payment_succeeded`,
/// `checkout.session.async_payment_failed`, `checkout.session.expired`, `charge.refunded`; any
/// other type is acknowledged and ignored).
#[derive(ToSchema)]
pub struct StripeEvent {
    #[schema(example = "evt_1QkX2bL")]
    pub id: String,
    #[schema(example = "checkout.session.completed")]
    pub r#type: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

/// The Standard Webhooks headers every message carries.
fn signature_headers() -> Value {
    json!([
        { "name": "webhook-id", "in": "header", "required": true,
          "description": "The message id (`msg_…`): the same on every retry; de-duplicate by it.",
          "schema": { "type": "string", "example": "msg_0192f0c2a1b27d3e8f00112233445566" } },
        { "name": "webhook-timestamp", "in": "header", "required": true,
          "description": "Unix seconds when this attempt was signed; refuse it more than five minutes away from now.",
          "schema": { "type": "string", "pattern": "^[0-9]+$", "example": "1764238500" } },
        { "name": "webhook-signature", "in": "header", "required": true,
          "description": "`v1,<base64 HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{raw body}`, keyed with the base64-decoded part of the endpoint's `whsec_…` secret; two, space-separated, while a secret is being rotated.",
          "schema": { "type": "string", "example": "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=" } }
    ])
}

fn webhook(operation_id: &str, summary: &str, description: &str, schema: &str) -> Value {
    json!({ "post": {
        "operationId": operation_id,
        "tags": ["webhooks"],
        "summary": summary,
        "description": description,
        "security": [],
        "parameters": signature_headers(),
        "requestBody": { "required": true, "content": { "application/json": {
            "schema": { "$ref": format!("#/components/schemas/{schema}") } } } },
        "responses": {
            "2XX": { "description": "Received: any 2xx ends the message." },
            "410": { "description": "Gone: rxbridge disables the endpoint and sends it nothing more." },
            "429": { "description": "Too many requests: retried after `Retry-After` seconds (or the back-off)." },
            "5XX": { "description": "Retried with back-off (5 s … 24 h, about three days in all), then dead-lettered." }
        }
    }})
}

/// The OpenAPI 3.1 `webhooks` map: one entry per message the outbox sends.
pub fn webhooks() -> Value {
    json!({
        "prescription.status_changed": webhook(
            "prescriptionStatusChanged",
            "A prescription's status changed",
            "Sent to the clinic's endpoint (`clinic:{clinic id}:{mode}`) on every status change after intake, in order per prescription, at least once.",
            "PrescriptionStatusChangedEvent"),
        "fulfilment.requested": webhook(
            "fulfilmentRequested",
            "An order for the warehouse",
            "Sent to the warehouse (`warehouse:{mode}`) when a prescription is released for fulfilment. The body names the patient and the delivery address: rxbridge stores it sealed.",
            "FulfilmentRequestedEvent"),
        "fulfilment.cancelled": webhook(
            "fulfilmentCancelled",
            "An order the warehouse holds will not ship",
            "Sent to the warehouse when an order it holds is cancelled or expires.",
            "FulfilmentCancelledEvent"),
    })
}
