//! What the clinical check screen shows beyond the stored record, in the order a pharmacist
//! reads a prescription: the patient's age, the prescriber, the authority (its serial hidden
//! until the paper original is matched), each item as the formulary knows it, the records the
//! findings point at, and the patient's supply history across clinics. Built by
//! `StaffViews::prescription`, which audits the read; pure apart from the store look-ups here.

use crate::crypto::PatientVault;
use crate::events::EventRecord;
use crate::ports::{Mode, PrescriptionRecord, StaffLookup, Store, StoreError};
use jiff::civil::Date;
use rxbridge_domain::compliance::{
    Finding, IDENTITY_CONFLICT, SIGNATURE_INVALID, SIGNATURE_KEY_REVOKED, SIGNATURE_KEY_UNKNOWN,
    SIGNATURE_MISSING, SIGNATURE_VERIFIED,
};
use rxbridge_domain::formulary::{DoseBasis, Formulary};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::{AuthorityKind, Item, Prescription};
use std::collections::BTreeMap;

/// Earlier supplies shown on the page, newest first.
pub const HISTORY_SHOWN: u32 = 20;

/// The prescriber as the law asks the pharmacist to check them (MDR 2001 reg 15).
#[derive(Debug, Clone, PartialEq)]
pub struct PrescriberShown {
    pub name: String,
    /// "a doctor"; `None` when neither stated nor implied by the registration.
    pub kind: Option<&'static str>,
    /// "GMC 7012345".
    pub registration: String,
    pub private_prescriber_code: Option<String>,
    pub address: String,
}

/// The serial on a paper form, as the page may show it.
#[derive(Debug, Clone, PartialEq)]
pub enum SerialShown {
    /// The authority is not paper, or carries no serial.
    None,
    /// Not shown until the original is matched: the pharmacist keys in what they hold.
    Hidden,
    /// Matched against the original; the serial as the clinic sent it.
    Matched(String),
}

/// The authority to supply.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorityShown {
    /// "Private CD form FP10PCD (paper)", "NHS EPS".
    pub form: String,
    pub serial: SerialShown,
    /// The EPS prescription id.
    pub eps_id: Option<String>,
    /// For an electronic private prescription: the signature check's outcome in words.
    pub signature: Option<String>,
    /// The stored scan of the matched (or offered) original, a document id; `None` when the
    /// patient is masked.
    pub scan: Option<String>,
}

/// The daily dose against the licensed maximum for the patient's age.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyDose {
    pub mg: f64,
    /// The licensed maximum and whose it is ("adult", "child", "age 6–12"); `None` where the
    /// source gives none.
    pub max: Option<(f64, String)>,
}

impl DailyDose {
    pub fn over(&self) -> bool {
        self.max.as_ref().is_some_and(|(m, _)| self.mg > *m)
    }
}

/// One item as the pharmacist checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemShown {
    pub product_code: String,
    /// The formulary's name ("Concerta XL 36 mg prolonged-release tablets"), or the code when
    /// the formulary does not know it.
    pub product: String,
    pub form: Option<String>,
    pub strength: Option<String>,
    pub schedule: Option<&'static str>,
    pub quantity: u32,
    /// False when the prescription gave the quantity in words only.
    pub figures_given: bool,
    /// The words as the prescriber wrote them.
    pub words_written: Option<String>,
    /// The quantity in words as rxbridge reads the figures.
    pub words_of_figures: String,
    /// "1 tablet 2 times a day".
    pub dose: String,
    pub directions: String,
    pub days_computed: u32,
    pub days_declared: Option<u32>,
    pub daily_dose: Option<DailyDose>,
}

/// A record a finding points at.
#[derive(Debug, Clone, PartialEq)]
pub struct Related {
    pub id: String,
    pub clinic_reference: String,
    /// Why it is linked ("the earlier supply", "the conflicting record").
    pub why: &'static str,
}

/// One earlier supply of the patient, from any clinic.
#[derive(Debug, Clone, PartialEq)]
pub struct SupplyLine {
    pub prescription_id: String,
    pub clinic_reference: String,
    pub start: Date,
    pub product: String,
    pub quantity: Option<u32>,
    pub days: u32,
    pub status: Status,
    pub clinic: String,
    pub same_clinic: bool,
}

/// Everything the clinical check screen shows that the stored record does not.
#[derive(Debug, Clone, PartialEq)]
pub struct ClinicalView {
    /// Whole years today (London); `None` when the patient is masked.
    pub age: Option<i32>,
    pub prescriber: PrescriberShown,
    pub authority: AuthorityShown,
    pub items: Vec<ItemShown>,
    /// Per finding (same order as the record's), the records it points at.
    pub related: Vec<Vec<Related>>,
    /// Earlier supplies across clinics, newest first; empty when the patient is masked.
    pub history: Vec<SupplyLine>,
}

