//! Portal handlers: parse → use case → page.

use super::auth::AdminOnly;
use super::auth::{
    AnyStaff, LOGIN_CSRF_COOKIE, PharmacistOnly, SESSION_COOKIE, SignedIn, cookie, same, set_cookie,
};
use super::pages::{self, DecisionForm, PatientPanel, Row};
use crate::router::AppState;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use rxbridge_app::clinical::{AMENDABLE, Amendment, Decision, DecisionError, amendment_key};
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::{Mode, PrescriptionRecord};
use rxbridge_app::staff::{Identity, Role, StaffError, StaffSession};
use rxbridge_domain::compliance::Severity;
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::Prescription;
use std::collections::HashMap;

pub fn portal_routes() -> Router<AppState> {
    Router::new()
        .route("/staff", get(home))
        .route("/staff/style.css", get(style))
        .route("/staff/login", get(login_page).post(login))
        .route("/staff/login/external", get(external_start))
        .route("/staff/login/callback", get(external_callback))
        .route("/staff/logout", post(logout))
        .route("/staff/password", get(password_page).post(change_password))
        .route("/staff/search", get(search))
        .route("/staff/worklist", get(worklist))
        .route("/staff/prescriptions/{id}", get(prescription))
        .route("/staff/prescriptions/{id}/decision", post(decide))
        .route("/staff/prescriptions/{id}/note", post(add_note))
        .route("/staff/prescriptions/{id}/cancel", post(cancel))
        .route(
            "/staff/prescriptions/{id}/original",
            // Scans up to 10 MiB, plus the form fields.
            post(record_original).layer(axum::extract::DefaultBodyLimit::max(
                rxbridge_app::originals::MAX_SCAN_BYTES + 64 * 1024,
            )),
        )
        .route("/staff/documents/{doc}", get(document))
        .route("/staff/admin/staff", get(staff_list).post(staff_add))
        .route("/staff/payments/{id}/resend", post(resend_link))
        .route("/staff/finance", get(finance_page))
        .route(
            "/staff/admin/webhooks",
            get(webhooks_page).post(webhook_set),
        )
        .route("/staff/admin/webhooks/replay", post(webhook_replay))
        .route("/staff/registers", get(registers_page))
        .route(
            "/staff/registers/{register}/export/{file}",
            get(register_export),
        )
        .route(
            "/staff/registers/{register}/annotate",
            post(register_annotate),
        )
        .route("/staff/finance/export/{file}", get(finance_export))
        .route("/staff/admin/audit", get(subject_access))
}

type Params = HashMap<String, String>;

fn mode_of(q: &Params) -> Mode {
    q.get("mode")
        .and_then(|m| Mode::parse(m))
        .unwrap_or(Mode::Live)
}

fn html(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

fn forbidden_csrf() -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::message(
            "Form expired",
            "The form's security token is missing or wrong. Go back, reload the page and try again.",
        ),
    )
}

fn internal(e: impl std::fmt::Debug) -> Response {
    tracing::error!(error = ?e, "portal failure");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::message("Something went wrong", "The error was logged."),
    )
}

fn csrf_ok(s: &StaffSession, form: &Params) -> bool {
    form.get("csrf").is_some_and(|t| same(t, &s.csrf_token))
}

async fn audit(
    state: &AppState,
    s: &StaffSession,
    kind: &str,
    subject: &str,
    detail: serde_json::Value,
) -> Result<(), Response> {
    state
        .store
        .record_event(NewEvent {
            at: state.clock.now(),
            kind: kind.into(),
            actor: format!("staff:{}", s.staff.id),
            subject: subject.into(),
            detail,
        })
        .await
        .map_err(internal)
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
        .into_response()
}

fn random_csrf() -> String {
    uuid::Uuid::new_v4().simple().to_string() + &uuid::Uuid::new_v4().simple().to_string()
}

/// `r` with a `Set-Cookie` header added.
fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// Off to `to` with the new session's cookie, clearing `spent` (the sign-in's own cookie).
fn signed_in(to: &str, token: &str, spent: String, secure: bool) -> Response {
    let r = with_cookie(
        Redirect::to(to).into_response(),
        &set_cookie(SESSION_COOKIE, token, secure, None),
    );
    with_cookie(r, &spent)
}

