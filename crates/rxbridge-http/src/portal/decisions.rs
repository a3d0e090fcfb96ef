//! The pharmacist's clinical decision from the form: approve (with acknowledged flags and
//! recorded amendments), query the prescriber, or reject (after a confirmation step). The
//! rules are `ClinicalCheck`'s.

use super::auth::PharmacistOnly;
use super::check_page::Form;
use super::prescription::{Fields, Kept, after, again, view_error};
use super::respond::{CsrfForm, NO_SUCH_PRESCRIPTION, Params, PortalError, internal, mode_of};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rxbridge_app::clinical::{Amendment, Decision, DecisionError};
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::StaffSession;
use rxbridge_app::staff_view::staff_text;
use rxbridge_domain::lifecycle::Status;

pub(super) async fn decide(
    State(state): State<AppState>,
    PharmacistOnly(s, pharmacist): PharmacistOnly,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm<Fields>,
) -> Response {
    let mode = mode_of(&q);
    let parsed = parse(&form);
    let reject_unconfirmed = field(&form, "confirm") != Some("yes");
    if let (Ok((version, Decision::Reject)), true) = (&parsed, reject_unconfirmed) {
        return confirm_reject(&state, &s, mode, &id, *version, form).await;
    }
    let done = match parsed {
        Ok((version, decision)) => {
            let reason = field(&form, "reason").unwrap_or("");
            let clinical = &state.portal.clinical;
            let decided = clinical
                .decide(&pharmacist, mode, &id, version, decision, reason)
                .await;
            decided.map(|_| ()).map_err(decision_error)
        }
        Err(e) => Err(e),
    };
    let kept = Kept::new(Form::Decision, without_csrf(form));
    after(&state, &s, mode, &id, done, kept).await
}

/// A rejection asks to be confirmed: the page again with the confirmation, when there is a
/// reason and the prescription is still the version the pharmacist looked at.
async fn confirm_reject(
    state: &AppState,
    s: &StaffSession,
    mode: Mode,
    id: &str,
    version: i64,
    form: Fields,
) -> Response {
    let reason = field(&form, "reason").and_then(|r| staff_text(r, 1000));
    let typed = without_csrf(form);
    let current = state.portal.views.current(mode, id).await;
    let refused = match (reason, current.map_err(view_error)) {
        (_, Err(e)) => e,
        (_, Ok((v, st))) if v != version || !decidable(st) => {
            decision_error(DecisionError::AlreadyDecided(st))
        }
        (None, Ok(_)) => decision_error(DecisionError::ReasonRequired),
        (Some(_), Ok(_)) => {
            let kept = Kept::new(Form::ConfirmReject, typed);
            return again(state, s, (mode, id), (StatusCode::OK, None), kept).await;
        }
    };
    let kept = Kept::new(Form::Decision, typed);
    after(state, s, mode, id, Err(refused), kept).await
}

fn decidable(st: Status) -> bool {
    matches!(st, Status::AwaitingClinicalCheck | Status::OnHold)
}

fn without_csrf(form: Fields) -> Fields {
    form.into_iter().filter(|(n, _)| n != "csrf").collect()
}

fn field<'a>(form: &'a Fields, name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The version the pharmacist looked at and the decision: acknowledged flags are `ack` fields,
/// amendments `amend.<flag>[.<item>]` fields.
fn parse(form: &Fields) -> Result<(i64, Decision), PortalError> {
    let again = |why: &str| PortalError::Again(StatusCode::UNPROCESSABLE_ENTITY, why.into());
    let Some(version) = field(form, "version").and_then(|v| v.parse::<i64>().ok()) else {
        return Err(again("The form is incomplete; reload the page."));
    };
    let decision = match field(form, "decision") {
        Some("approve") => Decision::Approve {
            acknowledged_flags: form
                .iter()
                .filter(|(n, _)| n == "ack")
                .map(|(_, v)| v.clone())
                .collect(),
            amendments: form.iter().filter_map(amendment).collect(),
        },
        Some("query") => Decision::QueryPrescriber,
        Some("reject") => Decision::Reject,
        _ => return Err(again("Choose approve, query or reject.")),
    };
    Ok((version, decision))
}

fn amendment((name, text): &(String, String)) -> Option<Amendment> {
    let rest = name.strip_prefix("amend.")?;
    let (flag, item) = match rest.rsplit_once('.') {
        Some((f, i)) => (f, Some(i.parse::<usize>().ok()?)),
        None => (rest, None),
    };
    Some(Amendment {
        flag: flag.to_string(),
        item,
        text: text.clone(),
    })
}

fn decision_error(e: DecisionError) -> PortalError {
    match e {
        e @ DecisionError::AlreadyDecided(_) => {
            PortalError::Again(StatusCode::CONFLICT, e.to_string())
        }
        e @ (DecisionError::ReasonRequired
        | DecisionError::FlagsNotAcknowledged(_)
        | DecisionError::AmendmentRequired(_)
        | DecisionError::ExemptionToBeDeclared
        | DecisionError::Illegal(_)) => {
            PortalError::Again(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        DecisionError::NotFound => PortalError::NotFound(NO_SUCH_PRESCRIPTION),
        e => internal(e),
    }
}
