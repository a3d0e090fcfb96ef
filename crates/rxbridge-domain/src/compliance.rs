//! UK compliance rules: controlled-drug law (block) and clinical / distance-selling safeguards
//! (flag for a pharmacist). Each rule has a stable code, a severity, a citation and a
//! plain-English message carrying the numbers that triggered it. Source of truth:
//! the law and guidance each rule cites (`docs/compliance.md`).
//!
//! `evaluate` is pure: the caller supplies today's London date, the formulary, the thresholds
//! and the patient's history (already fetched through indexed lookups).

use crate::dates::{age_on, days_between, epoch_day};
use crate::formulary::{DoseBasis, Formulary, Product};
use crate::lifecycle::Status;
use crate::prescription::{AuthorityKind, Prescription, PrescriptionType};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The law forbids supply: the prescription is recorded as `rejected`.
    Block,
    /// A pharmacist must decide.
    Flag,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Block => "block",
            Severity::Flag => "flag",
            Severity::Info => "info",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub code: String,
    pub severity: Severity,
    /// Index of the item the finding concerns, or `None` for the whole prescription.
    pub item: Option<usize>,
    pub message: String,
    pub rule: String,
    /// The other prescriptions it is about (the earlier supply a duplicate or early supply
    /// overlaps), by id. Empty for findings about this prescription alone, and on findings
    /// stored before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refs: Vec<String>,
}

impl Finding {
    /// How a pharmacist acknowledges this finding: its code, and for a finding about one item
    /// `code.N` (N counted from 0), so that the same flag on two items is acknowledged twice.
    pub fn key(&self) -> String {
        match self.item {
            Some(i) => format!("{}.{i}", self.code),
            None => self.code.clone(),
        }
    }
}

/// Thresholds that are guidance rather than law, with their sourced defaults. Operators may
/// change them in config; the legal limits (28 days, 6 months) are not configurable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// DHSC good practice: CD prescriptions limited to 30 days' treatment.
    pub cd_max_days_supply: u32,
    /// An earlier supply of the same active ingredient counts as still running while less than
    /// this percentage of its days' supply has elapsed.
    pub early_supply_elapsed_percent: u32,
    /// Flag when more than this many different patients share one delivery address
    /// (GPhC distance-selling safeguards; households with several patients are common).
    pub address_max_patients: u32,
    /// Private CD forms of the "equivalent bodies" (MDR 2001 reg 15(1)(aa): a Local Health
    /// Board in Wales, a Health Board in Scotland, the NI Business Services Organisation)
    /// accepted besides England's FP10PCD. Empty by default: their names are not verified.
    pub equivalent_private_cd_forms: Vec<String>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cd_max_days_supply: 30,
            early_supply_elapsed_percent: 75,
            address_max_patients: 2,
            equivalent_private_cd_forms: Vec::new(),
        }
    }
}

/// One earlier prescription item of the same patient (matched by NHS number, or by the
/// demographic key when there is none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub prescription_id: String,
    pub same_clinic: bool,
    pub product_code: String,
    pub active_ingredient: String,
    /// When the supply starts: the earlier prescription's appropriate date.
    pub start: Date,
    pub days_supply: u32,
    pub status: Status,
}

impl HistoryEntry {
    fn counts(&self) -> bool {
        !matches!(
            self.status,
            Status::Rejected | Status::Cancelled | Status::Expired
        )
    }
}

/// Stores count other patients at an address up to this many and stop: the count decides a
/// flag against a threshold of at most this, and an address on thousands of records must not
/// make every submission to it read them all.
pub const MAX_COUNTED_AT_ADDRESS: u32 = 100;

/// What the store knows about other identities that touch this patient's details.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentitySignals {
    /// Distinct other patients (identity keys) already delivered to the same address, counted
    /// up to [`MAX_COUNTED_AT_ADDRESS`].
    pub other_patients_at_address: u32,
    /// The same NHS number was seen with a different name or date of birth.
    pub nhs_number_with_other_details: bool,
    /// The same name and date of birth were seen with a different NHS number.
    pub details_with_other_nhs_number: bool,
}

