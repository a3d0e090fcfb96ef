//! The home page, search and the pharmacist's worklist (the audited, masked lists are the
//! `StaffViews` use case's).

use super::auth::{AnyStaff, PharmacistOnly};
use super::pages;
use super::respond::{Params, PortalError, html, internal, mode_of};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rxbridge_app::staff_view::{PatientQuery, ViewError};

const SEARCH: &str = "Search prescriptions";

pub(super) async fn home(AnyStaff(s): AnyStaff, Query(q): Query<Params>) -> Response {
    let mode = mode_of(&q);
    let body = pages::search_form(mode);
    html(StatusCode::OK, pages::layout(SEARCH, Some(&s), mode, body))
}

pub(super) async fn search(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Query(q): Query<Params>,
) -> Result<Response, PortalError> {
    let mode = mode_of(&q);
    let arg = |k: &str| q.get(k).map(String::as_str);
    let (by, value) = (arg("by").unwrap_or("id"), arg("q").unwrap_or(""));
    let query = PatientQuery {
        by,
        value,
        dob: arg("dob"),
    };
    let found = state.portal.views.search(&s, mode, query).await;
    let body = match found {
        Ok(rows) => {
            maud::html! { (pages::search_form(mode)) h2 { "Results" } (pages::list(mode, &rows, "No prescriptions match.")) }
        }
        Err(ViewError::Invalid(msg)) => {
            let body = maud::html! { p.error role="alert" { (msg) } (pages::search_form(mode)) };
            let page = pages::layout(SEARCH, Some(&s), mode, body);
            return Err(PortalError::Page(StatusCode::UNPROCESSABLE_ENTITY, page));
        }
        Err(e) => return Err(internal(e)),
    };
    let page = pages::layout(SEARCH, Some(&s), mode, body);
    Ok(html(StatusCode::OK, page))
}

pub(super) async fn worklist(
    State(state): State<AppState>,
    PharmacistOnly(s, _): PharmacistOnly,
    Query(q): Query<Params>,
) -> Result<Response, PortalError> {
    let mode = mode_of(&q);
    let only_flagged = q.get("flagged").is_some_and(|v| v == "1");
    let rows = state
        .portal
        .views
        .worklist(&s, mode, only_flagged)
        .await
        .map_err(internal)?;
    let body = maud::html! {
        p { "Awaiting the clinical check, oldest first. "
            @if only_flagged { a href={ "/staff/worklist?mode=" (mode.as_str()) } { "Show all" } }
            @else { a href={ "/staff/worklist?flagged=1&mode=" (mode.as_str()) } { "Only flagged" } } }
        (pages::list(mode, &rows, "Nothing waiting."))
    };
    Ok(html(
        StatusCode::OK,
        pages::layout("Worklist", Some(&s), mode, body),
    ))
}
