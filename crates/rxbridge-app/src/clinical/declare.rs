//! The patient's NHS charge exemption, declared at the pharmacy. An NHS prescription that did
//! not carry its exemption (an EPS message never does) waits for it before the pharmacist can
//! approve it: staff record the code the patient declared and whether they saw evidence. The
//! domain judges the code (`rxbridge_domain::declaration`: known, in force today, agreeing with
//! the date of birth); a refused declaration changes nothing. A recorded one is an event on the
//! hash-chained log, bound to the prescription's new state, and on its timeline.

use super::ClinicalCheck;
use crate::events::NewEvent;
use crate::payments::{Change, TransitionTo};
use crate::ports::{Mode, PrescriptionRecord, StoreError};
use rxbridge_domain::dates::london_date;
use rxbridge_domain::declaration::{self, DeclarationError, NhsExemption};
use rxbridge_domain::lifecycle::Status;

/// Why a declaration was not recorded. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    #[error("no such prescription")]
    NotFound,
    /// The code, the day or the patient's age refuses it (or it has nothing to declare).
    #[error("{0}")]
    Refused(#[from] DeclarationError),
    /// Approved already: the charge was fixed then.
    #[error(
        "a prescription that is {0} takes no exemption declaration: the charge was fixed when it was approved"
    )]
    TooLate(Status),
    #[error("the prescription changed meanwhile; reload it")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What the patient declared, as staff keyed it in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared<'a> {
    /// The exemption code (`0001` = paid).
    pub code: &'a str,
    pub evidence_seen: bool,
}

impl ClinicalCheck {
    /// Record the patient's exemption declaration on `id` (in `mode`), keyed in by `staff_id`,
    /// judged on today's date in London. A declaration may be corrected until approval; each is
    /// its own event.
    pub async fn declare_exemption(
        &self,
        staff_id: &str,
        mode: Mode,
        id: &str,
        declared: Declared<'_>,
    ) -> Result<PrescriptionRecord, DeclareError> {
        let rec = self
            .store
            .get_prescription_for_staff(mode, id)
            .await?
            .ok_or(DeclareError::NotFound)?;
        let rx = self
            .vault
            .open_prescription(&rec)
            .map_err(StoreError::Unexpected)?;
        let now = self.clock.now();
        let d = declaration::declare(
            &rx,
            declared.code,
            declared.evidence_seen,
            london_date(now),
            staff_id,
        )?;
        let to = rec
            .status
            .declare_exemption()
            .map_err(|_| DeclareError::TooLate(rec.status))?;
        let previous = rec
            .nhs_exemption
            .as_ref()
            .and_then(NhsExemption::declaration)
            .map(|p| p.exemption.as_code());
        let event = NewEvent {
            at: now,
            kind: "prescription.exemption_declared".into(),
            actor: format!("staff:{staff_id}"),
            subject: id.into(),
            detail: serde_json::json!({
                "exemption": d.exemption.as_code(),
                "meaning": d.exemption.meaning(),
                "evidence_seen": d.evidence_seen,
                "declared_on": d.declared_on.to_string(),
                "replaces": previous,
                "status": rec.status.as_str(),
            }),
        };
        let change = Change {
            transition: Some(TransitionTo {
                id: rec.id.clone(),
                expected_version: rec.version,
                to,
            }),
            events: vec![event],
            nhs_exemption: Some(NhsExemption::Declared(d)),
            ..Change::default()
        };
        match self.store.commit(change).await {
            Ok(Some(r)) => Ok(r),
            Ok(None) | Err(StoreError::NotFound) => Err(DeclareError::NotFound),
            Err(StoreError::Conflict) => Err(DeclareError::Conflict),
            Err(e) => Err(e.into()),
        }
    }
}
