//! Month-end exports (issue #5): the NHS claim (FP34C figures), the FP34PCD batch of private
//! Schedule 2/3 prescriptions, and the payments reconciliation — each as CSV and as a PDF a
//! person can print.
//!
//! A payment belongs to the month of its charge date (the pharmacist's approval, London
//! calendar). The exports show the current state: a prescription cancelled after the month
//! closed drops out of a re-run claim. Generating an export is an audited event.

use crate::clock::Clock;
use crate::events::NewEvent;
use crate::intake::Intake;
use crate::payments::{PaymentRecord, PaymentStatus};
use crate::ports::{Mode, PrescriptionRecord, Store, StoreError};
use jiff::civil::Date;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::money::Money;
use rxbridge_domain::prescription::ExemptionCode;
use rxbridge_domain::pricing::QuoteKind;
use std::collections::BTreeSet;
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
    intake: Arc<Intake>,
    clock: Arc<dyn Clock>,
    cfg: FinanceConfig,
}

fn pounds(p: i64) -> String {
    let sign = if p < 0 { "-" } else { "" };
    format!(
        "{sign}{}.{:02}",
        p.unsigned_abs() / 100,
        p.unsigned_abs() % 100
    )
}

fn supplied(s: Status) -> bool {
    matches!(
        s,
        Status::ReadyForFulfilment | Status::WithWarehouse | Status::Dispatched | Status::Delivered
    )
}

