//! The typed fast path and the collecting parser agree: for generated submissions (every type,
//! authority, optional field and number form the contract knows) and for those with fields
//! replaced, removed, added or re-spelt, the fast path accepts exactly what the collecting
//! parser accepts — except a body with a repeated key, which it leaves to the collecting parser
//! — and gives the same prescription. Reading the bytes (`parse_prescription_bytes`, the
//! collecting parser on its borrowed tree) answers exactly as reading a `serde_json::Value`,
//! and the canonical JSON read from the bytes (the idempotency request hash) is byte for byte
//! `canonical_json` of the `serde_json::Value`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;
use rxbridge_app::events::canonical_json;
use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::quantity::to_words;
use rxbridge_http::contract::{
    self, BodyError, parse_prescription, parse_prescription_bytes, parse_prescription_fast,
};
use serde_json::{Value, json};

fn today() -> jiff::civil::Date {
    jiff::civil::date(2026, 11, 26)
}

fn jws() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","kid":"prescriber-key-1"}"#);
    format!("{header}..c2lnbmF0dXJl")
}

/// Values a field may be replaced with: right and wrong types, edge numbers, strings that trim,
/// normalise or break a rule.
fn arb_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(json!(0)),
            Just(json!(1)),
            Just(json!(12)),
            Just(json!(13)),
            Just(json!(28)),
            Just(json!(28.0)),
            Just(json!(28.5)),
            Just(json!(-1)),
            Just(json!(0.25)),
            Just(json!(0.3)),
            Just(json!(20.25)),
            Just(json!(366)),
            Just(json!(367)),
            Just(json!(9999)),
            Just(json!(10000)),
            Just(json!(1e300)),
        ],
        prop_oneof![
            Just("private"),
            Just("nhs"),
            Just(" nhs "),
            Just("eps"),
            Just("paper_fp10"),
            Just("electronic_private"),
            Just("24F5DA-A83008-7EFE6Z"),
            Just("0001"),
            Just("9010"),
            Just("twenty-eight"),
            Just("twenty-eigth tablets"),
            Just("one thousand"),
            Just("ten thousand"),
            Just("9434765919"),
            Just("943 476 5919"),
            Just("9434765918"),
            Just(" m11ae "),
            Just("JE2 3AB"),
            Just("NOT A POSTCODE"),
            Just("FR"),
            Just("gb"),
            Just("SAM@EXAMPLE.COM"),
            Just("+44 7700 900123"),
            Just("doctor"),
            Just("dentist"),
            Just("71A2998E"),
            Just("2012345"),
            Just("pcd12"),
            Just("a/b"),
            Just(""),
            Just("   "),
            Just("tab\there"),
            Just("2026-02-30"),
            Just("1899-01-01"),
            Just("2027-01-01"),
            Just("Zoë"),
        ]
        .prop_map(|s| Value::String(s.into())),
        "\\PC{0,20}".prop_map(Value::String),
        Just(Value::String(jws())),
        Just(Value::String("x".repeat(101))),
        Just(json!(["1 High Street"])),
        Just(json!([])),
        Just(json!({ "exemption": "0001", "evidence_seen": true })),
        Just(json!({ "jws": jws() })),
        Just(json!({})),
    ]
}

/// A submission built from independent choices, most of them valid.
fn arb_submission() -> impl Strategy<Value = Value> {
    let product = prop::sample::select(
        Formulary::builtin()
            .products
            .iter()
            .map(|p| p.code.clone())
            .collect::<Vec<_>>(),
    );
    let item = (
        product,
        1u32..400,
        0u8..4,
        prop::sample::select(vec![0.25, 0.5, 1.0, 2.0, 1.5]),
        1u64..4,
        prop::option::of(1u64..60),
        prop::option::of(0u64..3),
    )
        .prop_map(|(code, q, form, units, times, days, repeats)| {
            let mut it = json!({
                "product_code": code,
                "dose": { "units": units, "times_per_day": times },
                "instructions": "Take as directed",
            });
            match form {
                0 => it["quantity"] = json!(q),
                1 => it["quantity_in_words"] = json!(to_words(q)),
                2 => {
                    it["quantity"] = json!(q);
                    it["quantity_in_words"] = json!(format!("{} tablets", to_words(q)));
                }
                _ => it["quantity"] = json!(f64::from(q)),
            }
            if let Some(d) = days {
                it["days_supply"] = json!(d);
            }
            if let Some(r) = repeats {
                it["repeats"] = json!(r);
            }
            it
        });
    (
        0u8..4,
        prop::collection::vec(item, 1..3),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(authority, items, phone, kind, signature)| {
            let mut v = rxbridge_http::schema::example_submission();
            v["items"] = Value::Array(items);
            match authority {
                0 => {}
                1 => {
                    v["authority"] = json!({ "kind": "electronic_private" });
                }
                2 => {
                    v["type"] = json!("nhs");
                    v["authority"] =
                        json!({ "kind": "eps", "eps_prescription_id": "24F5DA-A83008-7EFE6Z" });
                    v["nhs"] = json!({ "exemption": "0001", "evidence_seen": false });
                }
                _ => {
                    v["type"] = json!("nhs");
                    v["authority"] = json!({ "kind": "paper_fp10", "serial_number": "fp1234" });
                    v["nhs"] = json!({ "exemption": "0002", "evidence_seen": true });
                }
            }
            if !phone {
                v["patient"].as_object_mut().unwrap().remove("phone");
            }
            if kind {
                v["prescriber"]["kind"] = json!("doctor");
            }
            if signature {
                v["signature"] = json!({ "jws": jws() });
            }
            v
        })
}

