//! The clinic contract parser: raw JSON → a domain `Prescription`, collecting *every*
//! violation with its JSON pointer, a stable code and a plain-English detail, so a clinic
//! fixes its payload in one round trip. Unknown fields are violations too. Well-formed bodies
//! take a typed fast path first ([`parse_prescription_fast`]); the collecting parser runs only
//! when that does not accept the body, so every error comes from it.

mod checked;
mod fast;
mod fields;
mod items;
mod parties;
mod tree;

use crate::problem::FieldError;
use fields::*;
use items::item;
use jiff::civil::Date;
use parties::{patient, prescriber};
use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::ids::ClinicReference;
use rxbridge_domain::nhs::{ExemptionError, NhsTables};
use rxbridge_domain::prescription::*;
use tree::Value;

/// The most items one prescription may carry (clinic contract).
pub const MAX_ITEMS: usize = 4;

/// Parse a submission body against the clinic contract. `today` is London's date (dates of
/// birth may not be in the future).
pub fn parse_prescription(
    body: &serde_json::Value,
    today: Date,
    formulary: &Formulary,
) -> Result<Prescription, Vec<FieldError>> {
    collect(&Value::from(body), today, formulary, Exemption::Carried)
}

/// Where an NHS prescription's charge exemption comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exemption {
    /// The clinic contract: an NHS submission carries its `nhs` block.
    Carried,
    /// An NHS EPS message: it never carries one; the patient declares it at the pharmacy
    /// (`rxbridge_domain::declaration`), so the block may be left out.
    DeclaredAtPharmacy,
}

/// Parse the body an EPS message is read onto (the FHIR front door): the clinic contract, with
/// the `nhs` block optional on an NHS prescription, whose exemption is then declared at the
/// pharmacy. Every other rule is the same.
pub fn parse_prescription_order(
    body: &serde_json::Value,
    today: Date,
    formulary: &Formulary,
) -> Result<Prescription, Vec<FieldError>> {
    collect(
        &Value::from(body),
        today,
        formulary,
        Exemption::DeclaredAtPharmacy,
    )
}

/// The collecting parser on the tree it reads.
fn collect(
    body: &Value,
    today: Date,
    formulary: &Formulary,
    exemption: Exemption,
) -> Result<Prescription, Vec<FieldError>> {
    let mut e = Errs(Vec::new());
    let rx = parse_inner(body, today, formulary, exemption, &mut e);
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

/// The fast path alone: the prescription when `body` is a well-formed submission that breaks no
/// rule, `None` when [`parse_prescription`] must look at it (it then reports every error). Both
/// give the same prescription for a body they both accept.
pub fn parse_prescription_fast(
    body: &[u8],
    today: Date,
    formulary: &Formulary,
) -> Option<Prescription> {
    fast::parse(std::str::from_utf8(body).ok()?, today, formulary)
}

/// The canonical JSON of a body (`rxbridge_app::events::canonical_json` of it: keys sorted at
/// every level), read from its bytes without building a `serde_json::Value`; the request hash
/// of an idempotent submission is its SHA-256. A body that is not JSON gives the error
/// `serde_json::from_slice` gives.
pub fn canonical_json(body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    tree::canonical_json(body)
}

/// Why a body was not read as a prescription.
#[derive(Debug)]
pub enum BodyError {
    /// Not JSON at all.
    Json(serde_json::Error),
    /// JSON that breaks the contract: every violation.
    Contract(Vec<FieldError>),
}

/// Read a submission from its bytes: the fast path, and when it does not accept the body, JSON
/// parse and the collecting parser.
pub fn parse_prescription_bytes(
    body: &[u8],
    today: Date,
    formulary: &Formulary,
) -> Result<Prescription, BodyError> {
    // Checked as UTF-8 once, the body is read by both paths without checking each string again.
    let v: Value = match std::str::from_utf8(body) {
        Ok(text) => {
            if let Some(rx) = fast::parse(text, today, formulary) {
                return Ok(rx);
            }
            serde_json::from_str(text)
        }
        Err(_) => serde_json::from_slice(body),
    }
    .map_err(BodyError::Json)?;
    collect(&v, today, formulary, Exemption::Carried).map_err(BodyError::Contract)
}

fn parse_inner(
    body: &Value,
    today: Date,
    formulary: &Formulary,
    exemption: Exemption,
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
        match ClinicReference::parse(r) {
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
            form: form.map(str::to_string),
            serial_number: serial,
            eps_prescription_id: eps_id.map(str::to_string),
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
        Some(PrescriptionType::Nhs) => field(m, "", "nhs", exemption == Exemption::Carried, e).and_then(|n| {
            let nm = object(n, "/nhs", &["exemption", "evidence_seen"], e)?;
            // Judged on the dispensing date: today, as it would be dispensed.
            let ex = text(nm, "/nhs", "exemption", true, 4, e).and_then(|c| {
                match NhsTables::builtin().exemption_on(c, today) {
                    Ok(_) => ExemptionCode::parse(c),
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
        Some(PrescriptionType::Nhs)
            if !nhs_present && exemption == Exemption::DeclaredAtPharmacy =>
        {
            None
        }
        Some(PrescriptionType::Nhs) => Some(nhs?),
        _ => None,
    };
    let signature = match field(m, "", "signature", false, e) {
        None => Some(None),
        Some(v) => object(v, "/signature", &["jws"], e).and_then(|sm| {
            let jws = text(sm, "/signature", "jws", true, 16_384, e)?;
            match rxbridge_app::signatures::parse_detached_jws(jws) {
                Ok(_) => Some(Some(jws.to_string())),
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
/// character (NHS EPS prescription id format); the check character is not verified here.
fn is_short_form_id(s: &str) -> bool {
    // (`is_ascii` before slicing: six bytes of which the last is multi-byte are not six
    // characters, and slicing them at 5 would panic.)
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 3
        && parts[0].len() == 6
        && parts[0].chars().all(|c| c.is_ascii_hexdigit())
        && parts[1].len() == 6
        && parts[1].chars().all(|c| c.is_ascii_alphanumeric())
        && parts[2].len() == 6
        && parts[2].is_ascii()
        && parts[2][..5].chars().all(|c| c.is_ascii_hexdigit())
        && parts[2][5..]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '+')
}
