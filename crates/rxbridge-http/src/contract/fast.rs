//! The fast path for well-formed submissions: the body's text deserialised straight into typed
//! structs whose field types (`checked`) check each field's own rule as it is read, so a broken
//! field ends the read there; the rules between fields are checked after it. Free text stays
//! borrowed from the body until the prescription is built. It answers only "valid, and here is
//! the prescription" or "not sure": on anything it does not accept — an unknown, duplicate or
//! mistyped field, an array where an object belongs, a broken rule — the caller falls back to
//! the collecting parser, which alone writes the errors. The rules are the collecting parser's,
//! through the same helpers (`clean_text`, `calendar_date`, the domain parsers); a property test
//! checks that both agree on every payload it generates.

use super::checked::*;
use super::{MAX_ITEMS, is_short_form_id};
use jiff::civil::Date;
use rxbridge_domain::contact::{Address, Email, Postcode, UkPhone};
use rxbridge_domain::dates::age_on;
use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::ids::{
    ClinicReference, NhsNumber, PrescriberKind, PrivatePrescriberCode, Registration,
};
use rxbridge_domain::nhs::NhsTables;
use rxbridge_domain::prescription::*;
use rxbridge_domain::quantity::{MAX_QUANTITY, Quantity};
use serde::Deserialize;

/// A JSON object read into `T`, and nothing else. serde_json reads a derived struct from an
/// array too (its fields by position), which the contract refuses (`must be an object`); this
/// asks the deserializer for a map only.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData)).map(Obj)
    }
}

