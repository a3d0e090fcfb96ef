//! Signed paper originals: the multipart form that records the serial and scan, and a stored
//! scan served to staff (the audit is the `Originals` use case's).

use super::auth::{AnyStaff, same};
use super::check_page::Form;
use super::prescription::{Kept, after};
use super::respond::{NO_SUCH_PRESCRIPTION, Params, PortalError, internal, mode_of, with_location};
use crate::state::AppState;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rxbridge_app::originals::{Download, DownloadError, OriginalError, Scan};

/// Staff record the signed paper original: serial keyed in, optional scan (multipart form).
pub(super) async fn record_original(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(id): Path<String>,
    Query(q): Query<Params>,
    multipart: Multipart,
) -> Response {
    let mode = mode_of(&q);
    let (done, typed) = match read_upload(multipart).await {
        Ok(up) if !same(&up.csrf, &s.csrf_token) => (Err(PortalError::Csrf), Vec::new()),
        Ok(up) => {
            let typed = vec![("serial".to_string(), up.serial.clone())];
            let originals = &state.portal.originals;
            let recorded = originals
                .record(&s.staff.id, mode, &id, &up.serial, up.scan)
                .await;
            (recorded.map(|_| ()).map_err(original_error), typed)
        }
        Err(e) => (Err(e), Vec::new()),
    };
    after(
        &state,
        &s,
        mode,
        &id,
        done,
        Kept::new(Form::Original, typed),
    )
    .await
}

/// The form's fields: `csrf`, `serial` and the optional `scan` file.
#[derive(Default)]
struct Upload {
    csrf: String,
    serial: String,
    scan: Option<Scan>,
}

async fn read_upload(mut multipart: Multipart) -> Result<Upload, PortalError> {
    let mut up = Upload::default();
    while let Some(field) = multipart.next_field().await.map_err(|_| {
        PortalError::Again(
            StatusCode::BAD_REQUEST,
            "The upload could not be read (too large or malformed).".into(),
        )
    })? {
        read_field(&mut up, field).await?;
    }
    Ok(up)
}

/// One field of the upload into `up` (unknown fields are read and dropped).
async fn read_field(
    up: &mut Upload,
    field: axum::extract::multipart::Field<'_>,
) -> Result<(), PortalError> {
    let name = field.name().unwrap_or("").to_string();
    let file_name = field.file_name().unwrap_or("").to_string();
    let bytes = field.bytes().await.map_err(|_| {
        PortalError::Again(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The upload could not be read (too large or interrupted).".into(),
        )
    })?;
    let text = || String::from_utf8_lossy(&bytes).to_string();
    match name.as_str() {
        "csrf" => up.csrf = text(),
        "serial" => up.serial = text(),
        "scan" => {
            let bytes = bytes.to_vec();
            up.scan = Some(Scan { file_name, bytes });
        }
        _ => {}
    }
    Ok(())
}

fn original_error(e: OriginalError) -> PortalError {
    let status = match &e {
        OriginalError::NotFound => return PortalError::NotFound(NO_SUCH_PRESCRIPTION),
        OriginalError::Store(e) => return internal(e),
        OriginalError::Mismatch { .. }
        | OriginalError::NotAwaitingOriginal(_)
        | OriginalError::Conflict => StatusCode::CONFLICT,
        OriginalError::ScanTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        OriginalError::SerialRequired | OriginalError::UnsupportedScan => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    };
    PortalError::Again(status, e.to_string())
}

/// A stored scan, for staff: audited, served as an attachment with its sniffed type, or a
/// redirect to the store's own short-lived link.
pub(super) async fn document(
    State(state): State<AppState>,
    AnyStaff(s): AnyStaff,
    Path(doc): Path<String>,
    Query(q): Query<Params>,
) -> Result<Response, PortalError> {
    let claimed = q.get("prescription").map(String::as_str);
    let reason = q.get("reason").map(String::as_str);
    let found = (state.portal.originals)
        .download((&s.staff.id, s.staff.role), &doc, claimed, reason)
        .await;
    let found = found.map_err(|e| match e {
        e @ DownloadError::ReasonRequired => {
            PortalError::Message(StatusCode::FORBIDDEN, "Reason needed", e.to_string())
        }
        DownloadError::Store(e) => internal(e),
    });
    Ok(match found? {
        Some(Download::Link(link)) => with_location(StatusCode::SEE_OTHER.into_response(), &link),
        Some(Download::Bytes {
            content_type,
            bytes,
        }) => {
            let mut r = (StatusCode::OK, bytes).into_response();
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            let attachment = HeaderValue::from_static("attachment");
            r.headers_mut()
                .insert(header::CONTENT_DISPOSITION, attachment);
            r
        }
        None => return Err(PortalError::NotFound("There is no such document.")),
    })
}
