//! The OpenAPI 3.1 document, generated from the handlers' annotations and the schema types.

use crate::handlers;
use crate::problem::{FieldError, Problem};
use crate::schema::*;
use rxbridge_app::views::*;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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

#[derive(OpenApi)]
#[openapi(
    info(
        title = "rxbridge clinic API",
        version = "1.0.0",
        description = "Submit UK prescriptions (private and NHS) for ADHD medicines to the pharmacy. Every error is RFC 9457 problem+json; 422 lists every contract violation with a JSON pointer."
    ),
    paths(
        handlers::submit, handlers::validate, handlers::get_one, handlers::list, handlers::cancel, handlers::query_response,
        handlers::formulary, handlers::rules, handlers::healthz, handlers::readyz
    ),
    components(schemas(
        PrescriptionIn, CancelIn, QueryResponseIn, Problem, FieldError, PrescriptionView, DryRunView, PrescriptionList,
        FindingView, ItemView, Links, TimelineEntry, handlers::FormularyView, handlers::RulesView, handlers::Health
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "prescriptions", description = "Submit, validate, read, list and cancel prescriptions"),
        (name = "reference", description = "The formulary and the compliance rules"),
        (name = "operations", description = "Health checks")
    )
)]
pub struct ApiDoc;

/// The document as JSON text (rendered once at start-up).
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".into())
}
