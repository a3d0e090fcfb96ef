//! The router and its layers: body limit, timeout, request ids, tracing without patient data,
//! panic catching, security headers, and problem+json for every bare error status.

use crate::handlers;
use crate::problem::Problem;
use crate::state::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// Largest request body accepted (256 KiB): far above any real prescription.
pub const BODY_LIMIT: usize = 256 * 1024;

/// Turn a bare error response (router fallback, 405, body limit, timeout) into problem+json,
/// keeping the headers that matter (`Allow`, `WWW-Authenticate`).
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    // Handlers answer with problem+json (API) or an HTML page (portal); only the framework's
    // bare answers (no body type, or text/plain rejections) are rewritten.
    let bare = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !bare {
        return res;
    }
    let mut out = Problem::for_status(status).into_response();
    *out.status_mut() =
        if status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::LENGTH_REQUIRED {
            StatusCode::BAD_REQUEST
        } else {
            status
        };
    for h in [header::ALLOW, header::WWW_AUTHENTICATE] {
        if let Some(v) = res.headers().get(&h) {
            out.headers_mut().insert(h, v.clone());
        }
    }
    out
}

/// How long one request may take (reading its body included) before it gets 408.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router(state: AppState) -> Router {
    router_with_timeout(state, DEFAULT_REQUEST_TIMEOUT)
}

/// `/metrics` alone, for the separate (by default loopback-only) metrics listener: the public
/// router answers 404 there, so request counts and store figures never reach the internet.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(handlers::metrics))
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .with_state(state)
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

pub fn router_with_timeout(state: AppState, request_timeout: Duration) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    let behind_tls = state.portal.hsts;
    let router = Router::new()
        .route("/v1/prescriptions", post(handlers::submit).get(handlers::list))
        .route("/v1/prescriptions/validate", post(handlers::validate))
        .route("/v1/prescriptions/{id}", get(handlers::get_one))
        .route("/v1/prescriptions/{id}/cancel", post(handlers::cancel))
        .route("/v1/prescriptions/{id}/query-response", post(handlers::query_response))
        .route("/v1/formulary", get(handlers::formulary))
        .route("/v1/rules", get(handlers::rules))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/openapi.json", get(handlers::openapi_json))
        .merge(crate::portal::portal_routes())
        .merge(crate::payments::payment_routes())
        .merge(crate::warehouse::warehouse_routes())
        .merge(crate::fhir::fhir_routes())
        .fallback(|| async { Problem::for_status(StatusCode::NOT_FOUND) })
        .method_not_allowed_fallback(|| async { Problem::for_status(StatusCode::METHOD_NOT_ALLOWED) })
        .route_layer(middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::record))
        .with_state(state)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, request_timeout))
        .layer(CatchPanicLayer::custom(|_| Problem::internal().into_response()))
        // Outside the timeout and panic layers, so their bare answers become problems too.
        .layer(middleware::from_fn(problem_for_bare_errors))
        .layer(SetResponseHeaderLayer::overriding(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"),
        ))
        .layer(SetResponseHeaderLayer::overriding(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .layer(SetResponseHeaderLayer::overriding(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(
            // Spans carry the request id, method and route template only: never the URI's
            // query, a header or a body, so no patient data reaches a log line.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    // Borrowed: the span records them as it is made.
                    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str());
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    tracing::info_span!("request", request_id = %id, method = %req.method(), route = %route)
                })
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid));
    if behind_tls {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ))
    } else {
        router
    }
}
