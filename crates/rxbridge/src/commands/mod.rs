//! One module per command group: each takes the loaded config and its parsed subcommand,
//! opens what it needs and prints its result.

pub mod audit;
pub mod clinic;
pub mod dev;
pub mod export;
pub mod outbox;
pub mod payments;
pub mod prescriber_key;
pub mod registers;
pub mod rules;
pub mod serve;
pub mod staff;
pub mod webhook;
