//! EPS `prescription-order` Bundle → the clinic contract's JSON body, with a table from each
//! contract JSON pointer to the FHIRPath of the element it was read from. The contract parser
//! then runs on the body exactly as on a clinic's JSON, and each of its errors is reported at
//! the FHIRPath of its pointer. Problems only the FHIR shape can have (wrong message type, an
//! unresolved reference, a dm+d code outside the table) are issues of their own.

mod items;

use crate::dmd::DmdTable;
use crate::model::*;
use items::item_of;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
const PRESCRIPTION_ORDER: &str = "prescription-order";
/// Professional registration identifier systems (UK Core) → the contract's registration body.
const REGISTRATIONS: &[(&str, &str)] = &[
    ("https://fhir.hl7.org.uk/Id/gmc-number", "gmc"),
    ("https://fhir.hl7.org.uk/Id/nmc-number", "nmc"),
    ("https://fhir.hl7.org.uk/Id/gphc-number", "gphc"),
    ("https://fhir.hl7.org.uk/Id/hcpc-number", "hcpc"),
];

/// One problem of the submitted Bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// FHIRPath into the submitted Bundle, e.g. `Bundle.entry[3].resource.dosageInstruction[0].text`.
    pub expression: String,
    /// The FHIR `IssueType` code (`required`, `value`, `code-invalid`, `structure`, ...).
    pub fhir_code: &'static str,
    /// rxbridge's stable code (the contract's codes, plus this adapter's own).
    pub code: String,
    pub detail: String,
}

/// The body is JSON but not a FHIR Bundle (answered 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotABundle(pub String);

/// A Bundle read onto the clinic contract.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The clinic contract body (`POST /v1/prescriptions` shape).
    pub contract: Value,
    /// `Bundle.identifier.value`: the message's idempotency key.
    pub message_id: Option<String>,
    /// Problems found while reading the Bundle itself.
    pub issues: Vec<Issue>,
    paths: Vec<(String, String)>,
}

impl Mapped {
    /// The FHIRPath of a contract JSON pointer: the element it was read from, or the nearest
    /// element that holds it (a missing element is reported at its parent, which exists).
    pub fn expression_for(&self, pointer: &str) -> String {
        let mut p = pointer;
        loop {
            if let Some((_, e)) = self.paths.iter().find(|(k, _)| k == p) {
                return e.clone();
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return "Bundle".into(),
            }
        }
    }

    /// The contract's errors as issues at their FHIRPaths, after this adapter's own; a
    /// contract error at an element this adapter already reported is not repeated.
    pub fn all_issues(
        &self,
        contract_errors: impl IntoIterator<Item = (String, String, String)>,
    ) -> Vec<Issue> {
        let mut out = self.issues.clone();
        for (pointer, code, detail) in contract_errors {
            let expression = self.expression_for(&pointer);
            if self.issues.iter().any(|i| i.expression == expression) {
                continue;
            }
            // The contract field's name, as the JSON API calls it: the FHIR element at
            // `expression` may hold several (a dose read from the directions' text).
            let fhir_code = fhir_code_of(&code);
            let detail = format!(
                "{}: {detail}",
                pointer.trim_start_matches('/').replace('/', ".")
            );
            out.push(Issue {
                expression,
                fhir_code,
                code,
                detail,
            });
        }
        out
    }
}

fn fhir_code_of(contract_code: &str) -> &'static str {
    match contract_code {
        "required" => "required",
        "unknown_product" => "code-invalid",
        "wrong_type" | "unknown_field" => "structure",
        "not_allowed" | "authority_not_allowed" => "business-rule",
        _ => "value",
    }
}

struct Ctx<'a> {
    entries: &'a [Entry],
    issues: Vec<Issue>,
    paths: Vec<(String, String)>,
}

