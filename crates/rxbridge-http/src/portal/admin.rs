//! Administration: staff accounts, webhook endpoints and dead letters.

use super::auth::AdminOnly;
use super::pages;
use super::respond::{Params, audit, csrf_ok, forbidden_csrf, html, internal};
use crate::state::AppState;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use rxbridge_app::ports::Mode;
use rxbridge_app::staff::{Role, StaffError, StaffSession};

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

pub(super) async fn staff_list(State(state): State<AppState>, AdminOnly(s): AdminOnly) -> Response {
    staff_page(&state, &s, None, None, StatusCode::OK).await
}

pub(super) async fn staff_add(
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

pub(super) async fn webhooks_page(
    State(state): State<AppState>,
    AdminOnly(s): AdminOnly,
) -> Response {
    webhooks_view(&state, &s, None, None, StatusCode::OK).await
}

pub(super) async fn webhook_set(
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
        if let Err(e) = (state.url_guard)(&destination, &url) {
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

pub(super) async fn webhook_replay(
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
