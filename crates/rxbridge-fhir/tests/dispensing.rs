//! The dispensing model against the NHS's published dispensing examples and the dispensing
//! specification's schemas (both in `fixtures/eps`, unchanged).

mod spec;

use rxbridge_domain::nhs::NhsTables;
use rxbridge_fhir::DmdTable;
use rxbridge_fhir::dispensing::codes::{
    LineStatus, NotDispensedReason, PrescriptionStatus, ReturnReason, WithdrawReason,
};
use rxbridge_fhir::dispensing::resources::{
    Claim, MessageBundle, Parameters, ReleaseResponse, Task,
};
use rxbridge_fhir::dispensing::types::Quantity;
use rxbridge_fhir::dispensing::{
    Agent, ClaimInput, ClaimedItem, Dispatch, DispensedItem, Dispenser, Release, Released, claim,
    dispense_notification, release_request, return_task, withdraw_task,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

const RELEASE: (&str, &str) = (
    "requests/dispensing/Release.yaml",
    "#/components/schemas/Release",
);
const NOTIFICATION: (&str, &str) = ("requests/dispensing/DispenseNotification.yaml", "");
const RETURN: (&str, &str) = ("requests/dispensing/Return.yaml", "");
const WITHDRAW: (&str, &str) = ("requests/dispensing/Withdraw.yaml", "");
const CLAIM: (&str, &str) = ("requests/dispensing/DispenseClaim.yaml", "");

/// Parses `original` as `T`, serialises it back, and returns the required elements of the
/// original that the copy lost or changed (scalars compared by value, containers by kind).
fn lost<T: DeserializeOwned + Serialize>(
    schema: (&str, &str),
    original: &Value,
) -> (usize, Vec<String>) {
    let parsed: T = serde_json::from_value(original.clone()).expect("parses");
    let copy = serde_json::to_value(&parsed).unwrap();
    let required = spec::required_paths(schema.0, schema.1, original);
    let lost = required
        .iter()
        .filter(|p| {
            let (a, b) = (original.pointer(p), copy.pointer(p));
            match (a, b) {
                (Some(a), Some(b)) if a.is_object() || a.is_array() => {
                    a.is_object() != b.is_object() || a.is_array() != b.is_array()
                }
                (a, b) => a != b,
            }
        })
        .cloned()
        .collect();
    (required.len(), lost)
}

fn round_trip<T: DeserializeOwned + Serialize>(kind: &str, schema: (&str, &str), at_least: usize) {
    let examples = spec::examples(kind, "-req.json");
    assert!(!examples.is_empty(), "{kind}: no examples");
    for (name, original) in examples {
        let (required, lost) = lost::<T>(schema, &original);
        assert!(
            required >= at_least,
            "{kind}/{name}: only {required} required elements found"
        );
        assert!(
            lost.is_empty(),
            "{kind}/{name} lost required elements: {lost:?}"
        );
    }
}

#[test]
fn release_requests_round_trip_every_required_element() {
    round_trip::<Parameters>("release", RELEASE, 20);
}

#[test]
fn dispense_notifications_round_trip_every_required_element() {
    round_trip::<MessageBundle>("dispense-notification", NOTIFICATION, 40);
}

#[test]
fn returns_round_trip_every_required_element() {
    round_trip::<Task>("return", RETURN, 20);
}

#[test]
fn withdraws_round_trip_every_required_element() {
    round_trip::<Task>("withdraw", WITHDRAW, 20);
}

#[test]
fn claims_round_trip_every_required_element() {
    round_trip::<Claim>("claim", CLAIM, 30);
}

/// A model that keeps too little: the check must see what it drops.
#[derive(serde::Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct LossyClaim {
    resource_type: String,
    status: String,
    created: String,
}

#[test]
fn a_model_that_drops_required_elements_is_caught() {
    let original = spec::example("claim", "acute-primary-example-req.json");
    let (_, lost) = lost::<LossyClaim>(CLAIM, &original);
    for path in ["/payee", "/patient", "/insurance", "/item", "/prescription"] {
        assert!(
            lost.iter().any(|p| p == path),
            "{path} not reported: {lost:?}"
        );
    }
    assert!(
        !lost.iter().any(|p| p == "/status" || p == "/created"),
        "{lost:?}"
    );
}

