//! Clinic API handlers.

use crate::contract::{BodyError, parse_prescription_bytes};
use crate::openapi::views as schemas;
use crate::problem::{FieldError, Problem, ProblemCode};
use crate::schema::{CancelIn, PrescriptionIn};
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use rxbridge_app::crypto::sha256_hex;
use rxbridge_app::intake::{Begin, IntakeError, Received};
use rxbridge_app::ports::{Caller, ListFilter};
use rxbridge_app::views::{DryRunView, PrescriptionList, PrescriptionView};
use rxbridge_domain::compliance::{RULES, RuleInfo, Thresholds};
use rxbridge_domain::dates::london_date;
use rxbridge_domain::formulary::{Formulary, Product};
use rxbridge_domain::lifecycle::Status;
use serde::Serialize;
use utoipa::ToSchema;

/// The authenticated clinic. Missing, malformed or unknown keys answer 401 with
/// `WWW-Authenticate: Bearer`.
pub struct ClinicCaller(pub Caller);

impl FromRequestParts<AppState> for ClinicCaller {
    type Rejection = Problem;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(Problem::unauthorized(
                "Send Authorization: Bearer <your API key>.",
                false,
            ));
        };
        let key = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                Problem::unauthorized(
                    "The Authorization header must be: Bearer <your API key>.",
                    true,
                )
            })?;
        match state.clinics.authenticate(key).await {
            Ok(Some(caller)) => Ok(ClinicCaller(caller)),
            Ok(None) => Err(Problem::unauthorized(
                "The API key is not valid (unknown, rotated or mistyped).",
                true,
            )),
            Err(e) => {
                tracing::error!(error = ?e, "authenticating a key");
                Err(Problem::internal())
            }
        }
    }
}

fn intake_problem(e: IntakeError) -> Problem {
    match e {
        IntakeError::InFlight => Problem::new(
            ProblemCode::IdempotencyInFlight,
            "The first request with this Idempotency-Key has not finished; retry shortly.",
        ),
        IntakeError::KeyReused => Problem::new(
            ProblemCode::IdempotencyKeyReused,
            "This Idempotency-Key was already used with a different body; use a new key for a new prescription.",
        ),
        IntakeError::NotFound => Problem::new(
            ProblemCode::NotFound,
            "No prescription with this id for this API key.",
        ),
        IntakeError::NotCancellable(s) => Problem::new(
            ProblemCode::NotCancellable,
            format!("The prescription is {s}; it can be cancelled only until dispatch."),
        ),
        IntakeError::NoOpenQuery(s) => Problem::new(
            ProblemCode::NoOpenQuery,
            format!("No pharmacist's query is open on this prescription; it is {s}."),
        ),
        IntakeError::BadCursor => Problem::new(
            ProblemCode::InvalidQuery,
            "The cursor is not one this API returned.",
        ),
        IntakeError::Store(rxbridge_app::StoreError::Conflict) => Problem::new(
            ProblemCode::Conflict,
            "The prescription changed while we worked on it; retry.",
        ),
        IntakeError::Store(e) => {
            tracing::error!(error = ?e, "store failure");
            Problem::internal()
        }
    }
}

/// `application/json`, optionally with parameters (`; charset=utf-8`); 415 otherwise.
fn require_json(headers: &HeaderMap) -> Result<(), Problem> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Problem::new(
            ProblemCode::UnsupportedMediaType,
            "Send the body as JSON with Content-Type: application/json.",
        ))
    }
}

fn parse_json(body: &[u8]) -> Result<serde_json::Value, Problem> {
    serde_json::from_slice(body).map_err(|e| malformed_json(&e))
}

fn malformed_json(e: &serde_json::Error) -> Problem {
    Problem::new(
        ProblemCode::MalformedJson,
        format!(
            "The body is not valid JSON: {} (line {}, column {}).",
            json_error_kind(e),
            e.line(),
            e.column()
        ),
    )
}

