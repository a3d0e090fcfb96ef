//! The black-box suites in one test binary, so the server and its dependencies are linked once
//! rather than once per suite: the clinic API and CLI (`api`), money and fulfilment (`money`),
//! and the pharmacist's clinical check (`clinical`). They share one harness (`common`).
//! Run one suite with a filter: `cargo test -p rxbridge --test suite -- api::portal::`.

#[path = "../common/mod.rs"]
mod common;

#[path = "../api/mod.rs"]
mod api;
#[path = "../clinical/mod.rs"]
mod clinical;
#[path = "../money/mod.rs"]
mod money;
