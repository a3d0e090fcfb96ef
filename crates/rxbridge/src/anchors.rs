//! Audit anchors on the embedded deployment: the instance's Ed25519 anchor key (an owner-only
//! file in the data directory, created at first start), and the witnesses scheduled anchors go
//! to — a directory (meant to be another volume that an attacker holding the data directory
//! cannot rewrite) and an HTTPS endpoint, signed like every other webhook (Standard Webhooks).
//! See `docs/audit.md`.

use anyhow::Context;
use async_trait::async_trait;
use rxbridge_app::anchor::{Anchor, AnchorKey, AnchorPublicKey, Witness};
use rxbridge_app::outbox::WebhookTransport;
use secrecy::ExposeSecret as _;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// `RXBRIDGE_AUDIT_ANCHOR_INTERVAL_SECS`: how often the server writes an anchor.
    pub anchor_interval_secs: u64,
    /// `RXBRIDGE_AUDIT_WITNESS_DIR`: where scheduled anchors are written (off when unset).
    pub witness_dir: Option<PathBuf>,
    /// `RXBRIDGE_AUDIT_WITNESS_URL`: an `https` endpoint each scheduled anchor is POSTed to
    /// (off when unset), signed with `witness_secret`.
    pub witness_url: Option<String>,
    /// `RXBRIDGE_AUDIT_WITNESS_SECRET`: the `whsec_…` secret the POST is signed with (Standard
    /// Webhooks); required with `witness_url`.
    pub witness_secret: Option<secrecy::SecretString>,
    /// `RXBRIDGE_AUDIT_ANCHOR_PUBLIC_KEY`: the anchor key's public half (64 hex), kept outside
    /// the data directory; `audit verify --anchor` trusts only it when set.
    pub anchor_public_key: Option<String>,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            anchor_interval_secs: 3600,
            witness_dir: None,
            witness_url: None,
            witness_secret: None,
            anchor_public_key: None,
        }
    }
}

impl AuditSettings {
    pub fn validate(&self, policy: &crate::webhooks::UrlPolicy) -> anyhow::Result<()> {
        if self.anchor_interval_secs == 0 {
            anyhow::bail!("audit.anchor_interval_secs must be at least 1");
        }
        if let Some(url) = &self.witness_url {
            crate::webhooks::check_url(url, policy, false)
                .map_err(|e| anyhow::anyhow!("RXBRIDGE_AUDIT_WITNESS_URL: {e}"))?;
            let ok = self.witness_secret.as_ref().is_some_and(|s| {
                rxbridge_app::outbox::sign(&[s.expose_secret().to_string()], "x", 0, b"")
                    .starts_with("v1,")
            });
            if !ok {
                anyhow::bail!(
                    "RXBRIDGE_AUDIT_WITNESS_SECRET must be a whsec_… secret when RXBRIDGE_AUDIT_WITNESS_URL is set (rxbridge webhook new-secret makes one)"
                );
            }
        }
        Ok(())
    }

    /// The witnesses configured (none: no scheduled anchors).
    pub fn witnesses(&self, transport: Arc<dyn WebhookTransport>) -> Vec<Arc<dyn Witness>> {
        let mut out: Vec<Arc<dyn Witness>> = Vec::new();
        if let Some(dir) = &self.witness_dir {
            out.push(Arc::new(DirWitness { dir: dir.clone() }));
        }
        if let (Some(url), Some(secret)) = (&self.witness_url, &self.witness_secret) {
            out.push(Arc::new(HttpsWitness {
                url: url.clone(),
                secret: secret.expose_secret().to_string(),
                destination: WITNESS_DESTINATION.into(),
                transport,
            }));
        }
        out
    }
}

/// A directory, one new file per anchor.
pub struct DirWitness {
    pub dir: PathBuf,
}

#[async_trait]
impl Witness for DirWitness {
    fn name(&self) -> String {
        format!("directory {}", self.dir.display())
    }
    async fn publish(&self, a: &Anchor) -> anyhow::Result<String> {
        let (dir, a) = (self.dir.clone(), a.clone());
        tokio::task::spawn_blocking(move || write_to_dir(&dir, &a))
            .await?
            .map(|p| p.display().to_string())
    }
}

/// An HTTPS endpoint: the anchor's JSON POSTed with Standard Webhooks headers (`webhook-id`
/// is `anchor_<events length>_<unix seconds>`), accepted on any 2xx.
pub struct HttpsWitness {
    pub url: String,
    pub secret: String,
    /// The outgoing destination the webhook guard judges it by: [`WITNESS_DESTINATION`], a
    /// live one (https, public address, allowed port).
    pub destination: String,
    pub transport: Arc<dyn WebhookTransport>,
}

