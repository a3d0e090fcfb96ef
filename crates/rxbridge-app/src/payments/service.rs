//! The payments use case: price at approval, a payment link by email, checkout sessions opened
//! from the link, fulfilment only from the provider's signed webhooks, refunds when a paid
//! prescription ends unsupplied, reminders and automatic cancellation by a sweep.
//!
//! Crash safety: every decision is written (with its events) before the outside is called, and
//! the sweep (`tick`) finds whatever an interrupted step left behind — an unsent link, an
//! owed refund — and finishes it. Provider calls carry idempotency keys derived from the
//! payment id, so a repeat never charges or refunds twice.

use super::model::*;
use super::notify::{Notifier, OutgoingEmail};
use super::provider::*;
use super::signature::{self, SignatureError};
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
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error("the event is not a Stripe event object: {0}")]
    BadPayload(String),
    #[error(transparent)]
    Store(#[from] StoreError),
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
    sandbox: Arc<dyn PaymentProvider>,
    notifier: Arc<dyn Notifier>,
    /// The provider's endpoint secrets (several while one is rolled).
    webhook_secrets: Vec<String>,
    /// Signs the sandbox checkout page's events; never leaves the process.
    sandbox_secret: String,
    cfg: PaymentsConfig,
}

const MAX_RETRIES: usize = 3;

/// A payment update caused by provider event `event_id`, applied once.
fn provider_update(next: PaymentRecord, event_id: &str, ev: NewEvent) -> Change {
    Change {
        payment: Some(PaymentWrite::Update(next)),
        dedupe: Some(("stripe".into(), event_id.into())),
        events: vec![ev],
        ..Change::default()
    }
}

