//! The outbox, endpoints and registers on SQLite.

use crate::SqliteStore;
use crate::queries::{RX_COLUMNS, rx_row, status_list, ts, unexpected};
use async_trait::async_trait;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, params};
use rxbridge_app::events::NewEvent;
use rxbridge_app::outbox::*;
use rxbridge_app::ports::{PrescriptionRecord, StoreError};
use rxbridge_app::registers::*;
use rxbridge_domain::lifecycle::Status;

/// Nanoseconds since the epoch (fits an i64 until 2262).
fn ns(t: Timestamp) -> i64 {
    t.as_nanosecond() as i64
}

fn from_ns(n: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_nanosecond(i128::from(n)).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e))
    })
}

pub fn insert_message(c: &Connection, m: &NewMessage, event_seq: i64) -> Result<(), StoreError> {
    c.prepare_cached(
        "INSERT INTO outbox (id, destination, event_type, subject, payload, created_at, created_ns, status, next_attempt_ns, event_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![m.id, m.destination, m.event_type, m.subject, body_value(&m.payload), m.created_at.to_string(), ns(m.created_at), event_seq])
    })
    .map_err(unexpected)?;
    Ok(())
}

/// A body as stored in `outbox.payload`: a sealed body is a BLOB, a clear notice JSON text
/// (so `typeof(payload)` tells them apart, and old clear rows can be found and sealed).
fn body_value(b: &Body) -> rusqlite::types::Value {
    match b {
        Body::Sealed { sealed } => rusqlite::types::Value::Blob(sealed.clone()),
        Body::Clear(v) => rusqlite::types::Value::Text(v.to_string()),
    }
}

fn body_from(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Body> {
    use rusqlite::types::ValueRef;
    match r.get_ref(i)? {
        ValueRef::Blob(b) => Ok(Body::Sealed { sealed: b.to_vec() }),
        ValueRef::Text(t) => serde_json::from_slice(t).map(Body::Clear).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
        }),
        other => Err(rusqlite::Error::InvalidColumnType(
            i,
            "payload".into(),
            other.data_type(),
        )),
    }
}

/// Append `e` (recorded by event `event_seq`) and return it as written.
pub fn append_entry(
    c: &Connection,
    e: &NewEntry,
    event_seq: i64,
) -> Result<RegisterEntry, StoreError> {
    let (prev_seq, prev_hash): (i64, String) = c
        .query_row(
            "SELECT seq, hash FROM register_entries WHERE register = ?1 ORDER BY seq DESC LIMIT 1",
            [e.register.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(unexpected)?
        .unwrap_or((0, GENESIS.to_string()));
    let balance: i64 = balance(c, e.register, &e.section)?;
    let after = balance + e.kind.sign() * e.quantity;
    if e.register == Register::Cd && after < 0 {
        return Err(StoreError::Rejected(format!(
            "the {} balance would go below zero ({balance} in stock, {} to supply)",
            e.section, e.quantity
        )));
    }
    // Entries are never deleted, so the next number is one past the highest of either register.
    let seq: i64 = c
        .query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM register_entries",
            [],
            |r| r.get(0),
        )
        .map_err(unexpected)?;
    debug_assert!(seq > prev_seq);
    let hash = entry_hash(&prev_hash, seq, e, after);
    c.prepare_cached(
        "INSERT INTO register_entries (seq, register, section, kind, entry_date, at, author, subject, quantity, balance_after, sealed, prev_hash, hash, event_seq)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )
    .and_then(|mut s| {
        s.execute(params![seq, e.register.as_str(), e.section, e.kind.as_str(), e.entry_date.to_string(), e.at.to_string(), e.author, e.subject, e.quantity, after, e.sealed, prev_hash, hash, event_seq])
    })
    .map_err(unexpected)?;
    Ok(RegisterEntry {
        seq,
        entry: e.clone(),
        balance_after: after,
        prev_hash,
        hash,
        event_seq,
    })
}

fn balance(c: &Connection, register: Register, section: &str) -> Result<i64, StoreError> {
    c.prepare_cached(
        "SELECT balance_after FROM register_entries WHERE register = ?1 AND section = ?2 ORDER BY seq DESC LIMIT 1",
    )
    .and_then(|mut s| s.query_row(params![register.as_str(), section], |r| r.get(0)).optional())
    .map(|o| o.unwrap_or(0))
    .map_err(unexpected)
}

pub(crate) fn entry_row(r: &rusqlite::Row) -> rusqlite::Result<RegisterEntry> {
    let reg: String = r.get(1)?;
    let kind: String = r.get(3)?;
    let date: String = r.get(4)?;
    let bad = |col: usize, v: String| {
        rusqlite::Error::InvalidColumnType(col, v, rusqlite::types::Type::Text)
    };
    Ok(RegisterEntry {
        seq: r.get(0)?,
        entry: NewEntry {
            register: Register::parse(&reg).ok_or_else(|| bad(1, reg.clone()))?,
            section: r.get(2)?,
            kind: EntryKind::parse(&kind).ok_or_else(|| bad(3, kind.clone()))?,
            entry_date: date.parse().map_err(|_| bad(4, date.clone()))?,
            at: ts(r.get(5)?)?,
            author: r.get(6)?,
            subject: r.get(7)?,
            quantity: r.get(8)?,
            sealed: r.get(10)?,
        },
        balance_after: r.get(9)?,
        prev_hash: r.get(11)?,
        hash: r.get(12)?,
        event_seq: r.get(13)?,
    })
}

pub(crate) const ENTRY_COLUMNS: &str = "seq, register, section, kind, entry_date, at, author, subject, quantity, balance_after, sealed, prev_hash, hash, event_seq";
pub(crate) const MSG_COLUMNS: &str = "seq, id, destination, event_type, subject, payload, created_at, status, attempts, next_attempt_ns, last_error, delivered_at, event_seq";

pub(crate) fn msg_row(r: &rusqlite::Row) -> rusqlite::Result<OutboxMessage> {
    let status: String = r.get(7)?;
    Ok(OutboxMessage {
        seq: r.get(0)?,
        message: NewMessage {
            id: r.get(1)?,
            destination: r.get(2)?,
            event_type: r.get(3)?,
            subject: r.get(4)?,
            payload: body_from(r, 5)?,
            created_at: ts(r.get(6)?)?,
        },
        status: MessageStatus::parse(&status).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(7, status.clone(), rusqlite::types::Type::Text)
        })?,
        attempts: r.get(8)?,
        next_attempt_at: from_ns(r.get(9)?)?,
        last_error: r.get(10)?,
        delivered_at: r.get::<_, Option<String>>(11)?.map(ts).transpose()?,
        event_seq: r.get(12)?,
    })
}

