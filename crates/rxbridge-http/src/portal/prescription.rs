//! The prescription page (audited, masked for support staff unless they state a reason), staff
//! notes, and cancelling on the patient's request.

use super::auth::AnyStaff;
use super::pages::{self, DecisionForm};
use super::respond::{Params, audit, csrf_ok, forbidden_csrf, html, internal, mode_of};
use super::search::patient_panel;
use crate::state::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rxbridge_app::clinical::{AMENDABLE, amendment_key};
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::{Role, StaffSession};
use rxbridge_domain::compliance::Severity;
use rxbridge_domain::lifecycle::Status;

pub(super) async fn render_prescription(
    state: &AppState,
    s: &StaffSession,
    mode: Mode,
    id: &str,
    reason: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let rec = match state.store.get_prescription_for_staff(mode, id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message(
                    "Not found",
                    "There is no prescription with this id in this data set.",
                ),
            );
        }
        Err(e) => return internal(e),
    };
    let rx = match state.intake.open(&rec) {
        Ok(rx) => rx,
        Err(e) => return internal(e),
    };
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(200).collect::<String>());
    // Pharmacists and admins see the record in full; support sees it masked unless they state why.
    let masked = matches!(s.staff.role, Role::Support | Role::Finance) && reason.is_none();
    if let Err(r) = audit(
        state,
        s,
        "staff.viewed_prescription",
        id,
        serde_json::json!({ "masked": masked, "reason": reason, "mode": mode.as_str() }),
    )
    .await
    {
        return r;
    }
    let timeline = match state.store.timeline(id).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let decide = (s.staff.role == Role::Pharmacist
        && matches!(rec.status, Status::AwaitingClinicalCheck | Status::OnHold))
    .then(|| DecisionForm {
        csrf: &s.csrf_token,
        version: rec.version,
        flags: rec
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Flag)
            .map(|f| f.code.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        amendments: rec
            .findings
            .iter()
            .filter(|f| AMENDABLE.contains(&f.code.as_str()))
            .map(|f| {
                let what = match f.code.as_str() {
                    rxbridge_domain::compliance::CD_QUANTITY_FIGURES_MISSING => {
                        "the quantity in figures you added"
                    }
                    rxbridge_domain::compliance::CD_QUANTITY_WORDS_MISSPELT => {
                        "the quantity in words as you corrected it"
                    }
                    _ => "the quantity in words you added",
                };
                let item = f
                    .item
                    .map(|i| format!("Item {}: ", i + 1))
                    .unwrap_or_default();
                (
                    amendment_key(&f.code, f.item),
                    format!("{item}{what} (MDR 2001 reg 16(1A), recorded)"),
                )
            })
            .collect(),
    });
    let payment = match &state.payments {
        Some(pay) => match pay.for_prescription(id).await {
            Ok(Some(p)) => {
                let link = (p.status == rxbridge_app::payments::PaymentStatus::AwaitingPayment
                    && !masked)
                    .then(|| pay.link_for(&p.id));
                pages::payment_panel(s, mode, &p, link.as_deref())
            }
            Ok(None) => maud::html! {},
            Err(e) => return internal(e),
        },
        None => maud::html! {},
    };
    html(
        status,
        pages::prescription(
            s,
            mode,
            &rec,
            &patient_panel(&rx, masked),
            &timeline,
            decide,
            error,
            payment,
        ),
    )
}

pub(super) async fn prescription(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    render_prescription(
        &state,
        &s,
        mode_of(&q),
        &id,
        q.get("reason").map(String::as_str),
        None,
        StatusCode::OK,
    )
    .await
}

fn form_text(form: &Params, key: &str, max: usize) -> Option<String> {
    form.get(key).map(|t| t.trim().to_string()).filter(|t| {
        !t.is_empty()
            && t.chars().count() <= max
            && !t.chars().any(|c| c.is_control() && c != '\n' && c != '\r')
    })
}

/// Notes are events on the prescription's timeline.
pub(super) async fn add_note(
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
    match state.store.get_prescription_for_staff(mode, &id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message(
                    "Not found",
                    "There is no prescription with this id in this data set.",
                ),
            );
        }
        Err(e) => return internal(e),
    }
    let Some(note) = form_text(&form, "note", 2000) else {
        return render_prescription(
            &state,
            &s,
            mode,
            &id,
            None,
            Some("A note needs 1 to 2000 characters."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if let Err(r) = audit(
        &state,
        &s,
        "staff.note",
        &id,
        serde_json::json!({ "note": note }),
    )
    .await
    {
        return r;
    }
    Redirect::to(&format!("/staff/prescriptions/{id}?mode={}", mode.as_str())).into_response()
}

/// Any member of staff may cancel on the patient's request, with a reason.
pub(super) async fn cancel(
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
    let Some(reason) = form_text(&form, "reason", 500) else {
        return render_prescription(
            &state,
            &s,
            mode,
            &id,
            None,
            Some("Cancelling needs a reason."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let Some(payments) = &state.payments else {
        return html(
            StatusCode::SERVICE_UNAVAILABLE,
            pages::message("Unavailable", "Payments are not wired."),
        );
    };
    match payments
        .cancel_by_staff(&s.staff.id, mode, &id, &reason)
        .await
    {
        Ok(_) => Redirect::to(&format!("/staff/prescriptions/{id}?mode={}", mode.as_str()))
            .into_response(),
        Err(rxbridge_app::intake::IntakeError::NotFound) => html(
            StatusCode::NOT_FOUND,
            pages::message(
                "Not found",
                "There is no prescription with this id in this data set.",
            ),
        ),
        Err(rxbridge_app::intake::IntakeError::NotCancellable(st)) => {
            render_prescription(
                &state,
                &s,
                mode,
                &id,
                None,
                Some(&format!("A prescription that is {st} cannot be cancelled.")),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(rxbridge_app::intake::IntakeError::Store(rxbridge_app::StoreError::Conflict)) => {
            render_prescription(
                &state,
                &s,
                mode,
                &id,
                None,
                Some("The prescription changed meanwhile; check it and try again."),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => internal(e),
    }
}
