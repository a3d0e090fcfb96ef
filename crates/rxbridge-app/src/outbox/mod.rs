//! The transactional outbox: every state change someone outside must hear of writes
//! its message in the same transaction; a worker delivers the messages as Standard Webhooks
//! (<https://www.standardwebhooks.com>), records every attempt, retries with exponential
//! back-off and jitter for about three days, honours `Retry-After`, treats 410 as "endpoint
//! gone", and moves exhausted messages to a dead-letter list that admins can replay.
//!
//! Messages are addressed to a *destination* — `clinic:{id}:{mode}` or `warehouse:{mode}` —
//! resolved to its endpoint at delivery time. Per destination and prescription, a message is
//! not sent while an earlier one is still pending: each prescription's messages arrive in order.

pub mod delivery;
pub mod message;
pub mod sealed;
pub mod signing;

pub use delivery::{
    Delivery, DirectTransport, HttpAnswer, Outbox, OutboxGauges, RETRY_SCHEDULE_SECS, RunReport,
    WebhookTransport, backoff,
};
pub use message::Body;
pub use message::{
    Attempt, Endpoint, MessageStatus, NewMessage, OutboxMessage, OutboxStore, clinic_destination,
    messages_for, new_message_id, parse_destination, status_changed, warehouse_destination,
};
pub use signing::{VerifyError, generate_secret, sign, verify};
