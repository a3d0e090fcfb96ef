//! Inbound HTTP adapter: the clinic API v1 (axum), RFC 9457 problems, and the OpenAPI 3.1
//! document generated from the code. The same `Router` serves locally and, later, on Lambda.
//! Handlers are short: parse → call a use case → map the result.

// Handlers return `Result<_, Problem>`; a problem is built once per failed request, so its
// size on the error path does not matter and boxing it would only add noise.
#![allow(clippy::result_large_err)]

pub mod contract;
pub mod fhir;
mod handlers;
pub mod metrics;
pub mod openapi;
pub mod payments;
pub mod portal;
pub mod problem;
mod router;
pub mod schema;
mod state;
pub mod warehouse;

pub use router::{
    BODY_LIMIT, DEFAULT_REQUEST_TIMEOUT, metrics_router, router, router_with_timeout,
};
pub use state::{AppState, Services, UrlGuard};

/// The address the request came from, as the server in front of the router saw it (the TCP
/// peer on the embedded server, API Gateway's `sourceIp` on Lambda). Sign-in throttling keys on
/// it; absent, every request counts as one unknown client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub std::net::IpAddr);
