//! The payment-provider ports: what the core asks of a provider (checkout sessions, their
//! expiry, refunds) and what it accepts from one (`ProviderEvents`: a signed event, verified
//! and read by the provider's adapter into a typed `ProviderEvent`).

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

/// A provider's event, verified and read by its adapter: what the core acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderEvent {
    /// The provider's event id: each is applied once.
    pub id: String,
    pub kind: ProviderEventKind,
}

/// The checkout session an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRef {
    /// The payment id the session was opened with (`CheckoutRequest::payment_id`), when the
    /// event carries it.
    pub payment_id: Option<String>,
    pub session_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderEventKind {
    /// A checkout completed. Not `paid` for a delayed method (e.g. bank debit): the money is not
    /// there yet, and a later event says whether it arrived.
    CheckoutCompleted {
        checkout: CheckoutRef,
        paid: bool,
        /// The amount the provider took, as it reports it.
        amount_pence: Option<i64>,
        currency: String,
        /// The provider's payment reference (what a refund names).
        payment_ref: Option<String>,
    },
    /// A checkout closed unpaid: its payment `failed`, or the session expired.
    CheckoutClosed { checkout: CheckoutRef, failed: bool },
    /// A charge was refunded at the provider; `refunded_pence` is its total refunded so far.
    Refunded {
        payment_ref: Option<String>,
        refunded_pence: i64,
    },
    /// An event type the core does not act on.
    Unused,
}

/// Why an incoming event was refused; nothing was recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventRejection {
    /// Missing, malformed, stale, or matching no configured secret.
    #[error("{0}")]
    Signature(String),
    /// Genuine, but not an event the adapter can read.
    #[error("{0}")]
    BadPayload(String),
}

/// The provider's incoming events: its adapter checks the signature on the raw body and reads
/// its wire format. Pure (no I/O): the same input at the same `now` gives the same answer.
pub trait ProviderEvents: Send + Sync {
    fn parse_event(
        &self,
        signature_header: Option<&str>,
        raw: &[u8],
        now: Timestamp,
    ) -> Result<ProviderEvent, EventRejection>;
}
