//! What a prescription costs the patient, in integer pence.
//!
//! - A **private** prescription pays the formulary's unit price per dosage unit for each item,
//!   plus a dispensing fee and a tracked-delivery fee from configuration.
//! - An **NHS** prescription pays the NHS charge per item when the exemption code is `0001`
//!   ("paid"); any other code is an exemption and nothing is due (NHS (Charges for Drugs and Appliances) Regulations 2015).
//!   An NHS electronic prescription arrives without the exemption: its charge is not yet known
//!   until the patient's declaration is recorded at the pharmacy (`crate::declaration`), and
//!   the caller prices it with the declared details.
//!
//! The quote is computed once, when the pharmacist approves, and stored with the prescription:
//! later price or charge changes never alter it.

use crate::formulary::{Formulary, Schedule};
use crate::money::Money;
use crate::prescription::{ExemptionCode, Prescription, PrescriptionType};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// The NHS charge per item on `on` (the effective-dated table in `data/nhs.json`, each row with
/// its source), or `None` before the first row. The last rate stays in force until a new row is
/// added.
pub fn nhs_charge_per_item(on: Date) -> Option<Money> {
    crate::nhs::NhsTables::builtin()
        .charge_on(on)
        .map(Money::pence)
}

/// Fees added to a private prescription (configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Fees {
    /// Pence per private prescription.
    pub dispensing_fee_pence: i64,
    /// Pence per private prescription for tracked & signed delivery.
    pub delivery_fee_pence: i64,
}

impl Default for Fees {
    fn default() -> Self {
        Self {
            dispensing_fee_pence: 500,
            delivery_fee_pence: 495,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuoteKind {
    Private,
    /// NHS prescription with the charge to pay (exemption 0001).
    NhsCharge,
    /// NHS prescription with an exemption: nothing to pay.
    NhsExempt,
}

impl QuoteKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QuoteKind::Private => "private",
            QuoteKind::NhsCharge => "nhs_charge",
            QuoteKind::NhsExempt => "nhs_exempt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuoteLine {
    pub product_code: String,
    pub product_name: String,
    pub schedule: String,
    pub quantity: u32,
    /// Private: the formulary's price per dosage unit. NHS: the per-item charge (or 0).
    pub unit_price_pence: i64,
    pub amount_pence: i64,
}

/// The stored price of one prescription.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    pub kind: QuoteKind,
    /// The date the charge was applied on (the dispensing date: the pharmacist's approval).
    pub charge_date: Date,
    pub lines: Vec<QuoteLine>,
    pub dispensing_fee_pence: i64,
    pub delivery_fee_pence: i64,
    pub total_pence: i64,
    /// NHS only: the exemption code as given, its evidence flag and the per-item charge.
    pub exemption: Option<String>,
    pub evidence_seen: Option<bool>,
    pub nhs_charge_per_item_pence: Option<i64>,
}

impl Quote {
    pub fn total(&self) -> Money {
        Money::pence(self.total_pence)
    }
    pub fn items_pence(&self) -> i64 {
        self.lines.iter().map(|l| l.amount_pence).sum()
    }
    pub fn is_due(&self) -> bool {
        self.kind != QuoteKind::NhsExempt
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("product {0} is not in the formulary")]
    UnknownProduct(String),
    #[error(
        "the patient's NHS charge exemption is still to be declared: the charge is not yet known"
    )]
    MissingNhsDetails,
    #[error("no NHS charge is known for {0} (the table starts on 2023-04-01)")]
    NoNhsCharge(Date),
    #[error("the amount overflows")]
    Overflow,
}

/// Price `rx` on `charge_date` (the dispensing date).
pub fn quote(
    rx: &Prescription,
    formulary: &Formulary,
    fees: Fees,
    charge_date: Date,
) -> Result<Quote, PricingError> {
    let product = |code: &str| {
        formulary
            .get(code)
            .ok_or_else(|| PricingError::UnknownProduct(code.to_string()))
    };
    match rx.kind {
        PrescriptionType::Private => {
            let mut lines = Vec::with_capacity(rx.items.len());
            for item in &rx.items {
                let p = product(&item.product_code)?;
                let qty = item.quantity.get();
                let amount = p
                    .unit_price_pence
                    .checked_mul(i64::from(qty))
                    .ok_or(PricingError::Overflow)?;
                lines.push(QuoteLine {
                    product_code: p.code.clone(),
                    product_name: p.name.clone(),
                    schedule: p.schedule.as_str().into(),
                    quantity: qty,
                    unit_price_pence: p.unit_price_pence,
                    amount_pence: amount,
                });
            }
            let total = lines
                .iter()
                .try_fold(0i64, |acc, l| acc.checked_add(l.amount_pence))
                .and_then(|t| t.checked_add(fees.dispensing_fee_pence))
                .and_then(|t| t.checked_add(fees.delivery_fee_pence))
                .ok_or(PricingError::Overflow)?;
            Ok(Quote {
                kind: QuoteKind::Private,
                charge_date,
                lines,
                dispensing_fee_pence: fees.dispensing_fee_pence,
                delivery_fee_pence: fees.delivery_fee_pence,
                total_pence: total,
                exemption: None,
                evidence_seen: None,
                nhs_charge_per_item_pence: None,
            })
        }
        PrescriptionType::Nhs => {
            let nhs = rx.nhs.as_ref().ok_or(PricingError::MissingNhsDetails)?;
            let paid = nhs.exemption == ExemptionCode::PAID;
            let per_item = if paid {
                nhs_charge_per_item(charge_date)
                    .ok_or(PricingError::NoNhsCharge(charge_date))?
                    .as_pence()
            } else {
                0
            };
            let mut lines = Vec::with_capacity(rx.items.len());
            for item in &rx.items {
                let p = product(&item.product_code)?;
                lines.push(QuoteLine {
                    product_code: p.code.clone(),
                    product_name: p.name.clone(),
                    schedule: p.schedule.as_str().into(),
                    quantity: item.quantity.get(),
                    unit_price_pence: per_item,
                    amount_pence: per_item,
                });
            }
            let total = per_item * lines.len() as i64;
            Ok(Quote {
                kind: if paid {
                    QuoteKind::NhsCharge
                } else {
                    QuoteKind::NhsExempt
                },
                charge_date,
                lines,
                dispensing_fee_pence: 0,
                delivery_fee_pence: 0,
                total_pence: total,
                exemption: Some(nhs.exemption.as_code()),
                evidence_seen: Some(nhs.evidence_seen),
                nhs_charge_per_item_pence: Some(
                    nhs_charge_per_item(charge_date).map_or(0, Money::as_pence),
                ),
            })
        }
    }
}

