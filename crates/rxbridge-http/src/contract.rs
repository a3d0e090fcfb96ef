//! The clinic contract parser: raw JSON → a domain `Prescription`, collecting *every*
//! violation with its JSON pointer, a stable code and a plain-English detail, so a clinic
//! fixes its payload in one round trip. Unknown fields are violations too.

use crate::problem::FieldError;
use jiff::civil::Date;
use rxbridge_domain::contact::{Address, Email, Postcode, UkPhone};
use rxbridge_domain::dates::age_on;
use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::ids::{
    ClinicReference, NhsNumber, PrescriberKind, PrivatePrescriberCode, Registration,
};
use rxbridge_domain::nhs::{ExemptionError, NhsTables};
use rxbridge_domain::prescription::*;
use rxbridge_domain::quantity::{MAX_QUANTITY, Quantity, read_quantity_words};
use serde_json::{Map, Value};

/// The most items one prescription may carry (clinic contract).
pub const MAX_ITEMS: usize = 4;

struct Errs(Vec<FieldError>);

impl Errs {
    fn push(&mut self, pointer: &str, code: &str, detail: impl Into<String>) {
        self.0.push(FieldError {
            pointer: pointer.to_string(),
            code: code.to_string(),
            detail: detail.into(),
        });
    }
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
fn ptr(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An object whose keys are all in `allowed` (each unknown key is reported).
fn object<'a>(
    v: &'a Value,
    at: &str,
    allowed: &[&str],
    e: &mut Errs,
) -> Option<&'a Map<String, Value>> {
    match v {
        Value::Object(m) => {
            for k in m.keys() {
                if !allowed.contains(&k.as_str()) {
                    e.push(
                        &ptr(at, k),
                        "unknown_field",
                        format!("unknown field; expected one of: {}", allowed.join(", ")),
                    );
                }
            }
            Some(m)
        }
        other => {
            e.push(
                at,
                "wrong_type",
                format!("must be an object, not {}", type_name(other)),
            );
            None
        }
    }
}

/// A field of `m`: `None` (and a `required` error when `required`) if absent or null.
fn field<'a>(
    m: &'a Map<String, Value>,
    at: &str,
    key: &str,
    required: bool,
    e: &mut Errs,
) -> Option<&'a Value> {
    match m.get(key) {
        None | Some(Value::Null) => {
            if required {
                e.push(&ptr(at, key), "required", "is required");
            }
            None
        }
        Some(v) => Some(v),
    }
}

/// Printable text of 1..=max characters, without control characters.
fn text(
    m: &Map<String, Value>,
    at: &str,
    key: &str,
    required: bool,
    max: usize,
    e: &mut Errs,
) -> Option<String> {
    let p = ptr(at, key);
    match field(m, at, key, required, e)? {
        Value::String(s) => {
            let t = s.trim();
            if t.is_empty() {
                e.push(&p, "empty", "must not be empty");
                None
            } else if t.chars().count() > max {
                e.push(&p, "too_long", format!("must be at most {max} characters"));
                None
            } else if t.chars().any(char::is_control) {
                e.push(
                    &p,
                    "invalid_characters",
                    "must not contain control characters",
                );
                None
            } else {
                Some(t.to_string())
            }
        }
        other => {
            e.push(
                &p,
                "wrong_type",
                format!("must be a string, not {}", type_name(other)),
            );
            None
        }
    }
}

/// A whole number in `min..=max`; `28.0` counts as 28 (JSON Schema's integer does).
fn integer(
    m: &Map<String, Value>,
    at: &str,
    key: &str,
    required: bool,
    min: u64,
    max: u64,
    e: &mut Errs,
) -> Option<u64> {
    let p = ptr(at, key);
    let v = field(m, at, key, required, e)?;
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 1e15)
                .map(|f| f as u64)
        }),
        other => {
            e.push(
                &p,
                "wrong_type",
                format!("must be a whole number, not {}", type_name(other)),
            );
            return None;
        }
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            e.push(
                &p,
                "out_of_range",
                format!("must be a whole number from {min} to {max}"),
            );
            None
        }
    }
}

fn boolean(
    m: &Map<String, Value>,
    at: &str,
    key: &str,
    required: bool,
    e: &mut Errs,
) -> Option<bool> {
    match field(m, at, key, required, e)? {
        Value::Bool(b) => Some(*b),
        other => {
            e.push(
                &ptr(at, key),
                "wrong_type",
                format!("must be true or false, not {}", type_name(other)),
            );
            None
        }
    }
}

