//! The prescription lifecycle (ARCHITECTURE.md, "The prescription's way through the house").
//! Every transition, the warehouse's included, is a method that returns the new status or
//! refuses the move; the status sets stores query by are derived from them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    AwaitingOriginal,
    AwaitingClinicalCheck,
    OnHold,
    AwaitingPayment,
    Paid,
    ReadyForFulfilment,
    WithWarehouse,
    Dispatched,
    Delivered,
    Rejected,
    Cancelled,
    Expired,
}

pub const ALL_STATUSES: [Status; 12] = [
    Status::AwaitingOriginal,
    Status::AwaitingClinicalCheck,
    Status::OnHold,
    Status::AwaitingPayment,
    Status::Paid,
    Status::ReadyForFulfilment,
    Status::WithWarehouse,
    Status::Dispatched,
    Status::Delivered,
    Status::Rejected,
    Status::Cancelled,
    Status::Expired,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("a prescription that is {from} cannot be {action}")]
    Illegal {
        from: &'static str,
        action: &'static str,
    },
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::AwaitingOriginal => "awaiting_original",
            Status::AwaitingClinicalCheck => "awaiting_clinical_check",
            Status::OnHold => "on_hold",
            Status::AwaitingPayment => "awaiting_payment",
            Status::Paid => "paid",
            Status::ReadyForFulfilment => "ready_for_fulfilment",
            Status::WithWarehouse => "with_warehouse",
            Status::Dispatched => "dispatched",
            Status::Delivered => "delivered",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        ALL_STATUSES.into_iter().find(|st| st.as_str() == s)
    }
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Delivered | Status::Rejected | Status::Cancelled | Status::Expired
        )
    }
    /// Cancellation is allowed until dispatch (clinic contract). Cancelling a cancelled
    /// prescription is not an error for the caller; the use case answers it as a no-op.
    pub fn cancel(self) -> Result<Status, TransitionError> {
        match self {
            Status::AwaitingOriginal
            | Status::AwaitingClinicalCheck
            | Status::OnHold
            | Status::AwaitingPayment
            | Status::Paid
            | Status::ReadyForFulfilment
            | Status::WithWarehouse => Ok(Status::Cancelled),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "cancelled",
            }),
        }
    }
}

/// What approval leads to (the money rules decide the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentDue {
    /// Private prescription, or NHS with the charge to pay (exemption 0001).
    Yes,
    /// NHS prescription with an exemption.
    No,
}

impl Status {
    /// The signed paper original arrived and its serial matches: on to the clinical check.
    pub fn original_matched(self) -> Result<Status, TransitionError> {
        match self {
            Status::AwaitingOriginal => Ok(Status::AwaitingClinicalCheck),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "matched to its paper original",
            }),
        }
    }

    /// The prescriber answered a pharmacist's query: back to the clinical check.
    pub fn answer_query(self) -> Result<Status, TransitionError> {
        match self {
            Status::OnHold => Ok(Status::AwaitingClinicalCheck),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "answered (no query is open)",
            }),
        }
    }

    /// A pharmacist approves after the clinical check.
    pub fn approve(self, payment: PaymentDue) -> Result<Status, TransitionError> {
        match self {
            Status::AwaitingClinicalCheck => Ok(match payment {
                PaymentDue::Yes => Status::AwaitingPayment,
                PaymentDue::No => Status::ReadyForFulfilment,
            }),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "approved",
            }),
        }
    }
    /// The patient's NHS charge exemption is declared at the pharmacy: recorded before the
    /// pharmacist's approval (which fixes the charge on the dispensing date), never after. The
    /// status does not change.
    pub fn declare_exemption(self) -> Result<Status, TransitionError> {
        match self {
            Status::AwaitingOriginal | Status::AwaitingClinicalCheck | Status::OnHold => Ok(self),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "given an exemption declaration (the charge was fixed at approval)",
            }),
        }
    }
    /// A pharmacist queries the prescriber: the prescription waits on hold.
    pub fn query_prescriber(self) -> Result<Status, TransitionError> {
        match self {
            Status::AwaitingClinicalCheck => Ok(Status::OnHold),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "queried",
            }),
        }
    }
    /// A pharmacist rejects after the clinical check (or while a query is open).
    pub fn reject(self) -> Result<Status, TransitionError> {
        match self {
            Status::AwaitingClinicalCheck | Status::OnHold => Ok(Status::Rejected),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "rejected",
            }),
        }
    }
}

