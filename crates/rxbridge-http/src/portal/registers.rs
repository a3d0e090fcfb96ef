//! The CD and POM registers: sections and balances, dated corrections, printable exports (the
//! registers' rules are `Fulfilment`'s).

use super::auth::{PharmacistOnly, RegisterReader};
use super::flash::{self, Flashed, Shown};
use super::pages;
use super::respond::{
    CsrfForm, Params, PortalError, html, internal, mode_of, redirect, report_download,
};
use super::subject_access::urlencode;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::Markup;
use rxbridge_app::StoreError;
use rxbridge_app::finance::Report;
use rxbridge_app::ports::Mode;
use rxbridge_app::registers::Register;
use rxbridge_app::staff::{Role, StaffSession};

type Page = Result<Response, PortalError>;

/// The register's sections with their balances, and the chosen section's entries.
pub(super) async fn registers_page(
    State(state): State<AppState>,
    RegisterReader(s): RegisterReader,
    Query(q): Query<Params>,
    Flashed(flashed): Flashed,
) -> Page {
    let mode = mode_of(&q);
    let register = q.get("register").and_then(|r| Register::parse(r));
    let register = register.unwrap_or(Register::Cd);
    let balances = balances(&state, register, mode).await?;
    let chosen = q
        .get("section")
        .filter(|sec| balances.iter().any(|(b, _)| b == *sec));
    let report = match chosen {
        Some(sec) => Some(section_report(&state, &s, register, sec).await?),
        None => None,
    };
    let title = register_title(register);
    let shown = chosen.zip(report.as_ref());
    let (status, why, typed) = flash::refusal(flashed);
    let refused = why.map(|w| (w, typed));
    let body = register_markup(&s, (register, mode), &balances, shown, refused.as_ref());
    Ok(html(status, pages::layout(title, Some(&s), mode, body)))
}

fn register_title(register: Register) -> &'static str {
    match register {
        Register::Cd => "Controlled Drugs register",
        Register::Pom => "POM register",
    }
}

/// A register section's page, as its links and forms name it (the section URL-encoded, so the
/// browser asks for exactly this).
fn section_path(register: Register, section: &str) -> String {
    let (reg, m) = (register.as_str(), section_mode(section).as_str());
    let sec = urlencode(section);
    format!("/staff/registers?register={reg}&mode={m}&section={sec}")
}

/// The data set a register section belongs to: sandbox sections begin `test/`.
fn section_mode(section: &str) -> Mode {
    if section.starts_with("test/") {
        Mode::Test
    } else {
        Mode::Live
    }
}

/// Every section of `register` in `mode` with its running balance.
async fn balances(
    state: &AppState,
    register: Register,
    mode: Mode,
) -> Result<Vec<(String, i64)>, PortalError> {
    let regs = &state.registers;
    let mut out = Vec::new();
    let sections = regs.register_sections(register).await.map_err(internal)?;
    for sec in sections.into_iter().filter(|s| section_mode(s) == mode) {
        let balance = regs
            .register_balance(register, &sec)
            .await
            .map_err(internal)?;
        out.push((sec, balance));
    }
    Ok(out)
}

/// One section's entries, read by `s` (the read is recorded by the use case).
async fn section_report(
    state: &AppState,
    s: &StaffSession,
    register: Register,
    section: &str,
) -> Result<Report, PortalError> {
    let actor = format!("staff:{}", s.staff.id);
    let report = state
        .fulfilment
        .register_report(register, section, &actor)
        .await;
    report.map_err(internal)
}