/// The prescriber, authority and items of `rx` (no look-ups).
pub(crate) fn layout(
    rec: &PrescriptionRecord,
    rx: &Prescription,
    timeline: &[EventRecord],
    today: Date,
    masked: bool,
) -> ClinicalView {
    let age = rxbridge_domain::dates::age_on(rx.patient.date_of_birth, today);
    ClinicalView {
        age: (!masked).then_some(age),
        prescriber: prescriber(rx),
        authority: {
            let mut a = authority(rec, rx, timeline);
            if masked {
                a.scan = None; // the scan is the whole prescription
            }
            a
        },
        items: rx.items.iter().map(|i| item(i, age)).collect(),
        related: vec![Vec::new(); rec.findings.len()],
        history: Vec::new(),
    }
}

fn prescriber(rx: &Prescription) -> PrescriberShown {
    let p = &rx.prescriber;
    PrescriberShown {
        name: format!("{} {}", p.given_name, p.family_name),
        kind: p.kind().map(|k| k.describe()),
        registration: format!(
            "{} {}",
            p.registration.body().to_uppercase(),
            p.registration.number()
        ),
        private_prescriber_code: p
            .private_prescriber_code
            .as_ref()
            .map(|c| c.as_str().to_string()),
        address: address_line(&p.address),
    }
}

/// An address on one line.
pub fn address_line(a: &rxbridge_domain::contact::Address) -> String {
    let mut parts: Vec<&str> = a.lines.iter().map(String::as_str).collect();
    parts.push(&a.town);
    parts.push(&a.postcode);
    parts.join(", ")
}

fn authority(
    rec: &PrescriptionRecord,
    rx: &Prescription,
    timeline: &[EventRecord],
) -> AuthorityShown {
    let a = &rx.authority;
    let form = match a.kind {
        AuthorityKind::PaperFp10pcd => format!(
            "Private CD form {} (paper)",
            a.form.as_deref().unwrap_or("FP10PCD")
        ),
        AuthorityKind::PaperFp10 => "NHS FP10 (paper)".to_string(),
        AuthorityKind::Eps => "NHS Electronic Prescription Service".to_string(),
        AuthorityKind::ElectronicPrivate => "Private electronic prescription".to_string(),
    };
    let matched = timeline
        .iter()
        .rev()
        .find(|e| e.event.kind == "prescription.original_matched");
    let serial = match (&a.serial_number, matched) {
        (Some(s), Some(_)) => SerialShown::Matched(s.clone()),
        (Some(_), None) if a.kind.is_paper() => SerialShown::Hidden,
        (Some(s), None) => SerialShown::Matched(s.clone()),
        (None, _) => SerialShown::None,
    };
    let scan = timeline
        .iter()
        .rev()
        .filter(|e| e.event.kind.starts_with("prescription.original_"))
        .find_map(|e| e.event.detail.get("document")?.get("id")?.as_str())
        .map(str::to_string);
    AuthorityShown {
        form,
        serial,
        eps_id: a.eps_prescription_id.clone(),
        signature: (a.kind == AuthorityKind::ElectronicPrivate).then(|| signature(&rec.findings)),
        scan,
    }
}

/// The signature check's outcome, from its findings.
fn signature(findings: &[Finding]) -> String {
    const BAD: [&str; 4] = [
        SIGNATURE_MISSING,
        SIGNATURE_INVALID,
        SIGNATURE_KEY_UNKNOWN,
        SIGNATURE_KEY_REVOKED,
    ];
    if let Some(f) = findings.iter().find(|f| BAD.contains(&f.code.as_str())) {
        return format!("Not valid: {}", f.message);
    }
    if findings.iter().any(|f| f.code == SIGNATURE_VERIFIED) {
        "Verified with the prescriber's registered key".into()
    } else {
        "Not checked".into()
    }
}

fn item(i: &Item, age: i32) -> ItemShown {
    let product = Formulary::builtin().get(&i.product_code);
    let q = i.quantity.get();
    let unit = product.map_or("unit", |p| p.dose_unit.as_str());
    let units = if i.dose.units == 1.0 {
        unit.to_string()
    } else {
        product.map_or_else(|| "units".to_string(), |p| p.dose_unit_plural())
    };
    let times = match i.dose.times_per_day {
        1 => "once a day".to_string(),
        2 => "twice a day".to_string(),
        n => format!("{n} times a day"),
    };
    let daily_dose = product.map(|p| DailyDose {
        mg: i.dose.units_per_day() * p.strength_mg,
        max: p.max_daily_dose_for_age(age).map(|(mg, basis)| {
            let whose = match basis {
                DoseBasis::Adult => "adult".to_string(),
                DoseBasis::Child => "child".to_string(),
                DoseBasis::Band { min_age, max_age } => format!("age {min_age}–{max_age}"),
            };
            (mg, whose)
        }),
    });
    ItemShown {
        product_code: i.product_code.clone(),
        product: product.map_or_else(|| i.product_code.clone(), |p| p.name.clone()),
        form: product.map(|p| p.form.clone()),
        strength: product.map(|p| format!("{} mg", p.strength_mg)),
        schedule: product.map(|p| p.schedule.as_str()),
        quantity: q,
        figures_given: i.quantity_figures_given,
        words_written: i.quantity_in_words.clone(),
        words_of_figures: rxbridge_domain::quantity::to_words(q),
        dose: format!("{} {units} {times}", i.dose.units),
        directions: i.instructions.clone(),
        days_computed: i.days_supply,
        days_declared: i.declared_days_supply,
        daily_dose,
    }
}

