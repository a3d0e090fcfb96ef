//! What the store keeps about money: one payment record per approved prescription (exempt NHS
//! ones too, so the month's claim finds every item), and the unit of work that changes it
//! together with the prescription and the event log.

use crate::events::NewEvent;
use crate::ports::Mode;
use jiff::Timestamp;
use jiff::civil::Date;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::pricing::Quote;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The patient has a link and has not paid yet.
    AwaitingPayment,
    /// The provider confirmed the money (webhook).
    Paid,
    /// Nothing to pay (NHS exemption).
    NotDue,
    /// The prescription ended before payment; nothing was taken.
    Cancelled,
    /// Money was taken for a prescription that will not be supplied: a refund is owed.
    RefundPending,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::AwaitingPayment => "awaiting_payment",
            PaymentStatus::Paid => "paid",
            PaymentStatus::NotDue => "not_due",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::RefundPending => "refund_pending",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

impl std::fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One prescription's money. Amounts in pence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// `pay_…`
    pub id: String,
    pub prescription_id: String,
    pub clinic_id: String,
    pub mode: Mode,
    pub status: PaymentStatus,
    /// The price fixed at approval.
    pub quote: Quote,
    /// `sandbox` or `stripe`.
    pub provider: String,
    /// The provider's current checkout session, while one is open.
    pub session_id: Option<String>,
    pub session_url: Option<String>,
    pub session_expires_at: Option<Timestamp>,
    /// How many checkout sessions were created (part of each one's idempotency key).
    pub session_attempts: u32,
    /// The provider's payment reference (Stripe PaymentIntent id).
    pub payment_ref: Option<String>,
    pub paid_pence: i64,
    pub paid_at: Option<Timestamp>,
    pub refund_ref: Option<String>,
    pub refunded_pence: i64,
    pub refunded_at: Option<Timestamp>,
    /// When the payment link reached the patient's mailbox (or outbox).
    pub link_sent_at: Option<Timestamp>,
    pub reminders_sent: u32,
    /// Unpaid by then, the prescription is cancelled (or expired, when this is the end of its
    /// 28-day controlled-drug window).
    pub due_by: Timestamp,
    /// True when `due_by` is the controlled-drug window's end rather than the payment window's.
    pub due_by_is_cd_window: bool,
    /// Something finance must look at (an amount mismatch, a refused refund).
    pub attention: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency token, incremented by every update.
    pub version: i64,
    /// The event that produced this state (`crate::state`); the store sets it on every write.
    #[serde(default)]
    pub event_seq: i64,
}

impl PaymentRecord {
    /// A copy to write back at `now`: the next version of this record.
    pub fn next_version(&self, now: jiff::Timestamp) -> PaymentRecord {
        let mut next = self.clone();
        next.version += 1;
        next.updated_at = now;
        next
    }

    /// The charge date (London calendar): the day the pharmacist approved it.
    pub fn charge_date(&self) -> Date {
        self.quote.charge_date
    }
}

/// Move a prescription from the version the caller read.
#[derive(Debug, Clone)]
pub struct TransitionTo {
    pub id: String,
    pub expected_version: i64,
    pub to: Status,
}

#[derive(Debug, Clone)]
pub enum PaymentWrite {
    Insert(PaymentRecord),
    /// Write `record` (its `version` already incremented) if the stored version is
    /// `record.version - 1`.
    Update(PaymentRecord),
}

/// One atomic unit of work: all of it is written, or none.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub transition: Option<TransitionTo>,
    pub payment: Option<PaymentWrite>,
    /// A provider's event id (`(source, id)`): if already recorded, nothing is written and the
    /// store answers `Duplicate`.
    pub dedupe: Option<(String, String)>,
    /// Appended to the hash-chained log in order.
    pub events: Vec<NewEvent>,
    /// Messages for the outside, delivered by the outbox worker after commit.
    pub outbox: Vec<crate::outbox::NewMessage>,
    /// CD / POM register entries (the store assigns order, balance and chain).
    pub register: Vec<crate::registers::NewEntry>,
    /// The NHS charge exemption's new state, written on the prescription `transition` moves
    /// (a change without a transition must leave it `None`; the stores refuse it otherwise).
    pub nhs_exemption: Option<rxbridge_domain::declaration::NhsExemption>,
}

impl Change {
    /// Move `rec` to `to` with `events` (the first is the transition's), telling the clinic
    /// (and the warehouse, when it holds the order) through the outbox in the same transaction.
    pub fn move_to(
        rec: &crate::ports::PrescriptionRecord,
        to: Status,
        events: Vec<NewEvent>,
    ) -> Self {
        let at = events.first().map_or_else(jiff::Timestamp::now, |e| e.at);
        Change {
            transition: Some(TransitionTo {
                id: rec.id.clone(),
                expected_version: rec.version,
                to,
            }),
            outbox: crate::outbox::messages_for(rec, to, at),
            events,
            ..Change::default()
        }
    }
}
