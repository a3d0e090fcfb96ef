//! The NHS charge exemption declared at the pharmacy. An NHS electronic prescription (an EPS
//! `prescription-order` message) never carries the patient's exemption: in England the patient
//! declares it when the prescription is dispensed, and the pharmacy records the code and whether
//! it saw evidence (NHS (Charges for Drugs and Appliances) Regulations 2015). Until then the
//! prescription's charge is not yet known and it cannot be approved: approval fixes the charge on
//! the dispensing date, and nothing is supplied before it.
//!
//! A declaration is judged as the contract parser judges an exemption on a submission: the code
//! must be in the effective-dated table and in force on the day it is declared, and an age-based
//! code must agree with the patient's date of birth on that day.

use crate::dates::age_on;
use crate::nhs::{AgeClaim, ExemptionError, NhsTables};
use crate::prescription::{ExemptionCode, NhsDetails, Prescription, PrescriptionType};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// Where an NHS prescription's charge exemption stands, when the prescription did not carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NhsExemption {
    /// Not declared yet: the charge is not yet known, and the prescription cannot be approved.
    ToBeDeclared,
    /// Declared at the pharmacy.
    Declared(Declaration),
}

/// The states' names, as [`NhsExemption::as_str`] gives them (the API document lists them).
pub const STATE_NAMES: [&str; 2] = ["to_be_declared", "declared"];

impl NhsExemption {
    /// `to_be_declared` or `declared`, as the API and the portal name the state.
    pub fn as_str(&self) -> &'static str {
        match self {
            NhsExemption::ToBeDeclared => "to_be_declared",
            NhsExemption::Declared(_) => "declared",
        }
    }
    pub fn declaration(&self) -> Option<&Declaration> {
        match self {
            NhsExemption::Declared(d) => Some(d),
            NhsExemption::ToBeDeclared => None,
        }
    }
}

/// The patient's declaration as the pharmacy recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    pub exemption: ExemptionCode,
    pub evidence_seen: bool,
    /// The day it was declared (London), the day the code was judged on.
    pub declared_on: Date,
    /// The staff member who recorded it (their id).
    pub declared_by: String,
}

impl Declaration {
    /// The details pricing and claims use, as if the prescription had carried them.
    pub fn details(&self) -> NhsDetails {
        NhsDetails {
            exemption: self.exemption,
            evidence_seen: self.evidence_seen,
        }
    }
}

/// Why a declaration was refused. Nothing is recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeclarationError {
    #[error("only an NHS prescription has a charge exemption to declare")]
    NotNhs,
    #[error(
        "this prescription carried its exemption ({0}); it has none to declare at the pharmacy"
    )]
    CarriedByPrescription(String),
    #[error("{0} is not an NHS prescription charge exemption code (e.g. 0001 = paid)")]
    Unknown(String),
    #[error("{0}")]
    NotInForce(String),
    /// The message names the claim, not the age: staff who see the record masked do not see
    /// the date of birth either.
    #[error(
        "exemption {code} claims the patient is {claim}, but the date of birth on the prescription says otherwise on {on}"
    )]
    ContradictsAge {
        code: String,
        claim: &'static str,
        age: i32,
        on: Date,
    },
}

/// The exemption details the charge is computed from: those the prescription carried, else the
/// pharmacy's declaration; `None` while the exemption is still to be declared (or the
/// prescription is private).
pub fn charge_details(rx: &Prescription, state: Option<&NhsExemption>) -> Option<NhsDetails> {
    if rx.kind != PrescriptionType::Nhs {
        return None;
    }
    rx.nhs.clone().or_else(|| {
        state
            .and_then(NhsExemption::declaration)
            .map(Declaration::details)
    })
}

/// The state a newly received prescription starts in: `ToBeDeclared` for an NHS prescription
/// that did not carry its exemption, `None` otherwise (a private one, or an NHS one with its
/// `nhs` block).
pub fn initial_state(rx: &Prescription) -> Option<NhsExemption> {
    (rx.kind == PrescriptionType::Nhs && rx.nhs.is_none()).then_some(NhsExemption::ToBeDeclared)
}

/// Check the patient's declaration of `code` on `on` (London's date), recorded by `by`, against
/// the tables shipped with this build.
pub fn declare(
    rx: &Prescription,
    code: &str,
    evidence_seen: bool,
    on: Date,
    by: &str,
) -> Result<Declaration, DeclarationError> {
    declare_in(NhsTables::builtin(), rx, code, evidence_seen, on, by)
}

fn declare_in(
    tables: &NhsTables,
    rx: &Prescription,
    code: &str,
    evidence_seen: bool,
    on: Date,
    by: &str,
) -> Result<Declaration, DeclarationError> {
    if rx.kind != PrescriptionType::Nhs {
        return Err(DeclarationError::NotNhs);
    }
    if let Some(nhs) = &rx.nhs {
        return Err(DeclarationError::CarriedByPrescription(
            nhs.exemption.as_code(),
        ));
    }
    let code = code.trim();
    let row = tables.exemption_on(code, on).map_err(|e| match e {
        ExemptionError::Unknown => DeclarationError::Unknown(code.chars().take(12).collect()),
        e @ ExemptionError::NotInForce { .. } => DeclarationError::NotInForce(e.to_string()),
    })?;
    let exemption =
        ExemptionCode::parse(code).ok_or_else(|| DeclarationError::Unknown(code.into()))?;
    if let Some(claim) = row.age_claim {
        check_age(claim, code, rx.patient.date_of_birth, on)?;
    }
    Ok(Declaration {
        exemption,
        evidence_seen,
        declared_on: on,
        declared_by: by.into(),
    })
}

