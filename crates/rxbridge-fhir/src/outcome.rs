//! The FHIR answers: `OperationOutcome` for a recorded message and for refused ones, and the
//! `CapabilityStatement` of the FHIR front door.

use crate::map::Issue;
use serde_json::{Value, json};

/// The answer to a recorded message: `issue[0].diagnostics` is the prescription id. Built
/// from the id alone, so a replay of the same message answers the same bytes.
pub fn recorded(prescription_id: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{
            "severity": "information",
            "code": "informational",
            "diagnostics": prescription_id,
            "details": {"text": format!("recorded as prescription {prescription_id}; GET /v1/prescriptions/{prescription_id} shows its status and findings")},
        }],
    })
}

/// Every problem of a refused message, each at its FHIRPath.
pub fn refused(issues: &[Issue]) -> Value {
    let issue: Vec<Value> = issues
        .iter()
        .map(|i| {
            json!({
                "severity": "error",
                "code": i.fhir_code,
                "diagnostics": i.code,
                "details": {"text": i.detail},
                "expression": [i.expression],
            })
        })
        .collect();
    json!({"resourceType": "OperationOutcome", "issue": issue})
}

/// One problem with no element to point at (a body that is not a Bundle, a refused key).
pub fn single(fhir_code: &str, code: &str, detail: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": fhir_code, "diagnostics": code, "details": {"text": detail}}],
    })
}

/// What the FHIR front door offers: `$process-message` for `prescription-order` messages.
pub fn capability_statement(software_version: &str) -> Value {
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "software": {"name": "rxbridge", "version": software_version},
        "implementation": {"description": "rxbridge clinic intake: NHS EPS prescription-order messages"},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "security": {"description": "Authorization: Bearer <the clinic's API key>, the same key as the JSON API"},
            "operation": [{
                "name": "process-message",
                "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
                "documentation": "POST /fhir/R4/$process-message: an EPS prescription-order message Bundle. 201 with Location and an OperationOutcome whose issue[0].diagnostics is the prescription id; 422 with every problem at its FHIRPath; 400 for JSON that is not a Bundle. Bundle.identifier.value is the idempotency key.",
            }],
        }],
        "messaging": [{
            "supportedMessage": [{"mode": "receiver", "definition": "https://fhir.nhs.uk/MessageDefinition/prescription-order"}],
        }],
    })
}
