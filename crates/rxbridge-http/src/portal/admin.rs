//! Administration: staff accounts, webhook endpoints and dead letters (the rules and audits
//! are `StaffService`'s and `WebhookAdmin`'s).

use super::auth::AdminOnly;
use super::flash::{self, Flash, Flashed, Shown};
use super::pages::{self, Scope};
use super::prescription::Fields;
use super::respond::{CsrfForm, Params, PortalError, html, internal, mode_of, redirect, with_mode};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::Markup;
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::{Role, StaffError, StaffSession};
use rxbridge_app::webhook_admin::{WebhookAdminError, WebhooksOverview};

type Page = Result<Response, PortalError>;

const STAFF_PAGE: &str = "/staff/admin/staff";
const WEBHOOKS_PAGE: &str = "/staff/admin/webhooks";

/// A form's answer on an administration page: a kept answer (`flash`) and the status it came
/// with, or nothing.
struct Answer {
    status: StatusCode,
    shown: Option<Shown>,
}

impl Answer {
    fn from(flashed: Option<Flash>) -> Self {
        match flashed {
            Some(f) => Answer {
                status: f.status,
                shown: Some(f.shown),
            },
            None => Answer {
                status: StatusCode::OK,
                shown: None,
            },
        }
    }
    /// Why the form was refused, and what was typed into it.
    fn refused(&self) -> (Option<&str>, &[(String, String)]) {
        match &self.shown {
            Some(Shown::Form { why, typed, .. }) => (why.as_deref(), typed),
            _ => (None, &[]),
        }
    }
}

fn typed<'a>(typed: &'a [(String, String)], name: &str) -> Option<&'a str> {
    typed
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Back to `page` (in `mode`) with `shown`; when it is too large to carry, the page itself.
async fn answer_with(
    state: &AppState,
    (s, mode): (&StaffSession, Mode),
    page: &'static str,
    status: StatusCode,
    shown: Shown,
) -> Page {
    let to = with_mode(page, mode);
    match flash::see_other(state, &flash::for_session(s), &to, status, shown) {
        Ok(r) => Ok(r),
        Err(shown) => {
            let answer = Answer {
                status,
                shown: Some(shown),
            };
            match page {
                STAFF_PAGE => staff_page(state, (s, mode), answer).await,
                _ => webhooks_view(state, (s, mode), answer).await,
            }
        }
    }
}

fn without_csrf(form: &Params) -> Fields {
    let mut typed: Fields = form
        .iter()
        .filter(|(n, _)| *n != "csrf")
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    typed.sort();
    typed
}

/// The staff list and the form to add one; a kept answer shows a new account's one-time
/// password, or why the form was refused with what was typed.
async fn staff_page(state: &AppState, (s, mode): (&StaffSession, Mode), answer: Answer) -> Page {
    let all = state.portal.staff.list().await.map_err(internal)?;
    let body = staff_markup(s, mode, &all, &answer);
    let page = pages::layout("Staff", Some(s), Scope::System(mode), body);
    Ok(html(answer.status, page))
}

fn staff_markup(
    s: &StaffSession,
    mode: Mode,
    all: &[rxbridge_app::staff::StaffAccount],
    answer: &Answer,
) -> Markup {
    let (error, typed_in) = answer.refused();
    let t = |name: &str| typed(typed_in, name);
    let role = t("role").unwrap_or("support");
    maud::html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some(Shown::Created { email, password }) = &answer.shown {
            p role="status" { "Created " strong { (email) } ". One-time password (shown once; changed at first sign-in): " code { (password) } }
        }
        table {
            thead { tr { th scope="col" { "Email" } th scope="col" { "Role" } th scope="col" { "GPhC" } th scope="col" { "Locked until" } } }
            tbody { @for a in all { tr {
                td { (a.email) } td { (a.role.as_str()) } td { (a.gphc.as_ref().map(|g| g.as_str()).unwrap_or("—")) }
                td { (a.locked_until.map(|t| t.to_string()).unwrap_or_else(|| "—".into())) }
            } } }
        }
        h2 { "Add a member of staff" }
        form method="post" action=(with_mode("/staff/admin/staff", mode)) {
            input type="hidden" name="csrf" value=(s.csrf_token);
            label { "Email " input type="email" name="email" required value=[t("email")]; }
            label { "Role " select name="role" { @for r in ["support", "pharmacist", "finance", "admin"] { option value=(r) selected[r == role] { (r) } } } }
            label { "GPhC number (pharmacists) " input type="text" name="gphc" pattern="2[0-9]{6}" value=[t("gphc")]; }
            button type="submit" { "Add" }
        }
    }
}

pub(super) async fn staff_list(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
    Flashed(flashed): Flashed,
) -> Page {
    staff_page(&state, (&s, mode_of(&q)), Answer::from(flashed)).await
}

/// Add an account; its one-time password is shown once, on the staff page it redirects to.
pub(super) async fn staff_add(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm,
) -> Page {
    let at = (&s, mode_of(&q));
    let refused = |why: String| Shown::refused("staff", why, without_csrf(&form));
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    let Some(role) = form.get("role").and_then(|r| Role::parse(r)) else {
        let shown = refused("Choose a role.".into());
        return answer_with(&state, at, STAFF_PAGE, unprocessable, shown).await;
    };
    let gphc = form.get("gphc").map(|g| g.trim()).filter(|g| !g.is_empty());
    let email = form.get("email").map(String::as_str).unwrap_or("");
    let actor = format!("staff:{}", s.staff.id);
    let added = state.portal.staff.add_by(&actor, email, role, gphc).await;
    let (status, shown) = match added {
        Ok((a, password)) => (
            StatusCode::OK,
            Shown::Created {
                email: a.email,
                password,
            },
        ),
        Err(e @ (StaffError::Invalid(_) | StaffError::EmailTaken)) => {
            (unprocessable, refused(e.to_string()))
        }
        Err(e) => return Err(internal(e)),
    };
    answer_with(&state, at, STAFF_PAGE, status, shown).await
}

