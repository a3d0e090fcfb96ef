//! One module per command group: each takes the loaded config and its parsed subcommand,
//! opens what it needs and prints its result.

pub mod audit;
pub mod clinic;
pub mod demo;
pub mod dev;
pub mod eps;
pub mod export;
pub mod outbox;
pub mod payments;
pub mod prescriber_key;
pub mod registers;
pub mod rules;
pub mod serve;
pub mod staff;
pub mod store;
pub mod webhook;

use rxbridge::{App, Config};

/// Open the data directory, run `f` on it, then flush the store whatever `f` returned.
pub async fn with_app<T>(
    config: Config,
    f: impl AsyncFnOnce(&App) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let app = App::open(config)?;
    let r = f(&app).await;
    app.store.close();
    r
}
