//! The rxbridge binary's library half: typed configuration and the wiring of adapters, use
//! cases and the HTTP server. `main.rs` is the CLI on top; the black-box tests start the real
//! server through `spawn`.

pub mod seed;

use anyhow::{Context as _, bail};
use rxbridge_app::clinics::Clinics;
use rxbridge_app::intake::Intake;
use rxbridge_app::{Clock, PatientVault, Store, SystemClock};
use rxbridge_domain::compliance::Thresholds;
use rxbridge_http::AppState;
use rxbridge_store_sqlite::SqliteStore;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Settings, layered: built-in defaults, then the optional TOML file, then `RXBRIDGE_*`
/// environment variables, then command-line flags. A bad value fails at start with its name.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `RXBRIDGE_DATA_DIR`: where the database, key file and documents live.
    pub data_dir: PathBuf,
    /// `RXBRIDGE_LISTEN`: address to serve on.
    pub listen: String,
    /// `RXBRIDGE_PATIENT_KEY`: 64 hex characters. When unset, a key file
    /// `<data_dir>/patient-data.key` (mode 0600) is used, created on first run.
    pub patient_key: Option<String>,
    /// `RXBRIDGE_SECURE_COOKIES`: served behind TLS — staff cookies get `Secure`, responses HSTS.
    pub secure_cookies: bool,
    /// `RXBRIDGE_REQUEST_TIMEOUT_SECS`: a request (body included) taking longer gets 408.
    pub request_timeout_secs: u64,
    /// Compliance thresholds that are guidance rather than law.
    pub compliance: Thresholds,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./rxbridge-data"),
            listen: "127.0.0.1:8080".into(),
            patient_key: None,
            request_timeout_secs: 30,
            secure_cookies: false,
            compliance: Thresholds::default(),
        }
    }
}

impl Config {
    /// Defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut c = match file {
            Some(f) => {
                let text = std::fs::read_to_string(f)
                    .with_context(|| format!("reading config file {}", f.display()))?;
                toml::from_str(&text).with_context(|| format!("config file {}", f.display()))?
            }
            None => Config::default(),
        };
        if let Ok(v) = std::env::var("RXBRIDGE_DATA_DIR") {
            c.data_dir = v.into();
        }
        if let Ok(v) = std::env::var("RXBRIDGE_LISTEN") {
            c.listen = v;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_PATIENT_KEY") {
            c.patient_key = Some(v);
        }
        if let Ok(v) = std::env::var("RXBRIDGE_SECURE_COOKIES") {
            c.secure_cookies = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Ok(v) = std::env::var("RXBRIDGE_REQUEST_TIMEOUT_SECS") {
            c.request_timeout_secs = v.parse().with_context(|| {
                format!("RXBRIDGE_REQUEST_TIMEOUT_SECS must be a whole number, got {v:?}")
            })?;
        }
        for (name, slot) in [
            (
                "RXBRIDGE_CD_MAX_DAYS_SUPPLY",
                &mut c.compliance.cd_max_days_supply,
            ),
            (
                "RXBRIDGE_EARLY_SUPPLY_ELAPSED_PERCENT",
                &mut c.compliance.early_supply_elapsed_percent,
            ),
            (
                "RXBRIDGE_ADDRESS_MAX_PATIENTS",
                &mut c.compliance.address_max_patients,
            ),
        ] {
            if let Ok(v) = std::env::var(name) {
                *slot = v
                    .parse()
                    .with_context(|| format!("{name} must be a whole number, got {v:?}"))?;
            }
        }
        Ok(c)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen
            .parse::<SocketAddr>()
            .with_context(|| format!("listen: {:?} is not HOST:PORT", self.listen))?;
        let t = &self.compliance;
        if t.early_supply_elapsed_percent > 100 {
            bail!("compliance.early_supply_elapsed_percent must be 0 to 100");
        }
        if !(1..=600).contains(&self.request_timeout_secs) {
            bail!("request_timeout_secs must be 1 to 600");
        }
        if t.cd_max_days_supply == 0 || t.address_max_patients == 0 {
            bail!(
                "compliance.cd_max_days_supply and compliance.address_max_patients must be at least 1"
            );
        }
        Ok(())
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("rxbridge.db")
    }
}

