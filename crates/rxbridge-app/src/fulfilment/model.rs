//! Fulfilment's settings, outcomes and errors, and the register-section naming every
//! fulfilment step shares.

use crate::outbox;
use crate::ports::{Mode, StoreError};
use jiff::civil::Date;
use rxbridge_domain::formulary::{Formulary, Product};
use rxbridge_domain::prescription::Prescription;
use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct FulfilmentConfig {
    /// Formulary product code → the warehouse's SKU (the product code when absent).
    pub skus: HashMap<String, String>,
    /// Secrets the warehouse signs its events with (Standard Webhooks), newest first.
    pub inbound_secrets: Vec<String>,
    pub pharmacy_name: String,
    /// The closing line of patient emails (`payments::contact_line`).
    pub contact_line: String,
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error(transparent)]
    Signature(#[from] outbox::VerifyError),
    #[error("{0}")]
    BadEvent(String),
    /// No secret to verify warehouse events with: nothing can be accepted until one is set.
    #[error(
        "no warehouse signing secret is configured: set warehouse.inbound_secrets (RXBRIDGE_WAREHOUSE_INBOUND_SECRETS)"
    )]
    NoInboundSecret,
    #[error("no order {0}")]
    UnknownOrder(String),
    #[error("{0}")]
    Illegal(String),
    #[error(transparent)]
    Store(StoreError),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseOutcome {
    Applied(&'static str),
    Duplicate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub released: u32,
    pub held: u32,
    pub expired: u32,
    /// Not released: the stored row does not match the audit chain (`crate::state`).
    pub refused: u32,
}

/// The register section for a product in a mode.
pub fn section(mode: Mode, product_code: &str) -> String {
    match mode {
        Mode::Live => product_code.to_string(),
        Mode::Test => format!("test/{product_code}"),
    }
}

/// The section heading: drug name, strength and form (the formulary name carries all three).
pub(super) fn product_heading(p: &Product) -> String {
    format!("{} [{}]", p.name, p.code)
}

pub(super) fn address_line(a: &rxbridge_domain::contact::Address) -> String {
    let mut parts = a.lines.clone();
    parts.push(a.town.clone());
    parts.push(a.postcode.clone());
    parts.join(", ")
}

/// The last day `rx` may be supplied: 28 days for Schedule 2–4, six months otherwise.
pub fn last_valid_day(rx: &Prescription, formulary: &Formulary) -> Date {
    rxbridge_domain::pricing::cd_last_valid_day(rx, formulary)
        .unwrap_or_else(|| rx.issued_on.saturating_add(jiff::Span::new().months(6)))
}