impl Finance {
    pub fn new(
        store: Arc<dyn Store>,
        intake: Arc<Intake>,
        clock: Arc<dyn Clock>,
        cfg: FinanceConfig,
    ) -> Self {
        Self {
            store,
            intake,
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
            ExportKind::NhsClaim => nhs_claim(&mut report, &rows, progress),
            ExportKind::Fp34pcd => self.fp34pcd(&mut report, &rows, progress)?,
            ExportKind::Payments => payments(&mut report, &rows, self.clock.now(), progress),
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

    fn fp34pcd(
        &self,
        r: &mut Report,
        rows: &[(PaymentRecord, PrescriptionRecord)],
        progress: &(dyn Fn(u64, u64) + Send + Sync),
    ) -> Result<(), FinanceError> {
        r.header.insert(
            1,
            (
                "Private dispensing code".into(),
                self.cfg
                    .private_dispensing_code
                    .clone()
                    .unwrap_or_else(|| "NOT CONFIGURED".into()),
            ),
        );
        if self.cfg.private_dispensing_code.is_none() {
            r.differences.push("pharmacy.private_dispensing_code is not configured: NHSBSA needs it on the FP34PCD".into());
        }
        r.columns = [
            "prescription_id",
            "clinic_reference",
            "form_serial",
            "issued_on",
            "dispensed_on",
            "prescriber",
            "prescriber_private_code",
            "cd_items",
            "cd_item_count",
        ]
        .map(String::from)
        .to_vec();
        let total = rows.len() as u64;
        let mut items = 0usize;
        for (i, (p, rec)) in rows.iter().enumerate() {
            progress(i as u64 + 1, total);
            let cd_lines: Vec<_> = p
                .quote
                .lines
                .iter()
                .filter(|l| l.schedule == "CD2" || l.schedule == "CD3")
                .collect();
            if p.quote.kind != QuoteKind::Private
                || p.status != PaymentStatus::Paid
                || !supplied(rec.status)
                || cd_lines.is_empty()
            {
                continue;
            }
            let rx = self.intake.open(rec)?;
            items += cd_lines.len();
            r.rows.push(vec![
                rec.id.clone(),
                rec.clinic_reference.clone(),
                rx.authority
                    .serial_number
                    .clone()
                    .unwrap_or_else(|| "(none)".into()),
                rx.issued_on.to_string(),
                p.charge_date().to_string(),
                format!("{} {}", rx.prescriber.given_name, rx.prescriber.family_name),
                rx.prescriber
                    .private_prescriber_code
                    .as_ref()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_else(|| "(missing)".into()),
                cd_lines
                    .iter()
                    .map(|l| format!("{} x{}", l.product_name, l.quantity))
                    .collect::<Vec<_>>()
                    .join("; "),
                cd_lines.len().to_string(),
            ]);
            if rx.prescriber.private_prescriber_code.is_none() {
                r.differences
                    .push(format!("{}: no private prescriber code", rec.id));
            }
        }
        r.totals = vec![
            ("Prescription forms".into(), r.rows.len().to_string()),
            ("Schedule 2/3 items".into(), items.to_string()),
        ];
        Ok(())
    }
}

fn nhs_claim(
    r: &mut Report,
    rows: &[(PaymentRecord, PrescriptionRecord)],
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) {
    r.columns = [
        "prescription_id",
        "clinic_reference",
        "dispensed_on",
        "product_code",
        "product",
        "quantity",
        "exemption_code",
        "exemption",
        "evidence",
        "charge_collected",
    ]
    .map(String::from)
    .to_vec();
    let (mut forms, mut items, mut charged, mut exempt, mut collected) =
        (BTreeSet::new(), 0u64, 0u64, 0u64, 0i64);
    let total = rows.len() as u64;
    for (i, (p, rec)) in rows.iter().enumerate() {
        progress(i as u64 + 1, total);
        let nhs = matches!(p.quote.kind, QuoteKind::NhsCharge | QuoteKind::NhsExempt);
        let settled = matches!(p.status, PaymentStatus::Paid | PaymentStatus::NotDue);
        if !nhs || !settled || !supplied(rec.status) {
            continue;
        }
        let code = p.quote.exemption.clone().unwrap_or_default();
        let meaning = ExemptionCode::parse(&code)
            .map(|c| c.meaning())
            .unwrap_or("");
        forms.insert(rec.id.clone());
        for l in &p.quote.lines {
            items += 1;
            if p.quote.kind == QuoteKind::NhsCharge {
                charged += 1;
            } else {
                exempt += 1;
            }
            collected += l.amount_pence;
            r.rows.push(vec![
                rec.id.clone(),
                rec.clinic_reference.clone(),
                p.charge_date().to_string(),
                l.product_code.clone(),
                l.product_name.clone(),
                l.quantity.to_string(),
                code.clone(),
                meaning.to_string(),
                if p.quote.evidence_seen == Some(true) {
                    "evidence-seen".into()
                } else {
                    "no-evidence-seen".into()
                },
                pounds(l.amount_pence),
            ]);
        }
    }
    r.totals = vec![
        ("Prescription forms".into(), forms.len().to_string()),
        ("Items".into(), items.to_string()),
        (
            "Items on which charges were collected".into(),
            charged.to_string(),
        ),
        ("Items exempt from charges".into(), exempt.to_string()),
        (
            "Charges collected".into(),
            Money::pence(collected).to_string(),
        ),
    ];
}

fn payments(
    r: &mut Report,
    rows: &[(PaymentRecord, PrescriptionRecord)],
    now: jiff::Timestamp,
    progress: &(dyn Fn(u64, u64) + Send + Sync),
) {
    r.columns = [
        "payment_id",
        "prescription_id",
        "charged_on",
        "kind",
        "provider",
        "payment_status",
        "prescription_status",
        "quoted",
        "paid",
        "refunded",
        "net",
        "dispensing_fee",
        "delivery_fee",
        "shipped",
        "difference",
    ]
    .map(String::from)
    .to_vec();
    let (mut quoted, mut paid, mut refunded, mut disp, mut deliv, mut shipped, mut n) =
        (0i64, 0i64, 0i64, 0i64, 0i64, 0u64, 0u64);
    let total = rows.len() as u64;
    for (i, (p, rec)) in rows.iter().enumerate() {
        progress(i as u64 + 1, total);
        if !p.quote.is_due() {
            continue;
        }
        n += 1;
        let mut diffs: Vec<String> = Vec::new();
        let is_supplied = supplied(rec.status);
        if p.paid_pence != 0 && p.paid_pence != p.quote.total_pence {
            diffs.push(format!(
                "paid {} but quoted {}",
                Money::pence(p.paid_pence),
                p.quote.total()
            ));
        }
        if is_supplied && p.status != PaymentStatus::Paid {
            diffs.push(format!(
                "released for supply but the payment is {}",
                p.status
            ));
        }
        if rec.status.ended_unsupplied()
            && matches!(p.status, PaymentStatus::Paid | PaymentStatus::RefundPending)
        {
            diffs.push(format!(
                "refund owed: {} (prescription {})",
                Money::pence(p.paid_pence - p.refunded_pence),
                rec.status
            ));
        }
        if p.status == PaymentStatus::Refunded && p.refunded_pence != p.paid_pence {
            diffs.push(format!(
                "refunded {} of {}",
                Money::pence(p.refunded_pence),
                Money::pence(p.paid_pence)
            ));
        }
        if p.status == PaymentStatus::AwaitingPayment && now >= p.due_by {
            diffs.push("unpaid past its deadline (the sweep will cancel it)".into());
        }
        if let Some(a) = &p.attention {
            diffs.push(a.clone());
        }
        let kept = p.status == PaymentStatus::Paid;
        let (d, v) = if kept && p.quote.kind == QuoteKind::Private {
            (p.quote.dispensing_fee_pence, p.quote.delivery_fee_pence)
        } else {
            (0, 0)
        };
        quoted += p.quote.total_pence;
        paid += p.paid_pence;
        refunded += p.refunded_pence;
        disp += d;
        deliv += v;
        if is_supplied {
            shipped += 1;
        }
        for dtext in &diffs {
            r.differences
                .push(format!("{} ({}): {dtext}", p.id, rec.id));
        }
        r.rows.push(vec![
            p.id.clone(),
            rec.id.clone(),
            p.charge_date().to_string(),
            p.quote.kind.as_str().into(),
            p.provider.clone(),
            p.status.as_str().into(),
            rec.status.as_str().into(),
            pounds(p.quote.total_pence),
            pounds(p.paid_pence),
            pounds(p.refunded_pence),
            pounds(p.paid_pence - p.refunded_pence),
            pounds(d),
            pounds(v),
            if is_supplied { "yes" } else { "no" }.into(),
            diffs.join("; "),
        ]);
    }
    r.totals = vec![
        ("Payments".into(), n.to_string()),
        ("Quoted".into(), Money::pence(quoted).to_string()),
        ("Collected".into(), Money::pence(paid).to_string()),
        ("Refunded".into(), Money::pence(refunded).to_string()),
        ("Net".into(), Money::pence(paid - refunded).to_string()),
        (
            "Dispensing fees (kept)".into(),
            Money::pence(disp).to_string(),
        ),
        (
            "Delivery fees (kept)".into(),
            Money::pence(deliv).to_string(),
        ),
        ("Orders released for supply".into(), shipped.to_string()),
        ("Differences".into(), r.differences.len().to_string()),
    ];
}

/// The rows as CSV (RFC 4180, header row first). Totals and differences are in the PDF and
/// recomputable from the rows.
pub fn to_csv(r: &Report) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record(&r.columns);
    for row in &r.rows {
        // A spreadsheet would run a cell starting with = + - @ as a formula: neutralise it.
        let _ = w.write_record(row.iter().map(|c| {
            if c.starts_with(['=', '+', '@']) || (c.starts_with('-') && c.parse::<f64>().is_err()) {
                format!("'{c}")
            } else {
                c.clone()
            }
        }));
    }
    w.into_inner().unwrap_or_default()
}

pub use pdf::to_pdf;

mod pdf {
    //! A plain, printable A4-landscape PDF with the base-14 Helvetica fonts (nothing embedded).
    use super::Report;
    use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};

