//! The rxbridge binary's library half: typed configuration and the wiring of adapters, use
//! cases and the HTTP server. `main.rs` is the CLI on top; the black-box tests start the real
//! server through `spawn`.

pub mod anchors;
pub mod mail;
pub mod seed;
pub mod server;
pub mod stripe;
pub mod warehouse_sim;
pub mod webhooks;

use anyhow::{Context as _, bail};
use rxbridge_app::clinics::Clinics;
use rxbridge_app::intake::Intake;
use rxbridge_app::{Clock, PatientVault, Store, SystemClock};
use rxbridge_domain::compliance::Thresholds;
use rxbridge_http::AppState;
use rxbridge_store_sqlite::{SqliteStore, Tuning};
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
    /// `RXBRIDGE_SECURE_COOKIES`: served behind TLS — responses carry HSTS. (Staff cookies are
    /// `Secure` and `__Host-` whatever this says.)
    pub secure_cookies: bool,
    /// `RXBRIDGE_REQUEST_TIMEOUT_SECS`: a request (body included) taking longer gets 408.
    pub request_timeout_secs: u64,
    /// `RXBRIDGE_HEADER_READ_TIMEOUT_SECS`: a connection whose request line and headers have
    /// not all arrived this long after it started waiting for them is closed.
    pub header_read_timeout_secs: u64,
    /// `RXBRIDGE_MAX_CONNECTIONS_PER_CLIENT`: open connections one client address (IPv6: one
    /// /64) may hold on the public listener; further ones are closed at once.
    pub max_connections_per_client: usize,
    /// Compliance thresholds that are guidance rather than law.
    pub compliance: Thresholds,
    /// `RXBRIDGE_PUBLIC_URL`: where patients reach this service (payment links are built on
    /// it). Default `http://<listen>`.
    pub public_url: Option<String>,
    pub pharmacy: PharmacyConfig,
    /// Private prescriptions' fees, in pence.
    pub pricing: rxbridge_domain::pricing::Fees,
    pub payments: PaymentsSettings,
    pub stripe: StripeSettings,
    pub mail: MailSettings,
    pub webhooks: WebhookSettings,
    pub warehouse: WarehouseSettings,
    pub metrics: MetricsSettings,
    /// Audit anchors: schedule, witness, trusted public key.
    pub audit: anchors::AuditSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// `RXBRIDGE_METRICS_LISTEN`: where `/metrics` is served, on a listener of its own (the
    /// public one answers 404 there); `off` serves it nowhere.
    pub listen: String,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            listen: DEFAULT_METRICS_LISTEN.into(),
        }
    }
}

/// Loopback only: a scraper on the same host (or a sidecar) reads it, the internet cannot.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";

