//! The patient-index port on DynamoDB: history and identity signals from the base-table
//! lookup partitions (strongly consistent).

use crate::items::Get;
use crate::rx_items::*;
use crate::{DynamoStore, unexpected};
use async_trait::async_trait;
use jiff::civil::Date;
use rxbridge_app::ports::*;
use rxbridge_domain::compliance::{HistoryEntry, IdentitySignals, MAX_COUNTED_AT_ADDRESS};
use rxbridge_domain::lifecycle::Status;

#[async_trait]
impl PatientIndex for DynamoStore {
    async fn patient_history(
        &self,
        mode: Mode,
        keys: &PatientKeys,
        clinic_id: &str,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        // With an NHS number the patient is that number, plus records under their
        // demographics that carry no NHS number; without one, every record under the
        // demographics (see the SQLite store for the reasoning).
        let mut rows = match &keys.nhs {
            Some(nhs) => {
                let (a, b) = tokio::try_join!(
                    self.history_rows(pat_pk(mode, "n", nhs), limit),
                    self.history_rows(pat_pk(mode, "d0", &keys.demographic), limit),
                )?;
                let mut v = a;
                v.extend(b);
                v
            }
            None => {
                self.history_rows(pat_pk(mode, "d", &keys.demographic), limit)
                    .await?
            }
        };
        rows.sort_by_key(|i| std::cmp::Reverse(Get(i).n("seq").unwrap_or(0)));
        rows.truncate(limit as usize);
        let mut out = Vec::new();
        for i in &rows {
            let g = Get(i);
            let status = g.s("status")?;
            let status =
                Status::parse(&status).ok_or_else(|| unexpected(format!("bad status {status}")))?;
            let start: Date = g
                .s("issued_on")?
                .parse()
                .map_err(|e| unexpected(format!("issued_on: {e}")))?;
            let id = g.s("rx")?;
            let same = g.s("clinic_id")? == clinic_id;
            for it in g.json::<Vec<ItemSummary>>("items")? {
                out.push(HistoryEntry {
                    prescription_id: id.clone(),
                    same_clinic: same,
                    product_code: it.product_code,
                    active_ingredient: it.active_ingredient,
                    start,
                    days_supply: it.days_supply,
                    status,
                });
            }
        }
        Ok(out)
    }

    async fn identity_signals(
        &self,
        mode: Mode,
        keys: &PatientKeys,
    ) -> Result<IdentitySignals, StoreError> {
        // Distinct-value partitions, each read up to a fixed count (see `patient_items`).
        let me = keys.identity();
        let cap = MAX_COUNTED_AT_ADDRESS as usize;
        let at_address = self.distinct(pat_pk(mode, "ai", &keys.address), cap + 1);
        let nhs_other = async {
            match &keys.nhs {
                // At most one item is this patient's own value: two tell whether another exists.
                Some(nhs) => Ok(self
                    .distinct(pat_pk(mode, "nn", nhs), 2)
                    .await?
                    .iter()
                    .any(|nd| *nd != keys.name_dob)),
                None => Ok(false),
            }
        };
        let details_other = async {
            match &keys.nhs {
                Some(nhs) => Ok(self
                    .distinct(pat_pk(mode, "dn", &keys.name_dob), 2)
                    .await?
                    .iter()
                    .any(|n| n != nhs)),
                None => Ok(false),
            }
        };
        let (at_address, nhs_number_with_other_details, details_with_other_nhs_number) =
            tokio::try_join!(at_address, nhs_other, details_other)?;
        let others = at_address.iter().filter(|id| *id != me).take(cap).count();
        Ok(IdentitySignals {
            other_patients_at_address: u32::try_from(others).unwrap_or(u32::MAX),
            nhs_number_with_other_details,
            details_with_other_nhs_number,
        })
    }

    async fn patient_context(
        &self,
        mode: Mode,
        keys: &PatientKeys,
        clinic_id: &str,
        limit: u32,
    ) -> Result<(Vec<HistoryEntry>, IdentitySignals), StoreError> {
        tokio::try_join!(
            self.patient_history(mode, keys, clinic_id, limit),
            self.identity_signals(mode, keys)
        )
    }
}
