//! The Stripe adapter against a local stand-in that checks each request Stripe would receive
//! (auth, version, idempotency key, form fields) and answers as Stripe does, including
//! idempotent replays, refusals and outages.

use crate::money::harness::*;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rxbridge_app::payments::{
    CheckoutRequest, PaymentProvider, PaymentStatus, ProviderError, RefundRequest,
};
use rxbridge_app::ports::Mode;
use rxbridge_stripe::StripeProvider;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const KEY: &str = "sk_test_standin";
const SECRET: &str = "whsec_standin";

#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub idempotency_key: String,
    pub form: HashMap<String, String>,
}

/// The form a key was first used with, and the answer given.
type Reply = (Vec<(String, String)>, Value);

#[derive(Default)]
pub struct StandIn {
    pub seen: Mutex<Vec<Seen>>,
    /// Idempotency key → (form, answer).
    replies: Mutex<HashMap<String, Reply>>,
    /// Answer the next N refunds with 500.
    pub refund_outages: Mutex<u32>,
    sessions: Mutex<u32>,
}

fn err(status: AxStatus, kind: &str, code: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({ "error": { "type": kind, "code": code, "message": message } })),
    )
        .into_response()
}

async fn handle(
    State(s): State<Arc<StandIn>>,
    path: Option<Path<String>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: String,
) -> Response {
    let _ = path;
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(&format!("Bearer {KEY}"))
    {
        return err(
            AxStatus::UNAUTHORIZED,
            "invalid_request_error",
            "api_key_invalid",
            "Invalid API Key provided",
        );
    }
    if headers.get("stripe-version").is_none() {
        return err(
            AxStatus::BAD_REQUEST,
            "invalid_request_error",
            "version",
            "no Stripe-Version",
        );
    }
    if headers.get("content-type").and_then(|v| v.to_str().ok())
        != Some("application/x-www-form-urlencoded")
    {
        return err(
            AxStatus::BAD_REQUEST,
            "invalid_request_error",
            "content_type",
            "form-encoded bodies only",
        );
    }
    let Some(key) = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
    else {
        return err(
            AxStatus::BAD_REQUEST,
            "invalid_request_error",
            "idempotency",
            "every POST must carry an Idempotency-Key",
        );
    };
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap();
    let form: HashMap<String, String> = pairs.iter().cloned().collect();
    let path = uri.path().to_string();
    s.seen.lock().unwrap().push(Seen {
        path: path.clone(),
        idempotency_key: key.clone(),
        form: form.clone(),
    });
    if let Some((old, answer)) = s.replies.lock().unwrap().get(&key) {
        if *old != pairs {
            return err(
                AxStatus::BAD_REQUEST,
                "idempotency_error",
                "idempotency_key_in_use",
                "Keys for idempotent requests can only be used with the same parameters they were first used with.",
            );
        }
        return axum::Json(answer.clone()).into_response();
    }
    let answer = if path == "/v1/checkout/sessions" {
        for (k, want) in [
            ("mode", Some("payment")),
            ("line_items[0][price_data][currency]", Some("gbp")),
            ("line_items[0][quantity]", Some("1")),
            ("client_reference_id", None),
            ("metadata[payment_id]", None),
            ("success_url", None),
            ("cancel_url", None),
            ("line_items[0][price_data][product_data][name]", None),
        ] {
            match (form.get(k), want) {
                (None, _) => {
                    return err(
                        AxStatus::BAD_REQUEST,
                        "invalid_request_error",
                        "parameter_missing",
                        k,
                    );
                }
                (Some(v), Some(w)) if v != w => {
                    return err(
                        AxStatus::BAD_REQUEST,
                        "invalid_request_error",
                        "parameter_invalid",
                        k,
                    );
                }
                _ => {}
            }
        }
        let amount: i64 = match form
            .get("line_items[0][price_data][unit_amount]")
            .and_then(|v| v.parse().ok())
        {
            Some(a) if a > 0 => a,
            _ => {
                return err(
                    AxStatus::BAD_REQUEST,
                    "invalid_request_error",
                    "parameter_invalid_integer",
                    "unit_amount",
                );
            }
        };
        let expires: i64 = form
            .get("expires_at")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let now = jiff::Timestamp::now().as_second();
        if !(now + 1800 - 120..=now + 86400 + 120).contains(&expires) {
            return err(
                AxStatus::BAD_REQUEST,
                "invalid_request_error",
                "parameter_invalid_integer",
                "expires_at must be 30 minutes to 24 hours from now",
            );
        }
        let n = {
            let mut c = s.sessions.lock().unwrap();
            *c += 1;
            *c
        };
        json!({ "id": format!("cs_test_{n}"), "object": "checkout.session", "url": format!("https://checkout.stripe.com/c/pay/cs_test_{n}"),
                "expires_at": expires, "amount_total": amount, "currency": "gbp", "status": "open",
                "client_reference_id": form["client_reference_id"], "livemode": false })
    } else if path.ends_with("/expire") {
        json!({ "id": path.split('/').nth(4).unwrap_or(""), "object": "checkout.session", "status": "expired", "url": null })
    } else if path == "/v1/refunds" {
        {
            let mut outages = s.refund_outages.lock().unwrap();
            if *outages > 0 {
                *outages -= 1;
                // A 500 is not stored against the key: a retry runs again.
                return err(
                    AxStatus::INTERNAL_SERVER_ERROR,
                    "api_error",
                    "",
                    "An unknown error occurred",
                );
            }
        }
        if form.get("payment_intent").map(String::as_str) == Some("pi_refused") {
            return err(
                AxStatus::BAD_REQUEST,
                "invalid_request_error",
                "charge_already_refunded",
                "Charge has already been refunded.",
            );
        }
        json!({ "id": format!("re_{}", s.seen.lock().unwrap().len()), "object": "refund", "status": "succeeded",
                "amount": form.get("amount").and_then(|a| a.parse::<i64>().ok()), "payment_intent": form.get("payment_intent") })
    } else {
        return err(
            AxStatus::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            "Unrecognized request URL",
        );
    };
    s.replies
        .lock()
        .unwrap()
        .insert(key, (pairs, answer.clone()));
    axum::Json(answer).into_response()
}