fn date(m: &Map<String, Value>, at: &str, key: &str, e: &mut Errs) -> Option<Date> {
    let s = text(m, at, key, true, 10, e)?;
    let ok = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
    match s.parse::<Date>() {
        Ok(d) if ok => Some(d),
        _ => {
            e.push(
                &ptr(at, key),
                "invalid_date",
                "must be a calendar date written YYYY-MM-DD",
            );
            None
        }
    }
}

fn one_of<'a>(
    m: &Map<String, Value>,
    at: &str,
    key: &str,
    options: &[&'a str],
    e: &mut Errs,
) -> Option<&'a str> {
    let s = text(m, at, key, true, 64, e)?;
    match options.iter().find(|o| **o == s) {
        Some(o) => Some(o),
        None => {
            e.push(
                &ptr(at, key),
                "invalid_value",
                format!("must be one of: {}", options.join(", ")),
            );
            None
        }
    }
}

fn address(v: &Value, at: &str, patient: bool, e: &mut Errs) -> Option<Address> {
    let m = object(v, at, &["lines", "town", "postcode", "country"], e)?;
    let lines_at = ptr(at, "lines");
    let lines = match field(m, at, "lines", true, e) {
        Some(Value::Array(a)) if (1..=4).contains(&a.len()) => {
            let mut out = Vec::new();
            for (i, l) in a.iter().enumerate() {
                let p = format!("{lines_at}/{i}");
                match l {
                    Value::String(s)
                        if !s.trim().is_empty()
                            && s.chars().count() <= 100
                            && !s.chars().any(char::is_control) =>
                    {
                        out.push(s.trim().to_string())
                    }
                    Value::String(_) => {
                        e.push(&p, "invalid_line", "must be 1 to 100 printable characters")
                    }
                    other => e.push(
                        &p,
                        "wrong_type",
                        format!("must be a string, not {}", type_name(other)),
                    ),
                }
            }
            (out.len() == a.len()).then_some(out)
        }
        Some(Value::Array(_)) => {
            e.push(&lines_at, "out_of_range", "must have 1 to 4 lines");
            None
        }
        Some(other) => {
            e.push(
                &lines_at,
                "wrong_type",
                format!("must be an array of strings, not {}", type_name(other)),
            );
            None
        }
        None => None,
    };
    let town = text(m, at, "town", true, 100, e);
    let country = match field(m, at, "country", false, e) {
        None => Some("GB".to_string()),
        Some(Value::String(s)) if s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase()) => {
            Some(s.clone())
        }
        Some(_) => {
            e.push(
                &ptr(at, "country"),
                "invalid_country",
                "must be an ISO 3166-1 alpha-2 code such as GB",
            );
            None
        }
    };
    if patient && country.as_deref().is_some_and(|c| c != "GB") {
        e.push(
            &ptr(at, "country"),
            "address_not_uk",
            "the pharmacy delivers only to addresses in the United Kingdom",
        );
    }
    let raw_pc = text(m, at, "postcode", true, 16, e);
    let postcode = match (&raw_pc, country.as_deref()) {
        (Some(pc), Some("GB") | None) => match Postcode::parse(pc) {
            Ok(p) => Some(p.as_str().to_string()),
            Err(err) => {
                e.push(&ptr(at, "postcode"), "invalid_postcode", err.to_string());
                None
            }
        },
        (Some(pc), _) => Some(pc.clone()),
        (None, _) => None,
    };
    Some(Address {
        lines: lines?,
        town: town?,
        postcode: postcode?,
        country: country?,
    })
}

