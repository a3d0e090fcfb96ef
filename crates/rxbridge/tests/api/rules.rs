//! Each compliance rule, enforced through the public API and explained in the response.

use crate::api::helpers::*;
use serde_json::{Value, json};

/// A change to the valid example that should trigger one rule.
type Change = Box<dyn Fn(&mut Value)>;

async fn finding<'a>(v: &'a Value, code: &str) -> &'a Value {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {v:#}"))
}

#[tokio::test]
async fn legal_blocks_record_the_prescription_as_rejected_with_citations() {
    let app = spawn_app().await;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "cd_expired",
            Box::new(|b| b["issued_on"] = days_ago(29).into()),
            "MDR 2001 reg 16(1)(e)",
        ),
        (
            "cd_not_yet_valid",
            Box::new(|b| {
                b["issued_on"] = today()
                    .saturating_add(jiff::Span::new().days(1))
                    .to_string()
                    .into()
            }),
            "MDR 2001 reg 16(1)(d)",
        ),
        (
            "private_cd_not_on_fp10pcd",
            Box::new(|b| b["authority"] = json!({"kind": "electronic_private"})),
            "MDR 2001 reg 15(1)(aa); HMR 2012 reg 219(4)",
        ),
        (
            "private_cd_serial_missing",
            Box::new(|b| {
                b["authority"]
                    .as_object_mut()
                    .unwrap()
                    .remove("serial_number");
            }),
            "MDR 2001 reg 15(1)(aa)",
        ),
        (
            "private_cd_prescriber_code_missing",
            Box::new(|b| {
                b["prescriber"]
                    .as_object_mut()
                    .unwrap()
                    .remove("private_prescriber_code");
            }),
            "MDR 2001 reg 15(1)(ab)",
        ),
        (
            "cd_quantity_words_mismatch",
            Box::new(|b| b["items"][0]["quantity_in_words"] = "twenty-nine".into()),
            "MDR 2001 reg 15(1)(f)",
        ),
        (
            "cd_dose_not_explicit",
            Box::new(|b| b["items"][0]["instructions"] = "as directed".into()),
            "MDR 2001 reg 15(1)(f); BNF prescription requirements",
        ),
        (
            "cd_repeat_not_allowed",
            Box::new(|b| b["items"][0]["repeats"] = 2.into()),
            "NHS Digital Medicines guidance; HMR 2012 reg 217",
        ),
        (
            "prescriber_address_not_uk",
            Box::new(|b| {
                b["prescriber"]["address"]["country"] = "FR".into();
                b["prescriber"]["address"]["postcode"] = "75008".into();
            }),
            "MDR 2001 reg 16(1)(b)",
        ),
        (
            "patient_address_po_box",
            Box::new(|b| b["patient"]["address"]["lines"] = json!(["PO Box 42"])),
            "MDR 2001 reg 15(1)(e); BNF prescription requirements",
        ),
    ];
    for (code, change, rule) in cases {
        let mut b = valid_body();
        change(&mut b);
        let v = app.submit_ok(&b).await;
        assert_eq!(v["status"], "rejected", "{code}: {v:#}");
        let f = finding(&v, code).await;
        assert_eq!(f["severity"], "block", "{code}");
        assert_eq!(f["rule"], rule, "{code}");
        assert!(!f["message"].as_str().unwrap().is_empty());
    }
    // The day-28 side of the boundary is valid.
    let mut b = valid_body();
    b["issued_on"] = days_ago(28).into();
    assert_eq!(app.submit_ok(&b).await["status"], "awaiting_original");
    // "one as directed" is an explicit dose.
    let mut b = valid_body();
    b["items"][0]["instructions"] = "one as directed".into();
    assert_eq!(app.submit_ok(&b).await["status"], "awaiting_original");
}

