//! The storage-engine spike of `bench/README.md` ("Engine spike, part 3(b)"): the same
//! synthetic prescriptions (`data`) written durably, with group commit (`drive`), to each
//! engine (`engine::Engine`): an append + `fdatasync` ceiling, SQLite in the product's tables
//! and in one item table (`sqlite`), and fjall (`lsm`) with the DynamoDB adapter's items.

pub mod data;
pub mod drive;
pub mod engine;
pub mod lsm;
pub mod sqlite;

use std::path::Path;

/// The engines by the names the command line takes.
pub const ENGINES: &[&str] = &[
    "ceiling",
    "sqlite-product",
    "sqlite-items",
    "fjall",
    "fjall-blobs",
];

/// Open engine `name` on `dir`; `bulk` for the preload's settings.
pub fn open(name: &str, dir: &Path, bulk: bool) -> anyhow::Result<Box<dyn engine::Engine>> {
    Ok(match name {
        "ceiling" => Box::new(engine::Ceiling::open(dir)?),
        "sqlite-product" => Box::new(sqlite::Sqlite::open(dir, sqlite::Layout::Product, bulk)?),
        "sqlite-items" => Box::new(sqlite::Sqlite::open(dir, sqlite::Layout::Items, bulk)?),
        "fjall" => Box::new(lsm::Fjall::open(dir, false)?),
        "fjall-blobs" => Box::new(lsm::Fjall::open(dir, true)?),
        other => anyhow::bail!("unknown engine {other:?}: one of {}", ENGINES.join(", ")),
    })
}