fn prescriber(v: &Value, e: &mut Errs) -> Option<Prescriber> {
    let at = "/prescriber";
    let m = object(
        v,
        at,
        &[
            "given_name",
            "family_name",
            "registration",
            "kind",
            "private_prescriber_code",
            "address",
        ],
        e,
    )?;
    let given = text(m, at, "given_name", true, 100, e);
    let family = text(m, at, "family_name", true, 100, e);
    let kind_names: Vec<&str> = PrescriberKind::ALL.iter().map(|k| k.as_str()).collect();
    let kind = if m.get("kind").is_none_or(Value::is_null) {
        Some(None)
    } else {
        one_of(m, at, "kind", &kind_names, e).map(PrescriberKind::parse)
    };
    let registration = field(m, at, "registration", true, e).and_then(|r| {
        let rat = "/prescriber/registration";
        let rm = object(r, rat, &["body", "number"], e)?;
        let body = one_of(
            rm,
            rat,
            "body",
            &["gmc", "nmc", "gphc", "hcpc", "gdc", "goc"],
            e,
        )?;
        let number = text(rm, rat, "number", true, 16, e)?;
        match Registration::parse(body, &number) {
            Ok(r) => Some(r),
            Err(err) => {
                e.push(
                    "/prescriber/registration/number",
                    "invalid_registration_number",
                    format!("is not a valid {} number: {err}", body.to_uppercase()),
                );
                None
            }
        }
    });
    let code = text(m, at, "private_prescriber_code", false, 16, e).and_then(|c| {
        match PrivatePrescriberCode::parse(&c) {
            Ok(c) => Some(Some(c)),
            Err(err) => {
                e.push(
                    "/prescriber/private_prescriber_code",
                    "invalid_private_prescriber_code",
                    format!("{err}"),
                );
                None
            }
        }
    });
    let code = if m.get("private_prescriber_code").is_none_or(Value::is_null) {
        Some(None)
    } else {
        code
    };
    let addr =
        field(m, at, "address", true, e).and_then(|a| address(a, "/prescriber/address", false, e));
    // The kind must be one the registration body registers (clinic contract, 2026-12).
    if let (Some(Some(k)), Some(r)) = (kind, &registration)
        && !k.bodies().contains(&r.body())
    {
        let fits: Vec<&str> = PrescriberKind::ALL
            .iter()
            .filter(|k| k.bodies().contains(&r.body()))
            .map(|k| k.as_str())
            .collect();
        e.push(
            "/prescriber/kind",
            "kind_not_registered_by_body",
            format!(
                "a {} registration cannot be {}; with {} use one of: {}",
                r.body(),
                k.as_str(),
                r.body(),
                fits.join(", ")
            ),
        );
    }
    Some(Prescriber {
        given_name: given?,
        family_name: family?,
        registration: registration?,
        kind: kind?,
        private_prescriber_code: code?,
        address: addr?,
    })
}

fn optional_parsed<T, E: std::fmt::Display>(
    m: &Map<String, Value>,
    at: &str,
    key: &str,
    max: usize,
    code: &str,
    parse: impl Fn(&str) -> Result<T, E>,
    e: &mut Errs,
) -> Option<Option<T>> {
    if m.get(key).is_none_or(Value::is_null) {
        return Some(None);
    }
    let s = text(m, at, key, false, max, e)?;
    match parse(&s) {
        Ok(v) => Some(Some(v)),
        Err(err) => {
            e.push(&ptr(at, key), code, err.to_string());
            None
        }
    }
}

fn patient(v: &Value, today: Date, e: &mut Errs) -> Option<Patient> {
    let at = "/patient";
    let m = object(
        v,
        at,
        &[
            "nhs_number",
            "given_name",
            "family_name",
            "date_of_birth",
            "email",
            "phone",
            "address",
        ],
        e,
    )?;
    let nhs = optional_parsed(
        m,
        at,
        "nhs_number",
        16,
        "invalid_nhs_number",
        NhsNumber::parse,
        e,
    );
    let given = text(m, at, "given_name", true, 100, e);
    let family = text(m, at, "family_name", true, 100, e);
    let dob = date(m, at, "date_of_birth", e).and_then(|d| {
        if d > today {
            e.push(
                "/patient/date_of_birth",
                "date_in_future",
                "must not be in the future",
            );
            None
        } else if age_on(d, today) > 125 {
            e.push(
                "/patient/date_of_birth",
                "out_of_range",
                "is more than 125 years ago",
            );
            None
        } else {
            Some(d)
        }
    });
    let email = optional_parsed(m, at, "email", 254, "invalid_email", Email::parse, e);
    let phone = optional_parsed(m, at, "phone", 32, "invalid_phone", UkPhone::parse, e);
    let addr =
        field(m, at, "address", true, e).and_then(|a| address(a, "/patient/address", true, e));
    Some(Patient {
        nhs_number: nhs?,
        given_name: given?,
        family_name: family?,
        date_of_birth: dob?,
        email: email?,
        phone: phone?,
        address: addr?,
    })
}

