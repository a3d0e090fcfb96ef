//! The serverless store: one DynamoDB table in the single-table layout of `docs/dynamodb.md`.
//!
//! Every port method is a `GetItem`, a `Query` on the table or one of its three GSIs, or one
//! `TransactWriteItems` — never a `Scan`. Every write that records a state change appends its
//! events to the hash-chained log in the same transaction, guarded by a condition on the
//! chain's head item (`CHAIN` / `HEAD`): two writers racing for the same sequence number cannot
//! both commit; the loser re-reads the head and tries again. Within one process the head is
//! cached and appends are serialised by a mutex, so contention only happens between processes
//! (Lambda instances).
//!
//! Reads of single items are strongly consistent; the patient-history and identity lookups
//! (which decide clinical checks) query the base table and are strongly consistent too. GSI
//! queries (listings, worklist, reference search) are eventually consistent, as GSIs are.

mod adopt;
mod clinics;
mod commit;
mod events;
mod fulfilment;
#[cfg(test)]
mod hot_keys;
mod items;
mod patients;
mod payments;
mod prescriber_keys;
mod prescriptions;
mod rx_items;
mod rx_reads;
mod staff;
pub mod testing;
mod transfer;

use anyhow::anyhow;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, Projection, ProjectionType, ScalarAttributeType, TransactWriteItem,
};
use items::{Item, n, s};
use rxbridge_app::events::{GENESIS_HASH, NewEvent, chain_hash};
use rxbridge_app::ports::StoreError;
use std::collections::HashMap;

pub use items::Role;

/// How often one write is tried when other writers keep moving the chain head.
const MAX_ATTEMPTS: u32 = 30;

#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub seq: i64,
    pub hash: String,
}

pub struct DynamoStore {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// The chain head as last written by this process (`None`: read it from the table).
    chain: tokio::sync::Mutex<Option<Chain>>,
    /// Items DynamoDB evaluated for this process's queries (`ScannedCount`, before filters):
    /// the read cost, which tests compare (never timings).
    items_read: std::sync::atomic::AtomicU64,
}

pub(crate) fn unexpected(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow!("dynamodb: {e}"))
}

/// A transaction under construction: the items and what each one's condition guards.
#[derive(Default)]
pub(crate) struct Tx {
    pub ops: Vec<(TransactWriteItem, Role)>,
    pub events: Vec<NewEvent>,
}

impl Tx {
    pub fn push(&mut self, op: TransactWriteItem, role: Role) {
        self.ops.push((op, role));
    }
}

/// What a cancelled transaction means.
pub(crate) enum Cancelled {
    /// Another writer got there first (chain head, a re-checked item, a transaction
    /// conflict): build the transaction again from fresh reads.
    Retry,
    /// A guarded condition failed: this item's role says what it means.
    Failed(Role),
}