    const W: f32 = 842.0;
    const H: f32 = 595.0;
    const MARGIN: f32 = 36.0;
    const LINE: f32 = 11.0;
    const SIZE: f32 = 7.5;

    enum Line {
        Title(String),
        Text(String),
        Bold(String),
        TableHeader,
        Row(Vec<String>),
        Gap,
    }

    /// WinAnsi bytes for a string: ASCII as is, £ and the ellipsis mapped, the rest `?`.
    fn ansi(s: &str) -> Vec<u8> {
        s.chars()
            .map(|c| match c {
                ' '..='~' => c as u8,
                '£' => 0xA3,
                '…' => 0x85,
                '×' => 0xD7,
                _ => b'?',
            })
            .collect()
    }

    /// Approximate Helvetica advance widths (in em) by character class.
    fn em(c: char) -> f32 {
        match c {
            'A'..='Z' | 'm' | 'w' | '@' | '%' => 0.72,
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.28,
            ' ' | 'f' | 't' | 'r' | '-' | '(' | ')' | '/' => 0.34,
            _ => 0.56,
        }
    }

    fn text_width(s: &str, size: f32) -> f32 {
        s.chars().map(em).sum::<f32>() * size
    }

    fn fit(s: &str, width: f32, size: f32) -> String {
        if text_width(s, size) <= width {
            return s.to_string();
        }
        let mut t = String::new();
        let mut w = text_width("…", size);
        for c in s.chars() {
            w += em(c) * size;
            if w > width {
                break;
            }
            t.push(c);
        }
        t.push('…');
        t
    }