fn check_age(claim: AgeClaim, code: &str, born: Date, on: Date) -> Result<(), DeclarationError> {
    let age = age_on(born, on);
    if claim.holds_at(age) {
        Ok(())
    } else {
        Err(DeclarationError::ContradictsAge {
            code: code.into(),
            claim: claim.describe(),
            age,
            on,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compliance::tests::{clean, item};
    use crate::formulary::Formulary;
    use crate::pricing::{Fees, QuoteKind, quote};
    use jiff::civil::date;

    fn eps() -> Prescription {
        let mut rx = clean();
        rx.kind = PrescriptionType::Nhs;
        rx.nhs = None;
        rx.items.push(item("CONCERTA-XL-18", 14, 1.0, 1, 14));
        rx
    }

    const ON: Date = date(2026, 12, 1);

    #[test]
    fn an_nhs_prescription_without_its_exemption_starts_to_be_declared() {
        let rx = eps();
        assert_eq!(initial_state(&rx), Some(NhsExemption::ToBeDeclared));
        assert_eq!(charge_details(&rx, initial_state(&rx).as_ref()), None);
        let mut carried = eps();
        carried.nhs = Some(NhsDetails {
            exemption: ExemptionCode::PAID,
            evidence_seen: false,
        });
        assert_eq!(initial_state(&carried), None);
        assert_eq!(initial_state(&clean()), None, "private");
        assert_eq!(
            charge_details(&carried, None).map(|d| d.exemption),
            Some(ExemptionCode::PAID)
        );
    }

    #[test]
    fn the_charge_is_not_known_until_declared_then_follows_the_code() {
        let rx = eps();
        let f = Formulary::builtin();
        assert!(quote(&rx, f, Fees::default(), ON).is_err(), "not yet known");

        let paid = declare(&rx, "0001", false, ON, "st_1").unwrap();
        assert_eq!((paid.declared_on, paid.declared_by.as_str()), (ON, "st_1"));
        let state = NhsExemption::Declared(paid);
        let mut priced = rx.clone();
        priced.nhs = charge_details(&rx, Some(&state));
        let q = quote(&priced, f, Fees::default(), ON).unwrap();
        let per_item = crate::pricing::nhs_charge_per_item(ON).unwrap().as_pence();
        assert_eq!(
            (q.kind, q.total_pence),
            (QuoteKind::NhsCharge, 2 * per_item)
        );
        assert_eq!(q.exemption.as_deref(), Some("0001"));

        let exempt = NhsExemption::Declared(declare(&rx, "0006", true, ON, "st_1").unwrap());
        priced.nhs = charge_details(&rx, Some(&exempt));
        let q = quote(&priced, f, Fees::default(), ON).unwrap();
        assert_eq!((q.kind, q.total_pence), (QuoteKind::NhsExempt, 0));
        assert_eq!(
            (q.exemption.as_deref(), q.evidence_seen),
            (Some("0006"), Some(true))
        );
    }

    #[test]
    fn a_bad_declaration_is_refused_with_its_reason() {
        let rx = eps();
        assert_eq!(
            declare(&rx, "0017", true, ON, "st_1"),
            Err(DeclarationError::Unknown("0017".into()))
        );
        assert!(matches!(
            declare(&rx, "12", true, ON, "st_1"),
            Err(DeclarationError::Unknown(_))
        ));
        // The patient (clean(): born 1998) is neither under 16 nor 60.
        let err = declare(&rx, "0004", true, ON, "st_1").unwrap_err();
        assert!(
            matches!(err, DeclarationError::ContradictsAge { age: 28, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("aged 60 or over"), "{err}");
        assert!(
            !err.to_string().contains("28"),
            "no age in the message: {err}"
        );
        assert!(declare(&rx, "0002", true, ON, "st_1").is_err());
        let mut young = eps();
        young.patient.date_of_birth = date(2012, 1, 1);
        assert!(declare(&young, "0002", true, ON, "st_1").is_ok());
        assert_eq!(
            declare(&clean(), "0001", true, ON, "st_1"),
            Err(DeclarationError::NotNhs)
        );
        let mut carried = eps();
        carried.nhs = Some(NhsDetails {
            exemption: ExemptionCode::PAID,
            evidence_seen: false,
        });
        assert_eq!(
            declare(&carried, "0006", true, ON, "st_1"),
            Err(DeclarationError::CarriedByPrescription("0001".into()))
        );
    }

    #[test]
    fn a_code_not_in_force_on_the_day_is_refused() {
        let t = NhsTables::from_json(
            r#"{"reviewed":"2026-12-01","note":"","charges":[],"exemptions":[
              {"code":"0016","meaning":"UC","valid_from":"2027-01-01","valid_to":null,"confidence":"test","source":"test"}]}"#,
        )
        .unwrap();
        let rx = eps();
        let err = declare_in(&t, &rx, "0016", true, date(2026, 12, 31), "st_1").unwrap_err();
        assert!(matches!(err, DeclarationError::NotInForce(_)), "{err:?}");
        assert!(err.to_string().contains("from 2027-01-01"), "{err}");
        assert!(declare_in(&t, &rx, "0016", true, date(2027, 1, 1), "st_1").is_ok());
    }

    #[test]
    fn the_state_serialises_with_its_name() {
        let d = NhsExemption::Declared(declare(&eps(), "0001", false, ON, "st_1").unwrap());
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["state"], "declared");
        assert_eq!(
            [NhsExemption::ToBeDeclared.as_str(), d.as_str()],
            STATE_NAMES
        );
        assert_eq!(v["declared_on"], "2026-12-01");
        assert_eq!(serde_json::from_value::<NhsExemption>(v).unwrap(), d);
        assert_eq!(
            serde_json::to_value(NhsExemption::ToBeDeclared).unwrap(),
            serde_json::json!({"state": "to_be_declared"})
        );
    }
}