pub(crate) fn endpoint_row(r: &rusqlite::Row) -> rusqlite::Result<Endpoint> {
    Ok(Endpoint {
        id: r.get(0)?,
        destination: r.get(1)?,
        url: r.get(2)?,
        sealed_secrets: r.get(3)?,
        enabled: r.get(4)?,
        disabled_reason: r.get(5)?,
        created_at: ts(r.get(6)?)?,
    })
}

pub fn undispatched_issued_before(
    c: &Connection,
    before: &str,
    limit: u32,
) -> Result<Vec<PrescriptionRecord>, StoreError> {
    let sql = format!(
        "SELECT {RX_COLUMNS} FROM prescriptions WHERE status IN ({})
         AND issued_on < ?1 ORDER BY issued_on, seq LIMIT ?2",
        status_list(Status::expirable())
    );
    c.prepare_cached(&sql)
        .and_then(|mut s| {
            s.query_map(params![before, limit], rx_row)?
                .map(|r| r.map(|(_, rec)| rec))
                .collect()
        })
        .map_err(unexpected)
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let (now, lease) = (ns(now), ns(lease_until));
        self.write(move |c, _| {
            let sql = format!(
                "SELECT {MSG_COLUMNS} FROM outbox o WHERE status = 'pending' AND next_attempt_ns <= ?1
                 AND (leased_until_ns IS NULL OR leased_until_ns <= ?1)
                 AND NOT EXISTS (SELECT 1 FROM outbox e WHERE e.destination = o.destination AND e.subject = o.subject
                                 AND e.status = 'pending' AND e.seq < o.seq)
                 ORDER BY seq LIMIT ?2"
            );
            let msgs: Vec<OutboxMessage> = c
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_map(params![now, limit], msg_row)?.collect())
                .map_err(unexpected)?;
            for m in &msgs {
                c.execute("UPDATE outbox SET leased_until_ns = ?1 WHERE seq = ?2", params![lease, m.seq])
                    .map_err(unexpected)?;
            }
            Ok(msgs)
        })
        .await
    }

    async fn record_attempt(
        &self,
        m: &OutboxMessage,
        attempt: Option<Attempt>,
    ) -> Result<(), StoreError> {
        let m = m.clone();
        self.write(move |c, _| {
            c.execute(
                "UPDATE outbox SET status = ?1, attempts = ?2, next_attempt_ns = ?3, last_error = ?4, delivered_at = ?5, leased_until_ns = NULL WHERE seq = ?6",
                params![m.status.as_str(), m.attempts, ns(m.next_attempt_at), m.last_error, m.delivered_at.map(|t| t.to_string()), m.seq],
            )
            .map_err(unexpected)?;
            if let Some(a) = &attempt {
                c.execute(
                    "INSERT OR REPLACE INTO outbox_attempts (message_id, n, at, endpoint_id, http_status, error, duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![a.message_id, a.n, a.at.to_string(), a.endpoint_id, a.http_status, a.error, a.duration_ms as i64],
                )
                .map_err(unexpected)?;
            }
            Ok(())
        })
        .await
    }

    async fn messages(
        &self,
        status: MessageStatus,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MSG_COLUMNS} FROM outbox WHERE status = ?1 ORDER BY seq DESC LIMIT ?2"
            ))
            .and_then(|mut s| {
                s.query_map(params![status.as_str(), limit], msg_row)?
                    .collect()
            })
            .map_err(unexpected)
        })
        .await
    }

    async fn message(&self, id: &str) -> Result<Option<OutboxMessage>, StoreError> {
        let id = id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!("SELECT {MSG_COLUMNS} FROM outbox WHERE id = ?1"))
                .and_then(|mut s| s.query_row([id], msg_row).optional())
                .map_err(unexpected)
        })
        .await
    }

    async fn attempts(&self, message_id: &str) -> Result<Vec<Attempt>, StoreError> {
        let id = message_id.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT message_id, n, at, endpoint_id, http_status, error, duration_ms FROM outbox_attempts WHERE message_id = ?1 ORDER BY n")
                .and_then(|mut s| {
                    s.query_map([id], |r| {
                        Ok(Attempt {
                            message_id: r.get(0)?,
                            n: r.get(1)?,
                            at: ts(r.get(2)?)?,
                            endpoint_id: r.get(3)?,
                            http_status: r.get(4)?,
                            error: r.get(5)?,
                            duration_ms: r.get::<_, i64>(6)? as u64,
                        })
                    })?
                    .collect()
                })
                .map_err(unexpected)
        })
        .await
    }

    async fn replay(&self, ids: Option<Vec<String>>, now: Timestamp) -> Result<u64, StoreError> {
        let now = ns(now);
        self.write(move |c, _| {
            let n = match &ids {
                None => c.execute(
                    "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_ns = ?1, leased_until_ns = NULL WHERE status = 'dead'",
                    [now],
                ),
                Some(ids) => {
                    let mut n = 0;
                    for id in ids {
                        n += c
                            .execute(
                                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_ns = ?1, leased_until_ns = NULL WHERE status = 'dead' AND id = ?2",
                                params![now, id],
                            )
                            .map_err(unexpected)?;
                    }
                    Ok(n)
                }
            }
            .map_err(unexpected)?;
            Ok(n as u64)
        })
        .await
    }

    async fn outbox_stats(&self) -> Result<(u64, Option<Timestamp>, u64), StoreError> {
        self.read(|c| {
            let (pending, oldest): (i64, Option<i64>) = c
                .query_row(
                    "SELECT count(*), min(created_ns) FROM outbox WHERE status = 'pending'",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(unexpected)?;
            let dead: i64 = c
                .query_row(
                    "SELECT count(*) FROM outbox WHERE status = 'dead'",
                    [],
                    |r| r.get(0),
                )
                .map_err(unexpected)?;
            Ok((
                pending as u64,
                oldest.map(from_ns).transpose().map_err(unexpected)?,
                dead as u64,
            ))
        })
        .await
    }

    async fn put_endpoint(&self, e: Endpoint) -> Result<(), StoreError> {
        self.write(move |c, _| {
            c.execute(
                "INSERT INTO endpoints (id, destination, url, secrets, enabled, disabled_reason, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT(destination) DO UPDATE SET id = excluded.id, url = excluded.url, secrets = excluded.secrets,
                   enabled = excluded.enabled, disabled_reason = excluded.disabled_reason, created_at = excluded.created_at",
                params![e.id, e.destination, e.url, e.sealed_secrets, e.enabled, e.disabled_reason, e.created_at.to_string()],
            )
            .map_err(unexpected)?;
            Ok(())
        })
        .await
    }

    async fn endpoint_for(&self, destination: &str) -> Result<Option<Endpoint>, StoreError> {
        let d = destination.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT id, destination, url, secrets, enabled, disabled_reason, created_at FROM endpoints WHERE destination = ?1")
                .and_then(|mut s| s.query_row([d], endpoint_row).optional())
                .map_err(unexpected)
        })
        .await
    }

    async fn endpoints(&self) -> Result<Vec<Endpoint>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT id, destination, url, secrets, enabled, disabled_reason, created_at FROM endpoints ORDER BY destination")
                .and_then(|mut s| s.query_map([], endpoint_row)?.collect())
                .map_err(unexpected)
        })
        .await
    }

    async fn messages_between(
        &self,
        event_type: &str,
        destination: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let (t, d, from, to) = (
            event_type.to_string(),
            destination.to_string(),
            ns(from),
            ns(to),
        );
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MSG_COLUMNS} FROM outbox WHERE event_type = ?1 AND destination = ?2 AND created_ns >= ?3 AND created_ns < ?4 ORDER BY seq"
            ))
            .and_then(|mut s| s.query_map(params![t, d, from, to], msg_row)?.collect())
            .map_err(unexpected)
        })
        .await
    }

    async fn unsealed(
        &self,
        event_type: &str,
        destination: &str,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let (t, d) = (event_type.to_string(), destination.to_string());
        // `outbox_unsealed` (a partial index of exactly these rows) keeps this a read of the
        // rows still to seal, not of the whole outbox, at every start.
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {MSG_COLUMNS} FROM outbox WHERE typeof(payload) = 'text' AND event_type = ?1 AND destination = ?2 ORDER BY seq LIMIT ?3"
            ))
            .and_then(|mut s| s.query_map(params![t, d, limit], msg_row)?.collect())
            .map_err(unexpected)
        })
        .await
    }

    async fn seal_body(&self, id: &str, sealed: Vec<u8>) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |c, chain| {
            // Sealing a stored clear body changes the row the chain speaks for: the new body is
            // bound into an `outbox.sealed` event and the row names it, as any state write does.
            let row = c
                .prepare_cached(&format!(
                    "SELECT {MSG_COLUMNS} FROM outbox WHERE id = ?1 AND typeof(payload) = 'text'"
                ))
                .and_then(|mut s| s.query_row([&id], msg_row).optional())
                .map_err(unexpected)?;
            let Some(mut row) = row else {
                return Ok(()); // already sealed, or gone
            };
            row.message.payload = Body::Sealed {
                sealed: sealed.clone(),
            };
            let mut event = NewEvent {
                at: jiff::Timestamp::now(),
                kind: "outbox.sealed".into(),
                actor: "system".into(),
                subject: id.clone(),
                detail: serde_json::json!({ "reason": "a body stored in the clear before sealing, sealed at start" }),
            };
            let mut binding = rxbridge_app::state::Binding::default();
            binding.message(&row.message);
            binding.apply(&mut event);
            crate::queries::append_event(c, chain, &event)?;
            c.prepare_cached("UPDATE outbox SET payload = ?2, event_seq = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, sealed, chain.seq]))
                .map(|_| ())
                .map_err(unexpected)
        })
        .await
    }
}

