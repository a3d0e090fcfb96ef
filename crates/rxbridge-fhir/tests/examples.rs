//! The NHS's published prescription-order messages (fixtures/eps, MIT licence beside them)
//! read by the mapping: every issue, and the FHIRPath of every contract field, names an
//! element that exists in the Bundle.

use rxbridge_fhir::fhirpath::resolve;
use rxbridge_fhir::{DmdTable, map_order};
use serde_json::Value;

fn fixtures() -> Vec<(String, Value)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/eps");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-Process-Request-Send-"))
        .map(|p| {
            let v = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Every JSON pointer of a contract body, leaves and containers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, v)| pointers(v, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

#[test]
fn all_seven_published_messages_are_fixtures() {
    assert_eq!(fixtures().len(), 7);
}

#[test]
fn every_issue_and_every_field_of_each_example_names_a_real_element() {
    for (name, bundle) in fixtures() {
        let m = map_order(&bundle, DmdTable::builtin()).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(m.message_id.is_some(), "{name}");
        // None of the examples' medicines is in the formulary: each item is refused at its code.
        let items = m.contract["items"].as_array().unwrap();
        assert!(!items.is_empty(), "{name}");
        let unknown = m
            .issues
            .iter()
            .filter(|i| i.code == "unknown_product")
            .count();
        assert_eq!(unknown, items.len(), "{name}: {:?}", m.issues);
        for i in &m.issues {
            assert!(
                resolve(&bundle, &i.expression).is_some(),
                "{name}: {} does not resolve",
                i.expression
            );
            assert!(
                i.expression.contains("medicationCodeableConcept") || i.code != "unknown_product"
            );
        }
        let mut ps = Vec::new();
        pointers(&m.contract, String::new(), &mut ps);
        for p in ps {
            let e = m.expression_for(&p);
            assert!(
                resolve(&bundle, &e).is_some(),
                "{name}: {p} → {e} does not resolve"
            );
        }
    }
}

#[test]
fn the_fields_are_read_from_where_eps_puts_them() {
    let (_, b) = fixtures()
        .into_iter()
        .find(|(n, _)| n.starts_with("secondary-care-cd-1"))
        .unwrap();
    let m = map_order(&b, DmdTable::builtin()).unwrap();
    let c = &m.contract;
    assert_eq!(c["type"], "nhs");
    assert_eq!(c["authority"]["kind"], "eps");
    assert_eq!(
        c["authority"]["eps_prescription_id"],
        "DE1AF4-A99968-4C918K"
    );
    assert_eq!(c["patient"]["nhs_number"], "9449303703");
    assert_eq!(c["patient"]["given_name"], "ROYDON");
    assert_eq!(c["patient"]["address"]["town"], "SURREY");
    assert_eq!(
        c["patient"]["address"]["lines"],
        serde_json::json!(["35 STEVENS LANE", "CLAYGATE"])
    );
    assert_eq!(
        c["prescriber"]["registration"],
        serde_json::json!({"body": "gmc", "number": "6150129"})
    );
    assert_eq!(c["prescriber"]["address"]["town"], "TAUNTON");
    assert_eq!(c["items"][0]["quantity"], 28);
    assert_eq!(c["items"][0]["quantity_in_words"], "twenty eight");
    assert_eq!(
        c["items"][0]["dose"],
        serde_json::json!({"units": 1, "times_per_day": 1})
    );
    assert_eq!(c["items"][0]["instructions"], "1 tablet, daily");
    assert_eq!(
        m.expression_for("/items/0/quantity_in_words"),
        "Bundle.entry[1].resource.extension[1].extension[0].valueString"
    );
    assert_eq!(
        m.expression_for("/items/1/instructions"),
        "Bundle.entry[2].resource.dosageInstruction[0].text"
    );
    assert_eq!(
        m.message_id.as_deref(),
        Some("3b87cba2-c349-468a-ab96-5e1c7457a4b6")
    );
}

#[test]
fn the_refused_examples_are_refused_for_their_own_reason_too() {
    let f = fixtures();
    let get = |p: &str| {
        map_order(
            &f.iter().find(|(n, _)| n.starts_with(p)).unwrap().1,
            DmdTable::builtin(),
        )
        .unwrap()
    };
    let intent = get("errors-4");
    assert!(
        intent.issues.iter().any(
            |i| i.code == "invalid_intent" && i.expression == "Bundle.entry[1].resource.intent"
        ),
        "{:?}",
        intent.issues
    );
    let checksum = get("errors-1");
    assert!(
        checksum
            .issues
            .iter()
            .any(|i| i.code == "invalid_prescription_id_check"
                && i.expression == "Bundle.entry[1].resource.groupIdentifier.value"),
        "{:?}",
        checksum.issues
    );
    for (name, b) in f.iter().filter(|(n, _)| !n.starts_with("errors-1")) {
        let m = map_order(b, DmdTable::builtin()).unwrap();
        assert!(
            m.issues
                .iter()
                .all(|i| i.code != "invalid_prescription_id_check"),
            "{name}"
        );
    }
    let mixed = get("errors-2");
    assert!(
        mixed
            .issues
            .iter()
            .any(|i| i.code == "mixed_course_of_therapy"),
        "{:?}",
        mixed.issues
    );
}

#[test]
fn what_is_not_a_bundle_is_told_apart_from_a_bad_bundle() {
    let t = DmdTable::builtin();
    assert!(map_order(&serde_json::json!({"resourceType": "Patient"}), t).is_err());
    assert!(map_order(&serde_json::json!([1, 2]), t).is_err());
    assert!(
        map_order(
            &serde_json::json!({"resourceType": "Bundle", "entry": 3}),
            t
        )
        .is_err()
    );
    let m = map_order(
        &serde_json::json!({"resourceType": "Bundle", "type": "collection"}),
        t,
    )
    .unwrap();
    let codes: Vec<&str> = m.issues.iter().map(|i| i.code.as_str()).collect();
    assert_eq!(
        codes,
        [
            "invalid_bundle_type",
            "required",
            "missing_message_header",
            "required"
        ]
    );
}

#[test]
fn a_resource_element_of_the_wrong_type_is_an_issue_at_its_path() {
    let (_, mut b) = fixtures()
        .into_iter()
        .find(|(n, _)| n.starts_with("secondary-care-cd-1"))
        .unwrap();
    b["entry"][1]["resource"]["dispenseRequest"]["quantity"]["value"] = "many".into();
    let m = map_order(&b, DmdTable::builtin()).unwrap();
    let i = m
        .issues
        .iter()
        .find(|i| i.code == "wrong_type")
        .expect("a wrong_type issue");
    assert_eq!(
        i.expression,
        "Bundle.entry[1].resource.dispenseRequest.quantity.value"
    );
    assert!(resolve(&b, &i.expression).is_some());
}
