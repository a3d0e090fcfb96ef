//! Each prescription status in plain words for staff who talk to patients: one line on where
//! the prescription is, and what the patient should be told. Shown on search results and the
//! prescription page; no patient data.

use rxbridge_domain::lifecycle::Status;

/// Where the prescription is, and what to tell the patient who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusText {
    pub line: &'static str,
    pub tell: &'static str,
}

pub fn status_text(status: Status) -> StatusText {
    let (line, tell) = match status {
        Status::AwaitingOriginal => (
            "Waiting for the signed paper prescription to reach the pharmacy.",
            "We cannot supply until your prescriber's signed paper prescription reaches us; your clinic posts it.",
        ),
        Status::AwaitingClinicalCheck => (
            "Waiting for a pharmacist's clinical check.",
            "A pharmacist is checking your prescription; you will get an email as soon as it is approved.",
        ),
        Status::OnHold => (
            "On hold: the pharmacist has asked the prescriber a question.",
            "We have a question for your prescriber about the prescription; nothing is needed from you yet.",
        ),
        Status::AwaitingPayment => (
            "Approved; waiting for the patient's payment.",
            "Your prescription is approved: pay with the link we emailed you, and we send it out once paid.",
        ),
        Status::Paid => (
            "Paid; being prepared for the warehouse.",
            "Thank you, your payment has arrived; your order goes to our warehouse next.",
        ),
        Status::ReadyForFulfilment => (
            "Ready to go to the warehouse.",
            "Your order is ready and goes to our warehouse shortly.",
        ),
        Status::WithWarehouse => (
            "With the warehouse, being packed.",
            "Your order is being packed; you will get the tracking number when it leaves.",
        ),
        Status::Dispatched => (
            "Dispatched by tracked delivery.",
            "Your order is on its way by tracked, signed-for delivery; the tracking number is in your email.",
        ),
        Status::Delivered => (
            "Delivered.",
            "Our records show the order was delivered and signed for.",
        ),
        Status::Rejected => (
            "Rejected: it will not be supplied.",
            "We cannot supply this prescription; your clinic has been told why and will contact you.",
        ),
        Status::Cancelled => (
            "Cancelled.",
            "The prescription was cancelled; any payment is refunded to your card.",
        ),
        Status::Expired => (
            "Expired: it was not supplied within its validity.",
            "The prescription is no longer valid; please ask your clinic for a new one. Any payment is refunded.",
        ),
    };
    StatusText { line, tell }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxbridge_domain::lifecycle::ALL_STATUSES;

    #[test]
    fn every_status_has_its_own_words() {
        let texts: std::collections::BTreeSet<&str> =
            ALL_STATUSES.iter().map(|s| status_text(*s).tell).collect();
        assert_eq!(texts.len(), ALL_STATUSES.len());
        for s in ALL_STATUSES {
            let t = status_text(s);
            assert!(t.line.ends_with('.') && t.tell.ends_with('.'), "{s:?}");
        }
    }
}
