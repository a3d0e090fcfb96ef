//! The `OperationOutcome` bodies of the dispensing API's answers, read into typed issues, and
//! written by the stand-in in the specification's error shape.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The code system of the Spine's error codes in an issue's `details`.
pub const SPINE_ERRORS: &str = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode";

/// One `OperationOutcome.issue`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issue {
    pub severity: String,
    /// The FHIR issue type (`value`, `invalid`, `not-found`, `business-rule`, ...).
    pub code: String,
    /// The Spine's error code (`details.coding[0].code`), e.g. `MISSING_FIELD`.
    pub spine_code: Option<String>,
    /// `details.coding[0].display` or `diagnostics`: what the service said.
    pub text: Option<String>,
}

impl Issue {
    pub fn error(code: &str, spine_code: &str, text: &str) -> Self {
        Issue {
            severity: "error".into(),
            code: code.into(),
            spine_code: Some(spine_code.into()),
            text: Some(text.into()),
        }
    }
}

/// The issues of an `OperationOutcome` body; none when the body is not one.
pub fn read(body: &Value) -> Option<Vec<Issue>> {
    if body["resourceType"] != "OperationOutcome" {
        return None;
    }
    let issues = body["issue"].as_array()?;
    Some(
        issues
            .iter()
            .map(|i| {
                let coding = &i["details"]["coding"][0];
                Issue {
                    severity: i["severity"].as_str().unwrap_or("error").into(),
                    code: i["code"].as_str().unwrap_or("unknown").into(),
                    spine_code: coding["code"].as_str().map(Into::into),
                    text: coding["display"]
                        .as_str()
                        .or(i["diagnostics"].as_str())
                        .map(Into::into),
                }
            })
            .collect(),
    )
}

/// An `OperationOutcome` in the specification's shape (`details.coding` with a Spine code).
pub fn write(issues: &[Issue]) -> Value {
    let issue: Vec<Value> = issues
        .iter()
        .map(|i| {
            let mut v = json!({ "severity": i.severity, "code": i.code });
            if let Some(code) = &i.spine_code {
                v["details"] = json!({ "coding": [{
                    "system": SPINE_ERRORS,
                    "code": code,
                    "display": i.text.clone().unwrap_or_default(),
                }]});
            }
            if let Some(text) = &i.text {
                v["diagnostics"] = json!(text);
            }
            v
        })
        .collect();
    json!({ "resourceType": "OperationOutcome", "issue": issue })
}

/// The success answer: one informational issue, as the specification's examples.
pub fn ok() -> Value {
    json!({ "resourceType": "OperationOutcome", "issue": [{ "severity": "information", "code": "informational" }] })
}