impl Status {
    /// The patient paid (private price or NHS charge).
    pub fn payment_received(self) -> Result<Status, TransitionError> {
        match self {
            Status::AwaitingPayment => Ok(Status::Paid),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "marked paid",
            }),
        }
    }
    /// Paid (or nothing to pay): the order may go to the warehouse.
    pub fn release_for_fulfilment(self) -> Result<Status, TransitionError> {
        match self {
            Status::Paid => Ok(Status::ReadyForFulfilment),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "released for fulfilment",
            }),
        }
    }
    /// The prescription's validity window closed before dispatch.
    pub fn expire(self) -> Result<Status, TransitionError> {
        match self {
            Status::AwaitingOriginal
            | Status::AwaitingClinicalCheck
            | Status::OnHold
            | Status::AwaitingPayment
            | Status::Paid
            | Status::ReadyForFulfilment
            | Status::WithWarehouse => Ok(Status::Expired),
            other => Err(TransitionError::Illegal {
                from: other.as_str(),
                action: "expired",
            }),
        }
    }
    /// Money taken for it must go back when it ends here without being supplied.
    pub fn ended_unsupplied(self) -> bool {
        matches!(self, Status::Cancelled | Status::Expired | Status::Rejected)
    }
}

/// The warehouse's part: the order handed over, picked, dispatched, delivered or not.
impl Status {
    /// Ready (paid, or nothing to pay): the order goes to the warehouse.
    pub fn hand_to_warehouse(self) -> Result<Status, TransitionError> {
        self.only_from(
            Status::ReadyForFulfilment,
            Status::WithWarehouse,
            "sent to the warehouse",
        )
    }
    /// The warehouse picked the order: it stays with the warehouse.
    pub fn picked(self) -> Result<Status, TransitionError> {
        self.only_from(Status::WithWarehouse, Status::WithWarehouse, "picked")
    }
    /// The warehouse handed the parcel to the carrier.
    pub fn dispatch(self) -> Result<Status, TransitionError> {
        self.only_from(Status::WithWarehouse, Status::Dispatched, "dispatched")
    }
    /// The carrier delivered it.
    pub fn deliver(self) -> Result<Status, TransitionError> {
        self.only_from(Status::Dispatched, Status::Delivered, "delivered")
    }
    /// A delivery attempt failed: the parcel is still with the carrier.
    pub fn delivery_failed(self) -> Result<Status, TransitionError> {
        self.only_from(Status::Dispatched, Status::Dispatched, "marked failed")
    }
    /// The parcel came back undelivered: it stays dispatched, quarantined for the pharmacist.
    pub fn returned(self) -> Result<Status, TransitionError> {
        self.only_from(Status::Dispatched, Status::Dispatched, "returned")
    }

    fn only_from(
        self,
        from: Status,
        to: Status,
        action: &'static str,
    ) -> Result<Status, TransitionError> {
        if self == from {
            Ok(to)
        } else {
            Err(TransitionError::Illegal {
                from: self.as_str(),
                action,
            })
        }
    }