fn json_error_kind(e: &serde_json::Error) -> &'static str {
    match e.classify() {
        serde_json::error::Category::Eof => "it ends too early",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Io => "it could not be read",
        serde_json::error::Category::Data => "unexpected data",
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// The contract on a body already known to be JSON: read from the bytes, by the fast path or,
/// when that does not accept them, by the collecting parser (the 422).
fn parse_submission(
    state: &AppState,
    body: &[u8],
) -> Result<(rxbridge_domain::prescription::Prescription, Received), Problem> {
    let today = london_date(state.clock.now());
    let rx = parse_prescription_bytes(body, today, Formulary::builtin()).map_err(|e| match e {
        BodyError::Contract(errors) => Problem::validation(errors),
        BodyError::Json(e) => malformed_json(&e),
    })?;
    // The signed bytes are those of the body as received (RFC 8785), computed only when there
    // is a signature to check: only then is the body read as a `serde_json::Value`.
    let signed_payload = match &rx.signature {
        Some(_) => Some(
            rxbridge_app::signatures::signed_payload(&parse_json(body)?)
                .map_err(|e| Problem::new(ProblemCode::MalformedJson, e))?,
        ),
        None => None,
    };
    Ok((
        rx,
        Received {
            signed_payload,
            eps_released: None,
        },
    ))
}

/// The idempotency request hash: SHA-256 of the body's canonical JSON (400 if it is not JSON).
fn request_hash(body: &[u8]) -> Result<String, Problem> {
    let canonical = crate::contract::canonical_json(body).map_err(|e| malformed_json(&e))?;
    Ok(sha256_hex(&canonical))
}

/// Submit a prescription.
///
/// Validates the payload against the contract (422 lists every problem), applies the UK
/// compliance rules, and records it durably before answering 201. A prescription the law
/// forbids is still recorded, with status `rejected` and its blocking findings.
#[utoipa::path(
    post, path = "/v1/prescriptions", tag = "prescriptions", operation_id = "submitPrescription",
    request_body(content = PrescriptionIn, content_type = "application/json"),
    params(("Idempotency-Key" = String, Header, description = "1 to 255 printable ASCII characters; the same key and body replays the first answer")),
    responses(
        (status = 201, description = "Recorded (a replay carries `Idempotent-Replayed: true`)", body = schemas::PrescriptionView),
        (status = 400, description = "Malformed JSON or a missing Idempotency-Key", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A request with this key is still in flight", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over 256 KiB", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The payload breaks the contract, or the key was used with another body", body = Problem, content_type = "application/problem+json",
            example = json!(crate::schema::example_validation_problem())),
    ),
    security(("bearer" = []))
)]
pub async fn submit(
    State(state): State<AppState>,
    ClinicCaller(caller): ClinicCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let key = idempotency_key(&headers)?;
    require_json(&headers)?;
    let request_hash = request_hash(&body)?;
    let guard = match state
        .intake
        .begin(&caller, &key, &request_hash)
        .await
        .map_err(intake_problem)?
    {
        Begin::Replay(r) => return Ok(created_with(&r.view, r.body, true)),
        Begin::Proceed(g) => g,
    };
    let (rx, received) = parse_submission(&state, &body)?;
    refuse_recorded_eps(&state, &caller, &rx).await?;
    let done = state
        .intake
        .submit(guard, &caller, &key, &request_hash, rx, &received)
        .await
        .map_err(intake_problem)?;
    Ok(created_with(&done.view, done.body, done.replayed))
}

/// An EPS prescription already recorded here (by the FHIR door or a release) is refused at
/// `/authority/eps_prescription_id`, naming the record.
async fn refuse_recorded_eps(
    state: &AppState,
    caller: &Caller,
    rx: &rxbridge_domain::prescription::Prescription,
) -> Result<(), Problem> {
    let Some(eps_id) = rx.authority.eps_prescription_id.as_deref() else {
        return Ok(());
    };
    match state.intake.recorded_eps(caller, eps_id).await {
        Ok(None) => Ok(()),
        Ok(Some(id)) => Err(Problem::validation(vec![FieldError {
            pointer: "/authority/eps_prescription_id".into(),
            code: "eps_prescription_recorded".into(),
            detail: format!("EPS prescription {eps_id} is already recorded here as {id}"),
        }])),
        Err(e) => Err(intake_problem(e)),
    }
}

/// The `Idempotency-Key` header: required, 1 to 255 printable ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<String, Problem> {
    Ok(headers
        .get("idempotency-key")
        .ok_or_else(|| {
            Problem::new(
                ProblemCode::IdempotencyKeyMissing,
                "Send an Idempotency-Key header (1 to 255 characters) so retries are safe.",
            )
        })?
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| (0x20..0x7f).contains(&b)))
        .ok_or_else(|| {
            Problem::new(
                ProblemCode::IdempotencyKeyInvalid,
                "The Idempotency-Key must be 1 to 255 printable ASCII characters.",
            )
        })?
        .to_string())
}

