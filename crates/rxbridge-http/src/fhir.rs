//! The FHIR R4 front door: `POST /fhir/R4/$process-message` takes an NHS EPS
//! `prescription-order` message Bundle, reads it onto the clinic contract (`rxbridge-fhir`),
//! runs the same contract parser and the same intake (`Intake::submit`: compliance, store,
//! idempotency keyed on `Bundle.identifier.value`), and answers in FHIR (`OperationOutcome`,
//! `application/fhir+json`). `GET /fhir/R4/metadata` is its `CapabilityStatement`.

use crate::contract::parse_prescription_order;
use crate::handlers::ClinicCaller;
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use jiff::civil::Date;
use rxbridge_app::crypto::sha256_hex;
use rxbridge_app::events::canonical_json;
use rxbridge_app::intake::{Begin, InFlightGuard, IntakeError, Received};
use rxbridge_app::ports::Caller;
use rxbridge_app::views::PrescriptionView;
use rxbridge_domain::dates::london_date;
use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::prescription::Prescription;
use rxbridge_fhir::{Issue, Mapped, map_order, outcome};
use serde_json::Value;

pub const FHIR_JSON: &str = "application/fhir+json";

pub fn fhir_routes() -> Router<AppState> {
    Router::new()
        .route("/fhir/R4/$process-message", post(process_message))
        .route("/fhir/R4/metadata", get(metadata))
}

/// A FHIR answer: a status and an `OperationOutcome` (or other resource) as `application/fhir+json`.
pub struct Fhir(StatusCode, Value);

impl IntoResponse for Fhir {
    fn into_response(self) -> Response {
        let mut r = (self.0, serde_json::to_string(&self.1).unwrap_or_default()).into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
        r
    }
}

impl Fhir {
    fn one(status: StatusCode, fhir_code: &str, code: &str, detail: &str) -> Self {
        Fhir(status, outcome::single(fhir_code, code, detail))
    }
}

/// Submit an EPS prescription-order message.
#[utoipa::path(
    post, path = "/fhir/R4/$process-message", tag = "fhir", operation_id = "processMessage",
    description = "An NHS EPS `prescription-order` message Bundle, read onto the clinic contract: the same validation, compliance, store and API key as `POST /v1/prescriptions`. `Bundle.identifier.value` is the idempotency key: the same message again replays the first answer. Products are matched by dm+d code (`GET /v1/formulary` lists each product's `dmd` codes); an unknown code is a 422 at the medication's expression.",
    request_body(content = crate::openapi::fhir::PrescriptionOrderBundle, content_type = "application/fhir+json"),
    responses(
        (status = 201, description = "Recorded; `Location` is the prescription; `issue[0].diagnostics` is its id", body = crate::openapi::fhir::OperationOutcome, content_type = "application/fhir+json",
            headers(("Location" = String, description = "/v1/prescriptions/{id}"))),
        (status = 400, description = "Not JSON, or JSON that is not a FHIR Bundle", body = crate::openapi::fhir::OperationOutcome, content_type = "application/fhir+json"),
        (status = 401, description = "Missing or unknown API key", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The first request with this message id has not finished", body = crate::openapi::fhir::OperationOutcome, content_type = "application/fhir+json"),
        (status = 413, description = "Body over 256 KiB", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Not application/fhir+json", body = crate::openapi::fhir::OperationOutcome, content_type = "application/fhir+json"),
        (status = 422, description = "Every problem of the Bundle, each with a FHIRPath `expression`; or the message id was used with another Bundle", body = crate::openapi::fhir::OperationOutcome, content_type = "application/fhir+json",
            example = json!(crate::openapi::fhir::example_refused())),
    ),
    security(("bearer" = []))
)]
pub async fn process_message(
    State(state): State<AppState>,
    ClinicCaller(caller): ClinicCaller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Fhir> {
    require_fhir_json(&headers)?;
    let bundle = parse_json(&body)?;
    let mapped = map_order(&bundle, &state.dmd)
        .map_err(|e| Fhir::one(StatusCode::BAD_REQUEST, "structure", "not_a_bundle", &e.0))?;
    let hash = sha256_hex(canonical_json(&bundle).as_bytes());
    let (key, guard) = match begin(&state, &caller, &mapped, &hash).await? {
        Step::Replay(view) => return Ok(recorded(&view)),
        Step::Go(key, guard) => (key, guard),
    };
    let rx = contract_prescription(&state, &mapped)?;
    let (Some(key), Some(guard)) = (key, guard) else {
        return Err(internal());
    };
    refuse_recorded(&state, &caller, &mapped, &rx).await?;
    let done = state
        .intake
        .submit(guard, &caller, &key, &hash, rx, &Received::default())
        .await
        .map_err(intake_outcome)?;
    Ok(recorded(&done.view))
}

/// The FHIR capabilities of this server: `$process-message` for `prescription-order`.
#[utoipa::path(
    get, path = "/fhir/R4/metadata", tag = "fhir", operation_id = "getFhirMetadata",
    responses(
        (status = 200, description = "The CapabilityStatement", body = crate::openapi::fhir::CapabilityStatement, content_type = "application/fhir+json"),
        (status = "4XX", description = "A request the server refuses before the handler", body = crate::problem::Problem, content_type = "application/problem+json"),
    )
)]
pub async fn metadata() -> Fhir {
    Fhir(
        StatusCode::OK,
        outcome::capability_statement(env!("CARGO_PKG_VERSION")),
    )
}

enum Step {
    Replay(Box<PrescriptionView>),
    Go(Option<String>, Option<InFlightGuard>),
}

