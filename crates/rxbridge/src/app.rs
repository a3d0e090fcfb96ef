//! The embedded rxbridge: the SQLite store, the key file and the document directory in one
//! data directory, wired into an [`App`].

use crate::{Backend, Config, load_vault, wire};
use anyhow::Context as _;
use rxbridge_app::{Clock, SystemClock};
use rxbridge_http::AppState;
use rxbridge_store_sqlite::{SqliteStore, Tuning};
use std::sync::Arc;

/// Everything a running rxbridge holds.
pub struct App {
    pub config: Config,
    pub store: Arc<SqliteStore>,
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
    /// Webhook delivery.
    pub outbox: Arc<rxbridge_app::outbox::Outbox>,
}

impl App {
    /// Open the data directory (creating it) and wire the store, vault and use cases.
    pub fn open(config: Config) -> anyhow::Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        Self::open_tuned(config, clock, Tuning::from_env())
    }

    /// Open for loading many records while nothing else uses the data directory
    /// (`rxbridge dev seed`): the store gets a large page cache and WAL ([`Tuning::bulk_load`]).
    pub fn open_for_bulk_load(config: Config) -> anyhow::Result<Self> {
        Self::open_tuned(config, Arc::new(SystemClock), Tuning::bulk_load())
    }

    fn open_tuned(config: Config, clock: Arc<dyn Clock>, tuning: Tuning) -> anyhow::Result<Self> {
        config.validate()?;
        // Owner-only: the directory, the database and its WAL, the key file, documents, mail.
        crate::files::private_dir(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let vault = load_vault(&config)?;
        let store = Arc::new(SqliteStore::open_tuned(config.db_path(), tuning)?);
        let documents = Arc::new(
            crate::documents::FileDocuments::new(config.data_dir.join("documents"), vault.clone())
                .with_context(|| {
                    format!("creating {}", config.data_dir.join("documents").display())
                })?,
        );
        let stats_store = store.clone();
        let wired = wire(
            &config,
            Backend {
                store: store.clone(),
                staff: store.clone(),
                outbox: store.clone(),
                registers: store.clone(),
                prescriber_keys: store.clone(),
                documents,
                vault,
                metrics: Some(Arc::new(move |out: &mut String| {
                    stats_store.stats().render(out)
                })),
            },
            clock,
        )?;
        Ok(Self {
            config,
            store,
            state: wired.state,
            clinical: wired.clinical,
            staff: wired.staff,
            payments: wired.payments,
            finance: wired.finance,
            fulfilment: wired.fulfilment,
            outbox: wired.outbox,
        })
    }

    pub fn router(&self) -> axum::Router {
        rxbridge_http::router_with_timeout(
            self.state.clone(),
            std::time::Duration::from_secs(self.config.request_timeout_secs),
        )
    }
}
