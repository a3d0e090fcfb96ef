//! The OpenAPI 3.1 document, generated from the handlers' annotations and the schema types,
//! with `servers` naming where this deployment answers and `webhooks` listing what it sends.

pub mod fhir;
pub mod views;
pub mod webhooks;

use crate::handlers;
use crate::problem::{FieldError, Problem};
use crate::schema::*;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};
use views::*;

struct BearerAuth;
impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A clinic API key: rxb_test_… (sandbox) or rxb_live_…"))
                    .build(),
            ),
        );
    }
}

/// Every operation that declares no security requirement is public: say so with
/// `security: []` (an explicit "no authentication"), so no reader or linter has to guess.
struct PublicOperations;
impl Modify for PublicOperations {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.options,
                &mut item.head,
                &mut item.patch,
                &mut item.trace,
            ]
            .into_iter()
            .flatten()
            {
                op.security.get_or_insert_with(Vec::new);
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rxbridge clinic API",
        version = "1.0.0",
        description = "Submit UK prescriptions (private and NHS) for ADHD medicines to the pharmacy. Every error is RFC 9457 problem+json; 422 lists every contract violation with a JSON pointer."
    ),
    paths(
        handlers::submit, handlers::validate, handlers::get_one, handlers::list, handlers::cancel, handlers::query_response,
        handlers::formulary, handlers::rules, handlers::healthz, handlers::readyz,
        crate::warehouse::warehouse_event, crate::payments::webhook,
        crate::fhir::process_message, crate::fhir::metadata
    ),
    components(schemas(
        PrescriptionIn, CancelIn, QueryResponseIn, Problem, FieldError, PrescriptionView, DryRunView, PrescriptionList,
        FindingView, ItemView, Links, TimelineEntry, PrescriptionStatus, FindingSeverity, PrescriptionKind, NhsExemptionState,
        webhooks::PrescriptionStatusChangedEvent, webhooks::FulfilmentRequestedEvent, webhooks::FulfilmentCancelledEvent, handlers::FormularyView, handlers::FormularyProduct, handlers::DmdCodeView, handlers::RulesView, handlers::Health,
        fhir::PrescriptionOrderBundle, fhir::OperationOutcome, fhir::CapabilityStatement
    )),
    modifiers(&BearerAuth, &PublicOperations),
    tags(
        (name = "prescriptions", description = "Submit, validate, read, list and cancel prescriptions"),
        (name = "reference", description = "The formulary and the compliance rules"),
        (name = "operations", description = "Health checks"),
        (name = "webhooks", description = "What rxbridge sends: Standard Webhooks, signed with the endpoint's secret, delivered at least once, in order per prescription"),
        (name = "warehouse", description = "For the warehouse only: the events it sends back (signed Standard Webhooks)"),
        (name = "payments", description = "For the payment provider only: its signed event notifications"),
        (name = "fhir", description = "FHIR R4 intake: NHS EPS prescription-order messages, answered in FHIR")
    )
)]
pub struct ApiDoc;

/// The document as JSON text with a relative server (`/`: wherever it was fetched from). The
/// same bytes on every machine, for tests and for a copy checked outside a deployment.
pub fn document() -> String {
    document_for("/")
}

/// The document as a deployment serves it (rendered once at start-up): `servers` names its
/// public URL, so generated clients and API consoles call the right host.
pub fn document_for(public_url: &str) -> String {
    let mut doc = ApiDoc::openapi();
    let mut server = Server::new(public_url);
    server.description = Some("This rxbridge deployment".into());
    doc.servers = Some(vec![server]);
    // utoipa 5 has no `webhooks` map: it is added to the rendered JSON here, in one place.
    let mut json = serde_json::to_value(&doc).unwrap_or_default();
    json["webhooks"] = webhooks::webhooks();
    serde_json::to_string_pretty(&json).unwrap_or_else(|_| "{}".into())
}
