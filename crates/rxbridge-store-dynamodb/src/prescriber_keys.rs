//! The prescriber-key port on DynamoDB: `CLINIC#{id}` / `PKEY#{kid}`, beside the clinic item,
//! so a clinic's keys are one partition query. Written with its event in one transaction,
//! conditioned on the clinic existing and the kid being new; never deleted.

use crate::items::{self, Get, Item, Role, key, s};
use crate::{DynamoStore, Query, Tx};
use async_trait::async_trait;
use jiff::Timestamp;
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::StoreError;
use rxbridge_app::signatures::{PrescriberKey, PrescriberKeyStore, SigningAlg};

fn clinic_pk(id: &str) -> String {
    format!("CLINIC#{id}")
}

fn key_sk(kid: &str) -> String {
    format!("PKEY#{kid}")
}

pub(crate) fn key_item(k: &PrescriberKey) -> Item {
    let mut attrs = vec![
        ("clinic_id", s(&k.clinic_id)),
        ("kid", s(&k.kid)),
        ("registration", s(&k.registration)),
        ("alg", s(k.alg.as_str())),
        ("public_key_pem", s(&k.public_key_pem)),
        ("added_at", s(k.added_at.to_string())),
    ];
    if let Some(r) = k.revoked_at {
        attrs.push(("revoked_at", s(r.to_string())));
    }
    items::item(clinic_pk(&k.clinic_id), key_sk(&k.kid), attrs)
}

pub(crate) fn parse_key(i: &Item) -> Result<PrescriberKey, StoreError> {
    let g = Get(i);
    let alg = g.s("alg")?;
    Ok(PrescriberKey {
        clinic_id: g.s("clinic_id")?,
        kid: g.s("kid")?,
        registration: g.s("registration")?,
        alg: SigningAlg::parse(&alg).ok_or_else(|| crate::unexpected(format!("bad alg {alg}")))?,
        public_key_pem: g.s("public_key_pem")?,
        added_at: g.ts("added_at")?,
        revoked_at: g
            .opt_s("revoked_at")
            .map(|v| v.parse())
            .transpose()
            .map_err(crate::unexpected)?,
    })
}

#[async_trait]
impl PrescriberKeyStore for DynamoStore {
    async fn add_prescriber_key(
        &self,
        k: PrescriberKey,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let t = self.table.as_str();
        self.write(|_| {
            let (k, event) = (&k, &event);
            async move {
                let mut tx = Tx {
                    ops: vec![],
                    events: vec![event.clone()],
                };
                tx.push(
                    items::check(
                        t,
                        key(clinic_pk(&k.clinic_id), "CLINIC"),
                        "attribute_exists(#pk)",
                        [],
                    )?,
                    Role::NotFound,
                );
                tx.push(
                    items::put(t, key_item(k), Some("attribute_not_exists(#pk)"))?,
                    Role::Duplicate,
                );
                Ok((tx, ()))
            }
        })
        .await
    }

    async fn prescriber_key(
        &self,
        clinic_id: &str,
        kid: &str,
    ) -> Result<Option<PrescriberKey>, StoreError> {
        self.get(&clinic_pk(clinic_id), &key_sk(kid))
            .await?
            .map(|i| parse_key(&i))
            .transpose()
    }

    async fn prescriber_keys(&self, clinic_id: &str) -> Result<Vec<PrescriberKey>, StoreError> {
        let mut keys = self
            .query(Query::partition(None, clinic_pk(clinic_id)).between("PKEY#", "PKEY#\u{10FFFF}"))
            .await?
            .iter()
            .map(parse_key)
            .collect::<Result<Vec<_>, _>>()?;
        keys.sort_by(|a, b| (a.added_at, &a.kid).cmp(&(b.added_at, &b.kid)));
        Ok(keys)
    }

    async fn revoke_prescriber_key(
        &self,
        clinic_id: &str,
        kid: &str,
        at: Timestamp,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let t = self.table.as_str();
        let current = self.prescriber_key(clinic_id, kid).await?;
        match current {
            None => return Err(StoreError::NotFound),
            Some(k) if k.revoked_at.is_some() => return Err(StoreError::Conflict),
            Some(_) => {}
        }
        self.write(|_| {
            let event = &event;
            async move {
                let mut tx = Tx {
                    ops: vec![],
                    events: vec![event.clone()],
                };
                tx.push(
                    items::update(
                        t,
                        key(clinic_pk(clinic_id), key_sk(kid)),
                        "SET #revoked_at = :at",
                        Some("attribute_exists(#pk) AND attribute_not_exists(#revoked_at)"),
                        [(":at", s(at.to_string()))],
                    )?,
                    Role::Conflict,
                );
                Ok((tx, ()))
            }
        })
        .await
    }
}