fn register_markup(
    s: &StaffSession,
    (register, mode): (Register, Mode),
    balances: &[(String, i64)],
    shown: Option<(&String, &Report)>,
    refused: Option<&(String, Vec<(String, String)>)>,
) -> Markup {
    let typed = |name: &str| {
        refused.and_then(|(_, t)| t.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str()))
    };
    let reg = register.as_str();
    let m = mode.as_str();
    let (chosen, report) = (shown.map(|(sec, _)| sec), shown.map(|(_, r)| r));
    maud::html! {
        p.no-print { a href={ "/staff/registers?register=cd&mode=" (m) } { "CD register" } " · " a href={ "/staff/registers?register=pom&mode=" (m) } { "POM register" } }
        p { "Entries are append-only and hash-chained; corrections are dated annotations. "
            @if mode == Mode::Test { "These are the sandbox sections (their names begin " code { "test/" } ")." } @else { "These are the live sections." } }
        @if balances.is_empty() { p { "No sections in this data set yet." } } @else {
        table {
            thead { tr { th scope="col" { "Section" } @if register == Register::Cd { th.num scope="col" { "Balance" } } } }
            tbody { @for (sec, b) in balances { tr { td { a href=(section_path(register, sec)) { (sec) } } @if register == Register::Cd { td.num { (b) } } } } }
        }
        }
        @if let (Some(sec), Some(r)) = (chosen, report) {
            h2 { (r.title) }
            p.no-print { a href={ "/staff/registers/" (reg) "/export/register.pdf?section=" (urlencode(sec)) } { "Print (PDF)" } " · " a href={ "/staff/registers/" (reg) "/export/register.csv?section=" (urlencode(sec)) } { "CSV" } }
            table.register {
                thead { tr { @for c in &r.columns { th scope="col" { (c) } } } }
                tbody { @for row in &r.rows { tr { @for c in row { td { (c) } } } } }
            }
            dl { @for (k, v) in &r.totals { dt { (k) } dd { (v) } } }
            @if s.staff.role == Role::Pharmacist {
                h3 { "Add a dated correction or note" }
                p { "Entries are never edited: a correction is a new, dated entry that names the entry it corrects." }
                @if let Some((why, _)) = refused { p.error role="alert" { (why) } }
                form method="post" action={ "/staff/registers/" (reg) "/annotate?mode=" (m) } {
                    input type="hidden" name="csrf" value=(s.csrf_token);
                    input type="hidden" name="section" value=(sec);
                    label { "Corrects entry (optional) " input type="number" name="corrects" min="1" value=[typed("corrects")]; }
                    label { "Note " input type="text" name="note" required maxlength="500" value=[typed("note")]; }
                    button type="submit" { "Add to the register" }
                }
            }
        }
    }
}

/// A pharmacist adds a dated correction or note to a register section.
pub(super) async fn register_annotate(
    State(state): State<AppState>,
    PharmacistOnly(s, _): PharmacistOnly,
    Path(register): Path<String>,
    CsrfForm(form): CsrfForm,
) -> Page {
    let (Some(register), Some(section)) = (Register::parse(&register), form.get("section")) else {
        return Err(PortalError::NotFound(NO_SUCH_SECTION));
    };
    let known = balances(&state, register, section_mode(section)).await?;
    if !known.iter().any(|(b, _)| b == section) {
        return Err(PortalError::NotFound(NO_SUCH_SECTION));
    }
    let to = section_path(register, section);
    match annotate(&state, &s, (register, section), &form).await {
        Ok(()) => Ok(redirect(&to)),
        Err(StoreError::Rejected(why)) => not_added(&state, &s, &to, &form, why),
        Err(StoreError::NotFound) => Err(PortalError::NotFound(NO_SUCH_SECTION)),
        Err(e) => Err(internal(e)),
    }
}

/// Back to the section's page with why the correction was not added and what was typed.
fn not_added(state: &AppState, s: &StaffSession, to: &str, form: &Params, why: String) -> Page {
    let typed = ["corrects", "note"].map(|n| (n.into(), form.get(n).cloned().unwrap_or_default()));
    let shown = Shown::refused("annotate", why.clone(), typed.to_vec());
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    flash::see_other(state, &flash::for_session(s), to, status, shown)
        .or(Err(PortalError::Message(status, "Not added", why)))
}

/// The form's correction or note, added to the section (refusals as `StoreError::Rejected`).
async fn annotate(
    state: &AppState,
    s: &StaffSession,
    (register, section): (Register, &str),
    form: &Params,
) -> Result<(), StoreError> {
    let corrects = corrects(form).map_err(StoreError::Rejected)?;
    let note = form.get("note").map(String::as_str).unwrap_or("");
    let actor = format!("staff:{}", s.staff.id);
    let fulfilment = &state.fulfilment;
    fulfilment
        .annotate(register, section, corrects, note, &actor)
        .await
}

const NO_SUCH_SECTION: &str = "No such register section.";

/// The entry a correction names, if any.
fn corrects(form: &Params) -> Result<Option<i64>, String> {
    match form
        .get("corrects")
        .map(|c| c.trim())
        .filter(|c| !c.is_empty())
    {
        None => Ok(None),
        Some(c) => c
            .parse::<i64>()
            .map(Some)
            .map_err(|_| "The entry to correct must be a number.".to_string()),
    }
}

/// A register section as `register.pdf` or `register.csv`.
pub(super) async fn register_export(
    State(state): State<AppState>,
    RegisterReader(s): RegisterReader,
    Path((register, file)): Path<(String, String)>,
    Query(q): Query<Params>,
) -> Page {
    let (Some(register), Some(section)) = (Register::parse(&register), q.get("section")) else {
        return Err(PortalError::NotFound("No such register."));
    };
    if !matches!(file.as_str(), "register.pdf" | "register.csv") {
        return Err(PortalError::NotFound("No such export."));
    }
    let report = section_report(&state, &s, register, section).await?;
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
    let stem = format!("{}-register-{name}", register.as_str());
    Ok(report_download(&report, file.ends_with("pdf"), &stem))
}
