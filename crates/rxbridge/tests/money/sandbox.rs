//! The embedded default: a private prescription is approved, the patient pays on the sandbox
//! checkout page, and it is ready for fulfilment; a cancellation then refunds it, once.

use crate::common::get_text;
use crate::money::harness::*;
use reqwest::StatusCode;
use rxbridge_app::payments::PaymentStatus;
use rxbridge_app::ports::Mode;

#[tokio::test]
async fn approve_pay_in_the_sandbox_then_cancel_refunds_once() {
    let m = start(|_| {}).await;
    let id = m.submit(Mode::Test, &private_pom("PAY-1")).await;
    assert_eq!(
        m.approve(Mode::Test, &id).await.status.as_str(),
        "awaiting_payment"
    );
    let p = m.payment(&id).await;
    assert_eq!(p.status, PaymentStatus::AwaitingPayment);
    // 28 × the formulary price + £5.00 dispensing + £4.95 delivery.
    let unit = rxbridge_domain::formulary::Formulary::builtin()
        .get("STRATTERA-40")
        .unwrap()
        .unit_price_pence;
    assert_eq!(p.quote.total_pence, 28 * unit + 995);
    assert!(p.link_sent_at.is_some());

    // The email: amount and link, no medicine and no clinic.
    let emails = m.emails();
    assert_eq!(emails.len(), 1, "{emails:?}");
    let (_, text) = &emails[0];
    assert!(text.contains("To: sam.taylor@example.com"), "{text}");
    for secret in [
        "STRATTERA",
        "Strattera",
        "atomoxetine",
        "Money Clinic",
        "ADHD",
    ] {
        assert!(!text.contains(secret), "the email mentions {secret}");
    }
    let link = m.link_in_email(&p.id);
    // A forged link is refused.
    let forged = format!("{}x", &link[..link.len() - 1]);
    let r = m.client.get(&forged).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The link opens a sandbox checkout session; opening it again reuses the session.
    let checkout = m.open_link(&link).await;
    assert!(
        checkout.starts_with(&m.url("/sandbox/checkout/cs_sandbox_")),
        "{checkout}"
    );
    assert_eq!(m.open_link(&link).await, checkout);
    let page = get_text(&m.client, &checkout).await;
    assert!(page.contains(&p.quote.total().to_string()), "{page}");

    // Decline first: nothing changes but the session, and the link offers a new one.
    let r = m.post_empty(format!("{checkout}/decline")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(m.payment(&id).await.status, PaymentStatus::AwaitingPayment);
    let checkout2 = m.open_link(&link).await;
    assert_ne!(checkout2, checkout, "a declined session is not reused");
    let r = m.client.get(&checkout).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "the old session is closed"
    );

    // Pay.
    let r = m.post_empty(format!("{checkout2}/pay")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let done = m.url(r.headers()["location"].to_str().unwrap());
    let page = get_text(&m.client, &done).await;
    assert!(page.contains("Payment received"), "{page}");
    let p = m.payment(&id).await;
    assert_eq!(
        (p.status, p.paid_pence),
        (PaymentStatus::Paid, p.quote.total_pence)
    );
    let v = m.clinic_view(Mode::Test, &id).await;
    assert_eq!(v["status"], "ready_for_fulfilment", "{v:#}");
    // Paying the same session twice is impossible: it is no longer open.
    let r = m.post_empty(format!("{checkout2}/pay")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The link now says it is paid.
    let r = m.client.get(&link).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Payment received"));

    // The clinic cancels: a full refund, recorded once however often it is asked.
    let v = m.cancel(Mode::Test, &id).await;
    assert_eq!(v["status"], "cancelled");
    let p = m.payment(&id).await;
    assert_eq!(p.status, PaymentStatus::Refunded);
    assert_eq!(p.refunded_pence, p.paid_pence);
    assert!(p.refund_ref.as_deref().unwrap().starts_with("re_sandbox_"));
    m.cancel(Mode::Test, &id).await;
    let report = m.running.payments.tick().await.unwrap();
    assert_eq!(report.refunded, 0);
    let kinds = m.event_kinds(&id).await;
    let count = |k: &str| kinds.iter().filter(|x| *x == k).count();
    assert_eq!(count("payment.refunded"), 1, "{kinds:?}");
    assert_eq!(count("payment.succeeded"), 1, "{kinds:?}");
    for k in [
        "prescription.approved",
        "payment.requested",
        "notification.sent",
        "payment.checkout_opened",
        "payment.failed",
        "prescription.ready_for_fulfilment",
        "prescription.cancelled",
        "payment.refund_owed",
    ] {
        assert!(kinds.contains(&k.to_string()), "{k} missing from {kinds:?}");
    }
    rxbridge_app::audit::verify_chain(m.running.store.as_ref())
        .await
        .unwrap();
}

#[tokio::test]
async fn nhs_charge_is_paid_through_the_same_link_and_exempt_goes_straight_on() {
    let m = start(|_| {}).await;
    let paid = m
        .submit(
            Mode::Test,
            &nhs("NHS-1", "0001", &["CONCERTA-XL-36", "CONCERTA-XL-18"]),
        )
        .await;
    assert_eq!(
        m.approve(Mode::Test, &paid).await.status.as_str(),
        "awaiting_payment"
    );
    let p = m.payment(&paid).await;
    assert_eq!(p.quote.total_pence, 2 * 990, "two items at the NHS charge");
    assert_eq!(p.quote.dispensing_fee_pence + p.quote.delivery_fee_pence, 0);
    let link = m.link_in_email(&p.id);
    let (_, text) = m.emails().into_iter().next().unwrap();
    assert!(
        text.contains("NHS prescription charge for 2 item(s)"),
        "{text}"
    );
    let checkout = m.open_link(&link).await;
    m.post_empty(format!("{checkout}/pay")).await;
    assert_eq!(
        m.clinic_view(Mode::Test, &paid).await["status"],
        "ready_for_fulfilment"
    );

    let exempt = m
        .submit(Mode::Test, &nhs("NHS-2", "0004", &["CONCERTA-XL-36"]))
        .await;
    assert_eq!(
        m.approve(Mode::Test, &exempt).await.status.as_str(),
        "ready_for_fulfilment"
    );
    let p = m.payment(&exempt).await;
    assert_eq!((p.status, p.quote.total_pence), (PaymentStatus::NotDue, 0));
    assert_eq!(p.quote.exemption.as_deref(), Some("0004"));
    assert_eq!(
        m.emails().len(),
        1,
        "no payment email for an exempt prescription"
    );
}
