//! The FHIR R4 data types of an EPS `prescription-order` message, hand-written for only the
//! resources and elements the mapping reads. Elements the mapping does not read are ignored
//! (FHIR resources carry many), so a message the NHS accepts is never refused for an element
//! rxbridge has no use for; a read element of the wrong type is an error at its path.

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    pub system: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    pub reference: Option<String>,
    pub identifier: Option<Identifier>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
    pub display: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct CodeableConcept {
    #[serde(default)]
    pub coding: Vec<Coding>,
    pub text: Option<String>,
}

/// An extension with the `value[x]` types EPS uses, and nested extensions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    pub url: String,
    pub value_string: Option<String>,
    pub value_coding: Option<Coding>,
    pub value_identifier: Option<Identifier>,
    #[serde(default)]
    pub extension: Vec<Extension>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quantity {
    pub value: Option<f64>,
    pub unit: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HumanName {
    pub family: Option<String>,
    #[serde(default)]
    pub given: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(rename = "use")]
    pub use_: Option<String>,
    #[serde(default)]
    pub line: Vec<String>,
    pub city: Option<String>,
    pub district: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ContactPoint {
    pub system: Option<String>,
    pub value: Option<String>,
}

/// The message: `Bundle` of type `message`, its entries kept raw until each is read by type.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub identifier: Option<Identifier>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    pub full_url: Option<String>,
    #[serde(default)]
    pub resource: Value,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageHeader {
    pub event_coding: Option<Coding>,
    pub sender: Option<Reference>,
    #[serde(default)]
    pub focus: Vec<Reference>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MedicationRequest {
    #[serde(default)]
    pub extension: Vec<Extension>,
    pub status: Option<String>,
    pub intent: Option<String>,
    pub medication_codeable_concept: Option<CodeableConcept>,
    pub subject: Option<Reference>,
    pub requester: Option<Reference>,
    pub authored_on: Option<String>,
    pub group_identifier: Option<Identifier>,
    pub course_of_therapy_type: Option<CodeableConcept>,
    #[serde(default)]
    pub dosage_instruction: Vec<Dosage>,
    pub dispense_request: Option<DispenseRequest>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Dosage {
    pub text: Option<String>,
    pub timing: Option<Timing>,
    #[serde(default)]
    pub dose_and_rate: Vec<DoseAndRate>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Timing {
    pub repeat: Option<TimingRepeat>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimingRepeat {
    pub frequency: Option<u32>,
    pub period: Option<f64>,
    pub period_unit: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoseAndRate {
    pub dose_quantity: Option<Quantity>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DispenseRequest {
    pub validity_period: Option<Period>,
    pub quantity: Option<Quantity>,
    pub expected_supply_duration: Option<Quantity>,
    pub number_of_repeats_allowed: Option<u32>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Period {
    pub start: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    #[serde(default)]
    pub identifier: Vec<Identifier>,
    #[serde(default)]
    pub name: Vec<HumanName>,
    pub birth_date: Option<String>,
    #[serde(default)]
    pub address: Vec<Address>,
    #[serde(default)]
    pub telecom: Vec<ContactPoint>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Practitioner {
    #[serde(default)]
    pub identifier: Vec<Identifier>,
    #[serde(default)]
    pub name: Vec<HumanName>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PractitionerRole {
    pub practitioner: Option<Reference>,
    pub organization: Option<Reference>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Organization {
    #[serde(default)]
    pub identifier: Vec<Identifier>,
    pub name: Option<String>,
    #[serde(default)]
    pub address: Vec<Address>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Provenance {
    #[serde(default)]
    pub target: Vec<Reference>,
    pub recorded: Option<String>,
}