/// The patient-data key: from config, or the key file (created 0600 on first run).
pub fn load_vault(config: &Config) -> anyhow::Result<PatientVault> {
    if let Some(k) = &config.patient_key {
        return PatientVault::from_hex(k).context("RXBRIDGE_PATIENT_KEY / patient_key");
    }
    let path = config.data_dir.join("patient-data.key");
    if !path.exists() {
        write_secret_file(&path, &PatientVault::generate_key_hex())?;
        tracing::info!(path = %path.display(), "created a new patient-data key file; back it up with the database");
    }
    let hex =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    PatientVault::from_hex(&hex).with_context(|| format!("the key file {}", path.display()))
}

/// Write a file readable by its owner only (0600), refusing to overwrite.
pub fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// Everything a running rxbridge holds.
pub struct App {
    pub config: Config,
    pub store: Arc<SqliteStore>,
    pub state: AppState,
    /// The pharmacist's decisions (the staff portal of issue #4 will serve them).
    pub clinical: Arc<rxbridge_app::clinical::ClinicalCheck>,
    /// Staff accounts, sign-in and sessions.
    pub staff: Arc<rxbridge_app::staff::StaffService>,
}

impl App {
    /// Open the data directory (creating it) and wire the store, vault and use cases.
    pub fn open(config: Config) -> anyhow::Result<Self> {
        Self::open_with_clock(config, Arc::new(SystemClock))
    }

    pub fn open_with_clock(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Self> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let vault = load_vault(&config)?;
        let store = Arc::new(SqliteStore::open(config.db_path())?);
        let dyn_store: Arc<dyn Store> = store.clone();
        let intake = Arc::new(Intake::new(
            dyn_store.clone(),
            vault,
            clock.clone(),
            config.compliance.clone(),
        ));
        let clinics = Arc::new(Clinics::new(dyn_store.clone(), clock.clone()));
        let clinical = Arc::new(rxbridge_app::clinical::ClinicalCheck::new(
            dyn_store.clone(),
            clock.clone(),
            intake.clone(),
        ));
        let staff = Arc::new(rxbridge_app::staff::StaffService::new(
            store.clone(),
            clock.clone(),
        ));
        let documents = Arc::new(
            rxbridge_app::originals::FileDocuments::new(config.data_dir.join("documents"))
                .with_context(|| {
                    format!("creating {}", config.data_dir.join("documents").display())
                })?,
        );
        let originals = Arc::new(rxbridge_app::originals::Originals::new(
            dyn_store.clone(),
            documents,
            intake.clone(),
            clock.clone(),
        ));
        let stats_store = store.clone();
        let extra: rxbridge_http::metrics::ExtraMetrics =
            Arc::new(move |out: &mut String| stats_store.stats().render(out));
        let state = AppState::new(intake, clinics, dyn_store, clock, Some(extra)).with_portal(
            rxbridge_http::portal::Portal {
                staff: staff.clone(),
                clinical: clinical.clone(),
                originals,
                secure_cookies: config.secure_cookies,
            },
        );
        Ok(Self {
            config,
            store,
            state,
            clinical,
            staff,
        })
    }

    pub fn router(&self) -> axum::Router {
        rxbridge_http::router_with_timeout(
            self.state.clone(),
            std::time::Duration::from_secs(self.config.request_timeout_secs),
        )
    }
}

/// Serve until `shutdown` resolves, then finish in-flight requests and flush the store.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let router = app.router();
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await?;
    app.store.close();
    Ok(())
}

/// A server started on a free port (tests, benchmarks).
pub struct Running {
    pub addr: SocketAddr,
    pub clinics: Arc<Clinics>,
    pub staff: Arc<rxbridge_app::staff::StaffService>,
    pub store: Arc<SqliteStore>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Stop gracefully and wait until the store is flushed.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Start the server on `config.listen` (use port 0 for a free port; `Running::addr` says which).
pub async fn spawn(config: Config) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let app = App::open(config)?;
    let (clinics, store, staff) = (
        app.state.clinics.clone(),
        app.store.clone(),
        app.staff.clone(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(app, listener, async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        clinics,
        store,
        staff,
        stop: Some(tx),
        task: Some(task),
    })
}