fn dose(v: &Value, at: &str, e: &mut Errs) -> Option<Dose> {
    let m = object(v, at, &["units", "times_per_day"], e)?;
    let units = match field(m, at, "units", true, e) {
        Some(Value::Number(n)) => match n.as_f64() {
            // Quarter units at the finest (a quarter or half tablet).
            Some(u) if u > 0.0 && u <= 20.0 && (u * 4.0).fract() == 0.0 => Some(u),
            _ => {
                e.push(
                    &ptr(at, "units"),
                    "out_of_range",
                    "must be more than 0 and at most 20, in steps of 0.25",
                );
                None
            }
        },
        Some(other) => {
            e.push(
                &ptr(at, "units"),
                "wrong_type",
                format!("must be a number, not {}", type_name(other)),
            );
            None
        }
        None => None,
    };
    let times = integer(m, at, "times_per_day", true, 1, 12, e);
    Some(Dose {
        units: units?,
        times_per_day: times? as u32,
    })
}

fn item(v: &Value, i: usize, formulary: &Formulary, e: &mut Errs) -> Option<Item> {
    let at = format!("/items/{i}");
    let m = object(
        v,
        &at,
        &[
            "product_code",
            "quantity",
            "quantity_in_words",
            "dose",
            "instructions",
            "days_supply",
            "repeats",
            "repeatable",
        ],
        e,
    )?;
    let code = text(m, &at, "product_code", true, 64, e).and_then(|c| {
        if formulary.get(&c).is_some() {
            Some(c)
        } else {
            e.push(
                &ptr(&at, "product_code"),
                "unknown_product",
                format!("\"{c}\" is not in the formulary (GET /v1/formulary)"),
            );
            None
        }
    });
    let words = text(m, &at, "quantity_in_words", false, 200, e);
    // The words as a pharmacist reads them: a minor spelling slip is read (and flagged for
    // amendment by the rules); words that state no number are a contract error.
    let reading = match &words {
        Some(w) => match read_quantity_words(w) {
            Ok(r) => Some(Some(r)),
            Err(err) => {
                e.push(
                    &ptr(&at, "quantity_in_words"),
                    "invalid_quantity_words",
                    err.to_string(),
                );
                None
            }
        },
        None => Some(None),
    };
    let words_ok = m.get("quantity_in_words").is_none_or(Value::is_null) || words.is_some();
    let figures_given = !m.get("quantity").is_none_or(Value::is_null);
    // The figures may be left out when the words state the quantity (MDR 2001 reg 16(1A): the
    // pharmacist may add them); one of the two is required.
    let quantity = if figures_given || !words_ok || words.is_none() {
        integer(m, &at, "quantity", true, 1, u64::from(MAX_QUANTITY), e)
            .and_then(|q| Quantity::new(q as u32).ok())
    } else {
        match reading.clone().flatten().map(|r| Quantity::new(r.value)) {
            Some(Ok(q)) => Some(q),
            Some(Err(err)) => {
                e.push(
                    &ptr(&at, "quantity_in_words"),
                    "out_of_range",
                    format!("states a quantity that {err}"),
                );
                None
            }
            None => None,
        }
    };
    let d = field(m, &at, "dose", true, e).and_then(|d| dose(d, &format!("{at}/dose"), e));
    let instructions = text(m, &at, "instructions", true, 500, e);
    let days = integer(m, &at, "days_supply", false, 1, 366, e);
    let days_given_ok = m.get("days_supply").is_none_or(Value::is_null) || days.is_some();
    let repeats = integer(m, &at, "repeats", false, 0, 12, e);
    let repeats_ok = m.get("repeats").is_none_or(Value::is_null) || repeats.is_some();
    let repeatable = boolean(m, &at, "repeatable", false, e);
    let repeatable_ok = m.get("repeatable").is_none_or(Value::is_null) || repeatable.is_some();
    let (quantity, d) = (quantity?, d?);
    // Days of treatment from the dose, whatever is declared: whole days, rounded up.
    let days_supply = d.days_of_treatment(quantity.get()).ceil().clamp(1.0, 366.0) as u32;
    if !(words_ok && days_given_ok && repeats_ok && repeatable_ok) {
        return None;
    }
    let reading = reading?;
    Some(Item {
        product_code: code?,
        quantity,
        quantity_figures_given: figures_given,
        quantity_in_words: words,
        quantity_in_words_value: reading.as_ref().map(|r| r.value),
        quantity_words_corrected: reading.and_then(|r| r.corrected),
        dose: d,
        instructions: instructions?,
        days_supply,
        declared_days_supply: days.map(|n| n as u32),
        repeats: repeats.unwrap_or(0) as u32,
        repeatable: repeatable.unwrap_or(false) || repeats.is_some_and(|r| r > 0),
    })
}