    /// The statuses a prescription can still expire from (not dispatched, not ended): the
    /// expiry sweep's candidates.
    pub fn expirable() -> impl Iterator<Item = Status> {
        ALL_STATUSES.into_iter().filter(|s| s.expire().is_ok())
    }
    /// The statuses that end a prescription without a supply (money taken goes back).
    pub fn unsupplied_ends() -> impl Iterator<Item = Status> {
        ALL_STATUSES.into_iter().filter(|s| s.ended_unsupplied())
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn cancel_until_dispatch() {
        for s in ALL_STATUSES {
            let allowed = s.cancel().is_ok();
            let expected = !matches!(
                s,
                Status::Dispatched
                    | Status::Delivered
                    | Status::Rejected
                    | Status::Cancelled
                    | Status::Expired
            );
            assert_eq!(allowed, expected, "{s}");
        }
    }
    #[test]
    fn payment_then_release_then_expiry() {
        assert_eq!(Status::AwaitingPayment.payment_received(), Ok(Status::Paid));
        assert_eq!(
            Status::Paid.release_for_fulfilment(),
            Ok(Status::ReadyForFulfilment)
        );
        for s in ALL_STATUSES {
            assert_eq!(
                s.payment_received().is_ok(),
                s == Status::AwaitingPayment,
                "{s}"
            );
            assert_eq!(s.release_for_fulfilment().is_ok(), s == Status::Paid, "{s}");
            // Expiry is possible exactly where cancellation is: before dispatch.
            assert_eq!(s.expire().is_ok(), s.cancel().is_ok(), "{s}");
        }
    }
    #[test]
    fn clinical_decisions_only_from_the_check() {
        use PaymentDue::*;
        assert_eq!(
            Status::AwaitingClinicalCheck.approve(Yes),
            Ok(Status::AwaitingPayment)
        );
        assert_eq!(
            Status::AwaitingClinicalCheck.approve(No),
            Ok(Status::ReadyForFulfilment)
        );
        assert_eq!(
            Status::AwaitingClinicalCheck.query_prescriber(),
            Ok(Status::OnHold)
        );
        assert_eq!(Status::OnHold.reject(), Ok(Status::Rejected));
        for s in ALL_STATUSES {
            if s != Status::AwaitingClinicalCheck {
                assert!(s.approve(Yes).is_err(), "{s}");
                assert!(s.query_prescriber().is_err(), "{s}");
            }
            if !matches!(s, Status::AwaitingClinicalCheck | Status::OnHold) {
                assert!(s.reject().is_err(), "{s}");
            }
        }
    }

    #[test]
    fn an_exemption_is_declared_only_before_approval() {
        use Status::*;
        for s in ALL_STATUSES {
            let before_approval = matches!(s, AwaitingOriginal | AwaitingClinicalCheck | OnHold);
            assert_eq!(
                s.declare_exemption().ok(),
                before_approval.then_some(s),
                "{s}"
            );
        }
        assert!(
            AwaitingPayment
                .declare_exemption()
                .unwrap_err()
                .to_string()
                .contains("fixed at approval")
        );
    }

    #[test]
    fn only_a_waiting_prescription_is_matched_to_its_original() {
        assert_eq!(
            Status::AwaitingOriginal.original_matched(),
            Ok(Status::AwaitingClinicalCheck)
        );
        for s in ALL_STATUSES
            .into_iter()
            .filter(|s| *s != Status::AwaitingOriginal)
        {
            assert!(s.original_matched().is_err(), "{s}");
        }
    }

    #[test]
    fn only_an_open_query_is_answered() {
        assert_eq!(
            Status::OnHold.answer_query(),
            Ok(Status::AwaitingClinicalCheck)
        );
        for s in ALL_STATUSES.into_iter().filter(|s| *s != Status::OnHold) {
            assert!(s.answer_query().is_err(), "{s}");
        }
    }

    #[test]
    fn the_warehouse_moves_only_what_it_holds() {
        use Status::*;
        type Step = fn(Status) -> Result<Status, TransitionError>;
        let moves: [(Step, Status, Status); 6] = [
            (Status::hand_to_warehouse, ReadyForFulfilment, WithWarehouse),
            (Status::picked, WithWarehouse, WithWarehouse),
            (Status::dispatch, WithWarehouse, Dispatched),
            (Status::deliver, Dispatched, Delivered),
            (Status::delivery_failed, Dispatched, Dispatched),
            (Status::returned, Dispatched, Dispatched),
        ];
        for (step, from, to) in moves {
            for s in ALL_STATUSES {
                assert_eq!(step(s).ok(), (s == from).then_some(to), "{s}");
            }
        }
        assert_eq!(
            Delivered.dispatch().unwrap_err().to_string(),
            "a prescription that is delivered cannot be dispatched"
        );
    }

    #[test]
    fn status_sets_follow_the_transitions() {
        use Status::*;
        assert_eq!(
            Status::expirable().collect::<Vec<_>>(),
            [
                AwaitingOriginal,
                AwaitingClinicalCheck,
                OnHold,
                AwaitingPayment,
                Paid,
                ReadyForFulfilment,
                WithWarehouse
            ]
        );
        assert_eq!(
            Status::unsupplied_ends().collect::<Vec<_>>(),
            [Rejected, Cancelled, Expired]
        );
    }

    #[test]
    fn parse_roundtrip() {
        for s in ALL_STATUSES {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
        assert_eq!(Status::parse("nope"), None);
    }
}
