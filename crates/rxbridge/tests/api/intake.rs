use crate::api::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn valid_private_cd_is_recorded_awaiting_original() {
    let app = spawn_app().await;
    let r = app.submit(&valid_body()).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["status"], "awaiting_original");
    assert_eq!(v["type"], "private");
    assert_eq!(v["clinic_reference"], "ADHD-2026-000123");
    assert!(v["id"].as_str().unwrap().starts_with("rx_"));
    assert_eq!(
        loc,
        format!("/v1/prescriptions/{}", v["id"].as_str().unwrap())
    );
    assert_eq!(codes(&v), ["paper_original_required"]);
    assert!(v["created_at"].is_string() && v["links"]["cancel"].is_string());
    // Read back: same object plus the timeline from the event log.
    let (s, got) = app.get_json(&loc, &app.test_key).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got["id"], v["id"]);
    let t = got["timeline"].as_array().unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0]["event"], "prescription.received");
    assert_eq!(t[0]["actor"], format!("clinic:{}", app.clinic_id));
    assert!(t[0]["at"].is_string() && t[0]["detail"]["status"] == "awaiting_original");
}

#[tokio::test]
async fn nhs_eps_prescription_awaits_clinical_check() {
    let app = spawn_app().await;
    let v = app.submit_ok(&nhs_body()).await;
    assert_eq!(v["status"], "awaiting_clinical_check");
    assert!(codes(&v).is_empty(), "{v:#}");
}

#[tokio::test]
async fn every_contract_violation_is_reported_at_once_and_nothing_is_stored() {
    let app = spawn_app().await;
    let mut b = valid_body();
    b["patient"]["nhs_number"] = "9434765918".into(); // bad check digit
    b["patient"]["address"]["postcode"] = "NOPE".into();
    b["patient"].as_object_mut().unwrap().remove("family_name");
    b["prescriber"]["registration"]["number"] = "12".into();
    b["items"][0]["product_code"] = "ASPIRIN".into();
    b["items"][0]["quantity"] = 0.into();
    b["items"][0]["quantity_in_words"] = "twenty-eightish".into();
    b["items"][0]["colour"] = "blue".into();
    b["issued_on"] = "2026-02-30".into();
    b["surprise"] = true.into();
    b["type"] = "veterinary".into();
    let r = app.submit(&b).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "validation_failed");
    assert_eq!(v["status"], 422);
    let errs = error_pointers(&v);
    for expected in [
        ("/surprise", "unknown_field"),
        ("/type", "invalid_value"),
        ("/issued_on", "invalid_date"),
        ("/patient/nhs_number", "invalid_nhs_number"),
        ("/patient/family_name", "required"),
        ("/patient/address/postcode", "invalid_postcode"),
        (
            "/prescriber/registration/number",
            "invalid_registration_number",
        ),
        ("/items/0/colour", "unknown_field"),
        ("/items/0/product_code", "unknown_product"),
        ("/items/0/quantity", "out_of_range"),
        ("/items/0/quantity_in_words", "invalid_quantity_words"),
    ] {
        assert!(
            errs.contains(&(expected.0.into(), expected.1.into())),
            "missing {expected:?} in {errs:?}"
        );
    }
    assert!(
        v["errors"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| !e["detail"].as_str().unwrap().is_empty())
    );
    assert_eq!(app.count(&app.test_key).await, 0);
}

#[tokio::test]
async fn type_and_authority_consistency() {
    let app = spawn_app().await;
    // NHS needs the nhs block and an NHS number; private forbids the nhs block.
    let mut b = nhs_body();
    b.as_object_mut().unwrap().remove("nhs");
    b["patient"].as_object_mut().unwrap().remove("nhs_number");
    let v: Value = app.submit(&b).await.json().await.unwrap();
    let e = error_pointers(&v);
    assert!(e.contains(&("/nhs".into(), "required".into())), "{e:?}");
    assert!(
        e.contains(&("/patient/nhs_number".into(), "required".into())),
        "{e:?}"
    );
    let mut b = valid_body();
    b["nhs"] = json!({"exemption": "0001", "evidence_seen": true});
    let v: Value = app.submit(&b).await.json().await.unwrap();
    assert_eq!(
        error_pointers(&v),
        [("/nhs".to_string(), "not_allowed".to_string())]
    );
    let mut b = valid_body();
    b["authority"] = json!({"kind": "eps", "eps_prescription_id": "24F5DA-A83008-7EFE6Z"});
    let v: Value = app.submit(&b).await.json().await.unwrap();
    assert_eq!(
        error_pointers(&v),
        [(
            "/authority/kind".to_string(),
            "authority_not_allowed".to_string()
        )]
    );
    // Not an id, and six bytes ending in a two-byte character (not six characters).
    for id in ["not-an-id", "24F5DA-A83008-AAAA\u{e9}"] {
        let mut b = nhs_body();
        b["authority"]["eps_prescription_id"] = id.into();
        let v: Value = app.submit(&b).await.json().await.unwrap();
        assert_eq!(
            error_pointers(&v),
            [(
                "/authority/eps_prescription_id".to_string(),
                "invalid_eps_prescription_id".to_string()
            )],
            "{id}"
        );
    }
    let mut b = valid_body();
    b["items"] = json!([]);
    let v: Value = app.submit(&b).await.json().await.unwrap();
    assert_eq!(
        error_pointers(&v),
        [("/items".to_string(), "out_of_range".to_string())]
    );
    let mut b = valid_body();
    let item = b["items"][0].clone();
    b["items"] = json!([item.clone(), item.clone(), item.clone(), item.clone(), item]);
    let v: Value = app.submit(&b).await.json().await.unwrap();
    assert_eq!(
        error_pointers(&v),
        [("/items".to_string(), "out_of_range".to_string())]
    );
    assert_eq!(app.count(&app.test_key).await, 0);
}

