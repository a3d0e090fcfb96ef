//! The register entries fulfilment makes (supplies, annotations), staff corrections to a
//! section, and a section as a printable report.

use super::model::{address_line, product_heading, section};
use super::service::Fulfilment;
use crate::finance::Report;
use crate::payments::Change;
use crate::ports::{PrescriptionRecord, StoreError};
use crate::registers::{EntryKind, NewEntry, Particulars, Register, RegisterEntry};
use rxbridge_domain::dates::london_date;
use rxbridge_domain::formulary::{Formulary, Schedule};
use rxbridge_domain::prescription::{Prescription, PrescriptionType};
use serde_json::json;

impl Fulfilment {
    /// CD register supply entries (Schedule 2 lines) and POM register entries (private
    /// prescriptions' other lines; NHS supplies are exempt, HMR 2012 reg 253).
    pub(super) fn supply_entries(
        &self,
        rec: &PrescriptionRecord,
        rx: &Prescription,
        carrier: &str,
        tracking: &str,
        supplier: &str,
        now: jiff::Timestamp,
    ) -> Vec<NewEntry> {
        let f = Formulary::builtin();
        let pr = &rx.prescriber;
        let mut out = Vec::new();
        for item in &rx.items {
            let Some(p) = f.get(&item.product_code) else {
                continue;
            };
            let register = if p.schedule == Schedule::Cd2 {
                Register::Cd
            } else if rx.kind == PrescriptionType::Private {
                Register::Pom
            } else {
                continue;
            };
            let sec = section(rec.mode, &p.code);
            let particulars = Particulars {
                product: product_heading(p),
                supplied_to: Some(format!(
                    "{} {}",
                    rx.patient.given_name, rx.patient.family_name
                )),
                supplied_to_address: Some(address_line(&rx.patient.address)),
                prescriber: Some(format!(
                    "{} {} ({} {})",
                    pr.given_name,
                    pr.family_name,
                    pr.registration.body().to_uppercase(),
                    pr.registration.number()
                )),
                prescriber_address: Some(address_line(&pr.address)),
                prescription_date: Some(rx.issued_on),
                collector: Some(format!(
                    "Delivery to the patient's address by {carrier} (tracking {tracking}), signature on delivery"
                )),
                id_requested: (register == Register::Cd).then_some(true),
                id_provided: None,
                reference: Some(rec.id.clone()),
                ..Particulars::default()
            };
            out.push(NewEntry {
                register,
                sealed: self.seal(register, &sec, now, &particulars),
                section: sec,
                kind: EntryKind::Supply,
                entry_date: london_date(now),
                at: now,
                author: supplier.to_string(),
                subject: Some(rec.id.clone()),
                quantity: i64::from(item.quantity.get()),
            });
        }
        out
    }

    /// Who supplies: the pharmacist whose approval released the prescription (their GPhC
    /// number and staff id, from the approval on its timeline).
    pub(super) async fn supplying_pharmacist(&self, id: &str) -> Result<String, StoreError> {
        let timeline = self.store.timeline(id).await?;
        let approved = timeline
            .iter()
            .rev()
            .find(|e| e.event.kind == "prescription.approved");
        Ok(match approved {
            Some(e) => match e.event.detail.get("gphc").and_then(|g| g.as_str()) {
                Some(gphc) => format!("pharmacist GPhC {gphc} ({})", e.event.actor),
                None => e.event.actor.clone(),
            },
            None => "not approved by a pharmacist".into(),
        })
    }

    pub(super) fn annotations(
        &self,
        rec: &PrescriptionRecord,
        now: jiff::Timestamp,
        note: &str,
        collector: Option<String>,
        id_provided: Option<bool>,
    ) -> Vec<NewEntry> {
        let f = Formulary::builtin();
        rec.items
            .iter()
            .filter_map(|i| f.get(&i.product_code))
            .filter(|p| p.schedule == Schedule::Cd2)
            .map(|p| {
                let sec = section(rec.mode, &p.code);
                let particulars = Particulars {
                    product: product_heading(p),
                    note: Some(note.to_string()),
                    collector: collector.clone(),
                    id_provided,
                    reference: Some(rec.id.clone()),
                    ..Particulars::default()
                };
                NewEntry {
                    register: Register::Cd,
                    sealed: self.seal(Register::Cd, &sec, now, &particulars),
                    section: sec,
                    kind: EntryKind::Annotation,
                    entry_date: london_date(now),
                    at: now,
                    author: "warehouse".into(),
                    subject: Some(rec.id.clone()),
                    quantity: 0,
                }
            })
            .collect()
    }

