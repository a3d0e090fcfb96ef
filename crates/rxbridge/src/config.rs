//! Settings: the typed configuration, its defaults, the TOML file and `RXBRIDGE_*` environment
//! variables it is loaded from, and the checks a value must pass before anything starts.

use crate::{anchors, mail, webhooks};
use anyhow::{Context as _, bail};
use figment::providers::{Format as _, Toml};
use figment::util::nest;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use rxbridge_domain::compliance::Thresholds;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    pub patient_key: Option<SecretString>,
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
    /// NHS EPS dispensing (`docs/nhs-eps.md`): off until `eps.base_url` is set.
    pub eps: crate::eps::EpsSettings,
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
    pub inbound_secrets: Vec<SecretString>,
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
    pub secret_key: Option<SecretString>,
    /// `RXBRIDGE_STRIPE_WEBHOOK_SECRETS`, comma-separated: every `whsec_…` currently valid
    /// (two while one is rolled).
    pub webhook_secrets: Vec<SecretString>,
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
    pub smtp_password: Option<SecretString>,
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
            eps: crate::eps::EpsSettings::default(),
        }
    }
}

/// How an environment variable's text becomes its setting.
#[derive(Clone, Copy)]
enum Kind {
    /// As written (numbers and booleans are read from it when the setting is one: `30`,
    /// `1|true|yes|on`, `0|false|no|off`).
    Text,
    /// Comma-separated; blanks between commas dropped.
    List,
    /// As written, and empty means unset.
    Optional,
}

/// Every `RXBRIDGE_*` variable that sets a setting, and that setting's key path. The names are
/// listed because they do not all follow the nesting (`RXBRIDGE_SMTP_HOST` → `mail.smtp_host`).
/// Any other `RXBRIDGE_*` variable (`RXBRIDGE_LOG`, the store's tuning) is not a setting.
const ENV: &[(&str, &str, Kind)] = &[
    ("RXBRIDGE_DATA_DIR", "data_dir", Kind::Text),
    ("RXBRIDGE_LISTEN", "listen", Kind::Text),
    ("RXBRIDGE_PATIENT_KEY", "patient_key", Kind::Text),
    ("RXBRIDGE_SECURE_COOKIES", "secure_cookies", Kind::Text),
    ("RXBRIDGE_METRICS_LISTEN", "metrics.listen", Kind::Text),
    (
        "RXBRIDGE_HEADER_READ_TIMEOUT_SECS",
        "header_read_timeout_secs",
        Kind::Text,
    ),
    (
        "RXBRIDGE_MAX_CONNECTIONS_PER_CLIENT",
        "max_connections_per_client",
        Kind::Text,
    ),
    (
        "RXBRIDGE_REQUEST_TIMEOUT_SECS",
        "request_timeout_secs",
        Kind::Text,
    ),
    ("RXBRIDGE_PUBLIC_URL", "public_url", Kind::Text),
    (
        "RXBRIDGE_PRIVATE_DISPENSING_CODE",
        "pharmacy.private_dispensing_code",
        Kind::Text,
    ),
    (
        "RXBRIDGE_PAYMENTS_PROVIDER",
        "payments.provider",
        Kind::Text,
    ),
    ("RXBRIDGE_STRIPE_API_BASE", "stripe.api_base", Kind::Text),
    (
        "RXBRIDGE_STRIPE_SECRET_KEY",
        "stripe.secret_key",
        Kind::Text,
    ),
    (
        "RXBRIDGE_STRIPE_WEBHOOK_SECRETS",
        "stripe.webhook_secrets",
        Kind::List,
    ),
    ("RXBRIDGE_MAIL_TRANSPORT", "mail.transport", Kind::Text),
    ("RXBRIDGE_MAIL_FROM", "mail.from", Kind::Text),
    ("RXBRIDGE_MAIL_REPLY_TO", "mail.reply_to", Kind::Text),
    ("RXBRIDGE_MAIL_CONTACT", "mail.contact", Kind::Text),
    ("RXBRIDGE_SMTP_HOST", "mail.smtp_host", Kind::Text),
    ("RXBRIDGE_SMTP_PORT", "mail.smtp_port", Kind::Text),
    ("RXBRIDGE_SMTP_USERNAME", "mail.smtp_username", Kind::Text),
    ("RXBRIDGE_SMTP_PASSWORD", "mail.smtp_password", Kind::Text),
    (
        "RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS",
        "webhooks.allow_private_targets",
        Kind::Text,
    ),
    (
        "RXBRIDGE_WEBHOOKS_ALLOWED_PORTS",
        "webhooks.allowed_ports",
        Kind::List,
    ),
    (
        "RXBRIDGE_WAREHOUSE_INBOUND_SECRETS",
        "warehouse.inbound_secrets",
        Kind::List,
    ),
    (
        "RXBRIDGE_CD_MAX_DAYS_SUPPLY",
        "compliance.cd_max_days_supply",
        Kind::Text,
    ),
    (
        "RXBRIDGE_EARLY_SUPPLY_ELAPSED_PERCENT",
        "compliance.early_supply_elapsed_percent",
        Kind::Text,
    ),
    (
        "RXBRIDGE_ADDRESS_MAX_PATIENTS",
        "compliance.address_max_patients",
        Kind::Text,
    ),
    (
        "RXBRIDGE_EQUIVALENT_PRIVATE_CD_FORMS",
        "compliance.equivalent_private_cd_forms",
        Kind::List,
    ),
    (
        "RXBRIDGE_AUDIT_ANCHOR_INTERVAL_SECS",
        "audit.anchor_interval_secs",
        Kind::Text,
    ),
    (
        "RXBRIDGE_AUDIT_WITNESS_DIR",
        "audit.witness_dir",
        Kind::Optional,
    ),
    (
        "RXBRIDGE_AUDIT_WITNESS_URL",
        "audit.witness_url",
        Kind::Optional,
    ),
    (
        "RXBRIDGE_AUDIT_WITNESS_SECRET",
        "audit.witness_secret",
        Kind::Optional,
    ),
    ("RXBRIDGE_EPS_BASE_URL", "eps.base_url", Kind::Optional),
    ("RXBRIDGE_EPS_API_KEY", "eps.api_key", Kind::Optional),
    (
        "RXBRIDGE_EPS_PRIVATE_KEY_FILE",
        "eps.private_key_file",
        Kind::Optional,
    ),
    (
        "RXBRIDGE_AUDIT_ANCHOR_PUBLIC_KEY",
        "audit.anchor_public_key",
        Kind::Optional,
    ),
];

