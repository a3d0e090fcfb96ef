//! The prescription page laid out as a pharmacist checks it, top to bottom in the order a
//! prescription is read: patient, prescriber, authority (the paper original's serial hidden
//! until matched), items, findings with the records they point at, the patient's supply
//! history across clinics; then payment, the decision and the timeline. A refused form comes
//! back with what was typed and why, next to it; a rejection asks to be confirmed.

use super::pages::{self, layout, london};
use maud::{Markup, html};
use rxbridge_app::clinical_view::{ClinicalView, Related, SerialShown};
use rxbridge_app::events::EventRecord;
use rxbridge_app::ports::{Mode, PrescriptionRecord};
use rxbridge_app::staff::StaffSession;
use rxbridge_app::staff_view::{DecisionOptions, PatientDetails, PrescriptionPage};
use rxbridge_app::status_text::status_text;

/// The forms of the prescription page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Decision,
    /// The rejection, awaiting its confirmation.
    ConfirmReject,
    Note,
    Cancel,
    Original,
    /// Sending the payment link again (its refusal is shown at the top).
    Payment,
    /// The patient's NHS charge exemption declaration (`declare.rs`).
    Exemption,
}

impl Form {
    const ALL: [Form; 7] = [
        Form::Decision,
        Form::ConfirmReject,
        Form::Note,
        Form::Cancel,
        Form::Original,
        Form::Payment,
        Form::Exemption,
    ];
    /// The form's name in a kept answer.
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Decision => "decision",
            Form::ConfirmReject => "confirm_reject",
            Form::Note => "note",
            Form::Cancel => "cancel",
            Form::Original => "original",
            Form::Payment => "payment",
            Form::Exemption => "exemption",
        }
    }
    pub fn parse(name: &str) -> Option<Form> {
        Form::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// A form on the page shown again: which, why (next to it), and what was typed into it.
pub struct Again<'a> {
    pub form: Form,
    pub why: Option<&'a str>,
    pub typed: &'a [(String, String)],
    /// The reason a masked viewer gave to open the full record (carried to the scan's link).
    pub reason: Option<&'a str>,
}

/// A dose in mg as a pharmacist writes it: `36`, `7.5`, `0.25` (at most two decimals).
fn mg(x: f64) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The link to a stored scan of `rec`'s original. A viewer who opened the record with a reason
/// opens the scan with the same.
fn scan_href(doc: &str, rec: &PrescriptionRecord, again: &Again<'_>) -> String {
    let reason = again
        .reason
        .map(|r| format!("&reason={}", super::subject_access::urlencode(r)));
    format!(
        "/staff/documents/{doc}?prescription={}&mode={}{}",
        rec.id,
        rec.mode.as_str(),
        reason.unwrap_or_default()
    )
}

impl Again<'_> {
    fn why(&self, form: Form) -> Option<&str> {
        self.why.filter(|_| self.form == form)
    }
    fn typed(&self, form: Form, name: &str) -> Option<&str> {
        (self.form == form)
            .then(|| self.typed.iter().find(|(n, _)| n == name))
            .flatten()
            .map(|(_, v)| v.as_str())
    }
    fn ticked(&self, form: Form, name: &str, value: &str) -> bool {
        self.form == form && self.typed.iter().any(|(n, v)| n == name && v == value)
    }
}

fn href(rec_id: &str, mode: Mode, action: &str) -> String {
    format!(
        "/staff/prescriptions/{rec_id}{action}?mode={}",
        mode.as_str()
    )
}

fn alert(why: Option<&str>) -> Markup {
    html! { @if let Some(e) = why { p.error role="alert" { (e) } } }
}

/// Who an actor is, in words (`describe_actor`).
pub type ActorNames<'a> = dyn Fn(&str) -> String + 'a;

