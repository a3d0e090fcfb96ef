//! The embedded rxbridge: the SQLite store, the key file and the document directory in one
//! data directory, wired into an [`App`].

use crate::{Backend, Config, Wired, load_vault, wire};
use anyhow::Context as _;
use rxbridge_app::{Clock, SystemClock};
use rxbridge_store_sqlite::{SqliteStore, Tuning};
use std::sync::Arc;

/// Everything a running rxbridge holds: its settings, the store, and the use cases wired on it
/// (reached through `Deref`: `app.payments`, `app.state`).
pub struct App {
    pub config: Config,
    pub store: Arc<SqliteStore>,
    pub wired: Wired,
}

impl std::ops::Deref for App {
    type Target = Wired;
    fn deref(&self) -> &Wired {
        &self.wired
    }
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
        let mut backend = Backend::on(store.clone(), documents, vault);
        backend.metrics = Some(Arc::new(move |out: &mut String| {
            stats_store.stats().render(out)
        }));
        let wired = wire(&config, backend, clock)?;
        Ok(Self {
            config,
            store,
            wired,
        })
    }

    pub fn router(&self) -> axum::Router {
        rxbridge_http::router_with_timeout(
            self.state.clone(),
            std::time::Duration::from_secs(self.config.request_timeout_secs),
        )
    }
}
