//! What staff see of prescriptions, and the audit of every look: search, the worklist, one
//! prescription (masked for support and finance staff unless they state why they open it), and
//! staff notes on its timeline. Every read of patient data appends its audit event before the
//! view is handed back; the front door only lays the view out.

use crate::clinical_view::{self, ClinicalView};
use crate::clock::Clock;
use crate::crypto::PatientVault;
use crate::events::{EventRecord, NewEvent};
use crate::payments::{PaymentError, PaymentRecord, PaymentStatus, Payments};
use crate::ports::{Mode, PrescriptionRecord, StaffLookup, Store, StoreError};
use crate::staff::{Role, StaffSession};
use rxbridge_domain::compliance::Severity;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::Prescription;
use std::sync::Arc;

/// Longest staff note, in characters.
pub const NOTE_MAX: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    #[error("no such prescription")]
    NotFound,
    /// The search or note as given cannot be used; the text says why.
    #[error("{0}")]
    Invalid(String),
    #[error("a sealed record could not be opened: {0}")]
    Unreadable(anyhow::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Payments(#[from] PaymentError),
}

/// The patient as the viewer may see them, one labelled line each.
#[derive(Debug, Clone, PartialEq)]
pub struct PatientDetails {
    pub masked: bool,
    pub lines: Vec<(&'static str, String)>,
}

/// One prescription in a list, with the patient shown masked.
#[derive(Debug, Clone)]
pub struct Listed {
    pub record: PrescriptionRecord,
    pub patient: String,
}

/// A flag a pharmacist may resolve by recording an amendment (MDR 2001 reg 16(1A)).
#[derive(Debug, Clone, PartialEq)]
pub struct AmendableFlag {
    pub code: String,
    pub item: Option<usize>,
}

/// A flag to acknowledge: one finding (the same code on two items is two flags), with the key
/// that acknowledges it (`Finding::key`) and what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct FlagToAcknowledge {
    pub key: String,
    pub code: String,
    pub item: Option<usize>,
    pub rule: String,
    pub message: String,
}

/// What a pharmacist decides on, when the viewer may decide now.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionOptions {
    pub version: i64,
    /// The flags to acknowledge, each on its own, by code then item.
    pub flags: Vec<FlagToAcknowledge>,
    pub amendable: Vec<AmendableFlag>,
    /// The payment approving now would plan (its quote and deadline); `None` when it cannot be
    /// priced (the approval then says why).
    pub on_approve: Option<PaymentRecord>,
}

/// The prescription's payment, with the link when the viewer may see it.
#[derive(Debug, Clone)]
pub struct PaymentShown {
    pub payment: PaymentRecord,
    pub link: Option<String>,
}

/// One prescription as a member of staff sees it.
#[derive(Debug, Clone)]
pub struct PrescriptionPage {
    pub record: PrescriptionRecord,
    pub patient: PatientDetails,
    /// State changes and staff actions, oldest first (no looks at the record).
    pub timeline: Vec<EventRecord>,
    /// Looks at the record (`staff.viewed_*`: still on the audit chain and in the
    /// subject-access report), for administrators only; empty for everyone else.
    pub access: Vec<EventRecord>,
    pub decision: Option<DecisionOptions>,
    pub payment: Option<PaymentShown>,
    /// The clinical check screen's particulars (prescriber, authority, items, links, history).
    pub clinical: ClinicalView,
}

/// Appends staff members' events to the log (the actor is `staff:<id>`).
#[derive(Clone)]
pub(crate) struct StaffAudit {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
}

impl StaffAudit {
    pub(crate) async fn record(
        &self,
        s: &StaffSession,
        kind: &str,
        subject: &str,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        let event = NewEvent {
            at: self.clock.now(),
            kind: kind.into(),
            actor: format!("staff:{}", s.staff.id),
            subject: subject.into(),
            detail,
        };
        self.store.record_event(event).await
    }
}

/// How staff look a patient up: `by` one of `id`, `reference`, `nhs`, `email`, `phone`, `postcode`,
/// `family_dob` (which needs `dob`, YYYY-MM-DD), and the value.
#[derive(Debug, Clone, Copy)]
pub struct PatientQuery<'a> {
    pub by: &'a str,
    pub value: &'a str,
    pub dob: Option<&'a str>,
}

