//! Portal pages. Semantic HTML, one small stylesheet inline-free (served as a file), no
//! JavaScript; maud escapes every interpolated value.

use maud::{DOCTYPE, Markup, html};
use rxbridge_app::ports::{Mode, PrescriptionRecord};
use rxbridge_app::staff::{Role, StaffSession};
use rxbridge_app::staff_view::Listed;
use rxbridge_app::status_text::status_text;

/// The portal's one stylesheet (served at `/staff/style.css`). Colours meet WCAG 2.2 AA
/// contrast (text at least 4.5:1, the focus ring and borders at least 3:1); focus is always
/// visible; the sandbox banner is loud on screen and on paper; print lays a page out on A4.
pub const STYLE: &str = "*,*::before,*::after{box-sizing:border-box}\
body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fff;line-height:1.4}\
a{color:#004b93}a:hover{text-decoration-thickness:2px}\
.skip{position:absolute;left:-9999px;top:0}.skip:focus{left:1rem;top:.5rem;z-index:9;background:#ffb81c;color:#1b1b1b;padding:.5rem 1rem}\
.sandbox{background:#ffb81c;color:#1b1b1b;border-bottom:4px solid #1b1b1b;padding:.5rem 1rem;margin:0;font-weight:700}\
.bar{background:#005eb8;color:#fff;padding:.5rem 1rem;display:flex;gap:1rem;align-items:center;flex-wrap:wrap}\
.bar a{color:#fff}.bar nav a{margin-right:.75rem}.bar form{margin:0}\
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}\
.bar button{background:#fff;color:#004b93}.mode{border:2px solid #fff;border-radius:4px;padding:0 .4rem}\
main{padding:1rem;max-width:80rem}h1{margin:.5rem 0 1rem}h2{margin:1.5rem 0 .5rem}\
table{border-collapse:collapse;width:100%}caption{text-align:left;font-weight:600}\
th,td{border-bottom:1px solid #767676;padding:.35rem;text-align:left;vertical-align:top}td.num,th.num{text-align:right}\
.num{font-variant-numeric:tabular-nums}.register{font-size:.85rem}.register td{overflow-wrap:anywhere}.register td:nth-child(-n+3){white-space:nowrap}\
.flag{background:#fff3cd}.block{background:#fbe3e4}.masked{color:#4a4a4a}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.5rem 0}dt{font-weight:600}dd{margin:0}\
.sheet{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:0 2rem}\
label{display:block;margin:.5rem 0}fieldset{border:1px solid #767676;margin:.75rem 0;padding:.5rem .75rem}\
input,select,textarea,button{font:inherit;padding:.35rem .5rem;border:1px solid #4a4a4a;border-radius:3px}\
input[type=text],input[type=email],input[type=password],input[type=search],textarea{width:min(36rem,100%)}textarea{min-height:4.5rem;display:block}\
input[type=checkbox]{width:1.1rem;height:1.1rem;vertical-align:middle}\
button{background:#005eb8;color:#fff;border-color:#004b93;cursor:pointer}button.danger{background:#a4161a;border-color:#7a1013}\
.buttons{display:flex;gap:.75rem;flex-wrap:wrap;margin:.5rem 0}\
.badge{border:1px solid #1b1b1b;border-radius:3px;padding:0 .3rem;font-size:.85rem}\
.note{background:#e8f1fa;border-left:4px solid #005eb8;padding:.5rem .75rem;margin:.75rem 0}\
.confirm{border:3px solid #a4161a;background:#fdf0f0;padding:.5rem 1rem;margin:1rem 0}\
.error{color:#8a1c1c;font-weight:600}\
.tabs{display:flex;gap:.25rem;border-bottom:2px solid #005eb8;margin:0 0 1rem}.tabs a{padding:.4rem .9rem;border:1px solid #767676;border-bottom:none;border-radius:4px 4px 0 0;text-decoration:none}\
.tabs a[aria-current=page]{background:#005eb8;color:#fff;border-color:#005eb8}\
:focus-visible{outline:3px solid #1b1b1b;outline-offset:2px;box-shadow:0 0 0 6px #ffb81c}\
@media print{@page{size:A4;margin:14mm}body{font-size:10pt}.bar,.skip,form,.tabs,.no-print{display:none}\
main{max-width:none;padding:0}a{color:inherit;text-decoration:none}tr{break-inside:avoid}\
.sandbox{border:2px solid #1b1b1b}th,td{border-bottom:1px solid #1b1b1b}}";

