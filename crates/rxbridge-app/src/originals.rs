//! Paper originals (FP10PCD, FP10): staff record that the signed original arrived, key in its
//! serial number, and may attach a scan. A serial that matches the one the clinic sent moves
//! the prescription on to the clinical check; a mismatch is recorded and blocks it there.
//!
//! Scans go through the `Documents` port (files on disk in the embedded build, S3 on AWS): PDF, JPEG or
//! PNG only — decided by the bytes, not the name — and at most `MAX_SCAN_BYTES`. The name a
//! user gives is kept as metadata only; storage uses a generated id, so no path is ever built
//! from user input.

use crate::clock::Clock;
use crate::crypto::PatientVault;
use crate::events::NewEvent;
use crate::ports::{Mode, PrescriptionRecord, Store, StoreError};
use crate::staff::Role;
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

/// Why a stored scan was not given.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error(
        "a scan of the original shows the patient's details in full: open the record with your reason first, and download it from there"
    )]
    ReasonRequired,
    #[error(transparent)]
    Store(#[from] StoreError),
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
    vault: PatientVault,
    clock: Arc<dyn Clock>,
}

/// A stored document as answered to staff.
#[derive(Debug, Clone, PartialEq)]
pub enum Download {
    /// The store's own short-lived link.
    Link(String),
    Bytes {
        content_type: String,
        bytes: Vec<u8>,
    },
}

impl Originals {
    pub fn new(
        store: Arc<dyn Store>,
        documents: Arc<dyn Documents>,
        vault: PatientVault,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            documents,
            vault,
            clock,
        }
    }

    pub fn documents(&self) -> &Arc<dyn Documents> {
        &self.documents
    }

    /// A stored scan for `staff_id`, audited before it is answered: the store's short-lived
    /// link when it has one (large scans do not pass through a Lambda response), else the
    /// bytes; `None` when there is no such document. The audit subject is `claimed` (a
    /// prescription id) only when that prescription's own timeline references the document,
    /// so a query parameter cannot put a view on an unrelated record.
    ///
    /// A scan shows the patient's details in full, so staff who see patient data masked
    /// (`staff_view::masked_for`) download it only with the reason they open the record for,
    /// as for the full record.
    pub async fn download(
        &self,
        (staff_id, role): (&str, Role),
        doc: &str,
        claimed: Option<&str>,
        reason: Option<&str>,
    ) -> Result<Option<Download>, DownloadError> {
        // Kept on the audit event (a masked viewer's reason for opening the record).
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        let subject = match claimed.filter(|c| !c.is_empty()) {
            Some(c) if self.references(c, doc).await? => c.to_string(),
            _ => doc.to_string(),
        };
        let answer = match self.documents.download_link(doc).await? {
            Some(link) => Download::Link(link),
            None => match self.documents.get(doc).await? {
                Some((content_type, bytes)) => Download::Bytes {
                    content_type,
                    bytes,
                },
                None => return Ok(None),
            },
        };
        if crate::staff_view::masked_for(role, reason) {
            return Err(DownloadError::ReasonRequired);
        }
        self.store
            .record_event(NewEvent {
                at: self.clock.now(),
                kind: "staff.viewed_document".into(),
                actor: format!("staff:{staff_id}"),
                subject,
                detail: serde_json::json!({ "document": doc, "reason": reason }),
            })
            .await?;
        Ok(Some(answer))
    }

    /// Whether `prescription`'s timeline names the document `doc`.
    async fn references(&self, prescription: &str, doc: &str) -> Result<bool, StoreError> {
        Ok(self.store.timeline(prescription).await?.iter().any(|e| {
            e.event
                .detail
                .get("document")
                .and_then(|d| d.get("id"))
                .and_then(|d| d.as_str())
                == Some(doc)
        }))
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
        let rx = self
            .vault
            .open_prescription(&rec)
            .map_err(StoreError::Unexpected)?;
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
}
