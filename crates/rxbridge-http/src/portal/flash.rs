//! Post/redirect/get. Every portal form answers `303 See Other` to a page; what that page must
//! show of the form's answer — a refusal with what was typed, the rejection's confirmation
//! step, a one-time password or signing secret — travels to it in a short-lived sealed cookie:
//!
//! - `__Host-rxb_flash`, `Secure; HttpOnly; SameSite=Strict; Path=/`, `Max-Age` 120 s, and an
//!   expiry inside the sealed value as well;
//! - sealed (AES-256-GCM, with a key derived from the patient-data key for this use alone:
//!   what was typed may be patient data, and it must not be readable or alterable on the
//!   client), bound by the associated data to the session (its CSRF token; before sign-in, the
//!   sign-in form's) and to the exact page it is for, so it opens nowhere else;
//! - shown once: when the page opened it, the portal's answer layer clears it
//!   (`respond::finish`), so a refresh shows the page as it now is and never submits the form
//!   again. (A copy of the cookie taken from the browser within its 120 s would show it again
//!   in the same session; the browser itself drops it.)
//! - Typed passwords are never put in it; a new account's one-time password is, sealed.
//!
//! Nothing is kept on the server, so it works the same on every store and on Lambda. A value
//! too large for a cookie (over 3 800 bytes sealed) is not kept: the caller answers the POST
//! with the page itself, as before.

use super::auth::{LOGIN_CSRF_COOKIE, cookie, set_cookie};
use super::prescription::Fields;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rxbridge_app::staff::StaffSession;
use serde::{Deserialize, Serialize};

pub const FLASH_COOKIE: &str = "__Host-rxb_flash";
/// How long a kept answer waits for its page.
const LIFETIME_SECS: i64 = 120;
/// Browsers keep cookies of up to 4 096 bytes, name included.
const MAX_VALUE: usize = 3800;

/// What the page a form redirects to shows of its answer.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shown {
    /// A form shown again: which form (the page's own name for it), why it was refused (none
    /// for a confirmation step), and what was typed into it.
    Form {
        form: String,
        why: Option<String>,
        typed: Fields,
    },
    /// A new account's one-time password.
    Created { email: String, password: String },
    /// A webhook destination's new signing secret.
    Secret { destination: String, secret: String },
}

impl Shown {
    /// A refused form.
    pub fn refused(form: &str, why: impl Into<String>, typed: Fields) -> Self {
        Shown::Form {
            form: form.to_string(),
            why: Some(why.into()),
            typed,
        }
    }
}

/// A kept answer, opened on its page: the status the page answers with (the refusal's 4xx, so
/// a refused form is still a refusal to a script following the redirect) and what it shows.
#[derive(Debug, Clone)]
pub struct Flash {
    pub status: StatusCode,
    pub shown: Shown,
}

/// A kept refusal's status, why and what was typed; 200 and nothing without one.
pub fn refusal(flashed: Option<Flash>) -> (StatusCode, Option<String>, Fields) {
    match flashed {
        Some(Flash {
            status,
            shown: Shown::Form { why, typed, .. },
        }) => (status, why, typed),
        _ => (StatusCode::OK, None, Vec::new()),
    }
}

#[derive(Serialize, Deserialize)]
struct Kept {
    status: u16,
    expires: i64,
    shown: Shown,
}

/// Who a kept answer belongs to: the signed-in session, or before sign-in the sign-in form.
fn binding(parts: &Parts) -> Option<String> {
    match parts.extensions.get::<StaffSession>() {
        Some(s) => Some(format!("session:{}", s.csrf_token)),
        None => cookie(&parts.headers, LOGIN_CSRF_COOKIE).map(|t| format!("sign-in:{t}")),
    }
}

fn context(binding: &str, to: &str) -> String {
    format!("rxbridge/portal-flash/v1\n{binding}\n{to}")
}

/// Off to `to` (a path and query, exactly as the page is asked for), where `shown` is shown
/// once with `status`. `binding` is `session:{csrf}` (`for_session`) or `sign-in:{csrf}`.
/// `Err(shown)` when it is too large to keep: answer the POST with the page itself.
pub fn see_other(
    state: &AppState,
    binding: &str,
    to: &str,
    status: StatusCode,
    shown: Shown,
) -> Result<Response, Shown> {
    let kept = Kept {
        status: status.as_u16(),
        expires: state.clock.now().as_second() + LIFETIME_SECS,
        shown,
    };
    let json = serde_json::to_vec(&kept).expect("a kept answer serialises");
    let sealed = state.portal.seal.seal(&context(binding, to), &json);
    let value = URL_SAFE_NO_PAD.encode(sealed);
    // Too large for a cookie, or an address no header can carry (`Redirect::to` would panic).
    if value.len() > MAX_VALUE || HeaderValue::from_str(to).is_err() {
        return Err(kept.shown);
    }
    let mut r = Redirect::to(to).into_response();
    let c = set_cookie(FLASH_COOKIE, &value, Some(LIFETIME_SECS));
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// The binding for a signed-in session's answers.
pub fn for_session(s: &StaffSession) -> String {
    format!("session:{}", s.csrf_token)
}

/// The kept answer for this page, if one came with the request and opens here. Put it after
/// the role extractor (which keeps the session it is bound to).
pub struct Flashed(pub Option<Flash>);

/// Set by `Flashed` when a kept answer opened on this request's page: the answer layer then
/// drops the cookie (and leaves it for its own page otherwise).
#[derive(Clone, Default)]
pub struct Opened(pub std::sync::Arc<std::sync::atomic::AtomicBool>);

impl FromRequestParts<AppState> for Flashed {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let flash = open(parts, state);
        if let (Some(_), Some(opened)) = (&flash, parts.extensions.get::<Opened>()) {
            opened.0.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Flashed(flash))
    }
}

fn open(parts: &Parts, state: &AppState) -> Option<Flash> {
    let value = cookie(&parts.headers, FLASH_COOKIE)?;
    let sealed = URL_SAFE_NO_PAD.decode(value.as_bytes()).ok()?;
    let to = parts.uri.path_and_query()?.as_str();
    let json = state
        .portal
        .seal
        .open(&context(&binding(parts)?, to), &sealed)
        .ok()?;
    let kept: Kept = serde_json::from_slice(&json).ok()?;
    if kept.expires < state.clock.now().as_second() {
        return None;
    }
    Some(Flash {
        status: StatusCode::from_u16(kept.status).ok()?,
        shown: kept.shown,
    })
}

/// The `Set-Cookie` value that drops a kept answer once its page was shown.
pub fn cleared() -> HeaderValue {
    HeaderValue::from_str(&set_cookie(FLASH_COOKIE, "", Some(0)))
        .expect("a fixed cookie is a valid header value")
}