#[tokio::test]
async fn wrong_types_and_hostile_keys_are_reported_not_crashed() {
    let app = spawn_app().await;
    for body in [json!([]), json!("x"), json!(null), json!(42)] {
        let r = app.submit(&body).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let mut b = valid_body();
    b["patient"]["given_name"] = json!(12);
    b["items"][0]["dose"] = json!({"units": -1, "times_per_day": 1.5});
    b["a/b~c"] = json!(1);
    b["patient"]["family_name"] = "Ta\u{0000}ylor".into();
    let v: Value = app.submit(&b).await.json().await.unwrap();
    let e = error_pointers(&v);
    assert!(
        e.contains(&("/patient/given_name".into(), "wrong_type".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("/patient/family_name".into(), "invalid_characters".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("/items/0/dose/units".into(), "out_of_range".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("/items/0/dose/times_per_day".into(), "out_of_range".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("/a~1b~0c".into(), "unknown_field".into())),
        "{e:?}"
    );
}

#[tokio::test]
async fn dry_run_returns_findings_and_stores_nothing() {
    let app = spawn_app().await;
    let mut b = valid_body();
    b["issued_on"] = days_ago(40).into();
    let (s, v) = app
        .post_json("/v1/prescriptions/validate", &app.test_key, &b)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["would_be_status"], "rejected");
    assert_eq!(v["findings"][0]["code"], "cd_expired");
    assert_eq!(v["findings"][0]["rule"], "MDR 2001 reg 16(1)(e)");
    let (s, v) = app
        .post_json("/v1/prescriptions/validate", &app.test_key, &valid_body())
        .await;
    assert_eq!(
        (s, v["would_be_status"].as_str()),
        (StatusCode::OK, Some("awaiting_original"))
    );
    let (s, v) = app
        .post_json(
            "/v1/prescriptions/validate",
            &app.test_key,
            &json!({"nope": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["errors"].as_array().unwrap().len() > 5);
    assert_eq!(app.count(&app.test_key).await, 0);
}

#[tokio::test]
async fn cancel_with_reason_until_dispatch() {
    let app = spawn_app().await;
    let v = app.submit_ok(&valid_body()).await;
    let id = v["id"].as_str().unwrap();
    let path = format!("/v1/prescriptions/{id}/cancel");
    let (s, p) = app.post_json(&path, &app.test_key, &json!({})).await;
    assert_eq!(
        (s, p["errors"][0]["pointer"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("/reason"))
    );
    let (s, p) = app
        .post_json(&path, &app.test_key, &json!({"reason": "x", "extra": 1}))
        .await;
    assert_eq!(
        (s, p["errors"][0]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_field"))
    );
    let (s, c) = app
        .post_json(
            &path,
            &app.test_key,
            &json!({"reason": "Patient changed clinic"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c["status"], "cancelled");
    // Once cancelled, the record no longer offers a cancel.
    assert!(c["links"].get("cancel").is_none(), "{}", c["links"]);
    assert!(c["links"]["self"].is_string());
    let t = c["timeline"].as_array().unwrap();
    assert_eq!(t.last().unwrap()["event"], "prescription.cancelled");
    assert_eq!(
        t.last().unwrap()["detail"]["reason"],
        "Patient changed clinic"
    );
    // Twice: the same answer, no new event.
    let (s, c2) = app
        .post_json(&path, &app.test_key, &json!({"reason": "again"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(c2["timeline"].as_array().unwrap().len(), t.len());
    // ... and the answer says it was already cancelled: the first cancel is not marked, the
    // second is.
    let r = app
        .client
        .post(app.url(&path))
        .bearer_auth(&app.test_key)
        .json(&json!({ "reason": "a third time" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let fresh = app.submit_ok(&valid_body()).await;
    let r = app
        .client
        .post(app.url(&format!(
            "/v1/prescriptions/{}/cancel",
            fresh["id"].as_str().unwrap()
        )))
        .bearer_auth(&app.test_key)
        .json(&json!({ "reason": "first" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().get("idempotent-replayed").is_none());
    // A rejected prescription cannot be cancelled.
    let mut b = valid_body();
    b["issued_on"] = days_ago(60).into();
    let rej = app.submit_ok(&b).await;
    assert_eq!(rej["status"], "rejected");
    assert!(rej["links"].get("cancel").is_none(), "{}", rej["links"]);
    let (s, p) = app
        .post_json(
            &format!("/v1/prescriptions/{}/cancel", rej["id"].as_str().unwrap()),
            &app.test_key,
            &json!({"reason": "r"}),
        )
        .await;
    assert_eq!(
        (s, p["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_cancellable"))
    );
    let (s, _) = app
        .post_json(
            "/v1/prescriptions/rx_nope/cancel",
            &app.test_key,
            &json!({"reason": "r"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