#[test]
fn release_answers_parse_into_prescription_orders_the_mapping_reads() {
    for (name, body) in spec::examples("release", "-res.json") {
        let copy =
            serde_json::to_value(serde_json::from_value::<ReleaseResponse>(body.clone()).unwrap())
                .unwrap();
        assert_eq!(copy, body, "{name} serialises back unchanged");
        let release = Release::parse(&body).unwrap();
        assert!(!release.passed.is_empty(), "{name}");
        for released in release.prescriptions() {
            let p = released.unwrap();
            assert_eq!(p.release_id, body["id"].as_str().unwrap());
            assert_eq!(p.nhs_number.len(), 10);
            assert!(!p.items.is_empty());
        }
        // The examples' medicines are not in the formulary: each is refused at its dm+d code.
        for mapped in release.mapped(DmdTable::builtin()) {
            let m = mapped.unwrap();
            assert!(
                m.issues.iter().any(|i| i.code == "unknown_product"),
                "{name}: {:?}",
                m.issues
            );
        }
    }
}

#[test]
fn a_body_that_is_not_a_release_answer_is_refused() {
    assert!(Release::parse(&json!({"resourceType": "Bundle", "type": "searchset"})).is_err());
    assert!(Release::parse(&json!({"resourceType": "Parameters", "id": "x", "parameter": [{"name": "other", "resource": {"resourceType": "Bundle", "type": "searchset"}}]})).is_err());
    assert!(Release::parse(&json!("nonsense")).is_err());
}

fn dispenser() -> Dispenser {
    Dispenser {
        ods_code: "FA565".into(),
        name: "Test Pharmacy".into(),
        address_lines: vec!["1 Test Street".into()],
        city: "Leeds".into(),
        postcode: "LS1 1AA".into(),
        phone: "0113 0000000".into(),
        reimbursement_authority: "T1450".into(),
        agent: Agent {
            role_profile_id: "555086415105".into(),
            user_id: "3415870201".into(),
            name: "Test Pharmacist".into(),
            job_role_code: "R8000".into(),
            phone: "0113 0000001".into(),
        },
    }
}

fn released() -> Released {
    let body = spec::example("release", "acute-primary-example-res.json");
    Release::parse(&body)
        .unwrap()
        .prescriptions()
        .remove(0)
        .unwrap()
}

fn line_ids(p: &Released) -> Vec<String> {
    p.items
        .iter()
        .map(|mr| mr.identifier[0].value.clone().unwrap())
        .collect()
}

fn tablets(n: u32) -> Quantity {
    Quantity {
        value: Some(n.into()),
        unit: Some("tablet".into()),
        system: Some("http://snomed.info/sct".into()),
        code: Some("428673006".into()),
    }
}

/// Where the published schemas contradict FHIR R4 and the NHS's own examples. Nothing else
/// is tolerated.
const DEFECTS: &[spec::Defect] = &[
    spec::Defect {
        path: "*/groupIdentifier/value",
        keyword: "pattern",
        message: "does not match \"/^",
        why: "the pattern is written with JavaScript delimiters (/^…/), so no value can match",
    },
    spec::Defect {
        path: "/entry/*/resource/contained/*/groupIdentifier/value",
        keyword: "pattern",
        message: "does not match \"/^",
        why: "as above",
    },
    spec::Defect {
        path: "/contained/*/telecom",
        keyword: "type",
        message: "is not of type \"object\"",
        why: "PractitionerRole.telecom is ContactPoint[] in FHIR R4; the schema says one object",
    },
    spec::Defect {
        path: "/entry/*/resource/contained/*/telecom",
        keyword: "type",
        message: "is not of type \"object\"",
        why: "as above",
    },
    spec::Defect {
        path: "/entry/*/resource/contained/*/dispenseRequest/quantity/code",
        keyword: "type",
        message: "is not of type \"integer\"",
        why: "Quantity.code is a FHIR code (a string), as every NHS example sends it",
    },
    spec::Defect {
        path: "/item/*/detail/*/quantity/code",
        keyword: "type",
        message: "is not of type \"integer\"",
        why: "as above",
    },
    spec::Defect {
        path: "/item/*/detail/*/subDetail/*/quantity/code",
        keyword: "type",
        message: "is not of type \"integer\"",
        why: "as above",
    },
    spec::Defect {
        path: "/entry/*/resource/contained/*/extension/*/extension/*/valueCoding/code",
        keyword: "format",
        message: "is not a \"date\"",
        why: "the dispenseStatus code (0001-0008) is declared format: date",
    },
    spec::Defect {
        path: "/insurance/*",
        keyword: "required",
        message: "\"display\" is a required property",
        why: "the display belongs to insurance.coverage (a Reference), where the NHS examples put it",
    },
    spec::Defect {
        path: "/insurance/*/focal",
        keyword: "type",
        message: "true is not of type \"string\"",
        why: "Claim.insurance.focal is a FHIR boolean; the schema's own enum is [true]",
    },
    spec::Defect {
        path: "/insurance/*/sequence",
        keyword: "type",
        message: "is not of type \"string\"",
        why: "sequence is a FHIR positiveInt (a JSON number), as the NHS examples send it",
    },
    spec::Defect {
        path: "/item/*/sequence",
        keyword: "type",
        message: "is not of type \"string\"",
        why: "as above",
    },
    spec::Defect {
        path: "/item/*/detail/*/sequence",
        keyword: "type",
        message: "is not of type \"string\"",
        why: "as above",
    },
    spec::Defect {
        path: "/item/*/detail/*/subDetail/*/sequence",
        keyword: "type",
        message: "is not of type \"string\"",
        why: "as above (its own enum is [1])",
    },
    spec::Defect {
        path: "/item/*/detail/*/extension/*/url",
        keyword: "enum",
        message: "\"https://fhir.nhs.uk/StructureDefinition/Extension-ClaimSequenceIdentifier\" is not one of \"https://fhir.nhs.uk/Id/claim-sequence-identifier\"",
        why: "the schema gives the identifier's system as the extension's url; the NHS examples use the extension url",
    },
];