/// When, in the pharmacy's time zone, with the zone shown (GMT or BST).
pub fn london(at: jiff::Timestamp) -> String {
    let zoned = at.to_zoned_datetime(rxbridge_domain::dates::london().clone());
    zoned.strftime("%Y-%m-%d %H:%M:%S %Z").to_string()
}

/// What a page shows: one data set (live or sandbox), or system settings that span both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Data(Mode),
    /// Settings of both data sets, reached from this one (its links keep it).
    System(Mode),
}

impl From<Mode> for Scope {
    fn from(m: Mode) -> Self {
        Scope::Data(m)
    }
}

pub fn layout(
    title: &str,
    who: Option<&StaffSession>,
    scope: impl Into<Scope>,
    body: Markup,
) -> Markup {
    let scope = scope.into();
    let mode = match scope {
        Scope::Data(m) | Scope::System(m) => m,
    };
    let sandbox = scope == Scope::Data(Mode::Test);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { @if sandbox { "SANDBOX · " } (title) " — rxbridge staff" }
                link rel="stylesheet" href="/staff/style.css";
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header {
                    @if sandbox {
                        p.sandbox { "SANDBOX — test data only: no real patient, prescription or payment." }
                    }
                    div.bar {
                        strong { "rxbridge" }
                        @if let Some(s) = who { (staff_header(s, scope, mode)) }
                    }
                }
                main id="main" tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// The signed-in header: the role's pages (each link keeps the data set), the data set and
/// its switch, who is signed in, sign out.
fn staff_header(s: &StaffSession, scope: Scope, mode: Mode) -> Markup {
    let m = mode.as_str();
    let other = if mode == Mode::Live { "test" } else { "live" };
    html! {
        nav aria-label="Main" {
            a href={ "/staff?mode=" (m) } { "Search" }
            @if s.staff.role == Role::Pharmacist { a href={ "/staff/worklist?mode=" (m) } { "Worklist" } }
            @if matches!(s.staff.role, Role::Finance | Role::Admin) { a href={ "/staff/finance?mode=" (m) } { "Finance" } }
            @if matches!(s.staff.role, Role::Pharmacist | Role::Admin) { a href={ "/staff/registers?mode=" (m) } { "Registers" } }
            @if s.staff.role == Role::Admin {
                a href={ "/staff/admin/webhooks?mode=" (m) } { "Webhooks" }
                a href={ "/staff/admin/staff?mode=" (m) } { "Staff" }
                a href={ "/staff/admin/audit?mode=" (m) } { "Audit trail" }
            }
        }
        @match scope {
            Scope::Data(_) => { span { "Data: " strong.mode { (if mode == Mode::Test { "test (sandbox)" } else { "live" }) } " (" a href={ "/staff?mode=" (other) } { "switch" } ")" } }
            Scope::System(_) => { span { "System settings: live and sandbox" } }
        }
        span { (s.staff.email) " · " (s.staff.role.as_str()) }
        form method="post" action="/staff/logout" {
            input type="hidden" name="csrf" value=(s.csrf_token);
            button type="submit" { "Sign out" }
        }
    }
}

/// A message page in `mode`'s data set (its banner and title say sandbox for test).
pub fn message(title: &str, text: &str, mode: Mode) -> Markup {
    let back = super::respond::with_mode("/staff", mode);
    layout(
        title,
        None,
        mode,
        html! { p { (text) } p { a href=(back) { "Back" } } },
    )
}

pub fn login(csrf: &str, error: Option<&str>, mode: Mode) -> Markup {
    login_page(csrf, (error, None), None, mode)
}

/// The sign-in page, with why the last attempt was refused and the email it was typed with;
/// with an external provider (`Some(label)`), a link to it instead of the password form.
pub fn login_page(
    csrf: &str,
    (error, email): (Option<&str>, Option<&str>),
    external: Option<&str>,
    mode: Mode,
) -> Markup {
    layout(
        "Sign in",
        None,
        mode,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            @if let Some(label) = external {
                p { a.button href=(super::respond::with_mode("/staff/login/external", mode)) { "Sign in with " (label) } }
            } @else {
            form method="post" action=(super::respond::with_mode("/staff/login", mode)) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="mode" value=(mode.as_str());
                label { "Email " input type="email" name="email" autocomplete="username" required value=[email]; }
                label { "Password " input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
            }
        },
    )
}

pub fn password(s: &StaffSession, error: Option<&str>, mode: Mode) -> Markup {
    layout(
        "Change your password",
        Some(s),
        mode,
        html! {
            @if s.staff.must_change_password { p { "Your one-time password must be changed before you continue." } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action={ "/staff/password?mode=" (mode.as_str()) } {
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
                    option value="phone" { "Phone number" }
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
                            td { (r.record.status.as_str()) br; small { (status_text(r.record.status).line) } }
                            td { (london(r.record.created_at)) }
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
    use rxbridge_domain::pricing::QuoteKind;
    html! {
        section aria-labelledby="h-payment" {
        h2 id="h-payment" { "Payment" }
        p { "Status: " strong { (p.status.as_str()) } " · " (p.quote.kind.as_str()) " · provider " (p.provider) " · id " code { (p.id) } }
        @if let Some(a) = &p.attention { p.error role="alert" { "Needs attention: " (a) } }
        table {
            thead { tr { th scope="col" { "Line" } th.num scope="col" { "Quantity" } th.num scope="col" { "Unit price" } th.num scope="col" { "Amount" } } }
            tbody {
                @for l in &p.quote.lines {
                    tr {
                        td { (l.product_name) }
                        @if p.quote.kind == QuoteKind::Private {
                            td.num { (l.quantity) } td.num { "× " (Money::pence(l.unit_price_pence)) }
                        } @else {
                            // The NHS charge is per item, whatever the quantity of it.
                            td.num { "1 item" } td.num { "× " (Money::pence(l.unit_price_pence)) }
                        }
                        td.num { (Money::pence(l.amount_pence)) }
                    }
                }
                @if p.quote.dispensing_fee_pence > 0 { tr { td { "Dispensing fee" } td {} td {} td.num { (Money::pence(p.quote.dispensing_fee_pence)) } } }
                @if p.quote.delivery_fee_pence > 0 { tr { td { "Tracked delivery" } td {} td {} td.num { (Money::pence(p.quote.delivery_fee_pence)) } } }
                tr { th scope="row" { "Total" } td {} td {} th.num { (p.quote.total()) } }
            }
        }
        @if let Some(code) = &p.quote.exemption { p { "NHS exemption " (code) " · evidence " (if p.quote.evidence_seen == Some(true) { "seen" } else { "not seen" }) " · charge date " (p.quote.charge_date) } }
        p { "Paid " (Money::pence(p.paid_pence)) " · refunded " (Money::pence(p.refunded_pence)) " · pay by " (london(p.due_by)) }
        @if let Some(link) = link {
            p { "Payment link (for the patient only): " code.link { (link) } }
            form method="post" action={ "/staff/payments/" (p.id) "/resend?mode=" (mode.as_str()) } {
                input type="hidden" name="csrf" value=(s.csrf_token);
                button type="submit" { "Email the payment link again" }
            }
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
