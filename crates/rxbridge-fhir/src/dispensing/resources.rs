//! The FHIR R4 resources of the dispensing messages (release request, dispense notification,
//! return, withdraw, claim), read and written with every element the specification names.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::types::{
    Address, CodeableConcept, Coding, ContactPoint, Dosage, Extension, Identifier, Period,
    Quantity, Reference,
};

fn no(v: &[impl Sized]) -> bool {
    v.is_empty()
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "no")]
    pub identifier: Vec<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(rename = "type", default, skip_serializing_if = "no")]
    pub type_: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub telecom: Vec<ContactPoint>,
    #[serde(default, skip_serializing_if = "no")]
    pub address: Vec<Address>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PractitionerRole {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub identifier: Vec<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub practitioner: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization: Option<Reference>,
    #[serde(default, skip_serializing_if = "no")]
    pub code: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "no")]
    pub telecom: Vec<ContactPoint>,
}

/// `groupIdentifier` with the long-form prescription id extension.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GroupIdentifier {
    #[serde(default, skip_serializing_if = "no")]
    pub extension: Vec<Extension>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispenseRequest {
    #[serde(default, skip_serializing_if = "no")]
    pub extension: Vec<Extension>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_period: Option<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub number_of_repeats_allowed: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_supply_duration: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub performer: Option<Reference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Substitution {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_boolean: Option<bool>,
}

/// A prescription line item, as the dispense notification carries it (contained in each
/// `MedicationDispense`) and as a released `prescription-order` message holds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "no")]
    pub identifier: Vec<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub category: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medication_codeable_concept: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authored_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester: Option<Reference>,
    #[serde(default, skip_serializing_if = "no")]
    pub based_on: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_identifier: Option<GroupIdentifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub course_of_therapy_type: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "no")]
    pub dosage_instruction: Vec<Dosage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispense_request: Option<DispenseRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substitution: Option<Substitution>,
}

/// A resource contained in a `MedicationDispense`, `Task` or `Claim`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType")]
pub enum Contained {
    PractitionerRole(Box<PractitionerRole>),
    Organization(Box<Organization>),
    MedicationRequest(Box<MedicationRequest>),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Performer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<Reference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationDispense {
    #[serde(default, skip_serializing_if = "no")]
    pub contained: Vec<Contained>,
    #[serde(default, skip_serializing_if = "no")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "no")]
    pub identifier: Vec<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason_codeable_concept: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medication_codeable_concept: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<Reference>,
    #[serde(default, skip_serializing_if = "no")]
    pub performer: Vec<Performer>,
    #[serde(default, skip_serializing_if = "no")]
    pub authorizing_prescription: Vec<Reference>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when_handed_over: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub dosage_instruction: Vec<Dosage>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Endpoint {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver: Option<Reference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageHeader {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_coding: Option<Coding>,
    #[serde(default, skip_serializing_if = "no")]
    pub destination: Vec<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Endpoint>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Response>,
    #[serde(default, skip_serializing_if = "no")]
    pub focus: Vec<Reference>,
}

/// An entry resource of a dispense-notification message Bundle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType")]
pub enum MessageResource {
    MessageHeader(Box<MessageHeader>),
    MedicationDispense(Box<MedicationDispense>),
    Organization(Box<Organization>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    pub resource: MessageResource,
}

/// A FHIR message Bundle (the dispense notification).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Bundle")]
pub struct MessageBundle {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "no")]
    pub entry: Vec<MessageEntry>,
}

/// A `Task`: the dispensing return (`status` `rejected`) or withdraw (`in-progress`, code `abort`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Task", rename_all = "camelCase")]
pub struct Task {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub contained: Vec<Contained>,
    #[serde(default, skip_serializing_if = "no")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "no")]
    pub identifier: Vec<Identifier>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<CodeableConcept>,
    pub intent: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focus: Option<Reference>,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authored_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requester: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason_code: Option<CodeableConcept>,
}

/// One `Parameters.parameter` of the release request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameter {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<Contained>,
}

/// The `Task/$release` request body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Parameters")]
pub struct Parameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub parameter: Vec<Parameter>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Insurance {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub focal: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Reference>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Payee {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub party: Option<Reference>,
}

/// `Claim.item`, `.detail` and `.subDetail` share these elements.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimItem {
    #[serde(default, skip_serializing_if = "no")]
    pub extension: Vec<Extension>,
    pub sequence: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_or_service: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "no")]
    pub modifier: Vec<CodeableConcept>,
    #[serde(default, skip_serializing_if = "no")]
    pub program_code: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    #[serde(default, skip_serializing_if = "no")]
    pub detail: Vec<ClaimItem>,
    #[serde(default, skip_serializing_if = "no")]
    pub sub_detail: Vec<ClaimItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Claim", rename_all = "camelCase")]
pub struct Claim {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "no")]
    pub contained: Vec<Contained>,
    #[serde(default, skip_serializing_if = "no")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "no")]
    pub identifier: Vec<Identifier>,
    pub status: String,
    #[serde(rename = "type")]
    pub type_: CodeableConcept,
    #[serde(rename = "use")]
    pub use_: String,
    pub patient: Reference,
    pub created: String,
    pub provider: Reference,
    pub priority: CodeableConcept,
    #[serde(default, skip_serializing_if = "no")]
    pub insurance: Vec<Insurance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee: Option<Payee>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prescription: Option<Reference>,
    #[serde(default, skip_serializing_if = "no")]
    pub item: Vec<ClaimItem>,
}

/// The `Task/$release` answer: `passedPrescriptions` and `failedPrescriptions`, each a
/// searchset Bundle. A passed entry is a `prescription-order` message Bundle, kept as JSON for
/// the crate's prescription-order mapping (`crate::map_order`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Parameters")]
pub struct ReleaseResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub parameter: Vec<ReleaseParameter>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReleaseParameter {
    pub name: String,
    pub resource: SearchBundle,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Bundle")]
pub struct SearchBundle {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(default, skip_serializing_if = "no")]
    pub link: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    #[serde(default, skip_serializing_if = "no")]
    pub entry: Vec<SearchEntry>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<Value>,
    pub resource: Value,
}
