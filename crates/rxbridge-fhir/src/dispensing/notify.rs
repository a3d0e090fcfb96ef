//! The dispense notification: a `dispense-notification` message Bundle with one
//! `MedicationDispense` per line item of the released prescription, and the pharmacy.

use super::codes::{
    BUSINESS_STATUS_EXT, DISPENSE_ITEM_ID, LineStatus, NHS_NUMBER, NON_DISPENSING_EXT,
    NotDispensedReason, ODS, PrescriptionStatus, REIMBURSEMENT_EXT, RFC4122,
};
use super::resources::{
    Contained, Endpoint, MedicationDispense, MessageBundle, MessageEntry, MessageHeader,
    MessageResource, Performer, Response,
};
use super::types::{CodeableConcept, Coding, Extension, Identifier, Quantity, Reference};
use super::{Dispenser, Released};

/// The `MedicationRequest` extensions a dispense notification carries.
const LINE_EXTENSIONS: &[&str] = &[
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-ControlledDrug",
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-ResponsiblePractitioner",
    "https://fhir.nhs.uk/StructureDefinition/Extension-EPS-DispensingInformation",
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-MedicationRepeatInformation",
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionType",
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionEndorsement",
];

/// What was handed over (or not) for one released line item.
#[derive(Debug, Clone, PartialEq)]
pub struct DispensedItem {
    /// The line item's `prescription-order-item-number`.
    pub line_id: String,
    /// A new UUID for this dispense of the line (`prescription-dispense-item-number`).
    pub dispense_id: String,
    pub status: LineStatus,
    /// The quantity supplied (value, unit, SNOMED unit code); none when nothing was supplied.
    pub quantity: Option<Quantity>,
    pub not_dispensed_reason: Option<NotDispensedReason>,
}

/// One dispense notification: its id (a UUID, the message's and the Bundle's), the time the
/// parcel was handed over, the prescription's new status, and every line item.
#[derive(Debug, Clone, PartialEq)]
pub struct Dispatch<'a> {
    pub id: &'a str,
    /// UUIDs of the `MessageHeader` and the pharmacy's `Organization` entries.
    pub header_id: &'a str,
    pub organization_id: &'a str,
    pub handed_over: &'a str,
    pub prescription: &'a Released,
    pub status: PrescriptionStatus,
    pub items: Vec<DispensedItem>,
}

/// Builds the notification. An error names a line item the prescription does not have.
pub fn dispense_notification(
    d: &Dispatch<'_>,
    dispenser: &Dispenser,
) -> Result<MessageBundle, String> {
    let org_url = format!("urn:uuid:{}", d.organization_id);
    let mut entry = Vec::new();
    let mut focus = Vec::new();
    for item in &d.items {
        let line = d.prescription.item(&item.line_id).ok_or_else(|| {
            format!(
                "prescription {} has no line item {}",
                d.prescription.short_form_id, item.line_id
            )
        })?;
        let mut request = line.clone();
        request.id = Some("m1".into());
        // The notification repeats the line item with only the extensions it allows (the
        // release's status history, for one, stays out).
        request
            .extension
            .retain(|x| LINE_EXTENSIONS.contains(&x.url.as_str()));
        let url = format!("urn:uuid:{}", item.dispense_id);
        focus.push(Reference::to(&url));
        let mut extension = vec![Extension::coding(BUSINESS_STATUS_EXT, d.status.coding())];
        if let Some(reason) = item.not_dispensed_reason {
            extension.push(Extension::coding(NON_DISPENSING_EXT, reason.coding()));
        }
        let dispense = MedicationDispense {
            contained: vec![
                Contained::PractitionerRole(Box::new(dispenser.role("performer", Some(&org_url)))),
                Contained::MedicationRequest(Box::new(request)),
            ],
            extension,
            identifier: vec![Identifier::new(DISPENSE_ITEM_ID, &item.dispense_id)],
            status: Some("in-progress".into()),
            status_reason_codeable_concept: item
                .not_dispensed_reason
                .map(|r| CodeableConcept::of(r.coding())),
            medication_codeable_concept: line.medication_codeable_concept.clone(),
            subject: Some(Reference {
                type_: Some("Patient".into()),
                identifier: Some(Identifier::new(NHS_NUMBER, &d.prescription.nhs_number)),
                display: d.prescription.patient_name.clone(),
                ..Default::default()
            }),
            performer: vec![Performer {
                actor: Some(Reference::to("#performer")),
            }],
            authorizing_prescription: vec![Reference::to("#m1")],
            type_: Some(CodeableConcept::of(item.status.coding())),
            quantity: item.quantity.clone(),
            when_handed_over: Some(d.handed_over.into()),
            dosage_instruction: line.dosage_instruction.clone(),
        };
        entry.push(MessageEntry {
            full_url: Some(url),
            resource: MessageResource::MedicationDispense(Box::new(dispense)),
        });
    }
    let header = MessageHeader {
        event_coding: Some(Coding::new(
            "https://fhir.nhs.uk/CodeSystem/message-event",
            "dispense-notification",
            Some("Dispense Notification"),
        )),
        sender: Some(Reference {
            identifier: Some(Identifier::new(ODS, &dispenser.ods_code)),
            display: Some(dispenser.name.clone()),
            ..Default::default()
        }),
        source: Some(Endpoint {
            endpoint: Some(format!(
                "https://directory.spineservices.nhs.uk/STU3/Organization/{}",
                dispenser.ods_code
            )),
            ..Default::default()
        }),
        reason: Some(CodeableConcept::of(Coding::new(
            "https://fhir.nhs.uk/CodeSystem/message-reason-prescription",
            "notification",
            Some("Notification"),
        ))),
        response: Some(Response {
            identifier: Some(d.prescription.release_id.clone()),
            code: Some("ok".into()),
        }),
        focus,
        ..Default::default()
    };
    let mut organization = dispenser.organization(None);
    organization.extension = vec![Extension::nested(
        REIMBURSEMENT_EXT,
        vec![Extension::identifier(
            "reimbursementAuthority",
            Identifier::new(ODS, &dispenser.reimbursement_authority),
        )],
    )];
    entry.insert(
        0,
        MessageEntry {
            full_url: Some(format!("urn:uuid:{}", d.header_id)),
            resource: MessageResource::MessageHeader(Box::new(header)),
        },
    );
    entry.push(MessageEntry {
        full_url: Some(org_url),
        resource: MessageResource::Organization(Box::new(organization)),
    });
    Ok(MessageBundle {
        id: Some(d.id.into()),
        timestamp: Some(d.handed_over.into()),
        identifier: Some(Identifier::new(RFC4122, d.id)),
        type_: "message".into(),
        entry,
    })
}
