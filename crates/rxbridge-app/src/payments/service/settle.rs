//! Settling a payment with its prescription: cancel what is unpaid when the prescription ended,
//! refund in full what was paid for a prescription that ended unsupplied.

use super::*;

impl Payments {
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

    /// After a prescription changed status (a cancellation, an expiry): settle its payment now
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
}
