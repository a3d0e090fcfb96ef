//! The OpenAPI schemas of what the clinic API answers about a prescription. The answers
//! themselves are the intake use case's typed views (`rxbridge_app::views`), serialised as they
//! are; these mirror them field for field for the document, and a test holds the two together.

use rxbridge_domain::compliance::Severity;
use rxbridge_domain::lifecycle::ALL_STATUSES;
use rxbridge_domain::prescription::PrescriptionType as Kind;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

#[derive(ToSchema)]
pub struct FindingView {
    /// Stable rule code, e.g. `cd_expired`.
    pub code: String,
    /// `block` (the law forbids supply), `flag` (a pharmacist decides) or `info`.
    #[schema(value_type = FindingSeverity, example = "block")]
    pub severity: String,
    /// Index of the item concerned, or null for the whole prescription.
    pub item: Option<usize>,
    pub message: String,
    /// The regulation or guidance the rule comes from.
    #[schema(example = "MDR 2001 reg 16(1)(e)")]
    pub rule: String,
}

#[derive(ToSchema)]
pub struct ItemView {
    pub product_code: String,
    pub active_ingredient: String,
    pub quantity: u32,
    pub days_supply: u32,
}

#[derive(ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_: String,
    /// Present only while a cancel would take effect (until dispatch, and not once cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<String>,
}

#[derive(ToSchema)]
pub struct TimelineEntry {
    pub at: String,
    pub event: String,
    pub actor: String,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A prescription as the clinic sees it. `timeline` is present on `GET /v1/prescriptions/{id}`.
#[derive(ToSchema)]
pub struct PrescriptionView {
    #[schema(example = "rx_0192f0c2a1b27d3e8f00112233445566")]
    pub id: String,
    #[schema(value_type = PrescriptionStatus, example = "awaiting_original")]
    pub status: String,
    pub clinic_reference: String,
    #[serde(rename = "type")]
    #[schema(value_type = PrescriptionKind, example = "private")]
    pub kind: String,
    #[schema(example = "2026-11-20")]
    pub issued_on: String,
    pub items: Vec<ItemView>,
    pub findings: Vec<FindingView>,
    pub created_at: String,
    pub updated_at: String,
    pub links: Links,
    /// NHS prescriptions that did not carry the patient's charge exemption (an EPS message):
    /// `to_be_declared` until the patient declares it at the pharmacy (the prescription cannot
    /// be approved before), then `declared`. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<NhsExemptionState>, example = "to_be_declared")]
    pub nhs_exemption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntry>>,
}

/// The answer of the dry run.
#[derive(ToSchema)]
pub struct DryRunView {
    pub findings: Vec<FindingView>,
    #[schema(value_type = PrescriptionStatus, example = "awaiting_original")]
    pub would_be_status: String,
}

#[derive(ToSchema)]
pub struct PrescriptionList {
    pub data: Vec<PrescriptionView>,
    pub next_cursor: Option<String>,
}

/// A closed set of strings, as the OpenAPI document states it: the values come from the domain
/// enum itself, so the document cannot drift from what the server enforces.
fn string_enum(description: &str, values: impl IntoIterator<Item = &'static str>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

/// The schema of a prescription's `status` (the list filter accepts exactly these).
pub struct PrescriptionStatus;
impl PartialSchema for PrescriptionStatus {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "Where the prescription is in its lifecycle.",
            ALL_STATUSES.iter().map(|s| s.as_str()),
        )
        .into()
    }
}
impl ToSchema for PrescriptionStatus {}

/// The schema of a prescription's `nhs_exemption`.
pub struct NhsExemptionState;
impl PartialSchema for NhsExemptionState {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "Where the patient's NHS charge exemption stands: to be declared at the pharmacy, or declared.",
            rxbridge_domain::declaration::STATE_NAMES,
        )
        .into()
    }
}
impl ToSchema for NhsExemptionState {}

/// The schema of a finding's `severity`.
pub struct FindingSeverity;
impl PartialSchema for FindingSeverity {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "`block`: the law forbids supply; `flag`: a pharmacist decides; `info`: for the record.",
            [Severity::Block, Severity::Flag, Severity::Info].map(Severity::as_str),
        )
        .into()
    }
}
impl ToSchema for FindingSeverity {}

/// The schema of a prescription's `type`.
pub struct PrescriptionKind;
impl PartialSchema for PrescriptionKind {
    fn schema() -> RefOr<Schema> {
        string_enum(
            "A private or an NHS prescription.",
            [Kind::Private, Kind::Nhs].map(Kind::as_str),
        )
        .into()
    }
}
impl ToSchema for PrescriptionKind {}

#[cfg(test)]
mod tests {
    use rxbridge_app::views as app;
    use serde_json::{Value, json};
    use std::collections::BTreeSet;
    use utoipa::openapi::{RefOr, schema::Schema};

    /// The property names a schema declares, and those it requires.
    fn properties<T: utoipa::PartialSchema>() -> (BTreeSet<String>, BTreeSet<String>) {
        let RefOr::T(Schema::Object(o)) = T::schema() else {
            panic!("an object schema")
        };
        (
            o.properties.keys().cloned().collect(),
            o.required.iter().cloned().collect(),
        )
    }

    /// A view with every optional field present serialises to exactly the declared keys, and
    /// the required ones among them.
    fn same_shape<T: utoipa::PartialSchema>(v: &Value) {
        let keys: BTreeSet<String> = v.as_object().unwrap().keys().cloned().collect();
        let (declared, required) = properties::<T>();
        assert_eq!(keys, declared);
        assert!(required.is_subset(&keys), "{required:?} ⊄ {keys:?}");
    }

    #[test]
    fn the_schemas_describe_the_views_as_they_serialise() {
        let finding = app::FindingView {
            code: "c".into(),
            severity: "info".into(),
            item: None,
            message: "m".into(),
            rule: "r".into(),
        };
        let view = app::PrescriptionView {
            id: "rx_1".into(),
            status: "awaiting_original".into(),
            clinic_reference: "R".into(),
            kind: "private".into(),
            issued_on: "2026-11-20".into(),
            items: vec![app::ItemView {
                product_code: "p".into(),
                active_ingredient: "a".into(),
                quantity: 1,
                days_supply: 30,
            }],
            findings: vec![finding.clone()],
            created_at: "t".into(),
            updated_at: "t".into(),
            links: app::Links {
                self_: "/v1/prescriptions/rx_1".into(),
                cancel: Some("/v1/prescriptions/rx_1/cancel".into()),
            },
            nhs_exemption: Some("to_be_declared".into()),
            timeline: Some(vec![app::TimelineEntry {
                at: "t".into(),
                event: "e".into(),
                actor: "a".into(),
                detail: json!({}),
            }]),
        };
        let v = serde_json::to_value(&view).unwrap();
        same_shape::<super::PrescriptionView>(&v);
        same_shape::<super::ItemView>(&v["items"][0]);
        same_shape::<super::FindingView>(&v["findings"][0]);
        same_shape::<super::Links>(&v["links"]);
        same_shape::<super::TimelineEntry>(&v["timeline"][0]);
        let list = app::PrescriptionList {
            data: vec![view],
            next_cursor: None,
        };
        same_shape::<super::PrescriptionList>(&serde_json::to_value(&list).unwrap());
        let dry = app::DryRunView {
            findings: vec![finding],
            would_be_status: "awaiting_original".into(),
        };
        same_shape::<super::DryRunView>(&serde_json::to_value(&dry).unwrap());
    }
}
