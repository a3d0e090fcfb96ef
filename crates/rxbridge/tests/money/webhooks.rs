//! Stripe webhooks at `POST /v1/payments/stripe/webhook`: verified on the raw body,
//! de-duplicated by event id, tolerant of unknown fields, types and order.

use crate::money::harness::*;
use reqwest::StatusCode;
use rxbridge_app::payments::PaymentStatus;
use rxbridge_app::ports::Mode;
use rxbridge_stripe::signature::sign;
use serde_json::{Value, json};

const SECRET: &str = "whsec_current";
const OLD: &str = "whsec_previous";

async fn post(m: &Money, body: &str, header: Option<String>) -> (StatusCode, Value) {
    let mut r = m
        .client
        .post(m.url("/v1/payments/stripe/webhook"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(h) = header {
        r = r.header("Stripe-Signature", h);
    }
    let r = r.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn now(m: &Money) -> i64 {
    use rxbridge_app::Clock;
    m.clock.now().as_second()
}

fn completed(event: &str, payment_id: &str, amount: i64) -> String {
    json!({
        "id": event, "object": "event", "api_version": "2024-06-20",
        "type": "checkout.session.completed", "livemode": false,
        "a_field_from_the_future": { "nested": [1, 2, 3] },
        "data": { "object": {
            "id": "cs_test_a1", "object": "checkout.session",
            "client_reference_id": payment_id, "amount_total": amount, "currency": "gbp",
            "payment_status": "paid", "payment_intent": "pi_test_1", "status": "complete",
            "customer_details": { "email": "someone@example.com" }
        }}
    })
    .to_string()
}

#[tokio::test]
async fn signatures_dedupe_order_and_unknowns() {
    let m = start(|c| c.stripe.webhook_secrets = vec![SECRET.into(), OLD.into()]).await;
    let id = m.submit(Mode::Test, &private_pom("WH-1")).await;
    m.approve(Mode::Test, &id).await;
    let p = m.payment(&id).await;
    let body = completed("evt_1", &p.id, p.quote.total_pence);
    let t = now(&m);

    // Refused, and nothing changes: no header, a wrong secret, a tampered body, a stale or
    // future timestamp, a malformed header.
    let cases = [
        None,
        Some(sign("whsec_wrong", t, body.as_bytes())),
        Some(sign(SECRET, t, body.replace("gbp", "usd").as_bytes())),
        Some(sign(SECRET, t - 301, body.as_bytes())),
        Some(sign(SECRET, t + 301, body.as_bytes())),
        Some("v1=deadbeef".into()),
    ];
    for h in cases {
        let (s, v) = post(&m, &body, h.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{h:?}: {v}");
        assert_eq!(v["code"], "invalid_signature", "{v}");
    }
    assert_eq!(m.payment(&id).await.status, PaymentStatus::AwaitingPayment);

    // Unknown event types are acknowledged and ignored.
    let other = json!({ "id": "evt_x", "type": "customer.created", "data": { "object": { "id": "cus_1" } } }).to_string();
    let (s, v) = post(&m, &other, Some(sign(SECRET, t, other.as_bytes()))).await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::OK, Some("ignored"))
    );
    // Not an event at all.
    let junk = "[1,2,3]";
    let (s, v) = post(&m, junk, Some(sign(SECRET, t, junk.as_bytes()))).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_event"))
    );

    // Signed with the previous secret during a roll: accepted.
    let (s, v) = post(&m, &body, Some(sign(OLD, t - 299, body.as_bytes()))).await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{v}"
    );
    assert_eq!(
        m.clinic_view(Mode::Test, &id).await["status"],
        "ready_for_fulfilment"
    );
    // The same event again (Stripe retries): a duplicate, nothing more happens.
    let (s, v) = post(&m, &body, Some(sign(SECRET, t, body.as_bytes()))).await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    // A later, different event saying the same: already paid.
    let again = completed("evt_2", &p.id, p.quote.total_pence).replace(
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
    );
    let (_, v) = post(&m, &again, Some(sign(SECRET, t, again.as_bytes()))).await;
    assert_eq!(v["outcome"], "ignored");
    // An expiry for the session arriving after the payment (out of order): ignored.
    let expired = json!({ "id": "evt_3", "type": "checkout.session.expired", "data": { "object": { "id": "cs_test_a1", "client_reference_id": p.id } } }).to_string();
    let (_, v) = post(&m, &expired, Some(sign(SECRET, t, expired.as_bytes()))).await;
    assert_eq!(v["outcome"], "ignored");
    let kinds = m.event_kinds(&id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "payment.succeeded").count(),
        1,
        "{kinds:?}"
    );
    let p = m.payment(&id).await;
    assert_eq!(
        (p.status, p.payment_ref.as_deref()),
        (PaymentStatus::Paid, Some("pi_test_1"))
    );

    // An event for a payment we do not know: acknowledged (so the provider stops), ignored.
    let stranger = completed("evt_4", "pay_unknown", 100);
    let (s, v) = post(&m, &stranger, Some(sign(SECRET, t, stranger.as_bytes()))).await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::OK, Some("ignored"))
    );
}

#[tokio::test]
async fn a_wrong_amount_is_not_fulfilled_and_a_payment_after_cancellation_is_refunded() {
    let m = start(|c| c.stripe.webhook_secrets = vec![SECRET.into()]).await;
    let t = now(&m);
    // Wrong amount: recorded for finance, the prescription is not released.
    let id = m.submit(Mode::Test, &private_pom("WH-2")).await;
    m.approve(Mode::Test, &id).await;
    let p = m.payment(&id).await;
    let body = completed("evt_amount", &p.id, p.quote.total_pence - 1);
    let (_, v) = post(&m, &body, Some(sign(SECRET, t, body.as_bytes()))).await;
    assert_eq!(v["outcome"], "applied");
    assert_eq!(
        m.clinic_view(Mode::Test, &id).await["status"],
        "awaiting_payment"
    );
    let p = m.payment(&id).await;
    assert!(
        p.attention
            .as_deref()
            .unwrap()
            .contains("check and refund by hand"),
        "{p:?}"
    );

    // Cancelled while the patient was paying: the money that arrives goes straight back.
    let id = m.submit(Mode::Test, &private_pom("WH-3")).await;
    m.approve(Mode::Test, &id).await;
    let p = m.payment(&id).await;
    m.cancel(Mode::Test, &id).await;
    assert_eq!(m.payment(&id).await.status, PaymentStatus::Cancelled);
    let body =
        completed("evt_late", &p.id, p.quote.total_pence).replace("pi_test_1", "pi_test_late");
    let (_, v) = post(&m, &body, Some(sign(SECRET, t, body.as_bytes()))).await;
    assert_eq!(v["outcome"], "applied");
    let p = m.payment(&id).await;
    assert_eq!(p.status, PaymentStatus::Refunded, "{p:?}");
    assert_eq!(p.refunded_pence, p.quote.total_pence);
    assert_eq!(m.clinic_view(Mode::Test, &id).await["status"], "cancelled");
    // Stripe then confirms the refund.
    let refunded = json!({ "id": "evt_refund", "type": "charge.refunded", "data": { "object": {
        "id": "ch_1", "object": "charge", "payment_intent": "pi_test_late", "amount_refunded": p.quote.total_pence, "refunded": true } } }).to_string();
    let (_, v) = post(&m, &refunded, Some(sign(SECRET, t, refunded.as_bytes()))).await;
    assert_eq!(
        v["outcome"], "ignored",
        "already recorded by the refund call"
    );
}