#[tokio::test]
async fn clinical_flags_go_to_the_pharmacist() {
    let app = spawn_app().await;
    // 31 days' supply of a CD.
    let mut b = valid_body();
    b["items"][0]["quantity"] = 31.into();
    b["items"][0]["quantity_in_words"] = "thirty-one".into();
    b["items"][0]["days_supply"] = 31.into();
    b["clinic_reference"] = "FLAG-30".into();
    let v = app.submit_ok(&b).await;
    assert_eq!(v["status"], "awaiting_original");
    assert_eq!(finding(&v, "cd_over_30_days").await["severity"], "flag");
    // Figures only on a CD: the pharmacist may add the words (MDR 2001 reg 16(1A)-(1B)).
    let mut b = valid_body();
    b["items"][0]
        .as_object_mut()
        .unwrap()
        .remove("quantity_in_words");
    b["clinic_reference"] = "FLAG-WORDS".into();
    let v = app.submit_ok(&b).await;
    assert_eq!(v["status"], "awaiting_original", "{v:#}");
    let f = finding(&v, "cd_quantity_words_missing").await;
    assert_eq!(f["severity"], "flag");
    assert_eq!(f["rule"], "MDR 2001 reg 15(1)(f), 16(1A)-(1B)");
    // Above the licensed maximum (Concerta XL adult 72 mg): 3 x 36 mg.
    let mut b = nhs_body();
    b["patient"]["nhs_number"] = "4010232137".into();
    b["items"][0]["dose"]["units"] = 3.into();
    b["items"][0]["quantity"] = 84.into();
    b["items"][0]["quantity_in_words"] = "eighty-four".into();
    let v = app.submit_ok(&b).await;
    let f = finding(&v, "dose_above_licensed_max").await;
    assert!(f["message"].as_str().unwrap().contains("108 mg"), "{f}");
    assert_eq!(f["item"], 0);
    // Age outside the licence: Amfexa for an adult.
    let mut b = nhs_body();
    b["patient"]["nhs_number"] = "9990000018".into();
    b["items"][0]["product_code"] = "AMFEXA-10".into();
    let v = app.submit_ok(&b).await;
    finding(&v, "age_outside_licence").await;
    // NHS exemption 0004 (60+) for a patient born 1998.
    let mut b = nhs_body();
    b["patient"]["nhs_number"] = "9990000026".into();
    b["nhs"]["exemption"] = "0004".into();
    let v = app.submit_ok(&b).await;
    finding(&v, "nhs_exemption_contradicts_age").await;
    // Two stimulants on one prescription.
    let mut b = nhs_body();
    b["patient"]["nhs_number"] = "9990000034".into();
    let mut second = b["items"][0].clone();
    second["product_code"] = "ELVANSE-ADULT-30".into();
    b["items"].as_array_mut().unwrap().push(second);
    let v = app.submit_ok(&b).await;
    finding(&v, "multiple_stimulants").await;
}

#[tokio::test]
async fn history_checks_span_clinics_and_identities() {
    let app = spawn_app().await;
    let other = app.add_clinic("Another Clinic").await;
    // First supply at the other clinic, 10 days ago.
    let mut first = nhs_body();
    first["issued_on"] = days_ago(10).into();
    let r = app.submit_with(&other.test_key, &new_key(), &first).await;
    assert_eq!(r.status(), reqwest::StatusCode::CREATED);
    // Same product now, overlapping: duplicate (from another clinic).
    let v = app.submit_ok(&nhs_body()).await;
    let f = finding(&v, "duplicate_prescription").await;
    assert!(
        f["message"].as_str().unwrap().contains("another clinic"),
        "{f}"
    );
    // Same ingredient, other product: early supply (10 of 28 days elapsed).
    let mut b = nhs_body();
    b["items"][0]["product_code"] = "CONCERTA-XL-18".into();
    let v = app.submit_ok(&b).await;
    let f = finding(&v, "early_supply").await;
    assert!(f["message"].as_str().unwrap().contains("75%"), "{f}");
    // The same NHS number under another name: identity conflict.
    let mut b = nhs_body();
    b["patient"]["given_name"] = "Alex".into();
    let v = app.submit_ok(&b).await;
    finding(&v, "identity_conflict").await;
    // Three different patients at one address.
    for (i, nhs) in ["9990000042", "9990000050"].iter().enumerate() {
        let mut b = nhs_body();
        b["patient"]["nhs_number"] = (*nhs).into();
        b["patient"]["given_name"] = format!("Person{i}").into();
        b["patient"]["date_of_birth"] = format!("199{i}-01-01").into();
        b["items"][0]["product_code"] = "STRATTERA-40".into();
        b["items"][0]
            .as_object_mut()
            .unwrap()
            .remove("quantity_in_words");
        let v = app.submit_ok(&b).await;
        if i == 1 {
            finding(&v, "address_multiple_patients").await;
        }
    }
    // History is per mode: the live key sees no history, so no flags.
    let r = app
        .submit_with(&app.live_key, &new_key(), &nhs_body())
        .await;
    let v: Value = r.json().await.unwrap();
    assert!(codes(&v).is_empty(), "{v:#}");
}

#[tokio::test]
async fn rules_endpoint_lists_every_rule_with_citation_and_thresholds() {
    let app = spawn_app().await;
    let (s, v) = app.get_json("/v1/rules", &app.test_key).await;
    assert_eq!(s, reqwest::StatusCode::OK);
    let rules = v["rules"].as_array().unwrap();
    assert!(rules.len() >= 22);
    for r in rules {
        assert!(r["code"].is_string() && r["rule"].is_string() && r["description"].is_string());
        assert!(["block", "flag", "info"].contains(&r["severity"].as_str().unwrap()));
    }
    assert_eq!(v["thresholds"]["cd_max_days_supply"], 30);
    assert_eq!(v["thresholds"]["early_supply_elapsed_percent"], 75);
}
