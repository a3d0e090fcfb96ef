//! Items written before state binding carry no `event_seq`, so the state guard refuses to act
//! on them. `adopt_unbound` (the operator's `rxbridge-aws adopt-state`, once, after upgrading)
//! binds them as found: each batch of up to 25 items is bound into a `state.adopted` event and
//! the items name it, in one transaction conditional on the item still being unbound. From then
//! on an edit is caught as for any other row; an edit made before cannot be told from the chain.

use crate::items::{self, key, n, pad, rx_pk};
use crate::{DynamoStore, Tx};
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::StoreError;
use rxbridge_app::state::Binding;
use rxbridge_app::transfer::{Dump, Record};

const BATCH: usize = 25;

impl DynamoStore {
    /// Bind every unbound prescription, payment, outbox message and register entry. Returns
    /// how many were bound. Safe to run again (bound items are left alone).
    pub async fn adopt_unbound(&self) -> Result<u64, StoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let reading = self.dump(tx);
        let adopting = async {
            let mut total = 0u64;
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(r) = rx.recv().await {
                let unbound = match &r {
                    Record::Prescription { record, .. } => record.event_seq == 0,
                    Record::Payment(p) => p.event_seq == 0,
                    Record::Message(m) => m.event_seq == 0,
                    Record::RegisterEntry(e) => e.event_seq == 0,
                    _ => false,
                };
                if unbound {
                    batch.push(r);
                }
                if batch.len() == BATCH {
                    total += self.adopt_batch(std::mem::take(&mut batch)).await?;
                }
            }
            if !batch.is_empty() {
                total += self.adopt_batch(batch).await?;
            }
            Ok::<u64, StoreError>(total)
        };
        let (read, adopted) = tokio::join!(reading, adopting);
        read?;
        adopted
    }

    async fn adopt_batch(&self, rows: Vec<Record>) -> Result<u64, StoreError> {
        let t = self.table.as_str();
        let count = rows.len() as u64;
        self.write(|first_seq| {
            let rows = &rows;
            async move {
                let mut tx = Tx::default();
                let mut binding = Binding::default();
                let unbound = "attribute_not_exists(#event_seq) OR #event_seq = :zero";
                for r in rows {
                    let (k, set, extra) = match r.clone() {
                        Record::Prescription { mut record, .. } => {
                            record.event_seq = first_seq;
                            binding.prescription(&record);
                            (key(rx_pk(&record.id), "RX"), "SET #event_seq = :es", None)
                        }
                        Record::Payment(mut p) => {
                            p.event_seq = first_seq;
                            binding.payment(&p);
                            let doc = serde_json::to_string(&p).map_err(crate::unexpected)?;
                            (
                                key(crate::rx_items::pay_pk(&p.id), "PAY"),
                                "SET #event_seq = :es, #doc = :doc",
                                Some(doc),
                            )
                        }
                        Record::Message(m) => {
                            binding.message(&m.message);
                            (
                                key(crate::fulfilment::msg_pk(&m.message.id), "MSG"),
                                "SET #event_seq = :es",
                                None,
                            )
                        }
                        Record::RegisterEntry(mut e) => {
                            e.event_seq = first_seq;
                            binding.entry(&e);
                            (
                                key(
                                    format!("REG#{}#{}", e.entry.register.as_str(), e.entry.section),
                                    pad(e.seq),
                                ),
                                "SET #event_seq = :es",
                                None,
                            )
                        }
                        _ => continue,
                    };
                    let mut values = vec![(":es", n(first_seq)), (":zero", n(0))];
                    if let Some(doc) = extra {
                        values.push((":doc", items::s(doc)));
                    }
                    tx.push(
                        items::update(t, k, set, Some(unbound), values)?,
                        items::Role::Conflict,
                    );
                }
                let mut e = NewEvent {
                    at: jiff::Timestamp::now(),
                    kind: "state.adopted".into(),
                    actor: "system".into(),
                    subject: "state".into(),
                    detail: serde_json::json!({
                        "rows": rows.len(),
                        "reason": "rows written before state binding, bound as found at the upgrade",
                    }),
                };
                binding.apply(&mut e);
                tx.events.push(e);
                Ok((tx, ()))
            }
        })
        .await?;
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing;
    use aws_sdk_dynamodb::types::AttributeValue;
    use rxbridge_app::contract::{
        approve_change, clinic, fulfilment, keys, new_rx, payment, record,
    };
    use rxbridge_app::payments::PaymentStatus;
    use rxbridge_app::ports::{Mode, PaymentStore, StaffViews, Store};
    use rxbridge_app::registers::{EntryKind, Register, RegisterStore};
    use rxbridge_app::state::StateGuard;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn items_from_before_state_binding_are_adopted_once_and_then_guarded() {
        let store = Arc::new(testing::fresh_store().await);
        let s: Arc<dyn Store> = store.clone();
        clinic(&s, "cl_a").await;
        s.insert_prescription(new_rx(
            record("rx_1", "cl_a", Mode::Test, "R-1"),
            "k1",
            keys(None, "d1"),
        ))
        .await
        .unwrap();
        let mut change = approve_change(
            "rx_1",
            1,
            payment("pay_1", "rx_1", PaymentStatus::AwaitingPayment),
        );
        change
            .register
            .push(fulfilment::entry(EntryKind::Receipt, 10));
        s.commit(change).await.unwrap();
        // The items as an older version wrote them: no event_seq (in the payment's document
        // neither).
        let strip = |pk: String, sk: String| {
            let store = store.clone();
            async move {
                store
                    .client
                    .update_item()
                    .table_name(store.table())
                    .key("pk", AttributeValue::S(pk))
                    .key("sk", AttributeValue::S(sk))
                    .update_expression("REMOVE event_seq")
                    .send()
                    .await
                    .unwrap();
            }
        };
        strip("RX#rx_1".into(), "RX".into()).await;
        strip("PAY#pay_1".into(), "PAY".into()).await;
        let e = store
            .last_register_entry(Register::Cd, "CONCERTA-XL-36")
            .await
            .unwrap()
            .unwrap();
        strip("REG#cd#CONCERTA-XL-36".into(), crate::items::pad(e.seq)).await;
        let mut p = store.get_payment("pay_1").await.unwrap().unwrap();
        p.event_seq = 0;
        store
            .client
            .update_item()
            .table_name(store.table())
            .key("pk", AttributeValue::S("PAY#pay_1".into()))
            .key("sk", AttributeValue::S("PAY".into()))
            .update_expression("SET #d = :d")
            .expression_attribute_names("#d", "doc")
            .expression_attribute_values(
                ":d",
                AttributeValue::S(serde_json::to_string(&p).unwrap()),
            )
            .send()
            .await
            .unwrap();
        let rx = store
            .get_prescription_for_staff(Mode::Test, "rx_1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.event_seq, 0);
        let guard = StateGuard::new(store.as_ref());
        assert!(
            guard.prescription(&rx, "test").await.is_err(),
            "unbound is refused"
        );

        assert_eq!(store.adopt_unbound().await.unwrap(), 3);
        assert_eq!(store.adopt_unbound().await.unwrap(), 0, "once");
        let rx = store
            .get_prescription_for_staff(Mode::Test, "rx_1")
            .await
            .unwrap()
            .unwrap();
        let p = store.get_payment("pay_1").await.unwrap().unwrap();
        let e = store
            .last_register_entry(Register::Cd, "CONCERTA-XL-36")
            .await
            .unwrap()
            .unwrap();
        guard.prescription(&rx, "test").await.unwrap();
        guard.payment(&p, "test").await.unwrap();
        guard.entry(&e, "test").await.unwrap();
        assert_eq!(
            rxbridge_app::audit::verify_state(store.as_ref(), store.as_ref())
                .await
                .unwrap(),
            []
        );
        assert!(
            rxbridge_app::audit::verify_chain(store.as_ref())
                .await
                .is_ok()
        );
    }
}
