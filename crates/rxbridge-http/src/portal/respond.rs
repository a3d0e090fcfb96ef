//! What every portal handler shares: query parameters, HTML answers, `PortalError` (why a
//! request failed, as the page it gets), the `CsrfForm` extractor, report downloads, and the
//! layer every portal answer passes (`finish`: message pages in the request's data set, kept
//! form answers dropped once shown).

use super::auth::same;
use super::pages;
use crate::state::AppState;
use axum::extract::{Form, FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::Markup;
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::StaffSession;
use std::collections::HashMap;

pub(super) type Params = HashMap<String, String>;

/// The 404 text for a prescription id that is not in the chosen data set.
pub(super) const NO_SUCH_PRESCRIPTION: &str =
    "There is no prescription with this id in this data set.";

pub(super) fn mode_of(q: &Params) -> Mode {
    q.get("mode")
        .and_then(|m| Mode::parse(m))
        .unwrap_or(Mode::Live)
}

/// `path` with the data set chosen (live is the default, so only test is spelled out).
pub(super) fn with_mode(path: &str, mode: Mode) -> String {
    match mode {
        Mode::Test => format!("{path}?mode=test"),
        Mode::Live => path.to_string(),
    }
}

pub(super) fn html(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

/// Off to `to` (303 after a form, as `Redirect::to` answers).
pub(super) fn redirect(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `r` with its `Location` set to `to`.
pub(super) fn with_location(mut r: Response, to: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Why a portal request failed, as the page it is answered with.
#[derive(Debug)]
pub(super) enum PortalError {
    /// The form's CSRF token is missing or wrong: 403.
    Csrf,
    /// 404 with this text.
    NotFound(&'static str),
    /// A message page: status, title, text.
    Message(StatusCode, &'static str, String),
    /// A page already laid out.
    Page(StatusCode, Markup),
    /// 429 with `Retry-After` in seconds.
    RetryAfter(i64, Markup),
    /// The page the form came from, again, with this error shown (the handler that knows the
    /// page renders it; elsewhere it is a message page).
    Again(StatusCode, String),
    /// Logged when it is made; the page says only that it was.
    Internal,
}

/// A failure that is not the caller's: logged (never with patient data: the use cases' errors
/// carry none), answered 500.
pub(super) fn internal(e: impl std::fmt::Debug) -> PortalError {
    tracing::error!(error = ?e, "portal failure");
    PortalError::Internal
}

/// A message page (a title and a sentence) answered with `status`. The portal's answer layer
/// lays it out in the data set the request was for; the body here is the live one, for an
/// answer that does not pass that layer.
pub(super) fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let mut r = html(status, pages::message(title, text, Mode::Live));
    r.extensions_mut().insert(MessagePage {
        title: title.to_string(),
        text: text.to_string(),
    });
    r
}

/// A message page still to be laid out in the request's data set.
#[derive(Clone)]
struct MessagePage {
    title: String,
    text: String,
}

/// The layer every portal answer passes: a message page is laid out in the data set the
/// request asked for (its banner and title say sandbox when it was), and a kept form answer
/// (`flash`) is dropped once the page it was for has opened it.
pub(super) async fn finish(mut req: Request, next: Next) -> Response {
    let uri = req.uri().clone();
    let opened = super::flash::Opened::default();
    req.extensions_mut().insert(opened.clone());
    let mut r = next.run(req).await;
    if let Some(m) = r.extensions_mut().remove::<MessagePage>() {
        // The data set is read only for a message page (the handlers read their own).
        let mode =
            axum::extract::Query::<Params>::try_from_uri(&uri).map_or(Mode::Live, |q| mode_of(&q));
        let (parts, _) = r.into_parts();
        let body = pages::message(&m.title, &m.text, mode).into_string();
        r = Response::from_parts(parts, axum::body::Body::from(body));
        r.headers_mut().remove(header::CONTENT_LENGTH);
    }
    let keeps_one = r.headers().get_all(header::SET_COOKIE).iter().any(|c| {
        c.as_bytes()
            .starts_with(super::flash::FLASH_COOKIE.as_bytes())
    });
    if opened.0.load(std::sync::atomic::Ordering::Relaxed) && !keeps_one {
        r.headers_mut()
            .append(header::SET_COOKIE, super::flash::cleared());
    }
    r
}

impl IntoResponse for PortalError {
    fn into_response(self) -> Response {
        match self {
            PortalError::Csrf => message(
                StatusCode::FORBIDDEN,
                "Form expired",
                "The form's security token is missing or wrong. Go back, reload the page and try again.",
            ),
            PortalError::NotFound(why) => message(StatusCode::NOT_FOUND, "Not found", why),
            PortalError::Message(status, title, text) => message(status, title, &text),
            PortalError::Page(status, page) => html(status, page),
            PortalError::RetryAfter(secs, page) => {
                let mut r = html(StatusCode::TOO_MANY_REQUESTS, page);
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            PortalError::Again(status, text) => message(status, "Not done", &text),
            PortalError::Internal => message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The error was logged.",
            ),
        }
    }
}

/// A form whose `csrf` field is checked against the signed-in session's token before the
/// handler runs (403 otherwise). Put it after the role extractor, which keeps the session for it.
pub(super) struct CsrfForm<T = Params>(pub T);

/// A form body that carries a CSRF token.
pub(super) trait CsrfToken {
    fn csrf(&self) -> Option<&str>;
}

impl CsrfToken for Params {
    fn csrf(&self) -> Option<&str> {
        self.get("csrf").map(String::as_str)
    }
}

impl CsrfToken for Vec<(String, String)> {
    fn csrf(&self) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n == "csrf")
            .map(|(_, v)| v.as_str())
    }
}

impl<T> FromRequest<AppState> for CsrfForm<T>
where
    T: serde::de::DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;
    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let session = req.extensions().get::<StaffSession>().cloned();
        let Form(form) = Form::<T>::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        match (session, form.csrf()) {
            (Some(s), Some(t)) if same(t, &s.csrf_token) => Ok(CsrfForm(form)),
            _ => Err(PortalError::Csrf.into_response()),
        }
    }
}

/// A report as a downloaded file: printable PDF or CSV, named `{stem}.pdf|csv`.
pub(super) fn report_download(
    report: &rxbridge_app::finance::Report,
    pdf: bool,
    stem: &str,
) -> Response {
    let (bytes, ctype, ext) = if pdf {
        (rxbridge_export::to_pdf(report), "application/pdf", "pdf")
    } else {
        (
            rxbridge_export::to_csv(report),
            "text/csv; charset=utf-8",
            "csv",
        )
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{stem}.{ext}\""),
            ),
        ],
        bytes,
    )
        .into_response()
}