pub fn page(
    s: &StaffSession,
    mode: Mode,
    p: &PrescriptionPage,
    again: &Again<'_>,
    actor: &ActorNames<'_>,
) -> Markup {
    let rec = &p.record;
    let c = &p.clinical;
    layout(
        &format!("Prescription {}", rec.clinic_reference),
        Some(s),
        mode,
        html! {
            @if !on_page(p, again.form) { (alert(again.why)) }
            @if s.staff.role == rxbridge_app::staff::Role::Admin { (tabs(rec, mode, Tab::Check, p.access.len())) }
            p.summary { "Status: " strong { (rec.status.as_str()) } " · " (rec.kind.as_str()) " · issued " (rec.issued_on) " · received " (london(rec.created_at)) " · id " code { (rec.id) } }
            @let said = status_text(rec.status);
            p.note { (said.line) " " strong { "Tell the patient: " } (said.tell) }
            @if again.form == Form::ConfirmReject { (confirm_reject(s, mode, rec, again)) }
            div.sheet {
                (patient(mode, rec, &p.patient, c))
                (prescriber(c))
            }
            (authority(s, mode, rec, c, again))
            (items(c))
            (findings(mode, rec, &c.related))
            (history(mode, &p.patient, c))
            (super::declare::section(s, mode, rec, again))
            @if let Some(pay) = &p.payment { (pages::payment_panel(s, mode, &pay.payment, pay.link.as_deref())) }
            @if let Some(d) = &p.decision { (decision(s, mode, rec, d, again)) }
            (actions(s, mode, rec, again))
            (timeline(rec, &p.timeline, actor, (p.patient.masked, again)))

        },
    )
}

/// Whether `form` is on the page (an error for a form that is not is shown at the top).
fn on_page(p: &PrescriptionPage, form: Form) -> bool {
    match form {
        Form::Decision => p.decision.is_some(),
        Form::Original => p.record.status == rxbridge_domain::Status::AwaitingOriginal,
        Form::Cancel => p.record.status.cancel().is_ok(),
        Form::Exemption => super::declare::open(&p.record),
        Form::Note | Form::ConfirmReject => true,
        Form::Payment => false,
    }
}

fn patient(
    mode: Mode,
    rec: &PrescriptionRecord,
    patient: &PatientDetails,
    c: &ClinicalView,
) -> Markup {
    html! {
        section aria-labelledby="h-patient" {
            h2 id="h-patient" { "Patient" }
            dl {
                @for (k, v) in &patient.lines {
                    dt { (k) }
                    dd class=[patient.masked.then_some("masked")] {
                        (v)
                        @if let (true, Some(age)) = (*k == "Date of birth", c.age) { " (age " (age) ")" }
                    }
                }
            }
            @if patient.masked {
                form method="get" action={ "/staff/prescriptions/" (rec.id) } {
                    input type="hidden" name="mode" value=(mode.as_str());
                    label { "Reason for opening the full record (logged) " input type="text" name="reason" required maxlength="200"; }
                    button type="submit" { "Open full record" }
                }
            }
        }
    }
}

fn prescriber(c: &ClinicalView) -> Markup {
    let p = &c.prescriber;
    html! {
        section aria-labelledby="h-prescriber" {
            h2 id="h-prescriber" { "Prescriber" }
            dl {
                dt { "Name" } dd { (p.name) }
                dt { "Kind" } dd { (p.kind.unwrap_or("not stated")) }
                dt { "Registration" } dd { (p.registration) }
                dt { "Private prescriber code" } dd { (p.private_prescriber_code.as_deref().unwrap_or("—")) }
                dt { "Address" } dd { (p.address) }
            }
        }
    }
}

fn authority(
    s: &StaffSession,
    mode: Mode,
    rec: &PrescriptionRecord,
    c: &ClinicalView,
    again: &Again<'_>,
) -> Markup {
    let a = &c.authority;
    html! {
        section aria-labelledby="h-authority" {
            h2 id="h-authority" { "Authority" }
            dl {
                dt { "Form" } dd { (a.form) }
                @match &a.serial {
                    SerialShown::Hidden => { dt { "Serial number" } dd { "Hidden until the original is matched: key in the serial on the form you hold." } }
                    SerialShown::Matched(serial) => { dt { "Serial number" } dd { code { (serial) } } }
                    SerialShown::None => {}
                }
                @if let Some(eps) = &a.eps_id { dt { "EPS prescription id" } dd { code { (eps) } } }
                @if let Some(sig) = &a.signature { dt { "Signature" } dd { (sig) } }
                @if let Some(href) = a.scan.as_deref().map(|d| scan_href(d, rec, again)) {
                    dt { "Scan of the original" }
                    @if rxbridge_app::staff_view::masked_for(s.staff.role, again.reason) { dd { "Stored. It shows the patient in full: open the record with your reason to download it." } }
                    @else { dd { a href=(href) { "Open the scan" } } }
                }
            }
            @if rec.status == rxbridge_domain::Status::AwaitingOriginal {
                h3 { "Paper original" }
                p { "Supply waits until the signed original arrives and its serial number matches the one the clinic sent." }
                (alert(again.why(Form::Original)))
                form method="post" enctype="multipart/form-data" action=(href(&rec.id, mode, "/original")) {
                    input type="hidden" name="csrf" value=(s.csrf_token);
                    label { "Serial number on the form " input type="text" name="serial" required maxlength="64" autocomplete="off" value=[again.typed(Form::Original, "serial")]; }
                    label { "Scan (PDF, JPEG or PNG, at most 10 MiB) " input type="file" name="scan" accept="application/pdf,image/jpeg,image/png"; }
                    button type="submit" { "Record the original" }
                }
            }
        }
    }
}

