//! Signing in and out: local passwords, the identity provider's redirect and callback, and the
//! forced password change.

use super::auth::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, SignedIn, cookie, same, set_cookie};
use super::flash::{self, Flashed, Shown};
use super::pages;
use super::respond::{CsrfForm, Params, PortalError, html, internal, mode_of, redirect, with_mode};
use crate::state::AppState;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::{ExternalSignIn, StaffError};
use std::sync::Arc;

fn random_csrf() -> String {
    uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string()
}

/// `r` with a `Set-Cookie` header added.
fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Off to `to` with the new session's cookie, clearing `spent` (the sign-in's own cookie).
fn signed_in(to: &str, token: &str, spent: String) -> Response {
    let r = with_cookie(redirect(to), &set_cookie(SESSION_COOKIE, token, None));
    with_cookie(r, &spent)
}

fn external_label(state: &AppState) -> Option<String> {
    state
        .portal
        .external
        .as_ref()
        .map(|e| e.label().to_string())
}

pub(super) async fn login_page(
    State(state): State<AppState>,
    Query(q): Query<Params>,
    Flashed(flashed): Flashed,
) -> Response {
    let csrf = random_csrf();
    let external = external_label(&state);
    let (status, why, typed) = flash::refusal(flashed);
    let email = typed
        .iter()
        .find(|(n, _)| n == "email")
        .map(|(_, v)| v.as_str());
    let shown = (why.as_deref(), email);
    let page = pages::login_page(&csrf, shown, external.as_deref(), mode_of(&q));
    with_cookie(
        html(status, page),
        &set_cookie(LOGIN_CSRF_COOKIE, &csrf, Some(600)),
    )
}

/// Sign-in with a password; the form's token is checked against the sign-in's own cookie
/// (double submit: there is no session yet).
pub(super) async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<crate::ClientAddr>>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Result<Response, PortalError> {
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let given = form.get("csrf").map(String::as_str).unwrap_or_default();
    if expected.is_empty() || !same(&expected, given) {
        return Err(PortalError::Csrf);
    }
    if let Some(label) = external_label(&state) {
        let why = "Passwords are not accepted here: sign in with the link below.";
        let page = pages::login_page(&expected, (Some(why), None), Some(&label), mode_of(&form));
        return Err(PortalError::Page(StatusCode::FORBIDDEN, page));
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let client = client.map(|axum::Extension(crate::ClientAddr(ip))| ip);
    let staff = &state.portal.staff;
    let signed = staff
        .sign_in_from(client, field("email"), field("password"))
        .await;
    let mode = mode_of(&form);
    if let Err(StaffError::InvalidCredentials) = signed {
        let typed = vec![("email".to_string(), field("email").to_string())];
        let shown = Shown::refused("sign_in", WRONG_PASSWORD, typed);
        let (binding, to) = (
            format!("sign-in:{expected}"),
            with_mode("/staff/login", mode),
        );
        let kept = flash::see_other(&state, &binding, &to, StatusCode::UNAUTHORIZED, shown);
        if let Ok(r) = kept {
            return Ok(r);
        }
    }
    let s = signed.map_err(|e| login_error(&state, &expected, e, mode))?;
    let first = s.session.staff.must_change_password;
    let to = if first { "/staff/password" } else { "/staff" };
    let spent = set_cookie(LOGIN_CSRF_COOKIE, "", Some(0));
    Ok(signed_in(&with_mode(to, mode), &s.token, spent))
}

fn login_error(state: &AppState, csrf: &str, e: StaffError, mode: Mode) -> PortalError {
    match e {
        StaffError::InvalidCredentials => PortalError::Page(
            StatusCode::UNAUTHORIZED,
            pages::login(csrf, Some(WRONG_PASSWORD), mode),
        ),
        StaffError::Locked(until) => {
            let why = format!(
                "Too many failed attempts. Try again after {}.",
                until.strftime("%H:%M:%S UTC")
            );
            let secs = until.duration_since(state.clock.now()).as_secs().max(1);
            PortalError::RetryAfter(secs, pages::login(csrf, Some(&why), mode))
        }
        e => internal(e),
    }
}

const WRONG_PASSWORD: &str = "The email or password is wrong.";

/// The cookie holding the OAuth `state` and the PKCE verifier between the redirect to the
/// provider and its callback. `SameSite=Lax`: the callback is a top-level navigation from the
/// provider's site, which a `Strict` cookie would not accompany.
const OAUTH_COOKIE: &str = "__Host-rxb_oauth";

fn oauth_cookie(value: &str, max_age: i64) -> String {
    set_cookie(OAUTH_COOKIE, value, Some(max_age)).replace("SameSite=Strict", "SameSite=Lax")
}

/// To the provider; the cookie keeps the data set asked for, the `state` and the PKCE
/// verifier (`mode.state.verifier`: the verifier may itself hold dots, so it comes last).
pub(super) async fn external_start(
    State(state): State<AppState>,
    Query(q): Query<Params>,
) -> Response {
    let Some(external) = state.portal.external.clone() else {
        return redirect("/staff/login");
    };
    let oauth_state = random_csrf();
    let verifier = rxbridge_app::staff::pkce_verifier();
    let challenge = rxbridge_app::staff::pkce_challenge(&verifier);
    let url = external.authorize_url(&oauth_state, &challenge);
    let kept = format!("{}.{oauth_state}.{verifier}", mode_of(&q).as_str());
    with_cookie(redirect(&url), &oauth_cookie(&kept, 600))
}

pub(super) async fn external_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let Some(external) = state.portal.external.clone() else {
        return redirect("/staff/login");
    };
    let kept = cookie(&headers, OAUTH_COOKIE).unwrap_or_default();
    let (mode, kept) = kept.split_once('.').unwrap_or(("", ""));
    let mode = Mode::parse(mode).unwrap_or(Mode::Live);
    let (expected_state, verifier) = kept.split_once('.').unwrap_or(("", ""));
    let given_state = q.get("state").map(String::as_str).unwrap_or_default();
    if expected_state.is_empty() || !same(expected_state, given_state) {
        return refuse(
            &external,
            "The sign-in expired or did not start here. Try again.",
        );
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return refuse(&external, "The identity provider did not sign you in.");
    };
    match external.complete(code, verifier).await {
        Ok(s) => signed_in(&with_mode("/staff", mode), &s.token, oauth_cookie("", 0)),
        Err(StaffError::InvalidCredentials) => {
            refuse(&external, "The identity provider's answer was refused.")
        }
        Err(StaffError::Invalid(why)) => refuse(&external, &why),
        Err(e) => internal(e).into_response(),
    }
}

