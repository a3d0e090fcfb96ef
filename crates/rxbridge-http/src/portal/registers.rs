//! The CD and POM registers: sections and balances, dated corrections, printable exports.

use super::auth::{AnyStaff, PharmacistOnly};
use super::pages;
use super::respond::{Params, csrf_ok, forbidden_csrf, html, internal, report_download};
use crate::state::AppState;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::{Role, StaffSession};

fn register_reader(s: &StaffSession) -> bool {
    matches!(s.staff.role, Role::Pharmacist | Role::Admin)
}

pub(super) async fn registers_page(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Query(q): Query<Params>,
) -> Response {
    use rxbridge_app::registers::Register;
    if !register_reader(&s) {
        return html(
            StatusCode::FORBIDDEN,
            pages::message(
                "Not allowed",
                "The registers are for pharmacists and administrators.",
            ),
        );
    }
    let (Some(f), Some(regs)) = (&state.fulfilment, &state.registers) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Registers are not enabled."),
        );
    };
    let register = q
        .get("register")
        .and_then(|r| Register::parse(r))
        .unwrap_or(Register::Cd);
    let sections = match regs.register_sections(register).await {
        Ok(v) => v,
        Err(e) => return internal(e),
    };
    let mut balances = Vec::new();
    for sec in &sections {
        match regs.register_balance(register, sec).await {
            Ok(b) => balances.push((sec.clone(), b)),
            Err(e) => return internal(e),
        }
    }
    let chosen = q
        .get("section")
        .filter(|sec| sections.contains(sec))
        .cloned();
    let report = match &chosen {
        Some(sec) => match f
            .register_report(register, sec, &format!("staff:{}", s.staff.id))
            .await
        {
            Ok(r) => Some(r),
            Err(e) => return internal(e),
        },
        None => None,
    };
    let reg = register.as_str();
    html(
        StatusCode::OK,
        pages::layout(
            match register {
                Register::Cd => "Controlled Drugs register",
                Register::Pom => "POM register",
            },
            Some(&s),
            Mode::Live,
            maud::html! {
                p { a href="/staff/registers?register=cd" { "CD register" } " · " a href="/staff/registers?register=pom" { "POM register" } }
                p { "Entries are append-only and hash-chained; corrections are dated annotations. Sections beginning " code { "test/" } " hold sandbox data." }
                table {
                    thead { tr { th { "Section" } @if register == Register::Cd { th { "Balance" } } } }
                    tbody { @for (sec, b) in &balances { tr { td { a href={ "/staff/registers?register=" (reg) "&section=" (sec) } { (sec) } } @if register == Register::Cd { td { (b) } } } } }
                }
                @if let (Some(sec), Some(r)) = (&chosen, &report) {
                    h2 { (r.title) }
                    p { a href={ "/staff/registers/" (reg) "/export/register.pdf?section=" (sec) } { "Print (PDF)" } " · " a href={ "/staff/registers/" (reg) "/export/register.csv?section=" (sec) } { "CSV" } }
                    table {
                        thead { tr { @for c in &r.columns { th { (c) } } } }
                        tbody { @for row in &r.rows { tr { @for c in row { td { (c) } } } } }
                    }
                    dl { @for (k, v) in &r.totals { dt { (k) } dd { (v) } } }
                    @if s.staff.role == Role::Pharmacist {
                        h3 { "Add a dated correction or note" }
                        p { "Entries are never edited: a correction is a new, dated entry that names the entry it corrects." }
                        form method="post" action={ "/staff/registers/" (reg) "/annotate" } {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            input type="hidden" name="section" value=(sec);
                            label { "Corrects entry (optional) " input type="number" name="corrects" min="1"; }
                            label { "Note " input type="text" name="note" required maxlength="500"; }
                            button type="submit" { "Add to the register" }
                        }
                    }
                }
            },
        ),
    )
}

pub(super) async fn register_annotate(
    State(state): State<AppState>,
    PharmacistOnly(s, _): PharmacistOnly,
    Path(register): Path<String>,
    Form(form): Form<Params>,
) -> Response {
    use rxbridge_app::registers::Register;
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let (Some(f), Some(register), Some(section)) = (
        &state.fulfilment,
        Register::parse(&register),
        form.get("section"),
    ) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "No such register section."),
        );
    };
    let corrects = match form
        .get("corrects")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => match c.parse::<i64>() {
            Ok(n) => Some(n),
            Err(_) => {
                return html(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    pages::message("Not added", "The entry to correct must be a number."),
                );
            }
        },
    };
    let note = form.get("note").map(String::as_str).unwrap_or("");
    match f
        .annotate(
            register,
            section,
            corrects,
            note,
            &format!("staff:{}", s.staff.id),
        )
        .await
    {
        Ok(()) => Redirect::to(&format!(
            "/staff/registers?register={}&section={section}",
            register.as_str()
        ))
        .into_response(),
        Err(rxbridge_app::StoreError::Rejected(why)) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::message("Not added", &why),
        ),
        Err(rxbridge_app::StoreError::NotFound) => html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "No such register section."),
        ),
        Err(e) => internal(e),
    }
}

pub(super) async fn register_export(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path((register, file)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Response {
    use rxbridge_app::registers::Register;
    if !register_reader(&s) {
        return html(
            StatusCode::FORBIDDEN,
            pages::message(
                "Not allowed",
                "The registers are for pharmacists and administrators.",
            ),
        );
    }
    let Some(f) = &state.fulfilment else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Registers are not enabled."),
        );
    };
    let (Some(register), Some(section)) = (Register::parse(&register), q.get("section")) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "No such register."),
        );
    };
    let report = match file.as_str() {
        "register.pdf" | "register.csv" => match f
            .register_report(register, section, &format!("staff:{}", s.staff.id))
            .await
        {
            Ok(r) => r,
            Err(e) => return internal(e),
        },
        _ => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message("Not found", "No such export."),
            );
        }
    };
    let name: String = section
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    report_download(
        &report,
        file.ends_with("pdf"),
        &format!("{}-register-{name}", register.as_str()),
    )
}
