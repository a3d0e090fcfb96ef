//! `rxbridge dev eps-sim`: a local stand-in for the EPS dispensing API and the NHS API
//! platform's token endpoint, for demos and end-to-end tests.
//!
//! - `POST /oauth2/token`: the `client_credentials` grant with a client assertion, verified
//!   (RS512 against the configured public key, `kid`, `iss` = `sub` = the API key, `aud` this
//!   endpoint, `exp` at most five minutes ahead, `jti` never seen before); answers a bearer
//!   token with `expires_in`.
//! - `POST /FHIR/R4/Task/$release`, `/FHIR/R4/$process-message`, `/FHIR/R4/Task`,
//!   `/FHIR/R4/Claim`: need a live token and a UUID `X-Request-ID`; each message is checked
//!   (`check`) and answered the specification's `OperationOutcome` shapes. A message repeated
//!   with the same `X-Request-ID` gets the first answer again and is not recorded twice.
//!   Release hands out the queued prescription-order Bundles (at start, the NHS's published
//!   release example's); a notification, return, withdraw or claim must name a prescription
//!   this stand-in released.
//! - `POST /_sim/fail` `{"count": N, "status": 503, "retry_after": 0, "after_processing":
//!   false}`: the next N dispensing calls fail so (after processing them, with
//!   `after_processing`, as a gateway timeout would). `GET /_sim/received`: what was accepted.

mod check;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{ASSERTION_TYPE, Claims, MAX_ASSERTION_SECS};
use crate::outcome::{self, Issue};

/// The published release answer the stand-in releases from.
pub const PUBLISHED_RELEASE: &str =
    include_str!("../../data/release-acute-primary-example-res.json");

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The application's public key (PEM) and its `kid`.
    pub public_key_pem: String,
    pub key_id: String,
    pub api_key: String,
    /// The token endpoint's own URL, the assertion's required `aud`.
    pub token_url: String,
    pub token_ttl: Duration,
}

/// A forced failure of the next dispensing call.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Failure {
    pub status: u16,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub after_processing: bool,
}

/// A message the stand-in accepted.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub path: &'static str,
    pub request_id: String,
    pub prescription: String,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    tokens: HashMap<String, Instant>,
    jtis: HashSet<String>,
    queue: Vec<Value>,
    released: HashSet<String>,
    answers: HashMap<String, (u16, Value)>,
    received: Vec<Received>,
    failures: VecDeque<Failure>,
}

/// The stand-in's state; clone it to keep a handle on a running stand-in.
#[derive(Clone)]
pub struct EpsSim {
    cfg: Arc<SimConfig>,
    key: Arc<DecodingKey>,
    inner: Arc<Mutex<Inner>>,
}

impl EpsSim {
    /// A stand-in with the published release example's prescriptions queued.
    pub fn new(cfg: SimConfig) -> Result<Self, String> {
        let key = DecodingKey::from_rsa_pem(cfg.public_key_pem.as_bytes())
            .map_err(|e| format!("the public key is not an RSA PEM key: {e}"))?;
        let sim = EpsSim {
            cfg: Arc::new(cfg),
            key: Arc::new(key),
            inner: Arc::default(),
        };
        let published: Value =
            serde_json::from_str(PUBLISHED_RELEASE).map_err(|e| e.to_string())?;
        for bundle in rxbridge_fhir::dispensing::Release::parse(&published)?.passed {
            sim.queue(bundle);
        }
        Ok(sim)
    }

    /// Queues a `prescription-order` Bundle for the next release.
    pub fn queue(&self, bundle: Value) {
        self.lock().queue.push(bundle);
    }

    /// The next `count` dispensing calls fail so.
    pub fn fail_next(&self, count: usize, failure: Failure) {
        self.lock()
            .failures
            .extend(std::iter::repeat_n(failure, count));
    }

    /// Ends every access token issued so far (as when they expire at the platform).
    pub fn expire_tokens(&self) {
        for until in self.lock().tokens.values_mut() {
            *until = Instant::now();
        }
    }

    /// How many access tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens.len()
    }

    /// Every message accepted, in order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/oauth2/token", post(token))
            .route("/FHIR/R4/Task/$release", post(release))
            .route("/FHIR/R4/$process-message", post(notification))
            .route("/FHIR/R4/Task", post(task))
            .route("/FHIR/R4/Claim", post(claim))
            .route("/_sim/fail", post(fail))
            .route("/_sim/received", get(received))
            .with_state(self.clone())
    }
}

/// Serves the stand-in until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    sim: EpsSim,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, sim.router())
        .with_graceful_shutdown(shutdown)
        .await
}