/// Parse a submission body against the clinic contract. `today` is London's date (dates of
/// birth may not be in the future).
pub fn parse_prescription(
    body: &Value,
    today: Date,
    formulary: &Formulary,
) -> Result<Prescription, Vec<FieldError>> {
    let mut e = Errs(Vec::new());
    let rx = parse_inner(body, today, formulary, &mut e);
    match rx {
        Some(rx) if e.0.is_empty() => Ok(rx),
        _ => {
            if e.0.is_empty() {
                e.push("", "invalid", "the prescription is not valid");
            }
            Err(e.0)
        }
    }
}

fn parse_inner(
    body: &Value,
    today: Date,
    formulary: &Formulary,
    e: &mut Errs,
) -> Option<Prescription> {
    let m = object(
        body,
        "",
        &[
            "clinic_reference",
            "type",
            "issued_on",
            "authority",
            "prescriber",
            "patient",
            "items",
            "nhs",
            "signature",
        ],
        e,
    )?;
    let reference = text(m, "", "clinic_reference", true, 64, e).and_then(|r| {
        match ClinicReference::parse(&r) {
            Ok(r) => Some(r),
            Err(err) => {
                e.push(
                    "/clinic_reference",
                    "invalid_clinic_reference",
                    err.to_string(),
                );
                None
            }
        }
    });
    let kind = one_of(m, "", "type", &["private", "nhs"], e).map(|t| {
        if t == "nhs" {
            PrescriptionType::Nhs
        } else {
            PrescriptionType::Private
        }
    });
    let issued_on = date(m, "", "issued_on", e);

    let authority = field(m, "", "authority", true, e).and_then(|a| {
        let am = object(
            a,
            "/authority",
            &["kind", "form", "serial_number", "eps_prescription_id"],
            e,
        )?;
        let k = one_of(
            am,
            "/authority",
            "kind",
            &["paper_fp10pcd", "paper_fp10", "eps", "electronic_private"],
            e,
        )
        .map(|k| match k {
            "paper_fp10pcd" => AuthorityKind::PaperFp10pcd,
            "paper_fp10" => AuthorityKind::PaperFp10,
            "eps" => AuthorityKind::Eps,
            _ => AuthorityKind::ElectronicPrivate,
        });
        let serial = text(am, "/authority", "serial_number", false, 32, e).and_then(|s| {
            if s.chars().all(|c| c.is_ascii_alphanumeric()) {
                Some(s.to_ascii_uppercase())
            } else {
                e.push(
                    "/authority/serial_number",
                    "invalid_serial_number",
                    "must be letters and digits only",
                );
                None
            }
        });
        let eps_id = text(am, "/authority", "eps_prescription_id", false, 64, e);
        let form = text(am, "/authority", "form", false, 32, e);
        if let Some(k) = k {
            if form.is_some() && k != AuthorityKind::PaperFp10pcd {
                e.push(
                    "/authority/form",
                    "not_allowed",
                    "only paper_fp10pcd names its form (an equivalent body's private CD form)",
                );
            }
            if serial.is_some() && !k.is_paper() {
                e.push(
                    "/authority/serial_number",
                    "not_allowed",
                    "only paper authorities carry a serial number",
                );
            }
            match (k, &eps_id) {
                (AuthorityKind::Eps, None)
                    if am.get("eps_prescription_id").is_none_or(Value::is_null) =>
                {
                    e.push(
                        "/authority/eps_prescription_id",
                        "required",
                        "is required when kind is eps",
                    )
                }
                (AuthorityKind::Eps, Some(id)) if !is_short_form_id(id) => e.push(
                    "/authority/eps_prescription_id",
                    "invalid_eps_prescription_id",
                    "must be an EPS short-form prescription id such as 24F5DA-A83008-7EFE6Z",
                ),
                (k, Some(_)) if k != AuthorityKind::Eps => e.push(
                    "/authority/eps_prescription_id",
                    "not_allowed",
                    "only eps authorities carry an EPS prescription id",
                ),
                _ => {}
            }
        }
        Some(Authority {
            kind: k?,
            form,
            serial_number: serial,
            eps_prescription_id: eps_id,
        })
    });
    if let (Some(kind), Some(a)) = (kind, &authority) {
        let allowed = match kind {
            PrescriptionType::Private => [
                AuthorityKind::PaperFp10pcd,
                AuthorityKind::ElectronicPrivate,
            ],
            PrescriptionType::Nhs => [AuthorityKind::PaperFp10, AuthorityKind::Eps],
        };
        if !allowed.contains(&a.kind) {
            e.push(
                "/authority/kind",
                "authority_not_allowed",
                format!(
                    "a {} prescription must use {} or {}",
                    kind.as_str(),
                    allowed[0].as_str(),
                    allowed[1].as_str()
                ),
            );
        }
    }

    let prescriber = field(m, "", "prescriber", true, e).and_then(|p| prescriber(p, e));
    let patient = field(m, "", "patient", true, e).and_then(|p| patient(p, today, e));

    let items = match field(m, "", "items", true, e) {
        Some(Value::Array(a)) if a.is_empty() || a.len() > MAX_ITEMS => {
            e.push(
                "/items",
                "out_of_range",
                format!("must have 1 to {MAX_ITEMS} items"),
            );
            None
        }
        Some(Value::Array(a)) => {
            let parsed: Vec<Option<Item>> = a
                .iter()
                .enumerate()
                .map(|(i, v)| item(v, i, formulary, e))
                .collect();
            parsed.into_iter().collect::<Option<Vec<Item>>>()
        }
        Some(other) => {
            e.push(
                "/items",
                "wrong_type",
                format!("must be an array, not {}", type_name(other)),
            );
            None
        }
        None => None,
    };

    let nhs_present = !m.get("nhs").is_none_or(Value::is_null);
    let nhs = match kind {
        Some(PrescriptionType::Private) if nhs_present => {
            e.push(
                "/nhs",
                "not_allowed",
                "a private prescription must not carry the nhs block",
            );
            None
        }
        Some(PrescriptionType::Nhs) => field(m, "", "nhs", true, e).and_then(|n| {
            let nm = object(n, "/nhs", &["exemption", "evidence_seen"], e)?;
            // Judged on the dispensing date: today, as it would be dispensed.
            let ex = text(nm, "/nhs", "exemption", true, 4, e).and_then(|c| {
                match NhsTables::builtin().exemption_on(&c, today) {
                    Ok(_) => ExemptionCode::parse(&c),
                    Err(ExemptionError::Unknown) => {
                        e.push(
                            "/nhs/exemption",
                            "invalid_exemption",
                            "must be an NHS charge exemption code: 0001 (paid), 0002-0016, or the 9003-9016 code the real-time exemption checking service returned",
                        );
                        None
                    }
                    Err(err @ ExemptionError::NotInForce { .. }) => {
                        e.push("/nhs/exemption", "exemption_not_in_force", err.to_string());
                        None
                    }
                }
            });
            let ev = boolean(nm, "/nhs", "evidence_seen", true, e);
            Some(NhsDetails {
                exemption: ex?,
                evidence_seen: ev?,
            })
        }),
        _ => None,
    };
    if kind == Some(PrescriptionType::Nhs)
        && patient.as_ref().is_some_and(|p| p.nhs_number.is_none())
    {
        e.push(
            "/patient/nhs_number",
            "required",
            "is required on an NHS prescription",
        );
    }
    let nhs = match kind {
        Some(PrescriptionType::Nhs) => Some(nhs?),
        _ => None,
    };
    let signature = match field(m, "", "signature", false, e) {
        None => Some(None),
        Some(v) => object(v, "/signature", &["jws"], e).and_then(|sm| {
            let jws = text(sm, "/signature", "jws", true, 16_384, e)?;
            match rxbridge_app::signatures::parse_detached_jws(&jws) {
                Ok(_) => Some(Some(jws)),
                Err(why) => {
                    e.push("/signature/jws", "invalid_signature", why);
                    None
                }
            }
        }),
    };
    Some(Prescription {
        clinic_reference: reference?,
        kind: kind?,
        issued_on: issued_on?,
        authority: authority?,
        prescriber: prescriber?,
        patient: patient?,
        items: items?,
        nhs,
        signature: signature?,
    })
}

/// EPS short-form prescription id: 6 hex, prescriber ODS code padded to 6, 5 hex and a check
/// character (uk-rules.md §9); the check character is not verified here.
fn is_short_form_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 6
        && parts[0].chars().all(|c| c.is_ascii_hexdigit())
        && parts[1].len() == 6
        && parts[1].chars().all(|c| c.is_ascii_alphanumeric())
        && parts[2].len() == 6
        && parts[2][..5].chars().all(|c| c.is_ascii_hexdigit())
        && parts[2][5..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+')
}