impl MetricsSettings {
    /// The address to bind, or `None` when switched off.
    pub fn addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        if self.listen.trim().eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        self.listen
            .parse::<SocketAddr>()
            .map(Some)
            .with_context(|| {
                format!(
                    "metrics.listen (RXBRIDGE_METRICS_LISTEN): {:?} is not HOST:PORT or \"off\"",
                    self.listen
                )
            })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// `RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS`: allow `http`, any port and private, loopback
    /// or link-local endpoints for sandbox (test-mode) destinations — local stand-ins. Never
    /// for live destinations.
    pub allow_private_targets: bool,
    /// `RXBRIDGE_WEBHOOKS_ALLOWED_PORTS`, comma-separated: the ports `https` endpoints may use.
    pub allowed_ports: Vec<u16>,
    /// Set by `serve --demo` only (never from the file): the warehouse simulator's URL, whose
    /// origin sandbox deliveries may reach.
    #[serde(skip)]
    pub exempt_origin: Option<String>,
    /// How often the outbox worker looks for due messages.
    pub poll_interval_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_private_targets: false,
            allowed_ports: vec![443],
            exempt_origin: None,
            poll_interval_ms: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WarehouseSettings {
    /// `RXBRIDGE_WAREHOUSE_INBOUND_SECRETS`, comma-separated: the `whsec_…` secrets the
    /// warehouse signs its events with.
    pub inbound_secrets: Vec<String>,
    /// Formulary product code → warehouse SKU (the product code when absent).
    pub skus: std::collections::HashMap<String, String>,
    /// How often ready prescriptions are released and overdue ones expired.
    pub sweep_interval_secs: u64,
}

impl Default for WarehouseSettings {
    fn default() -> Self {
        Self {
            inbound_secrets: Vec::new(),
            skus: Default::default(),
            sweep_interval_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PharmacyConfig {
    /// Shown in patient emails and printed on exports.
    pub name: String,
    /// `RXBRIDGE_PRIVATE_DISPENSING_CODE`: the code the ICB issued for private CD submissions
    /// (FP34PCD); it differs from the ODS code.
    pub private_dispensing_code: Option<String>,
}

impl Default for PharmacyConfig {
    fn default() -> Self {
        Self {
            name: "rxbridge pharmacy".into(),
            private_dispensing_code: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentsSettings {
    /// `RXBRIDGE_PAYMENTS_PROVIDER`: `sandbox` (built-in checkout page, no money moves) or
    /// `stripe`, for live-mode payments. Test-mode (sandbox-key) payments always use the sandbox.
    pub provider: String,
    /// Unpaid this many hours after approval, a prescription is cancelled (and never later than
    /// its 28-day controlled-drug window).
    pub window_hours: u32,
    /// One reminder this many hours after the link.
    pub reminder_after_hours: u32,
    /// How often the sweep runs (links, reminders, cancellations, refunds).
    pub sweep_interval_secs: u64,
}

impl Default for PaymentsSettings {
    fn default() -> Self {
        Self {
            provider: "sandbox".into(),
            window_hours: 72,
            reminder_after_hours: 24,
            sweep_interval_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StripeSettings {
    /// `RXBRIDGE_STRIPE_API_BASE`.
    pub api_base: String,
    /// `RXBRIDGE_STRIPE_SECRET_KEY` (`sk_live_…` / `sk_test_…` or a restricted `rk_…` key).
    pub secret_key: Option<String>,
    /// `RXBRIDGE_STRIPE_WEBHOOK_SECRETS`, comma-separated: every `whsec_…` currently valid
    /// (two while one is rolled).
    pub webhook_secrets: Vec<String>,
}

impl Default for StripeSettings {
    fn default() -> Self {
        Self {
            api_base: "https://api.stripe.com".into(),
            secret_key: None,
            webhook_secrets: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// `RXBRIDGE_MAIL_TRANSPORT`: `files` (each message an `.eml` in `<data_dir>/mail`) or
    /// `smtp`.
    pub transport: String,
    /// `RXBRIDGE_MAIL_FROM`: the sender of patient emails (`Name <address>`).
    pub from: String,
    /// `RXBRIDGE_MAIL_REPLY_TO`: where patients' replies go, when not to `from`.
    pub reply_to: Option<String>,
    /// `RXBRIDGE_MAIL_CONTACT`: how a patient reaches a person when replies are not read (a
    /// no-reply `from` and no `reply_to`), completing "please …": `call 0161 496 0000`.
    pub contact: Option<String>,
    /// `RXBRIDGE_SMTP_HOST` / `_PORT` / `_USERNAME` / `_PASSWORD`.
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    pub smtp_security: mail::SmtpSecurity,
    pub smtp_username: Option<String>,
    pub smtp_password: Option<String>,
}

impl Default for MailSettings {
    fn default() -> Self {
        Self {
            transport: "files".into(),
            from: "rxbridge pharmacy <no-reply@rxbridge.invalid>".into(),
            reply_to: None,
            contact: None,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: mail::SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password: None,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./rxbridge-data"),
            listen: "127.0.0.1:8080".into(),
            patient_key: None,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_connections_per_client: 256,
            secure_cookies: false,
            compliance: Thresholds::default(),
            public_url: None,
            pharmacy: PharmacyConfig::default(),
            pricing: rxbridge_domain::pricing::Fees::default(),
            payments: PaymentsSettings::default(),
            stripe: StripeSettings::default(),
            mail: MailSettings::default(),
            webhooks: WebhookSettings::default(),
            warehouse: WarehouseSettings::default(),
            metrics: MetricsSettings::default(),
            audit: anchors::AuditSettings::default(),
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
        if let Ok(v) = std::env::var("RXBRIDGE_METRICS_LISTEN") {
            c.metrics.listen = v;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_HEADER_READ_TIMEOUT_SECS") {
            c.header_read_timeout_secs = v.parse().with_context(|| {
                format!("RXBRIDGE_HEADER_READ_TIMEOUT_SECS must be a whole number, got {v:?}")
            })?;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_MAX_CONNECTIONS_PER_CLIENT") {
            c.max_connections_per_client = v.parse().with_context(|| {
                format!("RXBRIDGE_MAX_CONNECTIONS_PER_CLIENT must be a whole number, got {v:?}")
            })?;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_REQUEST_TIMEOUT_SECS") {
            c.request_timeout_secs = v.parse().with_context(|| {
                format!("RXBRIDGE_REQUEST_TIMEOUT_SECS must be a whole number, got {v:?}")
            })?;
        }
        let text_vars: [(&str, &mut Option<String>); 8] = [
            ("RXBRIDGE_MAIL_REPLY_TO", &mut c.mail.reply_to),
            ("RXBRIDGE_MAIL_CONTACT", &mut c.mail.contact),
            ("RXBRIDGE_PUBLIC_URL", &mut c.public_url),
            ("RXBRIDGE_STRIPE_SECRET_KEY", &mut c.stripe.secret_key),
            ("RXBRIDGE_SMTP_HOST", &mut c.mail.smtp_host),
            ("RXBRIDGE_SMTP_USERNAME", &mut c.mail.smtp_username),
            ("RXBRIDGE_SMTP_PASSWORD", &mut c.mail.smtp_password),
            (
                "RXBRIDGE_PRIVATE_DISPENSING_CODE",
                &mut c.pharmacy.private_dispensing_code,
            ),
        ];
        for (name, slot) in text_vars {
            if let Ok(v) = std::env::var(name) {
                *slot = Some(v);
            }
        }
        if let Ok(v) = std::env::var("RXBRIDGE_STRIPE_API_BASE") {
            c.stripe.api_base = v;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_PAYMENTS_PROVIDER") {
            c.payments.provider = v;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_MAIL_TRANSPORT") {
            c.mail.transport = v;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_MAIL_FROM") {
            c.mail.from = v;
        }
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        if let Ok(v) = std::env::var("RXBRIDGE_STRIPE_WEBHOOK_SECRETS") {
            c.stripe.webhook_secrets = list(v);
        }
        if let Ok(v) = std::env::var("RXBRIDGE_WAREHOUSE_INBOUND_SECRETS") {
            c.warehouse.inbound_secrets = list(v);
        }
        c.audit.from_env()?;
        if let Ok(v) = std::env::var("RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS") {
            c.webhooks.allow_private_targets = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Ok(v) = std::env::var("RXBRIDGE_WEBHOOKS_ALLOWED_PORTS") {
            c.webhooks.allowed_ports = list(v)
                .iter()
                .map(|p| p.parse::<u16>())
                .collect::<Result<_, _>>()
                .with_context(
                    || "RXBRIDGE_WEBHOOKS_ALLOWED_PORTS must be comma-separated port numbers",
                )?;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_SMTP_PORT") {
            c.mail.smtp_port = v
                .parse()
                .with_context(|| format!("RXBRIDGE_SMTP_PORT must be a port number, got {v:?}"))?;
        }
        if let Ok(v) = std::env::var("RXBRIDGE_EQUIVALENT_PRIVATE_CD_FORMS") {
            c.compliance.equivalent_private_cd_forms = list(v);
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
        if !(1..=30).contains(&self.header_read_timeout_secs) {
            bail!("header_read_timeout_secs must be 1 to 30");
        }
        if self.max_connections_per_client == 0 {
            bail!("max_connections_per_client must be at least 1");
        }
        self.metrics.addr()?;
        if t.cd_max_days_supply == 0 || t.address_max_patients == 0 {
            bail!(
                "compliance.cd_max_days_supply and compliance.address_max_patients must be at least 1"
            );
        }
        let most = rxbridge_domain::compliance::MAX_COUNTED_AT_ADDRESS;
        if t.address_max_patients > most {
            // Stores stop counting there (a bounded read): a higher threshold would never flag.
            bail!("compliance.address_max_patients must be at most {most}");
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            bail!("public_url must start with http:// or https://, got {u:?}");
        }
        self.audit
            .validate(&webhooks::UrlPolicy::from_settings(&self.webhooks))?;
        let p = &self.payments;
        if !(1..=24 * 28).contains(&p.window_hours) {
            bail!("payments.window_hours must be 1 to 672 (28 days)");
        }
        if p.reminder_after_hours == 0 || p.sweep_interval_secs == 0 {
            bail!(
                "payments.reminder_after_hours and payments.sweep_interval_secs must be at least 1"
            );
        }
        match p.provider.as_str() {
            "sandbox" => {}
            "stripe" => {
                if self.stripe.secret_key.as_deref().is_none_or(str::is_empty) {
                    bail!(
                        "payments.provider = \"stripe\" needs stripe.secret_key (RXBRIDGE_STRIPE_SECRET_KEY)"
                    );
                }
                if self.stripe.webhook_secrets.is_empty() {
                    bail!(
                        "payments.provider = \"stripe\" needs at least one stripe.webhook_secrets entry (RXBRIDGE_STRIPE_WEBHOOK_SECRETS)"
                    );
                }
            }
            other => bail!("payments.provider must be \"sandbox\" or \"stripe\", got {other:?}"),
        }
        if self.pricing.dispensing_fee_pence < 0 || self.pricing.delivery_fee_pence < 0 {
            bail!("pricing fees must not be negative");
        }
        match self.mail.transport.as_str() {
            "files" => {}
            "smtp" => {
                if self.mail.smtp_host.as_deref().is_none_or(str::is_empty) {
                    bail!("mail.transport = \"smtp\" needs mail.smtp_host (RXBRIDGE_SMTP_HOST)");
                }
            }
            other => bail!("mail.transport must be \"files\" or \"smtp\", got {other:?}"),
        }
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            bail!(
                "mail.from (RXBRIDGE_MAIL_FROM) must be an address, `Name <a@b.example>`, got {:?}",
                self.mail.from
            );
        }
        if let Some(r) = &self.mail.reply_to
            && r.parse::<lettre::message::Mailbox>().is_err()
        {
            bail!(
                "mail.reply_to (RXBRIDGE_MAIL_REPLY_TO) must be an address, `Name <a@b.example>`, got {r:?}"
            );
        }
        if self.webhooks.allowed_ports.is_empty() || self.webhooks.allowed_ports.contains(&0) {
            bail!(
                "webhooks.allowed_ports (RXBRIDGE_WEBHOOKS_ALLOWED_PORTS) must list ports 1 to 65535 (443 by default)"
            );
        }
        if self.webhooks.poll_interval_ms == 0 || self.warehouse.sweep_interval_secs == 0 {
            bail!("webhooks.poll_interval_ms and warehouse.sweep_interval_secs must be at least 1");
        }
        if let Some(s) = self
            .warehouse
            .inbound_secrets
            .iter()
            .find(|s| !s.starts_with("whsec_") || s.len() < 20)
        {
            bail!(
                "warehouse.inbound_secrets: {:?}… is not a whsec_ secret (rxbridge webhook new-secret makes one)",
                &s[..s.len().min(8)]
            );
        }
        if let Some(code) = &self.pharmacy.private_dispensing_code
            && (code.is_empty()
                || code.len() > 20
                || !code.chars().all(|c| c.is_ascii_alphanumeric()))
        {
            bail!("pharmacy.private_dispensing_code must be 1 to 20 letters or digits");
        }
        Ok(())
    }

    /// Where patients reach this service.
    pub fn public_url(&self) -> String {
        let default = || match self.listen.parse::<SocketAddr>() {
            Ok(mut a) if a.ip().is_unspecified() => {
                a.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                format!("http://{a}")
            }
            _ => format!("http://{}", self.listen),
        };
        self.public_url
            .clone()
            .unwrap_or_else(default)
            .trim_end_matches('/')
            .to_string()
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

/// Create a new file readable by its owner only (0600), refusing to overwrite one.
pub fn create_secret_file(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .with_context(|| format!("creating {}", path.display()))
}

/// Write a file readable by its owner only (0600), refusing to overwrite.
pub fn write_secret_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut f = create_secret_file(path)?;
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
    /// Payments: links, checkout, webhooks, refunds, the sweep.
    pub payments: Arc<rxbridge_app::payments::Payments>,
    /// Month-end exports.
    pub finance: Arc<rxbridge_app::finance::Finance>,
    /// Release, warehouse events, registers, expiry.
    pub fulfilment: Arc<rxbridge_app::fulfilment::Fulfilment>,
    /// Webhook delivery.
    pub outbox: Arc<rxbridge_app::outbox::Outbox>,
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
    Ok(match m.transport.as_str() {
        "smtp" => Arc::new(
            mail::Smtp::new(
                m.smtp_host.as_deref().unwrap_or_default(),
                m.smtp_port,
                m.smtp_security,
                m.smtp_username
                    .clone()
                    .map(|u| (u, m.smtp_password.clone().unwrap_or_default())),
                &m.from,
            )?
            .reply_to(m.reply_to.as_deref()),
        ),
        _ => Arc::new(
            mail::EmlDirectory::new(config.data_dir.join("mail"), &m.from)?
                .reply_to(m.reply_to.as_deref()),
        ),
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

/// The use cases and the HTTP state, wired on a backend.
pub struct Wired {
    pub state: AppState,
    pub clinical: Arc<rxbridge_app::clinical::ClinicalCheck>,
    pub staff: Arc<rxbridge_app::staff::StaffService>,
    pub payments: Arc<rxbridge_app::payments::Payments>,
    pub finance: Arc<rxbridge_app::finance::Finance>,
    pub fulfilment: Arc<rxbridge_app::fulfilment::Fulfilment>,
    pub outbox: Arc<rxbridge_app::outbox::Outbox>,
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
            "stripe" => Arc::new(stripe::StripeProvider::new(
                &config.stripe.api_base,
                config.stripe.secret_key.as_deref().unwrap_or_default(),
            )?),
            _ => {
                let mac_intake = intake.clone();
                Arc::new(rxbridge_app::payments::provider::SandboxProvider::new(
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
        notify.clone(),
        config.stripe.webhook_secrets.clone(),
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
        intake.clone(),
        clock.clone(),
        rxbridge_app::finance::FinanceConfig {
            pharmacy_name: config.pharmacy.name.clone(),
            private_dispensing_code: config.pharmacy.private_dispensing_code.clone(),
        },
    ));
    let outbox = Arc::new(rxbridge_app::outbox::Outbox::new(
        outbox_store.clone(),
        Arc::new(webhooks::HttpWebhooks::new(
            webhooks::UrlPolicy::from_settings(&config.webhooks),
        )?),
        clock.clone(),
        intake.vault().clone(),
    ));
    let fulfilment = Arc::new(rxbridge_app::fulfilment::Fulfilment::new(
        dyn_store.clone(),
        registers.clone(),
        outbox_store,
        intake.clone(),
        payments.clone(),
        notify,
        clock.clone(),
        rxbridge_app::fulfilment::FulfilmentConfig {
            skus: config.warehouse.skus.clone(),
            inbound_secrets: config.warehouse.inbound_secrets.clone(),
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
    };
    let portal = rxbridge_http::portal::Portal {
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
        &config.public_url(),
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
    })
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
        rxbridge_app::files::private_dir(&config.data_dir)
            .with_context(|| format!("creating data dir {}", config.data_dir.display()))?;
        let vault = load_vault(&config)?;
        let store = Arc::new(SqliteStore::open_tuned(config.db_path(), tuning)?);
        let documents = Arc::new(
            rxbridge_app::originals::FileDocuments::new(
                config.data_dir.join("documents"),
                vault.clone(),
            )
            .with_context(|| format!("creating {}", config.data_dir.join("documents").display()))?,
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

/// Bind the metrics listener `config.metrics` asks for (`None` when it is `off`).
pub async fn bind_metrics(config: &Config) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = config.metrics.addr()? else {
        return Ok(None);
    };
    let l = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("binding the metrics listener {addr} (metrics.listen / RXBRIDGE_METRICS_LISTEN; \"off\" disables it)")
    })?;
    Ok(Some(l))
}

/// Write a signed anchor of every chain's head to the configured witnesses on the schedule
/// (nothing to do without one: the key is still created at start).
fn spawn_anchoring(app: &App) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let key = anchors::load_or_create_key(&app.config.data_dir)?;
    let every = std::time::Duration::from_secs(app.config.audit.anchor_interval_secs);
    let transport: Arc<dyn rxbridge_app::outbox::WebhookTransport> = Arc::new(
        webhooks::HttpWebhooks::new(webhooks::UrlPolicy::from_settings(&app.config.webhooks))?,
    );
    let witnesses = app.config.audit.witnesses(transport);
    let (store, registers) = (app.state.store.clone(), app.store.clone());
    Ok(tokio::spawn(async move {
        if witnesses.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            // Failures are logged (alert) inside; the next tick tries again.
            let _ = rxbridge_app::anchor::publish(
                store.as_ref(),
                registers.as_ref(),
                &key,
                &witnesses,
                jiff::Timestamp::now(),
            )
            .await;
        }
    }))
}

/// Serve until `shutdown` resolves, then finish in-flight requests and flush the store.
/// `metrics` (from [`bind_metrics`]) serves `/metrics` on its own listener.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    metrics: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Bodies an earlier version stored in the clear are sealed before anything is delivered.
    let sealed = app.outbox.seal_stored_bodies().await?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed outbox bodies that an earlier version stored in the clear"
        );
    }
    let router = app.router();
    let metrics_task = metrics.map(|l| {
        let r = rxbridge_http::metrics_router(app.state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, r).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        })
    });
    let sweep = spawn_sweep(
        app.payments.clone(),
        std::time::Duration::from_secs(app.config.payments.sweep_interval_secs),
    );
    let worker = spawn_outbox_worker(
        app.outbox.clone(),
        std::time::Duration::from_millis(app.config.webhooks.poll_interval_ms),
    );
    let releases = spawn_fulfilment_sweep(
        app.fulfilment.clone(),
        std::time::Duration::from_secs(app.config.warehouse.sweep_interval_secs),
    );
    let anchoring = spawn_anchoring(&app)?;
    let policy = server::ConnectionPolicy {
        header_read_timeout: std::time::Duration::from_secs(app.config.header_read_timeout_secs),
        max_per_client: app.config.max_connections_per_client,
    };
    let served = server::serve_public(listener, router, policy, shutdown).await;
    for task in [sweep, worker, releases, anchoring]
        .into_iter()
        .chain(metrics_task)
    {
        task.abort();
        let _ = task.await;
    }
    app.store.close();
    served?;
    Ok(())
}

/// Run `job` every `every` until the task is aborted; `at_once` runs it at start too. A report
/// other than the default (something happened) is logged; a failure is logged and the next
/// tick tries again.
fn spawn_every<R, F, Fut>(
    name: &'static str,
    every: std::time::Duration,
    at_once: bool,
    job: F,
) -> tokio::task::JoinHandle<()>
where
    R: Default + PartialEq + std::fmt::Debug + Send,
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, String>> + Send,
{
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if !at_once {
            t.tick().await;
        }
        loop {
            t.tick().await;
            match job().await {
                Ok(r) if r != R::default() => tracing::info!(report = ?r, "{name}"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "{name} failed"),
            }
        }
    })
}

/// Run the payments sweep every `every` (first run after one interval).
pub fn spawn_sweep(
    payments: Arc<rxbridge_app::payments::Payments>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_every("payments sweep", every, false, move || {
        let p = payments.clone();
        async move { p.tick().await.map_err(|e| e.to_string()) }
    })
}

/// Deliver due webhooks every `every`.
pub fn spawn_outbox_worker(
    outbox: Arc<rxbridge_app::outbox::Outbox>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_every("outbox", every, true, move || {
        let o = outbox.clone();
        async move { o.run_once().await.map_err(|e| e.to_string()) }
    })
}

/// Release ready prescriptions and expire overdue ones every `every` (first run at once).
pub fn spawn_fulfilment_sweep(
    fulfilment: Arc<rxbridge_app::fulfilment::Fulfilment>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_every("fulfilment sweep", every, true, move || {
        let f = fulfilment.clone();
        async move { f.sweep().await.map_err(|e| e.to_string()) }
    })
}

/// A server started on a free port (tests, benchmarks).
pub struct Running {
    pub addr: SocketAddr,
    /// The metrics listener's address, unless `metrics.listen` is `off`.
    pub metrics_addr: Option<SocketAddr>,
    pub clinics: Arc<Clinics>,
    pub staff: Arc<rxbridge_app::staff::StaffService>,
    pub store: Arc<SqliteStore>,
    pub payments: Arc<rxbridge_app::payments::Payments>,
    pub finance: Arc<rxbridge_app::finance::Finance>,
    pub clinical: Arc<rxbridge_app::clinical::ClinicalCheck>,
    pub fulfilment: Arc<rxbridge_app::fulfilment::Fulfilment>,
    pub outbox: Arc<rxbridge_app::outbox::Outbox>,
    pub data_dir: PathBuf,
    pub state: AppState,
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
    spawn_with_clock(config, Arc::new(rxbridge_app::SystemClock)).await
}

/// `spawn` with a clock the caller controls (tests of deadlines). When `public_url` is unset it
/// becomes the bound address, so payment links work on a port-0 server.
pub async fn spawn_with_clock(
    mut config: Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let metrics = bind_metrics(&config).await?;
    let metrics_addr = metrics.as_ref().map(|l| l.local_addr()).transpose()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let app = App::open_with_clock(config, clock)?;
    let (clinics, store, staff, payments, finance, clinical) = (
        app.state.clinics.clone(),
        app.store.clone(),
        app.staff.clone(),
        app.payments.clone(),
        app.finance.clone(),
        app.clinical.clone(),
    );
    let data_dir = app.config.data_dir.clone();
    let state = app.state.clone();
    let (fulfilment, outbox) = (app.fulfilment.clone(), app.outbox.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(app, listener, metrics, async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        metrics_addr,
        clinics,
        store,
        staff,
        payments,
        finance,
        clinical,
        fulfilment,
        outbox,
        data_dir,
        state,
        stop: Some(tx),
        task: Some(task),
    })
}