impl DynamoStore {
    /// A client for a local stand-in with static dummy credentials (tests, development).
    pub fn local(endpoint_url: &str, table: &str) -> Self {
        let conf = aws_sdk_dynamodb::config::Builder::new()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_sdk_dynamodb::config::Region::new("eu-west-2"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "static",
            ))
            .endpoint_url(endpoint_url)
            .build();
        Self::with_client(Client::from_conf(conf), table)
    }

    pub fn with_client(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
            chain: tokio::sync::Mutex::new(None),
            items_read: Default::default(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Items evaluated by this store's queries so far (DynamoDB's `ScannedCount`).
    pub fn items_read(&self) -> u64 {
        self.items_read.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A binary setting of the deployment (`CONFIG` / `{name}`), e.g. the wrapped data key.
    pub async fn config_blob(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.get("CONFIG", name).await? {
            Some(i) => items::Get(&i).b("value").map(Some),
            None => Ok(None),
        }
    }

    /// Write a binary setting unless it exists; `false` when another writer got there first.
    pub async fn put_config_blob_once(&self, name: &str, value: &[u8]) -> Result<bool, StoreError> {
        let op = items::put(
            &self.table,
            items::item("CONFIG", name, vec![("value", items::b(value))]),
            Some("attribute_not_exists(#pk)"),
        )?;
        match self.transact_plain(vec![(op, Role::Duplicate)]).await {
            Ok(()) => Ok(true),
            Err(StoreError::Duplicate) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Create the table with its three GSIs (on-demand). In AWS the CDK stack does this; here
    /// it serves tests and local development against a stand-in.
    pub async fn create_table(&self) -> anyhow::Result<()> {
        let key = |name: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(t)
                .build()
        };
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
        };
        let mut req = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attr("pk")?)
            .attribute_definitions(attr("sk")?);
        for i in 1..=3 {
            let (p, k) = (format!("gsi{i}pk"), format!("gsi{i}sk"));
            req = req
                .attribute_definitions(attr(&p)?)
                .attribute_definitions(attr(&k)?)
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(format!("gsi{i}"))
                        .key_schema(key(&p, KeyType::Hash)?)
                        .key_schema(key(&k, KeyType::Range)?)
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()?,
                );
        }
        req.send()
            .await
            .map_err(|e| anyhow!("{}", sdk_message(&e)))?;
        Ok(())
    }

    /// One item by key, strongly consistent.
    pub(crate) async fn get(&self, pk: &str, sk: &str) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unexpected(sdk_message(&e)))?;
        Ok(out.item)
    }

    /// Several items by key (`BatchGetItem`, 100 at a time, unprocessed keys retried),
    /// keyed by `pk`.
    pub(crate) async fn get_many(
        &self,
        keys: Vec<(String, String)>,
    ) -> Result<HashMap<String, Item>, StoreError> {
        let mut out = HashMap::new();
        let mut seen = std::collections::HashSet::new();
        let keys: Vec<_> = keys
            .into_iter()
            .filter(|k| seen.insert(k.clone()))
            .collect();
        for chunk in keys.chunks(100) {
            let mut ka =
                aws_sdk_dynamodb::types::KeysAndAttributes::builder().consistent_read(true);
            for (pk, sk) in chunk {
                ka = ka.keys(HashMap::from([
                    ("pk".to_string(), s(pk)),
                    ("sk".to_string(), s(sk)),
                ]));
            }
            let mut request = Some(HashMap::from([(
                self.table.clone(),
                ka.build().map_err(unexpected)?,
            )]));
            let mut rounds = 0;
            while let Some(req) = request.take() {
                rounds += 1;
                let res = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(req))
                    .send()
                    .await
                    .map_err(|e| unexpected(sdk_message(&e)))?;
                for item in res
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    if let Some(AttributeValue::S(pk)) = item.get("pk") {
                        out.insert(pk.clone(), item);
                    }
                }
                if let Some(u) = res.unprocessed_keys.filter(|u| !u.is_empty()) {
                    if rounds > 10 {
                        return Err(unexpected("batch get: keys still unprocessed"));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << rounds.min(5))).await;
                    request = Some(u);
                }
            }
        }
        Ok(out)
    }

    /// Every item of a query (following pages), in key order or reversed. `limit`: stop after
    /// that many items (that pass the filter, if any).
    pub(crate) async fn query(&self, q: Query<'_>) -> Result<Vec<Item>, StoreError> {
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut req = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(&q.key_condition)
                .scan_index_forward(q.forward)
                .set_exclusive_start_key(start.take());
            if let Some(i) = q.index {
                req = req.index_name(i);
            } else {
                req = req.consistent_read(true);
            }
            if let Some(f) = q.filter {
                req = req.filter_expression(f);
            } else if let Some(l) = q.limit {
                let left = l.saturating_sub(out.len()).max(1);
                req = req.limit(i32::try_from(left).unwrap_or(i32::MAX));
            }
            for (k, v) in &q.values {
                req = req.expression_attribute_values(*k, v.clone());
            }
            for (k, v) in items::names_in(&[&q.key_condition, q.filter.unwrap_or("")]) {
                req = req.expression_attribute_names(k, v);
            }
            let res = req.send().await.map_err(|e| unexpected(sdk_message(&e)))?;
            self.items_read.fetch_add(
                u64::try_from(res.scanned_count).unwrap_or(0),
                std::sync::atomic::Ordering::Relaxed,
            );
            out.extend(res.items.unwrap_or_default());
            if let Some(l) = q.limit
                && out.len() >= l
            {
                out.truncate(l);
                return Ok(out);
            }
            match res.last_evaluated_key.filter(|k| !k.is_empty()) {
                Some(k) => start = Some(k),
                None => return Ok(out),
            }
        }
    }

    async fn read_head(&self) -> Result<Chain, StoreError> {
        Ok(match self.get("CHAIN", "HEAD").await? {
            Some(i) => {
                let g = items::Get(&i);
                Chain {
                    seq: g.n("seq")?,
                    hash: g.s("hash")?,
                }
            }
            None => Chain {
                seq: 0,
                hash: GENESIS_HASH.to_string(),
            },
        })
    }

    /// Run a write: `build` gets the sequence number its first event will have and returns the
    /// transaction's items and its events; the events and the chain-head update are added, and
    /// the whole is committed atomically. Rebuilt and retried when another writer moved the head
    /// (or an item `build` re-checks) in between.
    pub(crate) async fn write<T, F, Fut>(&self, mut build: F) -> Result<T, StoreError>
    where
        F: FnMut(i64) -> Fut,
        Fut: std::future::Future<Output = Result<(Tx, T), StoreError>>,
    {
        let mut guard = self.chain.lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let head = match guard.as_ref() {
                Some(h) => h.clone(),
                None => self.read_head().await?,
            };
            let (mut tx, out) = build(head.seq + 1).await?;
            let mut chain = head.clone();
            let events = std::mem::take(&mut tx.events);
            for e in &events {
                let seq = chain.seq + 1;
                let hash = chain_hash(&chain.hash, seq, e);
                tx.push(
                    items::put(
                        &self.table,
                        items::event_item(seq, e, &chain.hash, &hash),
                        None,
                    )?,
                    Role::Other,
                );
                chain = Chain { seq, hash };
            }
            if !events.is_empty() {
                let head_item = HashMap::from([
                    ("pk".to_string(), s("CHAIN")),
                    ("sk".to_string(), s("HEAD")),
                    ("seq".to_string(), n(chain.seq)),
                    ("hash".to_string(), s(&chain.hash)),
                ]);
                let op = if head.seq == 0 {
                    items::put(&self.table, head_item, Some("attribute_not_exists(#pk)"))?
                } else {
                    items::put_if(
                        &self.table,
                        head_item,
                        "#seq = :seen",
                        [(":seen", n(head.seq))],
                    )?
                };
                tx.push(op, Role::Head);
            }
            if tx.ops.is_empty() {
                return Ok(out);
            }
            match self.transact(tx.ops).await {
                Ok(()) => {
                    if !events.is_empty() {
                        *guard = Some(chain);
                    }
                    return Ok(out);
                }
                Err(Ok(Cancelled::Retry)) => {
                    *guard = None;
                    backoff(attempt).await;
                }
                Err(Ok(Cancelled::Failed(role))) => return Err(role.into_error()),
                Err(Err(e)) => {
                    // The outcome is unknown (a timeout after sending): forget the cached head.
                    *guard = None;
                    return Err(e);
                }
            }
        }
        Err(unexpected(format!(
            "gave up after {MAX_ATTEMPTS} attempts: other writers kept moving the event chain"
        )))
    }

    /// A transaction that appends no event (outbox bookkeeping, endpoints), retried on
    /// transaction conflicts.
    pub(crate) async fn transact_plain(
        &self,
        ops: Vec<(TransactWriteItem, Role)>,
    ) -> Result<(), StoreError> {
        for attempt in 0..MAX_ATTEMPTS {
            match self.transact(ops.clone()).await {
                Ok(()) => return Ok(()),
                Err(Ok(Cancelled::Retry)) => backoff(attempt).await,
                Err(Ok(Cancelled::Failed(role))) => return Err(role.into_error()),
                Err(Err(e)) => return Err(e),
            }
        }
        Err(unexpected("gave up: the transaction kept conflicting"))
    }

    async fn transact(
        &self,
        ops: Vec<(TransactWriteItem, Role)>,
    ) -> Result<(), Result<Cancelled, StoreError>> {
        let (items, roles): (Vec<_>, Vec<_>) = ops.into_iter().unzip();
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => {
                let msg = sdk_message(&e);
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
                match e.into_service_error() {
                    E::TransactionCanceledException(c) => {
                        let reasons = c.cancellation_reasons();
                        let mut retry = false;
                        for (i, r) in reasons.iter().enumerate() {
                            match r.code() {
                                Some("ConditionalCheckFailed") => {
                                    let role = roles.get(i).copied().unwrap_or(Role::Other);
                                    if role.retries() {
                                        retry = true;
                                    } else {
                                        return Err(Ok(Cancelled::Failed(role)));
                                    }
                                }
                                Some("TransactionConflict") | Some("ThrottlingError") => {
                                    retry = true
                                }
                                _ => {}
                            }
                        }
                        if retry {
                            Err(Ok(Cancelled::Retry))
                        } else {
                            Err(Err(unexpected(msg)))
                        }
                    }
                    E::TransactionInProgressException(_) => Err(Ok(Cancelled::Retry)),
                    _ => Err(Err(unexpected(msg))),
                }
            }
        }
    }
}

