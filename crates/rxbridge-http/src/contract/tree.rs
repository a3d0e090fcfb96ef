//! The JSON tree the collecting parser reads: strings borrowed from the body (or from a
//! `serde_json::Value`) instead of copied, objects as vectors of members. It answers as
//! `serde_json::Value` does — keys listed sorted, the last of a repeated key wins, numbers as
//! `serde_json::Number` — so the errors it leads to are the same, for less allocation.

use serde::Deserialize;
use serde::de::{MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// A JSON value (the variant names follow `serde_json::Value`).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Value<'a>>),
    Object(Map<'a>),
}

/// A JSON object, its members in the order they were read. As in `serde_json::Value`, the last
/// of a repeated key is the one that counts, and keys are listed sorted.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Map<'a>(Vec<(Cow<'a, str>, Value<'a>)>);

impl<'a> Map<'a> {
    pub(super) fn get(&self, key: &str) -> Option<&Value<'a>> {
        // Objects here have a dozen keys at most: a scan comparing lengths first beats a search.
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k.len() == key.len() && k.as_ref() == key)
            .map(|(_, v)| v)
    }
    /// Whether every key is one of `allowed`.
    pub(super) fn keys_within(&self, allowed: &[&str]) -> bool {
        self.0.iter().all(|(k, _)| allowed.contains(&k.as_ref()))
    }
    /// The distinct keys, sorted.
    pub(super) fn keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self.0.iter().map(|(k, _)| k.as_ref()).collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

impl Value<'_> {
    pub(super) fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl<'a> From<&'a serde_json::Value> for Value<'a> {
    fn from(v: &'a serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.clone()),
            serde_json::Value::String(s) => Value::String(Cow::Borrowed(s)),
            serde_json::Value::Array(a) => Value::Array(a.iter().map(Value::from).collect()),
            serde_json::Value::Object(m) => Value::Object(Map(m
                .iter()
                .map(|(k, v)| (Cow::Borrowed(k.as_str()), Value::from(v)))
                .collect())),
        }
    }
}

/// A key or string, borrowed when it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Value<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Value<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_unit<E>(self) -> Result<Value<'de>, E> {
                Ok(Value::Null)
            }
            fn visit_none<E>(self) -> Result<Value<'de>, E> {
                Ok(Value::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Value<'de>, E> {
                Ok(Value::Bool(b))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Value<'de>, E> {
                Ok(Value::Number(n.into()))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Value<'de>, E> {
                Ok(Value::Number(n.into()))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Value<'de>, E> {
                Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number))
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Value<'de>, E> {
                Ok(Value::String(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Value<'de>, E> {
                Ok(Value::String(Cow::Owned(s.to_string())))
            }
            fn visit_string<E>(self, s: String) -> Result<Value<'de>, E> {
                Ok(Value::String(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value<'de>, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(v) = seq.next_element()? {
                    out.push(v);
                }
                Ok(Value::Array(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value<'de>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((Text(k), v)) = map.next_entry::<Text, Value>()? {
                    pairs.push((k, v));
                }
                Ok(Value::Object(Map(pairs)))
            }
        }
        d.deserialize_any(V)
    }
}

/// `rxbridge_app::events::canonical_json` of the body, read from its bytes into this tree
/// instead of a `serde_json::Value`: the same bytes (keys sorted at every level, the last of a
/// repeated key, strings and numbers written as `serde_json` writes them) and, for a body that
/// is not JSON, the same error.
pub(super) fn canonical_json(body: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
    let v: Value = serde_json::from_slice(body)?;
    let mut out = Vec::with_capacity(body.len());
    v.write_canonical(&mut out)?;
    Ok(out)
}

impl Value<'_> {
    fn write_canonical(&self, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
        match self {
            Value::Object(m) => {
                out.push(b'{');
                for (i, k) in m.keys().into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut *out, k)?;
                    out.push(b':');
                    if let Some(v) = m.get(k) {
                        v.write_canonical(out)?;
                    }
                }
                out.push(b'}');
            }
            Value::Array(a) => {
                out.push(b'[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    x.write_canonical(out)?;
                }
                out.push(b']');
            }
            Value::String(s) => serde_json::to_writer(&mut *out, s.as_ref())?,
            Value::Number(n) => serde_json::to_writer(&mut *out, n)?,
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Null => out.extend_from_slice(b"null"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_serde_json_does() {
        let text = r#"{"b":1,"a":[true,null,"x\u0041"],"b":2.5,"c":{"z":-3,"y":{}}}"#;
        let from_bytes: Value = serde_json::from_str(text).unwrap();
        let tree: serde_json::Value = serde_json::from_str(text).unwrap();
        let from_tree = Value::from(&tree);
        let (Value::Object(a), Value::Object(b)) = (&from_bytes, &from_tree) else {
            panic!("objects")
        };
        assert_eq!(a.keys(), ["a", "b", "c"]);
        assert_eq!(a.keys(), b.keys());
        for k in ["a", "b", "d"] {
            assert_eq!(a.get(k), b.get(k), "{k}");
        }
        let (Some(Value::Object(c1)), Some(Value::Object(c2))) = (a.get("c"), b.get("c")) else {
            panic!("c is an object")
        };
        assert_eq!(c1.keys(), ["y", "z"]);
        assert_eq!(c1.keys(), c2.keys());
        assert_eq!(
            a.get("b"),
            Some(&Value::Number(serde_json::Number::from_f64(2.5).unwrap()))
        );
        assert!(a.keys_within(&["a", "b", "c"]) && !a.keys_within(&["a", "b"]));
    }
}
