//! The provider's events: checkout paid, checkout closed, charge refunded — each applied once
//! (deduplicated on the provider's event id). The adapter behind `ProviderEvents` checks the
//! signature and reads its wire format; the decisions are made here.

use super::*;

/// What applying one event did, and the payment to settle afterwards (money that arrived for a
/// prescription that had already ended).
type Applied = (WebhookOutcome, Option<String>);

impl Payments {
    /// A provider event, as received: the raw body and its signature header.
    pub async fn handle_webhook(
        &self,
        raw: &[u8],
        signature_header: Option<&str>,
    ) -> Result<WebhookOutcome, WebhookError> {
        let event = self
            .events
            .parse_event(signature_header, raw, self.clock.now())?;
        self.apply_event(&event).await
    }

    /// Apply a verified provider event (from the provider's webhook or the sandbox page).
    pub(super) async fn apply_event(
        &self,
        event: &ProviderEvent,
    ) -> Result<WebhookOutcome, WebhookError> {
        let id = event.id.as_str();
        for _ in 0..MAX_RETRIES {
            let outcome = match &event.kind {
                ProviderEventKind::CheckoutCompleted {
                    checkout,
                    paid,
                    amount_pence,
                    currency,
                    payment_ref,
                } => {
                    let reported = Reported {
                        amount_pence: amount_pence.unwrap_or(-1),
                        currency,
                        payment_ref: payment_ref.as_deref(),
                    };
                    self.on_checkout_completed(id, checkout, *paid, reported)
                        .await
                }
                ProviderEventKind::CheckoutClosed { checkout, failed } => {
                    self.on_checkout_closed(id, checkout, *failed).await
                }
                ProviderEventKind::Refunded {
                    payment_ref,
                    refunded_pence,
                } => {
                    self.on_refunded(id, payment_ref.as_deref(), *refunded_pence)
                        .await
                }
                ProviderEventKind::Unused => {
                    return Ok(WebhookOutcome::Ignored("event type not used"));
                }
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

    async fn checkout_payment(
        &self,
        checkout: &CheckoutRef,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        if let Some(id) = &checkout.payment_id
            && let Some(p) = self.store.get_payment(id).await?
        {
            return Ok(Some(p));
        }
        match &checkout.session_id {
            Some(sid) => self.store.payment_by_session(sid).await,
            None => Ok(None),
        }
    }

    /// Mark seen without other change (stale or already-applied events).
    async fn seen(&self, event_id: &str, why: &'static str) -> Result<Applied, StoreError> {
        self.store
            .commit(Change {
                dedupe: Some((DEDUPE_SCOPE.into(), event_id.into())),
                ..Change::default()
            })
            .await?;
        Ok((WebhookOutcome::Ignored(why), None))
    }

    /// Write a payment update caused by provider event `event_id`, once, with its event.
    async fn provider_update(
        &self,
        next: PaymentRecord,
        event_id: &str,
        ev: NewEvent,
        done: &'static str,
    ) -> Result<Applied, StoreError> {
        self.store
            .commit(Change {
                payment: Some(PaymentWrite::Update(next)),
                dedupe: Some((DEDUPE_SCOPE.into(), event_id.into())),
                events: vec![ev],
                ..Change::default()
            })
            .await?;
        Ok((WebhookOutcome::Applied(done), None))
    }

    async fn on_checkout_completed(
        &self,
        event_id: &str,
        checkout: &CheckoutRef,
        paid: bool,
        reported: Reported<'_>,
    ) -> Result<Applied, StoreError> {
        let Some(p) = self.checkout_payment(checkout).await? else {
            tracing::warn!(event = event_id, "a checkout event for an unknown payment");
            return Ok((WebhookOutcome::Ignored("unknown payment"), None));
        };
        if !paid {
            // Completed with a delayed method (e.g. bank debit): the money is not there yet.
            let ev = self.event(
                "payment.processing",
                "provider",
                &p.prescription_id,
                json!({ "payment_id": p.id, "provider_event": event_id }),
            );
            self.store
                .commit(Change {
                    dedupe: Some((DEDUPE_SCOPE.into(), event_id.into())),
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
        let Reported {
            amount_pence: amount,
            currency,
            payment_ref,
        } = reported;
        let now = self.clock.now();
        let mut next = p.next_version(now);
        next.payment_ref = payment_ref.map(str::to_string).or(next.payment_ref);
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
            return self
                .provider_update(next, event_id, ev, "amount mismatch recorded")
                .await;
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
        change.dedupe = Some((DEDUPE_SCOPE.into(), event_id.into()));
        self.store.commit(change).await?;
        Ok((WebhookOutcome::Applied("payment recorded"), settle))
    }

    async fn on_checkout_closed(
        &self,
        event_id: &str,
        checkout: &CheckoutRef,
        failed: bool,
    ) -> Result<Applied, StoreError> {
        let Some(p) = self.checkout_payment(checkout).await? else {
            return Ok((WebhookOutcome::Ignored("unknown payment"), None));
        };
        let session = checkout.session_id.as_deref();
        if p.status != PaymentStatus::AwaitingPayment || session != p.session_id.as_deref() {
            // Out of order or about an older session: nothing to change.
            return self.seen(event_id, "not the open session").await;
        }
        let mut next = p.next_version(self.clock.now());
        next.session_id = None;
        next.session_url = None;
        next.session_expires_at = None;
        let what = if failed {
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
        self.provider_update(next, event_id, ev, "checkout closed")
            .await
    }

    async fn on_refunded(
        &self,
        event_id: &str,
        payment_ref: Option<&str>,
        refunded: i64,
    ) -> Result<Applied, StoreError> {
        let Some(pi) = payment_ref else {
            return Ok((WebhookOutcome::Ignored("no payment intent"), None));
        };
        let Some(p) = self.store.payment_by_ref(pi).await? else {
            return Ok((WebhookOutcome::Ignored("unknown payment"), None));
        };
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
        self.provider_update(next, event_id, ev, "refund recorded")
            .await
    }
}

/// What the provider reported for a paid checkout (an absent amount is read as -1: never the
/// quote, so it is recorded as a mismatch).
struct Reported<'a> {
    amount_pence: i64,
    currency: &'a str,
    payment_ref: Option<&'a str>,
}