/// The idempotency step, keyed on the message id (in its own `fhir:` space, apart from the
/// JSON API's keys). A Bundle without a message id goes on to be refused with its problems;
/// one whose id cannot be a key is refused here.
async fn begin(
    state: &AppState,
    caller: &Caller,
    mapped: &Mapped,
    hash: &str,
) -> Result<Step, Fhir> {
    let Some(id) = &mapped.message_id else {
        return Ok(Step::Go(None, None));
    };
    let key = format!("fhir:{id}");
    if key.len() > 255 || !key.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        let issue = Issue {
            expression: "Bundle.identifier.value".into(),
            fhir_code: "value",
            code: "invalid_message_id".into(),
            detail: "the message id must be at most 250 printable ASCII characters (a UUID)".into(),
        };
        return Err(Fhir(
            StatusCode::UNPROCESSABLE_ENTITY,
            outcome::refused(&[issue]),
        ));
    }
    match state.intake.begin(caller, &key, hash).await {
        Ok(Begin::Replay(r)) => Ok(Step::Replay(Box::new(r.view))),
        Ok(Begin::Proceed(g)) => Ok(Step::Go(Some(key), Some(g))),
        Err(e) => Err(intake_outcome(e)),
    }
}

/// The contract parser on the mapped body; its errors and the mapping's own, each at its
/// FHIRPath, all at once. `today` is London's date. The message carries no charge exemption:
/// the prescription is recorded with its exemption to be declared at the pharmacy.
pub fn read_order(mapped: &Mapped, today: Date) -> Result<Prescription, Vec<Issue>> {
    let parsed = parse_prescription_order(&mapped.contract, today, Formulary::builtin());
    let errors = match &parsed {
        Ok(_) => Vec::new(),
        Err(es) => es
            .iter()
            .map(|e| (e.pointer.clone(), e.code.clone(), e.detail.clone()))
            .collect(),
    };
    let issues = mapped.all_issues(errors);
    match parsed {
        Ok(rx) if issues.is_empty() => Ok(rx),
        _ => Err(issues),
    }
}

fn contract_prescription(state: &AppState, mapped: &Mapped) -> Result<Prescription, Fhir> {
    read_order(mapped, london_date(state.clock.now()))
        .map_err(|issues| Fhir(StatusCode::UNPROCESSABLE_ENTITY, outcome::refused(&issues)))
}

/// A second message for an EPS prescription already recorded here (sent before under another
/// message id, or released from EPS to the pharmacy) is refused, naming the record: one
/// prescription is never recorded, checked or dispensed twice.
async fn refuse_recorded(
    state: &AppState,
    caller: &Caller,
    mapped: &Mapped,
    rx: &Prescription,
) -> Result<(), Fhir> {
    let Some(eps_id) = rx.authority.eps_prescription_id.as_deref() else {
        return Ok(());
    };
    let Some(id) = state
        .intake
        .recorded_eps(caller, eps_id)
        .await
        .map_err(intake_outcome)?
    else {
        return Ok(());
    };
    let issue = Issue {
        expression: mapped.expression_for("/authority/eps_prescription_id"),
        fhir_code: "duplicate",
        code: "eps_prescription_recorded".into(),
        detail: format!("EPS prescription {eps_id} is already recorded here as {id}"),
    };
    Err(Fhir(
        StatusCode::UNPROCESSABLE_ENTITY,
        outcome::refused(&[issue]),
    ))
}

/// 201 with `Location` and the OperationOutcome naming the prescription id. Built from the
/// id alone, so a replay answers the same bytes.
fn recorded(view: &PrescriptionView) -> Response {
    let mut r = Fhir(StatusCode::CREATED, outcome::recorded(&view.id)).into_response();
    if let Ok(l) = HeaderValue::from_str(&view.links.self_) {
        r.headers_mut().insert(header::LOCATION, l);
    }
    r
}

fn require_fhir_json(headers: &HeaderMap) -> Result<(), Fhir> {
    let ok = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case(FHIR_JSON) || v.eq_ignore_ascii_case("application/json")
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(Fhir::one(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            "unsupported_media_type",
            "Send the Bundle with Content-Type: application/fhir+json.",
        ))
    }
}

fn parse_json(body: &[u8]) -> Result<Value, Fhir> {
    serde_json::from_slice(body).map_err(|e| {
        Fhir::one(
            StatusCode::BAD_REQUEST,
            "structure",
            "malformed_json",
            &format!(
                "The body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ),
        )
    })
}

fn internal() -> Fhir {
    Fhir::one(
        StatusCode::INTERNAL_SERVER_ERROR,
        "exception",
        "internal",
        "Something went wrong on our side; retry later.",
    )
}

fn intake_outcome(e: IntakeError) -> Fhir {
    match e {
        IntakeError::InFlight => Fhir::one(
            StatusCode::CONFLICT,
            "conflict",
            "idempotency_in_flight",
            "The first request with this message id (Bundle.identifier.value) has not finished; retry shortly.",
        ),
        IntakeError::KeyReused => Fhir::one(
            StatusCode::UNPROCESSABLE_ENTITY,
            "duplicate",
            "idempotency_key_reused",
            "This message id (Bundle.identifier.value) was already used with a different Bundle; a new message needs a new id.",
        ),
        IntakeError::Store(rxbridge_app::StoreError::Conflict) => Fhir::one(
            StatusCode::CONFLICT,
            "conflict",
            "conflict",
            "The prescription changed while we worked on it; retry.",
        ),
        other => {
            tracing::error!(error = ?other, "FHIR intake failure");
            internal()
        }
    }
}
