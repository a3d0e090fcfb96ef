//! Identifiers of people and registrations: NHS number, GMC / NMC / GPhC / HCPC registration
//! numbers, private prescriber code, clinic reference. Each parses from text and can only hold
//! a valid value. Sources: the NHS Data Dictionary and the UK Core FHIR guide.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Why an identifier was refused. The `Display` text is plain English for a clinic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must be exactly {expected} digits")]
    Length { expected: usize },
    #[error("must contain only digits")]
    NotDigits,
    #[error("fails the Modulus 11 check digit")]
    CheckDigit,
    #[error("has the wrong format: {0}")]
    Format(&'static str),
}

/// NHS number: 10 digits, the 10th a Modulus 11 check digit (NHS Data Dictionary, NHS
/// NUMBER). Spaces and hyphens in the input are ignored ("943 476 5919").
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NhsNumber(String);

impl NhsNumber {
    pub fn parse(input: &str) -> Result<Self, IdError> {
        // Spaces and hyphens left out; every character a digit first, then the count (the
        // order the errors are given in). The digits are kept on the stack until they pass.
        let mut d = [0u32; 10];
        let mut n = 0;
        for c in input.chars().filter(|c| !c.is_whitespace() && *c != '-') {
            let x = c.to_digit(10).ok_or(IdError::NotDigits)?;
            if let Some(slot) = d.get_mut(n) {
                *slot = x;
            }
            n += 1;
        }
        if n != 10 {
            return Err(IdError::Length { expected: 10 });
        }
        match nhs_check_digit(&d[..9]) {
            Some(check) if check == d[9] => Ok(Self(
                d.iter().map(|x| char::from(b'0' + *x as u8)).collect(),
            )),
            _ => Err(IdError::CheckDigit),
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The last three digits, for masked display.
    pub fn last3(&self) -> &str {
        &self.0[7..]
    }
}

/// Modulus 11 exactly as the NHS Data Dictionary gives it: weights 10..2, check = 11 - (sum mod
/// 11); 11 becomes 0; 10 means the number is never issued (returns `None`).
pub fn nhs_check_digit(first9: &[u32]) -> Option<u32> {
    debug_assert_eq!(first9.len(), 9);
    let sum: u32 = first9
        .iter()
        .enumerate()
        .map(|(i, d)| d * (10 - i as u32))
        .sum();
    match 11 - (sum % 11) {
        11 => Some(0),
        10 => None,
        c => Some(c),
    }
}

impl TryFrom<String> for NhsNumber {
    type Error = IdError;
    fn try_from(s: String) -> Result<Self, IdError> {
        Self::parse(&s)
    }
}
impl From<NhsNumber> for String {
    fn from(n: NhsNumber) -> String {
        n.0
    }
}
impl fmt::Debug for NhsNumber {
    /// Never prints the number: Debug output can reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NhsNumber(***{})", self.last3())
    }
}

macro_rules! string_id {
    ($(#[$m:meta])* $name:ident, $parse:expr) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);
        impl $name {
            pub fn parse(input: &str) -> Result<Self, IdError> {
                let f: fn(&str) -> Result<String, IdError> = $parse;
                f(input.trim()).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }
        impl From<$name> for String {
            fn from(n: $name) -> String {
                n.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

fn n_digits(s: &str, n: usize) -> Result<String, IdError> {
    if !s.chars().all(|c| c.is_ascii_digit()) {
        return Err(IdError::NotDigits);
    }
    if s.len() != n {
        return Err(IdError::Length { expected: n });
    }
    Ok(s.to_string())
}

string_id!(
    /// GMC reference number: 7 digits, or "L" + 6 digits for limited registration (UK Core).
    GmcNumber,
    |s| {
        let up = s.to_ascii_uppercase();
        if let Some(rest) = up.strip_prefix('L') {
            if rest.len() == 6 && rest.chars().all(|c| c.is_ascii_digit()) {
                return Ok(up);
            }
            return Err(IdError::Format("L followed by 6 digits, or 7 digits"));
        }
        n_digits(&up, 7)
    }
);

string_id!(
    /// GPhC registration number of a pharmacist: 7 digits starting with 2 (premises start with 1
    /// and are refused here).
    GphcNumber,
    |s| {
        let d = n_digits(s, 7)?;
        if !d.starts_with('2') {
            return Err(IdError::Format("a pharmacist's GPhC number starts with 2"));
        }
        Ok(d)
    }
);

string_id!(
    /// NMC PIN: 8 characters, pattern NNANNNNA (e.g. 71A2998E). Source marked *likely*.
    NmcPin,
    |s| {
        let up = s.to_ascii_uppercase();
        let b = up.as_bytes();
        let ok = b.len() == 8
            && b.iter().enumerate().all(|(i, c)| match i {
                2 | 7 => c.is_ascii_uppercase(),
                _ => c.is_ascii_digit(),
            });
        if ok { Ok(up) } else { Err(IdError::Format("NNANNNNA, e.g. 71A2998E")) }
    }
);

string_id!(
    /// HCPC registration: 2 letters and up to 6 digits (e.g. PH123456). Source marked *likely*.
    HcpcNumber,
    |s| {
        let up = s.to_ascii_uppercase();
        let b = up.as_bytes();
        let ok = b.len() >= 3
            && b.len() <= 8
            && b[..2].iter().all(u8::is_ascii_uppercase)
            && b[2..].iter().all(u8::is_ascii_digit);
        if ok { Ok(up) } else { Err(IdError::Format("2 letters and up to 6 digits, e.g. PH123456")) }
    }
);

string_id!(
    /// GDC registration number of a dentist: up to 6 digits (e.g. 123456). Format *unsure*: the
    /// GDC register shows plain numbers of up to six digits.
    GdcNumber,
    |s| {
        if s.is_empty() || s.len() > 6 || !s.chars().all(|c| c.is_ascii_digit()) {
            return Err(IdError::Format("up to 6 digits, e.g. 123456"));
        }
        Ok(s.to_string())
    }
);

string_id!(
    /// GOC registration number of an optometrist: "01-" and up to 6 digits (e.g. 01-23456).
    /// Format *unsure*: taken from the GOC register's published numbers.
    GocNumber,
    |s| {
        let ok = s
            .strip_prefix("01-")
            .is_some_and(|d| (1..=6).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()));
        if ok { Ok(s.to_string()) } else { Err(IdError::Format("01- and up to 6 digits, e.g. 01-23456")) }
    }
);

string_id!(
    /// Private prescriber identification number: 6 digits (MDR 2001 reg 15(2)(ab)).
    PrivatePrescriberCode,
    |s| n_digits(s, 6)
);

string_id!(
    /// The clinic's own reference for a prescription: 1–64 printable ASCII characters, no spaces
    /// at either end.
    ClinicReference,
    |s| {
        if s.is_empty() || s.len() > 64 {
            return Err(IdError::Format("1 to 64 characters"));
        }
        if !s.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
            return Err(IdError::Format("printable ASCII characters only"));
        }
        Ok(s.to_string())
    }
);

/// A prescriber's professional registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "body", content = "number", rename_all = "lowercase")]
pub enum Registration {
    Gmc(GmcNumber),
    Nmc(NmcPin),
    Gphc(GphcNumber),
    Hcpc(HcpcNumber),
    Gdc(GdcNumber),
    Goc(GocNumber),
}

impl Registration {
    pub fn body(&self) -> &'static str {
        match self {
            Registration::Gmc(_) => "gmc",
            Registration::Nmc(_) => "nmc",
            Registration::Gphc(_) => "gphc",
            Registration::Hcpc(_) => "hcpc",
            Registration::Gdc(_) => "gdc",
            Registration::Goc(_) => "goc",
        }
    }
    pub fn number(&self) -> &str {
        match self {
            Registration::Gmc(n) => n.as_str(),
            Registration::Nmc(n) => n.as_str(),
            Registration::Gphc(n) => n.as_str(),
            Registration::Hcpc(n) => n.as_str(),
            Registration::Gdc(n) => n.as_str(),
            Registration::Goc(n) => n.as_str(),
        }
    }
    /// Parse a (body, number) pair as it arrives on the wire.
    pub fn parse(body: &str, number: &str) -> Result<Self, RegistrationError> {
        let e = |e| RegistrationError::Number(e);
        Ok(match body {
            "gmc" => Registration::Gmc(GmcNumber::parse(number).map_err(e)?),
            "nmc" => Registration::Nmc(NmcPin::parse(number).map_err(e)?),
            "gphc" => Registration::Gphc(GphcNumber::parse(number).map_err(e)?),
            "hcpc" => Registration::Hcpc(HcpcNumber::parse(number).map_err(e)?),
            "gdc" => Registration::Gdc(GdcNumber::parse(number).map_err(e)?),
            "goc" => Registration::Goc(GocNumber::parse(number).map_err(e)?),
            _ => return Err(RegistrationError::UnknownBody),
        })
    }
}

impl Registration {
    /// The wire form `body:number` (e.g. `gmc:7012345`), as prescriber keys are registered.
    pub fn key(&self) -> String {
        format!("{}:{}", self.body(), self.number())
    }
    /// The kind of prescriber a registration implies when the submission names none: the GMC
    /// registers only doctors; every other body registers several kinds.
    pub fn implied_kind(&self) -> Option<PrescriberKind> {
        matches!(self, Registration::Gmc(_)).then_some(PrescriberKind::Doctor)
    }
}

/// The kind of prescriber who signed (clinic contract `prescriber.kind`). What a prescriber may
/// prescribe depends on the kind, not on the registration body alone (MDR 2001 regs 2 and 15,
/// SI 2012/973, HMR 2012 regs 214-215).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrescriberKind {
    Doctor,
    NurseIndependent,
    PharmacistIndependent,
    /// Any profession, prescribing under a clinical management plan agreed with a doctor.
    Supplementary,
    PhysiotherapistIndependent,
    PodiatristIndependent,
    ParamedicIndependent,
    TherapeuticRadiographerIndependent,
    OptometristIndependent,
    Dentist,
}

impl PrescriberKind {
    pub const ALL: [PrescriberKind; 10] = [
        PrescriberKind::Doctor,
        PrescriberKind::NurseIndependent,
        PrescriberKind::PharmacistIndependent,
        PrescriberKind::Supplementary,
        PrescriberKind::PhysiotherapistIndependent,
        PrescriberKind::PodiatristIndependent,
        PrescriberKind::ParamedicIndependent,
        PrescriberKind::TherapeuticRadiographerIndependent,
        PrescriberKind::OptometristIndependent,
        PrescriberKind::Dentist,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            PrescriberKind::Doctor => "doctor",
            PrescriberKind::NurseIndependent => "nurse_independent",
            PrescriberKind::PharmacistIndependent => "pharmacist_independent",
            PrescriberKind::Supplementary => "supplementary",
            PrescriberKind::PhysiotherapistIndependent => "physiotherapist_independent",
            PrescriberKind::PodiatristIndependent => "podiatrist_independent",
            PrescriberKind::ParamedicIndependent => "paramedic_independent",
            PrescriberKind::TherapeuticRadiographerIndependent => {
                "therapeutic_radiographer_independent"
            }
            PrescriberKind::OptometristIndependent => "optometrist_independent",
            PrescriberKind::Dentist => "dentist",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    /// Plain words for messages ("a dentist").
    pub fn describe(self) -> &'static str {
        match self {
            PrescriberKind::Doctor => "a doctor",
            PrescriberKind::NurseIndependent => "a nurse independent prescriber",
            PrescriberKind::PharmacistIndependent => "a pharmacist independent prescriber",
            PrescriberKind::Supplementary => "a supplementary prescriber",
            PrescriberKind::PhysiotherapistIndependent => {
                "a physiotherapist independent prescriber"
            }
            PrescriberKind::PodiatristIndependent => "a podiatrist independent prescriber",
            PrescriberKind::ParamedicIndependent => "a paramedic independent prescriber",
            PrescriberKind::TherapeuticRadiographerIndependent => {
                "a therapeutic radiographer independent prescriber"
            }
            PrescriberKind::OptometristIndependent => "an optometrist independent prescriber",
            PrescriberKind::Dentist => "a dentist",
        }
    }
    /// The registration bodies that register this kind (clinic contract, 2026-12 revision).
    pub fn bodies(self) -> &'static [&'static str] {
        match self {
            PrescriberKind::Doctor => &["gmc"],
            PrescriberKind::NurseIndependent => &["nmc"],
            PrescriberKind::PharmacistIndependent => &["gphc"],
            PrescriberKind::Supplementary => &["nmc", "gphc", "hcpc", "goc"],
            PrescriberKind::PhysiotherapistIndependent
            | PrescriberKind::PodiatristIndependent
            | PrescriberKind::ParamedicIndependent
            | PrescriberKind::TherapeuticRadiographerIndependent => &["hcpc"],
            PrescriberKind::OptometristIndependent => &["goc"],
            PrescriberKind::Dentist => &["gdc"],
        }
    }
    /// May this kind prescribe a Schedule 2-5 controlled drug for ADHD? Doctors, nurse and
    /// pharmacist independent prescribers may (SI 2012/973; the exceptions — diamorphine,
    /// dipipanone, cocaine for addiction — are not ADHD medicines). The HCPC professions' lists
    /// hold no stimulant (HCPC "Controlled drugs"); optometrists may prescribe no CD (HMR 2012
    /// reg 214(5)); dentists only for dental treatment (MDR 2001 reg 15(1)(d)). Supplementary
    /// prescribers may, under a clinical management plan the software cannot see (flagged).
    pub fn may_prescribe_adhd_cd(self) -> bool {
        matches!(
            self,
            PrescriberKind::Doctor
                | PrescriberKind::NurseIndependent
                | PrescriberKind::PharmacistIndependent
                | PrescriberKind::Supplementary
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistrationError {
    #[error("must be one of gmc, nmc, gphc, hcpc, gdc, goc")]
    UnknownBody,
    #[error("{0}")]
    Number(IdError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn nhs_worked_example_from_the_data_dictionary() {
        // 401 023 213 gives check digit 7.
        assert!(NhsNumber::parse("4010232137").is_ok());
        assert!(NhsNumber::parse("401 023 2137").is_ok());
        assert!(NhsNumber::parse("9434765919").is_ok());
        assert_eq!(NhsNumber::parse("4010232138"), Err(IdError::CheckDigit));
        assert_eq!(
            NhsNumber::parse("401023213"),
            Err(IdError::Length { expected: 10 })
        );
        assert_eq!(NhsNumber::parse("40102321x7"), Err(IdError::NotDigits));
    }

    #[test]
    fn nhs_remainder_one_means_never_issued() {
        // Digits whose weighted sum is 1 mod 11 give 11 - 1 = 10: never valid whatever digit 10 is.
        let first9 = [0, 0, 0, 0, 0, 0, 0, 0, 1]; // sum = 2 -> check 9
        assert_eq!(nhs_check_digit(&first9), Some(9));
        let ten = [0, 0, 0, 0, 0, 0, 0, 1, 0]; // weight 3 -> sum 3 -> 8
        assert_eq!(nhs_check_digit(&ten), Some(8));
        let bad = [1, 0, 0, 0, 0, 0, 0, 0, 0]; // sum 10 -> 11 - 10 = 1
        assert_eq!(nhs_check_digit(&bad), Some(1));
        let never = [0, 0, 0, 0, 0, 0, 1, 0, 0]; // weight 4 -> sum 4 -> 7
        assert_eq!(nhs_check_digit(&never), Some(7));
        // weight 10 * 1 + weight 2 * 0 ... sum 12 -> 12 mod 11 = 1 -> 10 -> invalid
        let invalid = [1, 0, 0, 0, 0, 0, 0, 0, 1];
        assert_eq!(nhs_check_digit(&invalid), None);
        for last in 0..10 {
            let s = format!("100000001{last}");
            assert!(NhsNumber::parse(&s).is_err(), "{s}");
        }
    }

    #[test]
    fn nhs_debug_masks() {
        let n = NhsNumber::parse("9434765919").unwrap();
        assert_eq!(format!("{n:?}"), "NhsNumber(***919)");
    }

    proptest! {
        #[test]
        fn nhs_any_valid_check_digit_parses(first9 in proptest::collection::vec(0u32..10, 9)) {
            if let Some(c) = nhs_check_digit(&first9) {
                let s: String = first9.iter().chain(std::iter::once(&c)).map(|d| char::from_digit(*d, 10).unwrap()).collect();
                prop_assert!(NhsNumber::parse(&s).is_ok());
                // Modulus 11 catches every single-digit substitution.
                for pos in 0..10 {
                    let mut b: Vec<u8> = s.bytes().collect();
                    b[pos] = b'0' + ((b[pos] - b'0' + 1) % 10);
                    let changed = String::from_utf8(b).unwrap();
                    prop_assert!(NhsNumber::parse(&changed).is_err(), "{changed}");
                }
            }
        }

        #[test]
        fn nhs_parse_never_panics(s in "\\PC{0,20}") {
            let _ = NhsNumber::parse(&s);
        }
    }

    #[test]
    fn registrations() {
        assert!(GmcNumber::parse("7012345").is_ok());
        assert!(GmcNumber::parse("L123456").is_ok());
        assert!(GmcNumber::parse("701234").is_err());
        assert!(GmcNumber::parse("L12345").is_err());
        assert!(GphcNumber::parse("2033467").is_ok());
        assert!(GphcNumber::parse("1033467").is_err());
        assert!(GphcNumber::parse("203346").is_err());
        assert!(NmcPin::parse("71A2998E").is_ok());
        assert!(NmcPin::parse("71a2998e").is_ok());
        assert!(NmcPin::parse("7132998E").is_err());
        assert!(HcpcNumber::parse("PH123456").is_ok());
        assert!(HcpcNumber::parse("P1234567").is_err());
        assert!(PrivatePrescriberCode::parse("123456").is_ok());
        assert!(PrivatePrescriberCode::parse("12345").is_err());
        assert!(PrivatePrescriberCode::parse("12345a").is_err());
        assert_eq!(
            Registration::parse("gmc", "7012345").unwrap().number(),
            "7012345"
        );
        assert_eq!(
            Registration::parse("xyz", "1"),
            Err(RegistrationError::UnknownBody)
        );
        assert!(ClinicReference::parse("ADHD-2026-000123").is_ok());
        assert!(ClinicReference::parse("").is_err());
        assert!(ClinicReference::parse(&"x".repeat(65)).is_err());
    }
}
