//! Money over HTTP: the patient's payment link, the sandbox checkout page, and the payment
//! provider's webhook endpoint.
//!
//! - `GET /pay/{token}` — opens (or reuses) a checkout session and redirects to it, or says why
//!   there is nothing to pay.
//! - `GET /pay/{token}/complete` — where the provider sends the patient back.
//! - `GET /sandbox/checkout/{session}` with `POST …/pay` and `POST …/decline` — the sandbox
//!   provider's checkout page; its buttons deliver a signed event through the webhook path.
//! - `POST /v1/payments/stripe/webhook` — Stripe events, verified on the raw body.

use crate::problem::{Problem, ProblemCode};
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use rxbridge_app::payments::{
    LinkView, PaymentError, PaymentRecord, PaymentStatus, SandboxOutcome, WebhookError,
    WebhookOutcome,
};

pub fn payment_routes() -> Router<AppState> {
    Router::new()
        .route("/pay/{token}", get(open_link))
        .route("/pay/{token}/complete", get(complete))
        .route("/sandbox/checkout/{session}", get(sandbox_page))
        .route("/sandbox/checkout/{session}/pay", post(sandbox_pay))
        .route("/sandbox/checkout/{session}/decline", post(sandbox_decline))
        .route("/v1/payments/stripe/webhook", post(webhook))
}

fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) }
                link rel="stylesheet" href="/staff/style.css";
            }
            body {
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        doc.into_string(),
    )
        .into_response()
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not recognised",
        html! { p { "This payment link is not valid. Please use the link in your most recent email, or contact the pharmacy." } },
    )
}

fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again shortly",
        html! { p { "We could not open the payment page just now. Nothing has been charged. Please try the link again in a few minutes." } },
    )
}

fn status_page(p: &PaymentRecord) -> Response {
    let (title, text) = match p.status {
        PaymentStatus::Paid => (
            "Payment received",
            "Thank you: your payment has been received and your order is being prepared.",
        ),
        PaymentStatus::NotDue => ("Nothing to pay", "There is nothing to pay for this order."),
        PaymentStatus::AwaitingPayment => (
            "Payment window closed",
            "The time to pay for this order has passed. Please contact the pharmacy or your clinic.",
        ),
        PaymentStatus::Cancelled => (
            "Order cancelled",
            "This order was cancelled, so there is nothing to pay. Please contact your clinic if this is unexpected.",
        ),
        PaymentStatus::RefundPending | PaymentStatus::Refunded => (
            "Order cancelled and refunded",
            "This order was cancelled and your payment is being refunded to the card you used.",
        ),
    };
    page(
        StatusCode::OK,
        title,
        html! { p { (text) } p { "Order reference: " code { (p.prescription_id) } } },
    )
}

async fn open_link(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let pay = &state.payments;
    match pay.open_link(&token).await {
        Ok(LinkView::Redirect(url)) => Redirect::to(&url).into_response(),
        Ok(LinkView::Status(p)) => status_page(&p),
        Err(PaymentError::BadLink | PaymentError::NotFound) => not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "opening a payment link failed");
            unavailable()
        }
    }
}

async fn complete(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let pay = &state.payments;
    let Some(id) = pay.payment_id_from_token(&token) else {
        return not_found();
    };
    match pay.get(&id).await {
        Ok(p) if p.status == PaymentStatus::AwaitingPayment => page(
            StatusCode::OK,
            "Confirming your payment",
            html! {
                p { "If you completed the payment, we are waiting for the card provider to confirm it; this usually takes a few seconds. "
                    a href={ "/pay/" (token) "/complete" } { "Check again" } "." }
                p { "If you did not pay, you can " a href={ "/pay/" (token) } { "return to the payment page" } "." }
            },
        ),
        Ok(p) => status_page(&p),
        Err(PaymentError::NotFound) => not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "reading a payment failed");
            unavailable()
        }
    }
}

