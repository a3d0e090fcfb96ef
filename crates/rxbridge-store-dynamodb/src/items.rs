//! Attribute values, item layouts (`docs/dynamodb.md`) and transaction-item builders.

use crate::unexpected;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use jiff::Timestamp;
use rxbridge_app::events::{EventRecord, NewEvent};
use rxbridge_app::ports::{Mode, PrescriptionRecord, StoreError};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::PrescriptionType;
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
pub fn b(v: &[u8]) -> AttributeValue {
    AttributeValue::B(Blob::new(v))
}
/// Zero-padded so that string order is numeric order.
pub fn pad(v: i64) -> String {
    format!("{:020}", v.max(0))
}
/// Nanoseconds since the epoch, padded (sortable timestamps in keys).
pub fn ns_key(t: Timestamp) -> String {
    pad(i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX))
}

/// What a conditional item in a transaction guards, i.e. what its failed condition means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The chain head moved: rebuild and retry.
    Head,
    /// An item read while building changed: rebuild and retry.
    Recheck,
    /// A unique item exists.
    Duplicate,
    /// A version moved on.
    Conflict,
    /// The item that must exist does not.
    NotFound,
    /// The idempotency key is taken (the caller reads what is stored under it).
    IdempotencyKey,
    /// A register balance would go below zero.
    Negative,
    /// Unconditional.
    Other,
}

impl Role {
    pub fn retries(self) -> bool {
        matches!(self, Role::Head | Role::Recheck)
    }
    pub fn into_error(self) -> StoreError {
        match self {
            Role::Duplicate | Role::IdempotencyKey => StoreError::Duplicate,
            Role::Conflict => StoreError::Conflict,
            Role::NotFound => StoreError::NotFound,
            Role::Negative => StoreError::Rejected("a register balance would go below zero".into()),
            Role::Head | Role::Recheck | Role::Other => {
                unexpected("a transaction condition failed unexpectedly")
            }
        }
    }
}

/// Typed reads of an item's attributes.
pub struct Get<'a>(pub &'a Item);