fn assert_valid(schema: (&str, &str), message: &Value) {
    if let Ok(dir) = std::env::var("EPS_DUMP") {
        let name = schema.0.rsplit('/').next().unwrap();
        std::fs::write(format!("{dir}/{name}.json"), message.to_string()).unwrap();
    }
    let v = spec::validator(schema.0, schema.1);
    let errors = spec::residual_errors(&v, message, DEFECTS);
    assert!(
        errors.is_empty(),
        "{} refuses our message: {errors:#?}",
        schema.0
    );
}

#[test]
fn our_release_request_validates() {
    let d = dispenser();
    assert_valid(
        RELEASE,
        &serde_json::to_value(release_request(
            "854b706a-c6e5-11ec-9d64-0242ac120002",
            &d,
            None,
        ))
        .unwrap(),
    );
    let one = release_request(
        "854b706a-c6e5-11ec-9d64-0242ac120002",
        &d,
        Some("24F5DA-A83008-7EFE6Z"),
    );
    assert_valid(RELEASE, &serde_json::to_value(one).unwrap());
}

fn notification(p: &Released) -> MessageBundle {
    let items = line_ids(p)
        .into_iter()
        .enumerate()
        .map(|(i, line_id)| DispensedItem {
            line_id,
            dispense_id: format!("fd833d33-f128-4fa2-a807-1fc8a7db26{i:02}"),
            status: LineStatus::FullyDispensed,
            quantity: Some(tablets(20)),
            not_dispensed_reason: None,
        })
        .collect();
    let d = Dispatch {
        id: "b240434e-cb85-40bb-899c-1c61410c93a7",
        header_id: "e9a71955-53ba-b15a-d4b6-bea99d5017b3",
        organization_id: "2bf9f37c-d88b-4f86-ad5f-373c1416e04b",
        handed_over: "2026-12-01T11:45:00+00:00",
        prescription: p,
        status: PrescriptionStatus::Dispensed,
        items,
    };
    dispense_notification(&d, &dispenser()).unwrap()
}

#[test]
fn our_dispense_notification_validates_and_names_every_item() {
    let p = released();
    let dn = serde_json::to_value(notification(&p)).unwrap();
    assert_valid(NOTIFICATION, &dn);
    let dispenses: Vec<&Value> = dn["entry"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["resource"]["resourceType"] == "MedicationDispense")
        .collect();
    assert_eq!(dispenses.len(), p.items.len());
    assert_eq!(
        dn["entry"][0]["resource"]["response"]["identifier"],
        json!(p.release_id)
    );
    assert_eq!(
        dispenses[0]["resource"]["type"]["coding"][0]["code"],
        "0001"
    );
    assert_eq!(
        dispenses[0]["resource"]["extension"][0]["valueCoding"]["code"],
        "0006"
    );
}

