use crate::api::helpers::*;
use reqwest::StatusCode;

/// The ids on a page of the list, in order.
fn ids_of(page: &serde_json::Value) -> Vec<&str> {
    let data = page["data"].as_array().unwrap();
    data.iter().map(|v| v["id"].as_str().unwrap()).collect()
}

#[tokio::test]
async fn list_newest_first_with_cursor_and_filters() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut b = valid_body();
        b["clinic_reference"] = format!("REF-{}", i % 2).into();
        if i == 4 {
            b["issued_on"] = days_ago(45).into(); // rejected
        }
        ids.push(app.submit_ok(&b).await["id"].as_str().unwrap().to_string());
    }
    let (s, p1) = app
        .get_json("/v1/prescriptions?limit=2", &app.test_key)
        .await;
    assert_eq!(s, StatusCode::OK);
    let got = ids_of(&p1);
    assert_eq!(got, [ids[4].as_str(), ids[3].as_str()]);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = app
        .get_json(
            &format!("/v1/prescriptions?limit=2&cursor={cursor}"),
            &app.test_key,
        )
        .await;
    let got = ids_of(&p2);
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    let (_, p3) = app
        .get_json(
            &format!(
                "/v1/prescriptions?limit=2&cursor={}",
                p2["next_cursor"].as_str().unwrap()
            ),
            &app.test_key,
        )
        .await;
    assert_eq!(p3["data"].as_array().unwrap().len(), 1);
    assert!(p3["next_cursor"].is_null());
    let (_, f) = app
        .get_json("/v1/prescriptions?status=rejected", &app.test_key)
        .await;
    assert_eq!(f["data"].as_array().unwrap().len(), 1);
    let (_, f) = app
        .get_json("/v1/prescriptions?clinic_reference=REF-1", &app.test_key)
        .await;
    assert_eq!(f["data"].as_array().unwrap().len(), 2);
    assert!(
        f["data"][0].get("timeline").is_none(),
        "lists carry no timeline"
    );
}

#[tokio::test]
async fn bad_query_parameters_are_400() {
    let app = spawn_app().await;
    for q in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "status=lost",
        "cursor=garbage",
        "colour=red",
        "limit=5&limit=6",
    ] {
        let (s, v) = app
            .get_json(&format!("/v1/prescriptions?{q}"), &app.test_key)
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}");
        assert_eq!(v["code"], "invalid_query", "{q}");
    }
}
