//! Property-based fuzz of the JSON intake: any JSON value, and the valid example with any one
//! field replaced by any JSON value, is answered — accepted, or refused with errors whose
//! pointers are well-formed — and never panics.

use proptest::prelude::*;
use rxbridge_domain::formulary::Formulary;
use rxbridge_http::contract::parse_prescription;
use serde_json::{Map, Value};

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,30}".prop_map(Value::String),
        prop_oneof![
            Just("twenty-eight"),
            Just("9434765919"),
            Just("M1 1AE"),
            Just("CONCERTA-XL-36"),
            Just("2026-11-20"),
            Just("gmc")
        ]
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-z_/~]{0,12}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Every leaf path of a JSON value, as JSON pointers.
fn paths(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| paths(x, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| paths(x, format!("{at}/{i}"), out)),
        _ => out.push(at),
    }
}

fn check(v: &Value) {
    let today = jiff::civil::date(2026, 11, 26);
    if let Err(errors) = parse_prescription(v, today, Formulary::builtin()) {
        assert!(!errors.is_empty());
        for e in errors {
            assert!(
                e.pointer.is_empty() || e.pointer.starts_with('/'),
                "{}",
                e.pointer
            );
            assert!(!e.code.is_empty() && !e.detail.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_json_is_answered(v in arb_json()) {
        check(&v);
    }

    #[test]
    fn the_example_with_one_field_replaced_is_answered(idx in any::<prop::sample::Index>(), replacement in arb_json()) {
        let mut v = rxbridge_http::schema::example_submission();
        let mut all = Vec::new();
        paths(&v, String::new(), &mut all);
        let target = idx.get(&all).clone();
        *v.pointer_mut(&target).unwrap() = replacement.clone();
        check(&v);
        // A change the contract cannot accept is reported at (or under/over) that field.
        let today = jiff::civil::date(2026, 11, 26);
        if let Err(errors) = parse_prescription(&v, today, Formulary::builtin()) {
            let near = |p: &str| p.starts_with(&target) || target.starts_with(p) || p.is_empty()
                // type/authority/nhs consistency errors point at the related field
                || ["/nhs", "/authority/kind", "/patient/nhs_number", "/authority/eps_prescription_id", "/authority/serial_number"].contains(&p);
            prop_assert!(errors.iter().any(|e| near(&e.pointer)), "{target}: {errors:?}");
        }
    }
}
