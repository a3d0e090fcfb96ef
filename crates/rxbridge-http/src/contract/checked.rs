//! The fast path's field types: each checks its field's own rule (the collecting parser's rule,
//! through the same helpers and domain parsers) while the body is read, so a body with a broken
//! field stops being read at that field instead of at its end. A broken field is a
//! deserialisation error with an empty message: the fast path only gives up on it, and the
//! collecting parser writes every error. Rules between fields (the authority against the type,
//! the postcode against the country, dates against today, the formulary) are checked after the
//! read, in `fast`.

use super::fields::{calendar_date, clean_text};
use jiff::civil::Date;
use rxbridge_domain::contact::{Email, UkPhone};
use rxbridge_domain::ids::{ClinicReference, NhsNumber, PrescriberKind, PrivatePrescriberCode};
use rxbridge_domain::prescription::{AuthorityKind, PrescriptionType};
use rxbridge_domain::quantity::{WordsReading, read_quantity_words};
use serde::Deserialize;
use serde::de::{Deserializer, Visitor};
use std::borrow::Cow;
use std::fmt;

/// The error a broken field stops the read with. Nobody reads it (the collecting parser writes
/// the errors), so it carries no message.
fn broken<E: serde::de::Error>() -> E {
    E::custom("")
}

/// A JSON string, borrowed from the body unless it has escapes.
#[derive(Deserialize)]
pub(super) struct S<'a>(#[serde(borrow)] pub(super) Cow<'a, str>);

/// Text that passes the contract's text rule ([`clean_text`]: trimmed, 1..=MAX characters, no
/// control characters), trimmed, and borrowed from the body unless it has escapes.
pub(super) struct Txt<'a, const MAX: usize>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a, const MAX: usize> Deserialize<'de> for Txt<'a, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let S(s) = S::deserialize(d)?;
        let text = match s {
            Cow::Borrowed(b) => clean_text(b, MAX).ok().map(Cow::Borrowed),
            Cow::Owned(o) => clean_text(&o, MAX).ok().map(|t| Cow::Owned(t.to_string())),
        };
        text.map(Txt).ok_or_else(broken)
    }
}

impl<const MAX: usize> std::ops::Deref for Txt<'_, MAX> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A value the contract reads from one text field: its text rule's maximum length and its
/// parser (`None`: the field breaks its rule).
pub(super) trait FromText: Sized {
    const MAX: usize;
    fn from_text(s: &str) -> Option<Self>;
}

/// A field read as `T` ([`FromText`]) while the body is read.
pub(super) struct Parsed<T>(pub(super) T);

impl<'de, T: FromText> Deserialize<'de> for Parsed<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let S(s) = S::deserialize(d)?;
        clean_text(&s, T::MAX)
            .ok()
            .and_then(T::from_text)
            .map(Parsed)
            .ok_or_else(broken)
    }
}

impl FromText for PrescriptionType {
    const MAX: usize = 64;
    fn from_text(s: &str) -> Option<Self> {
        match s {
            "private" => Some(PrescriptionType::Private),
            "nhs" => Some(PrescriptionType::Nhs),
            _ => None,
        }
    }
}

impl FromText for AuthorityKind {
    const MAX: usize = 64;
    fn from_text(s: &str) -> Option<Self> {
        match s {
            "paper_fp10pcd" => Some(AuthorityKind::PaperFp10pcd),
            "paper_fp10" => Some(AuthorityKind::PaperFp10),
            "eps" => Some(AuthorityKind::Eps),
            "electronic_private" => Some(AuthorityKind::ElectronicPrivate),
            _ => None,
        }
    }
}