pub struct Context<'a> {
    pub today: Date,
    pub formulary: &'a Formulary,
    pub thresholds: &'a Thresholds,
    pub history: &'a [HistoryEntry],
    pub identity: IdentitySignals,
    pub signature: SignatureCheck,
}

/// A rule as listed by `GET /v1/rules`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub code: &'static str,
    pub severity: Severity,
    /// The public law or guidance it comes from ("MDR 2001 reg 16(1)(e)").
    pub rule: &'static str,
    /// A page of that law or guidance.
    pub source_url: &'static str,
    /// What it is checked on ("Schedule 2/3 items", "every prescription").
    pub applies_to: &'static str,
    pub description: &'static str,
    /// The configuration keys of the thresholds it uses (values in `GET /v1/rules`).
    #[serde(skip)]
    pub thresholds: &'static [&'static str],
}

macro_rules! rules {
    ($($name:ident = $code:literal, $sev:ident, $cite:literal, $url:literal, $applies:literal, [$($t:literal),*], $desc:literal;)*) => {
        $(pub const $name: &str = $code;)*
        /// Every rule, in evaluation order.
        pub const RULES: &[RuleInfo] = &[
            $(RuleInfo { code: $code, severity: Severity::$sev, rule: $cite, source_url: $url, applies_to: $applies, thresholds: &[$($t),*], description: $desc },)*
        ];
        fn cite(code: &str) -> (&'static str, Severity) {
            match code {
                $($code => ($cite, Severity::$sev),)*
                _ => ("", Severity::Info),
            }
        }
    };
}