#[test]
fn a_notification_of_items_not_dispensed_validates_with_its_reason() {
    let p = released();
    let items = line_ids(&p)
        .into_iter()
        .enumerate()
        .map(|(i, line_id)| DispensedItem {
            line_id,
            dispense_id: format!("fd833d33-f128-4fa2-a807-1fc8a7db26{i:02}"),
            status: LineStatus::NotDispensed,
            quantity: None,
            not_dispensed_reason: Some(NotDispensedReason::NotRequiredPatient),
        })
        .collect();
    let d = Dispatch {
        id: "b240434e-cb85-40bb-899c-1c61410c93a7",
        header_id: "e9a71955-53ba-b15a-d4b6-bea99d5017b3",
        organization_id: "2bf9f37c-d88b-4f86-ad5f-373c1416e04b",
        handed_over: "2026-12-01T11:45:00+00:00",
        prescription: &p,
        status: PrescriptionStatus::NotDispensed,
        items,
    };
    let dn = serde_json::to_value(dispense_notification(&d, &dispenser()).unwrap()).unwrap();
    assert_valid(NOTIFICATION, &dn);
    let md = &dn["entry"][1]["resource"];
    assert_eq!(
        md["statusReasonCodeableConcept"]["coding"][0]["code"],
        "0001"
    );
    assert_eq!(md["type"]["coding"][0]["code"], "0002");
    assert!(md.get("quantity").is_none());
}

#[test]
fn a_notification_for_a_line_the_prescription_lacks_is_refused() {
    let p = released();
    let d = Dispatch {
        id: "b240434e-cb85-40bb-899c-1c61410c93a7",
        header_id: "e9a71955-53ba-b15a-d4b6-bea99d5017b3",
        organization_id: "2bf9f37c-d88b-4f86-ad5f-373c1416e04b",
        handed_over: "2026-12-01T11:45:00+00:00",
        prescription: &p,
        status: PrescriptionStatus::Dispensed,
        items: vec![DispensedItem {
            line_id: "not-a-line".into(),
            dispense_id: "fd833d33-f128-4fa2-a807-1fc8a7db2658".into(),
            status: LineStatus::FullyDispensed,
            quantity: Some(tablets(1)),
            not_dispensed_reason: None,
        }],
    };
    let err = dispense_notification(&d, &dispenser()).unwrap_err();
    assert!(err.contains("not-a-line"), "{err}");
}

#[test]
fn our_return_and_withdraw_validate_with_their_coded_reasons() {
    let p = released();
    for reason in ReturnReason::ALL {
        let t = serde_json::to_value(return_task(
            "ee1b55f8-113c-4725-99a3-25fbad366dd6",
            "2026-12-01T14:30:00+00:00",
            &p,
            *reason,
            &dispenser(),
        ))
        .unwrap();
        assert_valid(RETURN, &t);
        assert_eq!(t["statusReason"]["coding"][0]["code"], reason.code());
        assert_eq!(t["status"], "rejected");
    }
    for reason in WithdrawReason::ALL {
        let t = withdraw_task(
            "6a2624a2-321b-470e-91a6-8ae7a065e2f0",
            "2026-12-01T14:30:00+00:00",
            &p,
            "b240434e-cb85-40bb-899c-1c61410c93a7",
            *reason,
            &dispenser(),
        );
        let t = serde_json::to_value(t).unwrap();
        assert_valid(WITHDRAW, &t);
        assert_eq!(
            t["focus"]["identifier"]["value"],
            "b240434e-cb85-40bb-899c-1c61410c93a7"
        );
    }
}

fn our_claim(p: &Released, exemption: &str, charges_paid: u8) -> Result<Claim, String> {
    let tables = NhsTables::builtin();
    let exemption = tables.exemption(exemption).unwrap();
    let items = line_ids(p)
        .into_iter()
        .enumerate()
        .map(|(i, line_id)| ClaimedItem {
            line_id,
            dispense_id: format!("fd833d33-f128-4fa2-a807-1fc8a7db26{i:02}"),
            sequence_id: format!("be948cf8-5db1-4c39-8f9b-c7e049d55a{i:02}"),
            status: LineStatus::FullyDispensed,
            quantity: tablets(20),
            endorsement: None,
            charges_paid,
        })
        .collect();
    let input = ClaimInput {
        id: "a76599c5-bbdd-4581-bb4d-377b348dd1e4",
        created: "2026-12-01T13:30:00.000Z",
        prescription: p,
        status: PrescriptionStatus::Dispensed,
        exemption,
        evidence_seen: true,
        items,
    };
    claim(&input, &dispenser())
}

