//! The NHS charge exemption the patient declares at the pharmacy: the record page's section
//! (while the declaration is still open: before approval) and its form's post. The rules and
//! the audit are the `ClinicalCheck::declare_exemption` use case's.

use super::auth::AnyStaff;
use super::check_page::{Again, Form};
use super::prescription::{Kept, after};
use super::respond::{CsrfForm, NO_SUCH_PRESCRIPTION, Params, PortalError, internal, mode_of};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use rxbridge_app::clinical::{DeclareError, Declared};
use rxbridge_app::ports::{Mode, PrescriptionRecord};
use rxbridge_app::staff::StaffSession;
use rxbridge_domain::declaration::NhsExemption;
use rxbridge_domain::nhs::NhsTables;

/// Record the patient's declaration: `exemption` (the code) and `evidence` (`seen` or
/// `not_seen`).
pub(super) async fn declare_exemption(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm,
) -> Response {
    let mode = mode_of(&q);
    let code = form.get("exemption").map(String::as_str).unwrap_or("");
    let evidence = form.get("evidence").map(String::as_str);
    let typed = [("exemption", code), ("evidence", evidence.unwrap_or(""))];
    let kept = Kept::new(
        Form::Exemption,
        typed.map(|(n, v)| (n.into(), v.into())).to_vec(),
    );
    let Some(evidence_seen) = evidence.and_then(|e| match e {
        "seen" => Some(true),
        "not_seen" => Some(false),
        _ => None,
    }) else {
        let why = "Say whether you saw evidence of the exemption.".to_string();
        let refused = Err(PortalError::Again(StatusCode::UNPROCESSABLE_ENTITY, why));
        return after(&state, &s, mode, &id, refused, kept).await;
    };
    let declared = Declared {
        code,
        evidence_seen,
    };
    let clinical = &state.portal.clinical;
    let done = clinical
        .declare_exemption(&s.staff.id, mode, &id, declared)
        .await;
    after(
        &state,
        &s,
        mode,
        &id,
        done.map(|_| ()).map_err(declare_error),
        kept,
    )
    .await
}

fn declare_error(e: DeclareError) -> PortalError {
    match e {
        DeclareError::NotFound => PortalError::NotFound(NO_SUCH_PRESCRIPTION),
        DeclareError::Store(e) => internal(e),
        e @ (DeclareError::TooLate(_) | DeclareError::Conflict) => {
            PortalError::Again(StatusCode::CONFLICT, e.to_string())
        }
        e @ DeclareError::Refused(_) => {
            PortalError::Again(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
    }
}

/// Whether the page shows the form: an NHS prescription whose exemption is declared at the
/// pharmacy, until approval fixes the charge.
pub(super) fn open(rec: &PrescriptionRecord) -> bool {
    rec.nhs_exemption.is_some() && rec.status.declare_exemption().is_ok()
}

/// The record page's section: where the declaration stands, and the form while it is open.
pub(super) fn section(
    s: &StaffSession,
    mode: Mode,
    rec: &PrescriptionRecord,
    again: &Again<'_>,
) -> Markup {
    let Some(state) = &rec.nhs_exemption else {
        return html! {};
    };
    let mine = again.form == Form::Exemption;
    let typed = |name: &str| {
        again
            .typed
            .iter()
            .find(|(n, _)| mine && n == name)
            .map(|(_, v)| v.as_str())
    };
    let action = format!(
        "/staff/prescriptions/{}/exemption?mode={}",
        rec.id,
        mode.as_str()
    );
    html! {
        section aria-labelledby="h-exemption" {
            h2 id="h-exemption" { "NHS charge exemption" }
            @match state {
                NhsExemption::ToBeDeclared => p { strong { "To be declared. " } "The prescription did not carry the patient's exemption: record what the patient declares before the pharmacist approves it. Until then the charge is not yet known." },
                NhsExemption::Declared(d) => p { "Declared: " code { (d.exemption.as_code()) } " " (d.exemption.meaning()) " · evidence " (if d.evidence_seen { "seen" } else { "not seen" }) " · on " (d.declared_on) },
            }
            @if open(rec) {
                @if let Some(why) = again.why.filter(|_| mine) { p.error role="alert" { (why) } }
                form method="post" action=(action) {
                    input type="hidden" name="csrf" value=(s.csrf_token);
                    label { "Exemption the patient declares "
                        select name="exemption" required {
                            @for e in &NhsTables::builtin().exemptions {
                                option value=(e.code) selected[typed("exemption") == Some(e.code.as_str())] { (e.code) " — " (e.meaning) }
                            }
                        }
                    }
                    fieldset { legend { "Evidence of the exemption" }
                        label { input type="radio" name="evidence" value="seen" required checked[typed("evidence") == Some("seen")]; " Seen" }
                        label { input type="radio" name="evidence" value="not_seen" checked[typed("evidence") == Some("not_seen")]; " Not seen" }
                    }
                    button type="submit" { "Record the declaration" }
                }
            }
        }
    }
}
