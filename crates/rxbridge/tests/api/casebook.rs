//! The public casebook (`tests/casebook/cases.json`): every case through the dry run of the
//! public API, with the keys it signs with registered for the clinic as an operator would.

use crate::api::helpers::*;
use rxbridge_app::signatures::{SigningAlg, sign_detached};
use serde_json::{Value, json};

fn base(name: &str) -> Value {
    match name {
        "cd" => valid_body(),
        "nhs" => nhs_body(),
        "pom" => private_pom_body(),
        other => panic!("unknown base {other}"),
    }
}

/// `{"$date": {"days": n, "months": m}}` is today moved by that much.
fn resolve(v: &Value) -> Value {
    match v.get("$date") {
        Some(d) => {
            let months = d["months"].as_i64().unwrap_or(0);
            let days = d["days"].as_i64().unwrap_or(0);
            today()
                .saturating_add(jiff::Span::new().months(months))
                .saturating_add(jiff::Span::new().days(days))
                .to_string()
                .into()
        }
        None => v.clone(),
    }
}

fn apply(b: &mut Value, set: Option<&Value>, remove: Option<&Value>) {
    for (ptr, v) in set.and_then(Value::as_object).into_iter().flatten() {
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut *b
        } else {
            b.pointer_mut(parent)
                .unwrap_or_else(|| panic!("no {parent}"))
        };
        target[key] = resolve(v);
    }
    for ptr in remove.and_then(Value::as_array).into_iter().flatten() {
        let (parent, key) = ptr.as_str().unwrap().rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            &mut *b
        } else {
            b.pointer_mut(parent).unwrap()
        };
        target.as_object_mut().unwrap().remove(key);
    }
}

fn sign(b: &mut Value, how: &Value, base: &str) {
    let (kid, key, alg) = match how {
        Value::Bool(false) => return,
        Value::Object(o) => (
            o["kid"].as_str().unwrap().to_string(),
            o["key"].as_str().unwrap().to_string(),
            o.get("alg")
                .and_then(Value::as_str)
                .unwrap_or("ES256")
                .to_string(),
        ),
        Value::Null if base != "pom" => return,
        _ => (
            "case-es256".into(),
            "es256-private.pem".into(),
            "ES256".into(),
        ),
    };
    let jws = sign_detached(
        b,
        &fixture_key(&key),
        SigningAlg::parse(&alg).unwrap(),
        &kid,
    )
    .unwrap();
    b["signature"] = json!({ "jws": jws });
}

#[tokio::test]
async fn the_public_casebook() {
    let app = spawn_app().await;
    let keys = app.running.as_ref().unwrap().state.intake.prescriber_keys();
    for (kid, public) in [
        ("case-es256", "es256-public.pem"),
        ("case-rs256", "rs256-public.pem"),
        ("case-revoked", "other-es256-public.pem"),
    ] {
        keys.add(
            "test",
            &app.clinic_id,
            "gmc:7012345",
            &fixture_key(public),
            Some(kid),
            None,
        )
        .await
        .unwrap();
    }
    keys.revoke(
        "test",
        &app.clinic_id,
        "case-revoked",
        Some("2020-01-01T00:00:00Z".parse().unwrap()),
    )
    .await
    .unwrap();

    let book: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/casebook/cases.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let cases = book["cases"].as_array().unwrap();
    assert!(cases.len() >= 80, "{}", cases.len());
    let mut failures = Vec::new();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        assert!(
            !c["rule"].as_str().unwrap_or("").is_empty(),
            "{name}: no rule cited"
        );
        let base_name = c["base"].as_str().unwrap();
        let mut b = base(base_name);
        apply(&mut b, c.get("set"), c.get("remove"));
        sign(&mut b, c.get("sign").unwrap_or(&Value::Null), base_name);
        apply(&mut b, c.get("after_sign_set"), None);
        let (status, v) = app
            .post_json("/v1/prescriptions/validate", &app.test_key, &b)
            .await;
        let want = &c["expect"];
        let mut fail = |why: String| failures.push(format!("{name}: {why}\n  answer: {v}"));
        if want["status"] == 422 {
            if status.as_u16() != 422 {
                fail(format!("expected 422, got {status}"));
                continue;
            }
            let pointers: Vec<String> = error_pointers(&v).into_iter().map(|(p, _)| p).collect();
            for p in want["errors"].as_array().into_iter().flatten() {
                if !pointers.iter().any(|x| x == p.as_str().unwrap()) {
                    fail(format!("no error at {p}"));
                }
            }
            continue;
        }
        if status.as_u16() != 200 {
            fail(format!("expected 200, got {status}"));
            continue;
        }
        let found: Vec<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["code"].as_str().unwrap().to_string())
            .collect();
        if v["would_be_status"] != want["status"] {
            fail(format!(
                "status {} instead of {}",
                v["would_be_status"], want["status"]
            ));
        }
        for code in want["include"].as_array().into_iter().flatten() {
            if !found.iter().any(|f| f == code.as_str().unwrap()) {
                fail(format!("{code} missing"));
            }
        }
        for code in want["exclude"].as_array().into_iter().flatten() {
            if found.iter().any(|f| f == code.as_str().unwrap()) {
                fail(format!("{code} present"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
