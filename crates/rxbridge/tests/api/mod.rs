//! Black-box tests of the clinic API and the CLI: the real server on port 0, a fresh data
//! directory each, failure paths included.

mod access;
mod audit;
mod casebook;
mod cli;
mod demo;
mod fhir;
mod hardening;
mod helpers;
mod hostile;
mod idempotency;
mod intake;
mod listing;
mod ops;
mod portal;
mod portal_admin;
mod portal_exemption;
mod portal_forms;
mod round_two;
mod rules;
mod workbench;
