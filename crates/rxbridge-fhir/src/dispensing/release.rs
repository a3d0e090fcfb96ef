//! `Task/$release`: the nominated-pharmacy release request, and its answer read into the
//! released prescriptions.

use serde_json::Value;

use super::codes::SHORT_FORM_ID;
use super::resources::{Contained, Parameter, Parameters, ReleaseResponse};
use super::types::Identifier;
use super::{Dispenser, Released};
use crate::{DmdTable, Mapped, NotABundle, map_order};

/// The release request for every prescription nominated to the dispenser's pharmacy, or, with
/// `prescription`, for the one with that short-form id.
pub fn release_request(id: &str, dispenser: &Dispenser, prescription: Option<&str>) -> Parameters {
    let mut parameter = Vec::new();
    if let Some(short_form) = prescription {
        parameter.push(Parameter {
            name: "group-identifier".into(),
            value_identifier: Some(Identifier::new(SHORT_FORM_ID, short_form)),
            ..Default::default()
        });
    }
    parameter.push(Parameter {
        name: "owner".into(),
        resource: Some(Contained::Organization(Box::new(
            dispenser.organization(None),
        ))),
        ..Default::default()
    });
    parameter.push(Parameter {
        name: "status".into(),
        value_code: Some("accepted".into()),
        ..Default::default()
    });
    parameter.push(Parameter {
        name: "agent".into(),
        resource: Some(Contained::PractitionerRole(Box::new(
            dispenser.role("agent", None),
        ))),
        ..Default::default()
    });
    Parameters {
        id: Some(id.into()),
        parameter,
    }
}

/// The release answer: the released `prescription-order` Bundles and the refused ones
/// (`OperationOutcome`s).
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub id: String,
    pub passed: Vec<Value>,
    pub failed: Vec<Value>,
}

impl Release {
    /// Reads a `Task/$release` answer body. An error says what is not as specified.
    pub fn parse(body: &Value) -> Result<Release, String> {
        let response: ReleaseResponse = serde_json::from_value(body.clone())
            .map_err(|e| format!("not a release answer: {e}"))?;
        if body["resourceType"] != "Parameters" {
            return Err("not a release answer: resourceType is not Parameters".into());
        }
        let id = response.id.clone().ok_or("the release answer has no id")?;
        let mut release = Release {
            id,
            passed: Vec::new(),
            failed: Vec::new(),
        };
        for p in response.parameter {
            let into = match p.name.as_str() {
                "passedPrescriptions" => &mut release.passed,
                "failedPrescriptions" => &mut release.failed,
                other => return Err(format!("unexpected release parameter {other:?}")),
            };
            into.extend(p.resource.entry.into_iter().map(|e| e.resource));
        }
        Ok(release)
    }

    /// Each released prescription, read for the dispensing messages about it.
    pub fn prescriptions(&self) -> Vec<Result<Released, String>> {
        self.passed
            .iter()
            .map(|b| Released::from_bundle(&self.id, b))
            .collect()
    }

    /// Each released prescription mapped onto the clinic contract, as the FHIR front door maps
    /// a clinic's message (the same findings follow).
    pub fn mapped(&self, dmd: &DmdTable) -> Vec<Result<Mapped, NotABundle>> {
        self.passed.iter().map(|b| map_order(b, dmd)).collect()
    }
}