impl Ctx<'_> {
    fn issue(
        &mut self,
        expression: String,
        fhir_code: &'static str,
        code: &str,
        detail: impl Into<String>,
    ) {
        self.issues.push(Issue {
            expression,
            fhir_code,
            code: code.into(),
            detail: detail.into(),
        });
    }
    fn path(&mut self, pointer: &str, expression: String) {
        self.paths.push((pointer.to_string(), expression));
    }
    /// Read entry `i`'s resource as `T`; a read element of the wrong type is an issue at
    /// its own path and the resource is read as empty.
    fn read<T: DeserializeOwned + Default>(&mut self, i: usize) -> T {
        let at = format!("Bundle.entry[{i}].resource");
        match serde_path_to_error::deserialize::<_, T>(&self.entries[i].resource) {
            Ok(t) => t,
            Err(e) => {
                let path = e.path().to_string();
                let expression = if path == "." || path.is_empty() {
                    at
                } else if path.starts_with('[') {
                    format!("{at}{path}")
                } else {
                    format!("{at}.{path}")
                };
                self.issue(
                    expression,
                    "structure",
                    "wrong_type",
                    e.into_inner().to_string(),
                );
                T::default()
            }
        }
    }
    fn of_type(&self, t: &str) -> Vec<usize> {
        (0..self.entries.len())
            .filter(|&i| {
                self.entries[i]
                    .resource
                    .get("resourceType")
                    .and_then(Value::as_str)
                    == Some(t)
            })
            .collect()
    }
    /// The entry a reference names (`fullUrl`, or `Type/id`), when it is of type `t`.
    fn resolve(&self, r: Option<&Reference>, t: &str) -> Option<usize> {
        let target = r?.reference.as_deref()?;
        self.entries.iter().position(|e| {
            let r = &e.resource;
            let ty = r.get("resourceType").and_then(Value::as_str);
            ty == Some(t)
                && (e.full_url.as_deref() == Some(target)
                    || r.get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| format!("{t}/{id}") == target))
        })
    }
}

/// Read an EPS `prescription-order` message Bundle onto the clinic contract.
pub fn map_order(body: &Value, dmd: &DmdTable) -> Result<Mapped, NotABundle> {
    if body.get("resourceType").and_then(Value::as_str) != Some("Bundle") {
        return Err(NotABundle(
            "the body must be a FHIR R4 Bundle (resourceType \"Bundle\")".into(),
        ));
    }
    let bundle: Bundle = serde_path_to_error::deserialize(body).map_err(|e| {
        NotABundle(format!(
            "the Bundle is malformed at Bundle.{}: {}",
            e.path(),
            e.inner()
        ))
    })?;
    let mut c = Ctx {
        entries: &bundle.entry,
        issues: Vec::new(),
        paths: Vec::new(),
    };
    if bundle.kind.as_deref() != Some("message") {
        let at = if bundle.kind.is_some() {
            "Bundle.type"
        } else {
            "Bundle"
        };
        c.issue(
            at.into(),
            "value",
            "invalid_bundle_type",
            "must be a message Bundle (type \"message\")",
        );
    }
    let message_id = bundle
        .identifier
        .as_ref()
        .and_then(|i| i.value.clone())
        .filter(|v| !v.trim().is_empty());
    if message_id.is_none() {
        c.issue(
            "Bundle".into(),
            "required",
            "required",
            "Bundle.identifier.value (the message id) is required",
        );
    }
    header(&mut c);
    let mut contract = Map::new();
    contract.insert("type".into(), json!("nhs"));
    let requests = c.of_type("MedicationRequest");
    let mrs: Vec<(usize, MedicationRequest)> = requests.iter().map(|&i| (i, c.read(i))).collect();
    c.path("/items", "Bundle.entry".into());
    if let Some((i0, mr0)) = mrs.first() {
        order_level(&mut c, &mut contract, *i0, mr0, &mrs);
        let patient = c
            .resolve(mr0.subject.as_ref(), "Patient")
            .or_else(|| c.of_type("Patient").first().copied());
        match patient {
            Some(p) => {
                let v = patient_of(&mut c, p);
                contract.insert("patient".into(), v);
            }
            None => c.issue(
                format!("Bundle.entry[{i0}].resource"),
                "required",
                "required",
                "no Patient: the MedicationRequest's subject must name a Patient entry",
            ),
        }
        let role = c.resolve(mr0.requester.as_ref(), "PractitionerRole");
        match role {
            Some(r) => {
                if let Some(v) = prescriber_of(&mut c, r) {
                    contract.insert("prescriber".into(), v);
                }
            }
            None => c.issue(
                format!("Bundle.entry[{i0}].resource"),
                "required",
                "required",
                "the requester must name a PractitionerRole entry of the Bundle",
            ),
        }
    } else {
        c.issue(
            "Bundle.entry".into(),
            "required",
            "required",
            "a prescription-order names at least one MedicationRequest",
        );
    }
    let items: Vec<Value> = mrs
        .iter()
        .enumerate()
        .map(|(k, (i, mr))| item_of(&mut c, dmd, k, *i, mr))
        .collect();
    contract.insert("items".into(), Value::Array(items));
    for p in c.of_type("Provenance") {
        let _: Provenance = c.read(p);
    }
    Ok(Mapped {
        contract: Value::Object(contract),
        message_id,
        issues: c.issues,
        paths: c.paths,
    })
}

