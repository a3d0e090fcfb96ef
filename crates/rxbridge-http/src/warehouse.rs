//! The warehouse over HTTP: `POST /v1/warehouse/events`, its Standard Webhooks deliveries
//! (docs/fulfilment.md). This module owns the event's wire format: the JSON is parsed here into
//! the typed [`WarehouseEvent`] the fulfilment use case applies, and its outcome is answered
//! here.

use crate::problem::{Problem, ProblemCode};
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rxbridge_app::Mode;
use rxbridge_app::fulfilment::{
    OrderEvent, Recipient, StockReceipt, WarehouseError, WarehouseEvent, WarehouseOutcome,
};
use serde_json::{Value, json};

pub fn warehouse_routes() -> Router<AppState> {
    Router::new().route("/v1/warehouse/events", post(warehouse_event))
}

/// The warehouse's events (Standard Webhooks): 200 applied or duplicate; 400 bad signature or
/// event; 404 unknown order; 409 an event the order's state does not allow; 503 retry later.
#[utoipa::path(
    post, path = "/v1/warehouse/events", tag = "warehouse", operation_id = "receiveWarehouseEvent",
    description = "For the warehouse, not for clinics. Authenticated by its Standard Webhooks signature (one of `warehouse.inbound_secrets`), not by an API key; a `webhook-id` seen before is acknowledged as `duplicate` and changes nothing.",
    params(
        ("webhook-id" = String, Header, description = "The event's unique id: the de-duplication key"),
        ("webhook-timestamp" = String, Header, description = "Unix seconds; refused more than five minutes away from now"),
        ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{raw body}` with a `whsec_…` inbound secret (space-separated while rotating)"),
    ),
    request_body(content = crate::openapi::webhooks::WarehouseEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "Applied, or a duplicate of an event already applied", body = crate::openapi::webhooks::EventReceived),
        (status = 400, description = "Missing, stale or wrong signature, or an event that is not understood", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "An event the order's state does not allow", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not recorded now: send it again later", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn warehouse_event(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let f = &state.fulfilment;
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let outcome = match f.verify_warehouse_delivery(
        &body,
        h("webhook-id"),
        h("webhook-timestamp"),
        h("webhook-signature"),
    ) {
        Ok(id) => match parse(&body) {
            Ok(event) => f.warehouse_event(&id, event).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(WarehouseOutcome::Applied(what)) => received("applied", what),
        Ok(WarehouseOutcome::Duplicate) => {
            received("duplicate", "this webhook-id was processed before")
        }
        Err(e) => refused(e),
    }
}

fn received(outcome: &str, detail: &str) -> Response {
    axum::Json(json!({ "received": true, "outcome": outcome, "detail": detail })).into_response()
}

fn refused(e: WarehouseError) -> Response {
    match e {
        WarehouseError::Signature(e) => {
            tracing::warn!(error = %e, "refused a warehouse event with a bad signature");
            Problem::new(ProblemCode::InvalidSignature, e.to_string())
        }
        WarehouseError::BadEvent(d) => Problem::new(ProblemCode::InvalidEvent, d),
        e @ WarehouseError::NoInboundSecret => {
            // 503: the warehouse retries, so nothing is lost once the secret is set.
            tracing::error!(error = %e, "refused a warehouse event");
            Problem::new(ProblemCode::Unavailable, e.to_string())
        }
        e @ WarehouseError::UnknownOrder(_) => {
            tracing::warn!(error = %e, "a warehouse event for an unknown order");
            Problem::new(ProblemCode::UnknownOrder, e.to_string())
        }
        WarehouseError::Illegal(d) => {
            tracing::warn!(detail = %d, "refused a warehouse event the order's state does not allow");
            Problem::new(ProblemCode::IllegalTransition, d)
        }
        WarehouseError::Store(e) => {
            tracing::error!(error = %e, "could not record a warehouse event; it will be retried");
            Problem::new(ProblemCode::Unavailable, "could not record the event now; retry later")
        }
    }
    .into_response()
}

/// Every event type the warehouse may send.
pub const EVENT_TYPES: [&str; 6] = [
    "picked",
    "dispatched",
    "delivered",
    "delivery_failed",
    "returned",
    "stock_received",
];

fn bad(detail: impl Into<String>) -> WarehouseError {
    WarehouseError::BadEvent(detail.into())
}

/// The event in a delivery's body: `{"type": …, "data": {…}}`.
fn parse(raw: &[u8]) -> Result<WarehouseEvent, WarehouseError> {
    let v: Value =
        serde_json::from_slice(raw).map_err(|e| bad(format!("the body is not JSON: {e}")))?;
    let kind = v["type"].as_str().ok_or_else(|| bad("type is required"))?;
    // The type is checked first: an event we do not know is answered as such, not with
    // whatever field the known kinds would have needed.
    if !EVENT_TYPES.contains(&kind) {
        return Err(bad(format!(
            "unknown event type {kind:?}: type must be one of {}",
            EVENT_TYPES.join(", ")
        )));
    }
    let d = &v["data"];
    if !d.is_object() {
        return Err(bad("data must be an object"));
    }
    if kind == "stock_received" {
        return stock_received(d).map(WarehouseEvent::StockReceived);
    }
    let order_id = d["order_id"]
        .as_str()
        .ok_or_else(|| bad("data.order_id is required"))?
        .to_string();
    let text = |k: &str| required_text(d, k);
    let event = match kind {
        "picked" => OrderEvent::Picked,
        "dispatched" => OrderEvent::Dispatched {
            carrier: text("carrier")?,
            tracking_number: text("tracking_number")?,
        },
        "delivered" => OrderEvent::Delivered {
            received_by: text("received_by")?,
            recipient: Recipient::parse(d["recipient"].as_str().unwrap_or("patient")).ok_or_else(
                || bad("data.recipient must be patient, representative or healthcare_professional"),
            )?,
            id_checked: d["id_checked"].as_bool(),
        },
        "delivery_failed" => OrderEvent::DeliveryFailed {
            reason: text("reason")?,
        },
        _ => OrderEvent::Returned {
            reason: text("reason")?,
        },
    };
    Ok(WarehouseEvent::Order { order_id, event })
}

fn stock_received(d: &Value) -> Result<StockReceipt, WarehouseError> {
    let text = |k: &str| required_text(d, k);
    Ok(StockReceipt {
        product_code: text("product_code")?,
        supplier: text("supplier")?,
        invoice_ref: text("invoice_ref")?,
        quantity: d["quantity"]
            .as_i64()
            .filter(|q| (1..=1_000_000).contains(q))
            .ok_or_else(|| bad("data.quantity must be a whole number 1 to 1000000"))?,
        mode: match d["mode"].as_str() {
            None | Some("live") => Mode::Live,
            Some("test") => Mode::Test,
            Some(_) => return Err(bad("data.mode must be live or test")),
        },
        supplier_address: d["supplier_address"].as_str().map(String::from),
    })
}

/// A required text field of an event's `data`, 1 to 200 characters.
fn required_text(d: &Value, k: &str) -> Result<String, WarehouseError> {
    d[k].as_str()
        .map(str::trim)
        .filter(|s| !s.is_empty() && s.len() <= 200)
        .map(String::from)
        .ok_or_else(|| bad(format!("data.{k} is required (1 to 200 characters)")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(v: Value) -> Result<WarehouseEvent, String> {
        parse(v.to_string().as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn events_parse_to_their_typed_form() {
        assert_eq!(
            parsed(
                json!({ "type": "delivered", "data": { "order_id": "rx_1", "received_by": " Sam ", "id_checked": true } })
            ),
            Ok(WarehouseEvent::Order {
                order_id: "rx_1".into(),
                event: OrderEvent::Delivered {
                    received_by: "Sam".into(),
                    recipient: Recipient::Patient,
                    id_checked: Some(true),
                },
            })
        );
        assert_eq!(
            parsed(
                json!({ "type": "stock_received", "data": { "product_code": "p", "supplier": "s", "invoice_ref": "i", "quantity": 5, "mode": "test" } })
            ),
            Ok(WarehouseEvent::StockReceived(StockReceipt {
                product_code: "p".into(),
                supplier: "s".into(),
                supplier_address: None,
                invoice_ref: "i".into(),
                quantity: 5,
                mode: Mode::Test,
            }))
        );
    }

    #[test]
    fn a_malformed_event_is_refused_naming_what_is_wrong() {
        let refused = |v: Value| parsed(v).unwrap_err();
        assert!(
            refused(json!({ "type": "shipped", "data": {} }))
                .starts_with("unknown event type \"shipped\"")
        );
        assert_eq!(
            refused(json!({ "type": "picked", "data": 1 })),
            "data must be an object"
        );
        assert_eq!(
            refused(json!({ "type": "picked", "data": {} })),
            "data.order_id is required"
        );
        assert_eq!(
            refused(
                json!({ "type": "dispatched", "data": { "order_id": "rx_1", "carrier": "RM" } })
            ),
            "data.tracking_number is required (1 to 200 characters)"
        );
        assert_eq!(
            refused(
                json!({ "type": "delivered", "data": { "order_id": "rx_1", "received_by": "Sam", "recipient": "neighbour" } })
            ),
            "data.recipient must be patient, representative or healthcare_professional"
        );
        assert_eq!(
            refused(
                json!({ "type": "stock_received", "data": { "product_code": "p", "supplier": "s", "invoice_ref": "i", "quantity": 0 } })
            ),
            "data.quantity must be a whole number 1 to 1000000"
        );
        assert!(
            parse(b"{")
                .unwrap_err()
                .to_string()
                .starts_with("the body is not JSON")
        );
    }
}