pub async fn stand_in() -> (String, Arc<StandIn>) {
    let s = Arc::new(StandIn::default());
    let app = axum::Router::new()
        .route("/v1/checkout/sessions", post(handle))
        .route("/v1/checkout/sessions/{id}/expire", post(handle))
        .route("/v1/refunds", post(handle))
        .with_state(s.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), s)
}

fn checkout(key: &str) -> CheckoutRequest {
    CheckoutRequest {
        payment_id: "pay_1".into(),
        idempotency_key: key.into(),
        amount_pence: 4995,
        description: "Pharmacy order rx_1".into(),
        customer_email: None,
        success_url: "https://pharmacy.example/pay/t/complete".into(),
        cancel_url: "https://pharmacy.example/pay/t/complete".into(),
        expires_at: jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24),
    }
}

#[tokio::test]
async fn the_adapter_sends_what_stripe_expects_and_classifies_answers() {
    let (base, s) = stand_in().await;
    let p = StripeProvider::new(&base, KEY).unwrap();
    let a = p.create_checkout(&checkout("k1")).await.unwrap();
    assert_eq!(a.id, "cs_test_1");
    assert!(a.url.starts_with("https://checkout.stripe.com/"));
    // A retried create with the same key returns the same session.
    let b = p.create_checkout(&checkout("k1")).await.unwrap();
    assert_eq!(a, b);
    // The same key with other parameters: Stripe refuses it, and so do we (not retryable).
    let mut other = checkout("k1");
    other.amount_pence = 1;
    assert!(
        matches!(p.create_checkout(&other).await, Err(ProviderError::Refused(m)) if m.contains("idempotency_key_in_use"))
    );
    let seen = s.seen.lock().unwrap().clone();
    assert_eq!(
        seen[0].form["line_items[0][price_data][unit_amount]"],
        "4995"
    );
    assert_eq!(seen[0].form["client_reference_id"], "pay_1");
    assert!(
        !seen[0]
            .form
            .values()
            .any(|v| v.contains("Strattera") || v.contains("CONCERTA")),
        "no medicine names go to the provider"
    );
    // A wrong key is refused; an outage is retryable.
    let bad = StripeProvider::new(&base, "sk_test_wrong").unwrap();
    assert!(matches!(
        bad.create_checkout(&checkout("k2")).await,
        Err(ProviderError::Refused(_))
    ));
    *s.refund_outages.lock().unwrap() = 1;
    let refund = RefundRequest {
        payment_id: "pay_1".into(),
        payment_ref: "pi_1".into(),
        amount_pence: 4995,
        idempotency_key: "r1".into(),
    };
    assert!(matches!(
        p.refund(&refund).await,
        Err(ProviderError::Unavailable(_))
    ));
    let r = p.refund(&refund).await.unwrap();
    assert_eq!(r.status, "succeeded");
    let refused = RefundRequest {
        payment_ref: "pi_refused".into(),
        idempotency_key: "r2".into(),
        ..refund
    };
    assert!(
        matches!(p.refund(&refused).await, Err(ProviderError::Refused(m)) if m.contains("charge_already_refunded"))
    );
    // Nothing listening: retryable.
    let down = StripeProvider::new("http://127.0.0.1:9", KEY).unwrap();
    assert!(matches!(
        down.create_checkout(&checkout("k3")).await,
        Err(ProviderError::Unavailable(_))
    ));
}

