use crate::api::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn health_readiness_formulary_and_openapi() {
    let app = spawn_app().await;
    let (s, v) = app.get_json("/healthz", "").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, v) = app.get_json("/readyz", "").await;
    assert_eq!((s, v["status"].as_str()), (StatusCode::OK, Some("ready")));
    let (s, f) = app.get_json("/v1/formulary", "").await;
    assert_eq!(s, StatusCode::OK);
    let products = f["products"].as_array().unwrap();
    assert!(products.len() >= 40);
    for p in products {
        for k in [
            "code",
            "name",
            "active_ingredient",
            "form",
            "strength_mg",
            "schedule",
            "licensed_min_age",
            "licensed_max_age",
            "max_daily_dose_mg",
            "source",
        ] {
            assert!(p.get(k).is_some(), "{k} missing in {p}");
        }
        assert!(
            p["max_daily_dose_mg"].get("child").is_some()
                && p["max_daily_dose_mg"].get("adult").is_some()
        );
        assert!(
            ["CD2", "CD3", "CD4-1", "CD4-2", "CD5", "POM"]
                .contains(&p["schedule"].as_str().unwrap())
        );
    }
    let r = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for p in [
        "/v1/prescriptions",
        "/v1/prescriptions/validate",
        "/v1/prescriptions/{id}",
        "/v1/prescriptions/{id}/cancel",
        "/v1/formulary",
        "/v1/rules",
        "/healthz",
        "/readyz",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p} missing from OpenAPI");
    }
}

#[tokio::test]
async fn responses_carry_request_ids_and_security_headers() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-123");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(!r.headers()["x-request-id"].is_empty());
}

#[tokio::test]
async fn acknowledged_prescriptions_survive_a_restart() {
    let mut app = spawn_app().await;
    let v = app.submit_ok(&valid_body()).await;
    let id = v["id"].as_str().unwrap().to_string();
    let key = app.test_key.clone();
    app.stop().await;
    let dir = std::mem::replace(&mut app.data_dir, tempfile::tempdir().unwrap());
    let app2 = spawn_in(dir).await;
    let (s, got) = app2
        .get_json(&format!("/v1/prescriptions/{id}"), &key)
        .await;
    assert_eq!(s, StatusCode::OK, "{got}");
    assert_eq!(got["status"], "awaiting_original");
}

#[tokio::test]
async fn patient_data_is_encrypted_at_rest_and_the_key_file_is_private() {
    let mut app = spawn_app().await;
    let mut b = valid_body();
    b["patient"]["given_name"] = "Zebedee".into();
    b["patient"]["family_name"] = "Quartermaine".into();
    b["patient"]["email"] = "zeb.q@example.org".into();
    app.submit_ok(&b).await;
    app.stop().await;
    let dir = app.data_dir.path();
    let mut all = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("rxbridge.db")
        {
            all.extend(std::fs::read(&p).unwrap());
        }
    }
    assert!(all.len() > 10_000);
    for needle in [
        "Zebedee",
        "Quartermaine",
        "zeb.q@example.org",
        "9434765919",
        "1998-02-14",
        "High Street",
        "M1 1AE",
    ] {
        assert!(
            !all.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} found in plain text"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("patient-data.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_group_commit_batches() {
    let app = spawn_app().await;
    app.submit_ok(&valid_body()).await;
    let (s, _) = app
        .get_json("/v1/prescriptions/rx_nope", &app.test_key)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = app.client.get(app.metrics_url()).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let text = r.text().await.unwrap();
    assert!(text.contains(r#"rxbridge_http_requests_total{route="/v1/prescriptions",method="POST",status="201"} 1"#), "{text}");
    assert!(text.contains(r#"rxbridge_http_requests_total{route="/v1/prescriptions/{id}",method="GET",status="404"} 1"#), "{text}");
    assert!(
        !text.contains("rx_nope"),
        "concrete paths never become labels"
    );
    assert!(text.contains("rxbridge_http_request_duration_seconds_bucket"));
    for outbox in [
        "rxbridge_outbox_pending ",
        "rxbridge_outbox_oldest_pending_age_seconds ",
        "rxbridge_outbox_dead ",
        "rxbridge_outbox_delivered_total ",
        "rxbridge_outbox_failed_attempts_total ",
    ] {
        assert!(text.contains(outbox), "{outbox} in {text}");
    }
    assert!(
        text.trim_end().ends_with("# EOF"),
        "OpenMetrics ends with # EOF"
    );
    // One clinic creation and one prescription: at least one durable commit.
    let count: u64 = text
        .lines()
        .find(|l| l.starts_with("rxbridge_store_commit_batch_size_count"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(count >= 1, "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
}