/// The sign-in page again (401) with why the provider's sign-in did not complete.
fn refuse(external: &Arc<dyn ExternalSignIn>, why: &str) -> Response {
    let page = pages::login_page(
        &random_csrf(),
        (Some(why), None),
        Some(external.label()),
        Mode::Live,
    );
    with_cookie(html(StatusCode::UNAUTHORIZED, page), &oauth_cookie("", 0))
}

pub(super) async fn logout(
    State(state): State<AppState>,
    SignedIn(s): SignedIn,
    CsrfForm(_): CsrfForm,
) -> Result<Response, PortalError> {
    state.portal.staff.sign_out(&s).await.map_err(internal)?;
    Ok(with_cookie(
        redirect("/staff/login"),
        &set_cookie(SESSION_COOKIE, "", Some(0)),
    ))
}

pub(super) async fn password_page(
    SignedIn(s): SignedIn,
    Query(q): Query<Params>,
    Flashed(flashed): Flashed,
) -> Response {
    let (status, why, _) = flash::refusal(flashed);
    html(status, pages::password(&s, why.as_deref(), mode_of(&q)))
}

pub(super) async fn change_password(
    State(state): State<AppState>,
    SignedIn(s): SignedIn,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm,
) -> Result<Response, PortalError> {
    let mode = mode_of(&q);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    // Passwords are never kept, not even sealed: only why.
    let refused = |why: &str| {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        let (to, shown) = (
            with_mode("/staff/password", mode),
            Shown::refused("password", why, Vec::new()),
        );
        flash::see_other(&state, &flash::for_session(&s), &to, status, shown).map_err(|_| {
            let page = pages::password(&s, Some(why), mode);
            PortalError::Page(status, page)
        })
    };
    match state
        .portal
        .staff
        .change_password(&s, field("current"), field("new"))
        .await
    {
        Ok(()) => Ok(redirect(&with_mode("/staff", mode))),
        Err(StaffError::InvalidCredentials) => refused("The current password is wrong."),
        Err(StaffError::Invalid(m)) => refused(&m),
        Err(e) => Err(internal(e)),
    }
}
