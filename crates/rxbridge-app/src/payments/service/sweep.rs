//! The sweep: unsent links, due reminders, cancellation or expiry past the deadline, owed
//! refunds — run every minute, idempotent.

use super::*;

impl Payments {
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
}
