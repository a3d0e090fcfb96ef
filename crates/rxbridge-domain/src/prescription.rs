//! A prescription as rxbridge holds it once it has passed the contract: every field is a valid
//! value type. Constructed only by the inbound adapters' parsers (`try_into_domain`); the
//! compliance rules then decide what the law and clinical safety make of it.

use crate::contact::{Address, Email, UkPhone};
use crate::ids::{ClinicReference, NhsNumber, PrivatePrescriberCode, Registration};
use crate::quantity::Quantity;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PrescriptionType {
    Private,
    Nhs,
}

impl PrescriptionType {
    pub fn as_str(self) -> &'static str {
        match self {
            PrescriptionType::Private => "private",
            PrescriptionType::Nhs => "nhs",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorityKind {
    /// Private Sch2/3: the signed pink FP10PCD must reach the pharmacy.
    PaperFp10pcd,
    /// NHS paper prescription.
    PaperFp10,
    /// NHS Electronic Prescription Service.
    Eps,
    /// Private electronic prescription: non-CD items only.
    ElectronicPrivate,
}

impl AuthorityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorityKind::PaperFp10pcd => "paper_fp10pcd",
            AuthorityKind::PaperFp10 => "paper_fp10",
            AuthorityKind::Eps => "eps",
            AuthorityKind::ElectronicPrivate => "electronic_private",
        }
    }
    pub fn is_paper(self) -> bool {
        matches!(self, AuthorityKind::PaperFp10pcd | AuthorityKind::PaperFp10)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authority {
    pub kind: AuthorityKind,
    pub serial_number: Option<String>,
    pub eps_prescription_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prescriber {
    pub given_name: String,
    pub family_name: String,
    pub registration: Registration,
    pub private_prescriber_code: Option<PrivatePrescriberCode>,
    pub address: Address,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    pub nhs_number: Option<NhsNumber>,
    pub given_name: String,
    pub family_name: String,
    pub date_of_birth: Date,
    pub email: Option<Email>,
    pub phone: Option<UkPhone>,
    pub address: Address,
}

impl fmt::Debug for Patient {
    /// Patient data never reaches a log line, even through `{:?}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Patient(***)")
    }
}

impl Patient {
    /// The identity key for history checks when there is no NHS number: normalised family name,
    /// given name, date of birth and postcode (`uk-rules.md` §5: detect one person under two
    /// identities). Lower-case letters only.
    pub fn demographic_key(&self) -> String {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_alphabetic())
                .flat_map(char::to_lowercase)
                .collect()
        };
        format!(
            "{}|{}|{}|{}",
            norm(&self.family_name),
            norm(&self.given_name),
            self.date_of_birth,
            self.address.postcode.replace(' ', "").to_ascii_uppercase()
        )
    }
    /// Name + date of birth (without postcode), to notice one person whose details disagree.
    pub fn name_dob_key(&self) -> String {
        let norm = |s: &str| -> String {
            s.chars()
                .filter(|c| c.is_alphabetic())
                .flat_map(char::to_lowercase)
                .collect()
        };
        format!(
            "{}|{}|{}",
            norm(&self.family_name),
            norm(&self.given_name),
            self.date_of_birth
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Dose {
    /// Dosage units per administration (0.5 for half a tablet).
    pub units: f64,
    pub times_per_day: u32,
}

impl Dose {
    pub fn units_per_day(&self) -> f64 {
        self.units * f64::from(self.times_per_day)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub product_code: String,
    pub quantity: Quantity,
    /// As written by the prescriber; the number it states is `quantity_in_words_value`.
    pub quantity_in_words: Option<String>,
    pub quantity_in_words_value: Option<u32>,
    pub dose: Dose,
    pub instructions: String,
    /// Days of treatment the quantity covers; derived from the dose when the clinic omits it.
    pub days_supply: u32,
    /// Repeat issues requested (Sch2/3 may not be repeat-dispensed).
    pub repeats: u32,
}

/// NHS charge exemption code (EPS code list, `uk-rules.md` §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExemptionCode(pub u16);

impl ExemptionCode {
    pub const PAID: ExemptionCode = ExemptionCode(1);
    /// Codes known to the EPS vocabulary: 0001–0017 (0014, 0016, 0017 meanings unsure).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 4 || !s.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let n: u16 = s.parse().ok()?;
        (1..=17).contains(&n).then_some(ExemptionCode(n))
    }
    pub fn as_code(self) -> String {
        format!("{:04}", self.0)
    }
    pub fn meaning(self) -> &'static str {
        match self.0 {
            1 => "paid",
            2 => "under 16",
            3 => "16 to 18 in full-time education",
            4 => "60 or over",
            5 => "maternity exemption certificate",
            6 => "medical exemption certificate",
            7 => "prescription prepayment certificate",
            8 => "war pension exemption certificate",
            9 => "HC2 certificate",
            10 => "free-of-charge contraceptives",
            11 => "Income Support",
            12 => "income-based Jobseeker's Allowance",
            13 => "tax credit exemption certificate",
            15 => "exempt, reason not stated",
            _ => "income-based category (meaning unsure)",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NhsDetails {
    pub exemption: ExemptionCode,
    pub evidence_seen: bool,
}

/// A prescription that satisfies the clinic contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prescription {
    pub clinic_reference: ClinicReference,
    pub kind: PrescriptionType,
    pub issued_on: Date,
    pub authority: Authority,
    pub prescriber: Prescriber,
    pub patient: Patient,
    pub items: Vec<Item>,
    pub nhs: Option<NhsDetails>,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn exemption_codes() {
        assert_eq!(ExemptionCode::parse("0001"), Some(ExemptionCode::PAID));
        assert_eq!(ExemptionCode::parse("0015").unwrap().as_code(), "0015");
        assert_eq!(ExemptionCode::parse("0000"), None);
        assert_eq!(ExemptionCode::parse("0018"), None);
        assert_eq!(ExemptionCode::parse("1"), None);
        assert_eq!(ExemptionCode::parse("00a1"), None);
    }
}
