//! The parties: the prescriber (registration, kind, private prescriber code, address) and the
//! patient (identifiers, contact, address).

use super::fields::*;
use super::tree::Value;
use jiff::civil::Date;
use rxbridge_domain::contact::{Address, Email, Postcode, UkPhone};
use rxbridge_domain::dates::age_on;
use rxbridge_domain::ids::{NhsNumber, PrescriberKind, PrivatePrescriberCode, Registration};
use rxbridge_domain::prescription::{Patient, Prescriber};

pub(super) fn address(v: &Value, at: &str, patient: bool, e: &mut Errs) -> Option<Address> {
    let m = object(v, at, &["lines", "town", "postcode", "country"], e)?;
    let lines_at = || ptr(at, "lines");
    let line_at = |i: usize| format!("{}/{i}", lines_at());
    let lines = match field(m, at, "lines", true, e) {
        Some(Value::Array(a)) if (1..=4).contains(&a.len()) => {
            let mut out = Vec::new();
            for (i, l) in a.iter().enumerate() {
                match l {
                    Value::String(s)
                        if !s.trim().is_empty()
                            && s.chars().count() <= 100
                            && !s.chars().any(char::is_control) =>
                    {
                        out.push(s.trim().to_string())
                    }
                    Value::String(_) => e.push(
                        &line_at(i),
                        "invalid_line",
                        "must be 1 to 100 printable characters",
                    ),
                    other => e.push(
                        &line_at(i),
                        "wrong_type",
                        format!("must be a string, not {}", type_name(other)),
                    ),
                }
            }
            (out.len() == a.len()).then_some(out)
        }
        Some(Value::Array(_)) => {
            e.push(&lines_at(), "out_of_range", "must have 1 to 4 lines");
            None
        }
        Some(other) => {
            e.push(
                &lines_at(),
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
            Some(s.to_string())
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
            Ok(p) => Some(p.into_string()),
            Err(err) => {
                e.push(&ptr(at, "postcode"), "invalid_postcode", err.to_string());
                None
            }
        },
        (Some(pc), _) => Some(pc.to_string()),
        (None, _) => None,
    };
    Some(Address {
        lines: lines?,
        town: town?.to_string(),
        postcode: postcode?,
        country: country?,
    })
}

pub(super) fn prescriber(v: &Value, e: &mut Errs) -> Option<Prescriber> {
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
    let kind = if m.get("kind").is_none_or(Value::is_null) {
        Some(None)
    } else {
        let kind_names: Vec<&str> = PrescriberKind::ALL.iter().map(|k| k.as_str()).collect();
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
        match Registration::parse(body, number) {
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
        match PrivatePrescriberCode::parse(c) {
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
        given_name: given?.to_string(),
        family_name: family?.to_string(),
        registration: registration?,
        kind: kind?,
        private_prescriber_code: code?,
        address: addr?,
    })
}

pub(super) fn patient(v: &Value, today: Date, e: &mut Errs) -> Option<Patient> {
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
        given_name: given?.to_string(),
        family_name: family?.to_string(),
        date_of_birth: dob?,
        email: email?,
        phone: phone?,
        address: addr?,
    })
}
