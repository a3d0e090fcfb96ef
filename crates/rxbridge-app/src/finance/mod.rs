//! Month-end exports: the NHS claim (FP34C figures), the FP34PCD batch of private
//! Schedule 2/3 prescriptions, and the payments reconciliation — each a typed `Report`, which
//! the export adapter renders as CSV or as a PDF a person can print.
//!
//! A payment belongs to the month of its charge date (the pharmacist's approval, London
//! calendar). The exports show the current state: a prescription cancelled after the month
//! closed drops out of a re-run claim. Generating an export is an audited event.

mod rows;

use crate::PatientVault;
use crate::clock::Clock;
use crate::events::NewEvent;
use crate::ports::{Mode, Store, StoreError};
use jiff::civil::Date;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportKind {
    NhsClaim,
    Fp34pcd,
    Payments,
}

impl ExportKind {
    pub const ALL: [ExportKind; 3] = [
        ExportKind::NhsClaim,
        ExportKind::Fp34pcd,
        ExportKind::Payments,
    ];
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ExportKind::NhsClaim => "nhs-claim",
            ExportKind::Fp34pcd => "fp34pcd",
            ExportKind::Payments => "payments",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            ExportKind::NhsClaim => "NHS prescription claim (FP34C figures)",
            ExportKind::Fp34pcd => "FP34PCD: private Schedule 2 and 3 prescriptions",
            ExportKind::Payments => "Payments reconciliation",
        }
    }
}

/// A calendar month, `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub first: Date,
}

impl Month {
    /// Strict `YYYY-MM` (2000-01 to 2099-12).
    pub fn parse(s: &str) -> Result<Month, String> {
        let bad = || format!("month must be YYYY-MM (e.g. 2026-11), got {s:?}");
        let (y, m) = s.split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 || !y.chars().chain(m.chars()).all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let (y, m): (i16, i8) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if !(2000..=2099).contains(&y) || !(1..=12).contains(&m) {
            return Err(bad());
        }
        Ok(Month {
            first: Date::new(y, m, 1).map_err(|_| bad())?,
        })
    }
    pub fn last(self) -> Date {
        self.first.last_of_month()
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.first.year(), self.first.month())
    }
}

/// One export, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: ExportKind,
    pub month: String,
    pub title: String,
    /// Lines under the title (`label`, `value`).
    pub header: Vec<(String, String)>,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub totals: Vec<(String, String)>,
    /// Every difference found, one line each (payments reconciliation; warnings elsewhere).
    pub differences: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct FinanceConfig {
    pub pharmacy_name: String,
    pub private_dispensing_code: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FinanceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unexpected(#[from] anyhow::Error),
}

pub struct Finance {
    store: Arc<dyn Store>,
    vault: PatientVault,
    clock: Arc<dyn Clock>,
    cfg: FinanceConfig,
}

impl Finance {
    pub fn new(
        store: Arc<dyn Store>,
        vault: PatientVault,
        clock: Arc<dyn Clock>,
        cfg: FinanceConfig,
    ) -> Self {
        Self {
            store,
            vault,
            clock,
            cfg,
        }
    }

    /// Build one export for `month` in `mode`. `progress(done, total)` is called as rows are
    /// built (a terminal progress bar for long runs).
    pub async fn report(
        &self,
        kind: ExportKind,
        mode: Mode,
        month: Month,
        actor: &str,
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<Report, FinanceError> {
        let rows = self
            .store
            .payments_charged_between(mode, month.first, month.last())
            .await?;
        // A claim is made only from rows the audit chain speaks for.
        let guard = crate::state::StateGuard::new(self.store.as_ref());
        for (p, rec) in &rows {
            guard
                .payment(p, "claims export")
                .await
                .map_err(StoreError::from)?;
            guard
                .prescription(rec, "claims export")
                .await
                .map_err(StoreError::from)?;
        }
        let mut report = Report {
            kind,
            month: month.to_string(),
            title: kind.title().to_string(),
            header: vec![
                ("Pharmacy".into(), self.cfg.pharmacy_name.clone()),
                ("Month".into(), month.to_string()),
                ("Data".into(), mode.as_str().to_string()),
                (
                    "Generated".into(),
                    self.clock
                        .now()
                        .strftime("%Y-%m-%d %H:%M:%S UTC")
                        .to_string(),
                ),
            ],
            columns: Vec::new(),
            rows: Vec::new(),
            totals: Vec::new(),
            differences: Vec::new(),
        };
        match kind {
            ExportKind::NhsClaim => rows::nhs_claim(&mut report, &rows, progress),
            ExportKind::Fp34pcd => self.fp34pcd(&mut report, &rows, progress)?,
            ExportKind::Payments => rows::payments(&mut report, &rows, self.clock.now(), progress),
        }
        self.store
            .record_event(NewEvent {
                at: self.clock.now(),
                kind: "export.generated".into(),
                actor: actor.into(),
                subject: format!("export:{}:{}", kind.as_str(), month),
                detail: serde_json::json!({ "export": kind.as_str(), "month": month.to_string(), "mode": mode.as_str(), "rows": report.rows.len() }),
            })
            .await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_strict() {
        assert_eq!(Month::parse("2026-11").unwrap().to_string(), "2026-11");
        assert_eq!(
            Month::parse("2024-02").unwrap().last().to_string(),
            "2024-02-29"
        );
        for bad in [
            "2026-13",
            "2026-00",
            "26-11",
            "2026-1",
            "2026/11",
            "",
            "1999-12",
            "2026-11-01",
            "２０２６-11",
        ] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
    }
}
