//! The fast path for well-formed submissions: the body's bytes deserialised straight into
//! borrowing typed structs (no JSON tree, no string copied until it is known to be valid), then
//! the contract's rules checked field by field. It answers only "valid, and here is the
//! prescription" or "not sure": on anything it does not accept — an unknown, duplicate or
//! mistyped field, an array where an object belongs, a broken rule — the caller falls back to the collecting
//! parser, which alone writes the errors. The rules are the collecting parser's, through the same
//! helpers ([`clean_text`], [`calendar_date`], the domain parsers); a property test checks that
//! both agree on every payload it generates.

use super::fields::{calendar_date, clean_text};
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
use rxbridge_domain::quantity::{MAX_QUANTITY, Quantity, read_quantity_words};
use serde::Deserialize;
use std::borrow::Cow;

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

/// A JSON string, borrowed from the body unless it has escapes.
#[derive(Deserialize)]
struct S<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON number read as the collecting parser's `integer` reads it: `28` and `28.0` are 28;
/// `None` for a negative, fractional or huge one (which that parser refuses).
#[derive(Clone, Copy)]
struct Whole(Option<u64>);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Whole;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Whole, E> {
                Ok(Whole(Some(n)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Whole, E> {
                Ok(Whole(u64::try_from(n).ok()))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Whole, E> {
                let whole = f.fract() == 0.0 && (0.0..=1e15).contains(&f);
                Ok(Whole(whole.then_some(f as u64)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number in `min..=max`.
fn whole(w: Whole, min: u64, max: u64) -> Option<u64> {
    w.0.filter(|n| (min..=max).contains(n))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RxIn<'a> {
    #[serde(borrow)]
    clinic_reference: S<'a>,
    #[serde(rename = "type", borrow)]
    kind: S<'a>,
    #[serde(borrow)]
    issued_on: S<'a>,
    #[serde(borrow)]
    authority: Obj<AuthorityIn<'a>>,
    #[serde(borrow)]
    prescriber: Obj<PrescriberIn<'a>>,
    #[serde(borrow)]
    patient: Obj<PatientIn<'a>>,
    #[serde(borrow)]
    items: Vec<Obj<ItemIn<'a>>>,
    #[serde(borrow)]
    nhs: Option<Obj<NhsIn<'a>>>,
    #[serde(borrow)]
    signature: Option<Obj<SignatureIn<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorityIn<'a> {
    #[serde(borrow)]
    kind: S<'a>,
    #[serde(borrow)]
    form: Option<S<'a>>,
    #[serde(borrow)]
    serial_number: Option<S<'a>>,
    #[serde(borrow)]
    eps_prescription_id: Option<S<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressIn<'a> {
    #[serde(borrow)]
    lines: Vec<S<'a>>,
    #[serde(borrow)]
    town: S<'a>,
    #[serde(borrow)]
    postcode: S<'a>,
    #[serde(borrow)]
    country: Option<S<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationIn<'a> {
    #[serde(borrow)]
    body: S<'a>,
    #[serde(borrow)]
    number: S<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrescriberIn<'a> {
    #[serde(borrow)]
    given_name: S<'a>,
    #[serde(borrow)]
    family_name: S<'a>,
    #[serde(borrow)]
    registration: Obj<RegistrationIn<'a>>,
    #[serde(borrow)]
    kind: Option<S<'a>>,
    #[serde(borrow)]
    private_prescriber_code: Option<S<'a>>,
    #[serde(borrow)]
    address: Obj<AddressIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatientIn<'a> {
    #[serde(borrow)]
    nhs_number: Option<S<'a>>,
    #[serde(borrow)]
    given_name: S<'a>,
    #[serde(borrow)]
    family_name: S<'a>,
    #[serde(borrow)]
    date_of_birth: S<'a>,
    #[serde(borrow)]
    email: Option<S<'a>>,
    #[serde(borrow)]
    phone: Option<S<'a>>,
    #[serde(borrow)]
    address: Obj<AddressIn<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoseIn {
    units: f64,
    times_per_day: Whole,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemIn<'a> {
    #[serde(borrow)]
    product_code: S<'a>,
    quantity: Option<Whole>,
    #[serde(borrow)]
    quantity_in_words: Option<S<'a>>,
    dose: Obj<DoseIn>,
    #[serde(borrow)]
    instructions: S<'a>,
    days_supply: Option<Whole>,
    repeats: Option<Whole>,
    repeatable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NhsIn<'a> {
    #[serde(borrow)]
    exemption: S<'a>,
    evidence_seen: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureIn<'a> {
    #[serde(borrow)]
    jws: S<'a>,
}

/// The prescription, when the body is well-formed and breaks no rule; `None` means "ask the
/// collecting parser".
pub(super) fn parse(body: &[u8], today: Date, formulary: &Formulary) -> Option<Prescription> {
    // Checked as UTF-8 once, the body is read without checking each string again.
    let Obj(rx): Obj<RxIn> = serde_json::from_str(std::str::from_utf8(body).ok()?).ok()?;
    let kind = match txt(&rx.kind, 64)? {
        "private" => PrescriptionType::Private,
        "nhs" => PrescriptionType::Nhs,
        _ => return None,
    };
    let authority = authority(&rx.authority)?;
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
    let patient = patient(&rx.patient, today)?;
    let nhs = match (kind, &rx.nhs) {
        (PrescriptionType::Private, None) => None,
        (PrescriptionType::Nhs, Some(n)) if patient.nhs_number.is_some() => {
            let code = txt(&n.exemption, 4)?;
            NhsTables::builtin().exemption_on(code, today).ok()?;
            Some(NhsDetails {
                exemption: ExemptionCode::parse(code)?,
                evidence_seen: n.evidence_seen,
            })
        }
        _ => return None,
    };
    let signature = match &rx.signature {
        None => None,
        Some(s) => {
            let jws = txt(&s.jws, 16_384)?;
            rxbridge_app::signatures::parse_detached_jws(jws).ok()?;
            Some(jws.to_string())
        }
    };
    let items = rx
        .items
        .iter()
        .map(|i| item(i, formulary))
        .collect::<Option<Vec<Item>>>()?;
    Some(Prescription {
        clinic_reference: ClinicReference::parse(txt(&rx.clinic_reference, 64)?).ok()?,
        kind,
        issued_on: calendar_date(txt(&rx.issued_on, 10)?)?,
        authority,
        prescriber: prescriber(&rx.prescriber)?,
        patient,
        items,
        nhs,
        signature,
    })
}

/// Text that passes the contract's text rule, trimmed.
fn txt<'s>(s: &'s S<'_>, max: usize) -> Option<&'s str> {
    clean_text(&s.0, max).ok()
}

/// Optional text: absent is `Some(None)`, present and invalid is `None`.
fn opt<'s>(s: &'s Option<S<'_>>, max: usize) -> Option<Option<&'s str>> {
    match s {
        None => Some(None),
        Some(s) => txt(s, max).map(Some),
    }
}

fn authority(a: &AuthorityIn) -> Option<Authority> {
    let kind = match txt(&a.kind, 64)? {
        "paper_fp10pcd" => AuthorityKind::PaperFp10pcd,
        "paper_fp10" => AuthorityKind::PaperFp10,
        "eps" => AuthorityKind::Eps,
        "electronic_private" => AuthorityKind::ElectronicPrivate,
        _ => return None,
    };
    let serial = opt(&a.serial_number, 32)?;
    let eps_id = opt(&a.eps_prescription_id, 64)?;
    let form = opt(&a.form, 32)?;
    let serial_ok =
        serial.is_none_or(|s| s.chars().all(|c| c.is_ascii_alphanumeric()) && kind.is_paper());
    let eps_ok = match (kind, eps_id) {
        (AuthorityKind::Eps, Some(id)) => is_short_form_id(id),
        (AuthorityKind::Eps, None) => false,
        (_, id) => id.is_none(),
    };
    if !serial_ok || !eps_ok || (form.is_some() && kind != AuthorityKind::PaperFp10pcd) {
        return None;
    }
    Some(Authority {
        kind,
        form: form.map(str::to_string),
        serial_number: serial.map(str::to_ascii_uppercase),
        eps_prescription_id: eps_id.map(str::to_string),
    })
}

fn address(a: &AddressIn, patient: bool) -> Option<Address> {
    if !(1..=4).contains(&a.lines.len()) {
        return None;
    }
    let lines = a
        .lines
        .iter()
        .map(|l| {
            let s: &str = &l.0;
            (!s.trim().is_empty() && s.chars().count() <= 100 && !s.chars().any(char::is_control))
                .then(|| s.trim().to_string())
        })
        .collect::<Option<Vec<String>>>()?;
    let country = match &a.country {
        None => "GB",
        Some(c) if c.0.len() == 2 && c.0.chars().all(|c| c.is_ascii_uppercase()) => &c.0,
        Some(_) => return None,
    };
    if patient && country != "GB" {
        return None;
    }
    let pc = txt(&a.postcode, 16)?;
    let postcode = if country == "GB" {
        Postcode::parse(pc).ok()?.into_string()
    } else {
        pc.to_string()
    };
    Some(Address {
        lines,
        town: txt(&a.town, 100)?.to_string(),
        postcode,
        country: country.to_string(),
    })
}

fn prescriber(p: &PrescriberIn) -> Option<Prescriber> {
    let kind = match &p.kind {
        None => None,
        Some(k) => {
            let k = txt(k, 64)?;
            Some(PrescriberKind::ALL.into_iter().find(|x| x.as_str() == k)?)
        }
    };
    let body = txt(&p.registration.body, 64)?;
    if !["gmc", "nmc", "gphc", "hcpc", "gdc", "goc"].contains(&body) {
        return None;
    }
    let registration = Registration::parse(body, txt(&p.registration.number, 16)?).ok()?;
    if kind.is_some_and(|k| !k.bodies().contains(&registration.body())) {
        return None;
    }
    let code = match opt(&p.private_prescriber_code, 16)? {
        None => None,
        Some(c) => Some(PrivatePrescriberCode::parse(c).ok()?),
    };
    Some(Prescriber {
        given_name: txt(&p.given_name, 100)?.to_string(),
        family_name: txt(&p.family_name, 100)?.to_string(),
        registration,
        kind,
        private_prescriber_code: code,
        address: address(&p.address, false)?,
    })
}

fn patient(p: &PatientIn, today: Date) -> Option<Patient> {
    let dob = calendar_date(txt(&p.date_of_birth, 10)?)?;
    if dob > today || age_on(dob, today) > 125 {
        return None;
    }
    let nhs_number = match opt(&p.nhs_number, 16)? {
        None => None,
        Some(n) => Some(NhsNumber::parse(n).ok()?),
    };
    let email = match opt(&p.email, 254)? {
        None => None,
        Some(e) => Some(Email::parse(e).ok()?),
    };
    let phone = match opt(&p.phone, 32)? {
        None => None,
        Some(n) => Some(UkPhone::parse(n).ok()?),
    };
    Some(Patient {
        nhs_number,
        given_name: txt(&p.given_name, 100)?.to_string(),
        family_name: txt(&p.family_name, 100)?.to_string(),
        date_of_birth: dob,
        email,
        phone,
        address: address(&p.address, true)?,
    })
}

fn item(i: &ItemIn, formulary: &Formulary) -> Option<Item> {
    let code = txt(&i.product_code, 64)?;
    formulary.get(code)?;
    let words = opt(&i.quantity_in_words, 200)?;
    let reading = match words {
        None => None,
        Some(w) => Some(read_quantity_words(w).ok()?),
    };
    let quantity = match (i.quantity, &reading) {
        (Some(q), _) => Quantity::new(whole(q, 1, u64::from(MAX_QUANTITY))? as u32).ok()?,
        (None, Some(r)) => Quantity::new(r.value).ok()?,
        (None, None) => return None,
    };
    let units = i.dose.units;
    let units_ok = units > 0.0 && units <= 20.0 && (units * 4.0).fract() == 0.0;
    if !units_ok {
        return None;
    }
    let dose = Dose {
        units,
        times_per_day: whole(i.dose.times_per_day, 1, 12)? as u32,
    };
    let declared = match i.days_supply {
        None => None,
        Some(d) => Some(whole(d, 1, 366)? as u32),
    };
    let repeats = match i.repeats {
        None => None,
        Some(r) => Some(whole(r, 0, 12)? as u32),
    };
    let days_supply = dose
        .days_of_treatment(quantity.get())
        .ceil()
        .clamp(1.0, 366.0) as u32;
    Some(Item {
        product_code: code.to_string(),
        quantity,
        quantity_figures_given: i.quantity.is_some(),
        quantity_in_words: words.map(str::to_string),
        quantity_in_words_value: reading.as_ref().map(|r| r.value),
        quantity_words_corrected: reading.and_then(|r| r.corrected),
        dose,
        instructions: txt(&i.instructions, 500)?.to_string(),
        days_supply,
        declared_days_supply: declared,
        repeats: repeats.unwrap_or(0),
        repeatable: i.repeatable.unwrap_or(false) || repeats.is_some_and(|r| r > 0),
    })
}
