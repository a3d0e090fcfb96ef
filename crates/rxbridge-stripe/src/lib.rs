//! The Stripe adapter of the payment-provider ports: the REST client that opens and expires
//! Checkout Sessions and refunds (`client`), Stripe's webhook signature scheme (`signature`),
//! and the reader that turns a signed webhook into the core's typed `ProviderEvent` (`events`).
//! Stripe's wire formats live here and nowhere else.

pub mod client;
pub mod events;
pub mod signature;

pub use client::{STRIPE_VERSION, StripeProvider, checkout_form};
pub use events::StripeEvents;