/// The environment as a configuration layer: the variables of [`ENV`] that are set, each at
/// its key path. An error names the variable.
struct EnvVars<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Provider for EnvVars<'_> {
    fn metadata(&self) -> Metadata {
        // The key may run past a variable's setting into a list (`webhooks.allowed_ports.1`).
        Metadata::named("environment variable").interpolater(|_, keys: &[&str]| {
            (1..=keys.len())
                .rev()
                .find_map(|n| {
                    let key = keys[..n].join(".");
                    ENV.iter().find(|(_, k, _)| *k == key)
                })
                .map_or_else(|| keys.join("."), |(name, _, _)| (*name).to_string())
        })
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for &(name, key, kind) in ENV {
            let Some(v) = (self.0)(name) else {
                continue;
            };
            let value = match kind {
                Kind::Text => Value::from(v),
                Kind::List => Value::serialize(list(&v))?,
                Kind::Optional if v.is_empty() => Value::serialize(None::<String>)?,
                Kind::Optional => Value::from(v),
            };
            merge(&mut dict, nest(key, value));
        }
        Ok(Profile::Default.collect(dict))
    }
}

/// Put `value` (a dictionary of nested settings) into `into`, keeping the siblings.
fn merge(into: &mut Dict, value: Value) {
    let Value::Dict(_, from) = value else {
        return;
    };
    for (k, v) in from {
        if let (Some(Value::Dict(_, inner)), Value::Dict(..)) = (into.get_mut(&k), &v) {
            merge(inner, v);
            continue;
        }
        into.insert(k, v);
    }
}

/// The TOML file as a configuration layer; an error names the file and the key.
struct FileLayer {
    text: String,
    path: String,
}

impl Provider for FileLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("config file {}", self.path))
            .interpolater(|_, keys: &[&str]| keys.join("."))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Toml::string(&self.text).data()
    }
}

fn list(v: &str) -> Vec<&str> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