async fn backoff(attempt: u32) {
    let base = 2u64 << attempt.min(6);
    let jitter = u64::from(rand::random::<u8>()) % (base + 1);
    tokio::time::sleep(std::time::Duration::from_millis(base + jitter)).await;
}

/// The service's message (or the transport error), never the request (no patient data).
pub fn sdk_message<E: std::error::Error + 'static, R: std::fmt::Debug>(
    e: &SdkError<E, R>,
) -> String {
    match e {
        SdkError::ServiceError(se) => {
            let inner = se.err();
            let mut m = inner.to_string();
            let mut src = inner.source();
            while let Some(s) = src {
                m.push_str(": ");
                m.push_str(&s.to_string());
                src = s.source();
            }
            m
        }
        other => {
            let mut m = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(s) = src {
                m.push_str(": ");
                m.push_str(&s.to_string());
                src = s.source();
            }
            m
        }
    }
}

/// A query: the key condition (and optional filter) over `:values` and `#names`.
pub(crate) struct Query<'a> {
    pub index: Option<&'static str>,
    pub key_condition: String,
    pub filter: Option<&'a str>,
    pub values: Vec<(&'a str, AttributeValue)>,
    pub forward: bool,
    pub limit: Option<usize>,
}

/// The partition and sort key attributes of the table or a GSI, as expression names.
fn key_names(index: Option<&str>) -> (&'static str, &'static str) {
    match index {
        None => ("#pk", "#sk"),
        Some("gsi1") => ("#gsi1pk", "#gsi1sk"),
        Some("gsi2") => ("#gsi2pk", "#gsi2sk"),
        Some(_) => ("#gsi3pk", "#gsi3sk"),
    }
}

