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

/// Declares `ProblemCode` and its table from one list: variant => code, HTTP status, title.
/// The `type` URI is `urn:rxbridge:problem:<code>`.
macro_rules! problem_codes {
    ($($variant:ident => $code:literal, $status:literal, $title:literal;)*) => {
        /// The stable machine-readable codes of the API's problem documents.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemCode {
            $($variant,)*
        }

        impl ProblemCode {
            /// Every code, in the order of the table.
            pub const ALL: &'static [ProblemCode] = &[$(ProblemCode::$variant,)*];

            /// The table row: code, HTTP status, title, `type` URI.
            pub const fn row(self) -> (&'static str, u16, &'static str, &'static str) {
                match self {
                    $(ProblemCode::$variant => {
                        ($code, $status, $title, concat!("urn:rxbridge:problem:", $code))
                    })*
                }
            }
        }
    };
}

problem_codes! {
    BadRequest => "bad_request", 400, "The request is malformed";
    MalformedJson => "malformed_json", 400, "The body is not valid JSON";
    InvalidQuery => "invalid_query", 400, "The query parameters are not valid";
    IdempotencyKeyMissing => "idempotency_key_missing", 400, "The Idempotency-Key header is required";
    IdempotencyKeyInvalid => "idempotency_key_invalid", 400, "The Idempotency-Key header is not valid";
    InvalidSignature => "invalid_signature", 400, "The webhook signature is missing, stale or does not match";
    InvalidEvent => "invalid_event", 400, "The webhook event is not understood";
    Unauthorized => "unauthorized", 401, "A valid API key is required";
    NotFound => "not_found", 404, "Not found";
    UnknownOrder => "unknown_order", 404, "No such order";
    MethodNotAllowed => "method_not_allowed", 405, "Method not allowed";
    RequestTimeout => "request_timeout", 408, "The request took too long";
    IdempotencyInFlight => "idempotency_in_flight", 409, "A request with this idempotency key is still in flight";
    NotCancellable => "not_cancellable", 409, "The prescription cannot be cancelled";
    NoOpenQuery => "no_open_query", 409, "No query is open on this prescription";
    Conflict => "conflict", 409, "The record changed; try again";
    IllegalTransition => "illegal_transition", 409, "The order is not in a state that allows this event";
    PayloadTooLarge => "payload_too_large", 413, "The body is too large";
    UnsupportedMediaType => "unsupported_media_type", 415, "The body must be application/json";
    ValidationFailed => "validation_failed", 422, "The request breaks the contract";
    IdempotencyKeyReused => "idempotency_key_reused", 422, "The idempotency key was used with a different body";
    InternalError => "internal_error", 500, "Something went wrong on our side";
    Unavailable => "unavailable", 503, "The service is not ready";
}

impl ProblemCode {
    pub const fn as_str(self) -> &'static str {
        self.row().0
    }

    pub const fn status(self) -> u16 {
        self.row().1
    }

    pub const fn title(self) -> &'static str {
        self.row().2
    }

    pub const fn type_uri(self) -> &'static str {
        self.row().3
    }

    /// The code named `code` on the wire.
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.as_str() == code)
    }
}

impl Problem {
    /// The problem document for `code`, with its status, title and `type` from the table.
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        let (name, status, title, type_uri) = code.row();
        Self {
            type_: type_uri.to_string(),
            title: title.to_string(),
            status,
            code: name.to_string(),
            detail: detail.into(),
            errors: Vec::new(),
            www_authenticate: None,
        }
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let n = errors.len();
        let mut p = Self::new(
            ProblemCode::ValidationFailed,
            format!(
                "{n} problem{} found; each is listed in `errors`.",
                if n == 1 { "" } else { "s" }
            ),
        );
        p.errors = errors;
        p
    }

    pub fn unauthorized(detail: &str, key_given: bool) -> Self {
        let mut p = Self::new(ProblemCode::Unauthorized, detail);
        p.www_authenticate = Some(if key_given {
            "Bearer error=\"invalid_token\""
        } else {
            "Bearer"
        });
        p
    }

    pub fn internal() -> Self {
        Self::new(
            ProblemCode::InternalError,
            "The error was logged; please retry or contact support.",
        )
    }

    /// The default problem for a bare error status produced outside the handlers (router
    /// fallbacks, body limit, timeouts).
    pub fn for_status(status: StatusCode) -> Self {
        match status.as_u16() {
            404 => Self::new(ProblemCode::NotFound, "There is nothing at this path."),
            405 => Self::new(
                ProblemCode::MethodNotAllowed,
                "This path does not accept that method.",
            ),
            408 => Self::new(
                ProblemCode::RequestTimeout,
                "The request was not completed in time.",
            ),
            413 => Self::new(
                ProblemCode::PayloadTooLarge,
                "The body is larger than 256 KiB.",
            ),
            415 => Self::new(
                ProblemCode::UnsupportedMediaType,
                "Send Content-Type: application/json.",
            ),
            400 | 411 | 422 => Self::new(ProblemCode::BadRequest, "The request could not be read."),
            503 => Self::new(ProblemCode::Unavailable, "The service is not ready."),
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
        for &c in ProblemCode::ALL {
            let (code, status, title, type_uri) = c.row();
            assert!(seen.insert(code));
            assert!((400..600).contains(&status) && !title.is_empty());
            assert_eq!(type_uri, format!("urn:rxbridge:problem:{code}"));
            assert_eq!(ProblemCode::parse(code), Some(c));
            assert_eq!(Problem::new(c, "d").status, status);
        }
        assert_eq!(ProblemCode::parse("nope"), None);
    }
}
