//! What every portal handler shares: query parameters, HTML answers, the CSRF check, the
//! staff audit event, and report downloads.

use super::auth::same;
use super::pages;
use crate::state::AppState;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::Markup;
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::StaffSession;
use std::collections::HashMap;

pub(super) type Params = HashMap<String, String>;

pub(super) fn mode_of(q: &Params) -> Mode {
    q.get("mode")
        .and_then(|m| Mode::parse(m))
        .unwrap_or(Mode::Live)
}

pub(super) fn html(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

pub(super) fn forbidden_csrf() -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::message(
            "Form expired",
            "The form's security token is missing or wrong. Go back, reload the page and try again.",
        ),
    )
}

pub(super) fn internal(e: impl std::fmt::Debug) -> Response {
    tracing::error!(error = ?e, "portal failure");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message("Something went wrong", "The error was logged."),
    )
}

pub(super) fn csrf_ok(s: &StaffSession, form: &Params) -> bool {
    form.get("csrf").is_some_and(|t| same(t, &s.csrf_token))
}

pub(super) async fn audit(
    state: &AppState,
    s: &StaffSession,
    kind: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), Response> {
    state
        .store
        .record_event(NewEvent {
            at: state.clock.now(),
            kind: kind.into(),
            actor: format!("staff:{}", s.staff.id),
            subject: subject.into(),
            detail,
        })
        .await
        .map_err(internal)
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
