//! The sweep: one reminder, cancellation at the end of the payment window, expiry when the
//! 28-day controlled-drug window closes first; links that could not be sent are sent later.

use crate::common::get_text;
use crate::money::harness::*;
use jiff::SignedDuration;
use rxbridge_app::payments::PaymentStatus;
use rxbridge_app::ports::Mode;

#[tokio::test]
async fn reminder_then_cancellation_after_the_payment_window() {
    let m = start(|c| {
        c.payments.window_hours = 72;
        c.payments.reminder_after_hours = 24;
    })
    .await;
    let id = m.submit(Mode::Test, &private_pom("SW-1")).await;
    m.approve(Mode::Test, &id).await;
    let pay = &m.running.payments;
    assert_eq!(
        pay.tick().await.unwrap(),
        Default::default(),
        "nothing due yet"
    );
    m.advance(SignedDuration::from_hours(23));
    assert_eq!(pay.tick().await.unwrap().reminders_sent, 0);
    m.advance(SignedDuration::from_hours(2));
    assert_eq!(pay.tick().await.unwrap().reminders_sent, 1);
    assert_eq!(
        pay.tick().await.unwrap().reminders_sent,
        0,
        "one reminder only"
    );
    let names: Vec<String> = m.emails().into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().any(|n| n.starts_with("reminder-")),
        "{names:?}"
    );
    m.advance(SignedDuration::from_hours(48));
    let r = pay.tick().await.unwrap();
    assert_eq!((r.cancelled, r.expired), (1, 0));
    assert_eq!(m.clinic_view(Mode::Test, &id).await["status"], "cancelled");
    assert_eq!(m.payment(&id).await.status, PaymentStatus::Cancelled);
    // The link now says so.
    let link = m.link_in_email(&m.payment(&id).await.id);
    let page = get_text(&m.client, &link).await;
    assert!(page.contains("Order cancelled"), "{page}");
    assert_eq!(pay.tick().await.unwrap(), Default::default());
}

#[tokio::test]
async fn an_unpaid_cd_expires_when_its_28_days_end_before_the_payment_window() {
    let m = start(|c| c.payments.window_hours = 24 * 7).await;
    let mut body = nhs("SW-2", "0001", &["CONCERTA-XL-36"]);
    body["issued_on"] = issued_days_ago(27);
    let id = m.submit(Mode::Test, &body).await;
    m.approve(Mode::Test, &id).await;
    let p = m.payment(&id).await;
    assert!(p.due_by_is_cd_window, "{p:?}");
    let last_day = today().saturating_add(jiff::Span::new().days(1));
    assert_eq!(
        rxbridge_domain::dates::london_date(p.due_by),
        last_day.saturating_add(jiff::Span::new().days(1)),
        "due at the start of the day after the last valid day"
    );
    m.advance(SignedDuration::from_hours(24 * 3));
    let r = m.running.payments.tick().await.unwrap();
    assert_eq!((r.cancelled, r.expired), (0, 1));
    assert_eq!(m.clinic_view(Mode::Test, &id).await["status"], "expired");
}

#[tokio::test]
async fn a_link_that_could_not_be_emailed_is_sent_by_the_sweep() {
    let m = start(|_| {}).await;
    // Make the mail directory unwritable: approval still succeeds, the link waits.
    let mail = m.running.data_dir.join("mail");
    std::fs::remove_dir_all(&mail).ok();
    std::fs::write(&mail, b"not a directory").unwrap();
    let id = m.submit(Mode::Test, &private_pom("SW-3")).await;
    assert_eq!(
        m.approve(Mode::Test, &id).await.status.as_str(),
        "awaiting_payment"
    );
    assert!(m.payment(&id).await.link_sent_at.is_none());
    assert_eq!(m.running.payments.tick().await.unwrap().failures, 1);
    std::fs::remove_file(&mail).unwrap();
    std::fs::create_dir(&mail).unwrap();
    assert_eq!(m.running.payments.tick().await.unwrap().links_sent, 1);
    assert!(m.payment(&id).await.link_sent_at.is_some());
    assert_eq!(m.emails().len(), 1);
}