impl Get<'_> {
    pub fn s(&self, k: &str) -> Result<String, StoreError> {
        match self.0.get(k) {
            Some(AttributeValue::S(v)) => Ok(v.clone()),
            _ => Err(unexpected(format!(
                "item attribute {k} is missing or not a string"
            ))),
        }
    }
    pub fn opt_s(&self, k: &str) -> Option<String> {
        match self.0.get(k) {
            Some(AttributeValue::S(v)) => Some(v.clone()),
            _ => None,
        }
    }
    pub fn opt_n(&self, k: &str) -> Option<i64> {
        match self.0.get(k) {
            Some(AttributeValue::N(v)) => v.parse().ok(),
            _ => None,
        }
    }
    pub fn n(&self, k: &str) -> Result<i64, StoreError> {
        match self.0.get(k) {
            Some(AttributeValue::N(v)) => v
                .parse()
                .map_err(|_| unexpected(format!("item attribute {k} is not an integer"))),
            _ => Err(unexpected(format!(
                "item attribute {k} is missing or not a number"
            ))),
        }
    }
    pub fn b(&self, k: &str) -> Result<Vec<u8>, StoreError> {
        match self.0.get(k) {
            Some(AttributeValue::B(v)) => Ok(v.as_ref().to_vec()),
            _ => Err(unexpected(format!(
                "item attribute {k} is missing or not binary"
            ))),
        }
    }
    pub fn bool(&self, k: &str) -> bool {
        matches!(self.0.get(k), Some(AttributeValue::Bool(true)))
    }
    pub fn ts(&self, k: &str) -> Result<Timestamp, StoreError> {
        self.s(k)?
            .parse()
            .map_err(|e| unexpected(format!("item attribute {k}: {e}")))
    }
    pub fn json<T: serde::de::DeserializeOwned>(&self, k: &str) -> Result<T, StoreError> {
        serde_json::from_str(&self.s(k)?)
            .map_err(|e| unexpected(format!("item attribute {k}: {e}")))
    }
    pub fn list_s(&self, k: &str) -> Vec<String> {
        match self.0.get(k) {
            Some(AttributeValue::L(v)) => v
                .iter()
                .filter_map(|x| match x {
                    AttributeValue::S(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            Some(AttributeValue::Ss(v)) => v.clone(),
            _ => vec![],
        }
    }
}

pub fn key(pk: impl Into<String>, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

pub fn item(
    pk: impl Into<String>,
    sk: impl Into<String>,
    attrs: Vec<(&str, AttributeValue)>,
) -> Item {
    let mut i = key(pk, sk);
    for (k, v) in attrs {
        i.insert(k.to_string(), v);
    }
    i
}

/// `#name` aliases for every `#word` in the expressions: every attribute name in an expression
/// is written as `#name`, so DynamoDB's long list of reserved words (`status`, `at`, `data`,
/// `hash`, …) never bites.
pub fn names_in(exprs: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in exprs {
        let mut rest = *e;
        while let Some(i) = rest.find('#') {
            let after = &rest[i + 1..];
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            let name = &after[..end];
            if !name.is_empty() && !out.iter().any(|(k, _)| k[1..] == *name) {
                out.push((format!("#{name}"), name.to_string()));
            }
            rest = &after[end..];
        }
    }
    out
}

fn built<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, StoreError> {
    r.map_err(unexpected)
}

pub fn put(table: &str, item: Item, cond: Option<&str>) -> Result<TransactWriteItem, StoreError> {
    put_if(table, item, cond.unwrap_or(""), [])
}

/// A put with a condition over `:values` (an empty condition puts unconditionally).
pub fn put_if<'a>(
    table: &str,
    item: Item,
    cond: &str,
    values: impl IntoIterator<Item = (&'a str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut p = Put::builder().table_name(table).set_item(Some(item));
    if !cond.is_empty() {
        p = p.condition_expression(cond);
        for (k, v) in names_in(&[cond]) {
            p = p.expression_attribute_names(k, v);
        }
    }
    for (k, v) in values {
        p = p.expression_attribute_values(k, v);
    }
    Ok(TransactWriteItem::builder().put(built(p.build())?).build())
}

pub fn update<'a>(
    table: &str,
    key: Item,
    expr: &str,
    cond: Option<&str>,
    values: impl IntoIterator<Item = (&'a str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut u = Update::builder()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(expr);
    if let Some(c) = cond {
        u = u.condition_expression(c);
    }
    for (k, v) in values {
        u = u.expression_attribute_values(k, v);
    }
    for (k, v) in names_in(&[expr, cond.unwrap_or("")]) {
        u = u.expression_attribute_names(k, v);
    }
    Ok(TransactWriteItem::builder()
        .update(built(u.build())?)
        .build())
}

pub fn check<'a>(
    table: &str,
    key: Item,
    cond: &str,
    values: impl IntoIterator<Item = (&'a str, AttributeValue)>,
) -> Result<TransactWriteItem, StoreError> {
    let mut c = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(key))
        .condition_expression(cond);
    for (k, v) in values {
        c = c.expression_attribute_values(k, v);
    }
    for (k, v) in names_in(&[cond]) {
        c = c.expression_attribute_names(k, v);
    }
    Ok(TransactWriteItem::builder()
        .condition_check(built(c.build())?)
        .build())
}

/// A delete that fails (cancelling the transaction) when the item is already gone.
pub fn delete_if_exists(table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .delete(built(
            Delete::builder()
                .table_name(table)
                .set_key(Some(key))
                .condition_expression("attribute_exists(#pk)")
                .expression_attribute_names("#pk", "pk")
                .build(),
        )?)
        .build())
}

pub fn delete(table: &str, key: Item) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder()
        .delete(built(
            Delete::builder()
                .table_name(table)
                .set_key(Some(key))
                .build(),
        )?)
        .build())
}

// ----- events -----

pub fn event_item(seq: i64, e: &NewEvent, prev_hash: &str, hash: &str) -> Item {
    item(
        "EVT",
        pad(seq),
        vec![
            ("gsi1pk", s(format!("SUBJ#{}", e.subject))),
            ("gsi1sk", s(pad(seq))),
            ("seq", n(seq)),
            ("at", s(e.at.to_string())),
            ("kind", s(&e.kind)),
            ("actor", s(&e.actor)),
            ("subject", s(&e.subject)),
            ("detail", s(e.detail.to_string())),
            ("prev_hash", s(prev_hash)),
            ("hash", s(hash)),
        ],
    )
}

