//! FHIR R4 adapter: NHS Electronic Prescription Service (EPS) `prescription-order` message
//! Bundles read onto the clinic contract, the `OperationOutcome` and `CapabilityStatement`
//! answers, and the dm+d table that names formulary products by their dm+d codes.
//!
//! # Design
//! A Bundle is mapped onto the clinic contract's JSON body (`map::map_order`), not onto the
//! domain prescription directly: the HTTP adapter then runs the one contract parser on it, so
//! every rule of the JSON API (field formats, NHS number check digit, quantity words, authority
//! rules) applies to FHIR unchanged, and each contract error's JSON pointer is translated to
//! the FHIRPath of the element it was read from (`Mapped::expression_for`). Problems only the
//! FHIR shape can have (message type, references between entries, a dm+d code outside the
//! table, mixed course of therapy) are issues of this crate. Every problem is reported at once.
//!
//! # FHIR types
//! Hand-written serde structs (`model`) for only the resources and elements read, rather than a
//! generated FHIR model crate. `fhir-sdk` 0.16 has no R4 model (STU3, R4B, R5 only) and needs
//! Rust 1.95; `fhirbolt` 0.4 has R4 but generates every resource of the specification. Measured
//! on a 2-core machine, cold, each in a scratch crate with its own target directory: `cargo
//! check` of `fhirbolt` (feature `r4`) 54.0 s, `cargo build` 60.6 s, against 4.2 s / 4.6 s for
//! the ceiling of what this crate needs (`serde` with derive, `serde_json`,
//! `serde_path_to_error`): about 13 times the compile cost, for 7 of FHIR R4's 145 resources.
//! And a serde deserialisation of its model stops at the first error, where this adapter must
//! report every problem with its path. The
//! structs ignore elements they do not read, so an NHS-valid message is never refused for an
//! element rxbridge has no use for; a read element of the wrong type is an issue at its path
//! (`serde_path_to_error`).

pub mod dispensing;
pub mod dmd;
pub mod fhirpath;
pub mod map;
pub mod model;
pub mod outcome;

pub use dmd::{DmdCode, DmdTable};
pub use map::{Issue, Mapped, NotABundle, map_order};
