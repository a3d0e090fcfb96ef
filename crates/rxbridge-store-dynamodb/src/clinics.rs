//! The clinic port on DynamoDB: clinics and their API keys (one item per key; the active keys
//! of each mode listed in one item per clinic, changed under a revision check).

use crate::items::{self, Get, Role, key, n, s};
use crate::rx_items::*;
use crate::{DynamoStore, Query, Tx, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::*;

#[async_trait]
impl ClinicStore for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| unexpected(crate::sdk_message(&e)))
    }

    async fn create_clinic(
        &self,
        clinic: Clinic,
        keys: Vec<ApiKeyRecord>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let t = self.table.as_str();
        self.write(|_| {
            let (clinic, keys, event) = (&clinic, &keys, &event);
            async move {
                let mut tx = Tx::default();
                tx.push(
                    items::put(t, clinic_item(clinic), Some("attribute_not_exists(#pk)"))?,
                    Role::Duplicate,
                );
                for mode in [Mode::Test, Mode::Live] {
                    let hashes: Vec<AttributeValue> = keys
                        .iter()
                        .filter(|k| k.mode == mode)
                        .map(|k| s(&k.key_hash))
                        .collect();
                    if !hashes.is_empty() {
                        tx.push(
                            items::put(
                                t,
                                items::item(
                                    format!("CLINIC#{}", clinic.id),
                                    format!("KEYS#{}", mode.as_str()),
                                    vec![("hashes", AttributeValue::L(hashes)), ("rev", n(1))],
                                ),
                                None,
                            )?,
                            Role::Other,
                        );
                    }
                }
                for k in keys {
                    tx.push(
                        items::put(t, key_item(k), Some("attribute_not_exists(#pk)"))?,
                        Role::Duplicate,
                    );
                }
                tx.events.push(event.clone());
                Ok((tx, ()))
            }
        })
        .await
    }

    async fn get_clinic(&self, clinic_id: &str) -> Result<Option<Clinic>, StoreError> {
        self.get(&format!("CLINIC#{clinic_id}"), "CLINIC")
            .await?
            .map(|i| parse_clinic(&i))
            .transpose()
    }

    async fn list_clinics(&self) -> Result<Vec<Clinic>, StoreError> {
        self.query(Query::partition(Some("gsi1"), "CLINICS"))
            .await?
            .iter()
            .map(parse_clinic)
            .collect()
    }

    async fn rotate_key(&self, key_rec: ApiKeyRecord, event: NewEvent) -> Result<(), StoreError> {
        let t = self.table.as_str();
        self.write(|_| {
            let (k, event) = (&key_rec, &event);
            async move {
                let clinic_pk = format!("CLINIC#{}", k.clinic_id);
                if self.get(&clinic_pk, "CLINIC").await?.is_none() {
                    return Err(StoreError::NotFound);
                }
                let keys_sk = format!("KEYS#{}", k.mode.as_str());
                let current = self.get(&clinic_pk, &keys_sk).await?;
                let mut tx = Tx::default();
                tx.push(
                    items::check(t, key(&clinic_pk, "CLINIC"), "attribute_exists(#pk)", [])?,
                    Role::NotFound,
                );
                let (old, rev) = match &current {
                    Some(i) => (Get(i).list_s("hashes"), Get(i).n("rev")?),
                    None => (vec![], 0),
                };
                for h in &old {
                    tx.push(
                        items::update(
                            t,
                            key(format!("KEY#{h}"), "KEY"),
                            "SET #revoked_at = :at",
                            Some("attribute_exists(#pk)"),
                            [(":at", s(k.created_at.to_string()))],
                        )?,
                        Role::Other,
                    );
                }
                tx.push(
                    items::put(t, key_item(k), Some("attribute_not_exists(#pk)"))?,
                    Role::Duplicate,
                );
                let pointer = items::item(
                    &clinic_pk,
                    &keys_sk,
                    vec![
                        ("hashes", AttributeValue::L(vec![s(&k.key_hash)])),
                        ("rev", n(rev + 1)),
                    ],
                );
                tx.push(
                    if current.is_some() {
                        items::put_if(t, pointer, "#rev = :r", [(":r", n(rev))])?
                    } else {
                        items::put(t, pointer, Some("attribute_not_exists(#pk)"))?
                    },
                    Role::Recheck,
                );
                tx.events.push(event.clone());
                Ok((tx, ()))
            }
        })
        .await
    }

    async fn find_api_key(&self, key_hash: &str) -> Result<Option<Caller>, StoreError> {
        let Some(i) = self.get(&format!("KEY#{key_hash}"), "KEY").await? else {
            return Ok(None);
        };
        let g = Get(&i);
        if g.opt_s("revoked_at").is_some() {
            return Ok(None);
        }
        let mode = g.s("mode")?;
        Ok(Some(Caller {
            clinic_id: g.s("clinic_id")?,
            mode: Mode::parse(&mode).ok_or_else(|| unexpected(format!("bad mode {mode}")))?,
        }))
    }
}
