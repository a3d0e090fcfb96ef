//! The built-in sandbox checkout: its page's payment and the signed event its buttons send.

use super::*;
use crate::payments::sandbox::SandboxEvent;

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

    /// The sandbox page's buttons: the sandbox signs the event and it is read back through the
    /// same `ProviderEvents` port as a real provider's webhook.
    pub async fn sandbox_complete(
        &self,
        session_id: &str,
        outcome: SandboxOutcome,
    ) -> Result<(PaymentRecord, WebhookOutcome), PaymentError> {
        let p = self.sandbox_session(session_id).await?;
        let intent = format!(
            "pi_sandbox_{}",
            &self.intake.vault().lookup("sandbox-intent", &p.id)[..24]
        );
        let (raw, signature) = self.sandbox.signed_event(&SandboxEvent {
            id: format!("evt_sandbox_{}", uuid::Uuid::now_v7().simple()),
            session_id: session_id.to_string(),
            payment_id: p.id.clone(),
            amount_pence: p.quote.total_pence,
            payment_ref: (outcome == SandboxOutcome::Pay).then_some(intent),
        });
        let out = async {
            let event = self
                .sandbox
                .parse_event(Some(&signature), &raw, self.clock.now())?;
            self.apply_event(&event).await
        }
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok((self.get(&p.id).await?, out))
    }
}
