//! Patient emails: sender, reply-to and wording come from the mail settings and agree with each
//! other — a reply is invited only when someone reads it.

use crate::money::harness::*;
use rxbridge_app::ports::Mode;

/// The one email's text, quoted-printable soft breaks undone.
fn only_email(m: &Money) -> String {
    let emails = m.emails();
    assert_eq!(emails.len(), 1, "{emails:?}");
    emails[0].1.replace("=\r\n", "").replace("=\n", "")
}

#[tokio::test]
async fn a_no_reply_sender_does_not_invite_a_reply() {
    let m = start(|c| c.mail.contact = Some("call 0161 496 0000".into())).await;
    let id = m.submit(Mode::Test, &private_pom("MAIL-1")).await;
    m.approve(Mode::Test, &id).await;
    let text = only_email(&m);
    assert!(
        text.contains("From: \"rxbridge pharmacy\" <no-reply@rxbridge.invalid>"),
        "{text}"
    );
    assert!(!text.contains("Reply-To"), "{text}");
    assert!(!text.to_lowercase().contains("reply to"), "{text}");
    assert!(
        text.contains("please call 0161 496 0000. Replies to this address are not read."),
        "{text}"
    );
}

#[tokio::test]
async fn a_reply_to_address_is_set_and_offered() {
    let m = start(|c| {
        c.mail.from = "Example Pharmacy <orders@pharmacy.example>".into();
        c.mail.reply_to = Some("Example Pharmacy care <care@pharmacy.example>".into());
        c.pharmacy.name = "Example Pharmacy".into();
    })
    .await;
    let id = m.submit(Mode::Test, &private_pom("MAIL-2")).await;
    m.approve(Mode::Test, &id).await;
    let text = only_email(&m);
    assert!(
        text.contains("From: \"Example Pharmacy\" <orders@pharmacy.example>"),
        "{text}"
    );
    assert!(
        text.contains("Reply-To: \"Example Pharmacy care\" <care@pharmacy.example>"),
        "{text}"
    );
    assert!(text.contains("reply to this email"), "{text}");
    assert!(!text.contains("not read"), "{text}");
    assert!(text.trim_end().ends_with("Example Pharmacy"), "{text}");
}

#[test]
fn a_bad_sender_or_reply_to_is_refused_at_start_naming_the_setting() {
    let mut c = rxbridge::Config::default();
    c.mail.reply_to = Some("not an address".into());
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("mail.reply_to (RXBRIDGE_MAIL_REPLY_TO)"), "{e}");
    let mut c = rxbridge::Config::default();
    c.mail.from = "nobody".into();
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("mail.from (RXBRIDGE_MAIL_FROM)"), "{e}");
}