/// The last day a prescription with a Schedule 2–4 item may be supplied (28 days from the
/// appropriate date, MDR 2001 reg 16(1)(e)), or `None` when it has no such item.
pub fn cd_last_valid_day(rx: &Prescription, formulary: &Formulary) -> Option<Date> {
    let any_cd = rx.items.iter().any(|i| {
        formulary
            .get(&i.product_code)
            .is_some_and(|p| p.schedule.has_28_day_validity())
    });
    any_cd.then(|| rx.issued_on.saturating_add(jiff::Span::new().days(28)))
}

/// True when any item is Schedule 2 or 3 (private ones go to NHSBSA on FP34PCD).
pub fn has_sch2_or_3(rx: &Prescription, formulary: &Formulary) -> bool {
    rx.items.iter().any(|i| {
        formulary
            .get(&i.product_code)
            .is_some_and(|p| matches!(p.schedule, Schedule::Cd2 | Schedule::Cd3))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn nhs_charge_is_effective_dated() {
        assert_eq!(nhs_charge_per_item(date(2023, 3, 31)), None);
        assert_eq!(
            nhs_charge_per_item(date(2023, 4, 1)),
            Some(Money::pence(965))
        );
        assert_eq!(
            nhs_charge_per_item(date(2024, 4, 30)),
            Some(Money::pence(965))
        );
        assert_eq!(
            nhs_charge_per_item(date(2024, 5, 1)),
            Some(Money::pence(990))
        );
        assert_eq!(
            nhs_charge_per_item(date(2026, 11, 27)),
            Some(Money::pence(990))
        );
    }

    use crate::compliance::tests::{clean, item};
    use crate::prescription::NhsDetails;

    fn formulary() -> &'static Formulary {
        Formulary::builtin()
    }

    #[test]
    fn private_quote_is_units_times_price_plus_fees() {
        let mut rx = clean();
        rx.items.push(item("CONCERTA-XL-18", 14, 1.0, 1, 14));
        let f = Fees {
            dispensing_fee_pence: 500,
            delivery_fee_pence: 495,
        };
        let q = quote(&rx, formulary(), f, date(2026, 11, 27)).unwrap();
        let p36 = formulary().get("CONCERTA-XL-36").unwrap().unit_price_pence;
        let p18 = formulary().get("CONCERTA-XL-18").unwrap().unit_price_pence;
        assert_eq!(q.kind, QuoteKind::Private);
        assert_eq!(q.lines[0].amount_pence, 28 * p36);
        assert_eq!(q.lines[1].amount_pence, 14 * p18);
        assert_eq!(q.total_pence, 28 * p36 + 14 * p18 + 995);
        assert_eq!(q.items_pence() + 995, q.total_pence);
        assert!(q.is_due());
    }

    #[test]
    fn nhs_paid_charges_per_item_on_the_charge_date_and_exempt_pays_nothing() {
        let mut rx = clean();
        rx.kind = PrescriptionType::Nhs;
        rx.items.push(item("CONCERTA-XL-18", 14, 1.0, 1, 14));
        rx.nhs = Some(NhsDetails {
            exemption: ExemptionCode::PAID,
            evidence_seen: false,
        });
        let q = quote(&rx, formulary(), Fees::default(), date(2024, 4, 30)).unwrap();
        assert_eq!((q.kind, q.total_pence), (QuoteKind::NhsCharge, 2 * 965));
        let q = quote(&rx, formulary(), Fees::default(), date(2024, 5, 1)).unwrap();
        assert_eq!(q.total_pence, 2 * 990);
        assert_eq!(q.dispensing_fee_pence + q.delivery_fee_pence, 0);
        assert_eq!(q.exemption.as_deref(), Some("0001"));
        assert_eq!(
            quote(&rx, formulary(), Fees::default(), date(2023, 1, 1)),
            Err(PricingError::NoNhsCharge(date(2023, 1, 1)))
        );
        rx.nhs = Some(NhsDetails {
            exemption: ExemptionCode(4),
            evidence_seen: true,
        });
        let q = quote(&rx, formulary(), Fees::default(), date(2026, 11, 27)).unwrap();
        assert_eq!((q.kind, q.total_pence), (QuoteKind::NhsExempt, 0));
        assert_eq!(
            (q.exemption.as_deref(), q.evidence_seen),
            (Some("0004"), Some(true))
        );
        assert!(!q.is_due());
    }

    #[test]
    fn cd_window_ends_28_days_after_issue() {
        let rx = clean();
        assert_eq!(
            cd_last_valid_day(&rx, formulary()),
            Some(date(2026, 12, 18))
        );
        assert!(has_sch2_or_3(&rx, formulary()));
    }
}
