//! The return (a released prescription given back to EPS undispensed) and the withdraw (a
//! dispense notification taken back), each a `Task` with its coded reason.

use super::codes::{
    NHS_NUMBER, ODS, RFC4122, ReturnReason, SHORT_FORM_ID, SNOMED, TASK_CODE, WithdrawReason,
};
use super::resources::{Contained, Task};
use super::types::{CodeableConcept, Coding, Identifier, Reference};
use super::{Dispenser, Released};

fn base(id: &str, authored_on: &str, p: &Released, dispenser: &Dispenser, org_id: &str) -> Task {
    let mut organization = dispenser.organization(Some(org_id));
    organization.id = Some(org_id.into());
    Task {
        id: Some(id.into()),
        contained: vec![
            Contained::PractitionerRole(Box::new(
                dispenser.role("requester", Some(&format!("#{org_id}"))),
            )),
            Contained::Organization(Box::new(organization)),
        ],
        identifier: vec![Identifier::new(RFC4122, id)],
        intent: p.intent.clone(),
        group_identifier: Some(Identifier::new(SHORT_FORM_ID, &p.short_form_id)),
        for_: Some(Reference::by_id(Identifier::new(NHS_NUMBER, &p.nhs_number))),
        authored_on: Some(authored_on.into()),
        requester: Some(Reference::to("#requester")),
        ..Default::default()
    }
}

/// Returns a released prescription to EPS, so another pharmacy can dispense it.
pub fn return_task(
    id: &str,
    authored_on: &str,
    p: &Released,
    reason: ReturnReason,
    dispenser: &Dispenser,
) -> Task {
    Task {
        status: "rejected".into(),
        status_reason: Some(CodeableConcept::of(reason.coding())),
        code: Some(CodeableConcept::of(Coding::new(
            TASK_CODE,
            "fulfill",
            Some("Fulfill the focal request"),
        ))),
        focus: Some(Reference::by_id(Identifier::new(RFC4122, &p.release_id))),
        reason_code: Some(CodeableConcept::of(Coding::new(
            SNOMED,
            "33633005",
            Some("Prescription of drug"),
        ))),
        ..base(id, authored_on, p, dispenser, "organization")
    }
}

/// Withdraws the dispense notification whose message id is `notification_id`.
pub fn withdraw_task(
    id: &str,
    authored_on: &str,
    p: &Released,
    notification_id: &str,
    reason: WithdrawReason,
    dispenser: &Dispenser,
) -> Task {
    Task {
        status: "in-progress".into(),
        status_reason: Some(CodeableConcept::of(reason.coding())),
        code: Some(CodeableConcept::of(Coding::new(
            TASK_CODE,
            "abort",
            Some("Mark the focal resource as no longer active"),
        ))),
        focus: Some(Reference {
            type_: Some("Bundle".into()),
            identifier: Some(Identifier::new(RFC4122, notification_id)),
            ..Default::default()
        }),
        owner: Some(Reference::by_id(Identifier::new(ODS, &dispenser.ods_code))),
        reason_code: Some(CodeableConcept::of(Coding::new(
            SNOMED,
            "373784005",
            Some("Dispensing medication"),
        ))),
        ..base(id, authored_on, p, dispenser, "organisation")
    }
}
