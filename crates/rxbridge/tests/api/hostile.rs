//! Hostile input: each case gets its exact expected answer and stores nothing it should not.

use crate::api::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const INJECTIONS: [&str; 4] = [
    "'; DROP TABLE prescriptions; --",
    "Robert'); DELETE FROM events WHERE ('1'='1",
    "<script>alert(1)</script>",
    "\" OR 1=1 --",
];

#[tokio::test]
async fn injection_strings_in_every_text_field_are_data_not_code() {
    let app = spawn_app().await;
    for (n, inj) in INJECTIONS.iter().enumerate() {
        let mut b = valid_body();
        b["clinic_reference"] = format!("{}{n}", &inj[..inj.len().min(40)]).into();
        for path in [
            ["patient", "given_name"],
            ["patient", "family_name"],
            ["prescriber", "given_name"],
            ["prescriber", "family_name"],
        ] {
            b[path[0]][path[1]] = (*inj).into();
        }
        b["patient"]["address"]["lines"] = json!([inj, inj]);
        b["patient"]["address"]["town"] = (*inj).into();
        b["prescriber"]["address"]["town"] = (*inj).into();
        b["items"][0]["instructions"] = format!("Take ONE each morning {inj}").into();
        let v = app.submit_ok(&b).await;
        assert_eq!(v["clinic_reference"], b["clinic_reference"]);
        // Filtering by the hostile reference finds exactly that one: it was a value.
        let q = format!(
            "/v1/prescriptions?clinic_reference={}",
            urlencode(b["clinic_reference"].as_str().unwrap())
        );
        let (s, l) = app.get_json(&q, &app.test_key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(l["data"].as_array().unwrap().len(), 1, "{inj}");
        let (s, p) = app
            .post_json("/v1/prescriptions/validate", &app.test_key, &b)
            .await;
        assert_eq!(
            (s, p["would_be_status"].as_str()),
            (StatusCode::OK, Some("awaiting_original"))
        );
    }
    assert_eq!(app.count(&app.test_key).await, INJECTIONS.len());
    // The tables are intact: the chain still verifies through the CLI.
    let (s, _) = app.get_json("/readyz", "").await;
    assert_eq!(s, StatusCode::OK);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test]
async fn huge_arrays_and_oversized_strings_are_refused_quickly() {
    let app = spawn_app().await;
    // Over the body limit: 413 before any parsing.
    let mut b = valid_body();
    let item = b["items"][0].clone();
    b["items"] = Value::Array(vec![item.clone(); 2_000]);
    let r = app.submit(&b).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    b["items"] = Value::Array(vec![item; 200]);
    let t = Instant::now();
    let r = app.submit(&b).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        error_pointers(&v),
        [("/items".to_string(), "out_of_range".to_string())]
    );
    let mut b = valid_body();
    b["patient"]["address"]["lines"] = Value::Array(vec![json!("x"); 20_000]);
    b["patient"]["given_name"] = "A".repeat(100_000).into();
    let r = app.submit(&b).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    let e = error_pointers(&v);
    assert!(
        e.contains(&("/patient/address/lines".into(), "out_of_range".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("/patient/given_name".into(), "too_long".into())),
        "{e:?}"
    );
    // 30 000 numbers: under the body limit, answered with one error, not 30 000.
    let mut b = valid_body();
    b["items"] = Value::Array((0..30_000).map(|i| json!(i)).collect());
    let r = app.submit(&b).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["errors"].as_array().unwrap().len(), 1);
    assert!(t.elapsed() < Duration::from_secs(30));
    assert_eq!(app.count(&app.test_key).await, 0);
}

#[tokio::test]
async fn nul_bytes_and_control_characters_are_refused() {
    let app = spawn_app().await;
    let mut b = valid_body();
    b["clinic_reference"] = "REF\u{0000}1".into();
    b["items"][0]["instructions"] = "Take\u{0007} one".into();
    b["patient"]["address"]["lines"] = json!(["10 High\u{0000} Street"]);
    let v: Value = app.submit(&b).await.json().await.unwrap();
    let e = error_pointers(&v);
    assert!(
        e.contains(&("/clinic_reference".into(), "invalid_characters".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("/items/0/instructions".into(), "invalid_characters".into())),
        "{e:?}"
    );
    assert!(
        e.contains(&("/patient/address/lines/0".into(), "invalid_line".into())),
        "{e:?}"
    );
    assert_eq!(app.count(&app.test_key).await, 0);
}

fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test]
async fn request_smuggling_shapes_are_rejected() {
    let app = spawn_app().await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let body = serde_json::to_string(&valid_body()).unwrap();
    // Both Content-Length and Transfer-Encoding: refused, connection closed.
    let req = format!(
        "POST /v1/prescriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nIdempotency-Key: smuggle-1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        app.test_key,
        body.len()
    );
    let key = app.test_key.clone();
    let out = tokio::task::spawn_blocking(move || raw(&addr, req.as_bytes()))
        .await
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert_eq!(
        out.matches("HTTP/1.1").count(),
        1,
        "the smuggled request was not served: {out}"
    );
    // Two Content-Length headers that disagree.
    let addr = app.base.trim_start_matches("http://").to_string();
    let req = format!(
        "POST /v1/prescriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nIdempotency-Key: smuggle-2\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let out = tokio::task::spawn_blocking(move || raw(&addr, req.as_bytes()))
        .await
        .unwrap();
    assert!(out.starts_with("HTTP/1.1 400"), "{out}");
    assert_eq!(app.count(&app.test_key).await, 0);
}

#[tokio::test]
async fn a_slow_client_is_cut_off_with_408_and_nothing_stored() {
    let base = rxbridge::Config {
        request_timeout_secs: 1,
        ..rxbridge::Config::default()
    };
    let app = spawn_with(tempfile::tempdir().unwrap(), base).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let body = serde_json::to_string(&valid_body()).unwrap();
    let head = format!(
        "POST /v1/prescriptions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nIdempotency-Key: slow-1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        app.test_key,
        body.len()
    );
    let start = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(&body.as_bytes()[..20]).unwrap(); // then stall
        let mut out = vec![0u8; 4096];
        let n = s.read(&mut out).unwrap_or(0);
        String::from_utf8_lossy(&out[..n]).to_string()
    })
    .await
    .unwrap();
    assert!(out.starts_with("HTTP/1.1 408"), "{out}");
    assert!(out.contains("application/problem+json"));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(app.count(&app.test_key).await, 0);
}