/// Every path in a value (objects, arrays and leaves), as JSON pointer segments.
fn paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            at.push(k.clone());
            paths(x, at, out);
            at.pop();
        }),
        Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
            at.push(i.to_string());
            paths(x, at, out);
            at.pop();
        }),
        _ => {}
    }
}

fn at_mut<'v>(v: &'v mut Value, path: &[String]) -> &'v mut Value {
    path.iter().fold(v, |v, k| match v {
        Value::Array(a) => &mut a[k.parse::<usize>().unwrap()],
        other => &mut other[k.as_str()],
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    ReplaceLeaf(usize, Value),
    Remove(usize),
    AddUnknown(usize),
}

fn mutate(v: &mut Value, m: &Mutation) {
    let mut all = Vec::new();
    paths(v, &mut Vec::new(), &mut all);
    let pick = |i: &usize| all[i % all.len()].clone();
    match m {
        Mutation::Replace(i, x) => *at_mut(v, &pick(i)) = x.clone(),
        Mutation::ReplaceLeaf(i, x) => {
            let leaves: Vec<_> = all
                .iter()
                .filter(|p| {
                    !matches!(
                        at_mut(&mut v.clone(), p),
                        Value::Object(_) | Value::Array(_)
                    )
                })
                .cloned()
                .collect();
            if !leaves.is_empty() {
                *at_mut(v, &leaves[i % leaves.len()]) = x.clone();
            }
        }
        Mutation::Remove(i) => {
            let p = pick(i);
            if let Some((last, parent)) = p.split_last() {
                match at_mut(v, parent) {
                    Value::Object(o) => drop(o.remove(last)),
                    Value::Array(a) => drop(a.remove(last.parse::<usize>().unwrap())),
                    _ => {}
                }
            }
        }
        Mutation::AddUnknown(i) => {
            if let Value::Object(o) = at_mut(v, &pick(i)) {
                o.insert("colour".into(), json!("blue"));
            }
        }
    }
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => (any::<usize>(), arb_leaf()).prop_map(|(i, x)| Mutation::Replace(i, x)),
        6 => (any::<usize>(), arb_leaf()).prop_map(|(i, x)| Mutation::ReplaceLeaf(i, x)),
        2 => any::<usize>().prop_map(Mutation::Remove),
        1 => any::<usize>().prop_map(Mutation::AddUnknown),
    ]
}

