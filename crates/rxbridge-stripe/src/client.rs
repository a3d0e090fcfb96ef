//! Stripe's REST client behind the payment-provider port: Checkout Sessions, their expiry, and
//! refunds (form-encoded requests, Bearer secret key, an `Idempotency-Key` on every POST, a
//! pinned `Stripe-Version`). Fulfilment never comes from these answers: only from the signed
//! webhooks (`crate::events`).

use async_trait::async_trait;
use jiff::Timestamp;
use rxbridge_app::payments::{
    CheckoutRequest, CheckoutSession, PaymentProvider, ProviderError, RefundRequest, RefundResult,
};
use serde::Deserialize;
use std::time::Duration;

/// The API version the requests and the parsing here were written against.
pub const STRIPE_VERSION: &str = "2024-06-20";

pub struct StripeProvider {
    http: reqwest::Client,
    api_base: String,
    secret_key: String,
}

impl StripeProvider {
    /// `api_base` is `https://api.stripe.com` in production (a local stand-in in tests).
    pub fn new(api_base: &str, secret_key: &str) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("rxbridge/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            api_base: api_base.trim_end_matches('/').to_string(),
            secret_key: secret_key.to_string(),
        })
    }

    async fn post<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(String, String)],
    ) -> Result<T, ProviderError> {
        let res = self
            .http
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .header("Stripe-Version", STRIPE_VERSION)
            .form(form)
            .send()
            .await
            .map_err(|e| ProviderError::Unavailable(format!("POST {path}: {e}")))?;
        let status = res.status();
        let body = res.bytes().await.map_err(|e| {
            ProviderError::Unavailable(format!("POST {path}: reading the answer: {e}"))
        })?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|e| {
                ProviderError::Unavailable(format!("POST {path}: unexpected answer: {e}"))
            });
        }
        #[derive(Deserialize)]
        struct ErrBody {
            error: ErrDetail,
        }
        #[derive(Deserialize)]
        struct ErrDetail {
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
        }
        let what = serde_json::from_slice::<ErrBody>(&body)
            .map(|e| {
                format!(
                    "{} ({})",
                    e.error.message.unwrap_or_default(),
                    e.error.code.unwrap_or_else(|| "no code".into())
                )
            })
            .unwrap_or_else(|_| format!("HTTP {status}"));
        // 409 is an idempotency conflict in flight; 429 and 5xx are worth retrying.
        if status.as_u16() == 409 || status.as_u16() == 429 || status.is_server_error() {
            Err(ProviderError::Unavailable(format!(
                "POST {path}: {status}: {what}"
            )))
        } else {
            Err(ProviderError::Refused(format!(
                "POST {path}: {status}: {what}"
            )))
        }
    }
}

#[derive(Deserialize)]
struct SessionBody {
    id: String,
    url: Option<String>,
    expires_at: Option<i64>,
}

#[derive(Deserialize)]
struct RefundBody {
    id: String,
    status: String,
}

fn kv(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

/// The form fields of a Checkout Session create (one line for the whole order: no medicine
/// names go to the provider).
pub fn checkout_form(req: &CheckoutRequest) -> Vec<(String, String)> {
    let mut form = vec![
        kv("mode", "payment"),
        kv("client_reference_id", &req.payment_id),
        kv("metadata[payment_id]", &req.payment_id),
        kv("payment_intent_data[metadata][payment_id]", &req.payment_id),
        kv("line_items[0][quantity]", 1),
        kv("line_items[0][price_data][currency]", "gbp"),
        kv("line_items[0][price_data][unit_amount]", req.amount_pence),
        kv(
            "line_items[0][price_data][product_data][name]",
            &req.description,
        ),
        kv("success_url", &req.success_url),
        kv("cancel_url", &req.cancel_url),
        kv("expires_at", req.expires_at.as_second()),
    ];
    if let Some(e) = &req.customer_email {
        form.push(kv("customer_email", e));
    }
    form
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    async fn create_checkout(
        &self,
        req: &CheckoutRequest,
    ) -> Result<CheckoutSession, ProviderError> {
        let s: SessionBody = self
            .post(
                "/v1/checkout/sessions",
                &req.idempotency_key,
                &checkout_form(req),
            )
            .await?;
        let url = s
            .url
            .ok_or_else(|| ProviderError::Refused("the session has no URL".into()))?;
        let expires_at = s
            .expires_at
            .and_then(|t| Timestamp::from_second(t).ok())
            .unwrap_or(req.expires_at);
        Ok(CheckoutSession {
            id: s.id,
            url,
            expires_at,
        })
    }

    async fn expire_checkout(&self, session_id: &str) -> Result<(), ProviderError> {
        if !session_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(ProviderError::Refused("not a session id".into()));
        }
        let r: Result<SessionBody, _> = self
            .post(
                &format!("/v1/checkout/sessions/{session_id}/expire"),
                &format!("expire-{session_id}"),
                &[],
            )
            .await;
        match r {
            Ok(_) => Ok(()),
            // Already complete or expired: nothing left to close.
            Err(ProviderError::Refused(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, ProviderError> {
        let form = vec![
            kv("payment_intent", &req.payment_ref),
            kv("amount", req.amount_pence),
            kv("reason", "requested_by_customer"),
            kv("metadata[payment_id]", &req.payment_id),
        ];
        let r: RefundBody = self
            .post("/v1/refunds", &req.idempotency_key, &form)
            .await?;
        Ok(RefundResult {
            id: r.id,
            status: r.status,
        })
    }
}
