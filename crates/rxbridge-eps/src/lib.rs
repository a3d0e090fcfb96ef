//! The NHS EPS dispensing API, over HTTP: the client a nominated pharmacy uses (`client`),
//! its application-restricted auth (`auth`: an OAuth2 `client_credentials` grant with a
//! client assertion JWT signed RS512, as the NHS API platform requires), and the local
//! stand-in for the API (`sim`, `rxbridge dev eps-sim`) that the end-to-end tests run against.
//! The messages themselves are `rxbridge_fhir::dispensing`'s.

pub mod auth;
pub mod client;
pub mod outcome;
pub mod sim;

pub use client::{EpsClient, EpsConfig, EpsError, Retry, Sent};
pub use outcome::Issue;
