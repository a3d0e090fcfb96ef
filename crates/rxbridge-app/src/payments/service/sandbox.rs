//! The built-in sandbox checkout: its page's payment and the signed event its buttons send.

use super::*;

impl Payments {
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
