//! The pharmacy's side of the NHS EPS dispensing API, as messages: the `Task/$release` request
//! for the nominated pharmacy and its answer (the released `prescription-order` Bundles, read by
//! the crate's prescription-order mapping), the dispense notification, the return and withdraw
//! `Task`s with their coded reasons, and the `Claim`. Transport (auth, retries) is not here.
//!
//! The resource types (`resources`, `types`) keep every element the dispensing specification
//! names, so the NHS's published examples parse and serialise back without losing an element
//! the specification requires (tested). The builders take the released prescription
//! (`Released`), who dispenses (`Dispenser`) and what was done; ids and times are the caller's,
//! so a retried message is the same message.

pub mod claim;
pub mod codes;
pub mod notify;
pub mod release;
pub mod resources;
pub mod task;
pub mod types;

use serde_json::Value;

use codes::{ODS, ORG_ROLE, SDS_JOB_ROLE, SDS_ROLE_PROFILE, SDS_USER};
use resources::{MedicationRequest, Organization, PractitionerRole};
use types::{Address, CodeableConcept, Coding, ContactPoint, Identifier, Reference};

pub use claim::{ClaimInput, ClaimedItem, claim};
pub use notify::{Dispatch, DispensedItem, dispense_notification};
pub use release::{Release, release_request};
pub use task::{return_task, withdraw_task};

/// The pharmacy (its ODS code and the details EPS asks for) and the person or system acting
/// for it (an SDS role profile).
#[derive(Debug, Clone, PartialEq)]
pub struct Dispenser {
    pub ods_code: String,
    pub name: String,
    pub address_lines: Vec<String>,
    pub city: String,
    pub postcode: String,
    pub phone: String,
    /// ODS code of the commissioner that reimburses the pharmacy (e.g. NHSBSA's `T1450`).
    pub reimbursement_authority: String,
    pub agent: Agent,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub role_profile_id: String,
    pub user_id: String,
    pub name: String,
    pub job_role_code: String,
    pub phone: String,
}

impl Dispenser {
    pub(crate) fn organization(&self, id: Option<&str>) -> Organization {
        Organization {
            id: id.map(Into::into),
            identifier: vec![Identifier::new(ODS, &self.ods_code)],
            active: Some(true),
            type_: vec![CodeableConcept::of(Coding::new(
                ORG_ROLE,
                "182",
                Some("PHARMACY"),
            ))],
            name: Some(self.name.clone()),
            telecom: vec![phone(&self.phone)],
            address: vec![Address {
                use_: Some("work".into()),
                line: self.address_lines.clone(),
                city: Some(self.city.clone()),
                postal_code: Some(self.postcode.clone()),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    pub(crate) fn role(&self, id: &str, organization: Option<&str>) -> PractitionerRole {
        let a = &self.agent;
        PractitionerRole {
            id: Some(id.into()),
            identifier: vec![Identifier::new(SDS_ROLE_PROFILE, &a.role_profile_id)],
            practitioner: Some(Reference {
                identifier: Some(Identifier::new(SDS_USER, &a.user_id)),
                display: Some(a.name.clone()),
                ..Default::default()
            }),
            organization: organization.map(Reference::to),
            code: vec![CodeableConcept::of(Coding::new(
                SDS_JOB_ROLE,
                &a.job_role_code,
                None,
            ))],
            telecom: vec![phone(&a.phone)],
        }
    }
}

fn phone(value: &str) -> ContactPoint {
    ContactPoint {
        system: Some("phone".into()),
        use_: Some("work".into()),
        value: Some(value.into()),
    }
}

/// A prescription as EPS released it: what the dispensing messages about it must repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct Released {
    /// `Parameters.id` of the release answer that carried it (the return's and the
    /// notification's `focus` / `response`).
    pub release_id: String,
    pub short_form_id: String,
    pub long_form_id: Option<String>,
    pub nhs_number: String,
    pub patient_name: Option<String>,
    pub intent: String,
    /// The line items, in message order.
    pub items: Vec<MedicationRequest>,
}

impl Released {
    /// Reads a released `prescription-order` message Bundle. An error names what is missing.
    pub fn from_bundle(release_id: &str, bundle: &Value) -> Result<Released, String> {
        let entries = bundle["entry"]
            .as_array()
            .ok_or("the Bundle has no entry")?;
        let resource = |full_url: &str| {
            entries
                .iter()
                .find(|e| e["fullUrl"] == full_url)
                .map(|e| &e["resource"])
        };
        let mut items = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            if e["resource"]["resourceType"] == "MedicationRequest" {
                let mut mr: MedicationRequest = serde_json::from_value(e["resource"].clone())
                    .map_err(|err| format!("Bundle.entry[{i}].resource: {err}"))?;
                // The notification carries the requester by its role profile id, not by a
                // reference into a Bundle it does not contain.
                if let Some(role) = mr
                    .requester
                    .as_ref()
                    .and_then(|r| r.reference.as_deref())
                    .and_then(resource)
                {
                    let id = identifier_of(role, SDS_ROLE_PROFILE);
                    mr.requester =
                        id.map(|v| Reference::by_id(Identifier::new(SDS_ROLE_PROFILE, &v)));
                }
                items.push(mr);
            }
        }
        let first = items.first().ok_or("the Bundle has no MedicationRequest")?;
        let group = first
            .group_identifier
            .as_ref()
            .ok_or("MedicationRequest.groupIdentifier is missing")?;
        let short_form_id = group
            .value
            .clone()
            .ok_or("MedicationRequest.groupIdentifier.value is missing")?;
        let long_form_id = group
            .extension
            .iter()
            .find(|x| x.url == codes::LONG_FORM_ID_EXT)
            .and_then(|x| x.value_identifier.as_ref()?.value.clone());
        let patient = first
            .subject
            .as_ref()
            .and_then(|s| s.reference.as_deref())
            .and_then(resource)
            .ok_or("MedicationRequest.subject names no Patient in the Bundle")?;
        let nhs_number =
            identifier_of(patient, codes::NHS_NUMBER).ok_or("the Patient has no NHS number")?;
        let patient_name = patient["name"][0]["family"].as_str().map(|family| {
            let given: Vec<&str> = patient["name"][0]["given"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            let prefix = patient["name"][0]["prefix"][0].as_str();
            prefix
                .into_iter()
                .chain(given)
                .chain([family])
                .collect::<Vec<_>>()
                .join(" ")
        });
        let intent = first.intent.clone().unwrap_or_else(|| "order".into());
        for mr in &mut items {
            mr.subject = Some(Reference {
                identifier: Some(Identifier::new(codes::NHS_NUMBER, &nhs_number)),
                display: patient_name.clone(),
                ..Default::default()
            });
        }
        Ok(Released {
            release_id: release_id.into(),
            short_form_id,
            long_form_id,
            nhs_number,
            patient_name,
            intent,
            items,
        })
    }

    /// The line item with this `prescription-order-item-number`.
    pub fn item(&self, line_id: &str) -> Option<&MedicationRequest> {
        self.items.iter().find(|mr| {
            mr.identifier
                .iter()
                .any(|i| i.value.as_deref() == Some(line_id))
        })
    }
}

fn identifier_of(resource: &Value, system: &str) -> Option<String> {
    resource["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"] == system)
        .and_then(|i| i["value"].as_str())
        .map(Into::into)
}
