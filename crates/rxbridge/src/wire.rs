//! Wiring: every use case and the HTTP state built on a [`Backend`] (the embedded store or
//! AWS), with the notifier and payment provider the config asks for.

use crate::{Config, mail, webhooks};
use rxbridge_app::clinics::Clinics;
use rxbridge_app::intake::Intake;
use rxbridge_app::{Clock, PatientVault, Store};
use rxbridge_http::AppState;
use secrecy::{ExposeSecret as _, SecretString};
use std::sync::Arc;

/// The secrets as the use cases take them (they verify signatures with every one).
fn exposed(secrets: &[SecretString]) -> Vec<String> {
    secrets
        .iter()
        .map(|s| s.expose_secret().to_string())
        .collect()
}

/// The closing line of patient emails, from the mail settings (sender, reply-to, contact).
pub fn contact_line(config: &Config) -> String {
    let m = &config.mail;
    rxbridge_app::payments::contact_line(
        mail::replies_read(&m.from, m.reply_to.as_deref()),
        m.contact.as_deref(),
    )
}

/// The notifier the config asks for.
pub fn notifier(config: &Config) -> anyhow::Result<Arc<dyn rxbridge_app::payments::Notifier>> {
    let m = &config.mail;
    let sender = mail::Sender {
        from: m.from.clone(),
        reply_to: m.reply_to.clone(),
    };
    Ok(match m.transport.as_str() {
        "smtp" => Arc::new(mail::Smtp::new(
            m.smtp_host.as_deref().unwrap_or_default(),
            m.smtp_port,
            m.smtp_security,
            m.smtp_username.clone().map(|u| {
                (
                    u,
                    m.smtp_password
                        .as_ref()
                        .map(|p| p.expose_secret().to_string())
                        .unwrap_or_default(),
                )
            }),
            sender,
        )?),
        _ => Arc::new(mail::EmlDirectory::new(
            config.data_dir.join("mail"),
            sender,
        )?),
    })
}

/// The adapters a running rxbridge is built on: the embedded store (`App::open`) or
/// DynamoDB, S3 and KMS on AWS (the `rxbridge-aws` crate). The use cases and the router are
/// the same either way.
pub struct Backend {
    pub store: Arc<dyn Store>,
    pub staff: Arc<dyn rxbridge_app::staff::StaffStore>,
    pub outbox: Arc<dyn rxbridge_app::outbox::OutboxStore>,
    pub registers: Arc<dyn rxbridge_app::registers::RegisterStore>,
    pub prescriber_keys: Arc<dyn rxbridge_app::signatures::PrescriberKeyStore>,
    pub documents: Arc<dyn rxbridge_app::originals::Documents>,
    pub vault: PatientVault,
    /// Store-specific lines for `/metrics`.
    pub metrics: Option<rxbridge_http::metrics::ExtraMetrics>,
}

impl Backend {
    /// Every port on one store that implements them all (SQLite, DynamoDB).
    pub fn on<S>(
        store: Arc<S>,
        documents: Arc<dyn rxbridge_app::originals::Documents>,
        vault: PatientVault,
    ) -> Self
    where
        S: Store
            + rxbridge_app::staff::StaffStore
            + rxbridge_app::outbox::OutboxStore
            + rxbridge_app::registers::RegisterStore
            + rxbridge_app::signatures::PrescriberKeyStore
            + 'static,
    {
        Self {
            store: store.clone(),
            staff: store.clone(),
            outbox: store.clone(),
            registers: store.clone(),
            prescriber_keys: store,
            documents,
            vault,
            metrics: None,
        }
    }
}

/// The use cases and the HTTP state, wired on a backend.
pub struct Wired {
    pub state: AppState,
    /// The pharmacist's decisions (the staff portal serves them).
    pub clinical: Arc<rxbridge_app::clinical::ClinicalCheck>,
    /// Staff accounts, sign-in and sessions.
    pub staff: Arc<rxbridge_app::staff::StaffService>,
    /// Payments: links, checkout, webhooks, refunds, the sweep.
    pub payments: Arc<rxbridge_app::payments::Payments>,
    /// Month-end exports.
    pub finance: Arc<rxbridge_app::finance::Finance>,
    /// Release, warehouse events, registers, expiry.
    pub fulfilment: Arc<rxbridge_app::fulfilment::Fulfilment>,
    /// Webhook delivery (and EPS messages, through `eps`).
    pub outbox: Arc<rxbridge_app::outbox::Outbox>,
    /// NHS EPS dispensing, when `eps.base_url` is set.
    pub eps: Option<Arc<crate::eps::Eps>>,
}