impl Config {
    /// Defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let file = match file {
            Some(f) => Some(FileLayer {
                text: std::fs::read_to_string(f)
                    .with_context(|| format!("reading config file {}", f.display()))?,
                path: f.display().to_string(),
            }),
            None => None,
        };
        Self::layered(file, &|name| std::env::var(name).ok()).context("settings")
    }

    /// Defaults, then `file`, then the variables `env` knows. Lossy: a number or boolean
    /// setting may be written as text, as every variable is.
    fn layered(
        file: Option<FileLayer>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Self> {
        let mut layers = Figment::new();
        if let Some(file) = file {
            layers = layers.merge(file);
        }
        Ok(layers.merge(EnvVars(env)).extract_lossy()?)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen
            .parse::<SocketAddr>()
            .with_context(|| format!("listen: {:?} is not HOST:PORT", self.listen))?;
        self.eps.validate()?;
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
                if self
                    .stripe
                    .secret_key
                    .as_ref()
                    .is_none_or(|k| k.expose_secret().is_empty())
                {
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
            .map(|s| s.expose_secret())
            .find(|s| !s.starts_with("whsec_") || s.len() < 20)
        {
            bail!(
                "warehouse.inbound_secrets: {:?}… is not a whsec_ secret (rxbridge webhook new-secret makes one)",
                s.chars().take(8).collect::<String>()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn with_env(file: Option<&str>, vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let vars: std::collections::HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let file = file.map(|text| FileLayer {
            text: text.to_string(),
            path: "test.toml".into(),
        });
        Config::layered(file, &|name| vars.get(name).cloned())
    }

    #[test]
    fn each_variable_lands_at_its_setting_over_the_file() {
        let file = "listen = \"0.0.0.0:9000\"\n[mail]\nsmtp_host = \"file.example\"\nsmtp_port = 25\n\
                    [audit]\nwitness_dir = \"/from/file\"\n[webhooks]\nallowed_ports = [443]\n";
        let c = with_env(
            Some(file),
            &[
                ("RXBRIDGE_SMTP_HOST", "env.example"),
                ("RXBRIDGE_SMTP_PORT", "2525"),
                ("RXBRIDGE_WEBHOOKS_ALLOWED_PORTS", "443, 8443,,"),
                ("RXBRIDGE_SECURE_COOKIES", "yes"),
                ("RXBRIDGE_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "1"),
                ("RXBRIDGE_AUDIT_WITNESS_DIR", ""),
                ("RXBRIDGE_EQUIVALENT_PRIVATE_CD_FORMS", "WP10PCD,"),
                ("RXBRIDGE_STRIPE_WEBHOOK_SECRETS", "whsec_a, whsec_b"),
                ("RXBRIDGE_LOG", "debug"),
            ],
        )
        .unwrap();
        assert_eq!(
            c.listen, "0.0.0.0:9000",
            "the file's value stays where no variable is set"
        );
        assert_eq!(c.mail.smtp_host.as_deref(), Some("env.example"));
        assert_eq!(c.mail.smtp_port, 2525);
        assert_eq!(c.webhooks.allowed_ports, [443, 8443]);
        assert!(c.secure_cookies && c.webhooks.allow_private_targets);
        assert_eq!(c.audit.witness_dir, None, "empty unsets it");
        assert_eq!(c.compliance.equivalent_private_cd_forms, ["WP10PCD"]);
        let shown: Vec<_> = c
            .stripe
            .webhook_secrets
            .iter()
            .map(|s| s.expose_secret())
            .collect();
        assert_eq!(shown, ["whsec_a", "whsec_b"]);
        assert_eq!(
            c.request_timeout_secs,
            Config::default().request_timeout_secs
        );
    }

    #[test]
    fn a_bad_value_names_its_variable_or_key() {
        for (name, value) in [
            ("RXBRIDGE_SMTP_PORT", "twenty-five"),
            ("RXBRIDGE_REQUEST_TIMEOUT_SECS", "-1"),
            ("RXBRIDGE_SECURE_COOKIES", "maybe"),
            ("RXBRIDGE_WEBHOOKS_ALLOWED_PORTS", "443,https"),
        ] {
            let e = with_env(None, &[(name, value)]).unwrap_err().to_string();
            assert!(e.contains(name), "{name}={value}: {e}");
        }
        let e = with_env(Some("[mail]\nsmtp_hots = \"x\"\n"), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("smtp_hots"), "{e}");
    }

    #[test]
    fn every_variable_is_documented_and_reaches_a_setting() {
        let doc = include_str!("../../../docs/configuration.md");
        for (name, key, _) in ENV {
            assert!(
                doc.contains(&format!("`{name}`")),
                "{name} is not in docs/configuration.md"
            );
            let probe = match *key {
                "webhooks.allowed_ports" => "443",
                "audit.witness_dir" => "",
                _ if key.contains("secs")
                    || key.contains("port")
                    || key.contains("max_")
                    || key.contains("percent")
                    || key.contains("patients") =>
                {
                    "7"
                }
                "secure_cookies" | "webhooks.allow_private_targets" => "true",
                _ => "x",
            };
            with_env(None, &[(name, probe)]).unwrap_or_else(|e| panic!("{name} → {key}: {e}"));
        }
    }

    #[test]
    fn a_debug_print_of_the_config_shows_no_secret() {
        let mut c = Config::default();
        let secrets = [
            "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "sk_live_not-in-the-log-1",
            "whsec_stripe-not-in-the-log-2",
            "whsec_warehouse-not-in-the-log-3",
            "smtp-password-not-in-the-log-4",
            "whsec_witness-not-in-the-log-5",
        ];
        c.patient_key = Some(secrets[0].into());
        c.stripe.secret_key = Some(secrets[1].into());
        c.stripe.webhook_secrets = vec![secrets[2].into()];
        c.warehouse.inbound_secrets = vec![secrets[3].into()];
        c.mail.smtp_password = Some(secrets[4].into());
        c.audit.witness_secret = Some(secrets[5].into());
        let shown = format!("{c:?} {c:#?}");
        for s in secrets {
            assert!(!shown.contains(s), "{s} is in the Debug print: {shown}");
        }
        assert!(
            shown.contains("smtp_password"),
            "the fields are still named"
        );
    }
}
