//! Ports: the traits the use cases talk to the world through, with their written contracts,
//! and the records they carry. The store is split by concern (one submodule per port);
//! `Store` is their union. Every store adapter (SQLite, DynamoDB) must pass `crate::contract`.

mod clinics;
mod events;
mod patients;
mod payments;
mod prescriptions;
mod records;

pub use clinics::ClinicStore;
pub use events::EventLog;
pub use patients::PatientIndex;
pub use payments::{PaymentStore, UnitOfWork};
pub use prescriptions::{PrescriptionStore, StaffViews};
pub use records::*;

/// The whole store: every port one store adapter implements. Use cases that need one concern
/// take that port (`Arc<dyn ClinicStore>`, `&dyn EventLog`); an `Arc<dyn Store>` coerces to
/// any of them.
///
/// What holds across every port (each port's own contract is on its trait; the shared suites
/// in `crate::contract` check both stores against them):
/// - A method that returns `Ok` after a write has made it durable: a crash afterwards loses
///   nothing (SQLite: `synchronous=FULL`, answered after the group commit; DynamoDB: on the
///   service's acknowledgement).
/// - Every write that records a state change appends its event to the hash-chained log in the
///   same transaction (`EventLog`).
/// - Reads scoped by clinic and mode never return another clinic's or mode's records.
/// - A write that fails wrote nothing.
pub trait Store:
    ClinicStore + PrescriptionStore + StaffViews + PatientIndex + EventLog + UnitOfWork + PaymentStore
{
}

impl<T> Store for T where
    T: ClinicStore
        + PrescriptionStore
        + StaffViews
        + PatientIndex
        + EventLog
        + UnitOfWork
        + PaymentStore
        + ?Sized
{
}
