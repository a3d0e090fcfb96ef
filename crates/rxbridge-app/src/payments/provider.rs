//! The payment-provider port, and the sandbox provider (the embedded default): checkout pages
//! served by rxbridge itself, whose buttons drive the same signed-webhook path as Stripe's.

use async_trait::async_trait;
use jiff::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    pub payment_id: String,
    /// Same key, same session: a retried create never makes a second one.
    pub idempotency_key: String,
    pub amount_pence: i64,
    /// What the patient sees on the provider's page. No clinical detail (no medicine names).
    pub description: String,
    pub customer_email: Option<String>,
    pub success_url: String,
    pub cancel_url: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    pub url: String,
    pub expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub payment_id: String,
    /// The provider's payment reference (Stripe PaymentIntent).
    pub payment_ref: String,
    pub amount_pence: i64,
    pub idempotency_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundResult {
    pub id: String,
    /// `succeeded`, `pending`, `requires_action`, `failed` or `canceled` (Stripe's words).
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Worth retrying later (network, 429, 5xx).
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request; retrying the same request will not help.
    #[error("payment provider refused the request: {0}")]
    Refused(String),
}

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// `sandbox` or `stripe`, recorded on each payment.
    fn name(&self) -> &'static str;
    async fn create_checkout(
        &self,
        req: &CheckoutRequest,
    ) -> Result<CheckoutSession, ProviderError>;
    /// Close an open checkout session so it can no longer be paid.
    async fn expire_checkout(&self, session_id: &str) -> Result<(), ProviderError>;
    async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, ProviderError>;
}

/// Checkout pages served by rxbridge at `{public_url}/sandbox/checkout/{session}`. Session ids
/// are keyed hashes of the idempotency key: unguessable, and the same for a retried create.
pub struct SandboxProvider {
    public_url: String,
    mac: Box<dyn Fn(&str) -> String + Send + Sync>,
}

impl SandboxProvider {
    pub fn new(public_url: &str, mac: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        Self {
            public_url: public_url.trim_end_matches('/').to_string(),
            mac: Box::new(mac),
        }
    }
}

#[async_trait]
impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }
    async fn create_checkout(
        &self,
        req: &CheckoutRequest,
    ) -> Result<CheckoutSession, ProviderError> {
        let tag = (self.mac)(&req.idempotency_key);
        let id = format!("cs_sandbox_{}", &tag[..32]);
        Ok(CheckoutSession {
            url: format!("{}/sandbox/checkout/{id}", self.public_url),
            id,
            expires_at: req.expires_at,
        })
    }
    async fn expire_checkout(&self, _session_id: &str) -> Result<(), ProviderError> {
        Ok(())
    }
    async fn refund(&self, req: &RefundRequest) -> Result<RefundResult, ProviderError> {
        let tag = (self.mac)(&req.idempotency_key);
        Ok(RefundResult {
            id: format!("re_sandbox_{}", &tag[..24]),
            status: "succeeded".into(),
        })
    }
}
