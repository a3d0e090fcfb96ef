//! Money: the payment record and its unit of work, the provider and notifier ports, the
//! built-in sandbox provider, and the payments use case.

pub mod model;
pub mod notify;
pub mod provider;
pub mod sandbox;
pub mod service;

pub use model::{Change, PaymentRecord, PaymentStatus, PaymentWrite, TransitionTo};
pub use notify::{Notifier, OutgoingEmail, contact_line};
pub use provider::{
    CheckoutRef, CheckoutRequest, CheckoutSession, EventRejection, PaymentProvider, ProviderError,
    ProviderEvent, ProviderEventKind, ProviderEvents, RefundRequest, RefundResult,
};
pub use sandbox::{SandboxEvent, SandboxProvider};
pub use service::{
    LinkMessage, LinkView, PaymentError, Payments, PaymentsConfig, SandboxOutcome, TickReport,
    WebhookError, WebhookOutcome,
};
