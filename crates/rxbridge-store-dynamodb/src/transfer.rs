//! Moving data in and out (`rxbridge_app::transfer`): an offline task, not a request path, so
//! export may `Scan` (one pass per kind, filtered on the key prefix); events and register
//! entries are read in order. Import writes with `BatchWriteItem` into an empty table and
//! rebuilds what the items derive from (pointers, chain and register heads, balances).

use crate::fulfilment::{
    attempt_item, balance_item, endpoint_item, entry_item, message_item, parse_attempt,
    parse_endpoint, parse_entry, parse_message, reg_head_item,
};
use crate::items::{self, Get, Item, event_item, parse_event, parse_rx, rx_pk, s};
use crate::rx_items::{
    clinic_item, idem_item, key_item, parse_clinic, parse_payment, patient_items, payment_item,
    seen_item,
};
use crate::staff::{parse_staff, staff_item};
use crate::{DynamoStore, Query, sdk_message, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use rxbridge_app::ports::{ApiKeyRecord, IdempotencyRecord, Mode, StoreError};
use rxbridge_app::registers::{GENESIS, Register};
use rxbridge_app::transfer::{Dump, Load, Record};
use std::collections::HashMap;
use tokio::sync::mpsc::Sender;

/// The kinds read by scanning, with the key prefix (and sort key, when one partition holds
/// several kinds) they are found by.
const SCANNED: [(&str, Option<&str>); 11] = [
    ("CLINIC#", Some("CLINIC")),
    ("KEY#", None),
    ("STAFF#", None),
    ("CLINIC#", Some("PKEY#")),
    ("RX#", None),
    ("IDEM#", None),
    ("PAY#", None),
    ("SEEN#", None),
    ("EP#", None),
    ("MSG#", Some("MSG")),
    ("MSG#", Some("ATTEMPT#")),
];

fn to_record(prefix: &str, sk: Option<&str>, i: &Item) -> Result<Record, StoreError> {
    let g = Get(i);
    Ok(match (prefix, sk) {
        ("CLINIC#", Some("PKEY#")) => Record::PrescriberKey(crate::prescriber_keys::parse_key(i)?),
        ("CLINIC#", _) => Record::Clinic(parse_clinic(i)?),
        ("KEY#", _) => {
            let mode = g.s("mode")?;
            Record::ApiKey {
                key: ApiKeyRecord {
                    key_hash: g.s("pk")?.trim_start_matches("KEY#").to_string(),
                    prefix: g.s("prefix")?,
                    clinic_id: g.s("clinic_id")?,
                    mode: Mode::parse(&mode).ok_or_else(|| unexpected("bad mode"))?,
                    created_at: g.ts("created_at")?,
                },
                revoked_at: g
                    .opt_s("revoked_at")
                    .map(|v| v.parse().map_err(unexpected))
                    .transpose()?,
            }
        }
        ("STAFF#", _) => Record::Staff(parse_staff(i)?),
        ("RX#", _) => {
            let (seq, record) = parse_rx(i)?;
            Record::Prescription {
                seq,
                record,
                patient: g.json("patient")?,
            }
        }
        ("IDEM#", _) => {
            let mode = g.s("mode")?;
            Record::Idempotency(IdempotencyRecord {
                clinic_id: g.s("clinic_id")?,
                mode: Mode::parse(&mode).ok_or_else(|| unexpected("bad mode"))?,
                key: g.s("key")?,
                request_hash: g.s("request_hash")?,
                response_status: u16::try_from(g.n("response_status")?).map_err(unexpected)?,
                response_body: g.s("response_body")?,
                created_at: g.ts("created_at")?,
            })
        }
        ("PAY#", _) => Record::Payment(parse_payment(i)?),
        ("SEEN#", _) => Record::Seen {
            source: g.s("source")?,
            id: g.s("id")?,
            at: g.ts("at")?,
        },
        ("EP#", _) => Record::Endpoint(parse_endpoint(i)?),
        ("MSG#", Some("MSG")) => Record::Message(parse_message(i)?),
        _ => Record::Attempt(parse_attempt(i)?),
    })
}

impl DynamoStore {
    /// Send every record of one kind (offline use only: a full `Scan`, page by page, so a
    /// large table is never held in memory). `false` when the reader went away.
    async fn scan_kind(
        &self,
        prefix: &str,
        sk: Option<&str>,
        out: &Sender<Record>,
    ) -> Result<bool, StoreError> {
        let mut start: Option<Item> = None;
        let filter = match sk {
            Some(_) => "begins_with(#pk, :p) AND begins_with(#sk, :s)",
            None => "begins_with(#pk, :p)",
        };
        loop {
            let mut req = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .filter_expression(filter)
                .expression_attribute_names("#pk", "pk")
                .expression_attribute_values(":p", s(prefix))
                .set_exclusive_start_key(start.take());
            if let Some(k) = sk {
                req = req
                    .expression_attribute_names("#sk", "sk")
                    .expression_attribute_values(":s", s(k));
            }
            let res = req.send().await.map_err(|e| unexpected(sdk_message(&e)))?;
            for i in res.items.unwrap_or_default() {
                if out.send(to_record(prefix, sk, &i)?).await.is_err() {
                    return Ok(false);
                }
            }
            match res.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(true),
            }
        }
    }

    /// Put items, 25 per `BatchWriteItem`, retrying what DynamoDB leaves unprocessed.
    async fn put_all(&self, all: Vec<Item>) -> Result<(), StoreError> {
        for chunk in all.chunks(25) {
            let mut pending: Vec<WriteRequest> = chunk
                .iter()
                .map(|i| {
                    PutRequest::builder()
                        .set_item(Some(i.clone()))
                        .build()
                        .map(|p| WriteRequest::builder().put_request(p).build())
                        .map_err(unexpected)
                })
                .collect::<Result<_, _>>()?;
            let mut round = 0u32;
            while !pending.is_empty() {
                round += 1;
                if round > 12 {
                    return Err(unexpected("batch write: items still unprocessed"));
                }
                let res = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| unexpected(sdk_message(&e)))?;
                pending = res
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                if !pending.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(20 << round.min(6))).await;
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Dump for DynamoStore {
    async fn dump(&self, out: Sender<Record>) -> Result<(), StoreError> {
        // Rank order: clinics, keys, staff, prescriber keys, prescriptions, idempotency,
        // payments, seen marks
        // by scanning; then events in order; then endpoints, messages, attempts; registers.
        for (prefix, sk) in &SCANNED[..8] {
            if !self.scan_kind(prefix, *sk, &out).await? {
                return Ok(());
            }
        }
        let mut after = 0;
        loop {
            let rows = self
                .query(
                    Query::partition(None, "EVT")
                        .sort(">", items::pad(after))
                        .limit(1000),
                )
                .await?;
            if rows.is_empty() {
                break;
            }
            for i in &rows {
                let e = parse_event(i)?;
                after = e.seq;
                if out.send(Record::Event(e)).await.is_err() {
                    return Ok(());
                }
            }
        }
        for (prefix, sk) in &SCANNED[8..] {
            if !self.scan_kind(prefix, *sk, &out).await? {
                return Ok(());
            }
        }
        let mut entries = Vec::new();
        for r in [Register::Cd, Register::Pom] {
            for i in self
                .query(Query::partition(
                    Some("gsi1"),
                    format!("REG#{}", r.as_str()),
                ))
                .await?
            {
                entries.push(parse_entry(&i)?);
            }
        }
        entries.sort_by_key(|e| e.seq);
        for e in entries {
            if out.send(Record::RegisterEntry(e)).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Load for DynamoStore {
    async fn check_empty(&self) -> Result<(), StoreError> {
        let res = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(1)
            .send()
            .await
            .map_err(|e| unexpected(sdk_message(&e)))?;
        if res.items.unwrap_or_default().is_empty() {
            Ok(())
        } else {
            Err(StoreError::Rejected(format!(
                "the table {} already holds data: import only into a new, empty table",
                self.table
            )))
        }
    }

    async fn load(&self, records: &[Record]) -> Result<(), StoreError> {
        let mut puts: Vec<Item> = Vec::new();
        // Active keys per (clinic, mode), appended to the clinic's pointer item.
        let mut active: HashMap<(String, Mode), Vec<String>> = HashMap::new();
        let mut last_event = None;
        let mut registers: Option<(i64, HashMap<Register, String>)> = None;
        let mut balances: HashMap<(Register, String), i64> = HashMap::new();
        for r in records {
            match r {
                Record::Clinic(c) => puts.push(clinic_item(c)),
                Record::ApiKey { key, revoked_at } => {
                    let mut i = key_item(key);
                    match revoked_at {
                        Some(t) => {
                            i.insert("revoked_at".into(), s(t.to_string()));
                        }
                        None => active
                            .entry((key.clinic_id.clone(), key.mode))
                            .or_default()
                            .push(key.key_hash.clone()),
                    }
                    puts.push(i);
                }
                Record::Staff(a) => {
                    puts.push(staff_item(a));
                    puts.push(items::item(
                        format!("EMAIL#{}", a.email),
                        "EMAIL",
                        vec![("staff_id", s(&a.id))],
                    ));
                }
                Record::Prescription {
                    seq,
                    record,
                    patient,
                } => {
                    let (lookups, hist) = patient_items(record, *seq, patient);
                    puts.push(items::rx_item(record, *seq, &hist, patient)?);
                    puts.extend(lookups);
                }
                Record::PrescriberKey(k) => puts.push(crate::prescriber_keys::key_item(k)),
                Record::Idempotency(i) => puts.push(idem_item(i)),
                Record::Payment(p) => {
                    let rx = self
                        .get(&rx_pk(&p.prescription_id), "RX")
                        .await?
                        .ok_or_else(|| {
                            StoreError::Rejected(format!(
                                "payment {} names a prescription the file does not hold",
                                p.id
                            ))
                        })?;
                    let (_, rec) = parse_rx(&rx)?;
                    puts.push(payment_item(p, rec.status)?);
                    let pointer = |kind: &str, v: &str| {
                        items::item(format!("{kind}#{v}"), kind, vec![("payment_id", s(&p.id))])
                    };
                    puts.push(pointer("PAYRX", &p.prescription_id));
                    if let Some(v) = &p.session_id {
                        puts.push(pointer("PAYSESS", v));
                    }
                    if let Some(v) = &p.payment_ref {
                        puts.push(pointer("PAYREF", v));
                    }
                }
                Record::Seen { source, id, at } => puts.push(seen_item(source, id, *at)),
                Record::Event(e) => {
                    puts.push(event_item(e.seq, &e.event, &e.prev_hash, &e.hash));
                    last_event = Some((e.seq, e.hash.clone()));
                }
                Record::Endpoint(e) => puts.push(endpoint_item(e)),
                Record::Message(m) => puts.push(message_item(m, None)),
                Record::Attempt(a) => puts.push(attempt_item(a)),
                Record::RegisterEntry(e) => {
                    if registers.is_none() {
                        registers = Some(match self.get("REGHEAD", "HEAD").await? {
                            Some(h) => {
                                let g = Get(&h);
                                (
                                    g.n("seq")?,
                                    HashMap::from([
                                        (
                                            Register::Cd,
                                            g.opt_s("hash_cd").unwrap_or(GENESIS.into()),
                                        ),
                                        (
                                            Register::Pom,
                                            g.opt_s("hash_pom").unwrap_or(GENESIS.into()),
                                        ),
                                    ]),
                                )
                            }
                            None => (
                                0,
                                HashMap::from([
                                    (Register::Cd, GENESIS.to_string()),
                                    (Register::Pom, GENESIS.to_string()),
                                ]),
                            ),
                        });
                    }
                    if let Some((seq, hashes)) = registers.as_mut() {
                        *seq = (*seq).max(e.seq);
                        hashes.insert(e.entry.register, e.hash.clone());
                    }
                    balances.insert((e.entry.register, e.entry.section.clone()), e.balance_after);
                    puts.push(entry_item(e));
                }
            }
        }
        for ((clinic, mode), hashes) in active {
            let pk = format!("CLINIC#{clinic}");
            let sk = format!("KEYS#{}", mode.as_str());
            let mut all = match self.get(&pk, &sk).await? {
                Some(i) => Get(&i).list_s("hashes"),
                None => vec![],
            };
            all.extend(hashes);
            puts.push(items::item(
                pk,
                sk,
                vec![
                    ("hashes", AttributeValue::L(all.iter().map(s).collect())),
                    ("rev", items::n(1)),
                ],
            ));
        }
        for ((r, section), balance) in balances {
            puts.push(balance_item(r, &section, balance));
        }
        if let Some((seq, hashes)) = &registers {
            puts.push(reg_head_item(*seq, hashes));
        }
        if let Some((seq, hash)) = last_event {
            puts.push(items::item(
                "CHAIN",
                "HEAD",
                vec![("seq", items::n(seq)), ("hash", s(hash))],
            ));
        }
        self.put_all(puts).await
    }
}