rules! {
    CD_NOT_YET_VALID = "cd_not_yet_valid", Block, "MDR 2001 reg 16(1)(d)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/16", "Schedule 2-4 CD prescriptions", [],
        "A Schedule 2-4 CD may not be supplied before the appropriate date (issued_on).";
    CD_EXPIRED = "cd_expired", Block, "MDR 2001 reg 16(1)(e)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/16", "Schedule 2-4 CD prescriptions", [],
        "A Schedule 2-4 CD may not be supplied more than 28 days after the appropriate date (Europe/London calendar days).";
    POM_DATED_IN_FUTURE = "pom_dated_in_future", Block, "HMR 2012 reg 217",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/217", "prescriptions without a CD item", [],
        "A prescription for a non-CD medicine cannot be dated after today.";
    POM_EXPIRED = "pom_expired", Block, "HMR 2012 reg 217(5)",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/217", "prescriptions without a CD item", [],
        "A prescription-only medicine may not be supplied after the end of the six months beginning with the appropriate date: the last valid day is the day before the same date six months on (the month's last day where that month has no such date).";
    PRIVATE_CD_NOT_ON_FP10PCD = "private_cd_not_on_fp10pcd", Block, "MDR 2001 reg 15(1)(aa); HMR 2012 reg 219(4)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "private Schedule 2/3 prescriptions", [],
        "A private Schedule 2/3 prescription must be on the NHS-issued private CD form FP10PCD; an electronic private CD prescription is refused.";
    PRIVATE_CD_FORM_NOT_RECOGNISED = "private_cd_form_not_recognised", Block, "MDR 2001 reg 15(1)(aa)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "private Schedule 2/3 prescriptions", ["equivalent_private_cd_forms"],
        "The private CD form must be England's FP10PCD (or a variant) or an equivalent body's form on the configured list.";
    PRIVATE_CD_SERIAL_MISSING = "private_cd_serial_missing", Block, "MDR 2001 reg 15(1)(aa)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "private Schedule 2/3 prescriptions", [],
        "A private Schedule 2/3 prescription on FP10PCD must carry the form's serial number so the original can be matched.";
    PRIVATE_CD_PRESCRIBER_CODE_MISSING = "private_cd_prescriber_code_missing", Block, "MDR 2001 reg 15(1)(ab)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "private Schedule 2/3 prescriptions", [],
        "A private Schedule 2/3 prescription must show the prescriber's 6-digit private prescriber identification number.";
    PRESCRIBER_NOT_AUTHORISED_FOR_CD = "prescriber_not_authorised_for_cd", Block, "MDR 2001 regs 2, 15(1)(d); HMR 2012 reg 214",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/2", "controlled-drug items", [],
        "The prescriber's kind may not prescribe this controlled drug: no HCPC profession's list holds an ADHD stimulant, optometrists may prescribe no CD, dentists only for dental treatment.";
    CD_PRESCRIBER_KIND_UNKNOWN = "cd_prescriber_kind_unknown", Flag, "MDR 2001 reg 2; HMR 2012 reg 217(2)(b)",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/217", "controlled-drug prescriptions", [],
        "The prescription does not say what kind of prescriber signed (prescriber.kind), so whether they may prescribe a controlled drug cannot be checked.";
    SUPPLEMENTARY_PRESCRIBER = "supplementary_prescriber", Flag, "HMR 2012 reg 215; MDR 2001 reg 2",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/215", "every prescription", [],
        "A supplementary prescriber may prescribe only within a clinical management plan agreed with a doctor; the plan is not visible here.";
    SIGNATURE_MISSING = "signature_missing", Block, "HMR 2012 reg 219(2)",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/219", "electronic private prescriptions", [],
        "An electronic prescription must be signed with the prescriber's advanced electronic signature.";
    SIGNATURE_INVALID = "signature_invalid", Block, "HMR 2012 reg 219(2)",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/219", "electronic private prescriptions", [],
        "The advanced electronic signature does not verify against the submission as received (RFC 7515 JWS over its RFC 8785 canonical JSON).";
    SIGNATURE_KEY_UNKNOWN = "signature_key_unknown", Block, "HMR 2012 reg 219(2)",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/219", "electronic private prescriptions", [],
        "The signature names a key that is not registered for this clinic and prescriber.";
    SIGNATURE_KEY_REVOKED = "signature_key_revoked", Block, "HMR 2012 reg 219(2)",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/219", "electronic private prescriptions", [],
        "The signing key was revoked before the prescription was received.";
    SIGNATURE_VERIFIED = "signature_verified", Info, "HMR 2012 reg 219(2)",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/219", "electronic private prescriptions", [],
        "The prescriber's advanced electronic signature verified with a registered key.";
    CD_QUANTITY_WORDS_MISSING = "cd_quantity_words_missing", Flag, "MDR 2001 reg 15(1)(f), 16(1A)-(1B)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/16", "Schedule 2/3 items", [],
        "The quantity is in figures only: the pharmacist may add it in words (MDR 2001 reg 16(1A)), recording the amendment.";
    CD_QUANTITY_FIGURES_MISSING = "cd_quantity_figures_missing", Flag, "MDR 2001 reg 15(1)(f), 16(1A)-(1B)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/16", "Schedule 2/3 items", [],
        "The quantity is in words only: the pharmacist may add it in figures (MDR 2001 reg 16(1A)), recording the amendment.";
    CD_QUANTITY_WORDS_MISSPELT = "cd_quantity_words_misspelt", Flag, "MDR 2001 reg 16(1A)(a)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/16", "Schedule 2/3 items", [],
        "The quantity in words has a minor spelling mistake the pharmacist may amend, recording the amendment.";
    CD_QUANTITY_WORDS_MISMATCH = "cd_quantity_words_mismatch", Block, "MDR 2001 reg 15(1)(f)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "Schedule 2/3 items", [],
        "The quantity in words states another number than the figures: the prescriber must correct it.";
    CD_DOSE_NOT_EXPLICIT = "cd_dose_not_explicit", Block, "MDR 2001 reg 15(1)(f); BNF prescription requirements",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "Schedule 2/3 items", [],
        "The dose of a Schedule 2/3 item must be explicit: \"as directed\" and its equivalents (as instructed, as advised, MDU, UD) are refused; \"one as directed\" is acceptable.";
    CD_REPEAT_NOT_ALLOWED = "cd_repeat_not_allowed", Block, "NHS Digital Medicines guidance; HMR 2012 reg 217",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/217", "Schedule 2/3 items", [],
        "Schedule 2/3 items cannot be repeat-dispensed: neither repeats nor repeatable may be given.";
    PRESCRIBER_ADDRESS_NOT_UK = "prescriber_address_not_uk", Block, "MDR 2001 reg 16(1)(b)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/16", "Schedule 2/3 prescriptions", [],
        "The prescriber's address on a Schedule 2/3 prescription must be in the United Kingdom; Jersey, Guernsey and the Isle of Man are not (Interpretation Act 1978 Sch 1).";
    PATIENT_ADDRESS_PO_BOX = "patient_address_po_box", Block, "MDR 2001 reg 15(1)(e); BNF prescription requirements",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "Schedule 2/3 prescriptions", [],
        "The patient's address on a Schedule 2/3 prescription must not be a PO Box, however it is spelt.";
    CD_OVER_30_DAYS = "cd_over_30_days", Flag, "DHSC good practice; NICE NG46",
        "https://www.nice.org.uk/guidance/ng46", "Schedule 2-4 CD items", ["cd_max_days_supply"],
        "The days of treatment (quantity / (units x times a day), whatever is declared) exceed the configured maximum (default 30) for a CD: a pharmacist decides.";
    DAYS_SUPPLY_MISMATCH = "days_supply_mismatch", Flag, "DHSC good practice; NICE NG46",
        "https://www.nice.org.uk/guidance/ng46", "every item with a declared days_supply", [],
        "The declared days' supply disagrees with quantity / (units x times a day).";
    DIRECTIONS_CONTRADICT_DOSE = "directions_contradict_dose", Flag, "MDR 2001 reg 15(1)(f); pharmacist clinical check",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "every item", [],
        "The directions text states another number of units or times a day than the structured dose.";
    POM_REPEATS_UNSTATED = "pom_repeats_unstated", Info, "HMR 2012 reg 217(6)",
        "https://www.legislation.gov.uk/uksi/2012/1916/regulation/217", "repeatable items", [],
        "A repeatable prescription that does not say how often it may be dispensed may be dispensed at most twice.";
    DOSE_ABOVE_LICENSED_MAX = "dose_above_licensed_max", Flag, "Product SmPC; BNF",
        "https://www.medicines.org.uk/emc", "every item", [],
        "The daily dose (units x times per day x strength) is above the product's licensed maximum for the patient's age band.";
    AGE_OUTSIDE_LICENCE = "age_outside_licence", Flag, "Product SmPC",
        "https://www.medicines.org.uk/emc", "every item", [],
        "The patient's age is outside the product's licensed range (off-label use is lawful; a pharmacist confirms intent).";
    EARLY_SUPPLY = "early_supply", Flag, "GPhC guidance for pharmacies providing services at a distance (2019, updated 2025)",
        "https://www.pharmacyregulation.org/pharmacies/registration-and-renewal/providing-services-online", "every item", ["early_supply_elapsed_percent"],
        "An earlier supply of the same active ingredient has not mostly run out (less than the configured percentage, default 75 %, of its days elapsed).";
    DUPLICATE_PRESCRIPTION = "duplicate_prescription", Flag, "GPhC guidance for pharmacies providing services at a distance (2019, updated 2025)",
        "https://www.pharmacyregulation.org/pharmacies/registration-and-renewal/providing-services-online", "every item", [],
        "The same patient already has the same product for an overlapping period, from this or another clinic.";
    MULTIPLE_STIMULANTS = "multiple_stimulants", Flag, "NICE NG87; pharmacist clinical check",
        "https://www.nice.org.uk/guidance/ng87", "stimulant items", [],
        "Two different stimulants at once for one patient.";
    ADDRESS_MULTIPLE_PATIENTS = "address_multiple_patients", Flag, "GPhC guidance for pharmacies providing services at a distance: multiple orders to one address",
        "https://www.pharmacyregulation.org/pharmacies/registration-and-renewal/providing-services-online", "every prescription", ["address_max_patients"],
        "More than the configured number of different patients (default 2) use one delivery address (every line and the postcode, normalised).";
    IDENTITY_CONFLICT = "identity_conflict", Flag, "GPhC guidance for pharmacies providing services at a distance: identity checks",
        "https://www.pharmacyregulation.org/pharmacies/registration-and-renewal/providing-services-online", "every prescription", [],
        "One patient identity appears with conflicting details (an NHS number with another name or date of birth, or the reverse).";
    NHS_EXEMPTION_CONTRADICTS_AGE = "nhs_exemption_contradicts_age", Flag, "NHS (Charges for Drugs and Appliances) Regulations 2015",
        "https://www.legislation.gov.uk/uksi/2015/570/contents", "NHS prescriptions", [],
        "The NHS exemption claimed contradicts the patient's age (e.g. 0002 under 16 for a 17-year-old).";
    PAPER_ORIGINAL_REQUIRED = "paper_original_required", Info, "MDR 2001 reg 15(1)(a)",
        "https://www.legislation.gov.uk/uksi/2001/3998/regulation/15", "paper prescriptions", [],
        "The signed paper original must reach the pharmacy and be matched before anything is released.";
}