/// Fills in the history and the findings' links: the patient's earlier supplies across
/// clinics (each record read by id for its quantity and clinic), the records an early or
/// duplicate supply names, and the records an identity conflict conflicts with.
pub(crate) async fn look_up(
    view: &mut ClinicalView,
    store: &dyn Store,
    vault: &PatientVault,
    mode: Mode,
    rec: &PrescriptionRecord,
    rx: &Prescription,
) -> Result<(), StoreError> {
    let keys = vault.patient_keys(&rx.patient);
    let entries = store
        .patient_history(mode, &keys, &rec.clinic_id, HISTORY_SHOWN + 1)
        .await?;
    let mut records: BTreeMap<String, Option<PrescriptionRecord>> = BTreeMap::new();
    let mut clinics: BTreeMap<String, String> = BTreeMap::new();
    for h in entries.iter().filter(|h| h.prescription_id != rec.id) {
        if view.history.len() as u32 >= HISTORY_SHOWN {
            break;
        }
        if !records.contains_key(&h.prescription_id) {
            let found = store
                .get_prescription_for_staff(mode, &h.prescription_id)
                .await?;
            records.insert(h.prescription_id.clone(), found);
        }
        let other = records.get(&h.prescription_id).cloned().flatten();
        let clinic_id = other
            .as_ref()
            .map(|r| r.clinic_id.clone())
            .unwrap_or_default();
        if !clinics.contains_key(&clinic_id) {
            let name = store.get_clinic(&clinic_id).await?.map(|c| c.name);
            clinics.insert(clinic_id.clone(), name.unwrap_or_else(|| clinic_id.clone()));
        }
        let quantity = other.as_ref().and_then(|r| {
            r.items
                .iter()
                .find(|i| i.product_code == h.product_code)
                .map(|i| i.quantity)
        });
        view.history.push(SupplyLine {
            prescription_id: h.prescription_id.clone(),
            clinic_reference: other
                .as_ref()
                .map(|r| r.clinic_reference.clone())
                .unwrap_or_default(),
            start: h.start,
            product: Formulary::builtin()
                .get(&h.product_code)
                .map_or_else(|| h.product_code.clone(), |p| p.name.clone()),
            quantity,
            days: h.days_supply,
            status: h.status,
            clinic: clinics.get(&clinic_id).cloned().unwrap_or_default(),
            same_clinic: h.same_clinic,
        });
    }
    for (f, links) in rec.findings.iter().zip(view.related.iter_mut()) {
        for line in &view.history {
            // Findings stored before their references were kept name them in the message.
            let named = f.refs.contains(&line.prescription_id)
                || (f.refs.is_empty() && f.message.contains(&line.prescription_id));
            if named && !links.iter().any(|l| l.id == line.prescription_id) {
                links.push(Related {
                    id: line.prescription_id.clone(),
                    clinic_reference: line.clinic_reference.clone(),
                    why: "the earlier supply",
                });
            }
        }
    }
    if let Some(at) = rec
        .findings
        .iter()
        .position(|f| f.code == IDENTITY_CONFLICT)
    {
        view.related[at] = conflicting(store, vault, mode, rec, rx, &keys).await?;
    }
    Ok(())
}

/// Records of the same NHS number under another name or date of birth, and of the same name
/// and date of birth under another NHS number (at most 50 of each looked at).
async fn conflicting(
    store: &dyn Store,
    vault: &PatientVault,
    mode: Mode,
    rec: &PrescriptionRecord,
    rx: &Prescription,
    keys: &crate::ports::PatientKeys,
) -> Result<Vec<Related>, StoreError> {
    let me = &rx.patient;
    let mut lookups = vec![StaffLookup::FamilyNameAndDob(keys.family_dob.clone())];
    if let Some(nhs) = &keys.nhs {
        lookups.push(StaffLookup::NhsNumber(nhs.clone()));
    }
    let mut out: Vec<Related> = Vec::new();
    for lookup in lookups {
        for other in store.search(mode, &lookup, 50).await? {
            if other.id == rec.id || out.iter().any(|r| r.id == other.id) {
                continue;
            }
            let Ok(them) = vault.open_prescription(&other) else {
                continue;
            };
            let p = &them.patient;
            let same_nhs = me.nhs_number.is_some() && p.nhs_number == me.nhs_number;
            let same_person = p.name_dob_key() == me.name_dob_key();
            let nhs_differs =
                me.nhs_number.is_some() && p.nhs_number.is_some() && p.nhs_number != me.nhs_number;
            if (same_nhs && !same_person) || (same_person && nhs_differs) {
                out.push(Related {
                    id: other.id.clone(),
                    clinic_reference: other.clinic_reference.clone(),
                    why: "the conflicting record",
                });
            }
        }
    }
    Ok(out)
}
