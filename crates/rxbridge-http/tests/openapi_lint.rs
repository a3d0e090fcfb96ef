//! What the OpenAPI document promises integrators beyond its examples: a server, an explicit
//! security requirement on every operation, unique descriptive operation ids, and every closed
//! set the server enforces stated as an enum with exactly the values the domain knows.

use rxbridge_domain::compliance::Severity;
use rxbridge_domain::lifecycle::ALL_STATUSES;
use serde_json::Value;

fn doc() -> Value {
    serde_json::from_str(&rxbridge_http::openapi::document()).unwrap()
}

fn operations(d: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((method.clone(), path.clone(), op.clone()));
        }
    }
    out
}

fn enum_of(d: &Value, schema: &str) -> Vec<String> {
    d["components"]["schemas"][schema]["enum"]
        .as_array()
        .unwrap_or_else(|| panic!("{schema} has no enum"))
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn servers_name_the_public_url_and_default_to_relative() {
    assert_eq!(doc()["servers"][0]["url"], "/");
    let d: Value = serde_json::from_str(&rxbridge_http::openapi::document_for(
        "https://rx.example.co.uk",
    ))
    .unwrap();
    assert_eq!(d["servers"][0]["url"], "https://rx.example.co.uk");
}

#[test]
fn operation_ids_are_the_documented_unique_names() {
    let d = doc();
    let mut ids: Vec<(String, String)> = operations(&d)
        .into_iter()
        .map(|(m, p, op)| {
            (
                format!("{m} {p}"),
                op["operationId"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    ids.sort();
    let expected = [
        ("get /healthz", "checkLiveness"),
        ("get /readyz", "checkReadiness"),
        ("get /v1/formulary", "getFormulary"),
        ("get /v1/prescriptions", "listPrescriptions"),
        ("get /v1/prescriptions/{id}", "getPrescription"),
        ("get /v1/rules", "listRules"),
        ("post /v1/prescriptions", "submitPrescription"),
        ("post /v1/prescriptions/validate", "validatePrescription"),
        ("post /v1/prescriptions/{id}/cancel", "cancelPrescription"),
        (
            "post /v1/prescriptions/{id}/query-response",
            "answerPrescriptionQuery",
        ),
        ("post /v1/warehouse/events", "receiveWarehouseEvent"),
        ("post /v1/payments/stripe/webhook", "receiveStripeEvent"),
    ];
    for (op, id) in expected {
        assert!(
            ids.iter().any(|(o, i)| o == op && i == id),
            "{op} should be {id}: {ids:?}"
        );
    }
    let mut unique: Vec<_> = ids.iter().map(|(_, i)| i.clone()).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "operation ids repeat: {ids:?}");
}

#[test]
fn every_operation_states_its_security_and_a_client_error() {
    let d = doc();
    for (m, p, op) in operations(&d) {
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{m} {p} has no security"));
        // Public, or authenticated by a signature over the body rather than an API key.
        let public = [
            "/healthz",
            "/readyz",
            "/v1/formulary",
            "/v1/rules",
            "/v1/warehouse/events",
            "/v1/payments/stripe/webhook",
            "/fhir/R4/metadata",
        ]
        .contains(&p.as_str());
        if public {
            assert!(security.is_empty(), "{m} {p} is public: security: []");
        } else {
            assert_eq!(security[0]["bearer"], serde_json::json!([]), "{m} {p}");
        }
        assert!(
            op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .any(|k| k.starts_with('4')),
            "{m} {p} has no 4xx answer"
        );
    }
}

#[test]
fn closed_sets_are_enums_with_exactly_the_domain_values() {
    let d = doc();
    let statuses: Vec<String> = ALL_STATUSES.iter().map(|s| s.as_str().into()).collect();
    assert_eq!(enum_of(&d, "PrescriptionStatus"), statuses);
    let s = &d["components"]["schemas"];
    for (schema, field) in [
        ("PrescriptionView", "status"),
        ("DryRunView", "would_be_status"),
    ] {
        assert_eq!(
            s[schema]["properties"][field]["$ref"], "#/components/schemas/PrescriptionStatus",
            "{schema}.{field}"
        );
    }
    let filter = d["paths"]["/v1/prescriptions"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "status")
        .unwrap()
        .clone();
    assert_eq!(
        filter["schema"]["$ref"],
        "#/components/schemas/PrescriptionStatus"
    );
    assert_eq!(
        enum_of(&d, "FindingSeverity"),
        [Severity::Block, Severity::Flag, Severity::Info].map(|s| s.as_str().to_string())
    );
    assert_eq!(
        s["FindingView"]["properties"]["severity"]["$ref"],
        "#/components/schemas/FindingSeverity"
    );
    assert_eq!(enum_of(&d, "PrescriptionKind"), ["private", "nhs"]);
    assert_eq!(
        enum_of(&d, "AuthorityKindIn"),
        ["paper_fp10pcd", "paper_fp10", "eps", "electronic_private"]
    );
    assert!(enum_of(&d, "PrescriberKindIn").contains(&"nurse_independent".to_string()));
}

#[test]
fn webhooks_and_inbound_event_endpoints_are_documented_with_their_signatures() {
    let d = doc();
    for event in [
        "prescription.status_changed",
        "fulfilment.requested",
        "fulfilment.cancelled",
    ] {
        let op = &d["webhooks"][event]["post"];
        assert_eq!(op["tags"][0], "webhooks", "{event}");
        let names: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["webhook-id", "webhook-timestamp", "webhook-signature"],
            "{event}"
        );
        let schema = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .unwrap();
        assert!(
            d.pointer(schema.trim_start_matches('#')).is_some(),
            "{event}: {schema}"
        );
    }
    let headers = |path: &str| -> Vec<String> {
        d["paths"][path]["post"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "header" && p["required"] == true)
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    let wh = &d["paths"]["/v1/warehouse/events"]["post"];
    assert_eq!(wh["tags"][0], "warehouse");
    assert!(
        wh["description"]
            .as_str()
            .unwrap()
            .contains("not for clinics")
    );
    assert_eq!(
        headers("/v1/warehouse/events"),
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    );
    let stripe = &d["paths"]["/v1/payments/stripe/webhook"]["post"];
    assert_eq!(stripe["tags"][0], "payments");
    assert_eq!(headers("/v1/payments/stripe/webhook"), ["Stripe-Signature"]);
    assert_eq!(
        enum_of(&d, "WarehouseEventType"),
        [
            "stock_received",
            "picked",
            "dispatched",
            "delivered",
            "delivery_failed",
            "returned"
        ]
    );
    assert_eq!(enum_of(&d, "Mode"), ["test", "live"]);
}
