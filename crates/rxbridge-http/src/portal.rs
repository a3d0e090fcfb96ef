//! The staff portal: server-rendered HTML from the same binary (maud, checked at compile
//! time), usable without JavaScript. Sign-in, forced password change, search, worklist, the
//! prescription page and the pharmacist's decision.
//!
//! Security: session cookie `__Host-rxb_session` with `Secure; HttpOnly; SameSite=Strict;
//! Path=/` (always `Secure`: browsers keep it on `http://localhost` and `127.0.0.1` too);
//! every form carries the session's CSRF token (sign-in uses a double-submit cookie); role
//! checks are extractor types (`AnyStaff`, `PharmacistOnly`); every page showing patient data
//! appends an audit event; support staff see masked patient data unless they open the record
//! with a stated reason. Every form answers with a redirect (post/redirect/get; `flash`).

mod admin;
mod auth;
mod check_page;
mod decisions;
mod declare;
mod finance;
mod flash;
mod originals;
mod pages;
mod prescription;
mod registers;
mod respond;
mod routes;
mod search;
mod sign_in;
mod subject_access;

pub use routes::portal_routes;

use rxbridge_app::clinical::ClinicalCheck;
use rxbridge_app::originals::Originals;
use rxbridge_app::staff::StaffService;
use rxbridge_app::staff_view::StaffViews;
use rxbridge_app::webhook_admin::WebhookAdmin;
use std::sync::Arc;

/// What the portal needs beyond the clinic API's state.
#[derive(Clone)]
pub struct Portal {
    pub staff: Arc<StaffService>,
    /// What staff see of prescriptions, audited.
    pub views: Arc<StaffViews>,
    pub clinical: Arc<ClinicalCheck>,
    pub originals: Arc<Originals>,
    /// Webhook endpoints and dead letters (administrators).
    pub webhooks: Arc<WebhookAdmin>,
    /// Seals a form's answer between its POST and the page it redirects to: a key derived from
    /// the patient-data key for this use alone (what was typed may be patient data).
    pub seal: rxbridge_app::PatientVault,
    /// Served behind TLS: every response carries `Strict-Transport-Security`. (Cookies are
    /// `Secure` either way.)
    pub hsts: bool,
    /// Sign-in at an identity provider (Cognito on AWS). When set, it is the only way in:
    /// local passwords would bypass the provider's MFA.
    pub external: Option<Arc<dyn rxbridge_app::staff::ExternalSignIn>>,
}
