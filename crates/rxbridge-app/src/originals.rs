//! Paper originals (FP10PCD, FP10): staff record that the signed original arrived, key in its
//! serial number, and may attach a scan. A serial that matches the one the clinic sent moves
//! the prescription on to the clinical check; a mismatch is recorded and blocks it there.
//!
//! Scans go through the `Documents` port (files on disk by default, S3 later): PDF, JPEG or
//! PNG only — decided by the bytes, not the name — and at most `MAX_SCAN_BYTES`. The name a
//! user gives is kept as metadata only; storage uses a generated id, so no path is ever built
//! from user input.

use crate::clock::Clock;
use crate::events::NewEvent;
use crate::intake::Intake;
use crate::ports::{Mode, PrescriptionRecord, Store, StoreError};
use async_trait::async_trait;
use rxbridge_domain::lifecycle::Status;
use std::sync::Arc;

pub const MAX_SCAN_BYTES: usize = 10 * 1024 * 1024;

/// Where scanned documents live.
///
/// Contract: `put` stores the bytes durably under `id` before returning; `get` returns exactly
/// what was put, or `None`.
#[async_trait]
pub trait Documents: Send + Sync + 'static {
    async fn put(&self, id: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError>;
    async fn get(&self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// A short-lived link the browser fetches the document from directly (an S3 presigned
    /// GET), when the adapter has one; `Ok(None)` means "serve the bytes from `get`" — also
    /// when the document does not exist.
    async fn download_link(&self, _id: &str) -> Result<Option<String>, StoreError> {
        Ok(None)
    }
}

/// The content type of a scan, from its first bytes.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else {
        None
    }
}

/// Serial numbers compare without case, spaces or hyphens ("PCD 123-4567" = "pcd1234567").
pub fn same_serial(a: &str, b: &str) -> bool {
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_uppercase())
            .collect()
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

#[derive(Debug, thiserror::Error)]
pub enum OriginalError {
    #[error("no such prescription")]
    NotFound,
    #[error("this prescription is {0}, not awaiting its paper original")]
    NotAwaitingOriginal(Status),
    #[error("enter the serial number printed on the form")]
    SerialRequired,
    #[error("the scan must be a PDF, JPEG or PNG file")]
    UnsupportedScan,
    #[error("the scan is larger than 10 MiB")]
    ScanTooLarge,
    #[error(
        "the serial number {keyed} does not match the one the clinic sent; the prescription stays blocked until the right original arrives"
    )]
    Mismatch { keyed: String },
    #[error("the prescription changed meanwhile; reload it")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Scan {
    pub file_name: String,
    pub bytes: Vec<u8>,
}

pub struct Originals {
    store: Arc<dyn Store>,
    documents: Arc<dyn Documents>,
    intake: Arc<Intake>,
    clock: Arc<dyn Clock>,
}

impl Originals {
    pub fn new(
        store: Arc<dyn Store>,
        documents: Arc<dyn Documents>,
        intake: Arc<Intake>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            documents,
            intake,
            clock,
        }
    }

    pub fn documents(&self) -> &Arc<dyn Documents> {
        &self.documents
    }

    /// Record the arrival of the signed original with the serial keyed in (or scanned) by
    /// `staff_id`, and an optional scan.
    pub async fn record(
        &self,
        staff_id: &str,
        mode: Mode,
        id: &str,
        keyed_serial: &str,
        scan: Option<Scan>,
    ) -> Result<PrescriptionRecord, OriginalError> {
        let keyed = keyed_serial.trim();
        if keyed.is_empty() || keyed.len() > 64 {
            return Err(OriginalError::SerialRequired);
        }
        let rec = self
            .store
            .get_prescription_for_staff(mode, id)
            .await?
            .ok_or(OriginalError::NotFound)?;
        let to = rec
            .status
            .original_matched()
            .map_err(|_| OriginalError::NotAwaitingOriginal(rec.status))?;
        let document = match scan {
            Some(scan) if !scan.bytes.is_empty() => {
                if scan.bytes.len() > MAX_SCAN_BYTES {
                    return Err(OriginalError::ScanTooLarge);
                }
                let content_type = sniff(&scan.bytes).ok_or(OriginalError::UnsupportedScan)?;
                let doc_id = format!("doc_{}", uuid::Uuid::now_v7().simple());
                let size = scan.bytes.len();
                self.documents
                    .put(&doc_id, content_type, scan.bytes)
                    .await?;
                let name: String = scan
                    .file_name
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect();
                Some(
                    serde_json::json!({ "id": doc_id, "content_type": content_type, "bytes": size, "file_name": name }),
                )
            }
            _ => None,
        };
        let rx = self.intake.open(&rec).map_err(StoreError::Unexpected)?;
        let expected = rx.authority.serial_number.unwrap_or_default();
        let actor = format!("staff:{staff_id}");
        if !same_serial(keyed, &expected) {
            self.store
                .record_event(NewEvent {
                    at: self.clock.now(),
                    kind: "prescription.original_mismatch".into(),
                    actor,
                    subject: id.into(),
                    detail: serde_json::json!({ "keyed_serial": keyed, "document": document }),
                })
                .await?;
            return Err(OriginalError::Mismatch {
                keyed: keyed.to_string(),
            });
        }
        let event = NewEvent {
            at: self.clock.now(),
            kind: "prescription.original_matched".into(),
            actor,
            subject: id.into(),
            detail: serde_json::json!({ "serial": keyed, "document": document }),
        };
        match self
            .store
            .commit(crate::payments::Change::move_to(&rec, to, vec![event]))
            .await
        {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(OriginalError::NotFound),
            Err(StoreError::Conflict) => Err(OriginalError::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}

/// Documents as files: `<dir>/<id>.sealed` (the scan, sealed with the patient vault and bound
/// to its id: a scan shows the patient's name and address) plus `<dir>/<id>.type`, written to
/// a temporary name, fsynced and renamed into place; owner-only. Ids are generated (`doc_` +
/// hex), never user input. Scans an earlier version stored in the clear (`<dir>/<id>`) are
/// sealed when the store is opened.
#[derive(Clone)]
pub struct FileDocuments {
    dir: std::path::PathBuf,
    vault: crate::PatientVault,
}

fn document_context(id: &str) -> String {
    format!("document/v1|{id}")
}

impl FileDocuments {
    pub fn new(
        dir: impl Into<std::path::PathBuf>,
        vault: crate::PatientVault,
    ) -> std::io::Result<Self> {
        let dir = dir.into();
        crate::files::private_dir(&dir)?;
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
        let mut f = crate::files::private_file(&tmp)?;
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
            let mut t = crate::files::private_file(&path.with_extension("type"))?;
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

    #[test]
    fn sniffing_and_serials() {
        assert_eq!(sniff(b"%PDF-1.7 ..."), Some("application/pdf"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(
            sniff(b"\\x89PNG\\r\\n\\x1a\\n"),
            None,
            "escaped text is not a PNG"
        );
        assert_eq!(
            sniff(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0]),
            Some("image/png")
        );
        assert_eq!(sniff(b"<html><script>"), None);
        assert_eq!(sniff(b"MZ\\x90"), None);
        assert!(same_serial("PCD 123-4567", "pcd1234567"));
        assert!(!same_serial("PCD1234568", "PCD1234567"));
        assert!(!same_serial("", ""));
    }

    #[tokio::test]
    async fn file_documents_roundtrip_and_refuse_paths() {
        let dir = tempfile_dir();
        let vault = crate::PatientVault::new(&[3; 32]).unwrap();
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
