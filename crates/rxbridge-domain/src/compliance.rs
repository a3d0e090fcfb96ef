//! UK compliance rules: controlled-drug law (block) and clinical / distance-selling safeguards
//! (flag for a pharmacist). Each rule has a stable code, a severity, a citation and a
//! plain-English message carrying the numbers that triggered it. Source of truth:
//! `uk-rules.md` §0 and the sections it points to.
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
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            cd_max_days_supply: 30,
            early_supply_elapsed_percent: 75,
            address_max_patients: 2,
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
}

/// A rule as listed by `GET /v1/rules`.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub code: &'static str,
    pub severity: Severity,
    pub rule: &'static str,
    pub description: &'static str,
}

macro_rules! rules {
    ($($name:ident = $code:literal, $sev:ident, $cite:literal, $desc:literal;)*) => {
        $(pub const $name: &str = $code;)*
        /// Every rule, in evaluation order.
        pub const RULES: &[RuleInfo] = &[
            $(RuleInfo { code: $code, severity: Severity::$sev, rule: $cite, description: $desc },)*
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
        "A Schedule 2-4 CD may not be supplied before the appropriate date (issued_on).";
    CD_EXPIRED = "cd_expired", Block, "MDR 2001 reg 16(1)(e)",
        "A Schedule 2-4 CD may not be supplied more than 28 days after the appropriate date (Europe/London calendar days).";
    POM_DATED_IN_FUTURE = "pom_dated_in_future", Block, "HMR 2012 reg 217",
        "A prescription for a non-CD medicine cannot be dated after today.";
    POM_EXPIRED = "pom_expired", Block, "HMR 2012 reg 217 (Condition D)",
        "A non-CD prescription-only medicine may not be supplied more than 6 months after the appropriate date.";
    PRIVATE_CD_NOT_ON_FP10PCD = "private_cd_not_on_fp10pcd", Block, "MDR 2001 reg 15(2)(aa); HMR 2012 reg 219(4)",
        "A private Schedule 2/3 prescription must be on the NHS-issued private CD form FP10PCD; an electronic private CD prescription is refused.";
    PRIVATE_CD_SERIAL_MISSING = "private_cd_serial_missing", Block, "MDR 2001 reg 15(2)(aa)",
        "A private Schedule 2/3 prescription on FP10PCD must carry the form's serial number so the original can be matched.";
    PRIVATE_CD_PRESCRIBER_CODE_MISSING = "private_cd_prescriber_code_missing", Block, "MDR 2001 reg 15(2)(ab)",
        "A private Schedule 2/3 prescription must show the prescriber's 6-digit private prescriber identification number.";
    CD_QUANTITY_WORDS_MISSING = "cd_quantity_words_missing", Block, "MDR 2001 reg 15(1)(f)",
        "A Schedule 2/3 item must state the total quantity in both words and figures.";
    CD_QUANTITY_WORDS_MISMATCH = "cd_quantity_words_mismatch", Block, "MDR 2001 reg 15(1)(f)",
        "The quantity in words must state the same number as the figures.";
    CD_DOSE_NOT_EXPLICIT = "cd_dose_not_explicit", Block, "MDR 2001 reg 15(1)(f); BNF prescription requirements",
        "The dose of a Schedule 2/3 item must be explicit: \"as directed\" alone is refused (\"one as directed\" is acceptable).";
    CD_REPEAT_NOT_ALLOWED = "cd_repeat_not_allowed", Block, "NHS Digital Medicines guidance; HMR 2012 reg 217",
        "Schedule 2/3 items cannot be repeat-dispensed or issued in instalments through this service.";
    PRESCRIBER_ADDRESS_NOT_UK = "prescriber_address_not_uk", Block, "MDR 2001 reg 16(1)(b)",
        "The prescriber's address must be in the United Kingdom.";
    PATIENT_ADDRESS_PO_BOX = "patient_address_po_box", Block, "MDR 2001 reg 15(1)(e); BNF prescription requirements",
        "The patient's address on a Schedule 2/3 prescription must not be a PO Box.";
    CD_OVER_30_DAYS = "cd_over_30_days", Flag, "DHSC good practice guidance (CPE: CD prescription validity); NICE NG46",
        "A CD quantity above the configured days' treatment (default 30) needs a pharmacist's decision.";
    DOSE_ABOVE_LICENSED_MAX = "dose_above_licensed_max", Flag, "Product SmPC / BNF (uk-rules.md §1)",
        "The daily dose (units x times per day x strength) is above the product's licensed maximum for the patient's age band.";
    AGE_OUTSIDE_LICENCE = "age_outside_licence", Flag, "Product SmPC (uk-rules.md §1)",
        "The patient's age is outside the product's licensed range (off-label use is lawful; a pharmacist confirms intent).";
    EARLY_SUPPLY = "early_supply", Flag, "GPhC distance-selling guidance (2019, upd. 2025); pharmacist clinical check",
        "An earlier supply of the same active ingredient has not mostly run out (less than the configured percentage, default 75 %, of its days elapsed).";
    DUPLICATE_PRESCRIPTION = "duplicate_prescription", Flag, "GPhC distance-selling guidance (2019, upd. 2025)",
        "The same patient already has the same product for an overlapping period, from this or another clinic.";
    MULTIPLE_STIMULANTS = "multiple_stimulants", Flag, "NICE NG87; pharmacist clinical check",
        "Two different stimulants at once for one patient.";
    ADDRESS_MULTIPLE_PATIENTS = "address_multiple_patients", Flag, "GPhC distance-selling guidance: multiple orders to one address",
        "More than the configured number of different patients (default 2) use one delivery address.";
    IDENTITY_CONFLICT = "identity_conflict", Flag, "GPhC distance-selling guidance: identity checks",
        "One patient identity appears with conflicting details (an NHS number with another name or date of birth, or the reverse).";
    NHS_EXEMPTION_CONTRADICTS_AGE = "nhs_exemption_contradicts_age", Flag, "NHS (Charges for Drugs and Appliances) Regulations 2015; NHSBSA exemptions",
        "The NHS exemption claimed contradicts the patient's age (e.g. 0002 under 16 for a 17-year-old).";
    PAPER_ORIGINAL_REQUIRED = "paper_original_required", Info, "MDR 2001 reg 15; uk-rules.md §0",
        "The signed paper original must reach the pharmacy and be matched before anything is released.";
}

fn finding(code: &'static str, item: Option<usize>, message: String) -> Finding {
    let (rule, severity) = cite(code);
    Finding {
        code: code.to_string(),
        severity,
        item,
        message,
        rule: rule.to_string(),
    }
}

/// True when the instructions say no more than "as directed" ("use as directed", "take as
/// directed", "as dir"): the dose is not explicit.
pub fn is_only_as_directed(instructions: &str) -> bool {
    let words: Vec<String> = instructions
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let filler = [
        "use",
        "take",
        "to",
        "be",
        "taken",
        "used",
        "give",
        "given",
        "as",
        "directed",
        "dir",
        "asd",
        "per",
        "instructions",
        "prescriber",
        "doctor",
    ];
    !words.is_empty()
        && words.iter().all(|w| filler.contains(&w.as_str()))
        && (words
            .iter()
            .any(|w| w == "directed" || w == "dir" || w == "asd")
            || words.iter().any(|w| w == "instructions"))
}

/// Daily mg of one ingredient across items, the highest applicable maximum, and the item count.
type IngredientTotal = (f64, Option<(f64, DoseBasis)>, usize);

/// Evaluate every rule against a prescription that passed the contract. Findings come in rule
/// order, then item order.
pub fn evaluate(rx: &Prescription, ctx: &Context<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let products: Vec<Option<&Product>> = rx
        .items
        .iter()
        .map(|i| ctx.formulary.get(&i.product_code))
        .collect();
    let sch23 = |p: &Option<&Product>| p.is_some_and(|p| p.schedule.is_sch2_or_3());
    let any_sch23 = products.iter().any(sch23);
    let any_cd = products
        .iter()
        .any(|p| p.is_some_and(|p| p.schedule.has_28_day_validity()));
    let age_today = age_on(rx.patient.date_of_birth, ctx.today);
    let days_since_issue = days_between(rx.issued_on, ctx.today);

    // Validity window (uk-rules.md §2).
    if any_cd {
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
        let last_valid = rx.issued_on.saturating_add(jiff::Span::new().months(6));
        if ctx.today > last_valid {
            out.push(finding(POM_EXPIRED, None, format!(
                "Issued on {}: a prescription-only medicine is valid for 6 months (last valid day {}).",
                rx.issued_on, last_valid)));
        }
    }

    // Private Sch2/3 form and prescriber code (uk-rules.md §2 "Private CD prescriptions").
    if rx.kind == PrescriptionType::Private && any_sch23 {
        if rx.authority.kind != AuthorityKind::PaperFp10pcd {
            out.push(finding(PRIVATE_CD_NOT_ON_FP10PCD, None, format!(
                "The authority is {} but a private Schedule 2/3 prescription must be the signed paper FP10PCD; electronic private CD prescriptions are not lawful authority to supply.",
                rx.authority.kind.as_str())));
        } else if rx
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
        if rx.prescriber.private_prescriber_code.is_none() {
            out.push(finding(
                PRIVATE_CD_PRESCRIBER_CODE_MISSING,
                None,
                "The prescriber's 6-digit private prescriber identification number is missing."
                    .into(),
            ));
        }
    }

    // Per-item legal requirements for Sch2/3.
    for (i, (item, p)) in rx.items.iter().zip(&products).enumerate() {
        if !sch23(p) {
            continue;
        }
        match (item.quantity_in_words.as_deref(), item.quantity_in_words_value) {
            (None, _) => out.push(finding(CD_QUANTITY_WORDS_MISSING, Some(i), format!(
                "Quantity {} is given in figures only; a Schedule 2 item needs it in words too (\"{}\").",
                item.quantity.get(), crate::quantity::to_words(item.quantity.get())))),
            (Some(w), Some(v)) if v != item.quantity.get() => out.push(finding(CD_QUANTITY_WORDS_MISMATCH, Some(i), format!(
                "The quantity in words \"{w}\" states {v} but the figures state {}.", item.quantity.get()))),
            _ => {}
        }
        if is_only_as_directed(&item.instructions) {
            out.push(finding(CD_DOSE_NOT_EXPLICIT, Some(i), format!(
                "The instructions \"{}\" do not state a dose; write e.g. \"Take ONE capsule each morning\".",
                item.instructions)));
        }
        if item.repeats > 0 {
            out.push(finding(
                CD_REPEAT_NOT_ALLOWED,
                Some(i),
                format!(
                    "{} repeat(s) requested; Schedule 2/3 items cannot be repeat-dispensed.",
                    item.repeats
                ),
            ));
        }
    }

    if !rx.prescriber.address.is_uk() {
        out.push(finding(
            PRESCRIBER_ADDRESS_NOT_UK,
            None,
            format!(
                "The prescriber's address is in {} ; it must be in the United Kingdom.",
                rx.prescriber.address.country
            ),
        ));
    }
    if any_sch23 && rx.patient.address.is_po_box() {
        out.push(finding(PATIENT_ADDRESS_PO_BOX, None,
            "The patient's address is a PO Box, which is not acceptable on a controlled-drug prescription.".into()));
    }

    // Clinical checks (flag).
    for (i, (item, p)) in rx.items.iter().zip(&products).enumerate() {
        let Some(p) = p else { continue };
        if p.schedule.has_28_day_validity() && item.days_supply > ctx.thresholds.cd_max_days_supply
        {
            out.push(finding(
                CD_OVER_30_DAYS,
                Some(i),
                format!(
                    "{} days' supply of a controlled drug; good practice is at most {} days.",
                    item.days_supply, ctx.thresholds.cd_max_days_supply
                ),
            ));
        }
        let daily = item.dose.units_per_day() * p.strength_mg;
        if let Some((max, basis)) = p.max_daily_dose_for_age(age_today)
            && daily > max + 1e-9
        {
            out.push(finding(DOSE_ABOVE_LICENSED_MAX, Some(i), format!(
                "{} x {} a day x {} mg = {} mg a day, above the licensed maximum of {} mg for {} (patient aged {}).",
                fmt_num(item.dose.units), item.dose.times_per_day, fmt_num(p.strength_mg), fmt_num(daily), fmt_num(max),
                basis_text(basis), age_today)));
        }
        let below = p.licensed_min_age.is_some_and(|m| age_today < m as i32);
        let above = p.licensed_max_age.is_some_and(|m| age_today > m as i32);
        if below || above {
            out.push(finding(
                AGE_OUTSIDE_LICENCE,
                Some(i),
                format!(
                    "The patient is {} years old; {} is licensed for ages {}.",
                    age_today,
                    p.name,
                    age_range(p.licensed_min_age, p.licensed_max_age)
                ),
            ));
        }
    }
    // Same ingredient on several items: check the combined daily dose too.
    let mut by_ingredient: BTreeMap<&str, IngredientTotal> = BTreeMap::new();
    for (item, p) in rx.items.iter().zip(&products) {
        let Some(p) = p else { continue };
        let e = by_ingredient
            .entry(&p.active_ingredient)
            .or_insert((0.0, None, 0));
        e.0 += item.dose.units_per_day() * p.strength_mg;
        e.2 += 1;
        let m = p.max_daily_dose_for_age(age_today);
        e.1 = match (e.1, m) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
    }
    for (ing, (total, max, n)) in &by_ingredient {
        if *n > 1
            && let Some((max, basis)) = max
            && *total > max + 1e-9
        {
            out.push(finding(DOSE_ABOVE_LICENSED_MAX, None, format!(
                "The items together give {} mg of {ing} a day, above the licensed maximum of {} mg for {}.",
                fmt_num(*total), fmt_num(*max), basis_text(*basis))));
        }
    }

    // History checks.
    let stimulants_here: BTreeSet<&str> = products
        .iter()
        .flatten()
        .filter(|p| p.is_stimulant())
        .map(|p| p.active_ingredient.as_str())
        .collect();
    let issued_day = epoch_day(rx.issued_on);
    // Per history entry once: its start and end as day numbers (cheap integer comparisons).
    let running: Vec<(&HistoryEntry, i64, i64)> = ctx
        .history
        .iter()
        .filter(|h| h.counts())
        .map(|h| {
            let start = epoch_day(h.start);
            (h, start, start + i64::from(h.days_supply))
        })
        .collect();
    // History is newest first: report the newest conflicting prescription per rule and item,
    // and how many more there are, so a long history gives one readable finding, not hundreds.
    for (i, (item, p)) in rx.items.iter().zip(&products).enumerate() {
        let Some(p) = p else { continue };
        let (mut duplicate, mut early): (Option<Finding>, Option<Finding>) = (None, None);
        let (mut more_duplicates, mut more_early) = (0usize, 0usize);
        for &(h, start, end) in &running {
            if h.active_ingredient != p.active_ingredient || h.days_supply == 0 {
                continue;
            }
            let elapsed = issued_day - start;
            // Periods overlap, and less than the threshold of the earlier supply has elapsed
            // (a new course when the last is nearly used up is the normal monthly repeat).
            let overlaps = issued_day < end && elapsed > -i64::from(item.days_supply);
            if !overlaps {
                continue;
            }
            let pct = elapsed * 100 / i64::from(h.days_supply);
            if pct >= i64::from(ctx.thresholds.early_supply_elapsed_percent) {
                continue;
            }
            let other = if h.same_clinic {
                "this clinic"
            } else {
                "another clinic"
            };
            if h.product_code == item.product_code {
                if duplicate.is_some() {
                    more_duplicates += 1;
                    continue;
                }
                let ends = h
                    .start
                    .saturating_add(jiff::Span::new().days(i64::from(h.days_supply)));
                duplicate = Some(finding(
                    DUPLICATE_PRESCRIPTION,
                    Some(i),
                    format!(
                        "Prescription {} from {other} already covers {} from {} for {} days (until {}); this one starts {}.",
                        h.prescription_id, p.name, h.start, h.days_supply, ends, rx.issued_on
                    ),
                ));
            } else {
                if early.is_some() {
                    more_early += 1;
                    continue;
                }
                early = Some(finding(
                    EARLY_SUPPLY,
                    Some(i),
                    format!(
                        "An earlier supply of {} (prescription {} from {other}, {} days from {}) is only {}% elapsed ({} of {} days) on {}; the threshold is {}%.",
                        h.active_ingredient,
                        h.prescription_id,
                        h.days_supply,
                        h.start,
                        pct.max(0),
                        elapsed.max(0),
                        h.days_supply,
                        rx.issued_on,
                        ctx.thresholds.early_supply_elapsed_percent
                    ),
                ));
            }
        }
        for (f, more) in [(duplicate, more_duplicates), (early, more_early)] {
            if let Some(mut f) = f {
                if more > 0 {
                    f.message.push_str(&format!(
                        " {more} more earlier prescription(s) overlap as well."
                    ));
                }
                out.push(f);
            }
        }
    }
    let mut stimulants: BTreeSet<&str> = stimulants_here.clone();
    if !stimulants_here.is_empty() {
        for &(h, start, end) in &running {
            if start <= issued_day
                && issued_day < end
                && !stimulants.contains(h.active_ingredient.as_str())
                && ctx
                    .formulary
                    .get(&h.product_code)
                    .is_some_and(Product::is_stimulant)
            {
                stimulants.insert(h.active_ingredient.as_str());
            }
        }
    }
    if stimulants.len() > 1 {
        out.push(finding(
            MULTIPLE_STIMULANTS,
            None,
            format!(
                "The patient would have {} stimulants at once: {}.",
                stimulants.len(),
                stimulants.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
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
    if let Some(nhs) = &rx.nhs {
        let contradiction = match nhs.exemption.0 {
            2 => (age_today >= 16).then_some("under 16"),
            3 => {
                (!(16..=18).contains(&age_today)).then_some("aged 16 to 18 in full-time education")
            }
            4 => (age_today < 60).then_some("aged 60 or over"),
            _ => None,
        };
        if let Some(claim) = contradiction {
            out.push(finding(NHS_EXEMPTION_CONTRADICTS_AGE, None, format!(
                "Exemption {} claims the patient is {claim}, but the date of birth makes them {}.",
                nhs.exemption.as_code(), age_today)));
        }
    }

    if rx.authority.kind.is_paper() {
        out.push(finding(PAPER_ORIGINAL_REQUIRED, None, format!(
            "The signed paper original ({}{}) must reach the pharmacy and be matched before release.",
            rx.authority.kind.as_str(),
            rx.authority.serial_number.as_deref().map(|s| format!(", serial {s}")).unwrap_or_default())));
    }
    out
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
    let mut out =
        String::from("| code | severity | source | what it checks |\n|---|---|---|---|\n");
    for r in RULES {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            r.code,
            r.severity.as_str(),
            r.rule,
            r.description
        ));
    }
    out.push_str(&format!(
        "\nConfigurable thresholds (defaults): `cd_max_days_supply` = {}, `early_supply_elapsed_percent` = {}, `address_max_patients` = {}.\n",
        t.cd_max_days_supply, t.early_supply_elapsed_percent, t.address_max_patients
    ));
    out
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x}")
    }
}
fn basis_text(b: DoseBasis) -> String {
    match b {
        DoseBasis::Band { min_age, max_age } => format!("ages {min_age}-{max_age}"),
        DoseBasis::Child => "children and adolescents".into(),
        DoseBasis::Adult => "adults".into(),
    }
}
fn age_range(min: Option<u32>, max: Option<u32>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("{a} to {b}"),
        (Some(a), None) => format!("{a} and over"),
        (None, Some(b)) => format!("up to {b}"),
        (None, None) => "all ages".into(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