pub(crate) fn finding(code: &'static str, item: Option<usize>, message: String) -> Finding {
    let (rule, severity) = cite(code);
    Finding {
        code: code.to_string(),
        severity,
        item,
        message,
        rule: rule.to_string(),
        refs: Vec::new(),
    }
}

/// True when the instructions say no more than "as directed" in one of its forms
/// (see [`crate::directions::is_only_as_directed`]).
/// What rule `code` checks, in general terms (its `GET /v1/rules` description): what a masked
/// view shows instead of a finding's own message, which may name other records.
pub fn describe(code: &str) -> &'static str {
    RULES
        .iter()
        .find(|r| r.code == code)
        .map_or("", |r| r.description)
}

pub fn is_only_as_directed(instructions: &str) -> bool {
    crate::directions::is_only_as_directed(instructions)
}

/// What the intake found of the prescriber's advanced electronic signature (the keys live in
/// the store, so the use case checks them and the rules turn the outcome into findings).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SignatureCheck {
    /// The authority needs none (paper, EPS), or this is a dry run that checks no keys.
    #[default]
    NotRequired,
    Verified {
        kid: String,
        alg: String,
    },
    Missing,
    /// Well-formed JWS that does not verify, or names an algorithm that is not accepted.
    Invalid(String),
    KeyUnknown(String),
    KeyRevoked {
        kid: String,
        revoked_at: String,
    },
}

