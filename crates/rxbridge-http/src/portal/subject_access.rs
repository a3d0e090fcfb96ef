//! The subject-access report: every event about every prescription of one patient, as a page
//! or a CSV download. The export itself is audited.

use super::auth::AdminOnly;
use super::pages;
use super::respond::{Params, audit, html, internal, mode_of};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

fn csv_field(s: &str) -> String {
    // Quote every field; neutralise spreadsheet formulas (a leading = + - @).
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Subject-access helper: every event about every prescription of one patient, found through
/// the keyed-hash lookups; as a page or a CSV download. The export itself is audited.
pub(super) async fn subject_access(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
) -> Response {
    let mode = mode_of(&q);
    let form = maud::html! {
        form method="get" action="/staff/admin/audit" {
            input type="hidden" name="mode" value=(mode.as_str());
            label { "Find the patient by " select name="by" { option value="nhs" { "NHS number" } option value="email" { "Email" } option value="family_dob" { "Family name + date of birth" } } }
            label { "Value " input type="search" name="q" required; }
            label { "Date of birth (with family name) " input type="date" name="dob"; }
            button type="submit" { "Show audit trail" }
        }
    };
    let Some(value) = q.get("q") else {
        return html(
            StatusCode::OK,
            pages::layout("Audit trail for a patient", Some(&s), mode, form),
        );
    };
    let by = q.get("by").map(String::as_str).unwrap_or("nhs");
    if !matches!(by, "nhs" | "email" | "family_dob") {
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::layout("Audit trail for a patient", Some(&s), mode, form),
        );
    }
    let lookup = match state
        .intake
        .staff_lookup(by, value, q.get("dob").map(String::as_str))
    {
        Ok(l) => l,
        Err(m) => {
            return html(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::layout(
                    "Audit trail for a patient",
                    Some(&s),
                    mode,
                    maud::html! { p.error role="alert" { (m) } (form) },
                ),
            );
        }
    };
    let found = match state.store.search(mode, &lookup, 200).await {
        Ok(f) => f,
        Err(e) => return internal(e),
    };
    let mut rows = Vec::new();
    for rec in &found {
        match state.store.timeline(&rec.id).await {
            Ok(t) => rows.extend(t.into_iter().map(|e| (rec.id.clone(), e))),
            Err(e) => return internal(e),
        }
    }
    rows.sort_by_key(|(_, e)| e.seq);
    let csv = q.get("format").is_some_and(|f| f == "csv");
    if let Err(r) = audit(&state, &s, "staff.subject_access", &s.staff.id, serde_json::json!({ "by": by, "mode": mode.as_str(), "prescriptions": found.len(), "events": rows.len(), "format": if csv { "csv" } else { "html" } })).await {
        return r;
    }
    if csv {
        let mut out = String::from("seq,at,prescription_id,event,actor,detail\n");
        for (id, e) in &rows {
            out.push_str(
                &[
                    e.seq.to_string(),
                    e.event.at.to_string(),
                    id.clone(),
                    e.event.kind.clone(),
                    e.event.actor.clone(),
                    e.event.detail.to_string(),
                ]
                .iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
            );
            out.push('\n');
        }
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"audit-trail.csv\"",
                ),
            ],
            out,
        )
            .into_response();
    }
    let body = maud::html! {
        (form)
        p { (found.len()) " prescription(s), " (rows.len()) " event(s). "
            a href={ "/staff/admin/audit?format=csv&mode=" (mode.as_str()) "&by=" (by) "&q=" (urlencode(value)) "&dob=" (urlencode(q.get("dob").map(String::as_str).unwrap_or(""))) } { "Download CSV" } }
        table {
            thead { tr { th { "#" } th { "When" } th { "Prescription" } th { "Event" } th { "Who" } } }
            tbody { @for (id, e) in &rows { tr { td { (e.seq) } td { (e.event.at.strftime("%Y-%m-%d %H:%M:%S")) } td { code { (id) } } td { (e.event.kind) } td { (e.event.actor) } } } }
        }
    };
    html(
        StatusCode::OK,
        pages::layout("Audit trail for a patient", Some(&s), mode, body),
    )
}

fn urlencode(s: &str) -> String {
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