/// Wire every use case and the router's state on `backend`.
pub fn wire(config: &Config, backend: Backend, clock: Arc<dyn Clock>) -> anyhow::Result<Wired> {
    let Backend {
        store: dyn_store,
        staff: staff_store,
        outbox: outbox_store,
        registers,
        prescriber_keys,
        documents,
        vault,
        metrics,
    } = backend;
    let intake = Arc::new(Intake::new(
        dyn_store.clone(),
        prescriber_keys,
        vault,
        clock.clone(),
        config.compliance.clone(),
    ));
    let clinics = Arc::new(Clinics::new(dyn_store.clone(), clock.clone()));
    let public_url = config.public_url();
    let live: Arc<dyn rxbridge_app::payments::PaymentProvider> =
        match config.payments.provider.as_str() {
            "stripe" => Arc::new(rxbridge_stripe::StripeProvider::new(
                &config.stripe.api_base,
                config
                    .stripe
                    .secret_key
                    .as_ref()
                    .map(|k| k.expose_secret())
                    .unwrap_or_default(),
            )?),
            _ => {
                let mac_intake = intake.clone();
                Arc::new(rxbridge_app::payments::SandboxProvider::new(
                    &public_url,
                    move |v| mac_intake.vault().lookup("sandbox-provider", v),
                ))
            }
        };
    let notify = notifier(config)?;
    let payments = Arc::new(rxbridge_app::payments::Payments::new(
        dyn_store.clone(),
        clock.clone(),
        intake.clone(),
        live,
        Arc::new(rxbridge_stripe::StripeEvents::new(exposed(
            &config.stripe.webhook_secrets,
        ))),
        notify.clone(),
        rxbridge_app::payments::PaymentsConfig {
            public_url,
            fees: config.pricing,
            window: jiff::SignedDuration::from_hours(i64::from(config.payments.window_hours)),
            reminder_after: jiff::SignedDuration::from_hours(i64::from(
                config.payments.reminder_after_hours,
            )),
            session_lifetime: jiff::SignedDuration::from_hours(24),
            pharmacy_name: config.pharmacy.name.clone(),
            contact_line: contact_line(config),
        },
    ));
    let finance = Arc::new(rxbridge_app::finance::Finance::new(
        dyn_store.clone(),
        intake.vault().clone(),
        clock.clone(),
        rxbridge_app::finance::FinanceConfig {
            pharmacy_name: config.pharmacy.name.clone(),
            private_dispensing_code: config.pharmacy.private_dispensing_code.clone(),
        },
    ));
    let eps = crate::eps::Eps::from_settings(
        &config.eps,
        &config.pharmacy.name,
        intake.clone(),
        dyn_store.clone(),
        documents.clone(),
        clock.clone(),
    )?
    .map(Arc::new);
    let mut outbox = rxbridge_app::outbox::Outbox::new(
        outbox_store.clone(),
        Arc::new(webhooks::HttpWebhooks::new(
            webhooks::UrlPolicy::from_settings(&config.webhooks),
        )?),
        clock.clone(),
        intake.vault().clone(),
    );
    if let Some(eps) = &eps {
        outbox = outbox.with_eps(eps.clone());
    }
    let outbox = Arc::new(outbox);
    let fulfilment = Arc::new(rxbridge_app::fulfilment::Fulfilment::new(
        dyn_store.clone(),
        registers.clone(),
        outbox_store,
        intake.vault().clone(),
        payments.clone(),
        notify,
        clock.clone(),
        rxbridge_app::fulfilment::FulfilmentConfig {
            skus: config.warehouse.skus.clone(),
            inbound_secrets: exposed(&config.warehouse.inbound_secrets),
            pharmacy_name: config.pharmacy.name.clone(),
            contact_line: contact_line(config),
        },
    ));
    let clinical = Arc::new(rxbridge_app::clinical::ClinicalCheck::new(
        dyn_store.clone(),
        clock.clone(),
        intake.vault().clone(),
        payments.clone(),
    ));
    let staff = Arc::new(rxbridge_app::staff::StaffService::new(
        staff_store,
        clock.clone(),
    ));
    let originals = Arc::new(rxbridge_app::originals::Originals::new(
        dyn_store.clone(),
        documents,
        intake.vault().clone(),
        clock.clone(),
    ));
    let views = Arc::new(rxbridge_app::staff_view::StaffViews::new(
        dyn_store.clone(),
        intake.vault().clone(),
        clock.clone(),
        payments.clone(),
    ));
    let webhook_admin = Arc::new(rxbridge_app::webhook_admin::WebhookAdmin::new(
        outbox.clone(),
        dyn_store.clone(),
        clock.clone(),
    ));
    let gauges = outbox.gauges.clone();
    let extra: rxbridge_http::metrics::ExtraMetrics = Arc::new(move |out: &mut String| {
        if let Some(m) = &metrics {
            m(out);
        }
        gauges.render(out);
        rxbridge_app::state::render_metrics(out);
    });
    let seal = intake.vault().derived("portal-flash/v1");
    let services = rxbridge_http::Services {
        intake,
        clinics,
        store: dyn_store,
        clock,
        payments: payments.clone(),
        finance: finance.clone(),
        fulfilment: fulfilment.clone(),
        outbox: outbox.clone(),
        registers,
        dmd: Arc::new(crate::eps::dmd_table(&config.eps)?),
    };
    let portal = rxbridge_http::portal::Portal {
        seal,
        staff: staff.clone(),
        views,
        clinical: clinical.clone(),
        originals,
        webhooks: webhook_admin,
        hsts: config.secure_cookies,
        external: None,
    };
    let policy = webhooks::UrlPolicy::from_settings(&config.webhooks);
    let url_guard: rxbridge_http::UrlGuard = Arc::new(move |d: &str, u: &str| {
        webhooks::check_url(u, &policy, webhooks::is_sandbox(d)).map(|_| ())
    });
    let state = AppState::new(
        services,
        portal,
        url_guard,
        rxbridge_http::openapi::document_for(&config.public_url()),
        Some(extra),
    );
    Ok(Wired {
        state,
        clinical,
        staff,
        payments,
        finance,
        fulfilment,
        outbox,
        eps,
    })
}
