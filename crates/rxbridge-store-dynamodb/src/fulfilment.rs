//! The outbox, webhook endpoints and the CD / POM registers on DynamoDB.
//!
//! Outbox message `MSG#{id}` / `MSG`. While pending it sits in two sparse index partitions:
//! gsi1 `DUE` (sorted by next attempt, then order) for claiming, and gsi2
//! `ORDER#{destination}#{subject}` (sorted by order) so that only the oldest pending message per
//! destination and subject is delivered. Otherwise gsi1 is `MSGS#{status}` (delivered, dead,
//! no endpoint: the admin lists). gsi3 `TYPE#{event type}#{destination}` by creation time
//! serves the ERP file export. Claims are conditional updates of a lease.
//!
//! Registers: entries `REG#{register}#{section}` / `{seq}` (gsi1 `REG#{register}` / `{seq}`),
//! one head item `REGHEAD` / `HEAD` (the last number and each register's last hash) and a
//! balance item per section `REGBAL#{register}#{section}` / `BAL` (gsi1
//! `REGSECTIONS#{register}` / section). Appends are conditional on the head: concurrent
//! writers cannot fork a register.

use crate::items::{self, Get, Item, Role, b, n, pad, s};
use crate::{DynamoStore, Query, Tx, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use rxbridge_app::outbox::*;
use rxbridge_app::ports::StoreError;
use rxbridge_app::registers::*;
use std::collections::HashMap;

fn ns(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

fn from_ns(v: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_nanosecond(i128::from(v)).map_err(unexpected)
}

pub(crate) fn msg_pk(id: &str) -> String {
    format!("MSG#{id}")
}

/// The message item as its state says (indexes included).
pub(crate) fn message_item(m: &OutboxMessage, leased_until: Option<i64>) -> Item {
    let msg = &m.message;
    let mut attrs = vec![
        ("seq", n(m.seq)),
        ("id", s(&msg.id)),
        ("destination", s(&msg.destination)),
        ("event_type", s(&msg.event_type)),
        ("subject", s(&msg.subject)),
        (
            "payload",
            // Sealed bodies are binary, clear notices JSON strings (see `unsealed`).
            match &msg.payload {
                Body::Sealed { sealed } => b(sealed),
                Body::Clear(v) => s(v.to_string()),
            },
        ),
        ("created_at", s(msg.created_at.to_string())),
        ("created_ns", n(ns(msg.created_at))),
        ("status", s(m.status.as_str())),
        ("attempts", n(i64::from(m.attempts))),
        ("next_ns", n(ns(m.next_attempt_at))),
        ("event_seq", n(m.event_seq)),
        (
            "gsi3pk",
            s(format!("TYPE#{}#{}", msg.event_type, msg.destination)),
        ),
        (
            "gsi3sk",
            s(format!("{}#{}", pad(ns(msg.created_at)), pad(m.seq))),
        ),
    ];
    if m.status == MessageStatus::Pending {
        attrs.push(("gsi1pk", s("DUE")));
        attrs.push((
            "gsi1sk",
            s(format!("{}#{}", pad(ns(m.next_attempt_at)), pad(m.seq))),
        ));
        attrs.push((
            "gsi2pk",
            s(format!("ORDER#{}#{}", msg.destination, msg.subject)),
        ));
        attrs.push(("gsi2sk", s(pad(m.seq))));
    } else {
        attrs.push(("gsi1pk", s(format!("MSGS#{}", m.status.as_str()))));
        attrs.push(("gsi1sk", s(pad(m.seq))));
    }
    if let Some(e) = &m.last_error {
        attrs.push(("last_error", s(e)));
    }
    if let Some(d) = m.delivered_at {
        attrs.push(("delivered_at", s(d.to_string())));
    }
    if let Some(l) = leased_until {
        attrs.push(("leased_ns", n(l)));
    }
    items::item(msg_pk(&msg.id), "MSG", attrs)
}

pub(crate) fn parse_message(i: &Item) -> Result<OutboxMessage, StoreError> {
    let g = Get(i);
    let status = g.s("status")?;
    Ok(OutboxMessage {
        seq: g.n("seq")?,
        message: NewMessage {
            id: g.s("id")?,
            destination: g.s("destination")?,
            event_type: g.s("event_type")?,
            subject: g.s("subject")?,
            payload: match i.get("payload") {
                Some(AttributeValue::B(v)) => Body::Sealed {
                    sealed: v.as_ref().to_vec(),
                },
                _ => Body::Clear(g.json("payload")?),
            },
            created_at: g.ts("created_at")?,
        },
        status: MessageStatus::parse(&status)
            .ok_or_else(|| unexpected(format!("bad message status {status}")))?,
        attempts: u32::try_from(g.n("attempts")?).map_err(unexpected)?,
        next_attempt_at: from_ns(g.n("next_ns")?)?,
        last_error: g.opt_s("last_error"),
        delivered_at: g
            .opt_s("delivered_at")
            .map(|d| d.parse().map_err(unexpected))
            .transpose()?,
        event_seq: g.opt_n("event_seq").unwrap_or(0),
    })
}

/// The messages of a commit, numbered after the commit's first event (`first_seq`) so that
/// their order follows the event chain's.
pub(crate) fn add_messages(
    table: &str,
    tx: &mut Tx,
    msgs: &[NewMessage],
    first_seq: i64,
) -> Result<(), StoreError> {
    for (i, m) in msgs.iter().enumerate() {
        let om = OutboxMessage {
            seq: first_seq * 1000 + i as i64,
            message: m.clone(),
            status: MessageStatus::Pending,
            attempts: 0,
            next_attempt_at: m.created_at,
            last_error: None,
            delivered_at: None,
            event_seq: first_seq,
        };
        tx.push(
            items::put(
                table,
                message_item(&om, None),
                Some("attribute_not_exists(#pk)"),
            )?,
            Role::Duplicate,
        );
    }
    Ok(())
}

pub(crate) fn attempt_item(a: &Attempt) -> Item {
    let mut attrs = vec![
        ("message_id", s(&a.message_id)),
        ("n", n(i64::from(a.n))),
        ("at", s(a.at.to_string())),
        (
            "duration_ms",
            n(i64::try_from(a.duration_ms).unwrap_or(i64::MAX)),
        ),
    ];
    if let Some(e) = &a.endpoint_id {
        attrs.push(("endpoint_id", s(e)));
    }
    if let Some(h) = a.http_status {
        attrs.push(("http_status", n(i64::from(h))));
    }
    if let Some(e) = &a.error {
        attrs.push(("error", s(e)));
    }
    items::item(msg_pk(&a.message_id), format!("ATTEMPT#{:06}", a.n), attrs)
}

pub(crate) fn parse_attempt(i: &Item) -> Result<Attempt, StoreError> {
    let g = Get(i);
    Ok(Attempt {
        message_id: g.s("message_id")?,
        n: u32::try_from(g.n("n")?).map_err(unexpected)?,
        at: g.ts("at")?,
        endpoint_id: g.opt_s("endpoint_id"),
        http_status: g.n("http_status").ok().and_then(|h| u16::try_from(h).ok()),
        error: g.opt_s("error"),
        duration_ms: u64::try_from(g.n("duration_ms")?).unwrap_or(0),
    })
}

/// A register entry's item.
pub(crate) fn entry_item(e: &RegisterEntry) -> Item {
    let x = &e.entry;
    let mut attrs = vec![
        ("gsi1pk", s(format!("REG#{}", x.register.as_str()))),
        ("gsi1sk", s(pad(e.seq))),
        ("seq", n(e.seq)),
        ("register", s(x.register.as_str())),
        ("section", s(&x.section)),
        ("kind", s(x.kind.as_str())),
        ("entry_date", s(x.entry_date.to_string())),
        ("at", s(x.at.to_string())),
        ("author", s(&x.author)),
        ("quantity", n(x.quantity)),
        ("balance_after", n(e.balance_after)),
        ("sealed", b(&x.sealed)),
        ("prev_hash", s(&e.prev_hash)),
        ("hash", s(&e.hash)),
        ("event_seq", n(e.event_seq)),
    ];
    if let Some(sub) = &x.subject {
        attrs.push(("subject", s(sub)));
    }
    items::item(
        format!("REG#{}#{}", x.register.as_str(), x.section),
        pad(e.seq),
        attrs,
    )
}

/// A section's balance item.
pub(crate) fn balance_item(r: Register, section: &str, balance: i64) -> Item {
    items::item(
        bal_pk(r, section),
        "BAL",
        vec![
            ("gsi1pk", s(format!("REGSECTIONS#{}", r.as_str()))),
            ("gsi1sk", s(section)),
            ("section", s(section)),
            ("balance", n(balance)),
        ],
    )
}

pub(crate) fn reg_head_item(seq: i64, hashes: &HashMap<Register, String>) -> Item {
    items::item(
        "REGHEAD",
        "HEAD",
        vec![
            ("seq", n(seq)),
            (
                reg_hash_attr(Register::Cd),
                s(hashes[&Register::Cd].as_str()),
            ),
            (
                reg_hash_attr(Register::Pom),
                s(hashes[&Register::Pom].as_str()),
            ),
        ],
    )
}

fn reg_hash_attr(r: Register) -> &'static str {
    match r {
        Register::Cd => "hash_cd",
        Register::Pom => "hash_pom",
    }
}

pub(crate) fn bal_pk(r: Register, section: &str) -> String {
    format!("REGBAL#{}#{section}", r.as_str())
}

/// Register entries of a commit: numbered, chained and balanced from the head read now; the
/// head's condition makes a concurrent append retry the whole commit. Returns them as they
/// will be written (recorded by event `event_seq`).
pub(crate) async fn add_register_entries(
    store: &DynamoStore,
    tx: &mut Tx,
    entries: &[NewEntry],
    event_seq: i64,
) -> Result<Vec<RegisterEntry>, StoreError> {
    if entries.is_empty() {
        return Ok(vec![]);
    }
    let mut written = Vec::with_capacity(entries.len());
    let t = store.table.as_str();
    let head = store.get("REGHEAD", "HEAD").await?;
    let (mut seq, mut hashes) = match &head {
        Some(i) => {
            let g = Get(i);
            (
                g.n("seq")?,
                HashMap::from([
                    (Register::Cd, g.opt_s("hash_cd").unwrap_or(GENESIS.into())),
                    (Register::Pom, g.opt_s("hash_pom").unwrap_or(GENESIS.into())),
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
    };
    let seen_seq = seq;
    let mut balances: HashMap<(Register, String), i64> = HashMap::new();
    for e in entries {
        let k = (e.register, e.section.clone());
        let balance = match balances.get(&k) {
            Some(b) => *b,
            None => store.balance(e.register, &e.section).await?,
        };
        let after = balance + e.kind.sign() * e.quantity;
        if e.register == Register::Cd && after < 0 {
            return Err(StoreError::Rejected(format!(
                "the {} balance would go below zero ({balance} in stock, {} to supply)",
                e.section, e.quantity
            )));
        }
        balances.insert(k, after);
        seq += 1;
        let prev = hashes
            .get(&e.register)
            .cloned()
            .unwrap_or_else(|| GENESIS.into());
        let hash = entry_hash(&prev, seq, e, after);
        let entry = RegisterEntry {
            seq,
            entry: e.clone(),
            balance_after: after,
            prev_hash: prev,
            hash: hash.clone(),
            event_seq,
        };
        tx.push(
            items::put(t, entry_item(&entry), Some("attribute_not_exists(#pk)"))?,
            Role::Recheck,
        );
        written.push(entry);
        hashes.insert(e.register, hash);
    }
    for ((r, section), balance) in balances {
        tx.push(
            items::put(t, balance_item(r, &section, balance), None)?,
            Role::Other,
        );
    }
    let head_item = reg_head_item(seq, &hashes);
    tx.push(
        if head.is_some() {
            items::put_if(t, head_item, "#seq = :s", [(":s", n(seen_seq))])?
        } else {
            items::put(t, head_item, Some("attribute_not_exists(#pk)"))?
        },
        Role::Recheck,
    );
    Ok(written)
}

pub(crate) fn parse_entry(i: &Item) -> Result<RegisterEntry, StoreError> {
    let g = Get(i);
    let reg = g.s("register")?;
    let kind = g.s("kind")?;
    Ok(RegisterEntry {
        seq: g.n("seq")?,
        entry: NewEntry {
            register: Register::parse(&reg)
                .ok_or_else(|| unexpected(format!("bad register {reg}")))?,
            section: g.s("section")?,
            kind: EntryKind::parse(&kind)
                .ok_or_else(|| unexpected(format!("bad entry kind {kind}")))?,
            entry_date: g.s("entry_date")?.parse().map_err(unexpected)?,
            at: g.ts("at")?,
            author: g.s("author")?,
            subject: g.opt_s("subject"),
            quantity: g.n("quantity")?,
            sealed: g.b("sealed")?,
        },
        balance_after: g.n("balance_after")?,
        prev_hash: g.s("prev_hash")?,
        hash: g.s("hash")?,
        event_seq: g.opt_n("event_seq").unwrap_or(0),
    })
}

pub(crate) fn endpoint_item(e: &Endpoint) -> Item {
    let mut attrs = vec![
        ("gsi1pk", s("ENDPOINTS")),
        ("gsi1sk", s(&e.destination)),
        ("id", s(&e.id)),
        ("destination", s(&e.destination)),
        ("url", s(&e.url)),
        ("secrets", b(&e.sealed_secrets)),
        ("enabled", AttributeValue::Bool(e.enabled)),
        ("created_at", s(e.created_at.to_string())),
    ];
    if let Some(r) = &e.disabled_reason {
        attrs.push(("disabled_reason", s(r)));
    }
    items::item(format!("EP#{}", e.destination), "EP", attrs)
}

pub(crate) fn parse_endpoint(i: &Item) -> Result<Endpoint, StoreError> {
    let g = Get(i);
    Ok(Endpoint {
        id: g.s("id")?,
        destination: g.s("destination")?,
        url: g.s("url")?,
        sealed_secrets: g.b("secrets")?,
        enabled: g.bool("enabled"),
        disabled_reason: g.opt_s("disabled_reason"),
        created_at: g.ts("created_at")?,
    })
}

impl DynamoStore {
    async fn balance(&self, register: Register, section: &str) -> Result<i64, StoreError> {
        match self.get(&bal_pk(register, section), "BAL").await? {
            Some(i) => Get(&i).n("balance"),
            None => Ok(0),
        }
    }

    /// Every message of one gsi1 partition (pending: `DUE`; others: `MSGS#{status}`).
    async fn messages_in(&self, pk: &str) -> Result<Vec<OutboxMessage>, StoreError> {
        self.query(Query::partition(Some("gsi1"), pk))
            .await?
            .iter()
            .map(parse_message)
            .collect()
    }
}

#[async_trait]
impl OutboxStore for DynamoStore {
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let due = self
            .query(Query::partition(Some("gsi1"), "DUE").sort("<=", format!("{}~", pad(ns(now)))))
            .await?;
        let mut candidates: Vec<(OutboxMessage, Option<i64>)> = Vec::new();
        for i in &due {
            let leased = Get(i).n("leased_ns").ok();
            candidates.push((parse_message(i)?, leased));
        }
        candidates.sort_by_key(|(m, _)| m.seq);
        let mut claimed = Vec::new();
        for (m, leased) in candidates {
            if claimed.len() >= limit as usize {
                break;
            }
            if leased.is_some_and(|l| l > ns(now)) {
                continue;
            }
            // Only the oldest pending message of its destination and subject may go.
            let first = self
                .query(
                    Query::partition(
                        Some("gsi2"),
                        format!("ORDER#{}#{}", m.message.destination, m.message.subject),
                    )
                    .limit(1),
                )
                .await?;
            if first
                .first()
                .map(|i| Get(i).n("seq"))
                .transpose()?
                .is_some_and(|seq| seq != m.seq)
            {
                continue;
            }
            let r = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(msg_pk(&m.message.id)))
                .key("sk", s("MSG"))
                .update_expression("SET #leased_ns = :lease")
                .condition_expression(
                    "#status = :pending AND (attribute_not_exists(#leased_ns) OR #leased_ns <= :now)",
                )
                .expression_attribute_names("#leased_ns", "leased_ns")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":lease", n(ns(lease_until)))
                .expression_attribute_values(":pending", s("pending"))
                .expression_attribute_values(":now", n(ns(now)))
                .send()
                .await;
            match r {
                Ok(_) => claimed.push(m),
                Err(e) => {
                    let msg = crate::sdk_message(&e);
                    if !e
                        .into_service_error()
                        .is_conditional_check_failed_exception()
                    {
                        return Err(unexpected(msg));
                    }
                    // Another worker claimed it first.
                }
            }
        }
        Ok(claimed)
    }

    async fn record_attempt(
        &self,
        m: &OutboxMessage,
        attempt: Option<Attempt>,
    ) -> Result<(), StoreError> {
        let t = self.table.as_str();
        let mut ops = vec![(
            items::put(t, message_item(m, None), Some("attribute_exists(#pk)"))?,
            Role::NotFound,
        )];
        if let Some(a) = attempt {
            ops.push((items::put(t, attempt_item(&a), None)?, Role::Other));
        }
        self.transact_plain(ops).await
    }

    async fn messages(
        &self,
        status: MessageStatus,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let mut v = if status == MessageStatus::Pending {
            let mut v = self.messages_in("DUE").await?;
            v.sort_by_key(|m| std::cmp::Reverse(m.seq));
            v.truncate(limit as usize);
            v
        } else {
            self.query(
                Query::partition(Some("gsi1"), format!("MSGS#{}", status.as_str()))
                    .newest_first()
                    .limit(limit as usize),
            )
            .await?
            .iter()
            .map(parse_message)
            .collect::<Result<Vec<_>, _>>()?
        };
        // The index is eventually consistent: keep only what is in that state.
        v.retain(|m| m.status == status);
        Ok(v)
    }

    async fn message(&self, id: &str) -> Result<Option<OutboxMessage>, StoreError> {
        self.get(&msg_pk(id), "MSG")
            .await?
            .map(|i| parse_message(&i))
            .transpose()
    }

    async fn attempts(&self, message_id: &str) -> Result<Vec<Attempt>, StoreError> {
        let rows = self
            .query(Query::partition(None, msg_pk(message_id)).sort(">=", "ATTEMPT#"))
            .await?;
        rows.iter()
            .filter(|i| {
                Get(i)
                    .opt_s("sk")
                    .is_some_and(|k| k.starts_with("ATTEMPT#"))
            })
            .map(parse_attempt)
            .collect()
    }

    async fn replay(&self, ids: Option<Vec<String>>, now: Timestamp) -> Result<u64, StoreError> {
        let dead: Vec<OutboxMessage> = match ids {
            None => self.messages_in("MSGS#dead").await?,
            Some(ids) => {
                let mut v = Vec::new();
                for id in ids {
                    if let Some(m) = self.message(&id).await? {
                        v.push(m);
                    }
                }
                v
            }
        };
        let mut count = 0;
        for mut m in dead {
            if m.status != MessageStatus::Dead {
                continue;
            }
            m.status = MessageStatus::Pending;
            m.attempts = 0;
            m.next_attempt_at = now;
            let op = items::put_if(
                &self.table,
                message_item(&m, None),
                "#status = :dead",
                [(":dead", s("dead"))],
            )?;
            match self.transact_plain(vec![(op, Role::Conflict)]).await {
                Ok(()) => count += 1,
                Err(StoreError::Conflict) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(count)
    }

    async fn outbox_stats(&self) -> Result<(u64, Option<Timestamp>, u64), StoreError> {
        let pending = self.messages_in("DUE").await?;
        let oldest = pending.iter().map(|m| m.message.created_at).min();
        let dead = self
            .query(Query::partition(Some("gsi1"), "MSGS#dead"))
            .await?;
        Ok((pending.len() as u64, oldest, dead.len() as u64))
    }

    async fn put_endpoint(&self, e: Endpoint) -> Result<(), StoreError> {
        let op = items::put(&self.table, endpoint_item(&e), None)?;
        self.transact_plain(vec![(op, Role::Other)]).await
    }

    async fn endpoint_for(&self, destination: &str) -> Result<Option<Endpoint>, StoreError> {
        self.get(&format!("EP#{destination}"), "EP")
            .await?
            .map(|i| parse_endpoint(&i))
            .transpose()
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.query(Query::partition(Some("gsi1"), "ENDPOINTS"))
            .await?
            .iter()
            .map(parse_endpoint)
            .collect()
    }

    async fn messages_between(
        &self,
        event_type: &str,
        destination: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        if to <= from {
            return Ok(vec![]);
        }
        let mut v = self
            .query(
                Query::partition(Some("gsi3"), format!("TYPE#{event_type}#{destination}"))
                    .between(pad(ns(from)), format!("{}~", pad(ns(to) - 1))),
            )
            .await?
            .iter()
            .map(parse_message)
            .collect::<Result<Vec<_>, _>>()?;
        v.sort_by_key(|m| m.seq);
        Ok(v)
    }

    async fn unsealed(
        &self,
        event_type: &str,
        destination: &str,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        // A filtered read of the type's partition: it reads sealed items too, so it is a
        // one-off migration step, not something to run at every cold start.
        self.query(
            Query::partition(Some("gsi3"), format!("TYPE#{event_type}#{destination}"))
                .filter("attribute_type(#payload, :str)", vec![(":str", s("S"))])
                .limit(limit as usize),
        )
        .await?
        .iter()
        .map(parse_message)
        .collect()
    }

    async fn seal_body(&self, id: &str, sealed: Vec<u8>) -> Result<(), StoreError> {
        let op = items::update(
            &self.table,
            items::key(msg_pk(id), "MSG"),
            "SET #payload = :sealed",
            Some("attribute_type(#payload, :str)"),
            [(":sealed", b(&sealed)), (":str", s("S"))],
        )?;
        match self.transact_plain(vec![(op, Role::Other)]).await {
            Err(e) => match self.message(id).await? {
                // Already sealed (a concurrent start), or gone: nothing to do.
                Some(m) if !m.message.payload.is_sealed() => Err(e),
                _ => Ok(()),
            },
            ok => ok,
        }
    }
}

#[async_trait]
impl RegisterStore for DynamoStore {
    async fn register_entries(
        &self,
        register: Register,
        section: Option<&str>,
    ) -> Result<Vec<RegisterEntry>, StoreError> {
        let q = match section {
            Some(sec) => Query::partition(None, format!("REG#{}#{sec}", register.as_str())),
            None => Query::partition(Some("gsi1"), format!("REG#{}", register.as_str())),
        };
        self.query(q).await?.iter().map(parse_entry).collect()
    }

    async fn register_balance(&self, register: Register, section: &str) -> Result<i64, StoreError> {
        self.balance(register, section).await
    }

    async fn register_sections(&self, register: Register) -> Result<Vec<String>, StoreError> {
        self.query(Query::partition(
            Some("gsi1"),
            format!("REGSECTIONS#{}", register.as_str()),
        ))
        .await?
        .iter()
        .map(|i| Get(i).s("section"))
        .collect()
    }
}
