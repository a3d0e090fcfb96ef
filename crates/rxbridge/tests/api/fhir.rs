//! The FHIR R4 front door (`POST /fhir/R4/$process-message`, `GET /fhir/R4/metadata`) on the
//! NHS's published prescription-order messages: each is answered 201, or 422 with every issue
//! at an expression that names a real element of that Bundle; nothing refused is recorded.

use crate::api::helpers::*;
use reqwest::StatusCode;
use rxbridge_fhir::fhirpath::resolve;
use rxbridge_fhir::{DmdTable, map_order};
use serde_json::{Value, json};

fn examples() -> Vec<(String, Value)> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../rxbridge-fhir/tests/fixtures/eps"
    );
    let mut out: Vec<(String, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("-Process-Request-Send-"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, serde_json::from_str(&text).unwrap())
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(out.len(), 7, "the seven published examples");
    out
}

impl TestApp {
    async fn process_raw(&self, content_type: &str, body: String) -> (StatusCode, String, String) {
        let r = self
            .client
            .post(self.url("/fhir/R4/$process-message"))
            .bearer_auth(&self.test_key)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, r.text().await.unwrap())
    }
    async fn process(&self, bundle: &Value) -> (StatusCode, Value) {
        let (s, ct, text) = self
            .process_raw("application/fhir+json", bundle.to_string())
            .await;
        assert_eq!(ct, "application/fhir+json", "{text}");
        (s, serde_json::from_str(&text).unwrap())
    }
}