fn external_label(state: &AppState) -> Option<String> {
    state
        .portal
        .as_ref()
        .and_then(|p| p.external.as_ref())
        .map(|e| e.label().to_string())
}

async fn login_page(State(state): State<AppState>) -> Response {
    let csrf = random_csrf();
    let secure = state.portal.as_ref().is_some_and(|p| p.secure_cookies);
    with_cookie(
        html(
            StatusCode::OK,
            pages::login_page(&csrf, None, external_label(&state).as_deref()),
        ),
        &set_cookie(LOGIN_CSRF_COOKIE, &csrf, secure, Some(600)),
    )
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Params>,
) -> Response {
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let expected = cookie(&headers, LOGIN_CSRF_COOKIE).unwrap_or_default();
    let given = form.get("csrf").cloned().unwrap_or_default();
    if expected.is_empty() || !same(&expected, &given) {
        return forbidden_csrf();
    }
    if let Some(label) = external_label(&state) {
        return html(
            StatusCode::FORBIDDEN,
            pages::login_page(
                &expected,
                Some("Passwords are not accepted here: sign in with the link below."),
                Some(&label),
            ),
        );
    }
    let (email, password) = (
        form.get("email").cloned().unwrap_or_default(),
        form.get("password").cloned().unwrap_or_default(),
    );
    match portal.staff.sign_in(&email, &password).await {
        Ok(s) => {
            let to = if s.session.staff.must_change_password {
                "/staff/password"
            } else {
                "/staff"
            };
            signed_in(
                to,
                &s.token,
                set_cookie(LOGIN_CSRF_COOKIE, "", portal.secure_cookies, Some(0)),
                portal.secure_cookies,
            )
        }
        Err(StaffError::InvalidCredentials) => html(
            StatusCode::UNAUTHORIZED,
            pages::login(&expected, Some("The email or password is wrong.")),
        ),
        Err(StaffError::Locked(until)) => {
            let mut r = html(
                StatusCode::TOO_MANY_REQUESTS,
                pages::login(
                    &expected,
                    Some(&format!(
                        "Too many failed attempts. Try again after {}.",
                        until.strftime("%H:%M:%S UTC")
                    )),
                ),
            );
            let secs = until.duration_since(state.clock.now()).as_secs().max(1);
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
        Err(e) => internal(e),
    }
}

/// The cookie holding the OAuth `state` and the PKCE verifier between the redirect to the
/// provider and its callback. `SameSite=Lax`: the callback is a top-level navigation from the
/// provider's site, which a `Strict` cookie would not accompany.
const OAUTH_COOKIE: &str = "rxb_oauth";

fn oauth_cookie(value: &str, secure: bool, max_age: i64) -> String {
    set_cookie(OAUTH_COOKIE, value, secure, Some(max_age))
        .replace("SameSite=Strict", "SameSite=Lax")
}

async fn external_start(State(state): State<AppState>) -> Response {
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let Some(external) = portal.external.clone() else {
        return Redirect::to("/staff/login").into_response();
    };
    let oauth_state = random_csrf();
    let verifier = rxbridge_app::staff::pkce_verifier();
    let url = external.authorize_url(
        &oauth_state,
        &rxbridge_app::staff::pkce_challenge(&verifier),
    );
    with_cookie(
        Redirect::to(&url).into_response(),
        &oauth_cookie(
            &format!("{oauth_state}.{verifier}"),
            portal.secure_cookies,
            600,
        ),
    )
}

async fn external_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<Params>,
) -> Response {
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let Some(external) = portal.external.clone() else {
        return Redirect::to("/staff/login").into_response();
    };
    let refuse = |why: &str| {
        with_cookie(
            html(
                StatusCode::UNAUTHORIZED,
                pages::login_page(&random_csrf(), Some(why), Some(external.label())),
            ),
            &oauth_cookie("", portal.secure_cookies, 0),
        )
    };
    let kept = cookie(&headers, OAUTH_COOKIE).unwrap_or_default();
    let (expected_state, verifier) = kept.split_once('.').unwrap_or(("", ""));
    let given_state = q.get("state").map(String::as_str).unwrap_or_default();
    if expected_state.is_empty() || !same(expected_state, given_state) {
        return refuse("The sign-in expired or did not start here. Try again.");
    }
    let Some(code) = q.get("code").filter(|c| !c.is_empty()) else {
        return refuse("The identity provider did not sign you in.");
    };
    match external.complete(code, verifier).await {
        Ok(s) => signed_in(
            "/staff",
            &s.token,
            oauth_cookie("", portal.secure_cookies, 0),
            portal.secure_cookies,
        ),
        Err(StaffError::InvalidCredentials) => {
            refuse("The identity provider's answer was refused.")
        }
        Err(StaffError::Invalid(why)) => refuse(&why),
        Err(e) => internal(e),
    }
}

