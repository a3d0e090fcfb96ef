//! Approval: the payment record planned for a prescription being approved (quote, deadline,
//! provider) and the event that records it.

use super::*;

impl Payments {
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
        // An NHS prescription that did not carry its exemption is priced on the declaration
        // recorded at the pharmacy (none yet: the charge is not yet known, and pricing refuses).
        let declared;
        let rx = match rxbridge_domain::declaration::charge_details(rx, rec.nhs_exemption.as_ref())
        {
            Some(nhs) if rx.nhs.is_none() => {
                declared = Prescription {
                    nhs: Some(nhs),
                    ..rx.clone()
                };
                &declared
            }
            _ => rx,
        };
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
}
