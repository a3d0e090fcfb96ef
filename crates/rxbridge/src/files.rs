//! Owner-only files and directories for everything written under the data directory: the
//! patient-data key file and the other secrets rxbridge writes (created 0600, never
//! overwritten), patient documents, outgoing mail and reports (0600 files, 0700 directories,
//! whatever the umask; an existing directory created looser by an earlier version is
//! tightened).

use crate::Config;
use anyhow::Context as _;
use rxbridge_app::PatientVault;
use secrecy::ExposeSecret as _;
use std::path::Path;

/// The patient-data key: from config, or the key file (created 0600 on first run).
pub fn load_vault(config: &Config) -> anyhow::Result<PatientVault> {
    if let Some(k) = &config.patient_key {
        return PatientVault::from_hex(k.expose_secret())
            .context("RXBRIDGE_PATIENT_KEY / patient_key");
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

/// Create `dir` (and its parents) readable by its owner only, or tighten it when it exists.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        b.mode(0o700);
        b.create(dir)?;
        let mode = std::fs::metadata(dir)?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(())
    }
    #[cfg(not(unix))]
    b.create(dir)
}

/// Create (or truncate) `path` as a file readable by its owner only.
pub fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        o.mode(0o600);
        let f = o.open(path)?;
        // `mode` applies only when the file is created: tighten one that already existed.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        Ok(f)
    }
    #[cfg(not(unix))]
    o.open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn owner_only_whatever_was_there() {
        let t = std::env::temp_dir().join(format!("rxb-files-{}", uuid::Uuid::now_v7().simple()));
        let d = t.join("a/b");
        private_dir(&d).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&d), 0o700);
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700, "tightened");
        let f = d.join("f");
        std::fs::write(&f, b"x").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        std::fs::remove_dir_all(&t).unwrap();
    }
}