pub struct StaffViews {
    store: Arc<dyn Store>,
    pub(crate) audit: StaffAudit,
    vault: PatientVault,
    payments: Arc<Payments>,
}

impl StaffViews {
    pub fn new(
        store: Arc<dyn Store>,
        vault: PatientVault,
        clock: Arc<dyn Clock>,
        payments: Arc<Payments>,
    ) -> Self {
        Self {
            audit: StaffAudit {
                store: store.clone(),
                clock,
            },
            store,
            vault,
            payments,
        }
    }

    pub(crate) fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// Prescriptions matching one lookup (at most 50), patient masked. The search value is
    /// patient data: only its kind and the count are audited.
    pub async fn search(
        &self,
        s: &StaffSession,
        mode: Mode,
        query: PatientQuery<'_>,
    ) -> Result<Vec<Listed>, ViewError> {
        let by = query.by;
        let lookup = self.lookup(query).map_err(ViewError::Invalid)?;
        let found = self.store.search(mode, &lookup, 50).await?;
        self.audit
            .record(
                s,
                "staff.searched",
                &s.staff.id,
                serde_json::json!({ "by": by, "mode": mode.as_str(), "results": found.len() }),
            )
            .await?;
        Ok(self.listed(found))
    }

    /// Prescriptions awaiting the clinical check, oldest first (at most 100), patient masked.
    pub async fn worklist(
        &self,
        s: &StaffSession,
        mode: Mode,
        only_flagged: bool,
    ) -> Result<Vec<Listed>, ViewError> {
        let page = self
            .store
            .worklist(mode, Status::AwaitingClinicalCheck, None, 100)
            .await?;
        let items: Vec<PrescriptionRecord> = page
            .items
            .into_iter()
            .filter(|r| !only_flagged || r.findings.iter().any(|f| f.severity == Severity::Flag))
            .collect();
        self.audit
            .record(
                s,
                "staff.viewed_worklist",
                &s.staff.id,
                serde_json::json!({ "mode": mode.as_str(), "shown": items.len() }),
            )
            .await?;
        Ok(self.listed(items))
    }

