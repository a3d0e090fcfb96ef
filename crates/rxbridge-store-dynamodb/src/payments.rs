//! The unit-of-work and payment ports on DynamoDB: `commit` (built in `commit`) and the
//! payment reads through pointer items and GSIs.

use crate::rx_items::*;
use crate::{DynamoStore, Query, unexpected};
use async_trait::async_trait;
use jiff::civil::Date;
use rxbridge_app::payments::{Change, PaymentRecord};
use rxbridge_app::ports::*;
use rxbridge_domain::lifecycle::Status;

#[async_trait]
impl UnitOfWork for DynamoStore {
    async fn commit(&self, change: Change) -> Result<Option<PrescriptionRecord>, StoreError> {
        if change.transition.is_some() && change.events.is_empty() {
            return Err(unexpected("a transition needs an event"));
        }
        let change = &change;
        self.write(|seq| self.build_commit(change, seq)).await
    }

    async fn seen(&self, source: &str, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(&format!("SEEN#{source}#{id}"), "SEEN")
            .await?
            .is_some())
    }
}

#[async_trait]
impl PaymentStore for DynamoStore {
    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_item_of(id)
            .await?
            .map(|i| parse_payment(&i))
            .transpose()
    }

    async fn payment_for_prescription(
        &self,
        prescription_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_by_pointer(format!("PAYRX#{prescription_id}"), "PAYRX")
            .await
    }

    async fn payment_by_session(
        &self,
        session_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_by_pointer(format!("PAYSESS#{session_id}"), "PAYSESS")
            .await
    }

    async fn payment_by_ref(&self, payment_ref: &str) -> Result<Option<PaymentRecord>, StoreError> {
        self.payment_by_pointer(format!("PAYREF#{payment_ref}"), "PAYREF")
            .await
    }

    async fn payments_needing_attention(
        &self,
        limit: u32,
    ) -> Result<Vec<(PaymentRecord, Status)>, StoreError> {
        let rows = self
            .query(Query::partition(Some("gsi2"), "PAYATTN").limit(limit as usize))
            .await?;
        let payments: Vec<PaymentRecord> =
            rows.iter().map(parse_payment).collect::<Result<_, _>>()?;
        let rx = self
            .rx_records(payments.iter().map(|p| p.prescription_id.clone()).collect())
            .await?;
        Ok(payments
            .into_iter()
            .filter_map(|p| {
                let st = rx.get(&p.prescription_id)?.status;
                // The index is eventually consistent: keep only what still needs the sweep.
                needs_attention(p.status, st).then_some((p, st))
            })
            .collect())
    }

    async fn payments_charged_between(
        &self,
        mode: Mode,
        from: Date,
        to: Date,
    ) -> Result<Vec<(PaymentRecord, PrescriptionRecord)>, StoreError> {
        let mut payments = Vec::new();
        let mut month = from.first_of_month();
        while month <= to {
            let rows = self
                .query(
                    Query::partition(
                        Some("gsi3"),
                        format!(
                            "PAYMONTH#{}#{:04}-{:02}",
                            mode.as_str(),
                            month.year(),
                            month.month()
                        ),
                    )
                    .between(from.to_string(), format!("{to}~")),
                )
                .await?;
            for r in &rows {
                payments.push(parse_payment(r)?);
            }
            month = month
                .checked_add(jiff::Span::new().months(1))
                .map_err(unexpected)?;
        }
        let rx = self
            .rx_records(payments.iter().map(|p| p.prescription_id.clone()).collect())
            .await?;
        Ok(payments
            .into_iter()
            .filter_map(|p| {
                let r = rx.get(&p.prescription_id)?.clone();
                Some((p, r))
            })
            .collect())
    }
}
