//! The portal's route table and its stylesheet.

use super::admin::{staff_add, staff_list, webhook_replay, webhook_set, webhooks_page};
use super::decisions::decide;
use super::declare::declare_exemption;
use super::finance::{finance_export, finance_page, resend_link};
use super::originals::{document, record_original};
use super::pages;
use super::prescription::{access_log, add_note, cancel, prescription};
use super::registers::{register_annotate, register_export, registers_page};
use super::search::{home, search, worklist};
use super::sign_in::{
    change_password, external_callback, external_start, login, login_page, logout, password_page,
};
use super::subject_access::subject_access;
use crate::state::AppState;
use axum::Router;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

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
        .route("/staff/prescriptions/{id}/access", get(access_log))
        .route("/staff/prescriptions/{id}/decision", post(decide))
        .route("/staff/prescriptions/{id}/note", post(add_note))
        .route("/staff/prescriptions/{id}/cancel", post(cancel))
        .route(
            "/staff/prescriptions/{id}/exemption",
            post(declare_exemption),
        )
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
        .layer(axum::middleware::from_fn(super::respond::finish))
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::STYLE,
    )
        .into_response()
}