/// The first entry is the MessageHeader of a `prescription-order`.
fn header(c: &mut Ctx) {
    let first = c
        .entries
        .first()
        .and_then(|e| e.resource.get("resourceType"))
        .and_then(Value::as_str);
    if first != Some("MessageHeader") {
        c.issue(
            "Bundle".into(),
            "structure",
            "missing_message_header",
            "the first entry of a message Bundle must be its MessageHeader",
        );
        return;
    }
    let h: MessageHeader = c.read(0);
    let code = h.event_coding.as_ref().and_then(|e| e.code.as_deref());
    if code != Some(PRESCRIPTION_ORDER) {
        let at = if code.is_some() {
            "Bundle.entry[0].resource.eventCoding.code"
        } else {
            "Bundle.entry[0].resource"
        };
        c.issue(
            at.into(),
            "not-supported",
            "unsupported_message",
            format!("only {PRESCRIPTION_ORDER} messages are taken here (eventCoding.code)"),
        );
    }
}

/// Reference, dates and authority: read from the first MedicationRequest, the same on all.
fn order_level(
    c: &mut Ctx,
    contract: &mut Map<String, Value>,
    i0: usize,
    mr0: &MedicationRequest,
    mrs: &[(usize, MedicationRequest)],
) {
    let at0 = format!("Bundle.entry[{i0}].resource");
    let group = mr0.group_identifier.as_ref().and_then(|g| g.value.clone());
    let group_at = if group.is_some() {
        format!("{at0}.groupIdentifier.value")
    } else {
        at0.clone()
    };
    c.path("/clinic_reference", group_at.clone());
    c.path("/authority", group_at.clone());
    if let Some(g) = group.as_deref().filter(|g| !check_character_ok(g)) {
        c.issue(
            group_at.clone(),
            "value",
            "invalid_prescription_id_check",
            format!("{g}: the check character (ISO/IEC 7064 MOD 37-2) does not match; the short-form prescription id is mistyped"),
        );
    }
    let mut authority = json!({"kind": "eps"});
    if let Some(g) = &group {
        contract.insert("clinic_reference".into(), json!(g));
        authority["eps_prescription_id"] = json!(g);
    }
    contract.insert("authority".into(), authority);
    c.path("/nhs", "Bundle".into());
    c.path("/type", at0.clone());
    let course = |mr: &MedicationRequest| {
        mr.course_of_therapy_type
            .as_ref()
            .and_then(|t| t.coding.first())
            .and_then(|c| c.code.clone())
    };
    for (i, mr) in mrs {
        let at = format!("Bundle.entry[{i}].resource");
        if mr.intent.as_deref() != Some("order") {
            let e = if mr.intent.is_some() {
                format!("{at}.intent")
            } else {
                at.clone()
            };
            c.issue(
                e,
                "value",
                "invalid_intent",
                "a prescription-order's MedicationRequest has intent \"order\"",
            );
        }
        if mr.status.as_deref() != Some("active") {
            let e = if mr.status.is_some() {
                format!("{at}.status")
            } else {
                at.clone()
            };
            c.issue(
                e,
                "value",
                "invalid_status",
                "a prescription-order's MedicationRequest has status \"active\"",
            );
        }
        if *i != i0 && mr.group_identifier.as_ref().and_then(|g| g.value.clone()) != group {
            c.issue(format!("{at}.groupIdentifier"), "value", "mixed_prescriptions", "every MedicationRequest of one message must carry the same groupIdentifier (one prescription)");
        }
        if *i != i0 && course(mr) != course(mr0) {
            let e = if mr.course_of_therapy_type.is_some() {
                format!("{at}.courseOfTherapyType")
            } else {
                at.clone()
            };
            c.issue(e, "business-rule", "mixed_course_of_therapy", "every MedicationRequest of one prescription must have the same courseOfTherapyType");
        }
    }
    // The date it was written: authoredOn, else the start of the validity period, else the
    // signature's date (Provenance.recorded).
    let disp = mr0.dispense_request.as_ref();
    let (date, at) = if let Some(d) = &mr0.authored_on {
        (Some(d.clone()), format!("{at0}.authoredOn"))
    } else if let Some(d) = disp
        .and_then(|d| d.validity_period.as_ref())
        .and_then(|p| p.start.clone())
    {
        (
            Some(d),
            format!("{at0}.dispenseRequest.validityPeriod.start"),
        )
    } else if let Some(p) = c.of_type("Provenance").first().copied() {
        let pr: Provenance = c.read(p);
        (pr.recorded, format!("Bundle.entry[{p}].resource.recorded"))
    } else {
        (None, at0.clone())
    };
    if let Some(d) = date {
        contract.insert("issued_on".into(), json!(d.get(..10).unwrap_or(&d)));
    }
    c.path("/issued_on", at);
}