#[async_trait]
impl RegisterStore for SqliteStore {
    async fn register_entries(
        &self,
        register: Register,
        section: Option<&str>,
    ) -> Result<Vec<RegisterEntry>, StoreError> {
        let section = section.map(String::from);
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM register_entries WHERE register = ?1 AND (?2 IS NULL OR section = ?2) ORDER BY seq"
            ))
            .and_then(|mut s| s.query_map(params![register.as_str(), section], entry_row)?.collect())
            .map_err(unexpected)
        })
        .await
    }

    async fn last_register_entry(
        &self,
        register: Register,
        section: &str,
    ) -> Result<Option<RegisterEntry>, StoreError> {
        let section = section.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {ENTRY_COLUMNS} FROM register_entries WHERE register = ?1 AND section = ?2 ORDER BY seq DESC LIMIT 1"
            ))
            .and_then(|mut s| s.query_row(params![register.as_str(), section], entry_row).optional())
            .map_err(unexpected)
        })
        .await
    }

    async fn register_balance(&self, register: Register, section: &str) -> Result<i64, StoreError> {
        let s = section.to_string();
        self.read(move |c| balance(c, register, &s)).await
    }

    async fn register_sections(&self, register: Register) -> Result<Vec<String>, StoreError> {
        self.read(move |c| {
            c.prepare_cached("SELECT DISTINCT section FROM register_entries WHERE register = ?1 ORDER BY section")
                .and_then(|mut s| s.query_map([register.as_str()], |r| r.get(0))?.collect())
                .map_err(unexpected)
        })
        .await
    }
}
