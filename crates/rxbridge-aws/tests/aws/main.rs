//! rxbridge on AWS against the local stand-in (moto_server): the router invoked through
//! `lambda_http` with API Gateway (HTTP API, payload 2.0) events on DynamoDB, S3 and a KMS
//! envelope key; the scheduled worker; S3 documents; Cognito tokens — real, forged, expired
//! and for another app.

use lambda_http::request::LambdaRequest;
use lambda_runtime::{Context, LambdaEvent};
use rxbridge_app::originals::Documents as _;
use rxbridge_app::ports::StoreError;
use rxbridge_app::staff::{Identity, Role, StaffError};
use rxbridge_aws::documents::S3Documents;
use rxbridge_aws::{AwsSettings, lambda, local_sdk_config};
use rxbridge_store_dynamodb::{DynamoStore, testing};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

mod cognito;
#[path = "../common/mod.rs"]
mod common;

struct Env {
    settings: AwsSettings,
    sdk: aws_config::SdkConfig,
}

/// A fresh table, bucket and KMS key in the stand-in.
async fn env() -> Env {
    let endpoint = testing::endpoint();
    let sdk = local_sdk_config(&endpoint);
    let table = testing::unique_table("rxb-lambda");
    DynamoStore::with_client(aws_sdk_dynamodb::Client::new(&sdk), &table)
        .create_table()
        .await
        .unwrap();
    let bucket = table.to_lowercase();
    let s3 = rxbridge_aws::s3_client(&sdk, true);
    common::bucket(&s3, &bucket, false).await;
    let key = common::kms_key(&sdk, "rxbridge test").await;
    Env {
        settings: AwsSettings {
            table,
            bucket,
            kms_key_id: Some(key),
            cognito_pool_id: None,
            cognito_client_id: None,
            cognito_domain: None,
            cognito_jwks_url: None,
            endpoint_url: Some(endpoint),
            anchor_bucket: None,
        },
        sdk,
    }
}

fn config(dir: &tempfile::TempDir) -> rxbridge::Config {
    rxbridge::Config {
        data_dir: dir.path().to_path_buf(),
        ..rxbridge::Config::default()
    }
}

/// An API Gateway HTTP API (payload format 2.0) event, as Lambda receives it.
fn apigw_event(method: &str, path: &str, headers: Value, body: Option<&Value>) -> Value {
    let mut h = json!({
        "host": "abc123.execute-api.eu-west-2.amazonaws.com",
        "user-agent": "clinic-integration/1.0",
        "x-forwarded-for": "203.0.113.9",
        "x-forwarded-proto": "https",
    });
    for (k, v) in headers.as_object().unwrap() {
        h[k] = v.clone();
    }
    let (raw_path, query) = path.split_once('?').unwrap_or((path, ""));
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": query,
        "headers": h,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.eu-west-2.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "clinic-integration/1.0"
            },
            "requestId": "req-1",
            "routeKey": "$default",
            "stage": "$default",
            "time": "27/Nov/2026:04:00:00 +0000",
            "timeEpoch": 1_795_752_000_000u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

/// The Lambda response as API Gateway reads it (`statusCode`, `headers`, `cookies`, `body`).
async fn invoke_raw(router: axum::Router, event: Value) -> Value {
    let req: LambdaRequest = serde_json::from_value(event).unwrap();
    let adapter = lambda_http::Adapter::from(router);
    let res = adapter
        .oneshot(LambdaEvent::new(req, Context::default()))
        .await
        .unwrap();
    serde_json::to_value(&res).unwrap()
}

