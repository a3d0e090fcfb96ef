//! The rxbridge binary's library half: typed configuration and the wiring of adapters, use
//! cases and the HTTP server. `main.rs` is the CLI on top; the black-box tests start the real
//! server through `spawn`.
//!
//! The `sqlite` feature (on by default) adds the embedded store: [`App`], `serve`, `spawn` and
//! `seed`. Without it (the AWS build) the configuration, wiring, webhooks, mail, Stripe and
//! anchors are all here, and SQLite is not linked.

pub mod anchors;
#[cfg(feature = "sqlite")]
mod app;
mod config;
#[cfg(feature = "sqlite")]
mod documents;
pub mod eps;
mod files;
pub mod mail;
#[cfg(feature = "sqlite")]
pub mod seed;
#[cfg(feature = "sqlite")]
mod serve;
pub mod server;
pub mod warehouse_sim;
pub mod webhooks;
mod wire;

#[cfg(feature = "sqlite")]
pub use app::App;
pub use config::*;
pub use files::{create_secret_file, load_vault, private_file, write_secret_file};
#[cfg(feature = "sqlite")]
pub use serve::*;
pub use wire::*;
