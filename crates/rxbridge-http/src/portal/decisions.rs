//! The pharmacist's clinical decision: approve (with acknowledged flags and recorded
//! amendments), query the prescriber, or reject.

use super::auth::{PharmacistOnly, same};
use super::pages;
use super::prescription::render_prescription;
use super::respond::{Params, forbidden_csrf, html, internal, mode_of};
use crate::state::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rxbridge_app::clinical::{Amendment, Decision, DecisionError};

pub(super) async fn decide(
    State(state): State<AppState>,
    PharmacistOnly(s, pharmacist): PharmacistOnly,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let mode = mode_of(&q);
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if !get("csrf").is_some_and(|t| same(t, &s.csrf_token)) {
        return forbidden_csrf();
    }
    let Some(version) = get("version").and_then(|v| v.parse::<i64>().ok()) else {
        return render_prescription(
            &state,
            &s,
            mode,
            &id,
            None,
            Some("The form is incomplete; reload the page."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let decision = match get("decision") {
        Some("approve") => Decision::Approve {
            acknowledged_flags: form
                .iter()
                .filter(|(n, _)| n == "ack")
                .map(|(_, v)| v.clone())
                .collect(),
            amendments: form
                .iter()
                .filter_map(|(n, v)| {
                    let rest = n.strip_prefix("amend.")?;
                    let (flag, item) = match rest.rsplit_once('.') {
                        Some((f, i)) => (f, Some(i.parse::<usize>().ok()?)),
                        None => (rest, None),
                    };
                    Some(Amendment {
                        flag: flag.to_string(),
                        item,
                        text: v.clone(),
                    })
                })
                .collect(),
        },
        Some("query") => Decision::QueryPrescriber,
        Some("reject") => Decision::Reject,
        _ => {
            return render_prescription(
                &state,
                &s,
                mode,
                &id,
                None,
                Some("Choose approve, query or reject."),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let rec = match state.store.get_prescription_for_staff(mode, &id).await {
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
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    match portal
        .clinical
        .decide(
            &pharmacist,
            &rec.clinic_id,
            mode,
            &id,
            version,
            decision,
            get("reason").unwrap_or(""),
        )
        .await
    {
        Ok(_) => Redirect::to(&format!("/staff/prescriptions/{id}?mode={}", mode.as_str()))
            .into_response(),
        Err(e @ DecisionError::AlreadyDecided(_)) => {
            render_prescription(
                &state,
                &s,
                mode,
                &id,
                None,
                Some(&e.to_string()),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(
            e @ (DecisionError::ReasonRequired
            | DecisionError::FlagsNotAcknowledged(_)
            | DecisionError::AmendmentRequired(_)
            | DecisionError::Illegal(_)),
        ) => {
            render_prescription(
                &state,
                &s,
                mode,
                &id,
                None,
                Some(&e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(DecisionError::NotFound) => html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "There is no prescription with this id."),
        ),
        Err(e) => internal(e),
    }
}
