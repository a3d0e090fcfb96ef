//! The month-end exports add up: CSV rows against the totals, the PDF read back with
//! `pdftotext`, and the CLI (formats, output file, a bad month refused).

use crate::money::harness::*;
use rxbridge_app::finance::{ExportKind, Month, Report};
use rxbridge_app::payments::PaymentStatus;
use rxbridge_app::ports::Mode;
use serde_json::json;

fn total<'a>(r: &'a Report, label: &str) -> &'a str {
    &r.totals
        .iter()
        .find(|(k, _)| k == label)
        .unwrap_or_else(|| panic!("{label} in {:?}", r.totals))
        .1
}

fn pence(s: &str) -> i64 {
    let s = s.trim_start_matches('£');
    let (neg, s) = s
        .strip_prefix('-')
        .map_or((false, s), |r| (true, r.trim_start_matches('£')));
    let (a, b) = s.split_once('.').unwrap();
    let v = a.parse::<i64>().unwrap() * 100 + b.parse::<i64>().unwrap();
    if neg { -v } else { v }
}

async fn pay(m: &Money, id: &str) {
    let p = m.payment(id).await;
    let checkout = m.open_link(&m.link_in_email(&p.id)).await;
    let r = m.post_empty(format!("{checkout}/pay")).await;
    assert_eq!(r.status(), reqwest::StatusCode::SEE_OTHER);
}

fn column(csv_bytes: &[u8], name: &str) -> Vec<String> {
    let mut r = csv::Reader::from_reader(csv_bytes);
    let i = r.headers().unwrap().iter().position(|h| h == name).unwrap();
    r.records().map(|rec| rec.unwrap()[i].to_string()).collect()
}

