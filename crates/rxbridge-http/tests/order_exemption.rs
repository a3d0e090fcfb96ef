//! The FHIR door's contract: an NHS prescription read from an EPS message may leave out the
//! `nhs` block (the patient declares the exemption at the pharmacy); the JSON API's contract
//! still requires it. Every other rule is the same.

use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::prescription::PrescriptionType;
use rxbridge_http::contract::{parse_prescription, parse_prescription_order};
use rxbridge_http::schema::example_submission_on;
use serde_json::{Value, json};

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 12, 1)
}

/// The documented example as an NHS EPS prescription, without its `nhs` block.
fn nhs_without_exemption() -> Value {
    let mut v = example_submission_on("2026-12-01");
    v["type"] = "nhs".into();
    v["authority"] = json!({ "kind": "eps", "eps_prescription_id": "24F5DA-A83008-7EFE6Z" });
    v["prescriber"]
        .as_object_mut()
        .unwrap()
        .remove("private_prescriber_code");
    v.as_object_mut().unwrap().remove("nhs");
    v
}

fn pointers(e: &[rxbridge_http::problem::FieldError]) -> Vec<(&str, &str)> {
    e.iter()
        .map(|e| (e.pointer.as_str(), e.code.as_str()))
        .collect()
}

#[test]
fn the_order_parser_takes_an_nhs_prescription_without_its_exemption() {
    let f = Formulary::builtin();
    let body = nhs_without_exemption();
    let rx = parse_prescription_order(&body, today(), f).unwrap();
    assert_eq!((rx.kind, &rx.nhs), (PrescriptionType::Nhs, &None));
    assert_eq!(
        rxbridge_domain::declaration::initial_state(&rx),
        Some(rxbridge_domain::declaration::NhsExemption::ToBeDeclared)
    );
    // The JSON API keeps its contract: the block is required there.
    let errors = parse_prescription(&body, today(), f).unwrap_err();
    assert_eq!(pointers(&errors), [("/nhs", "required")]);
}

#[test]
fn every_other_rule_still_applies_to_an_order() {
    let f = Formulary::builtin();
    let mut body = nhs_without_exemption();
    body["nhs"] = json!({ "exemption": "0017", "evidence_seen": true });
    let errors = parse_prescription_order(&body, today(), f).unwrap_err();
    assert_eq!(pointers(&errors), [("/nhs/exemption", "invalid_exemption")]);
    let mut body = nhs_without_exemption();
    body["patient"]["nhs_number"] = "9434765918".into();
    let order = parse_prescription_order(&body, today(), f).unwrap_err();
    let mut json_body = body.clone();
    json_body["nhs"] = json!({ "exemption": "0001", "evidence_seen": false });
    let json_api = parse_prescription(&json_body, today(), f).unwrap_err();
    assert_eq!(pointers(&order), pointers(&json_api));
    // A private prescription still may not carry one.
    let mut private = example_submission_on("2026-12-01");
    private["nhs"] = json!({ "exemption": "0001", "evidence_seen": false });
    let errors = parse_prescription_order(&private, today(), f).unwrap_err();
    assert_eq!(pointers(&errors), [("/nhs", "not_allowed")]);
}