fn first_name(names: &[HumanName]) -> (Option<String>, Option<String>) {
    let n = names.first();
    let given = n.filter(|n| !n.given.is_empty()).map(|n| n.given.join(" "));
    (given, n.and_then(|n| n.family.clone()))
}

fn name_paths(c: &mut Ctx, base: &str, at: &str, names: &[HumanName]) {
    let n = names.first();
    let named = if n.is_some() {
        format!("{at}.name[0]")
    } else {
        at.to_string()
    };
    let g = if n.is_some_and(|n| !n.given.is_empty()) {
        format!("{named}.given[0]")
    } else {
        named.clone()
    };
    let f = if n.is_some_and(|n| n.family.is_some()) {
        format!("{named}.family")
    } else {
        named
    };
    c.path(&format!("{base}/given_name"), g);
    c.path(&format!("{base}/family_name"), f);
}

fn patient_of(c: &mut Ctx, i: usize) -> Value {
    let at = format!("Bundle.entry[{i}].resource");
    let p: Patient = c.read(i);
    let mut v = Map::new();
    c.path("/patient", at.clone());
    let (given, family) = first_name(&p.name);
    name_paths(c, "/patient", &at, &p.name);
    v.insert("given_name".into(), json!(given));
    v.insert("family_name".into(), json!(family));
    if let Some(k) = p
        .identifier
        .iter()
        .position(|id| id.system.as_deref() == Some(NHS_NUMBER))
    {
        v.insert("nhs_number".into(), json!(p.identifier[k].value));
        c.path("/patient/nhs_number", format!("{at}.identifier[{k}].value"));
    }
    v.insert("date_of_birth".into(), json!(p.birth_date));
    c.path(
        "/patient/date_of_birth",
        if p.birth_date.is_some() {
            format!("{at}.birthDate")
        } else {
            at.clone()
        },
    );
    for (system, field) in [("email", "email"), ("phone", "phone")] {
        if let Some(k) = p
            .telecom
            .iter()
            .position(|t| t.system.as_deref() == Some(system))
        {
            v.insert(field.into(), json!(p.telecom[k].value));
            c.path(
                &format!("/patient/{field}"),
                format!("{at}.telecom[{k}].value"),
            );
        }
    }
    let home = p
        .address
        .iter()
        .position(|a| a.use_.as_deref() == Some("home"))
        .or(if p.address.is_empty() { None } else { Some(0) });
    match home {
        Some(k) => {
            let a = address_of(
                c,
                "/patient/address",
                &format!("{at}.address[{k}]"),
                &p.address[k],
            );
            v.insert("address".into(), a);
        }
        None => c.path("/patient/address", at),
    }
    Value::Object(v)
}

/// A FHIR address onto the contract's: the town is `city`, else `district`, else the last of
/// two or more lines (EPS addresses often carry the town as a line).
fn address_of(c: &mut Ctx, base: &str, at: &str, a: &Address) -> Value {
    c.path(base, at.to_string());
    let mut lines = a.line.clone();
    let town = if let Some(t) = &a.city {
        c.path(&format!("{base}/town"), format!("{at}.city"));
        Some(t.clone())
    } else if let Some(t) = &a.district {
        c.path(&format!("{base}/town"), format!("{at}.district"));
        Some(t.clone())
    } else if lines.len() >= 2 {
        c.path(
            &format!("{base}/town"),
            format!("{at}.line[{}]", lines.len() - 1),
        );
        lines.pop()
    } else {
        None
    };
    c.path(
        &format!("{base}/lines"),
        if a.line.is_empty() {
            at.to_string()
        } else {
            format!("{at}.line")
        },
    );
    for k in 0..lines.len() {
        c.path(&format!("{base}/lines/{k}"), format!("{at}.line[{k}]"));
    }
    c.path(
        &format!("{base}/postcode"),
        if a.postal_code.is_some() {
            format!("{at}.postalCode")
        } else {
            at.to_string()
        },
    );
    let mut v = json!({"lines": lines, "town": town, "postcode": a.postal_code});
    // Only an ISO 3166 alpha-2 code is a contract country; names ("United Kingdom") are left to the default.
    if let Some(cc) = a.country.as_deref().filter(|cc| cc.len() == 2) {
        v["country"] = json!(cc);
        c.path(&format!("{base}/country"), format!("{at}.country"));
    }
    v
}