impl Payments {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        intake: Arc<Intake>,
        live: Arc<dyn PaymentProvider>,
        notifier: Arc<dyn Notifier>,
        webhook_secrets: Vec<String>,
        mut cfg: PaymentsConfig,
    ) -> Self {
        cfg.public_url = cfg.public_url.trim_end_matches('/').to_string();
        let sandbox_secret = format!("whsec_sandbox_{}", crate::PatientVault::generate_key_hex());
        let mac_intake = intake.clone();
        let sandbox: Arc<dyn PaymentProvider> =
            Arc::new(SandboxProvider::new(&cfg.public_url, move |v| {
                mac_intake.vault().lookup("sandbox-provider", v)
            }));
        Self {
            store,
            clock,
            intake,
            live,
            sandbox,
            notifier,
            webhook_secrets,
            sandbox_secret,
            cfg,
        }
    }

    pub fn config(&self) -> &PaymentsConfig {
        &self.cfg
    }

    fn provider_for_mode(&self, mode: Mode) -> &Arc<dyn PaymentProvider> {
        match mode {
            Mode::Test => &self.sandbox,
            Mode::Live => &self.live,
        }
    }

    fn provider_named(&self, name: &str) -> &Arc<dyn PaymentProvider> {
        if name == self.sandbox.name() {
            &self.sandbox
        } else {
            &self.live
        }
    }

    fn event(&self, kind: &str, actor: &str, subject: &str, detail: Value) -> NewEvent {
        NewEvent {
            at: self.clock.now(),
            kind: kind.into(),
            actor: actor.into(),
            subject: subject.into(),
            detail,
        }
    }

    // ----- links ---------------------------------------------------------------------------

    fn link_tag(&self, payment_id: &str) -> String {
        self.intake.vault().lookup("payment-link", payment_id)[..32].to_string()
    }

    /// The patient's payment link: the payment id and a keyed hash of it, so it cannot be
    /// guessed from an id and needs no stored secret.
    pub fn link_for(&self, payment_id: &str) -> String {
        format!("{}/pay/{}", self.cfg.public_url, self.token_for(payment_id))
    }

    pub fn token_for(&self, payment_id: &str) -> String {
        format!("{payment_id}.{}", self.link_tag(payment_id))
    }

    /// The payment a link token names, if the token is genuine.
    pub fn payment_id_from_token(&self, token: &str) -> Option<String> {
        use subtle::ConstantTimeEq;
        let (id, tag) = token.split_once('.')?;
        if !id.starts_with("pay_") || id.len() > 64 {
            return None;
        }
        let expected = self.link_tag(id);
        bool::from(expected.as_bytes().ct_eq(tag.as_bytes())).then(|| id.to_string())
    }

    // ----- approval ------------------------------------------------------------------------

    /// The payment record for a prescription being approved now: the quote fixed on today's
    /// date, and the deadline (payment window, never past the CD validity window).
    pub fn plan(
        &self,
        rec: &PrescriptionRecord,
        rx: &Prescription,
    ) -> Result<PaymentRecord, PaymentError> {
        let now = self.clock.now();
        let today = rxbridge_domain::dates::london_date(now);
        let formulary = Formulary::builtin();
        let quote = pricing::quote(rx, formulary, self.cfg.fees, today)?;
        let window_end = now
            .checked_add(self.cfg.window)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let cd_end = pricing::cd_last_valid_day(rx, formulary).and_then(|last| {
            last.tomorrow()
                .ok()?
                .to_zoned_datetime(london().clone())
                .ok()
                .map(|z| z.timestamp())
        });
        let (due_by, is_cd) = match cd_end {
            Some(cd) if cd < window_end => (cd, true),
            _ => (window_end, false),
        };
        let status = if quote.is_due() {
            PaymentStatus::AwaitingPayment
        } else {
            PaymentStatus::NotDue
        };
        Ok(PaymentRecord {
            id: format!("pay_{}", uuid::Uuid::now_v7().simple()),
            prescription_id: rec.id.clone(),
            clinic_id: rec.clinic_id.clone(),
            mode: rec.mode,
            status,
            quote,
            provider: self.provider_for_mode(rec.mode).name().into(),
            session_id: None,
            session_url: None,
            session_expires_at: None,
            session_attempts: 0,
            payment_ref: None,
            paid_pence: 0,
            paid_at: None,
            refund_ref: None,
            refunded_pence: 0,
            refunded_at: None,
            link_sent_at: None,
            reminders_sent: 0,
            due_by,
            due_by_is_cd_window: is_cd,
            attention: None,
            created_at: now,
            updated_at: now,
            version: 1,
            event_seq: 0,
        })
    }

    /// The event recording a planned payment (written with the approval).
    pub fn planned_event(&self, p: &PaymentRecord, actor: &str) -> NewEvent {
        let kind = if p.status == PaymentStatus::NotDue {
            "payment.not_due"
        } else {
            "payment.requested"
        };
        self.event(
            kind,
            actor,
            &p.prescription_id,
            json!({
                "payment_id": p.id,
                "kind": p.quote.kind.as_str(),
                "amount_pence": p.quote.total_pence,
                "exemption": p.quote.exemption,
                "due_by": p.due_by.to_string(),
                "provider": p.provider,
            }),
        )
    }

    /// Email the payment link (or a reminder). Without an email address on the prescription,
    /// the link is recorded as not emailed (staff can read it out from the portal).
    pub async fn send_link(
        &self,
        payment_id: &str,
        message: LinkMessage,
        actor: &str,
    ) -> Result<(), PaymentError> {
        for _ in 0..MAX_RETRIES {
            let p = self.get(payment_id).await?;
            if p.status != PaymentStatus::AwaitingPayment {
                return Ok(());
            }
            let rec = self.prescription(&p).await?;
            let rx = self.intake.open(&rec)?;
            let now = self.clock.now();
            let mut next = p.next_version(now);
            match message {
                LinkMessage::First => next.link_sent_at = Some(now),
                LinkMessage::Reminder => next.reminders_sent += 1,
                LinkMessage::Resend => {}
            }
            let kind = match message {
                LinkMessage::First => "payment_link",
                LinkMessage::Reminder => "payment_reminder",
                LinkMessage::Resend => "payment_link_resent",
            };
            let event = match &rx.patient.email {
                Some(email) => {
                    let mail = self.link_email(&p, &rx, email.as_str(), message);
                    self.notifier.send(&mail).await?;
                    self.event(
                        "notification.sent",
                        actor,
                        &p.prescription_id,
                        json!({ "kind": kind, "channel": "email", "payment_id": p.id }),
                    )
                }
                None => self.event(
                    "notification.not_sent",
                    actor,
                    &p.prescription_id,
                    json!({ "kind": kind, "reason": "the prescription has no patient email address; give the patient the link from the portal", "payment_id": p.id }),
                ),
            };
            match self
                .store
                .commit(Change {
                    payment: Some(PaymentWrite::Update(next)),
                    events: vec![event],
                    ..Change::default()
                })
                .await
            {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
    }

    fn link_email(
        &self,
        p: &PaymentRecord,
        rx: &Prescription,
        to: &str,
        message: LinkMessage,
    ) -> OutgoingEmail {
        let due = p
            .due_by
            .to_zoned_datetime(london().clone())
            .strftime("%-d %B %Y at %H:%M");
        let what = match p.quote.kind {
            QuoteKind::NhsCharge => format!(
                "the NHS prescription charge for {} item(s)",
                p.quote.lines.len()
            ),
            _ => "your order".to_string(),
        };
        let opening = match message {
            LinkMessage::Reminder => "A reminder: your order is still waiting for payment.",
            _ => "Our pharmacist has checked your prescription and it is ready for payment.",
        };
        let text = format!(
            "Hello {name},\n\n{opening}\n\nOrder reference: {rx_id}\nAmount to pay: {amount} ({what})\n\nPay securely here:\n{link}\n\nPlease pay by {due} (UK time). If payment has not reached us by then, the order will be cancelled.\n\n{contact}\n\n{pharmacy}\n",
            name = rx.patient.given_name,
            rx_id = p.prescription_id,
            amount = p.quote.total(),
            link = self.link_for(&p.id),
            pharmacy = self.cfg.pharmacy_name,
            contact = self.cfg.contact_line,
        );
        OutgoingEmail {
            to: to.to_string(),
            subject: match message {
                LinkMessage::Reminder => {
                    format!("Reminder: payment for order {}", p.prescription_id)
                }
                _ => format!("Payment for your order {}", p.prescription_id),
            },
            text,
            reference: format!(
                "{}-{}-{}",
                match message {
                    LinkMessage::First => "link",
                    LinkMessage::Reminder => "reminder",
                    LinkMessage::Resend => "resend",
                },
                p.id,
                p.version
            ),
        }
    }

    // ----- the patient's link ------------------------------------------------------------------

    /// What the patient's link shows: the provider's checkout (opening a session when none is
    /// open) or the payment's state.
    pub async fn open_link(&self, token: &str) -> Result<LinkView, PaymentError> {
        let id = self
            .payment_id_from_token(token)
            .ok_or(PaymentError::BadLink)?;
        for _ in 0..MAX_RETRIES {
            let p = self.get(&id).await?;
            let now = self.clock.now();
            if p.status != PaymentStatus::AwaitingPayment || now >= p.due_by {
                return Ok(LinkView::Status(Box::new(p)));
            }
            if let (Some(url), Some(exp)) = (&p.session_url, p.session_expires_at)
                && exp > now + SignedDuration::from_mins(5)
            {
                return Ok(LinkView::Redirect(url.clone()));
            }
            let attempt = p.session_attempts + 1;
            let lifetime_end = now + self.cfg.session_lifetime;
            let expires_at = lifetime_end
                .min(p.due_by)
                .max(now + SignedDuration::from_mins(31));
            let token = self.token_for(&p.id);
            let req = CheckoutRequest {
                payment_id: p.id.clone(),
                idempotency_key: format!("{}-checkout-{attempt}", p.id),
                amount_pence: p.quote.total_pence,
                description: format!("Pharmacy order {}", p.prescription_id),
                customer_email: None,
                success_url: format!("{}/pay/{token}/complete", self.cfg.public_url),
                cancel_url: format!("{}/pay/{token}/complete", self.cfg.public_url),
                expires_at,
            };
            let session = self
                .provider_named(&p.provider)
                .create_checkout(&req)
                .await?;
            let mut next = p.next_version(now);
            next.session_attempts = attempt;
            next.session_id = Some(session.id.clone());
            next.session_url = Some(session.url.clone());
            next.session_expires_at = Some(session.expires_at);
            let ev = self.event(
                "payment.checkout_opened",
                "patient",
                &p.prescription_id,
                json!({ "payment_id": p.id, "attempt": attempt, "session": session.id, "provider": p.provider }),
            );
            match self
                .store
                .commit(Change {
                    payment: Some(PaymentWrite::Update(next)),
                    events: vec![ev],
                    ..Change::default()
                })
                .await
            {
                Ok(_) => return Ok(LinkView::Redirect(session.url)),
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict.into())
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

    // ----- webhooks ------------------------------------------------------------------------

    /// A provider event, as received (raw body and its `Stripe-Signature` header).
    pub async fn handle_webhook(
        &self,
        raw: &[u8],
        signature_header: Option<&str>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let mut secrets = self.webhook_secrets.clone();
        secrets.push(self.sandbox_secret.clone());
        signature::verify(
            signature_header,
            raw,
            &secrets,
            self.clock.now().as_second(),
        )?;
        let v: Value = serde_json::from_slice(raw)
            .map_err(|e| WebhookError::BadPayload(format!("not JSON: {e}")))?;
        let event_id = v["id"]
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| WebhookError::BadPayload("no event id".into()))?
            .to_string();
        let kind = v["type"]
            .as_str()
            .ok_or_else(|| WebhookError::BadPayload("no event type".into()))?
            .to_string();
        let object = &v["data"]["object"];
        if !object.is_object() {
            return Err(WebhookError::BadPayload("no data.object".into()));
        }
        for _ in 0..MAX_RETRIES {
            let outcome = match kind.as_str() {
                "checkout.session.completed" | "checkout.session.async_payment_succeeded" => {
                    self.on_checkout_paid(&event_id, &kind, object).await
                }
                "checkout.session.async_payment_failed" | "checkout.session.expired" => {
                    self.on_checkout_closed(&event_id, &kind, object).await
                }
                "charge.refunded" => self.on_charge_refunded(&event_id, object).await,
                _ => return Ok(WebhookOutcome::Ignored("event type not used")),
            };
            match outcome {
                Err(StoreError::Conflict) => continue,
                Err(StoreError::Duplicate) => return Ok(WebhookOutcome::Duplicate),
                Err(e) => return Err(e.into()),
                Ok((out, settle)) => {
                    if let Some(id) = settle
                        && let Err(e) = self.settle(&id, "system").await
                    {
                        // The sweep retries; the webhook itself was applied.
                        tracing::warn!(payment = %id, error = %e, "settling after a webhook failed; the sweep will retry");
                    }
                    return Ok(out);
                }
            }
        }
        Err(StoreError::Conflict.into())
    }

    async fn checkout_payment(&self, object: &Value) -> Result<Option<PaymentRecord>, StoreError> {
        let by_ref = object["client_reference_id"]
            .as_str()
            .or_else(|| object["metadata"]["payment_id"].as_str());
        if let Some(id) = by_ref
            && let Some(p) = self.store.get_payment(id).await?
        {
            return Ok(Some(p));
        }
        match object["id"].as_str() {
            Some(sid) => self.store.payment_by_session(sid).await,
            None => Ok(None),
        }
    }

    /// Mark seen without other change (stale or already-applied events).
    async fn seen(
        &self,
        event_id: &str,
        why: &'static str,
    ) -> Result<(WebhookOutcome, Option<String>), StoreError> {
        self.store
            .commit(Change {
                dedupe: Some(("stripe".into(), event_id.into())),
                ..Change::default()
            })
            .await?;
        Ok((WebhookOutcome::Ignored(why), None))
    }

    async fn on_checkout_paid(
        &self,
        event_id: &str,
        kind: &str,
        object: &Value,
    ) -> Result<(WebhookOutcome, Option<String>), StoreError> {
        let Some(p) = self.checkout_payment(object).await? else {
            tracing::warn!(event = event_id, "a checkout event for an unknown payment");
            return Ok((WebhookOutcome::Ignored("unknown payment"), None));
        };
        let paid_now = kind == "checkout.session.async_payment_succeeded"
            || object["payment_status"].as_str() == Some("paid");
        if !paid_now {
            // Completed with a delayed method (e.g. bank debit): the money is not there yet.
            let ev = self.event(
                "payment.processing",
                "provider",
                &p.prescription_id,
                json!({ "payment_id": p.id, "provider_event": event_id }),
            );
            self.store
                .commit(Change {
                    dedupe: Some(("stripe".into(), event_id.into())),
                    events: vec![ev],
                    ..Change::default()
                })
                .await?;
            return Ok((WebhookOutcome::Applied("payment processing"), None));
        }
        if matches!(
            p.status,
            PaymentStatus::Paid | PaymentStatus::RefundPending | PaymentStatus::Refunded
        ) {
            return self.seen(event_id, "already paid").await;
        }
        if p.status == PaymentStatus::NotDue {
            return self.seen(event_id, "nothing was due").await;
        }
        let amount = object["amount_total"].as_i64().unwrap_or(-1);
        let currency = object["currency"].as_str().unwrap_or("");
        let payment_ref = object["payment_intent"]
            .as_str()
            .or_else(|| object["payment_intent"]["id"].as_str())
            .map(str::to_string);
        let now = self.clock.now();
        let mut next = p.next_version(now);
        next.payment_ref = payment_ref.clone().or(next.payment_ref);
        if amount != p.quote.total_pence || !currency.eq_ignore_ascii_case("gbp") {
            next.paid_pence = amount.max(0);
            next.attention = Some(format!(
                "the provider reported {} {}, the quote is {} GBP; check and refund by hand",
                rxbridge_domain::money::Money::pence(amount)
                    .to_string()
                    .replace('£', ""),
                currency.to_ascii_uppercase(),
                p.quote.total().to_string().replace('£', ""),
            ));
            let ev = self.event(
                "payment.amount_mismatch",
                "provider",
                &p.prescription_id,
                json!({ "payment_id": p.id, "expected_pence": p.quote.total_pence, "reported_pence": amount, "currency": currency, "provider_event": event_id }),
            );
            self.store
                .commit(provider_update(next, event_id, ev))
                .await?;
            return Ok((WebhookOutcome::Applied("amount mismatch recorded"), None));
        }
        next.status = PaymentStatus::Paid;
        next.paid_pence = amount;
        next.paid_at = Some(now);
        next.session_url = None;
        let rec = self
            .store
            .get_prescription_for_staff(p.mode, &p.prescription_id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let paid_ev = self.event(
            "payment.succeeded",
            "provider",
            &p.prescription_id,
            json!({ "payment_id": p.id, "amount_pence": amount, "payment_ref": payment_ref, "provider_event": event_id, "from": rec.status.as_str() }),
        );
        let (mut change, settle) = match rec
            .status
            .payment_received()
            .and_then(|s| s.release_for_fulfilment())
        {
            Ok(to) => (
                Change::move_to(
                    &rec,
                    to,
                    vec![
                        paid_ev,
                        self.event(
                            "prescription.ready_for_fulfilment",
                            "system",
                            &p.prescription_id,
                            json!({ "from": Status::Paid.as_str(), "payment_id": p.id }),
                        ),
                    ],
                ),
                None,
            ),
            // Paid after it was cancelled or expired: the money goes back.
            Err(_) => (
                Change {
                    events: vec![paid_ev],
                    ..Change::default()
                },
                Some(p.id.clone()),
            ),
        };
        change.payment = Some(PaymentWrite::Update(next));
        change.dedupe = Some(("stripe".into(), event_id.into()));
        self.store.commit(change).await?;
        Ok((WebhookOutcome::Applied("payment recorded"), settle))
    }

    async fn on_checkout_closed(
        &self,
        event_id: &str,
        kind: &str,
        object: &Value,
    ) -> Result<(WebhookOutcome, Option<String>), StoreError> {
        let Some(p) = self.checkout_payment(object).await? else {
            return Ok((WebhookOutcome::Ignored("unknown payment"), None));
        };
        let session = object["id"].as_str();
        if p.status != PaymentStatus::AwaitingPayment || session != p.session_id.as_deref() {
            // Out of order or about an older session: nothing to change.
            return self.seen(event_id, "not the open session").await;
        }
        let mut next = p.next_version(self.clock.now());
        next.session_id = None;
        next.session_url = None;
        next.session_expires_at = None;
        let what = if kind.ends_with("failed") {
            "payment.failed"
        } else {
            "payment.checkout_expired"
        };
        let ev = self.event(
            what,
            "provider",
            &p.prescription_id,
            json!({ "payment_id": p.id, "session": session, "provider_event": event_id }),
        );
        self.store
            .commit(provider_update(next, event_id, ev))
            .await?;
        Ok((WebhookOutcome::Applied("checkout closed"), None))
    }

    async fn on_charge_refunded(
        &self,
        event_id: &str,
        object: &Value,
    ) -> Result<(WebhookOutcome, Option<String>), StoreError> {
        let Some(pi) = object["payment_intent"].as_str() else {
            return Ok((WebhookOutcome::Ignored("no payment intent"), None));
        };
        let Some(p) = self.store.payment_by_ref(pi).await? else {
            return Ok((WebhookOutcome::Ignored("unknown payment"), None));
        };
        let refunded = object["amount_refunded"].as_i64().unwrap_or(0);
        if refunded <= p.refunded_pence {
            return self.seen(event_id, "refund already recorded").await;
        }
        let ours = matches!(
            p.status,
            PaymentStatus::RefundPending | PaymentStatus::Refunded
        );
        let now = self.clock.now();
        let mut next = p.next_version(now);
        next.refunded_pence = refunded;
        next.refunded_at = Some(now);
        if refunded >= p.paid_pence {
            next.status = PaymentStatus::Refunded;
        }
        if !ours {
            next.attention = Some(format!(
                "{} refunded at the provider without a cancellation here",
                rxbridge_domain::money::Money::pence(refunded)
            ));
        }
        let ev = self.event(
            if ours {
                "payment.refund_confirmed"
            } else {
                "payment.refunded_at_provider"
            },
            "provider",
            &p.prescription_id,
            json!({ "payment_id": p.id, "refunded_pence": refunded, "provider_event": event_id }),
        );
        self.store
            .commit(provider_update(next, event_id, ev))
            .await?;
        Ok((WebhookOutcome::Applied("refund recorded"), None))
    }

    // ----- settling: cancellation and refunds ---------------------------------------------------

    /// Bring a payment in line with its prescription: an unpaid one whose prescription ended is
    /// cancelled; a paid one whose prescription ended unsupplied is refunded in full. Safe to
    /// call any number of times.
    pub async fn settle(&self, payment_id: &str, actor: &str) -> Result<(), PaymentError> {
        for _ in 0..MAX_RETRIES {
            let p = self.get(payment_id).await?;
            let rec = self.prescription(&p).await?;
            let ended = rec.status.ended_unsupplied();
            let now = self.clock.now();
            let mut next = p.next_version(now);
            let ev = match (p.status, ended) {
                (PaymentStatus::AwaitingPayment, true) => {
                    next.status = PaymentStatus::Cancelled;
                    next.session_url = None;
                    self.event(
                        "payment.cancelled",
                        actor,
                        &p.prescription_id,
                        json!({ "payment_id": p.id, "prescription_status": rec.status.as_str() }),
                    )
                }
                (PaymentStatus::Paid, true) => {
                    next.status = PaymentStatus::RefundPending;
                    self.event(
                        "payment.refund_owed",
                        actor,
                        &p.prescription_id,
                        json!({ "payment_id": p.id, "amount_pence": p.paid_pence - p.refunded_pence, "prescription_status": rec.status.as_str() }),
                    )
                }
                (PaymentStatus::RefundPending, _) => return self.refund(p, actor).await,
                _ => return Ok(()),
            };
            match self
                .store
                .commit(Change {
                    payment: Some(PaymentWrite::Update(next.clone())),
                    events: vec![ev],
                    ..Change::default()
                })
                .await
            {
                Ok(_) => {}
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
            if next.status == PaymentStatus::Cancelled {
                if let Some(sid) = &p.session_id
                    && let Err(e) = self.provider_named(&p.provider).expire_checkout(sid).await
                {
                    // A payment through a session we failed to close is refunded on arrival.
                    tracing::warn!(payment = %p.id, error = %e, "could not expire the checkout session");
                }
                return Ok(());
            }
            return self.refund(next, actor).await;
        }
        Err(StoreError::Conflict.into())
    }

    async fn refund(&self, p: PaymentRecord, actor: &str) -> Result<(), PaymentError> {
        let owed = p.paid_pence - p.refunded_pence;
        if owed <= 0 {
            return Ok(());
        }
        // Money leaves only for a payment (and prescription) the audit chain speaks for: the
        // stored rows are checked (the caller's copy may predate its own write).
        let p = self.get(&p.id).await?;
        let guard = crate::state::StateGuard::new(self.store.as_ref());
        guard
            .payment(&p, "refund")
            .await
            .map_err(StoreError::from)?;
        let rec = self.prescription(&p).await?;
        guard
            .prescription(&rec, "refund")
            .await
            .map_err(StoreError::from)?;
        let Some(payment_ref) = p.payment_ref.clone() else {
            return Err(
                anyhow::anyhow!("payment {} has no provider reference to refund", p.id).into(),
            );
        };
        let req = RefundRequest {
            payment_id: p.id.clone(),
            payment_ref,
            amount_pence: owed,
            idempotency_key: format!("{}-refund-{}", p.id, p.refunded_pence),
        };
        let result = self.provider_named(&p.provider).refund(&req).await;
        let now = self.clock.now();
        let mut next = p.next_version(now);
        let ev = match &result {
            Ok(r) if matches!(r.status.as_str(), "succeeded" | "pending") => {
                next.status = PaymentStatus::Refunded;
                next.refund_ref = Some(r.id.clone());
                next.refunded_pence = p.paid_pence;
                next.refunded_at = Some(now);
                next.attention = None;
                self.event(
                    "payment.refunded",
                    actor,
                    &p.prescription_id,
                    json!({ "payment_id": p.id, "amount_pence": owed, "refund_ref": r.id, "provider_status": r.status }),
                )
            }
            Ok(r) => {
                next.attention = Some(format!(
                    "the provider answered the refund with status {}",
                    r.status
                ));
                self.event(
                    "payment.refund_failed",
                    actor,
                    &p.prescription_id,
                    json!({ "payment_id": p.id, "provider_status": r.status }),
                )
            }
            Err(ProviderError::Refused(why)) => {
                next.attention = Some(format!("refund refused by the provider: {why}"));
                self.event(
                    "payment.refund_failed",
                    actor,
                    &p.prescription_id,
                    json!({ "payment_id": p.id, "error": why }),
                )
            }
            Err(e @ ProviderError::Unavailable(_)) => {
                return Err(PaymentError::Unexpected(anyhow::anyhow!("{e}")));
            }
        };
        self.store
            .commit(Change {
                payment: Some(PaymentWrite::Update(next)),
                events: vec![ev],
                ..Change::default()
            })
            .await?;
        Ok(())
    }

    /// After a prescription changed status elsewhere (a cancellation): settle its payment now
    /// rather than at the next sweep.
    pub async fn prescription_changed(&self, prescription_id: &str, actor: &str) {
        match self.store.payment_for_prescription(prescription_id).await {
            Ok(Some(p)) => {
                if let Err(e) = self.settle(&p.id, actor).await {
                    tracing::warn!(payment = %p.id, error = %e, "settling failed; the sweep will retry");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "looking up a payment failed"),
        }
    }

    // ----- the sweep -------------------------------------------------------------------------

    /// Send unsent links and due reminders, cancel (or expire) what is unpaid past its
    /// deadline, and finish owed refunds. Run every minute by the server; idempotent.
    pub async fn tick(&self) -> Result<TickReport, PaymentError> {
        let mut report = TickReport::default();
        let work = self.store.payments_needing_attention(500).await?;
        for (p, rx_status) in work {
            let r = self.tick_one(&p, rx_status, &mut report).await;
            if let Err(e) = r {
                report.failures += 1;
                tracing::warn!(payment = %p.id, error = %e, "payment sweep step failed");
            }
        }
        Ok(report)
    }

    async fn tick_one(
        &self,
        p: &PaymentRecord,
        rx_status: Status,
        report: &mut TickReport,
    ) -> Result<(), PaymentError> {
        let now = self.clock.now();
        if p.status == PaymentStatus::AwaitingPayment && rx_status == Status::AwaitingPayment {
            if now >= p.due_by {
                let expired = self.close_unpaid(p).await?;
                if expired {
                    report.expired += 1;
                } else {
                    report.cancelled += 1;
                }
            } else if p.link_sent_at.is_none() {
                self.send_link(&p.id, LinkMessage::First, "system").await?;
                report.links_sent += 1;
            } else if p.reminders_sent == 0
                && p.link_sent_at
                    .is_some_and(|t| now >= t + self.cfg.reminder_after)
            {
                self.send_link(&p.id, LinkMessage::Reminder, "system")
                    .await?;
                report.reminders_sent += 1;
            }
            return Ok(());
        }
        let before = p.status;
        self.settle(&p.id, "system").await?;
        if before != PaymentStatus::Refunded
            && self.get(&p.id).await?.status == PaymentStatus::Refunded
        {
            report.refunded += 1;
        }
        Ok(())
    }

    /// Unpaid past the deadline: cancel (payment window) or expire (CD window) the
    /// prescription and the payment together. Returns true when it expired.
    async fn close_unpaid(&self, p: &PaymentRecord) -> Result<bool, PaymentError> {
        let rec = self.prescription(p).await?;
        let (to, kind, reason) = if p.due_by_is_cd_window {
            (
                rec.status.expire(),
                "prescription.expired",
                "unpaid when the 28-day controlled-drug validity window closed",
            )
        } else {
            (
                rec.status.cancel(),
                "prescription.cancelled",
                "payment not received within the payment window",
            )
        };
        let to = to.map_err(|e| anyhow::anyhow!("{e}"))?;
        let now = self.clock.now();
        let mut next = p.next_version(now);
        next.status = PaymentStatus::Cancelled;
        next.session_url = None;
        let mut change = Change::move_to(
            &rec,
            to,
            vec![
                self.event(
                    kind,
                    "system",
                    &rec.id,
                    json!({ "from": rec.status.as_str(), "reason": reason, "payment_id": p.id }),
                ),
                self.event(
                    "payment.cancelled",
                    "system",
                    &rec.id,
                    json!({ "payment_id": p.id, "reason": reason }),
                ),
            ],
        );
        change.payment = Some(PaymentWrite::Update(next));
        self.store.commit(change).await?;
        if let Some(sid) = &p.session_id
            && let Err(e) = self.provider_named(&p.provider).expire_checkout(sid).await
        {
            tracing::warn!(payment = %p.id, error = %e, "could not expire the checkout session");
        }
        Ok(to == Status::Expired)
    }

    // ----- sandbox -----------------------------------------------------------------------------

    /// The sandbox checkout page's payment behind `session_id`, while it is the open session.
    pub async fn sandbox_session(&self, session_id: &str) -> Result<PaymentRecord, PaymentError> {
        let p = self
            .store
            .payment_by_session(session_id)
            .await?
            .ok_or(PaymentError::NotFound)?;
        if p.provider != self.sandbox.name()
            || p.session_id.as_deref() != Some(session_id)
            || p.status != PaymentStatus::AwaitingPayment
        {
            return Err(PaymentError::NotFound);
        }
        Ok(p)
    }

    /// The sandbox page's buttons: build the event Stripe would send, sign it with the sandbox
    /// secret and deliver it through `handle_webhook` — the same path as a real one.
    pub async fn sandbox_complete(
        &self,
        session_id: &str,
        outcome: SandboxOutcome,
    ) -> Result<(PaymentRecord, WebhookOutcome), PaymentError> {
        let p = self.sandbox_session(session_id).await?;
        let now = self.clock.now().as_second();
        let (kind, status) = match outcome {
            SandboxOutcome::Pay => ("checkout.session.completed", "paid"),
            SandboxOutcome::Decline => ("checkout.session.async_payment_failed", "unpaid"),
        };
        let intent = format!(
            "pi_sandbox_{}",
            &self.intake.vault().lookup("sandbox-intent", &p.id)[..24]
        );
        let body = json!({
            "id": format!("evt_sandbox_{}", uuid::Uuid::now_v7().simple()),
            "object": "event",
            "type": kind,
            "created": now,
            "livemode": false,
            "data": { "object": {
                "id": session_id,
                "object": "checkout.session",
                "client_reference_id": p.id,
                "amount_total": p.quote.total_pence,
                "currency": "gbp",
                "payment_status": status,
                "payment_intent": if outcome == SandboxOutcome::Pay { Value::from(intent) } else { Value::Null },
                "metadata": { "payment_id": p.id },
            }},
        })
        .to_string();
        let header = signature::sign(&self.sandbox_secret, now, body.as_bytes());
        let out = self
            .handle_webhook(body.as_bytes(), Some(&header))
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((self.get(&p.id).await?, out))
    }
}
