//! The rxbridge binary's library half: typed configuration and the wiring of adapters, use
//! cases and the HTTP server. `main.rs` is the CLI on top; the black-box tests start the real
//! server through `spawn`.

pub mod anchors;
mod app;
mod config;
mod documents;
mod files;
pub mod mail;
pub mod seed;
mod serve;
pub mod server;
pub mod stripe;
pub mod warehouse_sim;
pub mod webhooks;
mod wire;

pub use app::App;
pub use config::*;
pub use files::{create_secret_file, load_vault, private_file, write_secret_file};
pub use serve::*;
pub use wire::*;
