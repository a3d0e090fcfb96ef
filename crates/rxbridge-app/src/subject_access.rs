//! The subject-access report (UK GDPR art. 15): every event about every prescription of one
//! patient, found through the keyed-hash lookups, in log order. The export itself is audited.

use crate::events::EventRecord;
use crate::ports::Mode;
use crate::staff::StaffSession;
use crate::staff_view::{PatientQuery, StaffViews, ViewError};

/// How a patient is found for a subject-access report.
pub const SUBJECT_LOOKUPS: [&str; 3] = ["nhs", "email", "family_dob"];

/// The events about one patient's prescriptions.
#[derive(Debug, Clone)]
pub struct SubjectAccessReport {
    pub prescriptions: usize,
    /// `(prescription id, event)`, oldest first.
    pub events: Vec<(String, EventRecord)>,
}

/// The export format, recorded on the audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    Html,
    Csv,
}

impl ReportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Html => "html",
            ReportFormat::Csv => "csv",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SubjectAccessError {
    /// Not one of [`SUBJECT_LOOKUPS`].
    #[error("find the patient by NHS number, email, or family name and date of birth")]
    UnknownLookup,
    #[error(transparent)]
    View(#[from] ViewError),
}

impl StaffViews {
    /// The report for the patient `query` finds (at most 200 prescriptions).
    pub async fn subject_access(
        &self,
        s: &StaffSession,
        mode: Mode,
        query: PatientQuery<'_>,
        format: ReportFormat,
    ) -> Result<SubjectAccessReport, SubjectAccessError> {
        let by = query.by;
        if !SUBJECT_LOOKUPS.contains(&by) {
            return Err(SubjectAccessError::UnknownLookup);
        }
        let lookup = self.lookup(query).map_err(ViewError::Invalid)?;
        let store = self.store();
        let found = store
            .search(mode, &lookup, 200)
            .await
            .map_err(ViewError::from)?;
        let mut events = Vec::new();
        for rec in &found {
            let timeline = store.timeline(&rec.id).await.map_err(ViewError::from)?;
            events.extend(timeline.into_iter().map(|e| (rec.id.clone(), e)));
        }
        events.sort_by_key(|(_, e)| e.seq);
        self.audit.record(
            s,
            "staff.subject_access",
            &s.staff.id,
            serde_json::json!({ "by": by, "mode": mode.as_str(), "prescriptions": found.len(), "events": events.len(), "format": format.as_str() }),
        )
        .await
        .map_err(ViewError::from)?;
        Ok(SubjectAccessReport {
            prescriptions: found.len(),
            events,
        })
    }
}