    /// A dated correction or note on a register section (MDR 2001 reg 20: never an edit).
    /// `corrects` is the corrected entry's number in the section, as the register shows it.
    pub async fn annotate(
        &self,
        register: Register,
        section_name: &str,
        corrects: Option<i64>,
        note: &str,
        author: &str,
    ) -> Result<(), StoreError> {
        let note = note.trim();
        if note.is_empty() || note.chars().count() > 500 {
            return Err(StoreError::Rejected(
                "a note of 1 to 500 characters is required".into(),
            ));
        }
        let entries = self
            .registers
            .register_entries(register, Some(section_name))
            .await?;
        if entries.is_empty() {
            return Err(StoreError::NotFound);
        }
        let corrects_seq = match corrects {
            None => None,
            Some(n) => {
                let at = usize::try_from(n).ok().and_then(|n| n.checked_sub(1));
                let Some(e) = at.and_then(|i| entries.get(i)) else {
                    return Err(StoreError::Rejected(format!(
                        "entry {n} is not in this section"
                    )));
                };
                Some(e.seq)
            }
        };
        let now = self.clock.now();
        let code = section_name.trim_start_matches("test/");
        let particulars = Particulars {
            product: Formulary::builtin()
                .get(code)
                .map(product_heading)
                .unwrap_or_else(|| code.to_string()),
            note: Some(match corrects {
                Some(n) => format!("Correction to entry {n}, made {}: {note}", london_date(now)),
                None => format!("Note made {}: {note}", london_date(now)),
            }),
            corrects_seq,
            ..Particulars::default()
        };
        let change = Change {
            events: vec![self.event(
                "register.annotated",
                author,
                &format!("register:{}:{section_name}", register.as_str()),
                json!({ "corrects": corrects_seq }),
            )],
            register: vec![NewEntry {
                register,
                sealed: self.seal(register, section_name, now, &particulars),
                section: section_name.to_string(),
                kind: EntryKind::Annotation,
                entry_date: london_date(now),
                at: now,
                author: author.to_string(),
                subject: None,
                quantity: 0,
            }],
            ..Change::default()
        };
        self.guard_sections(&change, "register entry").await?;
        self.store.commit(change).await.map(|_| ())
    }

