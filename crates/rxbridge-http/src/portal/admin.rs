//! Administration: staff accounts, webhook endpoints and dead letters (the rules and audits
//! are `StaffService`'s and `WebhookAdmin`'s).

use super::auth::AdminOnly;
use super::pages::{self, Scope};
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

/// The staff list and the form to add one; `created` shows a new account's one-time password.
async fn staff_page(
    state: &AppState,
    (s, mode): (&StaffSession, Mode),
    created: Option<(String, String)>,
    error: Option<&str>,
    status: StatusCode,
) -> Page {
    let all = state.portal.staff.list().await.map_err(internal)?;
    let body = staff_markup(s, mode, &all, created, error);
    let page = pages::layout("Staff", Some(s), Scope::System(mode), body);
    Ok(html(status, page))
}

fn staff_markup(
    s: &StaffSession,
    mode: Mode,
    all: &[rxbridge_app::staff::StaffAccount],
    created: Option<(String, String)>,
    error: Option<&str>,
) -> Markup {
    maud::html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some((email, password)) = &created {
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
            label { "Email " input type="email" name="email" required; }
            label { "Role " select name="role" { option value="support" { "support" } option value="pharmacist" { "pharmacist" } option value="finance" { "finance" } option value="admin" { "admin" } } }
            label { "GPhC number (pharmacists) " input type="text" name="gphc" pattern="2[0-9]{6}"; }
            button type="submit" { "Add" }
        }
    }
}

pub(super) async fn staff_list(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
) -> Page {
    staff_page(&state, (&s, mode_of(&q)), None, None, StatusCode::OK).await
}

pub(super) async fn staff_add(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
    Query(q): Query<Params>,
    CsrfForm(form): CsrfForm,
) -> Page {
    let Some(role) = form.get("role").and_then(|r| Role::parse(r)) else {
        let why = Some("Choose a role.");
        let (at, refused) = ((&s, mode_of(&q)), StatusCode::UNPROCESSABLE_ENTITY);
        return staff_page(&state, at, None, why, refused).await;
    };
    let gphc = form.get("gphc").map(|g| g.trim()).filter(|g| !g.is_empty());
    let email = form.get("email").map(String::as_str).unwrap_or("");
    let actor = format!("staff:{}", s.staff.id);
    let added = state.portal.staff.add_by(&actor, email, role, gphc).await;
    let (created, why, status) = match added {
        Ok((a, password)) => (Some((a.email, password)), None, StatusCode::CREATED),
        Err(e @ (StaffError::Invalid(_) | StaffError::EmailTaken)) => {
            (None, Some(e.to_string()), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(e) => return Err(internal(e)),
    };
    staff_page(&state, (&s, mode_of(&q)), created, why.as_deref(), status).await
}

/// The webhooks page; `new_secret` shows a destination's new signing secret once.
async fn webhooks_view(
    state: &AppState,
    (s, mode): (&StaffSession, Mode),
    new_secret: Option<(String, String)>,
    error: Option<&str>,
    status: StatusCode,
) -> Page {
    let overview = state.portal.webhooks.overview().await.map_err(internal)?;
    let body = webhooks_markup(s, mode, &overview, new_secret, error);
    Ok(html(
        status,
        pages::layout("Webhooks", Some(s), Scope::System(mode), body),
    ))
}

fn webhooks_markup(
    s: &StaffSession,
    mode: Mode,
    overview: &WebhooksOverview,
    new_secret: Option<(String, String)>,
    error: Option<&str>,
) -> Markup {
    let csrf = &s.csrf_token;
    maud::html! {
        @if let Some(e) = error { p.error role="alert" { (e) } }
        @if let Some((d, secret)) = &new_secret {
            p role="status" { "Signing secret for " code { (d) } " (shown once): " code { (secret) } }
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
            label { "Destination " input type="text" name="destination" required placeholder="warehouse:live or clinic:cl_…:live"; }
            label { "URL " input type="url" name="url" required placeholder="https://…"; }
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
) -> Page {
    webhooks_view(&state, (&s, mode_of(&q)), None, None, StatusCode::OK).await
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
    let (shown, error, status) = match changed {
        Ok(secret) => (Some((destination, secret)), None, StatusCode::OK),
        Err(e @ WebhookAdminError::NoEndpoint) => (None, Some(e), StatusCode::NOT_FOUND),
        Err(WebhookAdminError::Store(e)) => return Err(internal(e)),
        Err(e) => (None, Some(e), StatusCode::UNPROCESSABLE_ENTITY),
    };
    let error = error.map(|e| e.to_string());
    webhooks_view(&state, (&s, mode_of(&q)), shown, error.as_deref(), status).await
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
            let why = Some("Nothing chosen to replay.");
            let (at, refused) = ((&s, mode_of(&q)), StatusCode::UNPROCESSABLE_ENTITY);
            return webhooks_view(&state, at, None, why, refused).await;
        }
    };
    state
        .portal
        .webhooks
        .replay(&s, ids)
        .await
        .map_err(internal)?;
    Ok(redirect(&with_mode("/staff/admin/webhooks", mode_of(&q))))
}
