//! Signed paper originals: recording the serial and scan, and serving a stored scan (audited).

use super::auth::{AnyStaff, same};
use super::pages;
use super::prescription::render_prescription;
use super::respond::{Params, audit, forbidden_csrf, html, internal, mode_of};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

/// Staff record the signed paper original: serial keyed in, optional scan (multipart form).
pub(super) async fn record_original(
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
pub(super) async fn document(
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