/// What every part of the evaluation needs to know about the prescription.
pub(crate) struct Facts<'a> {
    pub products: Vec<Option<&'a Product>>,
    pub any_sch23: bool,
    pub any_cd: bool,
    pub age_today: i32,
}

impl Facts<'_> {
    pub fn sch23(&self, i: usize) -> bool {
        self.products[i].is_some_and(|p| p.schedule.is_sch2_or_3())
    }
}

/// Evaluate every rule against a prescription that passed the contract. Findings come in rule
/// order, then item order.
pub fn evaluate(rx: &Prescription, ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let products: Vec<Option<&Product>> = rx
        .items
        .iter()
        .map(|i| ctx.formulary.get(&i.product_code))
        .collect();
    let facts = Facts {
        any_sch23: products
            .iter()
            .any(|p| p.is_some_and(|p| p.schedule.is_sch2_or_3())),
        any_cd: products
            .iter()
            .any(|p| p.is_some_and(|p| p.schedule.has_28_day_validity())),
        age_today: age_on(rx.patient.date_of_birth, ctx.today),
        products,
    };
    validity(rx, ctx, &facts, &mut out);
    private_cd_form(rx, ctx, &facts, &mut out);
    prescriber::check(rx, &facts, &mut out);
    prescriber::signature(rx, ctx, &mut out);
    items::legal(rx, &facts, &mut out);
    if !rx.prescriber.address.is_uk() && facts.any_sch23 {
        let place = rx
            .prescriber
            .address
            .crown_dependency()
            .map(|d| format!("{d}, a Crown Dependency outside the United Kingdom"))
            .unwrap_or_else(|| format!("country {}", rx.prescriber.address.country));
        out.push(finding(
            PRESCRIBER_ADDRESS_NOT_UK,
            None,
            format!("The prescriber's address is in {place}; on a Schedule 2/3 prescription it must be in the United Kingdom."),
        ));
    }
    if facts.any_sch23 && rx.patient.address.is_po_box() {
        out.push(finding(PATIENT_ADDRESS_PO_BOX, None,
            "The patient's address is a PO Box, which is not acceptable on a controlled-drug prescription.".into()));
    }
    items::clinical(rx, ctx, &facts, &mut out);
    history::check(rx, ctx, &facts, &mut out);

    let at_address = ctx.identity.other_patients_at_address + 1;
    if at_address > ctx.thresholds.address_max_patients {
        out.push(finding(
            ADDRESS_MULTIPLE_PATIENTS,
            None,
            format!(
                "{}{} different patients use this delivery address; the threshold is {}.",
                if ctx.identity.other_patients_at_address >= MAX_COUNTED_AT_ADDRESS {
                    "At least "
                } else {
                    ""
                },
                at_address,
                ctx.thresholds.address_max_patients
            ),
        ));
    }
    if ctx.identity.nhs_number_with_other_details {
        out.push(finding(
            IDENTITY_CONFLICT,
            None,
            "This NHS number was used before with a different name or date of birth.".into(),
        ));
    }
    if ctx.identity.details_with_other_nhs_number {
        out.push(finding(
            IDENTITY_CONFLICT,
            None,
            "This name and date of birth were used before with a different NHS number.".into(),
        ));
    }

    // NHS exemption against age (on the day of checking, as it would be dispensed).
    if let Some(nhs) = &rx.nhs
        && let Some(claim) = nhs.exemption.row().and_then(|r| r.age_claim)
        && !claim.holds_at(facts.age_today)
    {
        out.push(finding(
            NHS_EXEMPTION_CONTRADICTS_AGE,
            None,
            format!(
                "Exemption {} claims the patient is {}, but the date of birth makes them {}.",
                nhs.exemption.as_code(),
                claim.describe(),
                facts.age_today
            ),
        ));
    }

    if rx.authority.kind.is_paper() {
        // The serial is not repeated here: the pharmacist keys in the serial on the original
        // they hold, and the match is made blind.
        out.push(finding(
            PAPER_ORIGINAL_REQUIRED,
            None,
            format!(
                "The signed paper original ({}) must reach the pharmacy and be matched before release.",
                rx.authority.kind.as_str()
            ),
        ));
    }
    out
}

