use crate::api::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn same_key_same_body_replays_the_first_answer() {
    let app = spawn_app().await;
    let key = new_key();
    let compact = serde_json::to_string(&valid_body()).unwrap();
    let post_raw = |text: String| {
        app.client
            .post(app.url("/v1/prescriptions"))
            .bearer_auth(&app.test_key)
            .header("Idempotency-Key", &key)
            .header("content-type", "application/json")
            .body(text)
            .send()
    };
    let r1 = post_raw(compact.clone()).await.unwrap();
    assert_eq!(r1.status(), StatusCode::CREATED);
    assert!(r1.headers().get("idempotent-replayed").is_none());
    let b1 = r1.text().await.unwrap();
    // The same JSON with keys in another order and other whitespace is the same request.
    let reordered = format!(
        "{{ \"type\": \"private\", {}",
        &compact[1..].replace(",\"type\":\"private\"", "")
    );
    assert_ne!(reordered, compact);
    let r2 = post_raw(reordered).await.unwrap();
    assert_eq!(r2.status(), StatusCode::CREATED);
    assert_eq!(r2.headers()["idempotent-replayed"], "true");
    assert_eq!(r2.text().await.unwrap(), b1, "byte-identical replay");
    assert_eq!(app.count(&app.test_key).await, 1);
}

#[tokio::test]
async fn same_key_different_body_is_422() {
    let app = spawn_app().await;
    let key = new_key();
    assert_eq!(
        app.submit_with(&app.test_key, &key, &valid_body())
            .await
            .status(),
        StatusCode::CREATED
    );
    let mut other = valid_body();
    other["clinic_reference"] = "ANOTHER".into();
    let r = app.submit_with(&app.test_key, &key, &other).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        r.json::<Value>().await.unwrap()["code"],
        "idempotency_key_reused"
    );
    assert_eq!(app.count(&app.test_key).await, 1);
}

#[tokio::test]
async fn keys_are_scoped_per_clinic_and_a_rejected_payload_does_not_burn_the_key() {
    let app = spawn_app().await;
    let key = new_key();
    let mut bad = valid_body();
    bad["patient"]["nhs_number"] = "123".into();
    assert_eq!(
        app.submit_with(&app.test_key, &key, &bad).await.status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // The corrected payload under the same key is accepted: nothing was stored for the 422.
    assert_eq!(
        app.submit_with(&app.test_key, &key, &valid_body())
            .await
            .status(),
        StatusCode::CREATED
    );
    // The same key for another clinic is another key.
    let other = app.add_clinic("Other").await;
    let r = app.submit_with(&other.test_key, &key, &valid_body()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers().get("idempotent-replayed").is_none());
}

#[tokio::test]
async fn hundred_concurrent_submissions_with_one_key_make_one_record() {
    let app = spawn_app().await;
    let key = new_key();
    let body = valid_body();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (client, url, auth, key, body) = (
            app.client.clone(),
            app.url("/v1/prescriptions"),
            app.test_key.clone(),
            key.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(auth)
                .header("Idempotency-Key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            let s = r.status();
            let v: Value = r.json().await.unwrap();
            (s, v)
        }));
    }
    let mut ids = std::collections::HashSet::new();
    let (mut created, mut conflicts) = (0, 0);
    for t in tasks {
        let (s, v) = t.await.unwrap();
        match s {
            StatusCode::CREATED => {
                created += 1;
                ids.insert(v["id"].as_str().unwrap().to_string());
            }
            StatusCode::CONFLICT => {
                conflicts += 1;
                assert_eq!(v["code"], "idempotency_in_flight");
            }
            other => panic!("unexpected {other}: {v}"),
        }
    }
    assert_eq!(created + conflicts, 100);
    assert_eq!(ids.len(), 1, "every 201 carries the same id");
    assert_eq!(app.count(&app.test_key).await, 1);
}

/// A replay sends the stored answer's bytes as they are: never parsed and written again (an
/// answer stored by an earlier version keeps its bytes whatever this one would write).
#[tokio::test]
async fn a_replay_sends_the_stored_bytes_not_a_reserialisation() {
    let app = spawn_app().await;
    let key = new_key();
    let first = app.submit_with(&app.test_key, &key, &valid_body()).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let stored = first.text().await.unwrap();
    // The same answer with other spacing, as another serialiser would have written it.
    let spaced =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(&stored).unwrap()).unwrap();
    assert_ne!(spaced, stored);
    let db = rusqlite::Connection::open(app.data_dir.path().join("rxbridge.db")).unwrap();
    let n = db
        .execute(
            "UPDATE idempotency_answers SET response_body = ?1 WHERE response_body = ?2",
            [&spaced, &stored],
        )
        .unwrap();
    assert_eq!(n, 1);
    let again = app.submit_with(&app.test_key, &key, &valid_body()).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), spaced, "the stored bytes");
}
