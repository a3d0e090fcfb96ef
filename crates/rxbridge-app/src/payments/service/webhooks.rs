//! The provider's signed webhooks: checkout paid, checkout closed, charge refunded — each applied
//! once (deduplicated on the provider's event id).

use super::*;

impl Payments {
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
}
