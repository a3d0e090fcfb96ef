//! The prescription page (the audited, masked staff view is the `StaffViews` use case's), staff
//! notes, and cancelling on the patient's request; and the answer every action on a
//! prescription shares: back to its page, or the page again with why not.

use super::auth::AnyStaff;
use super::pages::{self, DecisionForm};
use super::respond::{
    CsrfForm, NO_SUCH_PRESCRIPTION, Params, PortalError, html, internal, mode_of, redirect,
};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rxbridge_app::intake::IntakeError;
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::StaffSession;
use rxbridge_app::staff_view::{DecisionOptions, ViewError, staff_text};

pub(super) async fn prescription(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response, PortalError> {
    let reason = q.get("reason").map(String::as_str);
    render(&state, &s, mode_of(&q), &id, reason, None, StatusCode::OK).await
}

/// Notes are events on the prescription's timeline.
pub(super) async fn add_note(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm,
) -> Response {
    let mode = mode_of(&q);
    let note = form.get("note").map(String::as_str).unwrap_or("");
    let done = state.portal.views.note(&s, mode, &id, note).await;
    after(&state, &s, mode, &id, done.map_err(view_error)).await
}

/// Any member of staff may cancel on the patient's request, with a reason.
pub(super) async fn cancel(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm,
) -> Response {
    let mode = mode_of(&q);
    let Some(reason) = form.get("reason").and_then(|r| staff_text(r, 500)) else {
        let why = "Cancelling needs a reason.".to_string();
        let refused = Err(PortalError::Again(StatusCode::UNPROCESSABLE_ENTITY, why));
        return after(&state, &s, mode, &id, refused).await;
    };
    let done = state
        .payments
        .cancel_by_staff(&s.staff.id, mode, &id, &reason)
        .await
        .map(|_| ())
        .map_err(cancel_error);
    after(&state, &s, mode, &id, done).await
}

fn cancel_error(e: IntakeError) -> PortalError {
    match e {
        IntakeError::NotFound => PortalError::NotFound(NO_SUCH_PRESCRIPTION),
        IntakeError::NotCancellable(st) => PortalError::Again(
            StatusCode::CONFLICT,
            format!("A prescription that is {st} cannot be cancelled."),
        ),
        IntakeError::Store(rxbridge_app::StoreError::Conflict) => PortalError::Again(
            StatusCode::CONFLICT,
            "The prescription changed meanwhile; check it and try again.".into(),
        ),
        e => internal(e),
    }
}

/// The answer to an action on a prescription: back to its page when it was done; the page
/// again, with the error shown, when the action was refused for a reason staff can fix.
pub(super) async fn after(
    state: &AppState,
    s: &StaffSession,
    mode: Mode,
    id: &str,
    done: Result<(), PortalError>,
) -> Response {
    match done {
        Ok(()) => redirect(&format!("/staff/prescriptions/{id}?mode={}", mode.as_str())),
        Err(PortalError::Again(status, why)) => {
            render(state, s, mode, id, None, Some(&why), status)
                .await
                .into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The prescription page as `s` may see it, answered with `status`.
async fn render(
    state: &AppState,
    s: &StaffSession,
    mode: Mode,
    id: &str,
    reason: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PortalError> {
    let page = state
        .portal
        .views
        .prescription(s, mode, id, reason)
        .await
        .map_err(view_error)?;
    let payment = page
        .payment
        .as_ref()
        .map(|p| pages::payment_panel(s, mode, &p.payment, p.link.as_deref()))
        .unwrap_or_default();
    let decide = page.decision.as_ref().map(|d| decision_form(s, d));
    let body = pages::prescription(
        s,
        mode,
        &page.record,
        &page.patient,
        &page.timeline,
        decide,
        error,
        payment,
    );
    Ok(html(status, body))
}

pub(super) fn view_error(e: ViewError) -> PortalError {
    match e {
        ViewError::NotFound => PortalError::NotFound(NO_SUCH_PRESCRIPTION),
        ViewError::Invalid(why) => PortalError::Again(StatusCode::UNPROCESSABLE_ENTITY, why),
        e => internal(e),
    }
}

/// The decision form's fields: the flags to acknowledge and, per amendable finding, the field
/// and what the pharmacist records.
fn decision_form<'a>(s: &'a StaffSession, d: &DecisionOptions) -> DecisionForm<'a> {
    use rxbridge_domain::compliance::{CD_QUANTITY_FIGURES_MISSING, CD_QUANTITY_WORDS_MISSPELT};
    let amendments = d.amendable.iter().map(|f| {
        let what = match f.code.as_str() {
            CD_QUANTITY_FIGURES_MISSING => "the quantity in figures you added",
            CD_QUANTITY_WORDS_MISSPELT => "the quantity in words as you corrected it",
            _ => "the quantity in words you added",
        };
        let item = f
            .item
            .map(|i| format!("Item {}: ", i + 1))
            .unwrap_or_default();
        let key = rxbridge_app::clinical::amendment_key(&f.code, f.item);
        (key, format!("{item}{what} (MDR 2001 reg 16(1A), recorded)"))
    });
    DecisionForm {
        csrf: &s.csrf_token,
        version: d.version,
        flags: d.flags.clone(),
        amendments: amendments.collect(),
    }
}
