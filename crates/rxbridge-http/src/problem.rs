//! RFC 9457 problem details. One table of error codes drives every error response: its
//! `type` URI, `title` and HTTP status.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// One contract violation, located by a JSON pointer (RFC 6901) into the request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldError {
    #[schema(example = "/patient/nhs_number")]
    pub pointer: String,
    #[schema(example = "invalid_nhs_number")]
    pub code: String,
    #[schema(example = "fails the Modulus 11 check digit")]
    pub detail: String,
}

/// An RFC 9457 problem document. `code` is stable; `errors` lists field-level problems
/// (422 and invalid query parameters).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({
    "type": "urn:rxbridge:problem:unauthorized",
    "title": "A valid API key is required",
    "status": 401,
    "code": "unauthorized",
    "detail": "Send Authorization: Bearer <your API key>."
}))]
pub struct Problem {
    #[serde(rename = "type")]
    #[schema(example = "urn:rxbridge:problem:validation_failed")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// Stable machine-readable code.
    pub code: String,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub www_authenticate: Option<&'static str>,
}

/// The error-code table: code, HTTP status, title.
pub const CODES: &[(&str, u16, &str)] = &[
    ("bad_request", 400, "The request is malformed"),
    ("malformed_json", 400, "The body is not valid JSON"),
    ("invalid_query", 400, "The query parameters are not valid"),
    (
        "idempotency_key_missing",
        400,
        "The Idempotency-Key header is required",
    ),
    (
        "idempotency_key_invalid",
        400,
        "The Idempotency-Key header is not valid",
    ),
    (
        "invalid_signature",
        400,
        "The webhook signature is missing, stale or does not match",
    ),
    ("invalid_event", 400, "The webhook event is not understood"),
    ("unauthorized", 401, "A valid API key is required"),
    ("not_found", 404, "Not found"),
    ("unknown_order", 404, "No such order"),
    ("method_not_allowed", 405, "Method not allowed"),
    ("request_timeout", 408, "The request took too long"),
    (
        "idempotency_in_flight",
        409,
        "A request with this idempotency key is still in flight",
    ),
    (
        "not_cancellable",
        409,
        "The prescription cannot be cancelled",
    ),
    (
        "no_open_query",
        409,
        "No query is open on this prescription",
    ),
    ("conflict", 409, "The record changed; try again"),
    (
        "illegal_transition",
        409,
        "The order is not in a state that allows this event",
    ),
    ("payload_too_large", 413, "The body is too large"),
    (
        "unsupported_media_type",
        415,
        "The body must be application/json",
    ),
    ("validation_failed", 422, "The request breaks the contract"),
    (
        "idempotency_key_reused",
        422,
        "The idempotency key was used with a different body",
    ),
    ("internal_error", 500, "Something went wrong on our side"),
    ("unavailable", 503, "The service is not ready"),
];

impl Problem {
    /// A problem for a code in `CODES` (an unknown code is a programming error: it answers 500).
    pub fn new(code: &str, detail: impl Into<String>) -> Self {
        let (code, status, title) = CODES
            .iter()
            .find(|(c, _, _)| *c == code)
            .copied()
            .unwrap_or(("internal_error", 500, "Something went wrong on our side"));
        Self {
            type_: format!("urn:rxbridge:problem:{code}"),
            title: title.to_string(),
            status,
            code: code.to_string(),
            detail: detail.into(),
            errors: Vec::new(),
            www_authenticate: None,
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let n = errors.len();
        let mut p = Self::new(
            "validation_failed",
            format!(
                "{n} problem{} found; each is listed in `errors`.",
                if n == 1 { "" } else { "s" }
            ),
        );
        p.errors = errors;
        p
    }

    pub fn unauthorized(detail: &str, key_given: bool) -> Self {
        let mut p = Self::new("unauthorized", detail);
        p.www_authenticate = Some(if key_given {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        });
        p
    }

    pub fn internal() -> Self {
        Self::new(
            "internal_error",
            "The error was logged; please retry or contact support.",
        )
    }

    /// The default problem for a bare error status produced outside the handlers (router
    /// fallbacks, body limit, timeouts).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            404 => Self::new("not_found", "There is nothing at this path."),
            405 => Self::new(
                "method_not_allowed",
                "This path does not accept that method.",
            ),
            408 => Self::new("request_timeout", "The request was not completed in time."),
            413 => Self::new("payload_too_large", "The body is larger than 256 KiB."),
            415 => Self::new(
                "unsupported_media_type",
                "Send Content-Type: application/json.",
            ),
            400 | 411 | 422 => Self::new("bad_request", "The request could not be read."),
            503 => Self::new("unavailable", "The service is not ready."),
            _ => Self::internal(),
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = (status, serde_json::to_string(&self).unwrap_or_default()).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some(w) = self.www_authenticate {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(w));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn code_table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for (c, s, t) in CODES {
            assert!(seen.insert(c));
            assert!((400..600).contains(s) && !t.is_empty());
            assert_eq!(Problem::new(c, "d").status, *s);
        }
        assert_eq!(Problem::new("nope", "d").status, 500);
    }
}
