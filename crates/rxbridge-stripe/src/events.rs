//! Stripe's webhook events, read into the core's `ProviderEvent`: the signature is checked on
//! the raw body first, then only the fields the core acts on are read (unknown fields and event
//! types are tolerated, as Stripe adds them).

use crate::signature;
use jiff::Timestamp;
use rxbridge_app::payments::{
    CheckoutRef, EventRejection, ProviderEvent, ProviderEventKind, ProviderEvents,
};
use serde_json::Value;

/// Verifies Stripe's events against the endpoint secrets (several while one is rolled).
pub struct StripeEvents {
    secrets: Vec<String>,
}

impl StripeEvents {
    pub fn new(secrets: Vec<String>) -> Self {
        Self { secrets }
    }
}

impl ProviderEvents for StripeEvents {
    fn parse_event(
        &self,
        signature_header: Option<&str>,
        raw: &[u8],
        now: Timestamp,
    ) -> Result<ProviderEvent, EventRejection> {
        signature::verify(signature_header, raw, &self.secrets, now.as_second())
            .map_err(|e| EventRejection::Signature(e.to_string()))?;
        parse(raw)
    }
}

/// A verified event body, read into the core's words.
pub fn parse(raw: &[u8]) -> Result<ProviderEvent, EventRejection> {
    let bad = |why: String| EventRejection::BadPayload(why);
    let v: Value = serde_json::from_slice(raw).map_err(|e| bad(format!("not JSON: {e}")))?;
    let id = v["id"]
        .as_str()
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| bad("no event id".into()))?
        .to_string();
    let kind = v["type"]
        .as_str()
        .ok_or_else(|| bad("no event type".into()))?;
    let object = &v["data"]["object"];
    if !object.is_object() {
        return Err(bad("no data.object".into()));
    }
    let text = |v: &Value| v.as_str().map(str::to_string);
    let checkout = || CheckoutRef {
        payment_id: text(&object["client_reference_id"])
            .or_else(|| text(&object["metadata"]["payment_id"])),
        session_id: text(&object["id"]),
    };
    let kind = match kind {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
            ProviderEventKind::CheckoutCompleted {
                checkout: checkout(),
                paid: kind == "checkout.session.async_payment_succeeded"
                    || object["payment_status"].as_str() == Some("paid"),
                amount_pence: object["amount_total"].as_i64(),
                currency: object["currency"].as_str().unwrap_or("").to_string(),
                payment_ref: text(&object["payment_intent"])
                    .or_else(|| text(&object["payment_intent"]["id"])),
            }
        }
        "checkout.session.async_payment_failed" | "checkout.session.expired" => {
            ProviderEventKind::CheckoutClosed {
                checkout: checkout(),
                failed: kind.ends_with("failed"),
            }
        }
        "charge.refunded" => ProviderEventKind::Refunded {
            payment_ref: text(&object["payment_intent"]),
            refunded_pence: object["amount_refunded"].as_i64().unwrap_or(0),
        },
        _ => ProviderEventKind::Unused,
    };
    Ok(ProviderEvent { id, kind })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: Value) -> Result<ProviderEvent, EventRejection> {
        parse(v.to_string().as_bytes())
    }

    #[test]
    fn a_paid_checkout_names_its_payment_amount_and_intent() {
        let ev = read(json!({
            "id": "evt_1", "type": "checkout.session.completed", "unknown": [1],
            "data": { "object": {
                "id": "cs_1", "client_reference_id": "pay_1", "metadata": { "payment_id": "pay_2" },
                "payment_status": "paid", "amount_total": 990, "currency": "gbp",
                "payment_intent": { "id": "pi_1" },
            }},
        }))
        .unwrap();
        assert_eq!(
            ev,
            ProviderEvent {
                id: "evt_1".into(),
                kind: ProviderEventKind::CheckoutCompleted {
                    checkout: CheckoutRef {
                        payment_id: Some("pay_1".into()),
                        session_id: Some("cs_1".into()),
                    },
                    paid: true,
                    amount_pence: Some(990),
                    currency: "gbp".into(),
                    payment_ref: Some("pi_1".into()),
                },
            }
        );
    }

    #[test]
    fn a_delayed_method_is_completed_but_not_paid_until_it_succeeds() {
        let event = |kind: &str| {
            read(json!({ "id": "evt_1", "type": kind, "data": { "object": {
                "metadata": { "payment_id": "pay_2" }, "payment_status": "unpaid" } } }))
            .unwrap()
            .kind
        };
        let ProviderEventKind::CheckoutCompleted { paid, checkout, .. } =
            event("checkout.session.completed")
        else {
            panic!("a completed checkout");
        };
        assert!(!paid);
        assert_eq!(checkout.payment_id.as_deref(), Some("pay_2"));
        assert!(matches!(
            event("checkout.session.async_payment_succeeded"),
            ProviderEventKind::CheckoutCompleted { paid: true, .. }
        ));
        assert!(matches!(
            event("checkout.session.async_payment_failed"),
            ProviderEventKind::CheckoutClosed { failed: true, .. }
        ));
        assert!(matches!(
            event("checkout.session.expired"),
            ProviderEventKind::CheckoutClosed { failed: false, .. }
        ));
        assert_eq!(event("customer.created"), ProviderEventKind::Unused);
    }

    #[test]
    fn a_refund_reads_the_total_refunded() {
        let ev = read(json!({ "id": "evt_r", "type": "charge.refunded",
            "data": { "object": { "payment_intent": "pi_1", "amount_refunded": 500 } } }))
        .unwrap();
        assert_eq!(
            ev.kind,
            ProviderEventKind::Refunded {
                payment_ref: Some("pi_1".into()),
                refunded_pence: 500
            }
        );
    }

    #[test]
    fn what_is_not_an_event_is_refused_with_the_reason() {
        let why = |raw: &[u8]| match parse(raw) {
            Err(EventRejection::BadPayload(d)) => d,
            other => panic!("{other:?}"),
        };
        assert!(why(b"{").starts_with("not JSON"));
        assert_eq!(why(br#"{"type":"x","data":{"object":{}}}"#), "no event id");
        assert_eq!(
            why(br#"{"id":"","type":"x","data":{"object":{}}}"#),
            "no event id"
        );
        assert_eq!(why(br#"{"id":"e","data":{"object":{}}}"#), "no event type");
        assert_eq!(why(br#"{"id":"e","type":"x","data":{}}"#), "no data.object");
    }

    #[test]
    fn the_signature_is_checked_before_the_body_is_read() {
        let events = StripeEvents::new(vec!["whsec_a".into()]);
        let now = Timestamp::from_second(1000).unwrap();
        let body = b"not even JSON";
        assert!(matches!(
            events.parse_event(Some(&signature::sign("whsec_b", 1000, body)), body, now),
            Err(EventRejection::Signature(_))
        ));
        assert!(matches!(
            events.parse_event(Some(&signature::sign("whsec_a", 1000, body)), body, now),
            Err(EventRejection::BadPayload(_))
        ));
    }
}