fn prescriber_of(c: &mut Ctx, role_i: usize) -> Option<Value> {
    let role_at = format!("Bundle.entry[{role_i}].resource");
    let role: PractitionerRole = c.read(role_i);
    let Some(pi) = c.resolve(role.practitioner.as_ref(), "Practitioner") else {
        c.issue(
            role_at,
            "required",
            "required",
            "the PractitionerRole's practitioner must name a Practitioner entry of the Bundle",
        );
        return None;
    };
    let at = format!("Bundle.entry[{pi}].resource");
    let p: Practitioner = c.read(pi);
    let mut v = Map::new();
    c.path("/prescriber", at.clone());
    let (given, family) = first_name(&p.name);
    name_paths(c, "/prescriber", &at, &p.name);
    v.insert("given_name".into(), json!(given));
    v.insert("family_name".into(), json!(family));
    let reg = p.identifier.iter().enumerate().find_map(|(k, id)| {
        REGISTRATIONS
            .iter()
            .find(|(s, _)| id.system.as_deref() == Some(s))
            .map(|(_, body)| (k, *body, id.value.clone()))
    });
    match reg {
        Some((k, body, number)) => {
            v.insert(
                "registration".into(),
                json!({"body": body, "number": number}),
            );
            c.path("/prescriber/registration", format!("{at}.identifier[{k}]"));
            c.path(
                "/prescriber/registration/number",
                format!("{at}.identifier[{k}].value"),
            );
        }
        None => c.path(
            "/prescriber/registration",
            if p.identifier.is_empty() {
                at.clone()
            } else {
                format!("{at}.identifier")
            },
        ),
    }
    // The prescriber's address is their organisation's.
    match c.resolve(role.organization.as_ref(), "Organization") {
        Some(oi) => {
            let o: Organization = c.read(oi);
            let oat = format!("Bundle.entry[{oi}].resource");
            match o.address.first() {
                Some(a) => {
                    let a = address_of(c, "/prescriber/address", &format!("{oat}.address[0]"), a);
                    v.insert("address".into(), a);
                }
                None => c.path("/prescriber/address", oat),
            }
        }
        None => c.path("/prescriber/address", role_at),
    }
    Some(Value::Object(v))
}

/// The check character of a short-form prescription id (`XXXXXX-XXXXXX-XXXXXC`): ISO/IEC 7064
/// MOD 37-2 over the other 17 characters read in base 36, `+` for 36. Ids not of that shape
/// are left to the contract's format rule (true here).
fn check_character_ok(id: &str) -> bool {
    const CHECK: &[u8; 37] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ+";
    let chars: Vec<u8> = id.bytes().filter(|&b| b != b'-').collect();
    let Some((&last, body)) = chars.split_last() else {
        return true;
    };
    if id.len() != 20 || chars.len() != 18 {
        return true;
    }
    let mut total: u64 = 0;
    for &b in body {
        let Some(v) = (b as char).to_digit(36) else {
            return true;
        };
        total = ((total + u64::from(v)) * 2) % 37;
    }
    CHECK[((38 - total % 37) % 37) as usize] == last.to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::check_character_ok;

    #[test]
    fn the_check_character_of_published_ids() {
        // From the NHS's published examples: valid ones, and the one it refuses as INVALID_CHECKSUM.
        for id in [
            "24F5DA-A83008-7EFE6Z",
            "DE1AF4-A99968-4C918K",
            "9A80DD-A99968-4CCC8W",
            "4F5374-A99968-4556BB",
        ] {
            assert!(check_character_ok(id), "{id}");
        }
        assert!(!check_character_ok("269CA9-A99968-4577BP"));
        assert!(!check_character_ok("24F5DA-A83008-7EFE6Y"));
        // Not of the shape: the contract's format rule says so, not this one.
        assert!(check_character_ok("not-an-id"));
    }
}