/// The same body as text in another spelling: escapes in strings, spaces, a repeated key.
fn respell(text: &str, how: u8) -> (String, bool) {
    match how {
        0 => (text.to_string(), false),
        1 => (
            text.replace("\"S", "\"\\u0053")
                .replace("e\"", "\\u0065\"")
                .replace('/', "\\/"),
            false,
        ),
        2 => (
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(text).unwrap()).unwrap(),
            false,
        ),
        _ if text.starts_with("{\"") => (text.replacen('{', r#"{"type":"private","#, 1), true),
        _ => (text.to_string(), false),
    }
}

fn check(body: &[u8], repeated_key: bool) -> Result<(), TestCaseError> {
    let formulary = Formulary::builtin();
    let fast = parse_prescription_fast(body, today(), formulary);
    let tree: Value = serde_json::from_slice(body).unwrap();
    prop_assert_eq!(
        String::from_utf8(contract::canonical_json(body).unwrap()).unwrap(),
        canonical_json(&tree)
    );
    let slow = parse_prescription(&tree, today(), formulary);
    match (&fast, &slow) {
        (Some(f), Ok(s)) => prop_assert_eq!(f, s),
        (Some(_), Err(errors)) => {
            prop_assert!(
                false,
                "the fast path accepted what the contract refuses: {errors:?}"
            )
        }
        (None, Ok(_)) => prop_assert!(
            repeated_key,
            "the fast path refused what the contract accepts"
        ),
        (None, Err(_)) => {}
    }
    match (parse_prescription_bytes(body, today(), formulary), slow) {
        (Ok(b), Ok(s)) => prop_assert_eq!(b, s),
        (Err(BodyError::Contract(b)), Err(s)) => prop_assert_eq!(b, s),
        (b, s) => prop_assert!(false, "bytes: {b:?}, tree: {s:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn generated_submissions_read_the_same_both_ways(v in arb_submission(), how in 0u8..4) {
        let (text, repeated) = respell(&serde_json::to_string(&v).unwrap(), how);
        check(text.as_bytes(), repeated)?;
    }

    #[test]
    fn mutated_submissions_read_the_same_both_ways(
        v in arb_submission(),
        ms in prop::collection::vec(arb_mutation(), 1..4),
        how in 0u8..4,
    ) {
        let mut v = v;
        for m in &ms {
            mutate(&mut v, m);
        }
        let (text, repeated) = respell(&serde_json::to_string(&v).unwrap(), how);
        check(text.as_bytes(), repeated)?;
    }
}

#[test]
fn the_documented_examples_read_the_same_both_ways() {
    for v in [
        rxbridge_http::schema::example_submission(),
        rxbridge_http::schema::example_invalid_submission(),
    ] {
        check(&serde_json::to_vec(&v).unwrap(), false).unwrap();
    }
    let valid = serde_json::to_vec(&rxbridge_http::schema::example_submission()).unwrap();
    assert!(parse_prescription_fast(&valid, today(), Formulary::builtin()).is_some());
}

/// serde reads a derived struct from an array as well (its fields by position); the contract
/// wants an object there. Each object of the valid example, and the whole body, replaced by the
/// array of its values in the contract's field order: the fast path leaves every one to the
/// collecting parser, which refuses it.
#[test]
fn an_array_where_an_object_belongs_is_never_read_by_position() {
    let formulary = Formulary::builtin();
    let valid: Value =
        serde_json::from_str(include_str!("../../../bench/payloads/valid.json")).unwrap();
    let today =
        jiff::civil::Date::strptime("%Y-%m-%d", valid["issued_on"].as_str().unwrap()).unwrap();
    assert!(parse_prescription_fast(valid.to_string().as_bytes(), today, formulary).is_some());
    let positional = [
        ("", vec![]),
        ("/prescriber/registration", vec!["body", "number"]),
        ("/items/0/dose", vec!["units", "times_per_day"]),
        ("/patient/address", vec!["lines", "town", "postcode"]),
        ("/prescriber/address", vec!["lines", "town", "postcode"]),
    ];
    for (pointer, order) in positional {
        let mut body = valid.clone();
        let object = body.pointer_mut(pointer).unwrap();
        let fields: Vec<Value> = if order.is_empty() {
            object.as_object().unwrap().values().cloned().collect()
        } else {
            order.iter().map(|k| object[*k].clone()).collect()
        };
        *object = Value::Array(fields);
        let bytes = body.to_string();
        assert!(
            parse_prescription_fast(bytes.as_bytes(), today, formulary).is_none(),
            "{pointer}: read by position"
        );
        assert!(
            parse_prescription(&body, today, formulary).is_err(),
            "{pointer}: the contract accepted an array"
        );
    }
}

/// The canonical JSON read from bytes on what the generators do not make: every number form,
/// escapes, non-ASCII keys, nesting, repeated keys at depth; and a body that is not JSON fails
/// at the same place, for the same reason, as `serde_json::Value` does (the 400 says where).
#[test]
fn canonical_json_from_bytes_is_that_of_the_value() {
    for text in [
        r#"{"b":1,"a":[true,null,"x\u0041\n\"\\\/é😀\ud83d\ude00"],"b":2.5,"c":{"z":-3,"y":{},"z":[]}}"#,
        r#"[1,-0,0.0,-0.0,1.0,1e2,1E-7,12345678901234567890,-9223372036854775808,1.7976931348623157e308,5e-324]"#,
        r#"{"é":1,"e":2,"E":3,"\u00e9x":4,"":5,"a\u0000":6}"#,
        r#"  {"nested" : [ [ [ {"k":"v","k":"w"} ] ] ] , "s":"\t\u001f\u007f"}  "#,
        r#""just a string""#,
        "17",
        "null",
    ] {
        let v: Value = serde_json::from_str(text).unwrap();
        assert_eq!(
            String::from_utf8(contract::canonical_json(text.as_bytes()).unwrap()).unwrap(),
            canonical_json(&v),
            "{text}"
        );
    }
    for bad in [
        &b"{"[..],
        b"{\"a\":}",
        b"{\"a\":1,}",
        b"[1 2]",
        b"{\"a\":1} x",
        b"\"\\ud800\"",
        b"\"\xff\"",
        b"1e999",
        b"",
        b"{\"a\":\"\n\"}",
    ] {
        let ours = contract::canonical_json(bad).unwrap_err();
        let theirs = serde_json::from_slice::<Value>(bad).unwrap_err();
        assert_eq!(
            (ours.classify(), ours.line(), ours.column()),
            (theirs.classify(), theirs.line(), theirs.column()),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let ours = contract::canonical_json(deep.as_bytes()).unwrap_err();
    let theirs = serde_json::from_str::<Value>(&deep).unwrap_err();
    assert_eq!(
        (ours.line(), ours.column()),
        (theirs.line(), theirs.column())
    );
}
