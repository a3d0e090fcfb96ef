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

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn send(&self, message: &OutgoingEmail) -> anyhow::Result<()>;
}
