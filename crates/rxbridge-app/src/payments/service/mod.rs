//! The payments use case: price at approval, a payment link by email, checkout sessions opened
//! from the link, fulfilment only from the provider's signed webhooks, refunds when a paid
//! prescription ends unsupplied, reminders and automatic cancellation by a sweep.
//!
//! Crash safety: every decision is written (with its events) before the outside is called, and
//! the sweep (`tick`) finds whatever an interrupted step left behind — an unsent link, an
//! owed refund — and finishes it. Provider calls carry idempotency keys derived from the
//! payment id, so a repeat never charges or refunds twice.

mod approval;
mod cancel;
mod links;
mod sandbox;
mod settle;
mod sweep;
mod webhooks;

use super::model::*;
use super::notify::{Notifier, OutgoingEmail};
use super::provider::*;
use super::sandbox::SandboxProvider;
use crate::clock::Clock;
use crate::events::NewEvent;
use crate::intake::Intake;
use crate::ports::{Mode, PrescriptionRecord, Store, StoreError};
use jiff::SignedDuration;
use rxbridge_domain::dates::london;
use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::Prescription;
use rxbridge_domain::pricing::{self, Fees, PricingError, QuoteKind};
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct PaymentsConfig {
    /// Where patients reach this service (`https://pharmacy.example`): links are built on it.
    pub public_url: String,
    pub fees: Fees,
    /// Unpaid this long after approval, the prescription is cancelled.
    pub window: SignedDuration,
    /// One reminder this long after the link, while still unpaid.
    pub reminder_after: SignedDuration,
    /// A checkout session's life (Stripe allows 30 minutes to 24 hours).
    pub session_lifetime: SignedDuration,
    /// Shown in emails.
    pub pharmacy_name: String,
    /// The closing line of patient emails (`notify::contact_line`).
    pub contact_line: String,
}

impl Default for PaymentsConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            fees: Fees::default(),
            window: SignedDuration::from_hours(72),
            reminder_after: SignedDuration::from_hours(24),
            session_lifetime: SignedDuration::from_hours(24),
            pharmacy_name: "rxbridge pharmacy".into(),
            contact_line: super::notify::contact_line(false, None),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PaymentError {
    #[error("no such payment")]
    NotFound,
    #[error("this payment link is not valid")]
    BadLink,
    #[error(transparent)]
    Pricing(#[from] PricingError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(#[from] anyhow::Error),
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// Missing, malformed, stale or matching no configured secret.
    #[error("{0}")]
    Signature(String),
    #[error("the event cannot be read: {0}")]
    BadPayload(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<EventRejection> for WebhookError {
    fn from(e: EventRejection) -> Self {
        match e {
            EventRejection::Signature(why) => WebhookError::Signature(why),
            EventRejection::BadPayload(why) => WebhookError::BadPayload(why),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    Applied(&'static str),
    /// This event id was processed before.
    Duplicate,
    /// Understood and deliberately not acted on (unknown type, unknown payment, stale).
    Ignored(&'static str),
}

/// What the patient's link leads to.
#[derive(Debug, Clone)]
pub enum LinkView {
    /// Off to the provider's checkout page.
    Redirect(String),
    /// Nothing to pay now: say why.
    Status(Box<PaymentRecord>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMessage {
    First,
    Reminder,
    /// A member of staff asked for it to be sent again.
    Resend,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    pub links_sent: u32,
    pub reminders_sent: u32,
    pub cancelled: u32,
    pub expired: u32,
    pub refunded: u32,
    pub failures: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxOutcome {
    Pay,
    Decline,
}

pub struct Payments {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    intake: Arc<Intake>,
    /// Live-mode payments go here; test-mode ones always to the sandbox.
    live: Arc<dyn PaymentProvider>,
    sandbox: Arc<SandboxProvider>,
    /// Reads the provider's webhook (signature and wire format).
    events: Arc<dyn ProviderEvents>,
    notifier: Arc<dyn Notifier>,
    cfg: PaymentsConfig,
}

const MAX_RETRIES: usize = 3;

/// The de-duplication scope of provider event ids (named after the first provider; stored
/// rows carry it, so it stays).
const DEDUPE_SCOPE: &str = "stripe";

impl Payments {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        intake: Arc<Intake>,
        live: Arc<dyn PaymentProvider>,
        events: Arc<dyn ProviderEvents>,
        notifier: Arc<dyn Notifier>,
        mut cfg: PaymentsConfig,
    ) -> Self {
        cfg.public_url = cfg.public_url.trim_end_matches('/').to_string();
        let mac_intake = intake.clone();
        let sandbox = Arc::new(SandboxProvider::new(&cfg.public_url, move |v| {
            mac_intake.vault().lookup("sandbox-provider", v)
        }));
        Self {
            store,
            clock,
            intake,
            live,
            sandbox,
            events,
            notifier,
            cfg,
        }
    }

    pub fn config(&self) -> &PaymentsConfig {
        &self.cfg
    }

    fn provider_for_mode(&self, mode: Mode) -> &dyn PaymentProvider {
        match mode {
            Mode::Test => self.sandbox.as_ref(),
            Mode::Live => self.live.as_ref(),
        }
    }

    fn provider_named(&self, name: &str) -> &dyn PaymentProvider {
        if name == self.sandbox.name() {
            self.sandbox.as_ref()
        } else {
            self.live.as_ref()
        }
    }

    fn event(&self, kind: &str, actor: &str, subject: &str, detail: Value) -> NewEvent {
        NewEvent::new(self.clock.now(), kind, actor, subject, detail)
    }

    pub async fn get(&self, id: &str) -> Result<PaymentRecord, PaymentError> {
        self.store
            .get_payment(id)
            .await?
            .ok_or(PaymentError::NotFound)
    }

    pub async fn for_prescription(
        &self,
        prescription_id: &str,
    ) -> Result<Option<PaymentRecord>, PaymentError> {
        Ok(self.store.payment_for_prescription(prescription_id).await?)
    }

    async fn prescription(&self, p: &PaymentRecord) -> Result<PrescriptionRecord, PaymentError> {
        self.store
            .get_prescription_for_staff(p.mode, &p.prescription_id)
            .await?
            .ok_or(PaymentError::NotFound)
    }
}
