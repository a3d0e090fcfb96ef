//! Scanned originals as files under the data directory: the embedded build's `Documents`
//! adapter (the AWS build keeps them in S3).

use crate::files::{private_dir, private_file};
use async_trait::async_trait;
use rxbridge_app::originals::Documents;
use rxbridge_app::{PatientVault, StoreError};

/// Documents as files: `<dir>/<id>.sealed` (the scan, sealed with the patient vault and bound
/// to its id: a scan shows the patient's name and address) plus `<dir>/<id>.type`, written to
/// a temporary name, fsynced and renamed into place; owner-only. Ids are generated (`doc_` +
/// hex), never user input. Scans an earlier version stored in the clear (`<dir>/<id>`) are
/// sealed when the store is opened.
#[derive(Clone)]
pub struct FileDocuments {
    dir: std::path::PathBuf,
    vault: PatientVault,
}

fn document_context(id: &str) -> String {
    format!("document/v1|{id}")
}

impl FileDocuments {
    pub fn new(dir: impl Into<std::path::PathBuf>, vault: PatientVault) -> std::io::Result<Self> {
        let dir = dir.into();
        private_dir(&dir)?;
        let d = Self { dir, vault };
        d.seal_clear_files()?;
        Ok(d)
    }

    /// Seal every document stored in the clear by an earlier version (`<id>`, no extension),
    /// then remove the clear copy. Idempotent.
    fn seal_clear_files(&self) -> std::io::Result<()> {
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            let Some(id) = p.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if p.extension().is_some() || !p.is_file() || self.path(id).is_err() {
                continue;
            }
            let bytes = std::fs::read(&p)?;
            self.write_sealed(id, &bytes)?;
            std::fs::remove_file(&p)?;
        }
        Ok(())
    }

    fn write_sealed(&self, id: &str, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = self.dir.join(format!("{id}.partial"));
        let mut f = private_file(&tmp)?;
        f.write_all(&self.vault.seal(&document_context(id), bytes))?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(format!("{id}.sealed")))?;
        std::fs::File::open(&self.dir)?.sync_all()
    }

    fn path(&self, id: &str) -> Result<std::path::PathBuf, StoreError> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(StoreError::NotFound);
        }
        Ok(self.dir.join(id))
    }
}

#[async_trait]
impl Documents for FileDocuments {
    async fn put(&self, id: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let path = self.path(id)?;
        let (id, ct, this) = (id.to_string(), content_type.to_string(), self.clone());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut t = private_file(&path.with_extension("type"))?;
            t.write_all(ct.as_bytes())?;
            t.sync_all()?;
            this.write_sealed(&id, &bytes)
        })
        .await
        .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("document write task: {e}")))?
        .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("writing a document: {e}")))
    }

    async fn get(&self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let path = match self.path(id) {
            Ok(p) => p,
            Err(_) => return Ok(None),
        };
        let (id, this) = (id.to_string(), self.clone());
        tokio::task::spawn_blocking(move || match std::fs::read(path.with_extension("sealed")) {
            Ok(sealed) => {
                // Opened only to be shown to the member of staff who asked (and audited there).
                let bytes = this
                    .vault
                    .open(&document_context(&id), &sealed)
                    .map_err(|e| StoreError::Unexpected(e.into()))?;
                let ct = std::fs::read_to_string(path.with_extension("type"))
                    .unwrap_or_else(|_| "application/octet-stream".into());
                Ok(Some((ct, bytes)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::Unexpected(anyhow::anyhow!(
                "reading a document: {e}"
            ))),
        })
        .await
        .map_err(|e| StoreError::Unexpected(anyhow::anyhow!("document read task: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn file_documents_roundtrip_and_refuse_paths() {
        let dir = tempfile_dir();
        let vault = PatientVault::new(&[3; 32]).unwrap();
        // A scan an earlier version stored in the clear is sealed at open.
        std::fs::write(dir.join("doc_0"), b"%PDF-1.4 Sam Taylor").unwrap();
        std::fs::write(dir.join("doc_0.type"), b"application/pdf").unwrap();
        let d = FileDocuments::new(&dir, vault.clone()).unwrap();
        assert!(!dir.join("doc_0").exists());
        assert_eq!(
            d.get("doc_0").await.unwrap().unwrap().1,
            b"%PDF-1.4 Sam Taylor"
        );
        d.put("doc_1", "application/pdf", b"%PDF-1.4".to_vec())
            .await
            .unwrap();
        for f in std::fs::read_dir(&dir).unwrap() {
            let bytes = std::fs::read(f.unwrap().path()).unwrap();
            assert!(!bytes.windows(4).any(|w| w == b"%PDF" || w == b"Sam "));
        }
        // Bound to its id: a scan copied over another document's does not open.
        std::fs::copy(dir.join("doc_0.sealed"), dir.join("doc_1.sealed")).unwrap();
        assert!(d.get("doc_1").await.is_err());
        d.put("doc_1", "application/pdf", b"%PDF-1.4".to_vec())
            .await
            .unwrap();
        assert_eq!(
            d.get("doc_1").await.unwrap().unwrap(),
            ("application/pdf".to_string(), b"%PDF-1.4".to_vec())
        );
        assert!(d.get("doc_2").await.unwrap().is_none());
        for evil in ["../etc/passwd", "doc_1/../../x", "", "a b", "..", "/abs"] {
            assert!(d.get(evil).await.unwrap().is_none(), "{evil}");
            assert!(d.put(evil, "x", vec![]).await.is_err(), "{evil}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("rxb-docs-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}
