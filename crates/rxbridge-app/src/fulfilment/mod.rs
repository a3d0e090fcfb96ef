//! Fulfilment: releasing ready prescriptions to the warehouse, the warehouse's events coming
//! back (picked, dispatched, delivered, failed, returned, stock received), the expiry sweep, and
//! the CD and POM register entries those events make.
//!
//! Sandbox (test-mode) data keeps its own register sections, prefixed `test/`, so a demo never
//! touches the live register.

pub mod event;
pub mod model;
mod orders_file;
mod register;
mod release;
pub mod service;
mod warehouse;

pub use event::{OrderEvent, Recipient, StockReceipt, WarehouseEvent};
pub use model::{
    FulfilmentConfig, SweepReport, WarehouseError, WarehouseOutcome, last_valid_day, section,
};
pub use service::Fulfilment;