    /// One prescription. Pharmacists and admins see it in full; support and finance staff see
    /// the patient masked unless they give a reason (kept, at most 200 characters).
    pub async fn prescription(
        &self,
        s: &StaffSession,
        mode: Mode,
        id: &str,
        reason: Option<&str>,
    ) -> Result<PrescriptionPage, ViewError> {
        let mut record = self
            .store
            .get_prescription_for_staff(mode, id)
            .await?
            .ok_or(ViewError::NotFound)?;
        let rx = self.open(&record)?;
        let reason = reason
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.chars().take(200).collect::<String>());
        let masked = masked_for(s.staff.role, reason.as_deref());
        let timeline = self.store.timeline(id).await?;
        let today = rxbridge_domain::dates::london_date(self.audit.clock.now());
        let mut clinical = clinical_view::layout(&record, &rx, &timeline, today, masked);
        if !masked {
            clinical_view::look_up(&mut clinical, self.store(), &self.vault, mode, &record, &rx)
                .await?;
        }
        let history: Vec<&str> = clinical
            .history
            .iter()
            .map(|h| h.prescription_id.as_str())
            .collect();
        self.audit
            .record(
                s,
                "staff.viewed_prescription",
                id,
                serde_json::json!({ "masked": masked, "reason": reason, "mode": mode.as_str(), "history_shown": history.len(), "history": history }),
            )
            .await?;
        // A record shown beside this one (a conflicting identity: maybe another person's) is
        // a look at that record too, on its own timeline and so in its subject-access report.
        let mut related: Vec<&str> = clinical
            .related
            .iter()
            .flatten()
            .map(|r| r.id.as_str())
            .collect();
        related.sort_unstable();
        related.dedup();
        for other in related.into_iter().filter(|r| *r != id) {
            let detail = serde_json::json!({ "from": id, "mode": mode.as_str() });
            self.audit
                .record(s, "staff.viewed_related", other, detail)
                .await?;
        }
        if masked {
            // A finding's message may name earlier supplies or other records.
            for f in &mut record.findings {
                f.message = rxbridge_domain::compliance::describe(&f.code).to_string();
            }
        }
        let payment = self.payments.for_prescription(id).await?.map(|p| {
            let link = (p.status == PaymentStatus::AwaitingPayment && !masked)
                .then(|| self.payments.link_for(&p.id));
            PaymentShown { payment: p, link }
        });
        let mut decision = decision_options(s, &record);
        if let Some(d) = decision.as_mut() {
            d.on_approve = self.payments.plan(&record, &rx).ok();
        }
        let (access, timeline): (Vec<EventRecord>, Vec<EventRecord>) =
            timeline.into_iter().partition(|e| is_access(&e.event.kind));
        Ok(PrescriptionPage {
            decision,
            patient: patient_details(&rx, masked),
            record,
            timeline,
            access: if s.staff.role == Role::Admin {
                access
            } else {
                Vec::new()
            },
            payment,
            clinical,
        })
    }

    /// Every look at one prescription, for administrators: who, when, masked or not, why. No
    /// patient data (the record's reference and status only), so not itself a look.
    pub async fn access_log(
        &self,
        s: &StaffSession,
        mode: Mode,
        id: &str,
    ) -> Result<(PrescriptionRecord, Vec<EventRecord>), ViewError> {
        if s.staff.role != Role::Admin {
            return Err(ViewError::NotFound);
        }
        let record = self
            .store
            .get_prescription_for_staff(mode, id)
            .await?
            .ok_or(ViewError::NotFound)?;
        let mut looks = self.store.timeline(id).await?;
        looks.retain(|e| is_access(&e.event.kind));
        Ok((record, looks))
    }

    /// A prescription's version and status (no patient data: not audited), to tell whether a
    /// form is still current before asking to confirm it.
    pub async fn current(&self, mode: Mode, id: &str) -> Result<(i64, Status), ViewError> {
        let record = self.store.get_prescription_for_staff(mode, id).await?;
        let record = record.ok_or(ViewError::NotFound)?;
        Ok((record.version, record.status))
    }

    /// A note on the prescription's timeline: 1 to [`NOTE_MAX`] characters, no control
    /// characters but line breaks.
    pub async fn note(
        &self,
        s: &StaffSession,
        mode: Mode,
        id: &str,
        note: &str,
    ) -> Result<(), ViewError> {
        if self
            .store
            .get_prescription_for_staff(mode, id)
            .await?
            .is_none()
        {
            return Err(ViewError::NotFound);
        }
        let Some(note) = staff_text(note, NOTE_MAX) else {
            return Err(ViewError::Invalid(format!(
                "A note needs 1 to {NOTE_MAX} characters."
            )));
        };
        self.audit
            .record(s, "staff.note", id, serde_json::json!({ "note": note }))
            .await?;
        Ok(())
    }

    fn open(&self, rec: &PrescriptionRecord) -> Result<Prescription, ViewError> {
        self.vault
            .open_prescription(rec)
            .map_err(ViewError::Unreadable)
    }

    fn listed(&self, records: Vec<PrescriptionRecord>) -> Vec<Listed> {
        records
            .into_iter()
            .map(|record| Listed {
                patient: match self.open(&record) {
                    Ok(rx) => patient_details(&rx, true)
                        .lines
                        .iter()
                        .map(|(_, v)| v.as_str())
                        .collect::<Vec<_>>()
                        .join(" · "),
                    Err(_) => "(unreadable)".into(),
                },
                record,
            })
            .collect()
    }

    /// The lookup for a staff search: the value normalised exactly as intake normalises it,
    /// then keyed-hashed. `dob` goes with a family name.
    pub(crate) fn lookup(&self, query: PatientQuery<'_>) -> Result<StaffLookup, String> {
        use StaffLookup as L;
        let PatientQuery { by, value, dob } = query;
        let q = value.trim();
        if q.is_empty() || q.len() > 200 {
            return Err("enter a value to search for".into());
        }
        Ok(match by {
            "id" => L::PrescriptionId(q.to_string()),
            "reference" => L::ClinicReference(q.to_string()),
            "nhs" => {
                let n = rxbridge_domain::ids::NhsNumber::parse(q)
                    .map_err(|e| format!("NHS number {e}"))?;
                L::NhsNumber(self.vault.lookup("nhs", n.as_str()))
            }
            "email" => {
                let e =
                    rxbridge_domain::contact::Email::parse(q).map_err(|e| format!("email {e}"))?;
                L::Email(self.vault.lookup("email", &e.lookup_key()))
            }
            "phone" => {
                let p = rxbridge_domain::contact::UkPhone::parse(q)
                    .map_err(|e| format!("phone number {e}"))?;
                L::Phone(self.vault.lookup("phone", p.as_str()))
            }
            "postcode" => {
                let p = rxbridge_domain::contact::Postcode::parse(q)
                    .map_err(|e| format!("postcode {e}"))?;
                L::Postcode(self.vault.lookup(
                    "postcode",
                    &rxbridge_domain::normalise::postcode_key(p.as_str()),
                ))
            }
            "family_dob" => {
                let dob: jiff::civil::Date = dob
                    .and_then(|d| d.parse().ok())
                    .ok_or("a family-name search needs the date of birth (YYYY-MM-DD)")?;
                L::FamilyNameAndDob(self.vault.lookup(
                    "family_dob",
                    &rxbridge_domain::prescription::family_dob_key(q, dob),
                ))
            }
            _ => {
                return Err(
                    "search by id, reference, nhs, email, phone, postcode or family_dob".into(),
                );
            }
        })
    }
}

