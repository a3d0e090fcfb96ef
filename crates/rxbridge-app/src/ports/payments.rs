//! The unit-of-work and payment ports: the one atomic write that money, fulfilment and
//! registers share, and the payment reads.

use super::records::{Mode, PrescriptionRecord, StoreError};
use crate::payments::{Change, PaymentRecord};
use async_trait::async_trait;
use jiff::civil::Date;
use rxbridge_domain::lifecycle::Status;

/// One atomic write of a `Change`: a transition, a payment, a de-duplication mark, events,
/// outbox messages and register entries.
///
/// Contract (both stores; `contract::payments`, `contract::fulfilment`, `contract::state`):
/// - **Atomicity**: all of a change is written or none of it (SQLite: one savepoint in the
///   writer's transaction; DynamoDB: one `TransactWriteItems`).
/// - **Concurrency**: optimistic on the prescription's and the payment's versions; the loser
///   gets `Conflict`.
/// - **Idempotency**: a `dedupe` mark `(source, id)` is written once; a change carrying a mark
///   already written answers `Duplicate` and writes nothing, so a provider's retried event is
///   applied once. `seen` reads the mark (strongly consistent on both stores).
/// - **Ordering**: events are appended in the order given, contiguously on the chain
///   (`EventLog`); the change's outbox messages and register entries follow everything
///   committed before it.
/// - **Binding**: every row written is bound to the change's first event (`crate::state`); a
///   change that writes state without an event is refused (`Unexpected`), on both stores.
/// - **Errors**: `Conflict`, `NotFound` (no such prescription), `Duplicate` (mark exists, or a
///   payment for the prescription exists), `Rejected` (a register balance would go below
///   zero); nothing is written on any error.
#[async_trait]
pub trait UnitOfWork: Send + Sync + 'static {
    /// Write a unit of work atomically: an optional prescription transition (optimistic on
    /// its version), an optional payment insert or update (optimistic on its version), an
    /// optional provider-event de-duplication mark, and events in order. Returns the
    /// prescription after the transition, if there was one.
    /// # Errors
    /// `Conflict` if the prescription's or payment's version moved on; `NotFound` if the
    /// prescription does not exist; `Duplicate` if the de-duplication mark exists or a
    /// payment for the prescription already exists. Nothing is written on any error.
    async fn commit(&self, change: Change) -> Result<Option<PrescriptionRecord>, StoreError>;

    /// Whether a `Change::dedupe` mark `(source, id)` was written.
    async fn seen(&self, source: &str, id: &str) -> Result<bool, StoreError>;
}

/// Payments, read back. Written only through `UnitOfWork::commit`.
///
/// Contract (both stores; `contract::payments`):
/// - **Uniqueness**: one payment per prescription; a session id and a provider payment
///   reference each find at most one payment.
/// - **Consistency**: reads by id, prescription, session and reference see every `Ok` commit
///   (DynamoDB: strongly consistent `GetItem` on pointer items). The sweep and the period
///   export read GSIs on DynamoDB and may trail a commit by a moment; SQLite's do not.
/// - **Ordering**: `payments_needing_attention` and `payments_charged_between` oldest first.
/// - **Errors**: only `Unexpected`.
#[async_trait]
pub trait PaymentStore: Send + Sync + 'static {
    async fn get_payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError>;

    async fn payment_for_prescription(
        &self,
        prescription_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError>;

    /// The payment whose current checkout session is `session_id`.
    async fn payment_by_session(
        &self,
        session_id: &str,
    ) -> Result<Option<PaymentRecord>, StoreError>;

    /// The payment with this provider payment reference.
    async fn payment_by_ref(&self, payment_ref: &str) -> Result<Option<PaymentRecord>, StoreError>;

    /// Payments the sweep must look at, with their prescription's status: awaiting payment,
    /// refund pending, or paid while the prescription ended unsupplied. Oldest first.
    async fn payments_needing_attention(
        &self,
        limit: u32,
    ) -> Result<Vec<(PaymentRecord, Status)>, StoreError>;

    /// Payments of `mode` charged on `from..=to` (London dates), with their prescriptions,
    /// oldest first (month-end exports).
    async fn payments_charged_between(
        &self,
        mode: Mode,
        from: Date,
        to: Date,
    ) -> Result<Vec<(PaymentRecord, PrescriptionRecord)>, StoreError>;
}
