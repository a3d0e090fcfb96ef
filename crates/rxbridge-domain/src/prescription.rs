//! A prescription as rxbridge holds it once it has passed the contract: every field is a valid
//! value type. Constructed only by the inbound adapters' parsers (`try_into_domain`); the
//! compliance rules then decide what the law and clinical safety make of it.

use crate::contact::{Address, Email, UkPhone};
use crate::ids::{ClinicReference, NhsNumber, PrescriberKind, PrivatePrescriberCode, Registration};
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
    /// The private CD form's name where it is not England's FP10PCD (an equivalent body's
    /// form, MDR 2001 reg 15(1)(aa)); `None` means FP10PCD.
    #[serde(default)]
    pub form: Option<String>,
    pub serial_number: Option<String>,
    pub eps_prescription_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prescriber {
    pub given_name: String,
    pub family_name: String,
    pub registration: Registration,
    /// As the clinic stated it (`None` when omitted); see [`Prescriber::kind`].
    #[serde(default)]
    pub kind: Option<PrescriberKind>,
    pub private_prescriber_code: Option<PrivatePrescriberCode>,
    pub address: Address,
}

impl Prescriber {
    /// The kind of prescriber: as stated, or a doctor for a GMC registration (the GMC registers
    /// only doctors); `None` when it is not known.
    pub fn kind(&self) -> Option<PrescriberKind> {
        self.kind.or_else(|| self.registration.implied_kind())
    }
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
    /// given name, date of birth and postcode (GPhC distance-selling guidance: detect one person under two
    /// identities). Lower-case letters only.
    pub fn demographic_key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            name_key(&self.family_name),
            name_key(&self.given_name),
            self.date_of_birth,
            crate::normalise::postcode_key(&self.address.postcode)
        )
    }
    /// Name + date of birth (without postcode), to notice one person whose details disagree.
    pub fn name_dob_key(&self) -> String {
        format!(
            "{}|{}|{}",
            name_key(&self.family_name),
            name_key(&self.given_name),
            self.date_of_birth
        )
    }
    /// Family name + date of birth, as a staff search keys it.
    pub fn family_dob_key(&self) -> String {
        family_dob_key(&self.family_name, self.date_of_birth)
    }
}

use crate::normalise::name_key;

/// The key of a family-name + date-of-birth search, normalised as intake normalises it.
pub fn family_dob_key(family_name: &str, date_of_birth: Date) -> String {
    format!("{}|{date_of_birth}", name_key(family_name))
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
    /// Days of treatment a quantity gives at this dose: quantity ÷ (units × times a day).
    pub fn days_of_treatment(&self, quantity: u32) -> f64 {
        f64::from(quantity) / self.units_per_day()
    }
}

/// Fn for serde defaults of fields added after records were first stored.
fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub product_code: String,
    /// The total quantity: the figures, or the number the words state when the figures were
    /// left out (`quantity_figures_given` false).
    pub quantity: Quantity,
    /// False when the prescription gave the quantity in words only.
    #[serde(default = "yes")]
    pub quantity_figures_given: bool,
    /// As written by the prescriber; the number it states is `quantity_in_words_value`.
    pub quantity_in_words: Option<String>,
    pub quantity_in_words_value: Option<u32>,
    /// The words as they should be spelt, when they state their number only after a minor
    /// spelling slip is corrected.
    #[serde(default)]
    pub quantity_words_corrected: Option<String>,
    pub dose: Dose,
    pub instructions: String,
    /// Days of treatment the quantity gives at the dose (quantity ÷ daily units, rounded up),
    /// whatever the clinic declared.
    pub days_supply: u32,
    /// The days' supply the clinic declared, if it did.
    #[serde(default)]
    pub declared_days_supply: Option<u32>,
    /// Repeat issues requested (Sch2/3 may not be repeat-dispensed).
    pub repeats: u32,
    /// Marked repeatable (with or without a number of repeats).
    #[serde(default)]
    pub repeatable: bool,
}

impl Item {
    /// How many times the item may be dispensed in all: once, plus its repeats; a repeatable
    /// prescription that does not say how often, at most twice (HMR 2012 reg 217(6)).
    pub fn dispensings_allowed(&self) -> u32 {
        if self.repeats > 0 {
            1 + self.repeats
        } else if self.repeatable {
            2
        } else {
            1
        }
    }
}

/// NHS charge exemption code (EPS code list, effective-dated in `data/nhs.json`): 0001-0016 and
/// the 9xxx codes of the real-time exemption checking service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExemptionCode(pub u16);

impl ExemptionCode {
    pub const PAID: ExemptionCode = ExemptionCode(1);
    /// A code in the exemption table (in force or not: see [`crate::nhs::NhsTables::exemption_on`]).
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 4 || !s.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        crate::nhs::NhsTables::builtin().exemption(s)?;
        s.parse().ok().map(ExemptionCode)
    }
    pub fn as_code(self) -> String {
        format!("{:04}", self.0)
    }
    /// The table's row for this code.
    pub fn row(self) -> Option<&'static crate::nhs::Exemption> {
        crate::nhs::NhsTables::builtin().exemption(&self.as_code())
    }
    pub fn meaning(self) -> &'static str {
        self.row().map_or("unknown code", |r| r.meaning.as_str())
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
    /// The prescriber's advanced electronic signature as sent: a compact JWS with a detached
    /// payload (required of `electronic_private`, kept but not required of other authorities).
    #[serde(default)]
    pub signature: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn exemption_codes() {
        assert_eq!(ExemptionCode::parse("0001"), Some(ExemptionCode::PAID));
        assert_eq!(ExemptionCode::parse("0015").unwrap().as_code(), "0015");
        assert_eq!(ExemptionCode::parse("0000"), None);
        assert_eq!(ExemptionCode::parse("0017"), None);
        assert_eq!(ExemptionCode::parse("0018"), None);
        assert_eq!(ExemptionCode::parse("9005").unwrap().as_code(), "9005");
        assert_eq!(ExemptionCode::parse("9002"), None);
        assert_eq!(ExemptionCode::parse("1"), None);
        assert_eq!(ExemptionCode::parse("00a1"), None);
    }
}