#[tokio::test]
async fn live_flow_through_stripe_with_a_refund_retried_after_an_outage() {
    let (base, s) = stand_in().await;
    let m = start(|c| {
        c.payments.provider = "stripe".into();
        c.stripe.api_base = base.clone();
        c.stripe.secret_key = Some(KEY.into());
        c.stripe.webhook_secrets = vec![SECRET.into()];
    })
    .await;
    let id = m.submit(Mode::Live, &private_pom("LIVE-1")).await;
    m.approve(Mode::Live, &id).await;
    let p = m.payment(&id).await;
    assert_eq!(p.provider, "stripe");
    let link = m.link_in_email(&p.id);
    let to = m.open_link(&link).await;
    assert_eq!(to, "https://checkout.stripe.com/c/pay/cs_test_1");
    let create = s.seen.lock().unwrap()[0].clone();
    assert_eq!(create.idempotency_key, format!("{}-checkout-1", p.id));
    assert_eq!(
        create.form["line_items[0][price_data][unit_amount]"],
        p.quote.total_pence.to_string()
    );
    assert_eq!(create.form["success_url"], format!("{link}/complete"));

    // Stripe tells us the patient paid.
    let body =
        json!({ "id": "evt_live_1", "type": "checkout.session.completed", "data": { "object": {
        "id": "cs_test_1", "client_reference_id": p.id, "amount_total": p.quote.total_pence,
        "currency": "gbp", "payment_status": "paid", "payment_intent": "pi_live_1" } } })
        .to_string();
    let r = m.stripe_event(SECRET, body).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);
    assert_eq!(
        m.clinic_view(Mode::Live, &id).await["status"],
        "ready_for_fulfilment"
    );

    // Cancelled; Stripe is down for the first refund attempt. The refund is owed, then the
    // sweep completes it with the same idempotency key: one refund.
    *s.refund_outages.lock().unwrap() = 1;
    m.cancel(Mode::Live, &id).await;
    assert_eq!(m.payment(&id).await.status, PaymentStatus::RefundPending);
    let r = m.running.payments.tick().await.unwrap();
    assert_eq!(r.refunded, 1);
    let p = m.payment(&id).await;
    assert_eq!(
        (p.status, p.refunded_pence),
        (PaymentStatus::Refunded, p.paid_pence)
    );
    let refunds: Vec<Seen> = s
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|x| x.path == "/v1/refunds")
        .cloned()
        .collect();
    assert_eq!(refunds.len(), 2, "one failed attempt, one retry");
    assert!(
        refunds
            .iter()
            .all(|r| r.idempotency_key == format!("{}-refund-0", p.id))
    );
    assert_eq!(refunds[1].form["payment_intent"], "pi_live_1");
    assert_eq!(refunds[1].form["amount"], p.paid_pence.to_string());
    assert_eq!(m.running.payments.tick().await.unwrap(), Default::default());
}