pub fn parse_event(i: &Item) -> Result<EventRecord, StoreError> {
    let g = Get(i);
    Ok(EventRecord {
        seq: g.n("seq")?,
        event: NewEvent {
            at: g.ts("at")?,
            kind: g.s("kind")?,
            actor: g.s("actor")?,
            subject: g.s("subject")?,
            detail: g.json("detail")?,
        },
        prev_hash: g.s("prev_hash")?,
        hash: g.s("hash")?,
    })
}

// ----- prescriptions -----

pub fn rx_pk(id: &str) -> String {
    format!("RX#{id}")
}

pub fn work_pk(mode: Mode, status: Status) -> String {
    format!("WORK#{}#{}", mode.as_str(), status.as_str())
}

/// The prescription item. `hist`: the pks of its history items (whose status follows it).
pub fn rx_item(
    r: &PrescriptionRecord,
    seq: i64,
    hist: &[String],
    patient: &rxbridge_app::ports::PatientKeys,
) -> Result<Item, StoreError> {
    let m = r.mode.as_str();
    let mut attrs = vec![
        ("gsi1pk", s(format!("CLIN#{}#{m}", r.clinic_id))),
        ("gsi1sk", s(pad(seq))),
        ("gsi2pk", s(work_pk(r.mode, r.status))),
        ("gsi2sk", s(pad(seq))),
        ("gsi3pk", s(format!("REF#{m}#{}", r.clinic_reference))),
        ("gsi3sk", s(pad(seq))),
        ("seq", n(seq)),
        ("id", s(&r.id)),
        ("clinic_id", s(&r.clinic_id)),
        ("mode", s(m)),
        ("clinic_reference", s(&r.clinic_reference)),
        ("kind", s(r.kind.as_str())),
        ("status", s(r.status.as_str())),
        ("version", n(r.version)),
        ("issued_on", s(r.issued_on.to_string())),
        ("created_at", s(r.created_at.to_string())),
        ("updated_at", s(r.updated_at.to_string())),
        (
            "items",
            s(serde_json::to_string(&r.items).map_err(unexpected)?),
        ),
        (
            "findings",
            s(serde_json::to_string(&r.findings).map_err(unexpected)?),
        ),
        ("sealed", b(&r.sealed)),
        ("event_seq", n(r.event_seq)),
        ("hist", AttributeValue::L(hist.iter().map(s).collect())),
        // Keyed hashes only (no patient data): kept for export.
        (
            "patient",
            s(serde_json::to_string(patient).map_err(unexpected)?),
        ),
    ];
    // Only where it has one: an NHS prescription that did not carry its exemption.
    if let Some(e) = &r.nhs_exemption {
        attrs.push((
            "nhs_exemption",
            s(serde_json::to_string(e).map_err(unexpected)?),
        ));
    }
    Ok(item(rx_pk(&r.id), "RX", attrs))
}

pub fn parse_rx(i: &Item) -> Result<(i64, PrescriptionRecord), StoreError> {
    let g = Get(i);
    let status = g.s("status")?;
    let mode = g.s("mode")?;
    Ok((
        g.n("seq")?,
        PrescriptionRecord {
            id: g.s("id")?,
            clinic_id: g.s("clinic_id")?,
            mode: Mode::parse(&mode).ok_or_else(|| unexpected(format!("bad mode {mode}")))?,
            clinic_reference: g.s("clinic_reference")?,
            kind: if g.s("kind")? == "nhs" {
                PrescriptionType::Nhs
            } else {
                PrescriptionType::Private
            },
            status: Status::parse(&status)
                .ok_or_else(|| unexpected(format!("bad status {status}")))?,
            version: g.n("version")?,
            issued_on: g
                .s("issued_on")?
                .parse()
                .map_err(|e| unexpected(format!("issued_on: {e}")))?,
            created_at: g.ts("created_at")?,
            updated_at: g.ts("updated_at")?,
            items: g.json("items")?,
            findings: g.json("findings")?,
            sealed: g.b("sealed")?,
            event_seq: g.opt_n("event_seq").unwrap_or(0),
            nhs_exemption: match g.opt_s("nhs_exemption") {
                Some(e) => Some(serde_json::from_str(&e).map_err(unexpected)?),
                None => None,
            },
        },
    ))
}
