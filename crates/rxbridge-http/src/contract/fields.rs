//! Reading the JSON of a submission field by field: each reader reports every problem it finds
//! (with its JSON pointer) and gives back a value only when the field is valid.

use super::tree::{Map, Value};
use crate::problem::FieldError;
use jiff::civil::Date;

pub(super) struct Errs(pub(super) Vec<FieldError>);

impl Errs {
    pub(super) fn push(&mut self, pointer: &str, code: &str, detail: impl Into<String>) {
        self.0.push(FieldError {
            pointer: pointer.to_string(),
            code: code.to_string(),
            detail: detail.into(),
        });
    }
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
pub(super) fn ptr(base: &str, key: &str) -> String {
    if key.contains(['~', '/']) {
        format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
    } else {
        format!("{base}/{key}")
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An object whose keys are all in `allowed` (each unknown key is reported).
pub(super) fn object<'a, 'j>(
    v: &'a Value<'j>,
    at: &str,
    allowed: &[&str],
    e: &mut Errs,
) -> Option<&'a Map<'j>> {
    match v {
        Value::Object(m) => {
            if m.keys_within(allowed) {
                return Some(m);
            }
            for k in m.keys() {
                if !allowed.contains(&k) {
                    e.push(&ptr(at, k), "unknown_field", expected_one_of(allowed));
                }
            }
            Some(m)
        }
        other => {
            e.push(
                at,
                "wrong_type",
                format!("must be an object, not {}", type_name(other)),
            );
            None
        }
    }
}

/// "unknown field; expected one of: a, b, c", written into one string.
fn expected_one_of(allowed: &[&str]) -> String {
    const HEAD: &str = "unknown field; expected one of: ";
    let len = HEAD.len() + allowed.iter().map(|a| a.len() + 2).sum::<usize>();
    let mut s = String::with_capacity(len);
    s.push_str(HEAD);
    for (i, a) in allowed.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(a);
    }
    s
}

/// A field of `m`: `None` (and a `required` error when `required`) if absent or null.
pub(super) fn field<'a, 'j>(
    m: &'a Map<'j>,
    at: &str,
    key: &str,
    required: bool,
    e: &mut Errs,
) -> Option<&'a Value<'j>> {
    match m.get(key) {
        None | Some(Value::Null) => {
            if required {
                e.push(&ptr(at, key), "required", "is required");
            }
            None
        }
        Some(v) => Some(v),
    }
}

/// Printable text of 1..=max characters, without control characters: trimmed, borrowed from
/// the tree (a caller copies it only into the value it builds).
pub(super) fn text<'a>(
    m: &'a Map,
    at: &str,
    key: &str,
    required: bool,
    max: usize,
    e: &mut Errs,
) -> Option<&'a str> {
    match field(m, at, key, required, e)? {
        Value::String(s) => match clean_text(s, max) {
            Ok(t) => Some(t),
            Err(TextFault::Empty) => {
                e.push(&ptr(at, key), "empty", "must not be empty");
                None
            }
            Err(TextFault::TooLong) => {
                e.push(
                    &ptr(at, key),
                    "too_long",
                    format!("must be at most {max} characters"),
                );
                None
            }
            Err(TextFault::Control) => {
                e.push(
                    &ptr(at, key),
                    "invalid_characters",
                    "must not contain control characters",
                );
                None
            }
        },
        other => {
            e.push(
                &ptr(at, key),
                "wrong_type",
                format!("must be a string, not {}", type_name(other)),
            );
            None
        }
    }
}

/// Why a string is not printable text.
pub(super) enum TextFault {
    Empty,
    TooLong,
    Control,
}

