//! Reads the store ports on DynamoDB are built from: prescriptions by id and by page, lookup
//! partitions, distinct-value partitions and payment pointers.

use crate::items::{Get, Item, pad, parse_rx, rx_pk};
use crate::rx_items::*;
use crate::{DynamoStore, Query};
use aws_sdk_dynamodb::types::AttributeValue;
use rxbridge_app::payments::PaymentRecord;
use rxbridge_app::ports::*;
use std::collections::HashMap;

impl DynamoStore {
    pub(crate) async fn rx_item(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.get(&rx_pk(id), "RX").await
    }

    pub(crate) async fn rx(&self, id: &str) -> Result<Option<PrescriptionRecord>, StoreError> {
        self.rx_item(id)
            .await?
            .map(|i| parse_rx(&i).map(|(_, r)| r))
            .transpose()
    }

    pub(crate) async fn payment_item_of(&self, id: &str) -> Result<Option<Item>, StoreError> {
        self.get(&pay_pk(id), "PAY").await
    }

    /// Prescriptions by id, in the order given (missing ones left out).
    pub(crate) async fn rx_many(
        &self,
        ids: &[String],
    ) -> Result<Vec<PrescriptionRecord>, StoreError> {
        let found = self
            .get_many(ids.iter().map(|id| (rx_pk(id), "RX".to_string())).collect())
            .await?;
        ids.iter()
            .filter_map(|id| found.get(&rx_pk(id)))
            .map(|i| parse_rx(i).map(|(_, r)| r))
            .collect()
    }

    /// A page of prescriptions from a GSI partition (cursor = the prescription's `seq`).
    pub(crate) async fn rx_page(
        &self,
        index: &'static str,
        pk: String,
        after: Option<i64>,
        newest_first: bool,
        filter: Option<(&str, Vec<(&str, AttributeValue)>)>,
        limit: u32,
    ) -> Result<Page, StoreError> {
        let mut q = Query::partition(Some(index), pk);
        if let Some(a) = after {
            q = q.sort(if newest_first { "<" } else { ">" }, pad(a));
        }
        if newest_first {
            q = q.newest_first();
        }
        if let Some((f, v)) = filter {
            q = q.filter(f, v);
        }
        let rows = self.query(q.limit(limit as usize + 1)).await?;
        let more = rows.len() > limit as usize;
        let mut items = Vec::new();
        let mut last = None;
        for i in rows.iter().take(limit as usize) {
            let (seq, r) = parse_rx(i)?;
            last = Some(seq);
            items.push(r);
        }
        Ok(Page {
            items,
            next: if more { last } else { None },
        })
    }

    /// The prescription ids of a patient-lookup partition, newest first.
    pub(crate) async fn ids_by_lookup(
        &self,
        pk: String,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let rows = self
            .query(
                Query::partition(None, pk)
                    .newest_first()
                    .limit(limit as usize),
            )
            .await?;
        rows.iter().map(|i| Get(i).s("rx")).collect()
    }

    /// The status of each prescription named (for the payment sweep and period queries).
    pub(crate) async fn rx_records(
        &self,
        ids: Vec<String>,
    ) -> Result<HashMap<String, PrescriptionRecord>, StoreError> {
        let found = self
            .get_many(ids.iter().map(|id| (rx_pk(id), "RX".to_string())).collect())
            .await?;
        found
            .values()
            .map(|i| parse_rx(i).map(|(_, r)| (r.id.clone(), r)))
            .collect()
    }

    /// Ordered history rows of one lookup partition: (seq, item), newest first.
    pub(crate) async fn history_rows(
        &self,
        pk: String,
        limit: u32,
    ) -> Result<Vec<Item>, StoreError> {
        self.query(
            Query::partition(None, pk)
                .newest_first()
                .limit(limit as usize),
        )
        .await
    }

    /// The sort keys (distinct values) of the first `limit` items of a distinct-value partition.
    pub(crate) async fn distinct(
        &self,
        pk: String,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        Ok(self
            .query(Query::partition(None, pk).limit(limit))
            .await?
            .iter()
            .filter_map(|i| Get(i).opt_s("sk"))
            .collect())
    }

    pub(crate) async fn payment_by_pointer(
        &self,
        pk: String,
        sk: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let Some(ptr) = self.get(&pk, sk).await? else {
            return Ok(None);
        };
        self.get_payment(&Get(&ptr).s("payment_id")?).await
    }
}