#[tokio::test]
async fn every_published_example_is_201_or_422_at_real_expressions() {
    let app = spawn_app().await;
    for (name, bundle) in examples() {
        let (status, outcome) = app.process(&bundle).await;
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{name}");
        match status {
            StatusCode::CREATED => {
                let id = outcome["issue"][0]["diagnostics"].as_str().unwrap();
                assert!(id.starts_with("rx_"), "{name}: {outcome:#}");
            }
            StatusCode::UNPROCESSABLE_ENTITY => {
                let issues = outcome["issue"].as_array().unwrap();
                assert!(!issues.is_empty(), "{name}");
                for i in issues {
                    assert_eq!(i["severity"], "error", "{name}: {i}");
                    assert!(
                        i["code"].is_string() && i["details"]["text"].is_string(),
                        "{name}: {i}"
                    );
                    let e = i["expression"][0]
                        .as_str()
                        .unwrap_or_else(|| panic!("{name}: no expression in {i}"));
                    assert!(
                        resolve(&bundle, e).is_some(),
                        "{name}: {e} names nothing in the Bundle"
                    );
                }
                // None of the examples' medicines is an ADHD formulary product: each item is
                // refused at its dm+d code, not guessed from its name.
                let unknown: Vec<&str> = issues
                    .iter()
                    .filter(|i| i["diagnostics"] == "unknown_product")
                    .map(|i| i["expression"][0].as_str().unwrap())
                    .collect();
                let items = bundle["entry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| e["resource"]["resourceType"] == "MedicationRequest")
                    .count();
                assert_eq!(unknown.len(), items, "{name}: {outcome:#}");
                assert!(
                    unknown
                        .iter()
                        .all(|e| e.ends_with(".medicationCodeableConcept.coding[0].code")),
                    "{unknown:?}"
                );
                // The message carries no charge exemption, and that is no longer a refusal:
                // the patient declares it at the pharmacy.
                assert!(
                    !issues.iter().any(|i| i["expression"][0] == "Bundle"
                        || i["details"]["text"].as_str().unwrap().contains("exemption")),
                    "{name}: {outcome:#}"
                );
            }
            other => panic!("{name}: {other} {outcome:#}"),
        }
    }
    assert_eq!(
        app.count(&app.test_key).await,
        0,
        "nothing refused is recorded"
    );
}

#[tokio::test]
async fn the_refused_examples_are_also_refused_for_what_the_nhs_refuses_them_for() {
    let app = spawn_app().await;
    let ex = examples();
    let get = |p: &str| ex.iter().find(|(n, _)| n.starts_with(p)).unwrap().1.clone();
    let (s, o) = app.process(&get("errors-4")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let has = |o: &Value, code: &str, at: &str| {
        o["issue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["diagnostics"] == code && i["expression"][0] == at)
    };
    assert!(
        has(&o, "invalid_intent", "Bundle.entry[1].resource.intent"),
        "{o:#}"
    );
    let (_, o) = app.process(&get("errors-1")).await;
    assert!(
        has(
            &o,
            "invalid_prescription_id_check",
            "Bundle.entry[1].resource.groupIdentifier.value"
        ),
        "{o:#}"
    );
    let (_, o) = app.process(&get("errors-2")).await;
    assert!(
        o["issue"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["diagnostics"] == "mixed_course_of_therapy"),
        "{o:#}"
    );
}

/// The FHIR answer lists the same contract errors the JSON API gives the same prescription,
/// each at the FHIRPath of the field's source.
#[tokio::test]
async fn a_bundle_gets_the_contract_errors_its_json_equivalent_gets() {
    let app = spawn_app().await;
    for (name, mut bundle) in examples() {
        // A contract error of the JSON API as well: a mistyped NHS number.
        let patient = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .position(|e| e["resource"]["resourceType"] == "Patient")
            .unwrap();
        bundle["entry"][patient]["resource"]["identifier"][0]["value"] = "9449303704".into();
        let mapped = map_order(&bundle, DmdTable::builtin()).unwrap();
        let (js, json_answer) = app
            .post_json(
                "/v1/prescriptions/validate",
                &app.test_key,
                &mapped.contract,
            )
            .await;
        assert_eq!(js, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let (fs, fhir_answer) = app.process(&bundle).await;
        assert_eq!(fs, StatusCode::UNPROCESSABLE_ENTITY, "{name}");
        let fhir: Vec<(String, String)> = fhir_answer["issue"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["expression"][0].as_str().unwrap().to_string(),
                    i["diagnostics"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let nhs_at = format!("Bundle.entry[{patient}].resource.identifier[0].value");
        assert!(
            fhir.contains(&(nhs_at, "invalid_nhs_number".into())),
            "{name}: {fhir:?}"
        );
        for (pointer, code) in error_pointers(&json_answer) {
            if (pointer.as_str(), code.as_str()) == ("/nhs", "required") {
                // The JSON contract requires the exemption of an NHS prescription; an EPS
                // message is taken without it (declared at the pharmacy).
                assert!(!fhir.iter().any(|(e, _)| e == "Bundle"), "{name}: {fhir:?}");
                continue;
            }
            let at = mapped.expression_for(&pointer);
            assert!(
                fhir.iter().any(|(e, c)| *e == at
                    && (*c == code || mapped.issues.iter().any(|i| i.expression == at))),
                "{name}: the JSON API's {pointer} {code} is missing at {at}: {fhir:?}"
            );
        }
    }
}

#[tokio::test]
async fn the_same_message_again_gets_the_same_bytes() {
    let app = spawn_app().await;
    let (_, bundle) = examples().remove(0);
    let first = app
        .process_raw("application/fhir+json", bundle.to_string())
        .await;
    let again = app
        .process_raw(
            "application/fhir+json; charset=utf-8",
            serde_json::to_string_pretty(&bundle).unwrap(),
        )
        .await;
    assert_eq!(first, again);
}

#[tokio::test]
async fn what_is_not_a_bundle_is_400_and_the_wrong_type_415_and_no_key_401() {
    let app = spawn_app().await;
    for body in [
        json!({"resourceType": "Patient"}).to_string(),
        "[1,2]".into(),
        "{\"resourceType\":".into(),
        json!({"resourceType": "Bundle", "entry": "x"}).to_string(),
    ] {
        let (s, ct, text) = app.process_raw("application/fhir+json", body.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert_eq!(ct, "application/fhir+json");
        let o: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(o["resourceType"], "OperationOutcome");
        assert_eq!(o["issue"][0]["severity"], "error");
    }
    let (s, _, _) = app.process_raw("text/plain", "{}".into()).await;
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = app
        .client
        .post(app.url("/fhir/R4/$process-message"))
        .header("content-type", "application/fhir+json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // A Bundle that is not a message, with no entries: 422 listing each problem.
    let (s, o) = app
        .process(&json!({"resourceType": "Bundle", "type": "collection"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let codes: Vec<&str> = o["issue"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["diagnostics"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"invalid_bundle_type") && codes.contains(&"missing_message_header"),
        "{codes:?}"
    );
    // A message id that cannot be an idempotency key is refused at it.
    let (_, mut bundle) = examples().remove(0);
    bundle["identifier"]["value"] = "x".repeat(300).into();
    let (s, o) = app.process(&bundle).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(o["issue"][0]["expression"][0], "Bundle.identifier.value");
    assert_eq!(o["issue"][0]["diagnostics"], "invalid_message_id");
}

#[tokio::test]
async fn metadata_is_a_capability_statement_and_the_formulary_lists_dmd_codes() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/fhir/R4/metadata"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/fhir+json");
    let c: Value = r.json().await.unwrap();
    assert_eq!(c["resourceType"], "CapabilityStatement");
    assert_eq!(c["fhirVersion"], "4.0.1");
    assert_eq!(c["rest"][0]["operation"][0]["name"], "process-message");
    let (s, f) = app.get_json("/v1/formulary", &app.test_key).await;
    assert_eq!(s, StatusCode::OK);
    assert!(f["dmd_version"].is_string());
    let products = f["products"].as_array().unwrap();
    assert!(!products.is_empty());
    for p in products {
        let codes = p["dmd"]
            .as_array()
            .unwrap_or_else(|| panic!("{}: no dmd list", p["code"]));
        for c in codes {
            assert!(
                c["code"].is_string() && c["source"].as_str().is_some_and(|s| !s.is_empty()),
                "{c}"
            );
        }
    }
}
