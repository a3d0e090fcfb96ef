//! The rows and totals of each month-end export, built from the month's payments and their
//! prescriptions.

use super::{Finance, FinanceError, Report};
use crate::payments::{PaymentRecord, PaymentStatus};
use crate::ports::PrescriptionRecord;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::money::Money;
use rxbridge_domain::prescription::ExemptionCode;
use rxbridge_domain::pricing::QuoteKind;
use std::collections::BTreeSet;

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
    pub(super) fn fp34pcd(
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
            let rx = self.vault.open_prescription(rec)?;
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

pub(super) fn nhs_claim(
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

pub(super) fn payments(
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