    pub fn to_pdf(r: &Report) -> Vec<u8> {
        // Column widths from their longest cell; the font shrinks (to 5 pt) before anything is
        // cut, and then only the widest columns (names, notes) are cut.
        let n = r.columns.len().max(1);
        let longest: Vec<String> = (0..n)
            .map(|i| {
                r.rows
                    .iter()
                    .filter_map(|row| row.get(i))
                    .chain(r.columns.get(i))
                    .max_by(|a, b| text_width(a, 1.0).total_cmp(&text_width(b, 1.0)))
                    .cloned()
                    .unwrap_or_default()
            })
            .collect();
        let avail = W - 2.0 * MARGIN;
        let widths_at = |size: f32| -> Vec<f32> {
            longest
                .iter()
                .map(|s| text_width(s, size).min(30.0 * size) + 6.0)
                .collect()
        };
        let mut size = SIZE;
        while widths_at(size).iter().sum::<f32>() > avail && size > 5.0 {
            size -= 0.25;
        }
        let mut want = widths_at(size);
        let mut guard = 0;
        while want.iter().sum::<f32>() > avail + 0.5 && guard < 1000 {
            guard += 1;
            let over = want.iter().sum::<f32>() - avail;
            let (widest, _) = want
                .iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .expect("at least one column");
            want[widest] -= over.min(want[widest] * 0.1).max(0.5);
        }

        let mut lines = vec![Line::Title(r.title.clone())];
        for (k, v) in &r.header {
            lines.push(Line::Text(format!("{k}: {v}")));
        }
        lines.push(Line::Gap);
        lines.push(Line::TableHeader);
        if r.rows.is_empty() {
            lines.push(Line::Text("(no entries this month)".into()));
        }
        for row in &r.rows {
            lines.push(Line::Row(row.clone()));
        }
        lines.push(Line::Gap);
        lines.push(Line::Bold("Totals".into()));
        for (k, v) in &r.totals {
            lines.push(Line::Text(format!("{k}: {v}")));
        }
        if !r.differences.is_empty() {
            lines.push(Line::Gap);
            lines.push(Line::Bold(format!(
                "Differences and warnings ({})",
                r.differences.len()
            )));
            for d in &r.differences {
                lines.push(Line::Text(d.clone()));
            }
        }

        // Paginate: repeat the table header on each page the table continues on.
        let per_page = ((H - 2.0 * MARGIN - 2.0 * LINE) / LINE) as usize;
        let mut pages: Vec<Vec<&Line>> = vec![Vec::new()];
        let header_line = Line::TableHeader;
        let mut in_table = false;
        for l in &lines {
            match l {
                Line::TableHeader => in_table = true,
                Line::Gap if in_table => in_table = false,
                _ => {}
            }
            if pages.last().is_some_and(|p| p.len() >= per_page) {
                pages.push(Vec::new());
                if in_table && !matches!(l, Line::TableHeader) {
                    pages.last_mut().expect("just pushed").push(&header_line);
                }
            }
            pages.last_mut().expect("never empty").push(l);
        }

        let mut pdf = Pdf::new();
        let catalog = Ref::new(1);
        let tree = Ref::new(2);
        let regular = Ref::new(3);
        let bold = Ref::new(4);
        let info = Ref::new(5);
        let mut next = 6;
        let page_ids: Vec<(Ref, Ref)> = pages
            .iter()
            .map(|_| {
                let ids = (Ref::new(next), Ref::new(next + 1));
                next += 2;
                ids
            })
            .collect();
        pdf.catalog(catalog).pages(tree);
        pdf.pages(tree)
            .kids(page_ids.iter().map(|(p, _)| *p))
            .count(page_ids.len() as i32);
        pdf.type1_font(regular)
            .base_font(Name(b"Helvetica"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.type1_font(bold)
            .base_font(Name(b"Helvetica-Bold"))
            .encoding_predefined(Name(b"WinAnsiEncoding"));
        pdf.document_info(info)
            .title(pdf_writer::TextStr(&format!("{} {}", r.title, r.month)))
            .producer(pdf_writer::TextStr("rxbridge"));
        let total_pages = pages.len();
        for (i, (page_lines, (page_id, content_id))) in pages.iter().zip(&page_ids).enumerate() {
            let mut page = pdf.page(*page_id);
            page.media_box(Rect::new(0.0, 0.0, W, H));
            page.parent(tree);
            page.contents(*content_id);
            {
                let mut res = page.resources();
                let mut fonts = res.fonts();
                fonts.pair(Name(b"F1"), regular);
                fonts.pair(Name(b"F2"), bold);
            }
            page.finish();

            let mut c = Content::new();
            let mut y = H - MARGIN;
            let text = |c: &mut Content, font: &[u8], size: f32, x: f32, y: f32, s: &str| {
                c.begin_text();
                c.set_font(Name(font), size);
                c.next_line(x, y);
                c.show(Str(&ansi(s)));
                c.end_text();
            };
            for l in page_lines {
                match l {
                    Line::Title(t) => {
                        text(&mut c, b"F2", 13.0, MARGIN, y - 4.0, t);
                        y -= LINE * 1.6;
                    }
                    Line::Text(t) => {
                        text(
                            &mut c,
                            b"F1",
                            8.5,
                            MARGIN,
                            y,
                            &fit(t, W - 2.0 * MARGIN, 8.5),
                        );
                        y -= LINE;
                    }
                    Line::Bold(t) => {
                        text(&mut c, b"F2", 9.5, MARGIN, y, t);
                        y -= LINE;
                    }
                    Line::Gap => y -= LINE * 0.6,
                    Line::TableHeader | Line::Row(_) => {
                        let (font, cells): (&[u8], Vec<String>) = match l {
                            Line::Row(cells) => (b"F1", cells.clone()),
                            _ => (b"F2", r.columns.clone()),
                        };
                        let mut x = MARGIN;
                        for (cell, w) in cells.iter().zip(&want) {
                            text(&mut c, font, size, x, y, &fit(cell, *w - 4.0, size));
                            x += w;
                        }
                        if matches!(l, Line::TableHeader) {
                            c.set_line_width(0.5);
                            c.move_to(MARGIN, y - 2.5);
                            c.line_to(W - MARGIN, y - 2.5);
                            c.stroke();
                        }
                        y -= LINE;
                    }
                }
            }
            if i > 0 {
                // Every page says what it is (a CD register names the drug at the head of each).
                text(
                    &mut c,
                    b"F2",
                    9.0,
                    MARGIN,
                    H - MARGIN / 2.0 - 6.0,
                    &format!("{} {}", r.title, r.month),
                );
            }
            text(
                &mut c,
                b"F1",
                7.0,
                MARGIN,
                MARGIN / 2.0,
                &format!(
                    "{} {} - page {} of {}",
                    r.title,
                    r.month,
                    i + 1,
                    total_pages
                ),
            );
            pdf.stream(*content_id, &c.finish());
        }
        pdf.finish()
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

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        let r = Report {
            kind: ExportKind::Payments,
            month: "2026-11".into(),
            title: "t".into(),
            header: vec![],
            columns: vec!["a".into(), "b".into()],
            rows: vec![
                vec!["=HYPERLINK(\"x\")".into(), "-9.90".into()],
                vec!["a,b".into(), "-x".into()],
            ],
            totals: vec![],
            differences: vec![],
        };
        let s = String::from_utf8(to_csv(&r)).unwrap();
        assert_eq!(s, "a,b\n\"'=HYPERLINK(\"\"x\"\")\",-9.90\n\"a,b\",'-x\n");
    }

    #[test]
    fn pdf_is_a_pdf_with_every_page_numbered() {
        let r = Report {
            kind: ExportKind::NhsClaim,
            month: "2026-11".into(),
            title: "NHS claim".into(),
            header: vec![("Month".into(), "2026-11".into())],
            columns: vec!["a".into(), "b".into()],
            rows: (0..150)
                .map(|i| vec![format!("row {i}"), "£9.90".into()])
                .collect(),
            totals: vec![("Charges".into(), "£1.00".into())],
            differences: vec![],
        };
        let bytes = to_pdf(&r);
        assert!(bytes.starts_with(b"%PDF-"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("page 1 of 4"), "150 rows at ~43 a page");
        assert!(text.contains("page 4 of 4"));
    }
}
