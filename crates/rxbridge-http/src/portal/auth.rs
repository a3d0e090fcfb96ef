//! Sessions from cookies, CSRF checks, and role extractors.

use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Redirect, Response};
use rxbridge_app::clinical::Pharmacist;
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::{Role, StaffSession};

/// `__Host-`: the browser takes it only with `Secure`, `Path=/` and no `Domain`, so neither a
/// sibling subdomain nor a plain-http page can plant or overwrite it (RFC 6265bis §4.1.3.2).
pub const SESSION_COOKIE: &str = "__Host-rxb_session";
pub const LOGIN_CSRF_COOKIE: &str = "__Host-rxb_login_csrf";

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// A staff cookie: always `Secure` (browsers accept it on `http://localhost` and
/// `http://127.0.0.1`, so a local demo works), `Path=/` as the `__Host-` prefix requires — the
/// cookie then also accompanies API requests, which ignore it — `HttpOnly`, `SameSite=Strict`.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>) -> String {
    let mut c = format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict");
    if let Some(a) = max_age {
        c.push_str(&format!("; Max-Age={a}"));
    }
    c
}

/// Constant-time comparison for tokens.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Why a staff page was refused.
pub enum Refusal {
    /// Off to sign in, keeping the data set the page was asked for.
    SignIn(Mode),
    ChangePassword(Mode),
    Forbidden(&'static str),
    Internal,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::SignIn(mode) => {
                Redirect::to(&super::respond::with_mode("/staff/login", mode)).into_response()
            }
            Refusal::ChangePassword(mode) => {
                Redirect::to(&super::respond::with_mode("/staff/password", mode)).into_response()
            }
            Refusal::Forbidden(why) => {
                super::respond::message(StatusCode::FORBIDDEN, "Not allowed", why)
            }
            Refusal::Internal => super::respond::message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The error was logged.",
            ),
        }
    }
}

/// The data set a request asks for (`mode=test` in its query; live otherwise).
/// Read as the pages read it (`Query<Params>`, then `mode_of`), so a sign-in never lands on
/// another data set than the page would have shown.
fn requested_mode(parts: &Parts) -> Mode {
    axum::extract::Query::<super::respond::Params>::try_from_uri(&parts.uri)
        .map_or(Mode::Live, |q| super::respond::mode_of(&q))
}

/// The signed-in session, also kept in the request's extensions for `CsrfForm`.
async fn session_from(parts: &mut Parts, state: &AppState) -> Result<StaffSession, Refusal> {
    let mode = requested_mode(parts);
    let token = cookie(&parts.headers, SESSION_COOKIE).ok_or(Refusal::SignIn(mode))?;
    match state.portal.staff.session(&token).await {
        Ok(Some(s)) => {
            parts.extensions.insert(s.clone());
            Ok(s)
        }
        Ok(None) => Err(Refusal::SignIn(mode)),
        Err(e) => {
            tracing::error!(error = ?e, "reading a staff session");
            Err(Refusal::Internal)
        }
    }
}

/// A signed-in member of staff who may still have to change their password.
pub struct SignedIn(pub StaffSession);

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Refusal;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        session_from(parts, state).await.map(SignedIn)
    }
}

/// Any signed-in member of staff with a permanent password.
pub struct AnyStaff(pub StaffSession);

impl FromRequestParts<AppState> for AnyStaff {
    type Rejection = Refusal;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let s = session_from(parts, state).await?;
        if s.staff.must_change_password {
            return Err(Refusal::ChangePassword(requested_mode(parts)));
        }
        Ok(AnyStaff(s))
    }
}

/// A pharmacist: the only caller that can make clinical decisions (support and admin get 403).
pub struct PharmacistOnly(pub StaffSession, pub Pharmacist);

impl FromRequestParts<AppState> for PharmacistOnly {
    type Rejection = Refusal;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let AnyStaff(s) = AnyStaff::from_request_parts(parts, state).await?;
        match (s.staff.role, s.staff.gphc.clone()) {
            (Role::Pharmacist, Some(gphc)) => {
                let p = Pharmacist {
                    staff_id: s.staff.id.clone(),
                    gphc,
                };
                Ok(PharmacistOnly(s, p))
            }
            _ => Err(Refusal::Forbidden(
                "Only a pharmacist can make clinical decisions.",
            )),
        }
    }
}

/// An administrator: manages staff and answers subject-access requests.
pub struct AdminOnly(pub StaffSession);

impl FromRequestParts<AppState> for AdminOnly {
    type Rejection = Refusal;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let AnyStaff(s) = AnyStaff::from_request_parts(parts, state).await?;
        if s.staff.role == Role::Admin {
            Ok(AdminOnly(s))
        } else {
            Err(Refusal::Forbidden("Only an administrator can do this."))
        }
    }
}

/// Finance staff (and administrators): payments, refunds and the month-end exports.
pub struct FinanceOnly(pub StaffSession);

impl FromRequestParts<AppState> for FinanceOnly {
    type Rejection = Refusal;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let AnyStaff(s) = AnyStaff::from_request_parts(parts, state).await?;
        if matches!(s.staff.role, Role::Finance | Role::Admin) {
            Ok(FinanceOnly(s))
        } else {
            Err(Refusal::Forbidden("Only finance staff can do this."))
        }
    }
}

/// Who may read the CD and POM registers: pharmacists and administrators.
pub struct RegisterReader(pub StaffSession);

impl FromRequestParts<AppState> for RegisterReader {
    type Rejection = Refusal;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refusal> {
        let AnyStaff(s) = AnyStaff::from_request_parts(parts, state).await?;
        if matches!(s.staff.role, Role::Pharmacist | Role::Admin) {
            Ok(RegisterReader(s))
        } else {
            Err(Refusal::Forbidden(
                "The registers are for pharmacists and administrators.",
            ))
        }
    }
}
