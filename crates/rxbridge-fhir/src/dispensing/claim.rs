//! The reimbursement `Claim` for a dispensed prescription: the charge exemption from the
//! project's NHS table (`rxbridge_domain::nhs`), whether evidence was seen, and per line item
//! its status, what the patient paid, the endorsement and what was supplied.

use rxbridge_domain::nhs::Exemption;

use super::codes::{
    BUSINESS_STATUS_EXT, Charge, DISPENSE_ITEM_ID, EXEMPTION, EXEMPTION_EVIDENCE, LINE_ITEM_ID,
    LONG_FORM_ID, LineStatus, NHS_NUMBER, ODS, PrescriptionStatus, RFC4122, SHORT_FORM_ID, SNOMED,
    no_endorsement,
};
use super::resources::{Claim, ClaimItem, Contained, Insurance, Payee};
use super::types::{CodeableConcept, Coding, Extension, Identifier, Quantity, Reference};
use super::{Dispenser, Released};

/// The exemption code of a patient who paid the charge.
pub const PAID: &str = "0001";

/// One dispensed line item as claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedItem {
    pub line_id: String,
    /// The `prescription-dispense-item-number` of the notification that supplied it.
    pub dispense_id: String,
    /// A UUID for this claim line (`claim-sequence-identifier`).
    pub sequence_id: String,
    pub status: LineStatus,
    pub quantity: Quantity,
    /// The endorsement; none is `NDEC` (no endorsement).
    pub endorsement: Option<Coding>,
    /// Charges paid for the item when not exempt (one, or two for an item charged twice).
    pub charges_paid: u8,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClaimInput<'a> {
    pub id: &'a str,
    pub created: &'a str,
    pub prescription: &'a Released,
    pub status: PrescriptionStatus,
    /// The exemption declared, as the NHS table holds it (`0001` = paid).
    pub exemption: &'a Exemption,
    pub evidence_seen: bool,
    pub items: Vec<ClaimedItem>,
}

/// What the patient paid for an item: nothing when exempt, else the charges paid.
pub fn charge_for(exemption: &Exemption, charges_paid: u8) -> Result<Charge, String> {
    match (exemption.code == PAID, charges_paid) {
        (false, 0) => Ok(Charge::NotPaid),
        (false, _) => Err(format!(
            "exemption {} is not a paid charge, but charges were paid",
            exemption.code
        )),
        (true, 1) => Ok(Charge::PaidOnce),
        (true, 2) => Ok(Charge::PaidTwice),
        (true, n) => Err(format!("{n} charges paid for one item (one or two)")),
    }
}

/// Builds the claim. An error names a line item the prescription does not have, or charges
/// that contradict the exemption.
pub fn claim(c: &ClaimInput<'_>, dispenser: &Dispenser) -> Result<Claim, String> {
    let p = c.prescription;
    let mut exemption_codes = vec![CodeableConcept::of(Coding::new(
        EXEMPTION,
        &c.exemption.code,
        Some(&c.exemption.meaning),
    ))];
    if c.evidence_seen && c.exemption.code != PAID {
        exemption_codes.push(CodeableConcept::of(Coding::new(
            EXEMPTION_EVIDENCE,
            "evidence-seen",
            Some("Evidence Seen"),
        )));
    }
    let mut detail = Vec::new();
    for (n, item) in c.items.iter().enumerate() {
        let line = p.item(&item.line_id).ok_or_else(|| {
            format!(
                "prescription {} has no line item {}",
                p.short_form_id, item.line_id
            )
        })?;
        let product = line.medication_codeable_concept.clone();
        let charge = charge_for(c.exemption, item.charges_paid)?;
        detail.push(ClaimItem {
            extension: vec![
                Extension::identifier(
                    "https://fhir.nhs.uk/StructureDefinition/Extension-ClaimSequenceIdentifier",
                    Identifier::new("https://fhir.nhs.uk/Id/claim-sequence-identifier", &item.sequence_id),
                ),
                Extension::reference(
                    "https://fhir.nhs.uk/StructureDefinition/Extension-ClaimMedicationRequestReference",
                    Reference::by_id(Identifier::new(LINE_ITEM_ID, &item.line_id)),
                ),
            ],
            sequence: n as u32 + 1,
            product_or_service: product.clone(),
            modifier: vec![CodeableConcept::of(item.status.coding())],
            program_code: vec![
                CodeableConcept::of(charge.coding()),
                CodeableConcept::of(item.endorsement.clone().unwrap_or_else(no_endorsement)),
            ],
            quantity: Some(item.quantity.clone()),
            sub_detail: vec![ClaimItem {
                extension: vec![Extension::reference(
                    "https://fhir.nhs.uk/StructureDefinition/Extension-ClaimMedicationDispenseReference",
                    Reference::by_id(Identifier::new(DISPENSE_ITEM_ID, &item.dispense_id)),
                )],
                sequence: 1,
                product_or_service: product,
                quantity: Some(item.quantity.clone()),
                ..Default::default()
            }],
            ..Default::default()
        });
    }
    let mut group = vec![Extension::identifier(
        "shortForm",
        Identifier::new(SHORT_FORM_ID, &p.short_form_id),
    )];
    if let Some(long) = &p.long_form_id {
        group.push(Extension::identifier(
            "UUID",
            Identifier::new(LONG_FORM_ID, long),
        ));
    }
    Ok(Claim {
        id: Some(c.id.into()),
        contained: vec![
            Contained::PractitionerRole(Box::new(
                dispenser.role("provider", Some("#organisation")),
            )),
            Contained::Organization(Box::new(dispenser.organization(Some("organisation")))),
        ],
        identifier: vec![Identifier::new(RFC4122, c.id)],
        status: "active".into(),
        type_: CodeableConcept::of(Coding::new(
            "http://terminology.hl7.org/CodeSystem/claim-type",
            "pharmacy",
            Some("Pharmacy"),
        )),
        use_: "claim".into(),
        patient: Reference::by_id(Identifier::new(NHS_NUMBER, &p.nhs_number)),
        created: c.created.into(),
        provider: Reference::to("#provider"),
        priority: CodeableConcept::of(Coding::new(
            "http://terminology.hl7.org/CodeSystem/processpriority",
            "normal",
            None,
        )),
        insurance: vec![Insurance {
            sequence: Some(1),
            focal: Some(true),
            coverage: Some(Reference::by_id(Identifier::new(
                ODS,
                &dispenser.reimbursement_authority,
            ))),
        }],
        payee: Some(Payee {
            type_: Some(CodeableConcept::of(Coding::new(
                "http://terminology.hl7.org/CodeSystem/payeetype",
                "provider",
                Some("Provider"),
            ))),
            party: Some(Reference::to("#organisation")),
        }),
        prescription: Some(Reference {
            extension: vec![Extension::nested(
                "https://fhir.nhs.uk/StructureDefinition/Extension-DM-GroupIdentifier",
                group,
            )],
            display: Some("A prescription order".into()),
            ..Default::default()
        }),
        item: vec![ClaimItem {
            extension: vec![Extension::coding(BUSINESS_STATUS_EXT, c.status.coding())],
            sequence: 1,
            product_or_service: Some(CodeableConcept::of(Coding::new(
                SNOMED,
                "16076005",
                Some("Prescription"),
            ))),
            program_code: exemption_codes,
            detail,
            ..Default::default()
        }],
        ..Default::default()
    })
}