/// Invoke the router exactly as the Lambda runtime does: event JSON → `LambdaRequest` →
/// `lambda_http::Adapter` → `LambdaResponse` → JSON. Returns (status, body as JSON).
async fn invoke(router: axum::Router, event: Value) -> (u16, Value) {
    let out = invoke_raw(router, event).await;
    let status = out["statusCode"].as_u64().unwrap() as u16;
    let body = out["body"].as_str().unwrap_or_default();
    let text = if out["isBase64Encoded"].as_bool() == Some(true) {
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
        )
        .unwrap()
    } else {
        body.to_string()
    };
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prescription_through_api_gateway_events_on_dynamodb() {
    let e = env().await;
    let dir = tempfile::tempdir().unwrap();
    let started = lambda::start(
        config(&dir),
        &e.settings,
        Arc::new(rxbridge_app::SystemClock),
    )
    .await
    .unwrap();
    let clinic = started
        .wired
        .state
        .clinics
        .add("Lambda Clinic")
        .await
        .unwrap();
    // No second listener on Lambda: the public router does not serve /metrics.
    let (status, _) = invoke(
        started.router(),
        apigw_event("GET", "/metrics", json!({}), None),
    )
    .await;
    assert_eq!(status, 404);
    let today = rxbridge_domain::dates::london_date(jiff::Timestamp::now()).to_string();
    let body = rxbridge_http::schema::example_submission_on(&today);
    let auth = json!({
        "authorization": format!("Bearer {}", clinic.test_key),
        "content-type": "application/json",
        "idempotency-key": "lambda-e2e-1",
    });
    let (status, created) = invoke(
        started.router(),
        apigw_event("POST", "/v1/prescriptions", auth.clone(), Some(&body)),
    )
    .await;
    assert_eq!(status, 201, "{created:#}");
    let id = created["id"].as_str().unwrap().to_string();
    // A retry with the same key replays the answer; nothing is written twice.
    let (again, replay) = invoke(
        started.router(),
        apigw_event("POST", "/v1/prescriptions", auth.clone(), Some(&body)),
    )
    .await;
    assert_eq!((again, replay["id"].as_str()), (201, Some(id.as_str())));
    // Read it back through another event.
    let (status, got) = invoke(
        started.router(),
        apigw_event(
            "GET",
            &format!("/v1/prescriptions/{id}"),
            json!({ "authorization": format!("Bearer {}", clinic.test_key) }),
            None,
        ),
    )
    .await;
    assert_eq!(status, 200, "{got:#}");
    assert_eq!(got["id"], id.as_str());
    // Bad input: a clear problem, nothing stored.
    let (status, problem) = invoke(
        started.router(),
        apigw_event(
            "POST",
            "/v1/prescriptions",
            json!({
                "authorization": format!("Bearer {}", clinic.test_key),
                "content-type": "application/json",
                "idempotency-key": "lambda-e2e-2",
            }),
            Some(&json!({ "type": "private" })),
        ),
    )
    .await;
    assert_eq!(status, 422, "{problem:#}");
    let (_, list) = invoke(
        started.router(),
        apigw_event(
            "GET",
            "/v1/prescriptions",
            json!({ "authorization": format!("Bearer {}", clinic.test_key) }),
            None,
        ),
    )
    .await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list:#}");
    // The store is the table: the event chain verifies there.
    let report = rxbridge_app::audit::verify_chain(&*started.store)
        .await
        .unwrap();
    assert!(report.events >= 2);
    // A second cold start (another instance) unwraps the same data key.
    let second = lambda::start(
        config(&dir),
        &e.settings,
        Arc::new(rxbridge_app::SystemClock),
    )
    .await
    .unwrap();
    let a = started.wired.state.intake.vault().lookup("t", "x");
    let b = second.wired.state.intake.vault().lookup("t", "x");
    assert_eq!(a, b, "both instances use the one wrapped data key");
    assert!(
        started
            .store
            .config_blob("DATAKEY")
            .await
            .unwrap()
            .is_some()
    );
    // The scheduled worker runs its sweeps and deliveries without failing.
    let report = lambda::worker_run(&second.wired, std::time::Duration::from_secs(5)).await;
    assert!(!report.to_string().contains("failed"), "{report:#}");
    // A scan in S3 reaches the portal as a short-lived link, after the audited read.
    use rxbridge_app::staff::Identity as _;
    let docs = S3Documents::new(
        &e.sdk,
        &e.settings.bucket,
        e.settings.kms_key_id.clone(),
        true,
    );
    docs.put("doc_scan1", "application/pdf", b"%PDF-1.4 scan".to_vec())
        .await
        .unwrap();
    let staff = &second.wired.staff;
    let (_, one_time) = staff
        .add("pat@pharmacy.example", Role::Pharmacist, Some("2012345"))
        .await
        .unwrap();
    let s = staff
        .sign_in("pat@pharmacy.example", &one_time)
        .await
        .unwrap();
    staff
        .change_password(&s.session, &one_time, "a long new passphrase")
        .await
        .unwrap();
    let cookie = format!("__Host-rxb_session={}", s.token);
    let res = invoke_raw(
        second.router(),
        with_cookie(
            apigw_event("GET", "/staff/documents/doc_scan1", json!({}), None),
            &cookie,
        ),
    )
    .await;
    assert_eq!(res["statusCode"], 303, "{res:#}");
    let link = res["headers"]["location"].as_str().unwrap();
    assert!(link.contains("X-Amz-Expires=60"), "{link}");
    assert_eq!(
        reqwest::get(link)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec(),
        b"%PDF-1.4 scan".to_vec()
    );
    let viewed = rxbridge_app::ports::EventLog::timeline(&*started.store, "doc_scan1")
        .await
        .unwrap();
    assert_eq!(viewed.last().unwrap().event.kind, "staff.viewed_document");
    let missing = invoke_raw(
        second.router(),
        with_cookie(
            apigw_event("GET", "/staff/documents/doc_none", json!({}), None),
            &cookie,
        ),
    )
    .await;
    assert_eq!(missing["statusCode"], 404);
    // The health check answers through Lambda too.
    let (status, _) = invoke(
        second.router(),
        apigw_event("GET", "/readyz", json!({}), None),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_on_s3_are_encrypted_typed_and_linked() {
    let e = env().await;
    let docs = S3Documents::new(
        &e.sdk,
        &e.settings.bucket,
        e.settings.kms_key_id.clone(),
        true,
    );
    let pdf = b"%PDF-1.4 test scan".to_vec();
    docs.put("doc_1", "application/pdf", pdf.clone())
        .await
        .unwrap();
    assert_eq!(
        docs.get("doc_1").await.unwrap(),
        Some(("application/pdf".to_string(), pdf.clone()))
    );
    assert_eq!(docs.get("doc_missing").await.unwrap(), None);
    assert_eq!(docs.get("../etc/passwd").await.unwrap(), None);
    assert!(matches!(
        docs.put("../x", "application/pdf", pdf.clone()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        docs.put(
            "doc_big",
            "application/pdf",
            vec![0; rxbridge_app::originals::MAX_SCAN_BYTES + 1]
        )
        .await,
        Err(StoreError::Rejected(_))
    ));
    // Stored with server-side encryption under the stack's key.
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&e.sdk)
            .force_path_style(true)
            .build(),
    );
    let head = s3
        .head_object()
        .bucket(&e.settings.bucket)
        .key("documents/doc_1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.server_side_encryption(),
        Some(&aws_sdk_s3::types::ServerSideEncryption::AwsKms)
    );
    // The portal's link: presigned, short-lived, and it fetches the bytes.
    let link = docs.download_link("doc_1").await.unwrap().unwrap();
    assert!(link.contains("X-Amz-Expires=60"), "{link}");
    let fetched = reqwest::get(&link).await.unwrap();
    assert!(fetched.status().is_success());
    assert_eq!(fetched.bytes().await.unwrap().to_vec(), pdf);
    assert_eq!(docs.download_link("doc_missing").await.unwrap(), None);
}

/// The value of cookie `name` among a Lambda response's `cookies`.
fn cookie_from(res: &Value, name: &str) -> Option<String> {
    res["cookies"].as_array()?.iter().find_map(|c| {
        let first = c.as_str()?.split(';').next()?;
        let (k, v) = first.split_once('=')?;
        (k == name && !v.is_empty()).then(|| first.to_string())
    })
}

fn with_cookie(mut event: Value, cookie: &str) -> Value {
    event["cookies"] = json!([cookie]);
    event
}

/// The operator's tool against the stand-in: import a file into a new table, refuse a second
/// import and a file that is not an export, add a clinic, verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_tool_imports_verifies_and_adds_clinics() {
    let endpoint = testing::endpoint();
    let table = testing::unique_table("rxb-cli");
    let tool = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rxbridge-aws"))
            .args(["--table", &table, "--endpoint", &endpoint])
            .args(args)
            .output()
            .unwrap()
    };
    assert!(tool(&["create-table"]).status.success());
    // An export of a store holding one clinic (the export format is the same from either
    // store; `from_embedded.rs` in the DynamoDB crate moves an embedded store's export).
    let dir = tempfile::tempdir().unwrap();
    let source = Arc::new(testing::fresh_store().await);
    let clock: Arc<dyn rxbridge_app::Clock> = Arc::new(rxbridge_app::SystemClock);
    rxbridge_app::clinics::Clinics::new(source.clone(), clock)
        .add("Moved Clinic")
        .await
        .unwrap();
    let file = dir.path().join("export.jsonl");
    let mut f = std::fs::File::create(&file).unwrap();
    rxbridge_app::transfer::export(&*source, &mut f)
        .await
        .unwrap();
    let not_export = dir.path().join("other.jsonl");
    std::fs::write(&not_export, "{\"hello\": 1}\n").unwrap();
    let bad = tool(&["import", "--file", not_export.to_str().unwrap()]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an rxbridge export"));
    let ok = tool(&["import", "--file", file.to_str().unwrap()]);
    let said = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        said.contains("imported 4 records") && said.contains("verifies (1 events)"),
        "{said}"
    );
    let again = tool(&["import", "--file", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds data"));
    let added = tool(&["clinic", "add", "Second Clinic"]);
    let said = String::from_utf8_lossy(&added.stdout);
    assert!(
        said.contains("rxb_test_") && said.contains("rxb_live_"),
        "{said}"
    );
    let verified = tool(&["verify"]);
    assert!(String::from_utf8_lossy(&verified.stdout).contains("verifies: 2 events"));
}

#[tokio::test]
async fn the_client_address_comes_from_the_request_context_not_the_headers() {
    let router = lambda::with_client_addr(axum::Router::new().route(
        "/ip",
        axum::routing::get(
            |ip: Option<axum::Extension<rxbridge_http::ClientAddr>>| async move {
                axum::Json(json!(ip.map(|axum::Extension(a)| a.0.to_string())))
            },
        ),
    ));
    let mut event = apigw_event(
        "GET",
        "/ip",
        json!({ "x-forwarded-for": "198.51.100.7" }),
        None,
    );
    event["requestContext"]["http"]["sourceIp"] = json!("192.0.2.44");
    let (status, body) = invoke(router, event).await;
    assert_eq!((status, body), (200, json!("192.0.2.44")));
}
