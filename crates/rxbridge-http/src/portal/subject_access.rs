//! The subject-access report as a page or a CSV download (the report and its audit are the
//! `StaffViews` use case's).

use super::auth::AdminOnly;
use super::pages;
use super::prescription::view_error;
use super::respond::{Params, PortalError, html, mode_of};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::Markup;
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::StaffSession;
use rxbridge_app::staff_view::{PatientQuery, ViewError};
use rxbridge_app::subject_access::{ReportFormat, SubjectAccessError, SubjectAccessReport};

const TITLE: &str = "Audit trail for a patient";

/// Every event about every prescription of one patient, found through the keyed-hash lookups.
pub(super) async fn subject_access(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
) -> Result<Response, PortalError> {
    let mode = mode_of(&q);
    let Some(value) = q.get("q") else {
        let page = pages::layout(TITLE, Some(&s), mode, form(mode));
        return Ok(html(StatusCode::OK, page));
    };
    let by = q.get("by").map(String::as_str).unwrap_or("nhs");
    let query = PatientQuery {
        by,
        value,
        dob: q.get("dob").map(String::as_str),
    };
    let csv_asked = q.get("format").is_some_and(|f| f == "csv");
    let format = if csv_asked {
        ReportFormat::Csv
    } else {
        ReportFormat::Html
    };
    let views = &state.portal.views;
    let found = views.subject_access(&s, mode, query, format).await;
    let report = found.map_err(|e| refused(&s, mode, e))?;
    Ok(match format {
        ReportFormat::Csv => csv(&report),
        ReportFormat::Html => html(StatusCode::OK, report_page(&s, mode, &q, &report)),
    })
}

/// The form again (422), with the reason when the value itself was refused.
fn refused(s: &StaffSession, mode: Mode, e: SubjectAccessError) -> PortalError {
    let body = match e {
        SubjectAccessError::UnknownLookup => form(mode),
        SubjectAccessError::View(ViewError::Invalid(m)) => {
            maud::html! { p.error role="alert" { (m) } (form(mode)) }
        }
        SubjectAccessError::View(e) => return view_error(e),
    };
    let page = pages::layout(TITLE, Some(s), mode, body);
    PortalError::Page(StatusCode::UNPROCESSABLE_ENTITY, page)
}

fn form(mode: Mode) -> Markup {
    maud::html! {
        form method="get" action="/staff/admin/audit" {
            input type="hidden" name="mode" value=(mode.as_str());
            label { "Find the patient by " select name="by" { option value="nhs" { "NHS number" } option value="email" { "Email" } option value="family_dob" { "Family name + date of birth" } } }
            label { "Value " input type="search" name="q" required; }
            label { "Date of birth (with family name) " input type="date" name="dob"; }
            button type="submit" { "Show audit trail" }
        }
    }
}

fn report_page(s: &StaffSession, mode: Mode, q: &Params, report: &SubjectAccessReport) -> Markup {
    let arg = |k: &str| urlencode(q.get(k).map(String::as_str).unwrap_or(""));
    let by = q.get("by").map(String::as_str).unwrap_or("nhs");
    let body = maud::html! {
        (form(mode))
        p { (report.prescriptions) " prescription(s), " (report.events.len()) " event(s). "
            a href={ "/staff/admin/audit?format=csv&mode=" (mode.as_str()) "&by=" (by) "&q=" (arg("q")) "&dob=" (arg("dob")) } { "Download CSV" } }
        table {
            thead { tr { th { "#" } th { "When" } th { "Prescription" } th { "Event" } th { "Who" } } }
            tbody { @for (id, e) in &report.events { tr { td { (e.seq) } td { (e.event.at.strftime("%Y-%m-%d %H:%M:%S")) } td { code { (id) } } td { (e.event.kind) } td { (e.event.actor) } } } }
        }
    };
    pages::layout(TITLE, Some(s), mode, body)
}

/// The report as `audit-trail.csv`: one row per event.
fn csv(report: &SubjectAccessReport) -> Response {
    let mut out = String::from("seq,at,prescription_id,event,actor,detail\n");
    for (id, e) in &report.events {
        let cells = [
            e.seq.to_string(),
            e.event.at.to_string(),
            id.clone(),
            e.event.kind.clone(),
            e.event.actor.clone(),
            e.event.detail.to_string(),
        ];
        out.push_str(
            &cells
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    let headers = [
        (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
        (
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"audit-trail.csv\"",
        ),
    ];
    (headers, out).into_response()
}

fn csv_field(s: &str) -> String {
    // Quote every field; neutralise spreadsheet formulas (a leading = + - @).
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub(super) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_cells_are_quoted_and_formulas_neutralised() {
        assert_eq!(csv_field("plain"), "\"plain\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1"), "\"'+1\"");
        assert_eq!(csv_field("@cmd"), "\"'@cmd\"");
    }
}
