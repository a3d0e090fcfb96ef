//! Money end to end: the real server with a controllable clock; the sandbox
//! checkout; Stripe against a local stand-in that checks every request Stripe would receive;
//! webhook signatures; the sweep; refunds; the month-end exports; SMTP against a stand-in.

mod anchors;
mod bench;
mod emails;
mod eps;
mod exports;
mod fulfilment;
mod harness;
mod sandbox;
mod sealed;
mod smtp;
mod stripe;
mod sweep;
mod tamper;
mod webhook_schemas;
mod webhooks;
