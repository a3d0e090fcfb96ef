//! Payments and finance: resending a payment link, the month's figures and their exports.

use super::auth::{AnyStaff, FinanceOnly};
use super::check_page::Form;
use super::pages;
use super::prescription::{Kept, again, page_path};
use super::respond::{
    CsrfForm, Params, PortalError, html, internal, mode_of, redirect, report_download,
};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rxbridge_app::finance::{ExportKind, Month};
use rxbridge_app::payments::{LinkMessage, PaymentError};

type Page = Result<Response, PortalError>;

const NO_SUCH_PAYMENT: &str = "There is no such payment in this data set.";

/// Email the payment link again (any staff member who can see the record unmasked).
pub(super) async fn resend_link(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    CsrfForm(_): CsrfForm,
) -> Page {
    let mode = mode_of(&q);
    let pay = &state.payments;
    let p = match pay.get(&id).await {
        Ok(p) if p.mode == mode => p,
        Ok(_) | Err(PaymentError::NotFound) => return Err(PortalError::NotFound(NO_SUCH_PAYMENT)),
        Err(e) => return Err(internal(e)),
    };
    let actor = format!("staff:{}", s.staff.id);
    let rx = &p.prescription_id;
    if let Err(e) = pay.send_link(&p.id, LinkMessage::Resend, &actor).await {
        tracing::warn!(error = %e, "resending a payment link failed");
        let why = "The payment link was not sent: the email could not be sent just now; try again in a few minutes.";
        let refused = (StatusCode::SERVICE_UNAVAILABLE, Some(why.to_string()));
        let kept = Kept::new(Form::Payment, Vec::new());
        return Ok(again(&state, &s, (mode, rx), refused, kept).await);
    }
    Ok(redirect(&page_path(rx, mode)))
}

/// The `month` parameter, or the current month in London.
fn month_param(q: &Params, now: jiff::Timestamp) -> Result<Month, String> {
    match q.get("month").map(String::as_str) {
        Some(m) if !m.is_empty() => Month::parse(m),
        _ => {
            let d = rxbridge_domain::dates::london_date(now);
            Month::parse(&format!("{:04}-{:02}", d.year(), d.month()))
        }
    }
}

pub(super) async fn finance_page(
    State(state): State<AppState>,
    FinanceOnly(s): FinanceOnly,
    Query(q): Query<Params>,
) -> Page {
    let mode = mode_of(&q);
    let month = month_param(&q, state.clock.now()).map_err(|e| {
        let raw = q.get("month").cloned().unwrap_or_default();
        PortalError::Page(
            StatusCode::BAD_REQUEST,
            pages::finance(&s, mode, &raw, None, Some(&e)),
        )
    })?;
    let actor = format!("staff:{}", s.staff.id);
    let report = state
        .finance
        .report(ExportKind::Payments, mode, month, &actor, &|_, _| {})
        .await;
    let r = report.map_err(internal)?;
    Ok(html(
        StatusCode::OK,
        pages::finance(&s, mode, &month.to_string(), Some(&r), None),
    ))
}

/// One month's export as `{kind}.csv` or `{kind}.pdf`.
pub(super) async fn finance_export(
    State(state): State<AppState>,
    FinanceOnly(s): FinanceOnly,
    Path(file): Path<String>,
    Query(q): Query<Params>,
) -> Page {
    let mode = mode_of(&q);
    let parsed = file
        .rsplit_once('.')
        .and_then(|(k, ext)| Some((ExportKind::parse(k)?, ext)))
        .filter(|(_, ext)| matches!(*ext, "csv" | "pdf"));
    let (kind, ext) = parsed.ok_or(PortalError::NotFound("No such export."))?;
    let month = month_param(&q, state.clock.now())
        .map_err(|e| PortalError::Message(StatusCode::BAD_REQUEST, "Bad month", e))?;
    let actor = format!("staff:{}", s.staff.id);
    let report = state
        .finance
        .report(kind, mode, month, &actor, &|_, _| {})
        .await;
    let stem = format!("{}-{}-{}", kind.as_str(), month, mode.as_str());
    Ok(report_download(
        &report.map_err(internal)?,
        ext == "pdf",
        &stem,
    ))
}
