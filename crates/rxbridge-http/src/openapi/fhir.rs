//! The FHIR front door's shapes as OpenAPI schemas: the EPS `prescription-order` message
//! Bundle (only what the intake reads is described; FHIR elements beyond it are allowed), the
//! `OperationOutcome` answers and the `CapabilityStatement`.

#![allow(dead_code)] // the fields exist for the schema

use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct FhirIdentifier {
    pub system: Option<String>,
    pub value: String,
}

/// An NHS EPS `prescription-order` message: a `Bundle` of type `message` whose first entry is
/// the `MessageHeader` (eventCoding `prescription-order`), then one `MedicationRequest` per item
/// (dm+d code in `medicationCodeableConcept`, `dosageInstruction[0].text`, `dispenseRequest`,
/// the controlled-drug extension with `quantityWords`), the `Patient`, the signing
/// `PractitionerRole` with its `Practitioner` and `Organization`, and the `Provenance`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({"resourceType": "Bundle", "type": "message", "identifier": {"system": "https://tools.ietf.org/html/rfc4122", "value": "3b87cba2-c349-468a-ab96-5e1c7457a4b6"}, "entry": [{"fullUrl": "urn:uuid:2c251ced-dc17-47ff-bd2f-36f4b8c27dda", "resource": {"resourceType": "MessageHeader", "eventCoding": {"system": "https://fhir.nhs.uk/CodeSystem/message-event", "code": "prescription-order"}}}]}))]
pub struct PrescriptionOrderBundle {
    /// `Bundle`.
    #[schema(example = "Bundle")]
    pub resource_type: String,
    /// `message`.
    #[serde(rename = "type")]
    #[schema(example = "message")]
    pub kind: String,
    /// `value` is the message id: the idempotency key.
    pub identifier: FhirIdentifier,
    pub entry: Vec<BundleEntry>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    pub full_url: Option<String>,
    /// A FHIR R4 resource (`resourceType` names which).
    #[schema(value_type = Object)]
    pub resource: Value,
}

/// A FHIR R4 `OperationOutcome`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    #[schema(example = "OperationOutcome")]
    pub resource_type: String,
    pub issue: Vec<OperationOutcomeIssue>,
}

#[derive(Serialize, ToSchema)]
pub struct OperationOutcomeIssue {
    /// `error` for a problem; `information` on the 201 answer.
    #[schema(example = "error")]
    pub severity: String,
    /// FHIR IssueType: `required`, `value`, `code-invalid`, `structure`, `business-rule`, ...
    #[schema(example = "code-invalid")]
    pub code: String,
    /// On 201: the prescription id. On an error: rxbridge's stable code (the JSON API's codes, plus `unknown_product`, `invalid_intent`, `mixed_course_of_therapy`, ...).
    pub diagnostics: String,
    pub details: IssueDetails,
    /// FHIRPath into the submitted Bundle of the element at fault (on errors that have one).
    pub expression: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct IssueDetails {
    pub text: String,
}

/// A FHIR R4 `CapabilityStatement`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityStatement {
    #[schema(example = "CapabilityStatement")]
    pub resource_type: String,
    #[schema(example = "4.0.1")]
    pub fhir_version: String,
    #[schema(example = "active")]
    pub status: String,
    pub kind: String,
    pub format: Vec<String>,
    #[schema(value_type = Vec<Object>)]
    pub rest: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub messaging: Vec<Value>,
}

/// A refused message, as the OpenAPI example shows it: the answer to the NHS's published
/// Schedule 2 example (a test checks it is what the intake answers).
pub fn example_refused() -> Value {
    let unknown = |entry: u32, code: &str, name: &str| {
        json!({
            "severity": "error",
            "code": "code-invalid",
            "diagnostics": "unknown_product",
            "details": {"text": format!("dm+d code {code} ({name}) is not a formulary product; GET /v1/formulary lists each product's dm+d codes")},
            "expression": [format!("Bundle.entry[{entry}].resource.medicationCodeableConcept.coding[0].code")],
        })
    };
    json!({
        "resourceType": "OperationOutcome",
        "issue": [
            unknown(1, "36126511000001106", "Morphine 10mg modified-release tablets"),
            unknown(2, "321196004", "Diazepam 2mg tablets"),
        ],
    })
}