async fn sandbox_page(State(state): State<AppState>, Path(session): Path<String>) -> Response {
    let pay = &state.payments;
    match pay.sandbox_session(&session).await {
        Ok(p) => page(
            StatusCode::OK,
            "Sandbox checkout",
            html! {
                p { strong { "Sandbox: no real card is charged." } " This page stands in for the payment provider's checkout." }
                p { "Order reference: " code { (p.prescription_id) } }
                p { "Amount: " strong { (p.quote.total()) } }
                form method="post" action={ "/sandbox/checkout/" (session) "/pay" } {
                    button type="submit" { "Pay " (p.quote.total()) }
                }
                form method="post" action={ "/sandbox/checkout/" (session) "/decline" } {
                    button type="submit" { "Decline" }
                }
            },
        ),
        Err(PaymentError::NotFound) => not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "reading a sandbox session failed");
            unavailable()
        }
    }
}

async fn sandbox_finish(state: &AppState, session: &str, outcome: SandboxOutcome) -> Response {
    let pay = &state.payments;
    match pay.sandbox_complete(session, outcome).await {
        Ok((p, _)) => {
            let token = pay.token_for(&p.id);
            match outcome {
                SandboxOutcome::Pay => {
                    Redirect::to(&format!("/pay/{token}/complete")).into_response()
                }
                SandboxOutcome::Decline => page(
                    StatusCode::OK,
                    "Payment declined",
                    html! {
                        p { "The payment was declined. Nothing has been charged." }
                        p { a href={ "/pay/" (token) } { "Try again" } }
                    },
                ),
            }
        }
        Err(PaymentError::NotFound) => not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "sandbox checkout failed");
            unavailable()
        }
    }
}

async fn sandbox_pay(State(state): State<AppState>, Path(session): Path<String>) -> Response {
    sandbox_finish(&state, &session, SandboxOutcome::Pay).await
}

async fn sandbox_decline(State(state): State<AppState>, Path(session): Path<String>) -> Response {
    sandbox_finish(&state, &session, SandboxOutcome::Decline).await
}

/// Stripe's webhook: 2xx once applied (or a duplicate, or deliberately ignored) so Stripe stops
/// retrying; 400 for a bad signature or payload; 503 when we could not record it, so Stripe
/// retries later.
/// Stripe's events, verified on the raw body with `Stripe-Signature` against every configured
/// `stripe.webhook_secrets` entry; an event id seen before changes nothing.
#[utoipa::path(
    post, path = "/v1/payments/stripe/webhook", tag = "payments", operation_id = "receiveStripeEvent",
    description = "For the payment provider (Stripe), not for clinics. Authenticated by the `Stripe-Signature` header, not by an API key.",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256 of {t}.{raw body}>` with the endpoint's `whsec_…` signing secret")),
    request_body(content = crate::openapi::webhooks::StripeEvent, content_type = "application/json"),
    responses(
        (status = 200, description = "Applied, a duplicate, or an event type that needs nothing", body = crate::openapi::webhooks::EventReceived),
        (status = 400, description = "Missing, stale or wrong signature, or an event that is not understood", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not recorded now: Stripe retries", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn webhook(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let sig = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok());
    match state.payments.handle_webhook(&body, sig).await {
        Ok(outcome) => {
            let (what, detail) = match outcome {
                WebhookOutcome::Applied(d) => ("applied", d),
                WebhookOutcome::Duplicate => ("duplicate", "this event id was processed before"),
                WebhookOutcome::Ignored(d) => ("ignored", d),
            };
            axum::Json(serde_json::json!({ "received": true, "outcome": what, "detail": detail }))
                .into_response()
        }
        Err(e) => Problem::from(e).into_response(),
    }
}

impl From<WebhookError> for Problem {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Signature(e) => {
                tracing::warn!(error = %e, "refused a webhook with a bad signature");
                Problem::new(ProblemCode::InvalidSignature, e.to_string())
            }
            WebhookError::BadPayload(d) => Problem::new(ProblemCode::InvalidEvent, d),
            WebhookError::Store(e) => {
                tracing::error!(error = %e, "could not record a webhook; the provider will retry");
                let retry = "could not record the event now; retry later";
                Problem::new(ProblemCode::Unavailable, retry)
            }
        }
    }
}
