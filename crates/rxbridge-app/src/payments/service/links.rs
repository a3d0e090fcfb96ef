//! The patient's payment link: the keyed link token, the link and reminder emails, and the
//! checkout session the link opens.

use super::*;

impl Payments {
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
}
