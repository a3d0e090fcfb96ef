//! The event log: every state change appends an event (who, when, what, why). Events are
//! append-only and hash-chained: each carries the hash of the one before, so any edit,
//! deletion or reordering breaks the chain at a findable place. Every store computes hashes
//! with `chain_hash`, so the chain verifies the same whichever store wrote it.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event as a use case asks for it; the store gives it a sequence number and its hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub at: Timestamp,
    /// What happened, dotted: `prescription.received`, `clinic.created`, ...
    pub kind: String,
    /// Who: `clinic:<id>`, `staff:<id>`, `system`, `cli`.
    pub actor: String,
    /// The record it concerns (prescription or clinic id).
    pub subject: String,
    /// Why and the particulars. Never patient data: ids, codes, statuses and reasons only.
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn new(
        at: Timestamp,
        kind: &str,
        actor: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Self {
        Self {
            at,
            kind: kind.into(),
            actor: actor.into(),
            subject: subject.into(),
            detail,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: i64,
    pub event: NewEvent,
    pub prev_hash: String,
    pub hash: String,
}

/// SHA-256 over the previous hash and a canonical, length-prefixed encoding of every field.
pub fn chain_hash(prev_hash: &str, seq: i64, e: &NewEvent) -> String {
    let mut h = Sha256::new();
    let detail = canonical_json(&e.detail);
    let at = e.at.to_string();
    for part in [
        prev_hash.as_bytes(),
        seq.to_string().as_bytes(),
        at.as_bytes(),
        e.kind.as_bytes(),
        e.actor.as_bytes(),
        e.subject.as_bytes(),
        detail.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// JSON with object keys sorted at every level: the same value always gives the same bytes.
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn write(v: &serde_json::Value, out: &mut String) {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::Value::String((*k).clone()).to_string());
                    out.push(':');
                    write(&m[*k], out);
                }
                out.push('}');
            }
            serde_json::Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(x, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    write(v, &mut s);
    s
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    pub seq: i64,
    pub reason: String,
}

/// Check a run of events that follows `prev_hash` (the hash of event `prev_seq`).
pub fn verify_run(
    prev_seq: i64,
    prev_hash: &str,
    events: &[EventRecord],
) -> Result<(i64, String), BrokenLink> {
    let (mut seq, mut hash) = (prev_seq, prev_hash.to_string());
    for e in events {
        if e.seq != seq + 1 {
            return Err(BrokenLink {
                seq: e.seq,
                reason: format!("expected event {} next, found {}", seq + 1, e.seq),
            });
        }
        if e.prev_hash != hash {
            return Err(BrokenLink {
                seq: e.seq,
                reason: "prev_hash does not match the previous event's hash".into(),
            });
        }
        let computed = chain_hash(&hash, e.seq, &e.event);
        if computed != e.hash {
            return Err(BrokenLink {
                seq: e.seq,
                reason: "content does not match its hash (altered)".into(),
            });
        }
        seq = e.seq;
        hash = e.hash.clone();
    }
    Ok((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str) -> NewEvent {
        NewEvent {
            at: "2026-11-26T10:00:00Z".parse().unwrap(),
            kind: kind.into(),
            actor: "system".into(),
            subject: "rx_1".into(),
            detail: serde_json::json!({"b": 1, "a": [1, {"d": 2, "c": 3}]}),
        }
    }

    fn chain(n: i64) -> Vec<EventRecord> {
        let mut prev = GENESIS_HASH.to_string();
        (1..=n)
            .map(|seq| {
                let e = ev(&format!("k{seq}"));
                let hash = chain_hash(&prev, seq, &e);
                let r = EventRecord {
                    seq,
                    event: e,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                r
            })
            .collect()
    }

    #[test]
    fn canonical_sorts_keys() {
        assert_eq!(
            canonical_json(&serde_json::json!({"b": 1, "a": {"d": 2, "c": "x"}})),
            r#"{"a":{"c":"x","d":2},"b":1}"#
        );
    }

    #[test]
    fn verify_finds_first_broken_link() {
        let c = chain(5);
        assert!(verify_run(0, GENESIS_HASH, &c).is_ok());
        let mut altered = c.clone();
        altered[2].event.actor = "mallory".into();
        assert_eq!(verify_run(0, GENESIS_HASH, &altered).unwrap_err().seq, 3);
        let mut gap = c.clone();
        gap.remove(1);
        assert_eq!(verify_run(0, GENESIS_HASH, &gap).unwrap_err().seq, 3);
    }
}