fn fhir(status: u16, body: Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [("content-type", "application/fhir+json")],
        body.to_string(),
    )
        .into_response()
}

fn refuse(status: u16, issues: &[Issue]) -> Response {
    fhir(status, outcome::write(issues))
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    client_assertion_type: Option<String>,
    client_assertion: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn token(State(sim): State<EpsSim>, Form(f): Form<TokenForm>) -> Response {
    if f.grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be 'client_credentials'",
        );
    }
    if f.client_assertion_type.as_deref() != Some(ASSERTION_TYPE) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_assertion_type is missing or invalid",
        );
    }
    match sim.verify(f.client_assertion.as_deref().unwrap_or_default()) {
        Err(why) => oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", &why),
        Ok(()) => {
            let token = uuid::Uuid::new_v4().simple().to_string();
            sim.lock()
                .tokens
                .insert(token.clone(), Instant::now() + sim.cfg.token_ttl);
            let secs = sim.cfg.token_ttl.as_secs().to_string();
            Json(json!({ "access_token": token, "expires_in": secs, "token_type": "Bearer" }))
                .into_response()
        }
    }
}

impl EpsSim {
    fn verify(&self, jwt: &str) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(jwt)
            .map_err(|e| format!("Malformed JWT in client_assertion: {e}"))?;
        if header.alg != Algorithm::RS512 {
            return Err(
                "Invalid 'alg' header in JWT - unsupported JWT algorithm - must be 'RS512'".into(),
            );
        }
        if header.kid.as_deref() != Some(self.cfg.key_id.as_str()) {
            return Err("Invalid 'kid' header in JWT - no matching public key".into());
        }
        let mut v = Validation::new(Algorithm::RS512);
        v.set_audience(&[&self.cfg.token_url]);
        v.set_issuer(&[&self.cfg.api_key]);
        v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(jwt, &self.key, &v)
            .map_err(|e| format!("Invalid JWT: {e}"))?
            .claims;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if claims.sub != self.cfg.api_key {
            return Err("Invalid 'sub' claim in JWT".into());
        }
        if claims.exp > now + MAX_ASSERTION_SECS + 5 {
            return Err("Invalid exp claim in JWT - more than 5 minutes in future".into());
        }
        if !self.lock().jtis.insert(claims.jti) {
            return Err("Non-unique jti claim in JWT".into());
        }
        Ok(())
    }

    /// The checks every dispensing call shares, then `process` on a new message; the
    /// stored answer for a repeated `X-Request-ID`.
    fn call(
        &self,
        path: &'static str,
        headers: &HeaderMap,
        body: &str,
        process: impl FnOnce(&EpsSim, &Value) -> Result<(String, Value), Vec<Issue>>,
    ) -> Response {
        let mut r = self.answer(path, headers, body, process);
        // Both ids are mirrored back, as the specification says.
        for name in ["x-request-id", "x-correlation-id"] {
            if let Some(v) = headers.get(name) {
                r.headers_mut().insert(name, v.clone());
            }
        }
        r
    }

    fn answer(
        &self,
        path: &'static str,
        headers: &HeaderMap,
        body: &str,
        process: impl FnOnce(&EpsSim, &Value) -> Result<(String, Value), Vec<Issue>>,
    ) -> Response {
        let forced = self.lock().failures.pop_front();
        if let Some(f) = forced.filter(|f| !f.after_processing) {
            return forced_failure(f);
        }
        if !self.authorised(headers) {
            let denied = Issue::error("forbidden", "ACCESS_DENIED", "Invalid access token");
            return refuse(401, &[denied]);
        }
        let Some(request_id) = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| uuid::Uuid::try_parse(v).is_ok())
        else {
            return refuse(
                400,
                &[Issue::error(
                    "value",
                    "MISSING_FIELD",
                    "Invalid value - 'X-Request-ID' must be a UUID",
                )],
            );
        };
        let replay = self.lock().answers.get(request_id).cloned();
        let (status, answer) = match replay {
            Some(stored) => stored,
            None => {
                let stored = match serde_json::from_str::<Value>(body) {
                    Err(e) => (
                        400,
                        outcome::write(&[Issue::error(
                            "structure",
                            "INVALID_MESSAGE",
                            &format!("The message is not valid JSON: {e}"),
                        )]),
                    ),
                    Ok(message) => match process(self, &message) {
                        Err(issues) => (400, outcome::write(&issues)),
                        Ok((prescription, answer)) => {
                            let r = Received {
                                path,
                                request_id: request_id.into(),
                                prescription,
                                body: message,
                            };
                            self.lock().received.push(r);
                            (200, answer)
                        }
                    },
                };
                self.lock()
                    .answers
                    .insert(request_id.into(), stored.clone());
                stored
            }
        };
        match forced {
            Some(f) => forced_failure(f),
            None => fhir(status, answer),
        }
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        token
            .and_then(|t| self.lock().tokens.get(t).copied())
            .is_some_and(|until| until > Instant::now())
    }

    fn known(&self, prescription: &str) -> Result<(), Vec<Issue>> {
        if self.lock().released.contains(prescription) {
            Ok(())
        } else {
            Err(vec![Issue::error(
                "not-found",
                "PRESCRIPTION_NOT_FOUND",
                "The requested prescription could not be found.",
            )])
        }
    }
}

