//! Owner-only files: the patient-data key file and the other secrets rxbridge writes
//! (created 0600, never overwritten).

use crate::Config;
use anyhow::Context as _;
use rxbridge_app::PatientVault;
use std::path::Path;

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