/// The webhooks page; a kept answer shows a destination's new signing secret once, or why a
/// form was refused with what was typed.
async fn webhooks_view(state: &AppState, (s, mode): (&StaffSession, Mode), answer: Answer) -> Page {
    let overview = state.portal.webhooks.overview().await.map_err(internal)?;
    let body = webhooks_markup(s, mode, &overview, &answer);
    Ok(html(
        answer.status,
        pages::layout("Webhooks", Some(s), Scope::System(mode), body),
    ))
}

fn webhooks_markup(
    s: &StaffSession,
    mode: Mode,
    overview: &WebhooksOverview,
    answer: &Answer,
) -> Markup {
    let csrf = &s.csrf_token;
    let (error, typed_in) = answer.refused();
    let set_typed =
        |name: &str| typed(typed_in, name).filter(|_| typed(typed_in, "action") == Some("set"));
    maud::html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some(Shown::Secret { destination, secret }) = &answer.shown {
            p role="status" { "Signing secret for " code { (destination) } " (shown once): " code { (secret) } }
        }
        h2 { "Endpoints" }
        table {
            thead { tr { th scope="col" { "Destination" } th scope="col" { "URL" } th scope="col" { "State" } th scope="col" { span.vh { "Action" } } } }
            tbody {
                @for e in &overview.endpoints {
                    tr {
                        td { code { (e.destination) } }
                        td { (e.url) }
                        td { @if e.enabled { "enabled" } @else { "disabled: " (e.disabled_reason.clone().unwrap_or_default()) } }
                        td {
                            form method="post" action=(with_mode("/staff/admin/webhooks", mode)) {
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
        form method="post" action=(with_mode("/staff/admin/webhooks", mode)) {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="action" value="set";
            label { "Destination " input type="text" name="destination" required placeholder="warehouse:live or clinic:cl_…:live" value=[set_typed("destination")]; }
            label { "URL " input type="url" name="url" required placeholder="https://…" value=[set_typed("url")]; }
            button type="submit" { "Save and show the secret" }
        }
        h2 { "Dead letters (" (overview.dead.len()) ")" }
        @if overview.dead.is_empty() { p { "None: every message was delivered or is still being tried." } }
        @else {
            form method="post" action=(with_mode("/staff/admin/webhooks/replay", mode)) {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" name="all" value="1" { "Replay all" }
            }
            table {
                thead { tr { th scope="col" { "Message" } th scope="col" { "Created" } th scope="col" { "Destination" } th scope="col" { "Type" } th scope="col" { "Attempts" } th scope="col" { "Last error" } th scope="col" { span.vh { "Action" } } } }
                tbody {
                    @for m in &overview.dead {
                        tr {
                            td { code { (m.message.id) } }
                            td { (m.message.created_at.strftime("%Y-%m-%d %H:%M")) }
                            td { (m.message.destination) }
                            td { (m.message.event_type) }
                            td { (m.attempts) }
                            td { (m.last_error.clone().unwrap_or_default()) }
                            td {
                                form method="post" action=(with_mode("/staff/admin/webhooks/replay", mode)) {
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
    }
}

pub(super) async fn webhooks_page(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
    Flashed(flashed): Flashed,
) -> Page {
    webhooks_view(&state, (&s, mode_of(&q)), Answer::from(flashed)).await
}

/// Set an endpoint's URL, or rotate its secret (`action=rotate`).
pub(super) async fn webhook_set(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm,
) -> Page {
    let field = |k: &str| {
        form.get(k)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let (destination, url) = (field("destination"), field("url"));
    let action = form.get("action").map(String::as_str);
    let admin = &state.portal.webhooks;
    let changed = admin
        .change(&s, &destination, action, &url, &*state.url_guard)
        .await;
    let refused =
        |e: WebhookAdminError| Shown::refused("webhook", e.to_string(), without_csrf(&form));
    let (status, shown) = match changed {
        Ok(secret) => (
            StatusCode::OK,
            Shown::Secret {
                destination,
                secret,
            },
        ),
        Err(e @ WebhookAdminError::NoEndpoint) => (StatusCode::NOT_FOUND, refused(e)),
        Err(WebhookAdminError::Store(e)) => return Err(internal(e)),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, refused(e)),
    };
    answer_with(&state, (&s, mode_of(&q)), WEBHOOKS_PAGE, status, shown).await
}

/// Replay one dead letter (`id`) or all of them (`all`).
pub(super) async fn webhook_replay(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm,
) -> Page {
    let ids = match (form.contains_key("all"), form.get("id")) {
        (true, _) => None,
        (false, Some(id)) => Some(vec![id.clone()]),
        (false, None) => {
            let shown = Shown::refused("replay", "Nothing chosen to replay.", Vec::new());
            let (at, refused) = ((&s, mode_of(&q)), StatusCode::UNPROCESSABLE_ENTITY);
            return answer_with(&state, at, WEBHOOKS_PAGE, refused, shown).await;
        }
    };
    state
        .portal
        .webhooks
        .replay(&s, ids)
        .await
        .map_err(internal)?;
    Ok(redirect(&with_mode(WEBHOOKS_PAGE, mode_of(&q))))
}