/// A look at patient data rather than a change or an action (`staff.viewed_*`).
pub fn is_access(kind: &str) -> bool {
    kind.starts_with("staff.viewed_")
}

/// Who an event's actor is, in words: a member of staff by email and role, a clinic by name,
/// rxbridge's own processes by what they are; an actor not known here as it was recorded.
pub fn describe_actor(
    actor: &str,
    staff: &[crate::staff::StaffAccount],
    clinics: &[crate::ports::Clinic],
) -> String {
    if let Some(id) = actor.strip_prefix("staff:")
        && let Some(a) = staff.iter().find(|a| a.id == id)
    {
        return format!("{} ({})", a.email, a.role.as_str());
    }
    if let Some(id) = actor.strip_prefix("clinic:")
        && let Some(c) = clinics.iter().find(|c| c.id == id)
    {
        return format!("{} (clinic)", c.name);
    }
    match actor {
        "system" => "rxbridge (automatic)".into(),
        "warehouse" => "the warehouse".into(),
        "cli" => "the command line".into(),
        other => other.to_string(),
    }
}

/// Free text from staff, trimmed: `None` when empty, longer than `max` characters, or holding
/// control characters other than line breaks.
pub fn staff_text(raw: &str, max: usize) -> Option<String> {
    let t = raw.trim();
    (!t.is_empty()
        && t.chars().count() <= max
        && !t.chars().any(|c| c.is_control() && c != '\n' && c != '\r'))
    .then(|| t.to_string())
}

/// A pharmacist decides on a prescription awaiting the clinical check or on hold.
fn decision_options(s: &StaffSession, rec: &PrescriptionRecord) -> Option<DecisionOptions> {
    (s.staff.role == Role::Pharmacist
        && matches!(rec.status, Status::AwaitingClinicalCheck | Status::OnHold))
    .then(|| DecisionOptions {
        version: rec.version,
        flags: flags_to_acknowledge(rec),
        on_approve: None,
        amendable: rec
            .findings
            .iter()
            .filter(|f| crate::clinical::AMENDABLE.contains(&f.code.as_str()))
            .map(|f| AmendableFlag {
                code: f.code.clone(),
                item: f.item,
            })
            .collect(),
    })
}

