//! Portal pages. Semantic HTML, one small stylesheet inline-free (served as a file), no
//! JavaScript; maud escapes every interpolated value.

use maud::{DOCTYPE, Markup, html};
use rxbridge_app::ports::{Mode, PrescriptionRecord};
use rxbridge_app::staff::{Role, StaffSession};
use rxbridge_app::staff_view::Listed;

pub const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b}\
header{background:#005eb8;color:#fff;padding:.5rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}\
header a{color:#fff}main{padding:1rem;max-width:70rem}table{border-collapse:collapse;width:100%}\
th,td{border-bottom:1px solid #ccc;padding:.35rem;text-align:left;vertical-align:top}\
.flag{background:#fff3cd}.block{background:#f8d7da}.masked{color:#555}\
label{display:block;margin:.4rem 0}input,select,textarea,button{font:inherit;padding:.3rem}\
.error{color:#8a1c1c;font-weight:600}:focus{outline:3px solid #ffb81c}";

pub fn layout(title: &str, who: Option<&StaffSession>, mode: Mode, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — rxbridge staff" }
                link rel="stylesheet" href="/staff/style.css";
            }
            body {
                header {
                    strong { "rxbridge" }
                    @if let Some(s) = who {
                        nav aria-label="Main" {
                            a href={ "/staff?mode=" (mode.as_str()) } { "Search" }
                            " "
                            @if s.staff.role == Role::Pharmacist {
                                a href={ "/staff/worklist?mode=" (mode.as_str()) } { "Worklist" } " "
                            }
                            @if matches!(s.staff.role, Role::Finance | Role::Admin) {
                                a href={ "/staff/finance?mode=" (mode.as_str()) } { "Finance" } " "
                            }
                            @if matches!(s.staff.role, Role::Pharmacist | Role::Admin) {
                                a href="/staff/registers" { "Registers" } " "
                            }
                            @if s.staff.role == Role::Admin {
                                a href="/staff/admin/webhooks" { "Webhooks" } " "
                                a href="/staff/admin/staff" { "Staff" } " "
                                a href={ "/staff/admin/audit?mode=" (mode.as_str()) } { "Audit trail" }
                            }
                        }
                        span { "Data: " strong { (mode.as_str()) } " (" a href={ "?mode=" (if mode == Mode::Live { "test" } else { "live" }) } { "switch" } ")" }
                        span { (s.staff.email) " · " (s.staff.role.as_str()) }
                        form method="post" action="/staff/logout" {
                            input type="hidden" name="csrf" value=(s.csrf_token);
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

pub fn message(title: &str, text: &str) -> Markup {
    layout(
        title,
        None,
        Mode::Live,
        html! { p { (text) } p { a href="/staff" { "Back" } } },
    )
}

pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    login_page(csrf, error, None)
}

/// The sign-in page; with an external provider (`Some(label)`), a link to it instead of the
/// password form.
pub fn login_page(csrf: &str, error: Option<&str>, external: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        Mode::Live,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if let Some(label) = external {
                p { a.button href="/staff/login/external" { "Sign in with " (label) } }
            } @else {
            form method="post" action="/staff/login" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Email " input type="email" name="email" autocomplete="username" required; }
                label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
            }
        },
    )
}

pub fn password(s: &StaffSession, error: Option<&str>) -> Markup {
    layout(
        "Change your password",
        Some(s),
        Mode::Live,
        html! {
            @if s.staff.must_change_password { p { "Your one-time password must be changed before you continue." } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/staff/password" {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Current password " input type="password" name="current" autocomplete="current-password" required; }
                label { "New password (at least 12 characters) " input type="password" name="new" autocomplete="new-password" minlength="12" required; }
                button type="submit" { "Change password" }
            }
        },
    )
}

pub fn search_form(mode: Mode) -> Markup {
    html! {
        form method="get" action="/staff/search" role="search" {
            input type="hidden" name="mode" value=(mode.as_str());
            label { "Search by "
                select name="by" {
                    option value="id" { "Prescription id" }
                    option value="reference" { "Clinic reference" }
                    option value="nhs" { "NHS number" }
                    option value="email" { "Email" }
                    option value="postcode" { "Postcode" }
                    option value="family_dob" { "Family name + date of birth" }
                }
            }
            label { "Value " input type="search" name="q" required; }
            label { "Date of birth (with family name) " input type="date" name="dob"; }
            button type="submit" { "Search" }
        }
    }
}

fn flagged(r: &PrescriptionRecord) -> bool {
    r.findings
        .iter()
        .any(|f| f.severity == rxbridge_domain::Severity::Flag)
}

pub fn list(mode: Mode, rows: &[Listed], empty: &str) -> Markup {
    html! {
        @if rows.is_empty() { p { (empty) } } @else {
            table {
                thead { tr { th { "Prescription" } th { "Patient" } th { "Status" } th { "Received" } th { "Flags" } } }
                tbody {
                    @for r in rows {
                        tr class=[flagged(&r.record).then_some("flag")] {
                            td { a href={ "/staff/prescriptions/" (r.record.id) "?mode=" (mode.as_str()) } { (r.record.clinic_reference) } br; small { (r.record.id) } }
                            td.masked { (r.patient) }
                            td { (r.record.status.as_str()) }
                            td { (r.record.created_at.strftime("%Y-%m-%d %H:%M")) }
                            td { @if flagged(&r.record) { "flagged" } }
                        }
                    }
                }
            }
        }
    }
}

/// The money panel on a prescription page.
pub fn payment_panel(
    s: &StaffSession,
    mode: Mode,
    p: &rxbridge_app::payments::PaymentRecord,
    link: Option<&str>,
) -> Markup {
    use rxbridge_domain::money::Money;
    html! {
        h2 { "Payment" }
        p { "Status: " strong { (p.status.as_str()) } " · " (p.quote.kind.as_str()) " · provider " (p.provider) " · id " code { (p.id) } }
        @if let Some(a) = &p.attention { p.error role="alert" { "Needs attention: " (a) } }
        table {
            thead { tr { th { "Line" } th { "Quantity" } th { "Unit" } th { "Amount" } } }
            tbody {
                @for l in &p.quote.lines { tr { td { (l.product_name) } td { (l.quantity) } td { (Money::pence(l.unit_price_pence)) } td { (Money::pence(l.amount_pence)) } } }
                @if p.quote.dispensing_fee_pence > 0 { tr { td { "Dispensing fee" } td {} td {} td { (Money::pence(p.quote.dispensing_fee_pence)) } } }
                @if p.quote.delivery_fee_pence > 0 { tr { td { "Tracked delivery" } td {} td {} td { (Money::pence(p.quote.delivery_fee_pence)) } } }
                tr { th { "Total" } td {} td {} th { (p.quote.total()) } }
            }
        }
        @if let Some(code) = &p.quote.exemption { p { "NHS exemption " (code) " · evidence " (if p.quote.evidence_seen == Some(true) { "seen" } else { "not seen" }) " · charge date " (p.quote.charge_date) } }
        p { "Paid " (Money::pence(p.paid_pence)) " · refunded " (Money::pence(p.refunded_pence)) " · pay by " (p.due_by.strftime("%Y-%m-%d %H:%M UTC")) }
        @if let Some(link) = link {
            p { "Payment link (for the patient only): " code.link { (link) } }
            form method="post" action={ "/staff/payments/" (p.id) "/resend?mode=" (mode.as_str()) } {
                input type="hidden" name="csrf" value=(s.csrf_token);
                button type="submit" { "Email the payment link again" }
            }
        }
    }
}

/// The finance page: the month's exports and the payments needing attention.
pub fn finance(
    s: &StaffSession,
    mode: Mode,
    month: &str,
    report: Option<&rxbridge_app::finance::Report>,
    error: Option<&str>,
) -> Markup {
    layout(
        "Finance",
        Some(s),
        mode,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="get" action="/staff/finance" {
                input type="hidden" name="mode" value=(mode.as_str());
                label { "Month " input type="month" name="month" value=(month) required pattern="[0-9]{4}-[0-9]{2}"; }
                button type="submit" { "Show" }
            }
            h2 { "Month-end exports" }
            table {
                thead { tr { th { "Export" } th { "CSV" } th { "PDF" } } }
                tbody {
                    @for k in rxbridge_app::finance::ExportKind::ALL {
                        tr {
                            td { (k.title()) }
                            td { a href={ "/staff/finance/export/" (k.as_str()) ".csv?mode=" (mode.as_str()) "&month=" (month) } { (k.as_str()) ".csv" } }
                            td { a href={ "/staff/finance/export/" (k.as_str()) ".pdf?mode=" (mode.as_str()) "&month=" (month) } { (k.as_str()) ".pdf" } }
                        }
                    }
                }
            }
            @if let Some(r) = report {
                h2 { "Payments reconciliation " (r.month) }
                table.totals { tbody { @for (k, v) in &r.totals { tr { th scope="row" { (k) } td { (v) } } } } }
                @if r.differences.is_empty() {
                    p { "No differences." }
                } @else {
                    h3 { "Differences (" (r.differences.len()) ")" }
                    ul { @for d in &r.differences { li { (d) } } }
                }
            }
        },
    )
}