/// Validity window (MDR 2001 reg 16(1)(d)-(e) for CDs; HMR 2012 reg 217(5) for other POMs).
fn validity(rx: &Prescription, ctx: &Context<'_>, facts: &Facts<'_>, out: &mut Vec<Finding>) {
    let days_since_issue = days_between(rx.issued_on, ctx.today);
    if facts.any_cd {
        if days_since_issue < 0 {
            out.push(finding(CD_NOT_YET_VALID, None, format!(
                "The appropriate date {} is {} day(s) in the future; a controlled drug cannot be supplied before it.",
                rx.issued_on, -days_since_issue)));
        } else if days_since_issue > 28 {
            out.push(finding(CD_EXPIRED, None, format!(
                "Issued on {}, {} days ago: a controlled-drug prescription is valid for 28 days from the appropriate date (last valid day {}).",
                rx.issued_on, days_since_issue, rx.issued_on.saturating_add(jiff::Span::new().days(28)))));
        }
    } else if days_since_issue < 0 {
        out.push(finding(
            POM_DATED_IN_FUTURE,
            None,
            format!(
                "The prescription is dated {}, which is after today ({}).",
                rx.issued_on, ctx.today
            ),
        ));
    } else {
        let last_valid = pom_last_valid_day(rx.issued_on);
        if ctx.today > last_valid {
            out.push(finding(POM_EXPIRED, None, format!(
                "Issued on {}: a prescription-only medicine may be supplied until the end of the six months beginning with that date (last valid day {}).",
                rx.issued_on, last_valid)));
        }
    }
}

/// The last day of "the period of six months beginning with the appropriate date" (HMR 2012
/// reg 217(5)): the day before the same date six months on, or — where that month has no such
/// date — that month's last day (1 June → 30 November; 31 May → 30 November; 31 August →
/// 28/29 February; 29 February → 28 August).
pub fn pom_last_valid_day(issued: Date) -> Date {
    let months = i32::from(issued.month()) - 1 + 6;
    let year = issued.year() + (months / 12) as i16;
    let month = (months % 12 + 1) as i8;
    let first = Date::new(year, month, 1).expect("a valid month");
    if issued.day() <= first.days_in_month() {
        Date::new(year, month, issued.day())
            .expect("a day within the month")
            .yesterday()
            .expect("after 0001-01-01")
    } else {
        first.last_of_month()
    }
}