/// The witness is the operator's own endpoint, but it is guarded like every live destination.
pub const WITNESS_DESTINATION: &str = "audit:witness";

#[async_trait]
impl Witness for HttpsWitness {
    fn name(&self) -> String {
        "https endpoint".into()
    }
    async fn publish(&self, a: &Anchor) -> anyhow::Result<String> {
        let body = to_json(a).into_bytes();
        let id = format!("anchor_{}_{}", a.chains[0].length, a.at.as_second());
        let ts = jiff::Timestamp::now().as_second();
        let headers = [
            ("webhook-id", id.clone()),
            ("webhook-timestamp", ts.to_string()),
            (
                "webhook-signature",
                rxbridge_app::outbox::sign(std::slice::from_ref(&self.secret), &id, ts, &body),
            ),
            ("content-type", "application/json".to_string()),
        ];
        match self
            .transport
            .post(&self.destination, &self.url, &headers, &body)
            .await
        {
            Ok(a) if (200..300).contains(&a.status) => Ok(format!("{} ({id})", self.url)),
            Ok(a) => Err(anyhow::anyhow!("the witness answered HTTP {}", a.status)),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        }
    }
}

pub fn key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("anchor.key")
}

/// The instance's anchor key, created (owner-only) when there is none.
pub fn load_or_create_key(data_dir: &Path) -> anyhow::Result<AnchorKey> {
    let path = key_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(s) => rxbridge_app::anchor::key_from_hex(&s)
            .with_context(|| format!("reading the anchor key {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use std::io::Write;
            let key = rxbridge_app::anchor::generate_key();
            let mut f = crate::create_secret_file(&path)?;
            f.write_all(hex::encode(key.to_bytes()).as_bytes())?;
            f.sync_all()?;
            tracing::info!(path = %path.display(), public_key = %hex::encode(key.verifying_key().as_bytes()), "created the audit anchor key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// The key anchors are verified against: the configured public key, else the key file's.
pub fn trusted_key(settings: &AuditSettings, data_dir: &Path) -> anyhow::Result<AnchorPublicKey> {
    match &settings.anchor_public_key {
        Some(h) => {
            let b: [u8; 32] = hex::decode(h.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .context("RXBRIDGE_AUDIT_ANCHOR_PUBLIC_KEY must be 64 hex characters")?;
            AnchorPublicKey::from_bytes(&b)
                .context("RXBRIDGE_AUDIT_ANCHOR_PUBLIC_KEY is not an Ed25519 public key")
        }
        None => Ok(load_or_create_key(data_dir)?.verifying_key()),
    }
}

pub fn to_json(a: &Anchor) -> String {
    serde_json::to_string_pretty(a).expect("an anchor serialises") + "\n"
}

/// `audit anchor`'s output: the anchor to `out`, or to standard output.
pub fn print_or_write(a: &Anchor, out: Option<&Path>) -> anyhow::Result<()> {
    let text = to_json(a);
    match out {
        Some(path) => {
            std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("anchor written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// Write `a` into the witness directory as a new file (never over an existing one).
pub fn write_to_dir(dir: &Path, a: &Anchor) -> anyhow::Result<PathBuf> {
    use std::io::Write;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let stamp = a.at.strftime("%Y%m%dT%H%M%SZ").to_string();
    let path = dir.join(format!("anchor-{stamp}-{}.json", a.chains[0].length));
    let tmp = path.with_extension("partial");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(to_json(a).as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

pub fn read(path: &Path) -> anyhow::Result<Anchor> {
    let s = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&s)
        .with_context(|| format!("{} is not an rxbridge anchor", path.display()))
}

/// `verify --anchor` for each file in `paths`: a line in `ok` when every chain holds what the
/// anchor saw, one line in `broken` per difference (both binaries print them the same way).
pub async fn check_files(
    paths: &[PathBuf],
    trusted: &AnchorPublicKey,
    store: &dyn rxbridge_app::Store,
    registers: &dyn rxbridge_app::registers::RegisterStore,
    ok: &mut Vec<String>,
    broken: &mut Vec<String>,
) -> anyhow::Result<()> {
    for path in paths {
        let a = read(path)?;
        let problems = rxbridge_app::anchor::check(&a, trusted, store, registers).await?;
        if problems.is_empty() {
            ok.push(format!(
                "anchor {}: every chain holds what the anchor of {} saw",
                path.display(),
                a.at
            ));
        }
        broken.extend(
            problems
                .into_iter()
                .map(|p| format!("anchor {}: {p}", path.display())),
        );
    }
    Ok(())
}
