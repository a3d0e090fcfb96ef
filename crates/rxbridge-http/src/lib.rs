//! Inbound HTTP adapter: the clinic API v1 (axum), RFC 9457 problems, and the OpenAPI 3.1
//! document generated from the code. The same `Router` serves locally and, later, on Lambda.
//! Handlers are short: parse → call a use case → map the result.

// Handlers return `Result<_, Problem>`; a problem is built once per failed request, so its
// size on the error path does not matter and boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod contract;
mod handlers;
pub mod metrics;
pub mod openapi;
pub mod payments;
pub mod portal;
pub mod problem;
mod router;
pub mod schema;

pub use router::{AppState, BODY_LIMIT, DEFAULT_REQUEST_TIMEOUT, router, router_with_timeout};