fn forced_failure(f: Failure) -> Response {
    let mut r = refuse(
        f.status,
        &[Issue::error(
            "transient",
            "SERVICE_UNAVAILABLE",
            "Forced failure of the EPS stand-in",
        )],
    );
    if let Some(secs) = f.retry_after {
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from(secs));
    }
    r
}

fn short_form_of(bundle: &Value) -> Option<String> {
    let entries = bundle["entry"].as_array()?;
    let mr = entries
        .iter()
        .map(|e| &e["resource"])
        .find(|r| r["resourceType"] == "MedicationRequest")?;
    mr["groupIdentifier"]["value"].as_str().map(Into::into)
}

fn do_release(sim: &EpsSim, message: &Value) -> Result<(String, Value), Vec<Issue>> {
    let ods = check::release(message)?;
    let wanted = message["parameter"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == "group-identifier")
        .and_then(|p| p["valueIdentifier"]["value"].as_str());
    let mut inner = sim.lock();
    let (taken, kept): (Vec<Value>, Vec<Value>) = std::mem::take(&mut inner.queue)
        .into_iter()
        .partition(|b| wanted.is_none_or(|w| short_form_of(b).as_deref() == Some(w)));
    inner.queue = kept;
    let ids: Vec<String> = taken.iter().filter_map(short_form_of).collect();
    inner.released.extend(ids);
    let id = uuid::Uuid::new_v4().to_string();
    let entry: Vec<Value> = taken.iter().map(|b| json!({ "fullUrl": format!("urn:uuid:{}", b["id"].as_str().unwrap_or_default()), "search": {"mode": "match"}, "resource": b })).collect();
    let searchset = |entry: Vec<Value>| json!({ "resourceType": "Bundle", "id": uuid::Uuid::new_v4().to_string(), "identifier": {"system": "https://tools.ietf.org/html/rfc4122", "value": uuid::Uuid::new_v4().to_string()}, "type": "searchset", "total": entry.len(), "entry": entry });
    let answer = json!({ "resourceType": "Parameters", "id": id, "parameter": [
        { "name": "passedPrescriptions", "resource": searchset(entry) },
        { "name": "failedPrescriptions", "resource": searchset(Vec::new()) },
    ]});
    Ok((ods, answer))
}

async fn release(State(sim): State<EpsSim>, headers: HeaderMap, body: String) -> Response {
    sim.call("/FHIR/R4/Task/$release", &headers, &body, do_release)
}

async fn notification(State(sim): State<EpsSim>, headers: HeaderMap, body: String) -> Response {
    sim.call("/FHIR/R4/$process-message", &headers, &body, |sim, m| {
        let id = check::notification(m)?;
        sim.known(&id)?;
        Ok((id, outcome::ok()))
    })
}

async fn task(State(sim): State<EpsSim>, headers: HeaderMap, body: String) -> Response {
    sim.call("/FHIR/R4/Task", &headers, &body, |sim, m| {
        let (id, _withdraw) = check::task(m)?;
        sim.known(&id)?;
        Ok((id, outcome::ok()))
    })
}

async fn claim(State(sim): State<EpsSim>, headers: HeaderMap, body: String) -> Response {
    sim.call("/FHIR/R4/Claim", &headers, &body, |sim, m| {
        let id = check::claim(m)?;
        sim.known(&id)?;
        Ok((id, outcome::ok()))
    })
}

#[derive(Deserialize)]
struct FailRequest {
    count: usize,
    #[serde(flatten)]
    failure: Failure,
}

async fn fail(State(sim): State<EpsSim>, Json(f): Json<FailRequest>) -> StatusCode {
    sim.fail_next(f.count, f.failure);
    StatusCode::NO_CONTENT
}

async fn received(State(sim): State<EpsSim>) -> Json<Value> {
    let list: Vec<Value> = sim.received().iter().map(|r| json!({ "path": r.path, "request_id": r.request_id, "prescription": r.prescription })).collect();
    Json(json!(list))
}