fn flags_to_acknowledge(rec: &PrescriptionRecord) -> Vec<FlagToAcknowledge> {
    let mut flags: Vec<FlagToAcknowledge> = rec
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Flag)
        .map(|f| FlagToAcknowledge {
            key: f.key(),
            code: f.code.clone(),
            item: f.item,
            rule: f.rule.clone(),
            message: f.message.clone(),
        })
        .collect();
    flags.sort_by(|a, b| (&a.code, a.item).cmp(&(&b.code, b.item)));
    flags
}

/// Whether `role` sees patient data masked: support and finance staff do, unless they state
/// why they open the record (`reason`, not blank).
pub fn masked_for(role: Role, reason: Option<&str>) -> bool {
    matches!(role, Role::Support | Role::Finance) && reason.is_none_or(|r| r.trim().is_empty())
}

/// What the viewer may see of the patient: masked, the initials, year of birth, the last three
/// digits of the NHS number and the outward postcode; in full, name, date of birth, NHS number,
/// email, phone and address.
pub fn patient_details(rx: &Prescription, masked: bool) -> PatientDetails {
    let p = &rx.patient;
    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "—".into());
    let initial = |s: &str| {
        s.chars()
            .next()
            .map(|c| format!("{c}."))
            .unwrap_or_default()
    };
    let lines = if masked {
        vec![
            (
                "Name",
                format!("{} {}", initial(&p.given_name), initial(&p.family_name)),
            ),
            ("Year of birth", p.date_of_birth.year().to_string()),
            (
                "NHS number",
                or_dash(
                    p.nhs_number
                        .as_ref()
                        .map(|n| format!("*******{}", n.last3())),
                ),
            ),
            (
                "Postcode",
                p.address
                    .postcode
                    .split(' ')
                    .next()
                    .unwrap_or("")
                    .to_string()
                    + " ***",
            ),
        ]
    } else {
        vec![
            ("Name", format!("{} {}", p.given_name, p.family_name)),
            ("Date of birth", p.date_of_birth.to_string()),
            (
                "NHS number",
                or_dash(p.nhs_number.as_ref().map(|n| n.as_str().to_string())),
            ),
            ("Address", crate::clinical_view::address_line(&p.address)),
            (
                "Email",
                or_dash(p.email.as_ref().map(|e| e.as_str().to_string())),
            ),
            (
                "Phone",
                or_dash(p.phone.as_ref().map(|e| e.as_str().to_string())),
            ),
        ]
    };
    PatientDetails { masked, lines }
}

#[cfg(test)]
mod tests {
    use super::{describe_actor, is_access, staff_text};

    #[test]
    fn actors_are_named_and_looks_are_told_apart() {
        let at: jiff::Timestamp = "2026-12-01T09:00:00Z".parse().unwrap();
        let staff = vec![crate::staff::StaffAccount {
            id: "st_1".into(),
            email: "ph@example.com".into(),
            role: crate::staff::Role::Pharmacist,
            gphc: None,
            password_hash: String::new(),
            must_change_password: false,
            failed_attempts: 0,
            locked_until: None,
            created_at: at,
        }];
        let clinics = vec![crate::ports::Clinic {
            id: "cl_1".into(),
            name: "North Clinic".into(),
            created_at: at,
        }];
        let named = |a: &str| describe_actor(a, &staff, &clinics);
        assert_eq!(named("staff:st_1"), "ph@example.com (pharmacist)");
        assert_eq!(named("clinic:cl_1"), "North Clinic (clinic)");
        assert_eq!(named("system"), "rxbridge (automatic)");
        assert_eq!(named("staff:st_gone"), "staff:st_gone");
        assert!(is_access("staff.viewed_prescription") && is_access("staff.viewed_document"));
        assert!(!is_access("staff.note") && !is_access("prescription.approved"));
    }

    #[test]
    fn staff_text_is_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(staff_text("  a note \n", 10).as_deref(), Some("a note"));
        assert_eq!(
            staff_text("line\r\nnext", 20).as_deref(),
            Some("line\r\nnext")
        );
        assert_eq!(staff_text("   ", 10), None);
        assert_eq!(staff_text("abcdef", 5), None);
        assert_eq!(staff_text("bell\u{7}", 10), None);
    }
}
