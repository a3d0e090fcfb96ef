//! Money: the payment record and its unit of work, the provider and notifier ports,
//! Stripe's webhook signature, and the payments use case.

pub mod model;
pub mod notify;
pub mod provider;
pub mod service;
pub mod signature;

pub use model::{Change, PaymentRecord, PaymentStatus, PaymentWrite, TransitionTo};
pub use notify::{Notifier, OutgoingEmail, contact_line};
pub use provider::{
    CheckoutRequest, CheckoutSession, PaymentProvider, ProviderError, RefundRequest, RefundResult,
};
pub use service::{
    LinkMessage, LinkView, PaymentError, Payments, PaymentsConfig, SandboxOutcome, TickReport,
    WebhookError, WebhookOutcome,
};
