//! The prescription page (the audited, masked staff view is the `StaffViews` use case's; the
//! layout is `check_page`'s), staff notes, and cancelling on the patient's request; and the
//! answer every action on a prescription shares: back to its page, or the page again with what
//! was typed and why not.

use super::auth::{AdminOnly, AnyStaff};
use super::check_page::{self, Again, Form};
use super::flash::{self, Flash, Flashed, Shown as KeptAnswer};
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
use rxbridge_app::staff_view::{ViewError, describe_actor, staff_text};

/// A form's fields as typed, in order (a name may repeat).
pub(super) type Fields = Vec<(String, String)>;

/// What a refused form is shown again with: which form and what was typed.
pub(super) struct Kept {
    pub form: Form,
    pub typed: Fields,
}

impl Kept {
    pub fn new(form: Form, typed: Fields) -> Self {
        Kept { form, typed }
    }
    fn from_params(form: Form, p: &Params) -> Self {
        let typed = p.iter().filter(|(n, _)| *n != "csrf");
        Kept::new(form, typed.map(|(n, v)| (n.clone(), v.clone())).collect())
    }
}

pub(super) async fn prescription(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    Flashed(flashed): Flashed,
) -> Result<Response, PortalError> {
    let reason = q.get("reason").map(String::as_str);
    let (status, why, kept) = match flashed {
        Some(Flash {
            status,
            shown: KeptAnswer::Form { form, why, typed },
        }) => match Form::parse(&form) {
            Some(form) => (status, why, Kept::new(form, typed)),
            None => (StatusCode::OK, None, Kept::new(Form::Decision, Vec::new())),
        },
        _ => (StatusCode::OK, None, Kept::new(Form::Decision, Vec::new())),
    };
    let why = why.as_deref();
    let shown = Shown {
        reason,
        why,
        kept: &kept,
    };
    render(&state, &s, mode_of(&q), &id, shown, status).await
}

/// The prescription page's address in `mode`, as its forms redirect to it.
pub(super) fn page_path(id: &str, mode: Mode) -> String {
    format!("/staff/prescriptions/{id}?mode={}", mode.as_str())
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
    let kept = Kept::from_params(Form::Note, &form);
    after(&state, &s, mode, &id, done.map_err(view_error), kept).await
}

/// The record's access log (administrators).
pub(super) async fn access_log(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response, PortalError> {
    let mode = mode_of(&q);
    let found = state.portal.views.access_log(&s, mode, &id).await;
    let (record, looks) = found.map_err(view_error)?;
    let staff = state.portal.staff.list().await.map_err(internal)?;
    let clinics = state.store.list_clinics().await.map_err(internal)?;
    let actor = |a: &str| describe_actor(a, &staff, &clinics);
    let page = check_page::access_page(&s, mode, &record, &looks, &actor);
    Ok(html(StatusCode::OK, page))
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
    let kept = Kept::from_params(Form::Cancel, &form);
    let Some(reason) = form.get("reason").and_then(|r| staff_text(r, 500)) else {
        let why = "Cancelling needs a reason.".to_string();
        let refused = Err(PortalError::Again(StatusCode::UNPROCESSABLE_ENTITY, why));
        return after(&state, &s, mode, &id, refused, kept).await;
    };
    let done = state
        .payments
        .cancel_by_staff(&s.staff.id, mode, &id, &reason)
        .await
        .map(|_| ())
        .map_err(cancel_error);
    after(&state, &s, mode, &id, done, kept).await
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
/// again, with what was typed and the error shown next to the form, when the action was
/// refused for a reason staff can fix.
pub(super) async fn after(
    state: &AppState,
    s: &StaffSession,
    mode: Mode,
    id: &str,
    done: Result<(), PortalError>,
    kept: Kept,
) -> Response {
    let why = match done {
        Ok(()) => return redirect(&page_path(id, mode)),
        Err(PortalError::Again(status, why)) => (status, Some(why)),
        Err(e) => return e.into_response(),
    };
    again(state, s, (mode, id), why, kept).await
}

/// The prescription page again with `kept` shown (and `why`, when it was refused): a redirect
/// to it carrying the answer, or the page itself when the answer is too large to carry.
pub(super) async fn again(
    state: &AppState,
    s: &StaffSession,
    (mode, id): (Mode, &str),
    (status, why): (StatusCode, Option<String>),
    kept: Kept,
) -> Response {
    let form = kept.form.as_str().to_string();
    let answer = KeptAnswer::Form {
        form,
        why: why.clone(),
        typed: kept.typed,
    };
    let to = page_path(id, mode);
    let typed = match flash::see_other(state, &flash::for_session(s), &to, status, answer) {
        Ok(r) => return r,
        Err(KeptAnswer::Form { typed, .. }) => typed,
        Err(_) => Vec::new(),
    };
    let kept = Kept::new(kept.form, typed);
    let shown = Shown {
        reason: None,
        why: why.as_deref(),
        kept: &kept,
    };
    render(state, s, mode, id, shown, status)
        .await
        .into_response()
}

/// How the page is shown: the reason a masked viewer gave, and a form shown again.
pub(super) struct Shown<'a> {
    pub reason: Option<&'a str>,
    pub why: Option<&'a str>,
    pub kept: &'a Kept,
}

/// The prescription page as `s` may see it, answered with `status`.
pub(super) async fn render(
    state: &AppState,
    s: &StaffSession,
    mode: Mode,
    id: &str,
    shown: Shown<'_>,
    status: StatusCode,
) -> Result<Response, PortalError> {
    let views = &state.portal.views;
    let page = views.prescription(s, mode, id, shown.reason).await;
    let page = page.map_err(view_error)?;
    let staff = state.portal.staff.list().await.map_err(internal)?;
    let clinics = state.store.list_clinics().await.map_err(internal)?;
    let again = Again {
        form: shown.kept.form,
        why: shown.why,
        typed: &shown.kept.typed,
        reason: shown.reason,
    };
    let actor = |a: &str| describe_actor(a, &staff, &clinics);
    let body = check_page::page(s, mode, &page, &again, &actor);
    Ok(html(status, body))
}

pub(super) fn view_error(e: ViewError) -> PortalError {
    match e {
        ViewError::NotFound => PortalError::NotFound(NO_SUCH_PRESCRIPTION),
        ViewError::Invalid(why) => PortalError::Again(StatusCode::UNPROCESSABLE_ENTITY, why),
        e => internal(e),
    }
}
