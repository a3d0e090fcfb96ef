//! The OpenAPI document's `webhooks` describe exactly what the outbox sends: real messages are
//! checked against their schema (types, required and unknown properties, enum values).

use rxbridge_app::contract::record;
use rxbridge_app::outbox::{Body, messages_for};
use rxbridge_app::ports::Mode;
use rxbridge_domain::lifecycle::{ALL_STATUSES, Status};
use serde_json::Value;

pub fn document() -> Value {
    serde_json::from_str(&rxbridge_http::openapi::document()).unwrap()
}

fn resolve<'a>(doc: &'a Value, s: &'a Value) -> &'a Value {
    match s["$ref"].as_str() {
        Some(r) => resolve(
            doc,
            doc.pointer(r.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling {r}")),
        ),
        None => s,
    }
}

fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let s = resolve(doc, schema);
    if let Some(one_of) = s["oneOf"].as_array() {
        // utoipa renders an optional field as oneOf [null, T].
        let ok = one_of.iter().any(|alt| {
            let mut e = Vec::new();
            check(doc, alt, v, at, &mut e);
            e.is_empty()
        });
        if !ok {
            errors.push(format!("{at}: {v} matches no alternative"));
        }
        return;
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(a) => a.iter().filter_map(|t| t.as_str()).collect(),
        _ => vec![],
    };
    let actual = match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed = types.is_empty()
        || types.contains(&actual)
        || (actual == "integer" && types.contains(&"number"));
    if !allowed {
        errors.push(format!("{at}: {actual}, schema says {types:?}"));
        return;
    }
    if let Some(e) = s["enum"].as_array()
        && !e.contains(v)
    {
        errors.push(format!("{at}: {v} is not one of {e:?}"));
    }
    match v {
        Value::Object(m) if s["properties"].is_object() => {
            for r in s["required"].as_array().into_iter().flatten() {
                if !m.contains_key(r.as_str().unwrap()) {
                    errors.push(format!("{at}/{r}: required by the schema, not sent"));
                }
            }
            for (k, x) in m {
                match s["properties"].get(k) {
                    Some(p) => check(doc, p, x, &format!("{at}/{k}"), errors),
                    None => errors.push(format!("{at}/{k}: sent, not in the schema")),
                }
            }
        }
        Value::Array(a) if s["items"].is_object() => {
            for (i, x) in a.iter().enumerate() {
                check(doc, &s["items"], x, &format!("{at}/{i}"), errors);
            }
        }
        _ => {}
    }
}

/// Panics unless `body` is what the document's webhook `event` says it carries.
pub fn assert_conforms(doc: &Value, body: &Value) {
    let event = body["type"].as_str().expect("a message has a type");
    let op = &doc["webhooks"][event]["post"];
    assert!(op.is_object(), "{event} is not in the document's webhooks");
    let headers: Vec<&str> = op["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "header" && p["required"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        headers,
        ["webhook-id", "webhook-timestamp", "webhook-signature"]
    );
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let mut errors = Vec::new();
    check(doc, schema, body, "", &mut errors);
    assert!(errors.is_empty(), "{event}: {errors:#?}\n{body:#}");
}

#[test]
fn status_and_cancellation_messages_match_their_webhook_schemas() {
    let doc = document();
    let at = jiff::Timestamp::from_second(1_764_238_500).unwrap();
    let mut rec = record("rx_1", "cl_1", Mode::Live, "ADHD-1");
    for to in ALL_STATUSES {
        for m in messages_for(&rec, to, at) {
            let Body::Clear(v) = &m.payload else {
                panic!("clear body expected")
            };
            assert_eq!(v["type"], m.event_type.as_str());
            assert_conforms(&doc, v);
        }
    }
    // The warehouse's cancellation, for both reasons.
    rec.status = Status::WithWarehouse;
    for to in [Status::Cancelled, Status::Expired] {
        let msgs = messages_for(&rec, to, at);
        assert_eq!(msgs.len(), 2);
        let Body::Clear(v) = &msgs[1].payload else {
            panic!("clear body expected")
        };
        assert_eq!(v["type"], "fulfilment.cancelled");
        assert_conforms(&doc, v);
    }
    // The checker is not a rubber stamp: an unknown status or a stray field fails it.
    let bad = serde_json::json!({ "type": "prescription.status_changed", "timestamp": "2026-11-27T10:15:00Z",
        "data": { "id": "rx_1", "clinic_reference": "A", "status": "bogus", "extra": 1 } });
    assert!(std::panic::catch_unwind(|| assert_conforms(&doc, &bad)).is_err());
}
