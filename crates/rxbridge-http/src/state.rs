//! The state every handler shares: the use cases, the store and clock, the OpenAPI document,
//! metrics, and the adapter-side settings (the webhook URL guard).

use rxbridge_app::clinics::Clinics;
use rxbridge_app::intake::Intake;
use rxbridge_app::{Clock, Store};
use std::sync::Arc;

/// Checks a webhook URL for a destination before it is stored; `Err` says why it is refused.
pub type UrlGuard = Arc<dyn Fn(&str, &str) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub intake: Arc<Intake>,
    pub clinics: Arc<Clinics>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub openapi: Arc<String>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The staff portal, when wired.
    pub portal: Option<crate::portal::Portal>,
    /// Payments (links, checkout, provider webhooks), when wired.
    pub payments: Option<Arc<rxbridge_app::payments::Payments>>,
    /// Month-end exports (finance role), when wired.
    pub finance: Option<Arc<rxbridge_app::finance::Finance>>,
    /// Release, warehouse events, registers, when wired.
    pub fulfilment: Option<Arc<rxbridge_app::fulfilment::Fulfilment>>,
    /// Webhook delivery, when wired.
    pub outbox: Option<Arc<rxbridge_app::outbox::Outbox>>,
    /// The CD and POM registers, when wired.
    pub registers: Option<Arc<dyn rxbridge_app::registers::RegisterStore>>,
    /// Checks a webhook URL before it is stored (the SSRF guard of the HTTP adapter).
    pub url_guard: UrlGuard,
}

impl AppState {
    pub fn new(
        intake: Arc<Intake>,
        clinics: Arc<Clinics>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        extra_metrics: Option<crate::metrics::ExtraMetrics>,
    ) -> Self {
        Self {
            intake,
            clinics,
            store,
            clock,
            openapi: Arc::new(crate::openapi::document()),
            metrics: Arc::new(crate::metrics::Metrics::new(extra_metrics)),
            portal: None,
            payments: None,
            finance: None,
            fulfilment: None,
            outbox: None,
            registers: None,
            url_guard: Arc::new(|_, _| Err("webhooks are not enabled".into())),
        }
    }

    pub fn with_fulfilment(
        mut self,
        fulfilment: Arc<rxbridge_app::fulfilment::Fulfilment>,
        outbox: Arc<rxbridge_app::outbox::Outbox>,
        registers: Arc<dyn rxbridge_app::registers::RegisterStore>,
        url_guard: UrlGuard,
    ) -> Self {
        self.fulfilment = Some(fulfilment);
        self.outbox = Some(outbox);
        self.registers = Some(registers);
        self.url_guard = url_guard;
        self
    }

    pub fn with_finance(mut self, finance: Arc<rxbridge_app::finance::Finance>) -> Self {
        self.finance = Some(finance);
        self
    }

    pub fn with_payments(mut self, payments: Arc<rxbridge_app::payments::Payments>) -> Self {
        self.payments = Some(payments);
        self
    }

    /// Serve the OpenAPI document with `servers` naming this deployment's public URL.
    pub fn with_public_url(mut self, public_url: &str) -> Self {
        self.openapi = Arc::new(crate::openapi::document_for(public_url));
        self
    }

    pub fn with_portal(mut self, portal: crate::portal::Portal) -> Self {
        self.portal = Some(portal);
        self
    }
}
