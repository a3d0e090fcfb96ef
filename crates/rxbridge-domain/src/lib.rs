//! rxbridge domain: the pure core.
//!
//! Value types that can only hold valid values, the formulary, the prescription and its
//! lifecycle, and the UK compliance rules. No I/O, no async, no HTTP or SDK types: every
//! function here is deterministic given its inputs (the clock is always a parameter).

pub mod compliance;
pub mod contact;
pub mod dates;
pub mod declaration;
pub mod directions;
pub mod formulary;
pub mod ids;
pub mod lifecycle;
pub mod money;
pub mod nhs;
pub mod normalise;
pub mod prescription;
pub mod pricing;
pub mod quantity;

pub use compliance::{Finding, Severity};
pub use lifecycle::Status;
