//! The home page, search and the pharmacist's worklist, with the patient shown masked.

use super::auth::{AnyStaff, PharmacistOnly};
use super::pages::{self, PatientPanel, Row};
use super::respond::{Params, audit, html, internal, mode_of};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rxbridge_app::ports::PrescriptionRecord;
use rxbridge_domain::compliance::Severity;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::Prescription;

pub(super) async fn home(AnyStaff(s): AnyStaff, Query(q): Query<Params>) -> Response {
    let mode = mode_of(&q);
    html(
        StatusCode::OK,
        pages::layout(
            "Search prescriptions",
            Some(&s),
            mode,
            pages::search_form(mode),
        ),
    )
}

/// What the viewer may see of the patient: support staff see initials, year of birth, the last
/// three digits of the NHS number and the outward postcode unless they opened the record with
/// a reason.
pub(super) fn patient_panel(rx: &Prescription, masked: bool) -> PatientPanel {
    let p = &rx.patient;
    let initial = |s: &str| {
        s.chars()
            .next()
            .map(|c| format!("{c}."))
            .unwrap_or_default()
    };
    if masked {
        PatientPanel {
            masked: true,
            lines: vec![
                (
                    "Name",
                    format!("{} {}", initial(&p.given_name), initial(&p.family_name)),
                ),
                ("Year of birth", p.date_of_birth.year().to_string()),
                (
                    "NHS number",
                    p.nhs_number
                        .as_ref()
                        .map(|n| format!("*******{}", n.last3()))
                        .unwrap_or_else(|| "—".into()),
                ),
                (
                    "Postcode",
                    p.address
                        .postcode
                        .split(' ')
                        .next()
                        .unwrap_or("")
                        .to_string()
                        + " ***",
                ),
            ],
        }
    } else {
        PatientPanel {
            masked: false,
            lines: vec![
                ("Name", format!("{} {}", p.given_name, p.family_name)),
                ("Date of birth", p.date_of_birth.to_string()),
                (
                    "NHS number",
                    p.nhs_number
                        .as_ref()
                        .map(|n| n.as_str().to_string())
                        .unwrap_or_else(|| "—".into()),
                ),
                (
                    "Email",
                    p.email
                        .as_ref()
                        .map(|e| e.as_str().to_string())
                        .unwrap_or_else(|| "—".into()),
                ),
                (
                    "Phone",
                    p.phone
                        .as_ref()
                        .map(|e| e.as_str().to_string())
                        .unwrap_or_else(|| "—".into()),
                ),
                (
                    "Address",
                    format!(
                        "{}, {}, {}",
                        p.address.lines.join(", "),
                        p.address.town,
                        p.address.postcode
                    ),
                ),
            ],
        }
    }
}

fn masked_summary(state: &AppState, rec: &PrescriptionRecord) -> String {
    match state.intake.open(rec) {
        Ok(rx) => patient_panel(&rx, true)
            .lines
            .iter()
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(" · "),
        Err(_) => "(unreadable)".into(),
    }
}

/// List rows with the patient shown masked (search results, worklist).
fn masked_rows<'a>(
    state: &AppState,
    recs: impl IntoIterator<Item = &'a PrescriptionRecord>,
) -> Vec<Row<'a>> {
    recs.into_iter()
        .map(|rec| Row {
            rec,
            patient: masked_summary(state, rec),
        })
        .collect()
}

pub(super) async fn search(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Query(q): Query<Params>,
) -> Response {
    let mode = mode_of(&q);
    let by = q.get("by").map(String::as_str).unwrap_or("id");
    let lookup = match state.intake.staff_lookup(
        by,
        q.get("q").map(String::as_str).unwrap_or(""),
        q.get("dob").map(String::as_str),
    ) {
        Ok(l) => l,
        Err(msg) => {
            let body = maud::html! { p.error role="alert" { (msg) } (pages::search_form(mode)) };
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::layout("Search prescriptions", Some(&s), mode, body),
            );
        }
    };
    let found = match state.store.search(mode, &lookup, 50).await {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    // The search value itself is patient data: only the kind and the count are logged.
    if let Err(r) = audit(
        &state,
        &s,
        "staff.searched",
        &s.staff.id,
        serde_json::json!({ "by": by, "mode": mode.as_str(), "results": found.len() }),
    )
    .await
    {
        return r;
    }
    let rows = masked_rows(&state, found.iter());
    let body = maud::html! { (pages::search_form(mode)) h2 { "Results" } (pages::list(mode, &rows, "No prescriptions match.")) };
    html(
        StatusCode::OK,
        pages::layout("Search prescriptions", Some(&s), mode, body),
    )
}

pub(super) async fn worklist(
    State(state): State<AppState>,
    PharmacistOnly(s, _): PharmacistOnly,
    Query(q): Query<Params>,
) -> Response {
    let mode = mode_of(&q);
    let page = match state
        .store
        .worklist(mode, Status::AwaitingClinicalCheck, None, 100)
        .await
    {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    let only_flagged = q.get("flagged").is_some_and(|v| v == "1");
    let items: Vec<&PrescriptionRecord> = page
        .items
        .iter()
        .filter(|r| !only_flagged || r.findings.iter().any(|f| f.severity == Severity::Flag))
        .collect();
    if let Err(r) = audit(
        &state,
        &s,
        "staff.viewed_worklist",
        &s.staff.id,
        serde_json::json!({ "mode": mode.as_str(), "shown": items.len() }),
    )
    .await
    {
        return r;
    }
    let rows = masked_rows(&state, items);
    let body = maud::html! {
        p { "Awaiting the clinical check, oldest first. "
            @if only_flagged { a href={ "/staff/worklist?mode=" (mode.as_str()) } { "Show all" } }
            @else { a href={ "/staff/worklist?flagged=1&mode=" (mode.as_str()) } { "Only flagged" } } }
        (pages::list(mode, &rows, "Nothing waiting."))
    };
    html(
        StatusCode::OK,
        pages::layout("Worklist", Some(&s), mode, body),
    )
}
