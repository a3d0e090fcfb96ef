//! Every example in the OpenAPI document is checked against the real validator: request
//! examples must pass it, and the documented 422 must be exactly what it reports for the
//! documented invalid submission.

use rxbridge_domain::formulary::Formulary;
use rxbridge_http::contract::parse_prescription;
use rxbridge_http::schema::*;
use serde_json::Value;

fn doc() -> Value {
    serde_json::from_str(&rxbridge_http::openapi::document()).unwrap()
}

fn issue_date() -> jiff::civil::Date {
    // The examples are dated 2026-11-20; check them as of a day inside their 28-day window.
    jiff::civil::date(2026, 11, 26)
}

fn collect(v: &Value, key: &str, path: &mut Vec<String>, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                path.push(k.clone());
                if k == key {
                    out.push((path.join("/"), x.clone()));
                }
                collect(x, key, path, out);
                path.pop();
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(i.to_string());
                collect(x, key, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[test]
fn document_is_openapi_3_1_with_every_path_and_bearer_auth() {
    let d = doc();
    assert_eq!(d["openapi"], "3.1.0");
    for p in [
        "/v1/prescriptions",
        "/v1/prescriptions/validate",
        "/v1/prescriptions/{id}",
        "/v1/prescriptions/{id}/cancel",
        "/v1/formulary",
        "/v1/rules",
        "/healthz",
        "/readyz",
    ] {
        assert!(d["paths"].get(p).is_some(), "{p}");
    }
    assert_eq!(
        d["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    // Unknown fields are refused, so the schema says so.
    assert_eq!(
        d["components"]["schemas"]["PrescriptionIn"]["additionalProperties"],
        false
    );
}

#[test]
fn every_request_example_passes_the_real_validator() {
    let d = doc();
    let mut examples = Vec::new();
    collect(
        &d["components"]["schemas"],
        "example",
        &mut Vec::new(),
        &mut examples,
    );
    let submissions: Vec<_> = examples
        .iter()
        .filter(|(p, _)| p.starts_with("PrescriptionIn/"))
        .collect();
    assert_eq!(
        submissions.len(),
        1,
        "{:?}",
        examples.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    for (path, ex) in submissions {
        let parsed = parse_prescription(ex, issue_date(), Formulary::builtin());
        assert!(parsed.is_ok(), "{path}: {:?}", parsed.err());
        // The schema types accept it too (same field names, no unknown fields).
        serde_json::from_value::<PrescriptionIn>(ex.clone()).unwrap();
    }
    assert_eq!(
        example_submission(),
        d["components"]["schemas"]["PrescriptionIn"]["example"]
    );
}

#[test]
fn every_documented_422_is_what_the_validator_reports() {
    let d = doc();
    let mut examples = Vec::new();
    collect(&d["paths"], "example", &mut Vec::new(), &mut examples);
    let problems: Vec<_> = examples
        .iter()
        .filter(|(p, _)| p.contains("/responses/422/") && !p.starts_with("/fhir/"))
        .collect();
    assert!(
        problems.len() >= 2,
        "{:?}",
        examples.iter().map(|e| &e.0).collect::<Vec<_>>()
    );
    let errors = parse_prescription(
        &example_invalid_submission(),
        issue_date(),
        Formulary::builtin(),
    )
    .unwrap_err();
    let problem = rxbridge_http::problem::Problem::validation(errors);
    let actual = serde_json::to_value(&problem).unwrap();
    for (path, ex) in problems {
        assert_eq!(ex, &actual, "{path}");
    }
}

#[test]
fn the_example_is_recent_enough_for_the_demo_helper() {
    let v = example_submission_on("2026-12-01");
    assert_eq!(v["issued_on"], "2026-12-01");
    assert!(parse_prescription(&v, jiff::civil::date(2026, 12, 1), Formulary::builtin()).is_ok());
}

#[test]
fn the_problem_and_field_error_examples_match_the_code_table() {
    let d = doc();
    let ex = &d["components"]["schemas"]["Problem"]["example"];
    let p: rxbridge_http::problem::Problem = serde_json::from_value(ex.clone()).unwrap();
    let code = rxbridge_http::problem::ProblemCode::parse(&p.code).expect("a code in the table");
    let built = rxbridge_http::problem::Problem::new(code, p.detail.clone());
    assert_eq!(
        (built.status, built.title.as_str(), built.type_.as_str()),
        (p.status, p.title.as_str(), p.type_.as_str())
    );
    let fe = &d["components"]["schemas"]["FieldError"]["properties"];
    assert_eq!(fe["pointer"]["example"], "/patient/nhs_number");
    // The documented field error is what the validator says for that NHS number.
    let mut body = example_submission();
    body["patient"]["nhs_number"] = "9434765918".into();
    let errors = parse_prescription(&body, issue_date(), Formulary::builtin()).unwrap_err();
    assert_eq!(errors[0].code, fe["code"]["example"].as_str().unwrap());
    assert_eq!(errors[0].detail, fe["detail"]["example"].as_str().unwrap());
}

#[test]
fn the_documented_fhir_422_is_what_the_intake_answers_to_the_published_example() {
    let d = doc();
    let ex = &d["paths"]["/fhir/R4/$process-message"]["post"]["responses"]["422"]["content"]["application/fhir+json"]
        ["example"];
    let bundle: serde_json::Value = serde_json::from_str(include_str!(
        "../../rxbridge-fhir/tests/fixtures/eps/secondary-care-cd-1-Process-Request-Send-200_OK.json"
    ))
    .unwrap();
    let mapped = rxbridge_fhir::map_order(&bundle, rxbridge_fhir::DmdTable::builtin()).unwrap();
    let issues = rxbridge_http::fhir::read_order(&mapped, issue_date()).unwrap_err();
    assert_eq!(ex, &rxbridge_fhir::outcome::refused(&issues));
}

/// The bench payloads (`bench/payloads`, timed by the criterion bench and by the Zod peer) are
/// the documented examples, so the figures measure what the documentation shows.
#[test]
fn the_bench_payloads_are_the_documented_examples() {
    let read = |f: &str| -> Value {
        let p = format!("{}/../../bench/payloads/{f}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    assert_eq!(read("valid.json"), example_submission());
    assert_eq!(read("invalid.json"), example_invalid_submission());
}
