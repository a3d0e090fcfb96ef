use crate::api::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn missing_or_unknown_key_is_401_with_www_authenticate() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/v1/prescriptions"))
        .header("Idempotency-Key", "k")
        .json(&valid_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    for key in ["rxb_test_wrongwrongwrongwrongwrongwrong12", "garbage", ""] {
        let r = app
            .client
            .get(app.url("/v1/prescriptions"))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{key}");
        assert!(
            r.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
    }
    let r = app
        .client
        .get(app.url("/v1/prescriptions"))
        .header("Authorization", format!("Basic {}", app.test_key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_clinic_sees_only_its_own_and_modes_never_mix() {
    let app = spawn_app().await;
    let other = app.add_clinic("Other Clinic").await;
    let mine = app.submit_ok(&valid_body()).await;
    let path = format!("/v1/prescriptions/{}", mine["id"].as_str().unwrap());
    let (s, p) = app.get_json(&path, &other.test_key).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "another clinic's id answers 404, never 403"
    );
    assert_eq!(p["code"], "not_found");
    let (s, _) = app.get_json(&path, &app.live_key).await;
    assert_eq!(
        s,
        StatusCode::NOT_FOUND,
        "the live key does not see sandbox data"
    );
    let (s, _) = app
        .post_json(
            &format!("{path}/cancel"),
            &other.test_key,
            &serde_json::json!({"reason": "r"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.count(&other.test_key).await, 0);
    assert_eq!(app.count(&app.live_key).await, 0);
    assert_eq!(app.count(&app.test_key).await, 1);
    // A live submission is visible only to the live key.
    let r = app
        .submit_with(&app.live_key, &new_key(), &valid_body())
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(app.count(&app.live_key).await, 1);
    assert_eq!(app.count(&app.test_key).await, 1);
}

#[tokio::test]
async fn malformed_bodies_and_headers_get_problems() {
    let app = spawn_app().await;
    let post = |ct: &'static str, body: Vec<u8>, idem: Option<&'static str>| {
        let mut rb = app
            .client
            .post(app.url("/v1/prescriptions"))
            .bearer_auth(&app.test_key)
            .header("content-type", ct)
            .body(body);
        if let Some(i) = idem {
            rb = rb.header("Idempotency-Key", i);
        }
        rb.send()
    };
    let r = post("application/json", b"{not json".to_vec(), Some("k1"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "malformed_json");
    let r = post("text/plain", b"{}".to_vec(), Some("k2"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = post(
        "application/json",
        serde_json::to_vec(&valid_body()).unwrap(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "idempotency_key_missing"
    );
    let big = vec![b' '; 300 * 1024];
    let r = post("application/json", big, Some("k3")).await.unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = post("application/json", b"\xff\xfe{}".to_vec(), Some("k4"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = post("application/json", deep.into_bytes(), Some("k5"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let long = "k".repeat(256);
    let r = app
        .client
        .post(app.url("/v1/prescriptions"))
        .bearer_auth(&app.test_key)
        .header("Idempotency-Key", long)
        .json(&valid_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.count(&app.test_key).await, 0);
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = app
        .client
        .delete(app.url("/v1/prescriptions"))
        .bearer_auth(&app.test_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().contains_key("allow"));
    let (s, _) = app
        .get_json("/v1/prescriptions/rx_doesnotexist", &app.test_key)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
