//! Signing in and out: local passwords, the identity provider's redirect and callback, and the
//! forced password change.

use super::auth::{LOGIN_CSRF_COOKIE, SESSION_COOKIE, SignedIn, cookie, same, set_cookie};
use super::pages;
use super::respond::{Params, csrf_ok, forbidden_csrf, html, internal};
use crate::state::AppState;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use rxbridge_app::staff::StaffError;

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
    let r = with_cookie(
        Redirect::to(to).into_response(),
        &set_cookie(SESSION_COOKIE, token, None),
    );
    with_cookie(r, &spent)
}

fn external_label(state: &AppState) -> Option<String> {
    state
        .portal
        .as_ref()
        .and_then(|p| p.external.as_ref())
        .map(|e| e.label().to_string())
}

pub(super) async fn login_page(State(state): State<AppState>) -> Response {
    let csrf = random_csrf();
    with_cookie(
        html(
            StatusCode::OK,
            pages::login_page(&csrf, None, external_label(&state).as_deref()),
        ),
        &set_cookie(LOGIN_CSRF_COOKIE, &csrf, Some(600)),
    )
}

pub(super) async fn login(
    State(state): State<AppState>,
    client: Option<axum::Extension<crate::ClientAddr>>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let given = form.get("csrf").cloned().unwrap_or_default();
    if expected.is_empty() || !same(&expected, &given) {
        return forbidden_csrf();
    }
    if let Some(label) = external_label(&state) {
        return html(
            StatusCode::FORBIDDEN,
            pages::login_page(
                &expected,
                Some("Passwords are not accepted here: sign in with the link below."),
                Some(&label),
            ),
        );
    }
    let (email, password) = (
        form.get("email").cloned().unwrap_or_default(),
        form.get("password").cloned().unwrap_or_default(),
    );
    let client = client.map(|axum::Extension(crate::ClientAddr(ip))| ip);
    match portal.staff.sign_in_from(client, &email, &password).await {
        Ok(s) => {
            let to = if s.session.staff.must_change_password {
                "/staff/password"
            } else {
                "/staff"
            };
            signed_in(to, &s.token, set_cookie(LOGIN_CSRF_COOKIE, "", Some(0)))
        }
        Err(StaffError::InvalidCredentials) => html(
            StatusCode::UNAUTHORIZED,
            pages::login(&expected, Some("The email or password is wrong.")),
        ),
        Err(StaffError::Locked(until)) => {
            let mut r = html(
                StatusCode::TOO_MANY_REQUESTS,
                pages::login(
                    &expected,
                    Some(&format!(
                        "Too many failed attempts. Try again after {}.",
                        until.strftime("%H:%M:%S UTC")
                    )),
                ),
            );
            let secs = until.duration_since(state.clock.now()).as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(e) => internal(e),
    }
}

/// The cookie holding the OAuth `state` and the PKCE verifier between the redirect to the
/// provider and its callback. `SameSite=Lax`: the callback is a top-level navigation from the
/// provider's site, which a `Strict` cookie would not accompany.
const OAUTH_COOKIE: &str = "__Host-rxb_oauth";

fn oauth_cookie(value: &str, max_age: i64) -> String {
    set_cookie(OAUTH_COOKIE, value, Some(max_age)).replace("SameSite=Strict", "SameSite=Lax")
}

pub(super) async fn external_start(State(state): State<AppState>) -> Response {
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let Some(external) = portal.external.clone() else {
        return Redirect::to("/staff/login").into_response();
    };
    let oauth_state = random_csrf();
    let verifier = rxbridge_app::staff::pkce_verifier();
    let url = external.authorize_url(
        &oauth_state,
        &rxbridge_app::staff::pkce_challenge(&verifier),
    );
    with_cookie(
        Redirect::to(&url).into_response(),
        &oauth_cookie(&format!("{oauth_state}.{verifier}"), 600),
    )
}

pub(super) async fn external_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let Some(external) = portal.external.clone() else {
        return Redirect::to("/staff/login").into_response();
    };
    let refuse = |why: &str| {
        with_cookie(
            html(
                StatusCode::UNAUTHORIZED,
                pages::login_page(&random_csrf(), Some(why), Some(external.label())),
            ),
            &oauth_cookie("", 0),
        )
    };
    let kept = cookie(&headers, OAUTH_COOKIE).unwrap_or_default();
    let (expected_state, verifier) = kept.split_once('.').unwrap_or(("", ""));
    let given_state = q.get("state").map(String::as_str).unwrap_or_default();
    if expected_state.is_empty() || !same(expected_state, given_state) {
        return refuse("The sign-in expired or did not start here. Try again.");
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return refuse("The identity provider did not sign you in.");
    };
    match external.complete(code, verifier).await {
        Ok(s) => signed_in("/staff", &s.token, oauth_cookie("", 0)),
        Err(StaffError::InvalidCredentials) => {
            refuse("The identity provider's answer was refused.")
        }
        Err(StaffError::Invalid(why)) => refuse(&why),
        Err(e) => internal(e),
    }
}

pub(super) async fn logout(
    State(state): State<AppState>,
    SignedIn(s): SignedIn,
    Form(form): Form<Params>,
) -> Response {
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    if let Err(e) = portal.staff.sign_out(&s).await {
        return internal(e);
    }
    with_cookie(
        Redirect::to("/staff/login").into_response(),
        &set_cookie(SESSION_COOKIE, "", Some(0)),
    )
}

pub(super) async fn password_page(SignedIn(s): SignedIn) -> Response {
    html(StatusCode::OK, pages::password(&s, None))
}

pub(super) async fn change_password(
    State(state): State<AppState>,
    SignedIn(s): SignedIn,
    Form(form): Form<Params>,
) -> Response {
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let (cur, new) = (
        form.get("current").cloned().unwrap_or_default(),
        form.get("new").cloned().unwrap_or_default(),
    );
    match portal.staff.change_password(&s, &cur, &new).await {
        Ok(()) => Redirect::to("/staff").into_response(),
        Err(StaffError::InvalidCredentials) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::password(&s, Some("The current password is wrong.")),
        ),
        Err(StaffError::Invalid(m)) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::password(&s, Some(&m)),
        ),
        Err(e) => internal(e),
    }
}