#[tokio::test]
async fn the_three_exports_add_up() {
    const SECRET: &str = "whsec_exports";
    let m = start(|c| {
        c.pharmacy.private_dispensing_code = Some("FX123".into());
        c.pharmacy.name = "Test Pharmacy".into();
        c.stripe.webhook_secrets = vec![SECRET.into()];
    })
    .await;
    let t = Mode::Test;
    // NHS, charge paid on two items; NHS exempt; NHS unpaid (not supplied).
    let nhs_paid = m
        .submit(
            t,
            &nhs("X-1", "0001", &["CONCERTA-XL-36", "CONCERTA-XL-18"]),
        )
        .await;
    m.approve(t, &nhs_paid).await;
    pay(&m, &nhs_paid).await;
    let nhs_exempt = m.submit(t, &nhs("X-2", "0002", &["CONCERTA-XL-27"])).await;
    m.approve(t, &nhs_exempt).await;
    let nhs_unpaid = m.submit(t, &nhs("X-3", "0001", &["CONCERTA-XL-54"])).await;
    m.approve(t, &nhs_unpaid).await;
    // Private: paid; paid then cancelled (refunded); a Schedule 2 on FP10PCD, paid.
    let pom = m.submit(t, &private_pom("X-4")).await;
    m.approve(t, &pom).await;
    pay(&m, &pom).await;
    let refunded = m.submit(t, &private_pom("X-5")).await;
    m.approve(t, &refunded).await;
    pay(&m, &refunded).await;
    m.cancel(t, &refunded).await;
    let cd = m.submit(t, &private_cd("X-6")).await;
    m.original(t, &cd, "PCD1234567").await;
    m.approve(t, &cd).await;
    pay(&m, &cd).await;
    // A payment the provider reported with the wrong amount: a difference for finance.
    let odd = m.submit(t, &private_pom("X-7")).await;
    m.approve(t, &odd).await;
    let po = m.payment(&odd).await;
    use rxbridge_app::Clock;
    let body = json!({ "id": "evt_odd", "type": "checkout.session.completed", "data": { "object": {
        "id": "cs_x", "client_reference_id": po.id, "amount_total": po.quote.total_pence + 100,
        "currency": "gbp", "payment_status": "paid", "payment_intent": "pi_odd" } } })
    .to_string();
    let r = m.stripe_event(SECRET, body).await;
    assert_eq!(r.status(), reqwest::StatusCode::OK);

    let d = rxbridge_domain::dates::london_date(m.clock.now());
    let month = Month::parse(&format!("{:04}-{:02}", d.year(), d.month())).unwrap();
    let fin = &m.running.finance;
    let none = |_: u64, _: u64| {};

    // NHS claim: the supplied NHS items only.
    let claim = fin
        .report(ExportKind::NhsClaim, t, month, "test", &none)
        .await
        .unwrap();
    assert_eq!(claim.rows.len(), 3, "{:#?}", claim.rows);
    assert_eq!(total(&claim, "Prescription forms"), "2");
    assert_eq!(total(&claim, "Items"), "3");
    assert_eq!(total(&claim, "Items on which charges were collected"), "2");
    assert_eq!(total(&claim, "Items exempt from charges"), "1");
    assert_eq!(total(&claim, "Charges collected"), "£19.80");
    let csv = rxbridge_export::to_csv(&claim);
    let charges: i64 = column(&csv, "charge_collected")
        .iter()
        .map(|c| pence(c))
        .sum();
    assert_eq!(charges, 1980, "the CSV adds up to the total");
    assert_eq!(column(&csv, "exemption_code"), ["0001", "0001", "0002"]);
    assert_eq!(
        column(&csv, "evidence"),
        ["no-evidence-seen", "no-evidence-seen", "evidence-seen"]
    );
    assert!(!column(&csv, "prescription_id").contains(&nhs_unpaid));

    // FP34PCD: the private Schedule 2 prescription, with the codes NHSBSA needs.
    let pcd = fin
        .report(ExportKind::Fp34pcd, t, month, "test", &none)
        .await
        .unwrap();
    assert_eq!(pcd.rows.len(), 1, "{:#?}", pcd.rows);
    assert_eq!(pcd.rows[0][0], cd);
    assert_eq!(pcd.rows[0][2], "PCD1234567");
    assert_eq!(pcd.rows[0][6], "123456");
    assert!(
        pcd.header
            .contains(&("Private dispensing code".into(), "FX123".into()))
    );
    assert_eq!(total(&pcd, "Prescription forms"), "1");

    // Payments: every due payment, with the difference listed.
    let pr = fin
        .report(ExportKind::Payments, t, month, "test", &none)
        .await
        .unwrap();
    let csv = rxbridge_export::to_csv(&pr);
    assert_eq!(
        pr.rows.len(),
        6,
        "nhs paid, nhs unpaid, pom, refunded, cd, odd"
    );
    let sum = |col: &str| column(&csv, col).iter().map(|c| pence(c)).sum::<i64>();
    assert_eq!(pence(total(&pr, "Collected")), sum("paid"));
    assert_eq!(pence(total(&pr, "Refunded")), sum("refunded"));
    assert_eq!(pence(total(&pr, "Net")), sum("net"));
    assert_eq!(pence(total(&pr, "Quoted")), sum("quoted"));
    let mut expected_paid = 0;
    for id in [&nhs_paid, &pom, &refunded, &cd, &odd] {
        expected_paid += m.payment(id).await.paid_pence;
    }
    assert_eq!(sum("paid"), expected_paid);
    assert_eq!(sum("refunded"), m.payment(&refunded).await.paid_pence);
    assert_eq!(m.payment(&refunded).await.status, PaymentStatus::Refunded);
    assert_eq!(
        total(&pr, "Orders released for supply"),
        "3",
        "nhs paid, pom, cd"
    );
    assert_eq!(pr.differences.len(), 2, "{:#?}", pr.differences);
    assert!(
        pr.differences.iter().all(|d| d.contains(&po.id)),
        "{:#?}",
        pr.differences
    );
    // Fees kept: two private orders paid and not refunded (pom, cd).
    assert_eq!(pence(total(&pr, "Dispensing fees (kept)")), 2 * 500);

    // The CLI: a PDF a person can print, read back.
    let dir = m.running.data_dir.clone();
    let out = dir.join("claim.pdf");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rxbridge"))
            .args(args)
            .arg("--data-dir")
            .arg(&dir)
            .env_remove("RXBRIDGE_PATIENT_KEY")
            .output()
            .unwrap()
    };
    let month_s = month.to_string();
    let pdf = |report: &str, out: &str| {
        run(&[
            "export", report, "--month", &month_s, "--mode", "test", "--format", "pdf", "--out",
            out,
        ])
    };
    let o = pdf("nhs-claim", out.to_str().unwrap());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::process::Command::new("pdftotext")
        .args(["-layout", out.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (poppler-utils) is installed by scripts/test");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("NHS prescription claim"), "{text}");
    assert!(text.contains("Charges collected: £19.80"), "{text}");
    assert!(text.contains("Items exempt from charges: 1"), "{text}");
    assert!(text.contains(&nhs_paid), "{text}");
    let o = pdf("payments", dir.join("p.pdf").to_str().unwrap());
    assert!(o.status.success());
    let text = std::process::Command::new("pdftotext")
        .args([dir.join("p.pdf").to_str().unwrap(), "-"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("Differences and warnings (2)"), "{text}");
    // CSV to standard output.
    let o = run(&["export", "fp34pcd", "--month", &month_s, "--mode", "test"]);
    assert!(o.status.success());
    assert_eq!(column(&o.stdout, "form_serial"), ["PCD1234567"]);
    // A bad month is refused with a message, and writes nothing.
    let o = run(&[
        "export",
        "nhs-claim",
        "--month",
        "2026-13",
        "--out",
        dir.join("bad.csv").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("month must be YYYY-MM"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!dir.join("bad.csv").exists());
    // Each generation is on the audit trail.
    let ev = m.event_kinds(&format!("export:nhs-claim:{month}")).await;
    assert_eq!(ev, ["export.generated", "export.generated"]);
}
