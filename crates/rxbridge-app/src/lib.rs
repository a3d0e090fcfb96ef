//! rxbridge application layer: the use cases (intake, clinics, audit) and the ports they talk
//! to the world through. Owns transactions and ordering; holds no HTTP or SQL.

pub mod anchor;
pub mod audit;
pub mod clinical;
pub mod clinical_view;
pub mod clinics;
pub mod clock;
#[cfg(feature = "contract-tests")]
pub mod contract;
pub mod crypto;
pub mod eps;
pub mod events;
pub mod finance;
pub mod fulfilment;
pub mod intake;
pub mod originals;
pub mod outbox;
pub mod passwords;
pub mod payments;
pub mod ports;
pub mod registers;
pub mod signatures;
pub mod staff;
pub mod staff_view;
pub mod state;
pub mod status_text;
pub mod subject_access;
pub mod throttle;
pub mod transfer;
pub mod views;
pub mod webhook_admin;

pub use clock::{Clock, FixedClock, SystemClock};
pub use crypto::PatientVault;
pub use ports::{Mode, Store, StoreError};