    /// One register section as a printable report (patient particulars opened; the read is
    /// audited).
    pub async fn register_report(
        &self,
        register: Register,
        section_name: &str,
        actor: &str,
    ) -> Result<Report, StoreError> {
        let entries = self
            .registers
            .register_entries(register, Some(section_name))
            .await?;
        self.store
            .record_event(self.event(
                "register.viewed",
                actor,
                &format!("register:{}:{section_name}", register.as_str()),
                json!({ "entries": entries.len() }),
            ))
            .await?;
        let code = section_name.trim_start_matches("test/");
        let heading = Formulary::builtin()
            .get(code)
            .map(product_heading)
            .unwrap_or_else(|| code.to_string());
        let mut rows = Vec::new();
        for (n, e) in entries.iter().enumerate() {
            let p = self
                .open_particulars(&e.entry)
                .map_err(StoreError::Unexpected)?;
            let yn = |b: Option<bool>| match b {
                Some(true) => "Y",
                Some(false) => "N",
                None => "",
            };
            rows.push(vec![
                (n + 1).to_string(),
                e.entry.entry_date.to_string(),
                e.entry.kind.as_str().to_string(),
                p.supplied_to
                    .map(|n| format!("{n}, {}", p.supplied_to_address.unwrap_or_default()))
                    .or(p.received_from)
                    .unwrap_or_default(),
                p.prescriber
                    .map(|n| format!("{n}, {}", p.prescriber_address.unwrap_or_default()))
                    .unwrap_or_default(),
                match e.entry.kind {
                    EntryKind::Receipt => e.entry.quantity.to_string(),
                    EntryKind::Supply => format!("-{}", e.entry.quantity),
                    EntryKind::Annotation => String::new(),
                },
                p.collector.unwrap_or_default(),
                yn(p.id_requested).into(),
                yn(p.id_provided).into(),
                match (p.invoice_ref, p.note) {
                    (Some(invoice), _) => invoice,
                    (None, Some(note)) => correction_text(note, p.corrects_seq, &entries),
                    (None, None) => p.reference.unwrap_or_default(),
                },
                if register == Register::Cd {
                    e.balance_after.to_string()
                } else {
                    String::new()
                },
                e.entry.author.clone(),
            ]);
        }
        let balance = entries.last().map_or(0, |e| e.balance_after);
        Ok(Report {
            kind: crate::finance::ExportKind::Payments,
            month: section_name.to_string(),
            title: match register {
                Register::Cd => format!("Controlled Drugs register: {heading}"),
                Register::Pom => format!("POM register: {heading}"),
            },
            header: vec![
                ("Pharmacy".into(), self.cfg.pharmacy_name.clone()),
                ("Section".into(), section_name.to_string()),
                (
                    "Printed".into(),
                    self.clock.now().strftime("%Y-%m-%d %H:%M UTC").to_string(),
                ),
            ],
            columns: [
                "entry",
                "date",
                "kind",
                "supplied to / received from",
                "prescriber",
                "quantity",
                "collected by",
                "ID requested",
                "ID provided",
                "invoice / note / order",
                "balance",
                "author",
            ]
            .map(String::from)
            .to_vec(),
            rows,
            totals: if register == Register::Cd {
                vec![
                    ("Running balance".into(), balance.to_string()),
                    ("Entries".into(), entries.len().to_string()),
                ]
            } else {
                vec![("Entries".into(), entries.len().to_string())]
            },
            differences: Vec::new(),
        })
    }
}

/// A correction's note as the section shows it. Corrections name the entry they correct by its
/// number in the section; ones written while the register numbered entries across all
/// sections name that number, so the entry's number in the section (found from the entry it
/// corrects, which every correction records) is put first and the recorded text kept after it.
fn correction_text(note: String, corrects: Option<i64>, entries: &[RegisterEntry]) -> String {
    let Some(seq) = corrects else { return note };
    let Some(pos) = entries.iter().position(|e| e.seq == seq) else {
        return note;
    };
    let written = note
        .strip_prefix("Correction to entry ")
        .and_then(|rest| rest.split_once(','))
        .and_then(|(n, _)| n.parse::<usize>().ok());
    match written {
        Some(n) if n != pos + 1 => format!(
            "Correction to entry {} (written as entry {n}, its number across all sections then): {note}",
            pos + 1
        ),
        _ => note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64) -> RegisterEntry {
        RegisterEntry {
            seq,
            entry: NewEntry {
                register: Register::Cd,
                section: "CONCERTA-XL-36".into(),
                kind: EntryKind::Receipt,
                entry_date: jiff::civil::date(2026, 11, 1),
                at: jiff::Timestamp::UNIX_EPOCH,
                author: "staff:st_1".into(),
                subject: None,
                quantity: 30,
                sealed: Vec::new(),
            },
            balance_after: 30,
            prev_hash: String::new(),
            hash: String::new(),
            event_seq: 0,
        }
    }

    #[test]
    fn a_correction_names_the_entry_by_its_number_in_the_section() {
        // The section holds the register's entries 4, 9 and 17 (the others are other sections').
        let entries = [entry(4), entry(9), entry(17)];
        let now = "Correction to entry 2, made 2026-11-20: wrong batch".to_string();
        assert_eq!(correction_text(now.clone(), Some(9), &entries), now);
        let before = "Correction to entry 9, made 2026-11-02: wrong batch".to_string();
        assert_eq!(
            correction_text(before.clone(), Some(9), &entries),
            format!(
                "Correction to entry 2 (written as entry 9, its number across all sections then): {before}"
            )
        );
        let note = "Note made 2026-11-20: stock checked".to_string();
        assert_eq!(correction_text(note.clone(), None, &entries), note);
        // An entry that is not in the section (cannot happen; shown as written).
        assert_eq!(correction_text(before.clone(), Some(5), &entries), before);
    }
}