fn items(c: &ClinicalView) -> Markup {
    html! {
        section aria-labelledby="h-items" {
            h2 id="h-items" { "Items" }
            table.items {
                thead { tr { th scope="col" { "Product" } th scope="col" { "Quantity" } th scope="col" { "Dose and directions" } th scope="col" { "Days" } th scope="col" { "Daily dose" } } }
                tbody {
                    @for i in &c.items {
                        tr {
                            td {
                                strong { (i.product) }
                                @if let Some(sch) = i.schedule { " " span.badge { (sch) } }
                                br; small { (i.form.as_deref().unwrap_or("")) @if let Some(st) = &i.strength { " · " (st) } " · " code { (i.product_code) } }
                            }
                            td {
                                span.num { (i.quantity) } " (" (i.words_of_figures) ")"
                                @if !i.figures_given { br; small.error { "no figures on the prescription" } }
                                @if let Some(w) = &i.words_written { br; small { "in words as written: “" (w) "”" } }
                            }
                            td { (i.dose) br; small { (i.directions) } }
                            td { span.num { (i.days_computed) } " computed" br; small { "declared: " (i.days_declared.map_or("—".to_string(), |d| d.to_string())) } }
                            td {
                                @if let Some(d) = &i.daily_dose {
                                    span class=[d.over().then_some("error")] { (mg(d.mg)) " mg" @if d.over() { " — over the licensed maximum" } }
                                    @if let Some((max, whose)) = &d.max { br; small { "licensed max " (mg(*max)) " mg (" (whose) ")" } }
                                } @else { "—" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn findings(mode: Mode, rec: &PrescriptionRecord, related: &[Vec<Related>]) -> Markup {
    html! {
        section aria-labelledby="h-findings" {
            h2 id="h-findings" { "Findings" }
            @if rec.findings.is_empty() { p { "None." } } @else {
                table {
                    thead { tr { th scope="col" { "Severity" } th scope="col" { "Rule" } th scope="col" { "Finding" } th scope="col" { "Source" } } }
                    tbody {
                        @for (n, f) in rec.findings.iter().enumerate() {
                            tr class=(f.severity.as_str()) {
                                td { (f.severity.as_str()) }
                                td { code { (f.code) } }
                                td {
                                    @if let Some(i) = f.item { "Item " (i + 1) ": " }
                                    (f.message)
                                    @for r in related.get(n).into_iter().flatten() {
                                        br; a href=(href(&r.id, mode, "")) { "Open " (r.why) " (" (r.clinic_reference) ")" }
                                    }
                                }
                                td { (f.rule) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn history(mode: Mode, patient: &PatientDetails, c: &ClinicalView) -> Markup {
    html! {
        section aria-labelledby="h-history" {
            h2 id="h-history" { "Supply history (all clinics)" }
            @if patient.masked { p { "Open the full record to see the patient's earlier supplies." } }
            @else if c.history.is_empty() { p { "No earlier supplies to this patient." } }
            @else {
                table {
                    thead { tr { th scope="col" { "From" } th scope="col" { "Product" } th scope="col" { "Quantity" } th scope="col" { "Days" } th scope="col" { "Status" } th scope="col" { "Clinic" } } }
                    tbody {
                        @for h in &c.history {
                            tr {
                                td { (h.start) }
                                td { a href=(href(&h.prescription_id, mode, "")) { (h.product) } }
                                td.num { (h.quantity.map_or("—".to_string(), |q| q.to_string())) }
                                td.num { (h.days) }
                                td { (h.status.as_str()) }
                                td { (h.clinic) @if h.same_clinic { " (this clinic)" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn decision(
    s: &StaffSession,
    mode: Mode,
    rec: &PrescriptionRecord,
    d: &DecisionOptions,
    again: &Again<'_>,
) -> Markup {
    let f = Form::Decision;
    html! {
        section aria-labelledby="h-decision" {
            h2 id="h-decision" { "Clinical check" }
            (alert(again.why(f)))
            form method="post" action=(href(&rec.id, mode, "/decision")) {
                input type="hidden" name="csrf" value=(s.csrf_token);
                input type="hidden" name="version" value=(d.version);
                @if !d.flags.is_empty() {
                    fieldset { legend { "Acknowledge each flag to approve" }
                        @for flag in &d.flags {
                            label.ack {
                                input type="checkbox" name="ack" value=(flag.key) checked[again.ticked(f, "ack", &flag.key)];
                                " " code { (flag.code) } @if let Some(i) = flag.item { " (item " (i + 1) ")" } " — " (flag.message) " " small { "(" (flag.rule) ")" }
                            }
                        }
                    }
                }
                @let amendments = amendments(d);
                @if !amendments.is_empty() {
                    fieldset { legend { "Amendments (MDR 2001 reg 16(1A)-(1B): indelible, attributable)" }
                        @for (name, label) in &amendments { label { (label) " " input type="text" name=(name) maxlength="200" autocomplete="off" value=[again.typed(f, name)]; } }
                    }
                }
                (on_approve(d))
                label { "Reason for the decision (recorded) " textarea name="reason" required maxlength="1000" { (again.typed(f, "reason").unwrap_or("")) } }
                div.buttons {
                    button type="submit" name="decision" value="approve" { "Approve" }
                    button type="submit" name="decision" value="query" { "Query the prescriber" }
                    button.danger type="submit" name="decision" value="reject" { "Reject…" }
                }
                p { small { "Reject asks you to confirm before anything is recorded." } }
            }
        }
    }
}

/// Per amendable finding, the form field and what the pharmacist records in it.
fn amendments(d: &DecisionOptions) -> Vec<(String, String)> {
    use rxbridge_domain::compliance::{CD_QUANTITY_FIGURES_MISSING, CD_QUANTITY_WORDS_MISSPELT};
    d.amendable
        .iter()
        .map(|f| {
            let what = match f.code.as_str() {
                CD_QUANTITY_FIGURES_MISSING => "the quantity in figures you added",
                CD_QUANTITY_WORDS_MISSPELT => "the quantity in words as you corrected it",
                _ => "the quantity in words you added",
            };
            let item = f
                .item
                .map(|i| format!("Item {}: ", i + 1))
                .unwrap_or_default();
            let key = rxbridge_app::clinical::amendment_key(&f.code, f.item);
            (key, format!("{item}{what} (MDR 2001 reg 16(1A), recorded)"))
        })
        .collect()
}

/// What approving does: the price, the payment link, the release.
fn on_approve(d: &DecisionOptions) -> Markup {
    use rxbridge_domain::money::Money;
    html! {
        div.note {
            strong { "Approving will: " }
            @match &d.on_approve {
                Some(p) if p.quote.total_pence > 0 => {
                    "charge " (Money::pence(p.quote.total_pence)) " (" (p.quote.kind.as_str()) "), email the patient a payment link to pay by "
                    (london(p.due_by))
                    @if p.due_by_is_cd_window { " (the end of the CD validity window)" }
                    ", and release the order to the warehouse once paid."
                }
                Some(_) => { "charge nothing (exempt) and release the order to the warehouse straight away." }
                None => { "not go ahead: this prescription cannot be priced; approving will say why." }
            }
        }
    }
}

fn confirm_reject(
    s: &StaffSession,
    mode: Mode,
    rec: &PrescriptionRecord,
    again: &Again<'_>,
) -> Markup {
    let f = Form::ConfirmReject;
    html! {
        section.confirm aria-labelledby="h-confirm" {
            h2 id="h-confirm" { "Confirm the rejection" }
            p { "Rejecting is final: nothing is supplied and the clinic is told, with your reason." }
            p { "Reason: " strong { (again.typed(f, "reason").unwrap_or("")) } }
            form method="post" action=(href(&rec.id, mode, "/decision")) {
                input type="hidden" name="csrf" value=(s.csrf_token);
                @for name in ["version", "reason"] { input type="hidden" name=(name) value=(again.typed(f, name).unwrap_or("")); }
                input type="hidden" name="confirm" value="yes";
                button.danger type="submit" name="decision" value="reject" { "Confirm rejection" }
                " "
                a href=(href(&rec.id, mode, "")) { "Go back without rejecting" }
            }
        }
    }
}

fn actions(s: &StaffSession, mode: Mode, rec: &PrescriptionRecord, again: &Again<'_>) -> Markup {
    html! {
        section aria-labelledby="h-actions" {
            h2 id="h-actions" { "Notes and actions" }
            (alert(again.why(Form::Note)))
            form method="post" action=(href(&rec.id, mode, "/note")) {
                input type="hidden" name="csrf" value=(s.csrf_token);
                label { "Add a note " textarea name="note" required maxlength="2000" { (again.typed(Form::Note, "note").unwrap_or("")) } }
                button type="submit" { "Add note" }
            }
            @if rec.status.cancel().is_ok() {
                (alert(again.why(Form::Cancel)))
                form method="post" action=(href(&rec.id, mode, "/cancel")) {
                    input type="hidden" name="csrf" value=(s.csrf_token);
                    label { "Cancel on the patient's request — reason " input type="text" name="reason" required maxlength="500" value=[again.typed(Form::Cancel, "reason")]; }
                    button type="submit" { "Cancel prescription" }
                }
            }
        }
    }
}

/// State changes and staff actions, with who did them and why.
fn timeline(
    rec: &PrescriptionRecord,
    timeline: &[EventRecord],
    actor: &ActorNames<'_>,
    (masked, again): (bool, &Again<'_>),
) -> Markup {
    html! {
        section aria-labelledby="h-timeline" {
            h2 id="h-timeline" { "Timeline" }
            ol.timeline {
                @for e in timeline {
                    li {
                        time datetime=(e.event.at.to_string()) { (london(e.event.at)) } " — " strong { (e.event.kind) } " by " (actor(&e.event.actor))
                        @if let Some(r) = e.event.detail.get("reason").and_then(|r| r.as_str()) { " — " (r) }
                        @if let Some(q) = e.event.detail.get("question").and_then(|r| r.as_str()) { " — " (q) }
                        @if let Some(n) = e.event.detail.get("note").and_then(|r| r.as_str()) { blockquote { (n) } }
                        @for a in e.event.detail.get("amendments").and_then(|a| a.as_array()).into_iter().flatten() {
                            br; small { "Amended " (a.get("flag").and_then(|f| f.as_str()).unwrap_or("")) ": “" (a.get("added").and_then(|f| f.as_str()).unwrap_or("")) "”" }
                        }
                        @if let Some(href) = e.event.detail.get("document").and_then(|d| d.get("id")).and_then(|d| d.as_str()).filter(|_| !masked).map(|d| scan_href(d, rec, again)) {
                            " — " a href=(href) { "scan" } }
                    }
                }
            }
        }
    }
}

/// The record's tabs (administrators): the clinical check, and the access log.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Check,
    Access,
}

fn tabs(rec: &PrescriptionRecord, mode: Mode, on: Tab, looks: usize) -> Markup {
    let current = |t: Tab| (on == t).then_some("page");
    html! {
        nav.tabs aria-label="This prescription" {
            a href=(href(&rec.id, mode, "")) aria-current=[current(Tab::Check)] { "Clinical check" }
            a href=(href(&rec.id, mode, "/access")) aria-current=[current(Tab::Access)] { "Access log (" (looks) ")" }
        }
    }
}

/// Every look at this record (administrators only): who, when, masked or not, and why.
pub fn access_page(
    s: &StaffSession,
    mode: Mode,
    rec: &PrescriptionRecord,
    access: &[EventRecord],
    actor: &ActorNames<'_>,
) -> Markup {
    let title = format!("Access log {}", rec.clinic_reference);
    layout(
        &title,
        Some(s),
        mode,
        html! {
            (tabs(rec, mode, Tab::Access, access.len()))
            section aria-labelledby="h-access" {
                h2 id="h-access" { "Every look at this prescription (" (access.len()) ")" }
                table {
                    thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Reason given" } } }
                    tbody {
                        @for e in access {
                            tr {
                                td { (london(e.event.at)) }
                                td { (actor(&e.event.actor)) }
                                td { (e.event.kind) @if e.event.detail.get("masked") == Some(&serde_json::Value::Bool(true)) { " (masked)" } }
                                td { (e.event.detail.get("reason").and_then(|r| r.as_str()).unwrap_or("—")) }
                            }
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn doses_read_as_a_pharmacist_writes_them() {
        let cases = [
            (36.0, "36"),
            (100.0, "100"),
            (7.5, "7.5"),
            (0.25, "0.25"),
            (1.0 / 3.0, "0.33"),
            (0.0, "0"),
        ];
        for (x, shown) in cases {
            assert_eq!(super::mg(x), shown, "{x}");
        }
    }
}