#[test]
fn our_claim_validates_with_the_nhs_tables_exemption() {
    let p = released();
    let paid = serde_json::to_value(our_claim(&p, "0001", 1).unwrap()).unwrap();
    assert_valid(CLAIM, &paid);
    assert_eq!(
        paid["item"][0]["programCode"][0]["coding"][0]["code"],
        "0001"
    );
    assert_eq!(
        paid["item"][0]["detail"][0]["programCode"][0]["coding"][0]["code"],
        "paid-once"
    );
    // An exempt patient with evidence seen: not paid, and the evidence code.
    let exempt_code = NhsTables::builtin()
        .exemptions
        .iter()
        .find(|e| e.code != "0001")
        .unwrap()
        .code
        .clone();
    let exempt = serde_json::to_value(our_claim(&p, &exempt_code, 0).unwrap()).unwrap();
    assert_valid(CLAIM, &exempt);
    assert_eq!(
        exempt["item"][0]["programCode"][1]["coding"][0]["code"],
        "evidence-seen"
    );
    assert_eq!(
        exempt["item"][0]["detail"][0]["programCode"][0]["coding"][0]["code"],
        "not-paid"
    );
}

#[test]
fn charges_that_contradict_the_exemption_are_refused() {
    let p = released();
    assert!(our_claim(&p, "0001", 0).is_err());
    assert!(our_claim(&p, "0001", 3).is_err());
    let exempt_code = NhsTables::builtin()
        .exemptions
        .iter()
        .find(|e| e.code != "0001")
        .unwrap()
        .code
        .clone();
    assert!(our_claim(&p, &exempt_code, 1).is_err());
}

#[test]
fn the_schemas_refuse_a_message_missing_a_required_element() {
    let p = released();
    let mut c = serde_json::to_value(our_claim(&p, "0001", 1).unwrap()).unwrap();
    c.as_object_mut().unwrap().remove("patient");
    let v = spec::validator(CLAIM.0, CLAIM.1);
    assert!(
        spec::errors(&v, &c).iter().any(|e| e.contains("patient")),
        "{:?}",
        spec::errors(&v, &c)
    );
}

/// Every message this crate builds, with the schema it must satisfy.
fn our_messages() -> Vec<((&'static str, &'static str), Value)> {
    let p = released();
    let d = dispenser();
    let at = "2026-12-01T14:30:00+00:00";
    vec![
        (
            RELEASE,
            serde_json::to_value(release_request(
                "854b706a-c6e5-11ec-9d64-0242ac120002",
                &d,
                Some("24F5DA-A83008-7EFE6Z"),
            ))
            .unwrap(),
        ),
        (
            NOTIFICATION,
            serde_json::to_value(notification(&p)).unwrap(),
        ),
        (
            RETURN,
            serde_json::to_value(return_task(
                "ee1b55f8-113c-4725-99a3-25fbad366dd6",
                at,
                &p,
                ReturnReason::PatientRequestedRelease,
                &d,
            ))
            .unwrap(),
        ),
        (
            WITHDRAW,
            serde_json::to_value(withdraw_task(
                "6a2624a2-321b-470e-91a6-8ae7a065e2f0",
                at,
                &p,
                "b240434e-cb85-40bb-899c-1c61410c93a7",
                WithdrawReason::QuantityUpdate,
                &d,
            ))
            .unwrap(),
        ),
        (
            CLAIM,
            serde_json::to_value(our_claim(&p, "0001", 1).unwrap()).unwrap(),
        ),
    ]
}

#[test]
fn every_listed_schema_defect_is_needed() {
    let messages = our_messages();
    for (i, defect) in DEFECTS.iter().enumerate() {
        let others: Vec<spec::Defect> = DEFECTS
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, d)| *d)
            .collect();
        let hit = messages.iter().any(|(schema, m)| {
            !spec::residual_errors(&spec::validator(schema.0, schema.1), m, &others).is_empty()
        });
        assert!(
            hit,
            "defect at {} ({}) is never met: remove it",
            defect.path, defect.why
        );
    }
}