impl FromText for PrescriberKind {
    const MAX: usize = 64;
    fn from_text(s: &str) -> Option<Self> {
        PrescriberKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A registration body's name, one of those the contract knows.
pub(super) struct Body(pub(super) &'static str);

impl FromText for Body {
    const MAX: usize = 64;
    fn from_text(s: &str) -> Option<Self> {
        ["gmc", "nmc", "gphc", "hcpc", "gdc", "goc"]
            .into_iter()
            .find(|b| *b == s)
            .map(Body)
    }
}

impl FromText for ClinicReference {
    const MAX: usize = 64;
    fn from_text(s: &str) -> Option<Self> {
        ClinicReference::parse(s).ok()
    }
}

/// A calendar date written YYYY-MM-DD ([`calendar_date`]).
impl FromText for Date {
    const MAX: usize = 10;
    fn from_text(s: &str) -> Option<Self> {
        calendar_date(s)
    }
}

impl FromText for NhsNumber {
    const MAX: usize = 16;
    fn from_text(s: &str) -> Option<Self> {
        NhsNumber::parse(s).ok()
    }
}

impl FromText for Email {
    const MAX: usize = 254;
    fn from_text(s: &str) -> Option<Self> {
        Email::parse(s).ok()
    }
}

impl FromText for UkPhone {
    const MAX: usize = 32;
    fn from_text(s: &str) -> Option<Self> {
        UkPhone::parse(s).ok()
    }
}

impl FromText for PrivatePrescriberCode {
    const MAX: usize = 16;
    fn from_text(s: &str) -> Option<Self> {
        PrivatePrescriberCode::parse(s).ok()
    }
}

/// A paper authority's serial number: letters and digits, upper-cased.
pub(super) struct Serial(pub(super) String);

impl FromText for Serial {
    const MAX: usize = 32;
    fn from_text(s: &str) -> Option<Self> {
        s.chars()
            .all(|c| c.is_ascii_alphanumeric())
            .then(|| Serial(s.to_ascii_uppercase()))
    }
}

/// A detached compact JWS, as the collecting parser accepts it.
pub(super) struct Jws(pub(super) String);

impl FromText for Jws {
    const MAX: usize = 16_384;
    fn from_text(s: &str) -> Option<Self> {
        rxbridge_app::signatures::parse_detached_jws(s)
            .ok()
            .map(|_| Jws(s.to_string()))
    }
}

/// The quantity in words, as written (trimmed), and the number they state.
pub(super) struct Words {
    pub(super) text: String,
    pub(super) reading: WordsReading,
}

impl FromText for Words {
    const MAX: usize = 200;
    fn from_text(s: &str) -> Option<Self> {
        read_quantity_words(s).ok().map(|reading| Words {
            text: s.to_string(),
            reading,
        })
    }
}

/// An address line: 1 to 100 printable characters (counted before trimming), trimmed.
pub(super) struct Line(pub(super) String);

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let S(s) = S::deserialize(d)?;
        let ok =
            !s.trim().is_empty() && s.chars().count() <= 100 && !s.chars().any(char::is_control);
        ok.then(|| Line(s.trim().to_string())).ok_or_else(broken)
    }
}

/// An ISO 3166-1 alpha-2 country code as written: two upper-case letters, not trimmed.
pub(super) struct Country<'a>(pub(super) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Country<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let S(s) = S::deserialize(d)?;
        let ok = s.len() == 2 && s.chars().all(|c| c.is_ascii_uppercase());
        ok.then_some(Country(s)).ok_or_else(broken)
    }
}

/// A JSON number read as the collecting parser's `integer` reads it: `28` and `28.0` are 28;
/// `None` for a negative, fractional or huge one (which that parser refuses).
#[derive(Clone, Copy)]
pub(super) struct Whole(pub(super) Option<u64>);

impl<'de> Deserialize<'de> for Whole {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Whole;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_u64<E>(self, n: u64) -> Result<Whole, E> {
                Ok(Whole(Some(n)))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Whole, E> {
                Ok(Whole(u64::try_from(n).ok()))
            }
            fn visit_f64<E>(self, f: f64) -> Result<Whole, E> {
                let whole = f.fract() == 0.0 && (0.0..=1e15).contains(&f);
                Ok(Whole(whole.then_some(f as u64)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A whole number in `MIN..=MAX` ([`Whole`]).
#[derive(Clone, Copy)]
pub(super) struct Int<const MIN: u64, const MAX: u64>(pub(super) u32);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        const { assert!(MAX <= u32::MAX as u64) };
        match Whole::deserialize(d)?.0 {
            Some(n) if (MIN..=MAX).contains(&n) => Ok(Int(n as u32)),
            _ => Err(broken()),
        }
    }
}

/// Dosage units: more than 0 and at most 20, in steps of a quarter.
#[derive(Clone, Copy)]
pub(super) struct Units(pub(super) f64);

impl<'de> Deserialize<'de> for Units {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let u = f64::deserialize(d)?;
        let ok = u > 0.0 && u <= 20.0 && (u * 4.0).fract() == 0.0;
        ok.then_some(Units(u)).ok_or_else(broken)
    }
}