/// Private Sch2/3 form and prescriber code (MDR 2001 reg 15(1)(aa)-(ab)).
fn private_cd_form(
    rx: &Prescription,
    ctx: &Context<'_>,
    facts: &Facts<'_>,
    out: &mut Vec<Finding>,
) {
    if rx.kind != PrescriptionType::Private || !facts.any_sch23 {
        return;
    }
    if rx.authority.kind != AuthorityKind::PaperFp10pcd {
        out.push(finding(PRIVATE_CD_NOT_ON_FP10PCD, None, format!(
            "The authority is {} but a private Schedule 2/3 prescription must be the signed paper FP10PCD; electronic private CD prescriptions are not lawful authority to supply.",
            rx.authority.kind.as_str())));
    } else {
        if let Some(form) = rx.authority.form.as_deref()
            && !is_fp10pcd(form)
            && !ctx
                .thresholds
                .equivalent_private_cd_forms
                .iter()
                .any(|f| f.eq_ignore_ascii_case(form))
        {
            out.push(finding(PRIVATE_CD_FORM_NOT_RECOGNISED, None, format!(
                "The private CD form \"{form}\" is neither FP10PCD nor on the configured list of equivalent bodies' forms (compliance.equivalent_private_cd_forms)."
            )));
        }
        if rx
            .authority
            .serial_number
            .as_deref()
            .is_none_or(|s| s.trim().is_empty())
        {
            out.push(finding(
                PRIVATE_CD_SERIAL_MISSING,
                None,
                "The FP10PCD serial number is missing, so the paper original cannot be matched."
                    .into(),
            ));
        }
    }
    if rx.prescriber.private_prescriber_code.is_none() {
        out.push(finding(
            PRIVATE_CD_PRESCRIBER_CODE_MISSING,
            None,
            "The prescriber's 6-digit private prescriber identification number is missing.".into(),
        ));
    }
}

/// England's private CD form and its variants (FP10PCDSS non-personalised, FP10PCDNC
/// personalised).
fn is_fp10pcd(form: &str) -> bool {
    let f: String = form
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    matches!(f.as_str(), "FP10PCD" | "FP10PCDSS" | "FP10PCDNC")
}

/// The status a prescription takes after intake: `rejected` when any finding blocks,
/// `awaiting_original` for paper authorities, otherwise `awaiting_clinical_check`.
pub fn intake_status(rx: &Prescription, findings: &[Finding]) -> Status {
    if findings.iter().any(|f| f.severity == Severity::Block) {
        Status::Rejected
    } else if rx.authority.kind.is_paper() {
        Status::AwaitingOriginal
    } else {
        Status::AwaitingClinicalCheck
    }
}

/// The rule list as a Markdown table (README and `rxbridge rules --markdown` print this).
pub fn rules_markdown(t: &Thresholds) -> String {
    let mut out = String::from(
        "| code | severity | applies to | source | what it checks |\n|---|---|---|---|---|\n",
    );
    for r in RULES {
        out.push_str(&format!(
            "| `{}` | {} | {} | [{}]({}) | {} |\n",
            r.code,
            r.severity.as_str(),
            r.applies_to,
            r.rule,
            r.source_url,
            r.description
        ));
    }
    out.push_str(&format!(
        "\nConfigurable thresholds (defaults): `cd_max_days_supply` = {}, `early_supply_elapsed_percent` = {}, `address_max_patients` = {}, `equivalent_private_cd_forms` = {:?}.\n",
        t.cd_max_days_supply, t.early_supply_elapsed_percent, t.address_max_patients, t.equivalent_private_cd_forms
    ));
    out
}

pub(crate) fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}
pub(crate) fn basis_text(b: DoseBasis) -> String {
    match b {
        DoseBasis::Band { min_age, max_age } => format!("ages {min_age}-{max_age}"),
        DoseBasis::Child => "children and adolescents".into(),
        DoseBasis::Adult => "adults".into(),
    }
}
pub(crate) fn age_range(min: Option<u32>, max: Option<u32>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        (Some(a), None) => format!("{a} and over"),
        (None, Some(b)) => format!("up to {b}"),
        (None, None) => "all ages".into(),
    }
}

mod history;
mod items;
mod prescriber;
#[cfg(test)]
pub(crate) mod tests;