/// The rule of [`text`], shared with the fast path: trimmed, 1..=max characters, no control
/// characters.
pub(super) fn clean_text(s: &str, max: usize) -> Result<&str, TextFault> {
    // Printable ASCII (the common case) in one pass over the bytes: its only whitespace is the
    // space and it has no control character, so the rule below reduces to this.
    if s.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        let t = s.trim_ascii();
        return match t.len() {
            0 => Err(TextFault::Empty),
            n if n > max => Err(TextFault::TooLong),
            _ => Ok(t),
        };
    }
    let t = s.trim();
    if t.is_empty() {
        Err(TextFault::Empty)
    } else if t.len() > max && t.chars().count() > max {
        Err(TextFault::TooLong)
    } else if t.chars().any(char::is_control) {
        Err(TextFault::Control)
    } else {
        Ok(t)
    }
}

/// The rule of [`date`] on text that passed [`clean_text`]: a calendar date written YYYY-MM-DD.
pub(super) fn calendar_date(s: &str) -> Option<Date> {
    let ok = s.len() == 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-';
    s.parse::<Date>().ok().filter(|_| ok)
}

/// A whole number in `min..=max`; `28.0` counts as 28 (JSON Schema's integer does).
pub(super) fn integer(
    m: &Map,
    at: &str,
    key: &str,
    required: bool,
    min: u64,
    max: u64,
    e: &mut Errs,
) -> Option<u64> {
    let v = field(m, at, key, required, e)?;
    let n = match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= 1e15)
                .map(|f| f as u64)
        }),
        other => {
            e.push(
                &ptr(at, key),
                "wrong_type",
                format!("must be a whole number, not {}", type_name(other)),
            );
            return None;
        }
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Some(n),
        _ => {
            e.push(
                &ptr(at, key),
                "out_of_range",
                format!("must be a whole number from {min} to {max}"),
            );
            None
        }
    }
}

pub(super) fn boolean(m: &Map, at: &str, key: &str, required: bool, e: &mut Errs) -> Option<bool> {
    match field(m, at, key, required, e)? {
        Value::Bool(b) => Some(*b),
        other => {
            e.push(
                &ptr(at, key),
                "wrong_type",
                format!("must be true or false, not {}", type_name(other)),
            );
            None
        }
    }
}

pub(super) fn date(m: &Map, at: &str, key: &str, e: &mut Errs) -> Option<Date> {
    let s = text(m, at, key, true, 10, e)?;
    match calendar_date(s) {
        Some(d) => Some(d),
        None => {
            e.push(
                &ptr(at, key),
                "invalid_date",
                "must be a calendar date written YYYY-MM-DD",
            );
            None
        }
    }
}

pub(super) fn one_of<'a>(
    m: &Map,
    at: &str,
    key: &str,
    options: &[&'a str],
    e: &mut Errs,
) -> Option<&'a str> {
    let s = text(m, at, key, true, 64, e)?;
    match options.iter().find(|o| **o == s) {
        Some(o) => Some(o),
        None => {
            e.push(
                &ptr(at, key),
                "invalid_value",
                format!("must be one of: {}", options.join(", ")),
            );
            None
        }
    }
}

pub(super) fn optional_parsed<T, E: std::fmt::Display>(
    m: &Map,
    at: &str,
    key: &str,
    max: usize,
    code: &str,
    parse: impl Fn(&str) -> Result<T, E>,
    e: &mut Errs,
) -> Option<Option<T>> {
    if m.get(key).is_none_or(Value::is_null) {
        return Some(None);
    }
    let s = text(m, at, key, false, max, e)?;
    match parse(s) {
        Ok(v) => Some(Some(v)),
        Err(err) => {
            e.push(&ptr(at, key), code, err.to_string());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_only_what_rfc_6901_escapes() {
        assert_eq!(ptr("", "patient"), "/patient");
        assert_eq!(ptr("/items/0", "colour"), "/items/0/colour");
        assert_eq!(ptr("/x", "a/b~c"), "/x/a~1b~0c");
        assert_eq!(ptr("/x", "~1"), "/x/~01");
    }

    #[test]
    fn the_unknown_field_detail_lists_what_is_allowed() {
        let allowed = ["kind", "form", "serial_number"];
        assert_eq!(
            expected_one_of(&allowed),
            format!("unknown field; expected one of: {}", allowed.join(", "))
        );
        assert_eq!(expected_one_of(&[]), "unknown field; expected one of: ");
    }
}