impl<'a> Query<'a> {
    /// All items of partition `pk` (of the table, or of `gsi`), ascending.
    pub fn partition(index: Option<&'static str>, pk: impl Into<String>) -> Self {
        Query {
            index,
            key_condition: format!("{} = :pk", key_names(index).0),
            filter: None,
            values: vec![(":pk", s(pk))],
            forward: true,
            limit: None,
        }
    }
    /// Only sort keys `op` `:sk` (`<`, `>`, …), e.g. after a cursor.
    pub fn sort(mut self, op: &str, value: impl Into<String>) -> Self {
        let k = key_names(self.index).1;
        self.key_condition = format!("{} AND {k} {op} :sk", self.key_condition);
        self.values.push((":sk", s(value)));
        self
    }
    /// Only sort keys between `from` and `to` (inclusive).
    pub fn between(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        let k = key_names(self.index).1;
        self.key_condition = format!("{} AND {k} BETWEEN :from AND :to", self.key_condition);
        self.values.push((":from", s(from)));
        self.values.push((":to", s(to)));
        self
    }
    pub fn newest_first(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn limit(mut self, l: usize) -> Self {
        self.limit = Some(l);
        self
    }
    pub fn filter(mut self, f: &'a str, values: Vec<(&'a str, AttributeValue)>) -> Self {
        self.filter = Some(f);
        self.values.extend(values);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxbridge_app::ports::Store;
    use std::sync::Arc;

    async fn fresh() -> rxbridge_app::contract::Fixture {
        (
            Arc::new(testing::fresh_store().await) as Arc<dyn Store>,
            Box::new(()),
        )
    }
    rxbridge_app::store_contract_tests!(fresh());

    async fn fresh_fulfilment() -> rxbridge_app::contract::fulfilment::FulfilmentFixture {
        let store = Arc::new(testing::fresh_store().await);
        (store.clone(), store.clone(), store, Box::new(()))
    }
    rxbridge_app::fulfilment_store_contract_tests!(fresh_fulfilment());

    async fn fresh_state() -> rxbridge_app::contract::state::StateFixture {
        let store = Arc::new(testing::fresh_store().await);
        let (client, table) = (store.client.clone(), store.table().to_string());
        let tamper: rxbridge_app::contract::state::Tamper = Arc::new(move |id: String| {
            let (client, table) = (client.clone(), table.clone());
            Box::pin(async move {
                // The edit outside the application: one attribute of the item.
                client
                    .update_item()
                    .table_name(table)
                    .key("pk", AttributeValue::S(items::rx_pk(&id)))
                    .key("sk", AttributeValue::S("RX".into()))
                    .update_expression("SET #s = :s")
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(
                        ":s",
                        AttributeValue::S("ready_for_fulfilment".into()),
                    )
                    .send()
                    .await
                    .unwrap();
            })
        });
        (store.clone(), store.clone(), store, tamper, Box::new(()))
    }
    rxbridge_app::state_contract_tests!(fresh_state());

    async fn fresh_staff() -> rxbridge_app::contract::staff::StaffFixture {
        (
            Arc::new(testing::fresh_store().await) as Arc<dyn rxbridge_app::staff::StaffStore>,
            Box::new(()),
        )
    }
    rxbridge_app::staff_store_contract_tests!(fresh_staff());

    async fn fresh_keys() -> rxbridge_app::contract::prescriber_keys::KeyFixture {
        let store = Arc::new(testing::fresh_store().await);
        (
            store.clone() as Arc<dyn Store>,
            store as Arc<dyn rxbridge_app::signatures::PrescriberKeyStore>,
            Box::new(()),
        )
    }
    rxbridge_app::prescriber_key_store_contract_tests!(fresh_keys());
}

#[cfg(test)]
mod race_tests {
    use super::*;
    use rxbridge_app::ports::{Clinic, ClinicStore};
    use std::sync::Arc;

    /// Two processes (two Lambda instances) appending at once: the head's condition makes the
    /// loser of each race retry, so the chain stays one unbroken line and nothing is lost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_writers_racing_keep_one_chain() {
        let a = Arc::new(testing::fresh_store().await);
        let b = Arc::new(DynamoStore::local(&testing::endpoint(), &a.table));
        let mut tasks = Vec::new();
        for i in 0..24 {
            let s = if i % 2 == 0 { a.clone() } else { b.clone() };
            tasks.push(tokio::spawn(async move {
                let now = jiff::Timestamp::now();
                s.create_clinic(
                    Clinic {
                        id: format!("cl_{i}"),
                        name: "n".into(),
                        created_at: now,
                    },
                    vec![],
                    NewEvent {
                        at: now,
                        kind: "clinic.created".into(),
                        actor: "t".into(),
                        subject: format!("cl_{i}"),
                        detail: serde_json::json!({ "i": i }),
                    },
                )
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(a.list_clinics().await.unwrap().len(), 24);
        let report = rxbridge_app::audit::verify_chain(&*b).await.unwrap();
        assert_eq!(report.events, 24);
    }
}
