//! The state every handler shares: the use cases, the store and clock, the OpenAPI document,
//! metrics, the staff portal's use cases, and the adapter-side settings (the webhook URL
//! guard). Every part is required: a deployment builds all of them or does not start.

use crate::metrics::{ExtraMetrics, Metrics};
use crate::portal::Portal;
use rxbridge_app::clinics::Clinics;
use rxbridge_app::finance::Finance;
use rxbridge_app::fulfilment::Fulfilment;
use rxbridge_app::intake::Intake;
use rxbridge_app::outbox::Outbox;
use rxbridge_app::payments::Payments;
use rxbridge_app::registers::RegisterStore;
use rxbridge_app::{Clock, Store};
use std::sync::Arc;

/// Checks a webhook URL for a destination before it is stored; `Err` says why it is refused.
pub type UrlGuard = Arc<dyn Fn(&str, &str) -> Result<(), String> + Send + Sync>;

/// The use cases and ports the clinic API, the payment pages and the portal call.
#[derive(Clone)]
pub struct Services {
    pub intake: Arc<Intake>,
    pub clinics: Arc<Clinics>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// Payments (links, checkout, provider webhooks).
    pub payments: Arc<Payments>,
    /// Month-end exports (finance role).
    pub finance: Arc<Finance>,
    /// Release, warehouse events, registers.
    pub fulfilment: Arc<Fulfilment>,
    /// Webhook delivery.
    pub outbox: Arc<Outbox>,
    /// The CD and POM registers.
    pub registers: Arc<dyn RegisterStore>,
    /// The dm+d codes of the formulary's products (the FHIR door, `GET /v1/formulary`).
    pub dmd: Arc<rxbridge_fhir::DmdTable>,
}

/// The shared state; a clone is one reference count (axum clones it for every request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] holds.
#[derive(Clone)]
pub struct Shared {
    pub intake: Arc<Intake>,
    pub clinics: Arc<Clinics>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub openapi: Arc<String>,
    pub metrics: Arc<Metrics>,
    pub portal: Portal,
    pub payments: Arc<Payments>,
    pub finance: Arc<Finance>,
    pub fulfilment: Arc<Fulfilment>,
    pub outbox: Arc<Outbox>,
    pub registers: Arc<dyn RegisterStore>,
    pub dmd: Arc<rxbridge_fhir::DmdTable>,
    /// Checks a webhook URL before it is stored (the SSRF guard of the HTTP adapter).
    pub url_guard: UrlGuard,
}

impl AppState {
    /// Portal sign-in at an identity provider (Cognito on AWS), set at start-up before the
    /// state is shared (a copy is made if it already is).
    pub fn set_external_sign_in(&mut self, e: Arc<dyn rxbridge_app::staff::ExternalSignIn>) {
        Arc::make_mut(&mut self.0).portal.external = Some(e);
    }

    /// The state of one deployment; `openapi` is its OpenAPI document
    /// (`crate::openapi::document_for` its public URL), served at `/openapi.json`.
    pub fn new(
        services: Services,
        portal: Portal,
        url_guard: UrlGuard,
        openapi: String,
        extra_metrics: Option<ExtraMetrics>,
    ) -> Self {
        let Services {
            intake,
            clinics,
            store,
            clock,
            payments,
            finance,
            fulfilment,
            outbox,
            registers,
            dmd,
        } = services;
        Self(Arc::new(Shared {
            intake,
            clinics,
            store,
            clock,
            openapi: Arc::new(openapi),
            metrics: Arc::new(Metrics::new(extra_metrics)),
            portal,
            payments,
            finance,
            fulfilment,
            outbox,
            registers,
            dmd,
            url_guard,
        }))
    }
}