/// 201 with the prescription's `Location` and `body`, the bytes stored for replays (a replay
/// sends the first answer's bytes as stored, and says so).
fn created_with(view: &PrescriptionView, body: String, replayed: bool) -> Response {
    let mut r = json_response(StatusCode::CREATED, body);
    if let Ok(l) = HeaderValue::from_str(&view.links.self_) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    if replayed {
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    r
}

/// Dry run: the same validation and compliance findings, nothing stored.
#[utoipa::path(
    post, path = "/v1/prescriptions/validate", tag = "prescriptions", operation_id = "validatePrescription",
    request_body(content = PrescriptionIn, content_type = "application/json"),
    responses(
        (status = 200, description = "The findings and the status the prescription would take", body = schemas::DryRunView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The payload breaks the contract", body = Problem, content_type = "application/problem+json",
            example = json!(crate::schema::example_validation_problem())),
    ),
    security(("bearer" = []))
)]
pub async fn validate(
    State(state): State<AppState>,
    ClinicCaller(caller): ClinicCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<DryRunView>, Problem> {
    require_json(&headers)?;
    parse_json(&body)?;
    let (rx, received) = parse_submission(&state, &body)?;
    state
        .intake
        .dry_run(&caller, &rx, &received)
        .await
        .map(Json)
        .map_err(intake_problem)
}

/// One prescription: status, findings and the timeline of what happened.
#[utoipa::path(
    get, path = "/v1/prescriptions/{id}", tag = "prescriptions", operation_id = "getPrescription",
    params(("id" = String, Path, description = "The prescription id from the 201 answer")),
    responses(
        (status = 200, description = "The prescription with its timeline", body = schemas::PrescriptionView),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prescription for this key (another clinic's id also answers 404)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_one(
    State(state): State<AppState>,
    ClinicCaller(caller): ClinicCaller,
    Path(id): Path<String>,
) -> Result<Json<PrescriptionView>, Problem> {
    state
        .intake
        .get(&caller, &id)
        .await
        .map(Json)
        .map_err(intake_problem)
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ListParams {
    /// Only prescriptions in this status (any other value answers 400).
    #[param(value_type = Option<crate::openapi::views::PrescriptionStatus>)]
    status: Option<String>,
    /// Only prescriptions with this clinic reference.
    clinic_reference: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// List prescriptions, newest first, a page at a time.
#[utoipa::path(
    get, path = "/v1/prescriptions", tag = "prescriptions", operation_id = "listPrescriptions",
    params(ListParams),
    responses(
        (status = 200, description = "A page of prescriptions", body = schemas::PrescriptionList),
        (status = 400, description = "A query parameter is not valid", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    ClinicCaller(caller): ClinicCaller,
    Query(q): Query<Vec<(String, String)>>,
) -> Result<Json<PrescriptionList>, Problem> {
    let (filter, limit, cursor) = list_query(&q)?;
    state
        .intake
        .list(&caller, &filter, cursor.as_deref(), limit)
        .await
        .map(Json)
        .map_err(intake_problem)
}

/// The list's query: filter, page size (default 20) and cursor; every problem is listed.
fn list_query(q: &[(String, String)]) -> Result<(ListFilter, u32, Option<String>), Problem> {
    let mut filter = ListFilter::default();
    let (mut limit, mut cursor) = (20u32, None);
    let mut errors = Vec::new();
    let mut err = |name: &str, code: &str, detail: String| {
        errors.push(FieldError {
            pointer: format!("/query/{name}"),
            code: code.into(),
            detail,
        })
    };
    let mut seen = std::collections::HashSet::new();
    for (k, v) in q {
        if !seen.insert(k.as_str()) {
            err(k, "duplicate_parameter", "is given more than once".into());
            continue;
        }
        match k.as_str() {
            "status" => match Status::parse(v) {
                Some(s) => filter.status = Some(s),
                None => err(k, "invalid_value", "is not a prescription status".into()),
            },
            "clinic_reference" => filter.clinic_reference = Some(v.clone()),
            "limit" => match v.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => limit = n,
                _ => err(
                    k,
                    "out_of_range",
                    "must be a whole number from 1 to 100".into(),
                ),
            },
            "cursor" => cursor = Some(v.clone()),
            _ => err(
                k,
                "unknown_parameter",
                "expected status, clinic_reference, limit or cursor".into(),
            ),
        }
    }
    if !errors.is_empty() {
        let mut p = Problem::new(
            ProblemCode::InvalidQuery,
            format!("{} query parameter problem(s); see `errors`.", errors.len()),
        );
        p.errors = errors;
        return Err(p);
    }
    Ok((filter, limit, cursor))
}

/// Cancel a prescription (allowed until dispatch). Cancelling twice answers the same.
#[utoipa::path(
    post, path = "/v1/prescriptions/{id}/cancel", tag = "prescriptions", operation_id = "cancelPrescription",
    params(("id" = String, Path, description = "The prescription id")),
    request_body(content = CancelIn, content_type = "application/json"),
    responses(
        (status = 200, description = "Cancelled (already cancelled: nothing recorded, `Idempotent-Replayed: true`)", body = schemas::PrescriptionView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prescription for this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already dispatched, delivered, rejected or expired", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No reason given", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    ClinicCaller(caller): ClinicCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    require_json(&headers)?;
    let reason = one_text_field(&body, "reason", 500)?;
    // A paid prescription is refunded now (and by the sweep, should this fail).
    let done = state
        .payments
        .cancel_by_clinic(&caller, &id, &reason)
        .await
        .map_err(intake_problem)?;
    if done.already {
        // Already cancelled: the same 200 and body as the first cancel, marked as a replay the
        // way an idempotency-key replay is, so a client can tell nothing new was recorded.
        return Ok(([("idempotent-replayed", "true")], Json(done.view)).into_response());
    }
    Ok(Json(done.view).into_response())
}

/// Read `{ "<field>": "..." }`: exactly one required text field, 1..=max characters.
fn one_text_field(body: &[u8], field: &str, max: usize) -> Result<String, Problem> {
    let v = parse_json(body)?;
    let mut errors = Vec::new();
    let mut value = None;
    match v.as_object() {
        None => errors.push(FieldError {
            pointer: "".into(),
            code: "wrong_type".into(),
            detail: "must be an object".into(),
        }),
        Some(m) => {
            for k in m.keys().filter(|k| *k != field) {
                errors.push(FieldError {
                    pointer: format!("/{}", k.replace('~', "~0").replace('/', "~1")),
                    code: "unknown_field".into(),
                    detail: format!("unknown field; expected: {field}"),
                });
            }
            match m.get(field) {
                Some(serde_json::Value::String(s))
                    if !s.trim().is_empty()
                        && s.trim().chars().count() <= max
                        && !s.chars().any(|c| c.is_control() && c != '\n') =>
                {
                    value = Some(s.trim().to_string())
                }
                Some(serde_json::Value::String(_)) => errors.push(FieldError {
                    pointer: format!("/{field}"),
                    code: format!("invalid_{field}"),
                    detail: format!("must be 1 to {max} printable characters"),
                }),
                Some(_) => errors.push(FieldError {
                    pointer: format!("/{field}"),
                    code: "wrong_type".into(),
                    detail: "must be a string".into(),
                }),
                None => errors.push(FieldError {
                    pointer: format!("/{field}"),
                    code: "required".into(),
                    detail: "is required".into(),
                }),
            }
        }
    }
    match value {
        Some(v) if errors.is_empty() => Ok(v),
        _ => Err(Problem::validation(errors)),
    }
}

/// Answer a pharmacist's query about a prescription (status `on_hold`): the answer is
/// recorded and the prescription returns to the clinical check.
#[utoipa::path(
    post, path = "/v1/prescriptions/{id}/query-response", tag = "prescriptions", operation_id = "answerPrescriptionQuery",
    params(("id" = String, Path, description = "The prescription id")),
    request_body(content = crate::schema::QueryResponseIn, content_type = "application/json"),
    responses(
        (status = 200, description = "Answered; back with the pharmacist", body = schemas::PrescriptionView),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such prescription for this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "No query is open on this prescription", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "No answer given", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn query_response(
    State(state): State<AppState>,
    ClinicCaller(caller): ClinicCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<PrescriptionView>, Problem> {
    require_json(&headers)?;
    let answer = one_text_field(&body, "answer", 2000)?;
    state
        .intake
        .answer_query(&caller, &id, &answer)
        .await
        .map(Json)
        .map_err(intake_problem)
}

#[derive(Serialize, ToSchema)]
pub struct FormularyView {
    pub version: String,
    /// The dm+d table's version.
    pub dmd_version: String,
    #[schema(value_type = Vec<FormularyProduct>)]
    pub products: Vec<ProductWithDmd>,
}

/// A product as listed: its formulary entry and its dm+d codes.
#[derive(Serialize)]
pub struct ProductWithDmd {
    #[serde(flatten)]
    product: &'static Product,
    dmd: Vec<DmdCodeView>,
}

/// A formulary product (the fields below, and its schedule, ages, doses and sources).
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // the fields exist for the schema
pub struct FormularyProduct {
    #[schema(example = "ELVANSE-30")]
    pub code: String,
    pub name: String,
    #[schema(example = "CD2")]
    pub schedule: String,
    /// Its dm+d codes (matched by the FHIR intake), each with its source; empty when none has
    /// been sourced yet (an EPS message naming the product is then refused).
    pub dmd: Vec<DmdCodeView>,
}

/// One dm+d code of a product.
#[derive(Serialize, ToSchema)]
pub struct DmdCodeView {
    /// The SNOMED CT identifier.
    pub code: String,
    /// `VMP`, `AMP`, `VMPP` or `AMPP`.
    pub concept: String,
    /// Where the code was taken from.
    pub source: String,
}

/// The products a prescription may name, with schedule, form, strength, licensed ages and
/// licensed maximum daily doses, and the dm+d codes that name them, each with its source.
#[utoipa::path(get, path = "/v1/formulary", tag = "reference", operation_id = "getFormulary",
    responses((status = 200, description = "The formulary", body = FormularyView),
    (status = "4XX", description = "A request the server refuses before the handler (for example 408 when it is not received within 30 s)", body = Problem, content_type = "application/problem+json")))]
pub async fn formulary(State(state): State<AppState>) -> Json<FormularyView> {
    let (f, dmd) = (Formulary::builtin(), state.dmd.as_ref());
    let products = f
        .products
        .iter()
        .map(|p| {
            let dmd = dmd
                .codes_of(&p.code)
                .map(|c| DmdCodeView {
                    code: c.dmd.clone(),
                    concept: c.concept.clone(),
                    source: c.source.clone(),
                })
                .collect();
            ProductWithDmd { product: p, dmd }
        })
        .collect();
    Json(FormularyView {
        version: f.version.clone(),
        dmd_version: dmd.version.clone(),
        products,
    })
}

#[derive(Serialize, ToSchema)]
pub struct RulesView {
    /// Each rule: `code`, `severity`, `rule` (the public law or guidance it comes from),
    /// `source_url`, `applies_to`, `description`, and `thresholds` (the values in force) where
    /// it uses any.
    #[schema(value_type = Vec<Object>)]
    pub rules: Vec<serde_json::Value>,
    #[schema(value_type = Object)]
    pub thresholds: Thresholds,
}

/// One rule as listed, with the values of the thresholds it uses.
fn rule_view(r: &RuleInfo, t: &serde_json::Value) -> serde_json::Value {
    let mut v = serde_json::json!({
        "code": r.code,
        "severity": r.severity,
        "rule": r.rule,
        "source_url": r.source_url,
        "applies_to": r.applies_to,
        "description": r.description,
    });
    if !r.thresholds.is_empty() {
        v["thresholds"] = r
            .thresholds
            .iter()
            .map(|k| (k.to_string(), t.get(*k).cloned().unwrap_or_default()))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    v
}

/// Every compliance rule with its code, severity, citation and source, and the thresholds in
/// force.
#[utoipa::path(get, path = "/v1/rules", tag = "reference", operation_id = "listRules",
    responses((status = 200, description = "The rules", body = RulesView),
    (status = "4XX", description = "A request the server refuses before the handler (for example 408 when it is not received within 30 s)", body = Problem, content_type = "application/problem+json")))]
pub async fn rules(State(state): State<AppState>) -> Json<RulesView> {
    let thresholds = state.intake.thresholds().clone();
    let t = serde_json::to_value(&thresholds).unwrap_or_default();
    Json(RulesView {
        rules: RULES.iter().map(|r| rule_view(r, &t)).collect(),
        thresholds,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", operation_id = "checkLiveness", responses(
    (status = 200, description = "The process answers", body = Health),
    (status = "4XX", description = "A request the server refuses before the handler (for example 408 when it is not received within 30 s)", body = Problem, content_type = "application/problem+json")))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the store answers.
#[utoipa::path(get, path = "/readyz", tag = "operations", operation_id = "checkReadiness", responses(
    (status = 200, description = "The store answers", body = Health),
    (status = "4XX", description = "A request the server refuses before the handler (for example 408 when it is not received within 30 s)", body = Problem, content_type = "application/problem+json"),
    (status = 503, description = "The store is not reachable", body = Problem, content_type = "application/problem+json")))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, Problem> {
    match state.store.ping().await {
        Ok(()) => Ok(Json(Health {
            status: "ready".into(),
        })),
        Err(e) => {
            tracing::error!(error = ?e, "readiness check failed");
            Err(Problem::new(
                ProblemCode::Unavailable,
                "The store is not reachable.",
            ))
        }
    }
}

/// The OpenAPI 3.1 document.
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, state.openapi.as_str().to_string())
}

/// Prometheus metrics (text exposition format).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = (StatusCode::OK, state.metrics.render()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}
