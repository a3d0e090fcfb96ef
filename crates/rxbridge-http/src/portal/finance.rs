//! Payments and finance: resending a payment link, the month's figures and their exports.

use super::auth::AnyStaff;
use super::pages;
use super::respond::{Params, csrf_ok, forbidden_csrf, html, internal, mode_of, report_download};
use crate::state::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

/// Email the payment link again (any staff member who can see the record unmasked).
pub(super) async fn resend_link(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    Form(form): Form<Params>,
) -> Response {
    let mode = mode_of(&q);
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(pay) = &state.payments else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Payments are not enabled."),
        );
    };
    let p = match pay.get(&id).await {
        Ok(p) if p.mode == mode => p,
        Ok(_) | Err(rxbridge_app::payments::PaymentError::NotFound) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message("Not found", "There is no such payment in this data set."),
            );
        }
        Err(e) => return internal(e),
    };
    match pay
        .send_link(
            &p.id,
            rxbridge_app::payments::LinkMessage::Resend,
            &format!("staff:{}", s.staff.id),
        )
        .await
    {
        Ok(()) => Redirect::to(&format!(
            "/staff/prescriptions/{}?mode={}",
            p.prescription_id,
            mode.as_str()
        ))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "resending a payment link failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::message(
                    "Not sent",
                    "The email could not be sent just now; try again in a few minutes.",
                ),
            )
        }
    }
}

fn month_param(q: &Params, now: jiff::Timestamp) -> Result<rxbridge_app::finance::Month, String> {
    match q.get("month").map(String::as_str) {
        Some(m) if !m.is_empty() => rxbridge_app::finance::Month::parse(m),
        _ => {
            let d = rxbridge_domain::dates::london_date(now);
            rxbridge_app::finance::Month::parse(&format!("{:04}-{:02}", d.year(), d.month()))
        }
    }
}

pub(super) async fn finance_page(
    State(state): State<AppState>,
    crate::portal::auth::FinanceOnly(s): crate::portal::auth::FinanceOnly,
    Query(q): Query<Params>,
) -> Response {
    let mode = mode_of(&q);
    let Some(fin) = &state.finance else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Finance is not enabled."),
        );
    };
    let month = match month_param(&q, state.clock.now()) {
        Ok(m) => m,
        Err(e) => {
            let raw = q.get("month").cloned().unwrap_or_default();
            return html(
                StatusCode::BAD_REQUEST,
                pages::finance(&s, mode, &raw, None, Some(&e)),
            );
        }
    };
    match fin
        .report(
            rxbridge_app::finance::ExportKind::Payments,
            mode,
            month,
            &format!("staff:{}", s.staff.id),
            &|_, _| {},
        )
        .await
    {
        Ok(r) => html(
            StatusCode::OK,
            pages::finance(&s, mode, &month.to_string(), Some(&r), None),
        ),
        Err(e) => internal(e),
    }
}

pub(super) async fn finance_export(
    State(state): State<AppState>,
    crate::portal::auth::FinanceOnly(s): crate::portal::auth::FinanceOnly,
    Path(file): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let mode = mode_of(&q);
    let Some(fin) = &state.finance else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Finance is not enabled."),
        );
    };
    let parsed = file
        .rsplit_once('.')
        .and_then(|(k, ext)| Some((rxbridge_app::finance::ExportKind::parse(k)?, ext)))
        .filter(|(_, ext)| matches!(*ext, "csv" | "pdf"));
    let Some((kind, ext)) = parsed else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "No such export."),
        );
    };
    let month = match month_param(&q, state.clock.now()) {
        Ok(m) => m,
        Err(e) => return html(StatusCode::BAD_REQUEST, pages::message("Bad month", &e)),
    };
    let report = match fin
        .report(
            kind,
            mode,
            month,
            &format!("staff:{}", s.staff.id),
            &|_, _| {},
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    report_download(
        &report,
        ext == "pdf",
        &format!("{}-{}-{}", kind.as_str(), month, mode.as_str()),
    )
}