impl<T> std::ops::Deref for Obj<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RxIn<'a> {
    clinic_reference: Parsed<ClinicReference>,
    #[serde(rename = "type")]
    kind: Parsed<PrescriptionType>,
    issued_on: Parsed<Date>,
    #[serde(borrow)]
    authority: Obj<AuthorityIn<'a>>,
    #[serde(borrow)]
    prescriber: Obj<PrescriberIn<'a>>,
    #[serde(borrow)]
    patient: Obj<PatientIn<'a>>,
    #[serde(borrow)]
    items: Vec<Obj<ItemIn<'a>>>,
    nhs: Option<Obj<NhsIn<'a>>>,
    signature: Option<Obj<SignatureIn>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityIn<'a> {
    kind: Parsed<AuthorityKind>,
    #[serde(borrow)]
    form: Option<Txt<'a, 32>>,
    serial_number: Option<Parsed<Serial>>,
    #[serde(borrow)]
    eps_prescription_id: Option<Txt<'a, 64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressIn<'a> {
    lines: Vec<Line>,
    #[serde(borrow)]
    town: Txt<'a, 100>,
    #[serde(borrow)]
    postcode: Txt<'a, 16>,
    #[serde(borrow)]
    country: Option<Country<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationIn<'a> {
    body: Parsed<Body>,
    #[serde(borrow)]
    number: Txt<'a, 16>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrescriberIn<'a> {
    #[serde(borrow)]
    given_name: Txt<'a, 100>,
    #[serde(borrow)]
    family_name: Txt<'a, 100>,
    #[serde(borrow)]
    registration: Obj<RegistrationIn<'a>>,
    kind: Option<Parsed<PrescriberKind>>,
    private_prescriber_code: Option<Parsed<PrivatePrescriberCode>>,
    #[serde(borrow)]
    address: Obj<AddressIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatientIn<'a> {
    nhs_number: Option<Parsed<NhsNumber>>,
    #[serde(borrow)]
    given_name: Txt<'a, 100>,
    #[serde(borrow)]
    family_name: Txt<'a, 100>,
    date_of_birth: Parsed<Date>,
    email: Option<Parsed<Email>>,
    phone: Option<Parsed<UkPhone>>,
    #[serde(borrow)]
    address: Obj<AddressIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoseIn {
    units: Units,
    times_per_day: Int<1, 12>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn<'a> {
    #[serde(borrow)]
    product_code: Txt<'a, 64>,
    quantity: Option<Int<1, { MAX_QUANTITY as u64 }>>,
    quantity_in_words: Option<Parsed<Words>>,
    dose: Obj<DoseIn>,
    #[serde(borrow)]
    instructions: Txt<'a, 500>,
    days_supply: Option<Int<1, 366>>,
    repeats: Option<Int<0, 12>>,
    repeatable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NhsIn<'a> {
    #[serde(borrow)]
    exemption: Txt<'a, 4>,
    evidence_seen: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureIn {
    jws: Parsed<Jws>,
}

/// The prescription, when the body (already checked as UTF-8, so its strings are not checked
/// again) is well-formed and breaks no rule; `None` means "ask the collecting parser".
pub(super) fn parse(body: &str, today: Date, formulary: &Formulary) -> Option<Prescription> {
    let Obj(rx): Obj<RxIn> = serde_json::from_str(body).ok()?;
    let kind = rx.kind.0;
    let authority = authority(rx.authority.0)?;
    let allowed = match kind {
        PrescriptionType::Private => [
            AuthorityKind::PaperFp10pcd,
            AuthorityKind::ElectronicPrivate,
        ],
        PrescriptionType::Nhs => [AuthorityKind::PaperFp10, AuthorityKind::Eps],
    };
    if !allowed.contains(&authority.kind) || !(1..=MAX_ITEMS).contains(&rx.items.len()) {
        return None;
    }
    let Obj(patient_in) = rx.patient;
    let patient = patient(patient_in, today)?;
    let nhs = match (kind, &rx.nhs) {
        (PrescriptionType::Private, None) => None,
        (PrescriptionType::Nhs, Some(n)) if patient.nhs_number.is_some() => {
            let code: &str = &n.exemption;
            NhsTables::builtin().exemption_on(code, today).ok()?;
            Some(NhsDetails {
                exemption: ExemptionCode::parse(code)?,
                evidence_seen: n.evidence_seen,
            })
        }
        _ => return None,
    };
    let items = rx
        .items
        .into_iter()
        .map(|Obj(i)| item(i, formulary))
        .collect::<Option<Vec<Item>>>()?;
    let Obj(prescriber_in) = rx.prescriber;
    Some(Prescription {
        clinic_reference: rx.clinic_reference.0,
        kind,
        issued_on: rx.issued_on.0,
        authority,
        prescriber: prescriber(prescriber_in)?,
        patient,
        items,
        nhs,
        signature: rx.signature.map(|Obj(s)| s.jws.0.0),
    })
}

fn authority(a: AuthorityIn) -> Option<Authority> {
    let kind = a.kind.0;
    let eps_ok = match (kind, &a.eps_prescription_id) {
        (AuthorityKind::Eps, Some(id)) => is_short_form_id(id),
        (AuthorityKind::Eps, None) => false,
        (_, id) => id.is_none(),
    };
    if (a.serial_number.is_some() && !kind.is_paper())
        || !eps_ok
        || (a.form.is_some() && kind != AuthorityKind::PaperFp10pcd)
    {
        return None;
    }
    Some(Authority {
        kind,
        form: a.form.as_deref().map(str::to_string),
        serial_number: a.serial_number.map(|s| s.0.0),
        eps_prescription_id: a.eps_prescription_id.as_deref().map(str::to_string),
    })
}

fn address(a: Obj<AddressIn>, patient: bool) -> Option<Address> {
    let Obj(a) = a;
    if !(1..=4).contains(&a.lines.len()) {
        return None;
    }
    let country: &str = a.country.as_ref().map_or("GB", |c| &c.0);
    if patient && country != "GB" {
        return None;
    }
    let postcode = if country == "GB" {
        Postcode::parse(&a.postcode).ok()?.into_string()
    } else {
        a.postcode.to_string()
    };
    Some(Address {
        country: country.to_string(),
        lines: a.lines.into_iter().map(|l| l.0).collect(),
        town: a.town.to_string(),
        postcode,
    })
}

fn prescriber(p: PrescriberIn) -> Option<Prescriber> {
    let kind = p.kind.map(|k| k.0);
    let registration = Registration::parse(p.registration.body.0.0, &p.registration.number).ok()?;
    if kind.is_some_and(|k| !k.bodies().contains(&registration.body())) {
        return None;
    }
    Some(Prescriber {
        given_name: p.given_name.to_string(),
        family_name: p.family_name.to_string(),
        registration,
        kind,
        private_prescriber_code: p.private_prescriber_code.map(|c| c.0),
        address: address(p.address, false)?,
    })
}

fn patient(p: PatientIn, today: Date) -> Option<Patient> {
    let dob = p.date_of_birth.0;
    if dob > today || age_on(dob, today) > 125 {
        return None;
    }
    Some(Patient {
        nhs_number: p.nhs_number.map(|n| n.0),
        given_name: p.given_name.to_string(),
        family_name: p.family_name.to_string(),
        date_of_birth: dob,
        email: p.email.map(|e| e.0),
        phone: p.phone.map(|n| n.0),
        address: address(p.address, true)?,
    })
}

fn item(i: ItemIn, formulary: &Formulary) -> Option<Item> {
    formulary.get(&i.product_code)?;
    let words = i.quantity_in_words.map(|w| w.0);
    let quantity = match (i.quantity, &words) {
        (Some(q), _) => Quantity::new(q.0).ok()?,
        (None, Some(w)) => Quantity::new(w.reading.value).ok()?,
        (None, None) => return None,
    };
    let dose = Dose {
        units: i.dose.units.0,
        times_per_day: i.dose.times_per_day.0,
    };
    let repeats = i.repeats.map(|r| r.0);
    let days_supply = dose
        .days_of_treatment(quantity.get())
        .ceil()
        .clamp(1.0, 366.0) as u32;
    Some(Item {
        product_code: i.product_code.to_string(),
        quantity,
        quantity_figures_given: i.quantity.is_some(),
        quantity_in_words_value: words.as_ref().map(|w| w.reading.value),
        quantity_words_corrected: words.as_ref().and_then(|w| w.reading.corrected.clone()),
        quantity_in_words: words.map(|w| w.text),
        dose,
        instructions: i.instructions.to_string(),
        days_supply,
        declared_days_supply: i.days_supply.map(|d| d.0),
        repeats: repeats.unwrap_or(0),
        repeatable: i.repeatable.unwrap_or(false) || repeats.is_some_and(|r| r > 0),
    })
}