async fn logout(
    State(state): State<AppState>,
    SignedIn(s): SignedIn,
    Form(form): Form<Params>,
) -> Response {
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    if let Err(e) = portal.staff.sign_out(&s).await {
        return internal(e);
    }
    with_cookie(
        Redirect::to("/staff/login").into_response(),
        &set_cookie(SESSION_COOKIE, "", portal.secure_cookies, Some(0)),
    )
}

async fn password_page(SignedIn(s): SignedIn) -> Response {
    html(StatusCode::OK, pages::password(&s, None))
}

async fn change_password(
    State(state): State<AppState>,
    SignedIn(s): SignedIn,
    Form(form): Form<Params>,
) -> Response {
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let (cur, new) = (
        form.get("current").cloned().unwrap_or_default(),
        form.get("new").cloned().unwrap_or_default(),
    );
    match portal.staff.change_password(&s, &cur, &new).await {
        Ok(()) => Redirect::to("/staff").into_response(),
        Err(StaffError::InvalidCredentials) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::password(&s, Some("The current password is wrong.")),
        ),
        Err(StaffError::Invalid(m)) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            pages::password(&s, Some(&m)),
        ),
        Err(e) => internal(e),
    }
}

async fn home(AnyStaff(s): AnyStaff, Query(q): Query<Params>) -> Response {
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
fn patient_panel(rx: &Prescription, masked: bool) -> PatientPanel {
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

async fn search(
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

async fn worklist(
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

async fn render_prescription(
    state: &AppState,
    s: &StaffSession,
    mode: Mode,
    id: &str,
    reason: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let rec = match state.store.get_prescription_for_staff(mode, id).await {
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
    let rx = match state.intake.open(&rec) {
        Ok(rx) => rx,
        Err(e) => return internal(e),
    };
    let reason = reason
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.chars().take(200).collect::<String>());
    // Pharmacists and admins see the record in full; support sees it masked unless they state why.
    let masked = matches!(s.staff.role, Role::Support | Role::Finance) && reason.is_none();
    if let Err(r) = audit(
        state,
        s,
        "staff.viewed_prescription",
        id,
        serde_json::json!({ "masked": masked, "reason": reason, "mode": mode.as_str() }),
    )
    .await
    {
        return r;
    }
    let timeline = match state.store.timeline(id).await {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    let decide = (s.staff.role == Role::Pharmacist
        && matches!(rec.status, Status::AwaitingClinicalCheck | Status::OnHold))
    .then(|| DecisionForm {
        csrf: &s.csrf_token,
        version: rec.version,
        flags: rec
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Flag)
            .map(|f| f.code.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect(),
        amendments: rec
            .findings
            .iter()
            .filter(|f| AMENDABLE.contains(&f.code.as_str()))
            .map(|f| {
                let what = match f.code.as_str() {
                    rxbridge_domain::compliance::CD_QUANTITY_FIGURES_MISSING => {
                        "the quantity in figures you added"
                    }
                    rxbridge_domain::compliance::CD_QUANTITY_WORDS_MISSPELT => {
                        "the quantity in words as you corrected it"
                    }
                    _ => "the quantity in words you added",
                };
                let item = f
                    .item
                    .map(|i| format!("Item {}: ", i + 1))
                    .unwrap_or_default();
                (
                    amendment_key(&f.code, f.item),
                    format!("{item}{what} (MDR 2001 reg 16(1A), recorded)"),
                )
            })
            .collect(),
    });
    let payment = match &state.payments {
        Some(pay) => match pay.for_prescription(id).await {
            Ok(Some(p)) => {
                let link = (p.status == rxbridge_app::payments::PaymentStatus::AwaitingPayment
                    && !masked)
                    .then(|| pay.link_for(&p.id));
                pages::payment_panel(s, mode, &p, link.as_deref())
            }
            Ok(None) => maud::html! {},
            Err(e) => return internal(e),
        },
        None => maud::html! {},
    };
    html(
        status,
        pages::prescription(
            s,
            mode,
            &rec,
            &patient_panel(&rx, masked),
            &timeline,
            decide,
            error,
            payment,
        ),
    )
}

async fn prescription(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    render_prescription(
        &state,
        &s,
        mode_of(&q),
        &id,
        q.get("reason").map(String::as_str),
        None,
        StatusCode::OK,
    )
    .await
}

async fn decide(
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

fn form_text(form: &Params, key: &str, max: usize) -> Option<String> {
    form.get(key).map(|t| t.trim().to_string()).filter(|t| {
        !t.is_empty()
            && t.chars().count() <= max
            && !t.chars().any(|c| c.is_control() && c != '\n' && c != '\r')
    })
}

/// Notes are events on the prescription's timeline.
async fn add_note(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    Form(form): Form<Params>,
) -> Response {
    let mode = mode_of(&q);
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    match state.store.get_prescription_for_staff(mode, &id).await {
        Ok(Some(_)) => {}
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
    }
    let Some(note) = form_text(&form, "note", 2000) else {
        return render_prescription(
            &state,
            &s,
            mode,
            &id,
            None,
            Some("A note needs 1 to 2000 characters."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if let Err(r) = audit(
        &state,
        &s,
        "staff.note",
        &id,
        serde_json::json!({ "note": note }),
    )
    .await
    {
        return r;
    }
    Redirect::to(&format!("/staff/prescriptions/{id}?mode={}", mode.as_str())).into_response()
}

/// Any member of staff may cancel on the patient's request, with a reason.
async fn cancel(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    Form(form): Form<Params>,
) -> Response {
    let mode = mode_of(&q);
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(reason) = form_text(&form, "reason", 500) else {
        return render_prescription(
            &state,
            &s,
            mode,
            &id,
            None,
            Some("Cancelling needs a reason."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    match state
        .intake
        .cancel_by_staff(&s.staff.id, mode, &id, &reason)
        .await
    {
        Ok(_) => {
            if let Some(p) = &state.payments {
                p.prescription_changed(&id, &format!("staff:{}", s.staff.id))
                    .await;
            }
            Redirect::to(&format!("/staff/prescriptions/{id}?mode={}", mode.as_str()))
                .into_response()
        }
        Err(rxbridge_app::intake::IntakeError::NotFound) => html(
            StatusCode::NOT_FOUND,
            pages::message(
                "Not found",
                "There is no prescription with this id in this data set.",
            ),
        ),
        Err(rxbridge_app::intake::IntakeError::NotCancellable(st)) => {
            render_prescription(
                &state,
                &s,
                mode,
                &id,
                None,
                Some(&format!("A prescription that is {st} cannot be cancelled.")),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(rxbridge_app::intake::IntakeError::Store(rxbridge_app::StoreError::Conflict)) => {
            render_prescription(
                &state,
                &s,
                mode,
                &id,
                None,
                Some("The prescription changed meanwhile; check it and try again."),
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => internal(e),
    }
}

/// Staff record the signed paper original: serial keyed in, optional scan (multipart form).
async fn record_original(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    mut multipart: axum::extract::Multipart,
) -> Response {
    use rxbridge_app::originals::{OriginalError, Scan};
    let mode = mode_of(&q);
    let (mut csrf, mut serial, mut scan) = (String::new(), String::new(), None);
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or("").to_string();
                let file_name = field.file_name().unwrap_or("").to_string();
                let Ok(bytes) = field.bytes().await else {
                    return render_prescription(
                        &state,
                        &s,
                        mode,
                        &id,
                        None,
                        Some("The upload could not be read (too large or interrupted)."),
                        StatusCode::PAYLOAD_TOO_LARGE,
                    )
                    .await;
                };
                match name.as_str() {
                    "csrf" => csrf = String::from_utf8_lossy(&bytes).to_string(),
                    "serial" => serial = String::from_utf8_lossy(&bytes).to_string(),
                    "scan" => {
                        scan = Some(Scan {
                            file_name,
                            bytes: bytes.to_vec(),
                        })
                    }
                    _ => {}
                }
            }
            Ok(None) => break,
            Err(_) => {
                return render_prescription(
                    &state,
                    &s,
                    mode,
                    &id,
                    None,
                    Some("The upload could not be read (too large or malformed)."),
                    StatusCode::BAD_REQUEST,
                )
                .await;
            }
        }
    }
    if !same(&csrf, &s.csrf_token) {
        return forbidden_csrf();
    }
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    match portal
        .originals
        .record(&s.staff.id, mode, &id, &serial, scan)
        .await
    {
        Ok(_) => Redirect::to(&format!("/staff/prescriptions/{id}?mode={}", mode.as_str()))
            .into_response(),
        Err(OriginalError::NotFound) => html(
            StatusCode::NOT_FOUND,
            pages::message(
                "Not found",
                "There is no prescription with this id in this data set.",
            ),
        ),
        Err(e @ OriginalError::Mismatch { .. }) => {
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
        Err(e @ (OriginalError::NotAwaitingOriginal(_) | OriginalError::Conflict)) => {
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
        Err(e @ OriginalError::ScanTooLarge) => {
            render_prescription(
                &state,
                &s,
                mode,
                &id,
                None,
                Some(&e.to_string()),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
            .await
        }
        Err(e @ (OriginalError::SerialRequired | OriginalError::UnsupportedScan)) => {
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
        Err(OriginalError::Store(e)) => internal(e),
    }
}

/// A stored scan, for staff: audited, served as an attachment with its sniffed type.
async fn document(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(doc): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    // The audit subject is the prescription only when its own timeline references this
    // document (the query parameter alone could put a view on an unrelated record).
    let claimed = q.get("prescription").cloned().unwrap_or_default();
    let subject = if claimed.is_empty() {
        doc.clone()
    } else {
        match state.store.timeline(&claimed).await {
            Ok(t)
                if t.iter().any(|e| {
                    e.event
                        .detail
                        .get("document")
                        .and_then(|d| d.get("id"))
                        .and_then(|d| d.as_str())
                        == Some(doc.as_str())
                }) =>
            {
                claimed
            }
            Ok(_) => doc.clone(),
            Err(e) => return internal(e),
        }
    };
    // Large scans do not pass through a Lambda response: the store's own short-lived link
    // when it has one, else the bytes. Either way the read is audited before it is answered.
    let documents = portal.originals.documents();
    let answer = match documents.download_link(&doc).await {
        Ok(Some(link)) => with_location(StatusCode::SEE_OTHER.into_response(), &link),
        Ok(None) => match documents.get(&doc).await {
            Ok(Some((content_type, bytes))) => {
                let mut r = (StatusCode::OK, bytes).into_response();
                if let Ok(v) = HeaderValue::from_str(&content_type) {
                    r.headers_mut().insert(header::CONTENT_TYPE, v);
                }
                r.headers_mut().insert(
                    header::CONTENT_DISPOSITION,
                    HeaderValue::from_static("attachment"),
                );
                r
            }
            Ok(None) => {
                return html(
                    StatusCode::NOT_FOUND,
                    pages::message("Not found", "There is no such document."),
                );
            }
            Err(e) => return internal(e),
        },
        Err(e) => return internal(e),
    };
    if let Err(r) = audit(
        &state,
        &s,
        "staff.viewed_document",
        &subject,
        serde_json::json!({ "document": doc }),
    )
    .await
    {
        return r;
    }
    answer
}

fn with_location(mut r: Response, to: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

async fn staff_page(
    state: &AppState,
    s: &StaffSession,
    created: Option<(String, String)>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let all = match portal.staff.list().await {
        Ok(a) => a,
        Err(e) => return internal(e),
    };
    let body = maud::html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some((email, password)) = &created {
            p role="status" { "Created " strong { (email) } ". One-time password (shown once; changed at first sign-in): " code { (password) } }
        }
        table {
            thead { tr { th { "Email" } th { "Role" } th { "GPhC" } th { "Locked until" } } }
            tbody { @for a in &all { tr {
                td { (a.email) } td { (a.role.as_str()) } td { (a.gphc.as_ref().map(|g| g.as_str()).unwrap_or("—")) }
                td { (a.locked_until.map(|t| t.to_string()).unwrap_or_else(|| "—".into())) }
            } } }
        }
        h2 { "Add a member of staff" }
        form method="post" action="/staff/admin/staff" {
            input type="hidden" name="csrf" value=(s.csrf_token);
            label { "Email " input type="email" name="email" required; }
            label { "Role " select name="role" { option value="support" { "support" } option value="pharmacist" { "pharmacist" } option value="finance" { "finance" } option value="admin" { "admin" } } }
            label { "GPhC number (pharmacists) " input type="text" name="gphc" pattern="2[0-9]{6}"; }
            button type="submit" { "Add" }
        }
    };
    html(status, pages::layout("Staff", Some(s), Mode::Live, body))
}

async fn staff_list(State(state): State<AppState>, AdminOnly(s): AdminOnly) -> Response {
    staff_page(&state, &s, None, None, StatusCode::OK).await
}

async fn staff_add(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Form(form): Form<Params>,
) -> Response {
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(portal) = state.portal.clone() else {
        return internal("portal not configured");
    };
    let Some(role) = form.get("role").and_then(|r| Role::parse(r)) else {
        return staff_page(
            &state,
            &s,
            None,
            Some("Choose a role."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    let gphc = form.get("gphc").map(|g| g.trim()).filter(|g| !g.is_empty());
    match portal
        .staff
        .add_by(
            &format!("staff:{}", s.staff.id),
            form.get("email").map(String::as_str).unwrap_or(""),
            role,
            gphc,
        )
        .await
    {
        Ok((a, password)) => {
            staff_page(
                &state,
                &s,
                Some((a.email, password)),
                None,
                StatusCode::CREATED,
            )
            .await
        }
        Err(e @ (StaffError::Invalid(_) | StaffError::EmailTaken)) => {
            staff_page(
                &state,
                &s,
                None,
                Some(&e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => internal(e),
    }
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

/// Subject-access helper: every event about every prescription of one patient, found through
/// the keyed-hash lookups; as a page or a CSV download. The export itself is audited.
async fn subject_access(
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

/// Email the payment link again (any staff member who can see the record unmasked).
async fn resend_link(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    Form(form): Form<Params>,
) -> Response {
    let mode = mode_of(&q);
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(pay) = &state.payments else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Payments are not enabled."),
        );
    };
    let p = match pay.get(&id).await {
        Ok(p) if p.mode == mode => p,
        Ok(_) | Err(rxbridge_app::payments::PaymentError::NotFound) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message("Not found", "There is no such payment in this data set."),
            );
        }
        Err(e) => return internal(e),
    };
    match pay
        .send_link(
            &p.id,
            rxbridge_app::payments::LinkMessage::Resend,
            &format!("staff:{}", s.staff.id),
        )
        .await
    {
        Ok(()) => Redirect::to(&format!(
            "/staff/prescriptions/{}?mode={}",
            p.prescription_id,
            mode.as_str()
        ))
        .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "resending a payment link failed");
            html(
                StatusCode::SERVICE_UNAVAILABLE,
                pages::message(
                    "Not sent",
                    "The email could not be sent just now; try again in a few minutes.",
                ),
            )
        }
    }
}

fn month_param(q: &Params, now: jiff::Timestamp) -> Result<rxbridge_app::finance::Month, String> {
    match q.get("month").map(String::as_str) {
        Some(m) if !m.is_empty() => rxbridge_app::finance::Month::parse(m),
        _ => {
            let d = rxbridge_domain::dates::london_date(now);
            rxbridge_app::finance::Month::parse(&format!("{:04}-{:02}", d.year(), d.month()))
        }
    }
}

async fn finance_page(
    State(state): State<AppState>,
    crate::portal::auth::FinanceOnly(s): crate::portal::auth::FinanceOnly,
    Query(q): Query<Params>,
) -> Response {
    let mode = mode_of(&q);
    let Some(fin) = &state.finance else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Finance is not enabled."),
        );
    };
    let month = match month_param(&q, state.clock.now()) {
        Ok(m) => m,
        Err(e) => {
            let raw = q.get("month").cloned().unwrap_or_default();
            return html(
                StatusCode::BAD_REQUEST,
                pages::finance(&s, mode, &raw, None, Some(&e)),
            );
        }
    };
    match fin
        .report(
            rxbridge_app::finance::ExportKind::Payments,
            mode,
            month,
            &format!("staff:{}", s.staff.id),
            &|_, _| {},
        )
        .await
    {
        Ok(r) => html(
            StatusCode::OK,
            pages::finance(&s, mode, &month.to_string(), Some(&r), None),
        ),
        Err(e) => internal(e),
    }
}

async fn finance_export(
    State(state): State<AppState>,
    crate::portal::auth::FinanceOnly(s): crate::portal::auth::FinanceOnly,
    Path(file): Path<String>,
    Query(q): Query<Params>,
) -> Response {
    let mode = mode_of(&q);
    let Some(fin) = &state.finance else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Finance is not enabled."),
        );
    };
    let parsed = file
        .rsplit_once('.')
        .and_then(|(k, ext)| Some((rxbridge_app::finance::ExportKind::parse(k)?, ext)))
        .filter(|(_, ext)| matches!(*ext, "csv" | "pdf"));
    let Some((kind, ext)) = parsed else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "No such export."),
        );
    };
    let month = match month_param(&q, state.clock.now()) {
        Ok(m) => m,
        Err(e) => return html(StatusCode::BAD_REQUEST, pages::message("Bad month", &e)),
    };
    let report = match fin
        .report(
            kind,
            mode,
            month,
            &format!("staff:{}", s.staff.id),
            &|_, _| {},
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    report_download(
        &report,
        ext == "pdf",
        &format!("{}-{}-{}", kind.as_str(), month, mode.as_str()),
    )
}

// ----- webhooks and dead letters (admin) ---------------------------------------------------------

async fn webhooks_view(
    state: &AppState,
    s: &StaffSession,
    new_secret: Option<(String, String)>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    let Some(o) = &state.outbox else {
        return html(
            StatusCode::NOT_FOUND,
            pages::message("Not found", "Webhooks are not enabled."),
        );
    };
    let endpoints = match o.store().endpoints().await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    let dead = match o
        .store()
        .messages(rxbridge_app::outbox::MessageStatus::Dead, 200)
        .await
    {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let csrf = &s.csrf_token;
    html(
        status,
        pages::layout(
            "Webhooks",
            Some(s),
            Mode::Live,
            maud::html! {
                @if let Some(e) = error { p.error role="alert" { (e) } }
                @if let Some((d, secret)) = &new_secret {
                    p role="status" { "Signing secret for " code { (d) } " (shown once): " code { (secret) } }
                }
                h2 { "Endpoints" }
                table {
                    thead { tr { th { "Destination" } th { "URL" } th { "State" } th {} } }
                    tbody {
                        @for e in &endpoints {
                            tr {
                                td { code { (e.destination) } }
                                td { (e.url) }
                                td { @if e.enabled { "enabled" } @else { "disabled: " (e.disabled_reason.clone().unwrap_or_default()) } }
                                td {
                                    form method="post" action="/staff/admin/webhooks" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        input type="hidden" name="destination" value=(e.destination);
                                        input type="hidden" name="action" value="rotate";
                                        button type="submit" { "Rotate secret" }
                                    }
                                }
                            }
                        }
                    }
                }
                h3 { "Set an endpoint" }
                form method="post" action="/staff/admin/webhooks" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="action" value="set";
                    label { "Destination " input type="text" name="destination" required placeholder="warehouse:live or clinic:cl_…:live"; }
                    label { "URL " input type="url" name="url" required placeholder="https://…"; }
                    button type="submit" { "Save and show the secret" }
                }
                h2 { "Dead letters (" (dead.len()) ")" }
                @if dead.is_empty() { p { "None: every message was delivered or is still being tried." } }
                @else {
                    form method="post" action="/staff/admin/webhooks/replay" {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" name="all" value="1" { "Replay all" }
                    }
                    table {
                        thead { tr { th { "Message" } th { "Created" } th { "Destination" } th { "Type" } th { "Attempts" } th { "Last error" } th {} } }
                        tbody {
                            @for m in &dead {
                                tr {
                                    td { code { (m.message.id) } }
                                    td { (m.message.created_at.strftime("%Y-%m-%d %H:%M")) }
                                    td { (m.message.destination) }
                                    td { (m.message.event_type) }
                                    td { (m.attempts) }
                                    td { (m.last_error.clone().unwrap_or_default()) }
                                    td {
                                        form method="post" action="/staff/admin/webhooks/replay" {
                                            input type="hidden" name="csrf" value=(csrf);
                                            input type="hidden" name="id" value=(m.message.id);
                                            button type="submit" { "Replay" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            },
        ),
    )
}

async fn webhooks_page(State(state): State<AppState>, AdminOnly(s): AdminOnly) -> Response {
    webhooks_view(&state, &s, None, None, StatusCode::OK).await
}

async fn webhook_set(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Form(form): Form<Params>,
) -> Response {
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(o) = state.outbox.clone() else {
        return internal("webhooks not configured");
    };
    let destination = form
        .get("destination")
        .map(|d| d.trim().to_string())
        .unwrap_or_default();
    let valid = match rxbridge_app::outbox::parse_destination(&destination) {
        Ok(None) => true,
        Ok(Some(id)) => matches!(state.store.get_clinic(id).await, Ok(Some(_))),
        Err(_) => false,
    };
    if !valid {
        return webhooks_view(&state, &s, None, Some("Destination must be warehouse:test, warehouse:live or clinic:<an existing clinic id>:<test|live>."), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let result = if form.get("action").map(String::as_str) == Some("rotate") {
        o.rotate_secret(&destination).await
    } else {
        let url = form
            .get("url")
            .map(|u| u.trim().to_string())
            .unwrap_or_default();
        if let Err(e) = (state.url_guard)(&url) {
            return webhooks_view(
                &state,
                &s,
                None,
                Some(&format!("URL refused: {e}")),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        o.set_endpoint(&destination, &url)
            .await
            .map(|(_, secret)| secret)
    };
    match result {
        Ok(secret) => {
            if let Err(r) = audit(
                &state,
                &s,
                "webhook.endpoint_changed",
                &format!("endpoint:{destination}"),
                serde_json::json!({ "action": form.get("action") }),
            )
            .await
            {
                return r;
            }
            webhooks_view(
                &state,
                &s,
                Some((destination, secret)),
                None,
                StatusCode::OK,
            )
            .await
        }
        Err(rxbridge_app::StoreError::NotFound) => {
            webhooks_view(
                &state,
                &s,
                None,
                Some("No endpoint for that destination."),
                StatusCode::NOT_FOUND,
            )
            .await
        }
        Err(e) => internal(e),
    }
}

async fn webhook_replay(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Form(form): Form<Params>,
) -> Response {
    if !csrf_ok(&s, &form) {
        return forbidden_csrf();
    }
    let Some(o) = state.outbox.clone() else {
        return internal("webhooks not configured");
    };
    let ids = if form.contains_key("all") {
        None
    } else {
        form.get("id").map(|i| vec![i.clone()])
    };
    if ids.as_ref().is_some_and(|v| v.is_empty()) || (ids.is_none() && !form.contains_key("all")) {
        return webhooks_view(
            &state,
            &s,
            None,
            Some("Nothing chosen to replay."),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match o.replay(ids).await {
        Ok(n) => {
            if let Err(r) = audit(
                &state,
                &s,
                "webhook.replayed",
                "outbox",
                serde_json::json!({ "messages": n }),
            )
            .await
            {
                return r;
            }
            Redirect::to("/staff/admin/webhooks").into_response()
        }
        Err(e) => internal(e),
    }
}

// ----- registers (pharmacist, admin) --------------------------------------------------------------

fn register_reader(s: &StaffSession) -> bool {
    matches!(s.staff.role, Role::Pharmacist | Role::Admin)
}

async fn registers_page(
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

async fn register_annotate(
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

async fn register_export(
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

/// A report as a downloaded file: printable PDF or CSV, named `{stem}.pdf|csv`.
fn report_download(report: &rxbridge_app::finance::Report, pdf: bool, stem: &str) -> Response {
    let (bytes, ctype, ext) = if pdf {
        (
            rxbridge_app::finance::to_pdf(report),
            "application/pdf",
            "pdf",
        )
    } else {
        (
            rxbridge_app::finance::to_csv(report),
            "text/csv; charset=utf-8",
            "csv",
        )
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{stem}.{ext}\""),
            ),
        ],
        bytes,
    )
        .into_response()
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
