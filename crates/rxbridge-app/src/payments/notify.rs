//! The patient-notifications port. Messages carry what the patient needs (an order reference,
//! an amount, a link, a date) and no clinical detail: no medicine, no clinic speciality.

use async_trait::async_trait;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    pub to: String,
    pub subject: String,
    pub text: String,
    /// A stable id for this message (`payment-link-pay_…`): adapters use it for Message-ID and
    /// file names, so a resend after a crash is recognisable.
    pub reference: String,
}

/// The closing line of every patient email: it invites a reply only when replies reach a
/// person (`replies_read`: a reply-to address is set, or the sender is not a no-reply one);
/// otherwise it says where to turn instead (`contact`, e.g. "call 0161 496 0000") and that
/// replies are not read. Built once from the mail settings so every message says the same.
pub fn contact_line(replies_read: bool, contact: Option<&str>) -> String {
    let contact = contact.map(str::trim).filter(|c| !c.is_empty());
    match (replies_read, contact) {
        (true, _) => {
            "If you did not expect this message, or something is wrong, reply to this email.".into()
        }
        (false, Some(c)) => format!(
            "If you did not expect this message, or something is wrong, please {c}. Replies to this address are not read."
        ),
        (false, None) => "Replies to this address are not read.".into(),
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, message: &OutgoingEmail) -> anyhow::Result<()>;
}

#[cfg(test)]
mod tests {
    use super::contact_line;

    #[test]
    fn a_reply_is_invited_only_when_someone_reads_it() {
        assert!(contact_line(true, None).contains("reply to this email"));
        let no_reply = contact_line(false, Some("call 0161 496 0000"));
        assert!(no_reply.contains("please call 0161 496 0000"), "{no_reply}");
        assert!(no_reply.contains("not read") && !no_reply.contains("reply to this"));
        assert_eq!(contact_line(false, Some(" ")), contact_line(false, None));
        assert!(!contact_line(false, None).contains("reply to"));
    }
}
