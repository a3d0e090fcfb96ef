//! What the stand-in checks in each dispensing message: the elements the specification marks
//! required, and the rules its error table lists, each refused with the specification's
//! diagnostic wording. Every problem is reported at once.

use serde_json::Value;

use crate::outcome::Issue;

fn missing(field: &str) -> Issue {
    Issue::error(
        "invalid",
        "MISSING_FIELD",
        &format!("Required field {field} is missing."),
    )
}

fn resource_type(body: &Value, expected: &str) -> Option<Issue> {
    (body["resourceType"] != expected).then(|| {
        Issue::error(
            "value",
            "INVALID_VALUE",
            &format!("Incorrect FHIR resource type. Expected {expected}."),
        )
    })
}

fn require(body: &Value, resource: &str, fields: &[&str], out: &mut Vec<Issue>) {
    for f in fields {
        if body.get(*f).is_none_or(Value::is_null) {
            out.push(missing(&format!("{resource}.{f}")));
        }
    }
}

/// `Task/$release`: a `Parameters` with `owner` (the pharmacy, by ODS code), `status` and
/// `agent`. Answers the owner's ODS code.
pub fn release(body: &Value) -> Result<String, Vec<Issue>> {
    if let Some(i) = resource_type(body, "Parameters") {
        return Err(vec![i]);
    }
    let params = body["parameter"].as_array().cloned().unwrap_or_default();
    let named = |n: &str| params.iter().find(|p| p["name"] == n);
    let mut out = Vec::new();
    for p in ["owner", "status", "agent"] {
        if named(p).is_none() {
            out.push(Issue::error(
                "invalid",
                "MISSING_FIELD",
                &format!("Required parameter {p} is missing."),
            ));
        }
    }
    if named("status").is_some_and(|s| s["valueCode"] != "accepted") {
        out.push(Issue::error(
            "value",
            "INVALID_VALUE",
            "Parameters.parameter(\"status\").valueCode must be accepted.",
        ));
    }
    let ods = named("owner").and_then(|o| o["resource"]["identifier"][0]["value"].as_str());
    match (ods, out.is_empty()) {
        (Some(ods), true) => Ok(ods.into()),
        (None, true) => Err(vec![missing(
            "Parameters.parameter(\"owner\").resource.identifier",
        )]),
        _ => Err(out),
    }
}

fn entries<'a>(body: &'a Value, resource_type: &str) -> Vec<&'a Value> {
    body["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

/// The dispense notification message. Answers the prescription's short-form id.
pub fn notification(body: &Value) -> Result<String, Vec<Issue>> {
    if let Some(i) = resource_type(body, "Bundle") {
        return Err(vec![i]);
    }
    let mut out = Vec::new();
    require(body, "Bundle", &["entry", "type"], &mut out);
    let header = entries(body, "MessageHeader");
    match header.first() {
        Some(h) if h["eventCoding"]["code"] == "dispense-notification" => {
            require(h, "MessageHeader", &["source"], &mut out)
        }
        Some(_) => out.push(Issue::error(
            "value",
            "INVALID_VALUE",
            "MessageHeader.eventCoding.code must be dispense-notification.",
        )),
        None => out.push(missing("MessageHeader")),
    }
    let dispenses = entries(body, "MedicationDispense");
    if dispenses.is_empty() {
        out.push(missing("MedicationDispense"));
    }
    for d in &dispenses {
        require(
            d,
            "MedicationDispense",
            &["medicationCodeableConcept", "subject"],
            &mut out,
        );
    }
    match entries(body, "Organization").first() {
        None => out.push(missing("Organization")),
        Some(org) => {
            require(
                org,
                "Organization",
                &["name", "address", "telecom"],
                &mut out,
            );
            let authority = org["extension"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|x| x["extension"].as_array().into_iter().flatten())
                .find(|x| x["url"] == "reimbursementAuthority");
            match authority {
                None => out.push(Issue::error("invalid", "MISSING_FIELD", "The dispense notification is missing the reimbursement authority and it should be provided.")),
                Some(a) if a["valueIdentifier"]["value"].as_str().is_none_or(str::is_empty) => out.push(Issue::error("invalid", "MISSING_FIELD", "The dispense notification is missing the ODS code for the reimbursement authority and it should be provided.")),
                Some(_) => {}
            }
        }
    }
    let id = dispenses
        .first()
        .and_then(|d| d["contained"].as_array())
        .into_iter()
        .flatten()
        .find(|c| c["resourceType"] == "MedicationRequest")
        .and_then(|mr| mr["groupIdentifier"]["value"].as_str());
    finish(out, id)
}

fn finish(out: Vec<Issue>, id: Option<&str>) -> Result<String, Vec<Issue>> {
    match (out.is_empty(), id) {
        (true, Some(id)) => Ok(id.into()),
        (true, None) => Err(vec![missing("groupIdentifier.value")]),
        (false, _) => Err(out),
    }
}

/// A return (`status` `rejected`) or a withdraw (`in-progress`, with `code`). Answers the
/// short-form id and whether it is a withdraw.
pub fn task(body: &Value) -> Result<(String, bool), Vec<Issue>> {
    if let Some(i) = resource_type(body, "Task") {
        return Err(vec![i]);
    }
    let mut out = Vec::new();
    require(
        body,
        "Task",
        &[
            "identifier",
            "status",
            "intent",
            "groupIdentifier",
            "focus",
            "for",
            "statusReason",
        ],
        &mut out,
    );
    let withdraw = body["status"] == "in-progress";
    let reason_system = if withdraw {
        "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-withdraw-reason"
    } else {
        "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-return-status-reason"
    };
    match body["status"].as_str() {
        Some("in-progress" | "rejected") | None => {}
        Some(_) => out.push(Issue::error(
            "value",
            "INVALID_VALUE",
            "Task.status must be one of: 'in-progress', 'rejected'",
        )),
    }
    if withdraw && body.get("code").is_none() {
        out.push(Issue::error(
            "value",
            "MISSING_FIELD",
            "Task.code is required when Task.status is 'in-progress'.",
        ));
    }
    let reason = &body["statusReason"]["coding"][0];
    if body.get("statusReason").is_some()
        && (reason["system"] != reason_system || reason["code"].as_str().is_none())
    {
        out.push(Issue::error("value", "INVALID_VALUE", &format!("Task.statusReason must have a system of '{reason_system}' and a value from that system.")));
    }
    finish(out, body["groupIdentifier"]["value"].as_str()).map(|id| (id, withdraw))
}

/// The claim. Answers the short-form id.
pub fn claim(body: &Value) -> Result<String, Vec<Issue>> {
    if let Some(i) = resource_type(body, "Claim") {
        return Err(vec![i]);
    }
    let mut out = Vec::new();
    let required = [
        "contained",
        "created",
        "status",
        "type",
        "use",
        "patient",
        "provider",
        "priority",
        "insurance",
        "payee",
        "prescription",
        "item",
    ];
    require(body, "Claim", &required, &mut out);
    let details = body["item"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| i["detail"].as_array().into_iter().flatten());
    for d in details {
        let endorsed = d["programCode"].as_array().into_iter().flatten().any(|p| {
            p["coding"][0]["system"]
                == "https://fhir.nhs.uk/CodeSystem/medicationdispense-endorsement"
        });
        if !endorsed {
            out.push(Issue::error(
                "invalid",
                "MISSING_FIELD",
                "The claim is missing the required endorsement code.",
            ));
        }
    }
    let id = body["prescription"]["extension"][0]["extension"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|x| x["url"] == "shortForm")
        .and_then(|x| x["valueIdentifier"]["value"].as_str());
    finish(out, id)
}
