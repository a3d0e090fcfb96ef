//! Contact details: UK postcode, email address, UK phone number, postal address.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContactError {
    #[error("is not a valid UK postcode (e.g. M1 1AE)")]
    Postcode,
    #[error("is not a valid email address")]
    Email,
    #[error("is not a valid UK phone number (e.g. 07700900123 or +447700900123)")]
    Phone,
}

/// UK postcode, normalised to upper case with one space before the inward code ("M1 1AE").
/// Outward code formats A9, A99, AA9, AA99, A9A, AA9A; inward 9AA; plus GIR 0AA.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Postcode(String);

impl Postcode {
    /// The normalised postcode (`M1 1AE`), without copying it.
    pub fn into_string(self) -> String {
        self.0
    }
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        // Upper-cased without spaces, on the stack: a postcode is at most 7 ASCII characters.
        let mut buf = [0u8; 7];
        let mut n = 0;
        for c in input.chars().filter(|c| !c.is_whitespace()) {
            if !c.is_ascii() || n == buf.len() {
                return Err(ContactError::Postcode);
            }
            buf[n] = c.to_ascii_uppercase() as u8;
            n += 1;
        }
        let compact = std::str::from_utf8(&buf[..n]).map_err(|_| ContactError::Postcode)?;
        if compact == "GIR0AA" {
            return Ok(Self("GIR 0AA".into()));
        }
        if !(5..=7).contains(&compact.len()) {
            return Err(ContactError::Postcode);
        }
        let (out, inw) = compact.split_at(compact.len() - 3);
        let ib = inw.as_bytes();
        let inward_ok =
            ib[0].is_ascii_digit() && ib[1].is_ascii_alphabetic() && ib[2].is_ascii_alphabetic();
        let ob = out.as_bytes();
        let a = |c: u8| c.is_ascii_alphabetic();
        let d = |c: u8| c.is_ascii_digit();
        let outward_ok = match ob {
            [x, y] => a(*x) && d(*y),
            [x, y, z] => {
                (a(*x) && d(*y) && d(*z)) || (a(*x) && a(*y) && d(*z)) || (a(*x) && d(*y) && a(*z))
            }
            [w, x, y, z] => a(*w) && a(*x) && d(*y) && (d(*z) || a(*z)),
            _ => false,
        };
        if inward_ok && outward_ok {
            let mut s = String::with_capacity(compact.len() + 1);
            s.push_str(out);
            s.push(' ');
            s.push_str(inw);
            Ok(Self(s))
        } else {
            Err(ContactError::Postcode)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The outward code ("M1"), for masked display.
    pub fn outward(&self) -> &str {
        self.0.split(' ').next().unwrap_or("")
    }
}
impl TryFrom<String> for Postcode {
    type Error = ContactError;
    fn try_from(s: String) -> Result<Self, ContactError> {
        Self::parse(&s)
    }
}
impl From<Postcode> for String {
    fn from(p: Postcode) -> String {
        p.0
    }
}
impl fmt::Debug for Postcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Postcode({} ***)", self.outward())
    }
}

/// Email address: one `@`, a non-empty local part of at most 64 characters, a domain with a dot,
/// no spaces, at most 254 characters. The domain is lower-cased; the local part is kept.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        let s = input.trim();
        // ASCII is checked by its bytes: its whitespace and control characters are all at or
        // below the space, and DEL.
        let spaced = if s.is_ascii() {
            s.bytes().any(|b| b <= b' ' || b == 0x7f)
        } else {
            s.chars().any(|c| c.is_whitespace() || c.is_control())
        };
        if s.len() > 254 || spaced {
            return Err(ContactError::Email);
        }
        let (local, domain) = s.split_once('@').ok_or(ContactError::Email)?;
        // Each label letters, digits and inner hyphens (so no second `@`), read as bytes.
        let domain_ok = domain.contains('.')
            && domain.as_bytes().split(|b| *b == b'.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
                    && !l.starts_with(b"-")
                    && !l.ends_with(b"-")
            });
        if local.is_empty() || local.len() > 64 || !domain_ok {
            return Err(ContactError::Email);
        }
        let mut out = String::with_capacity(s.len());
        out.push_str(local);
        out.push('@');
        // The domain is ASCII (checked above).
        out.push_str(domain);
        out[local.len() + 1..].make_ascii_lowercase();
        Ok(Self(out))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Lower-cased form used for exact-match lookups.
    pub fn lookup_key(&self) -> String {
        self.0.to_lowercase()
    }
}
impl TryFrom<String> for Email {
    type Error = ContactError;
    fn try_from(s: String) -> Result<Self, ContactError> {
        Self::parse(&s)
    }
}
impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}
impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Email(***)")
    }
}

/// UK phone number, stored in E.164 (`+447700900123`). Accepts national form (`07700 900123`,
/// `(020) 7946 0000`) or `+44`/`0044`: 10 or 11 national digits starting with 0 then 1, 2, 3, 5, 7,
/// 8 or 9.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UkPhone(String);

impl UkPhone {
    pub fn parse(input: &str) -> Result<Self, ContactError> {
        let s = input.trim();
        if s.chars()
            .any(|c| !(c.is_ascii_digit() || " -()+".contains(c)))
        {
            return Err(ContactError::Phone);
        }
        // Room for the "+44" that replaces the leading 0 below.
        let mut digits = String::with_capacity(s.len() + 2);
        digits.extend(s.chars().filter(char::is_ascii_digit));
        let national = if s.starts_with('+') {
            digits
                .strip_prefix("44")
                .map(|r| format!("0{}", r.trim_start_matches('0')))
        } else if let Some(r) = digits.strip_prefix("0044") {
            Some(format!("0{}", r.trim_start_matches('0')))
        } else if s.contains('+') {
            None
        } else {
            Some(digits)
        }
        .ok_or(ContactError::Phone)?;
        let ok = (10..=11).contains(&national.len())
            && national.starts_with('0')
            && matches!(
                national.as_bytes().get(1),
                Some(b'1' | b'2' | b'3' | b'5' | b'7' | b'8' | b'9')
            );
        if ok {
            let mut e164 = national;
            e164.replace_range(..1, "+44");
            Ok(Self(e164))
        } else {
            Err(ContactError::Phone)
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for UkPhone {
    type Error = ContactError;
    fn try_from(s: String) -> Result<Self, ContactError> {
        Self::parse(&s)
    }
}
impl From<UkPhone> for String {
    fn from(p: UkPhone) -> String {
        p.0
    }
}
impl fmt::Debug for UkPhone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UkPhone(***)")
    }
}

/// A postal address. `country` is an ISO 3166-1 alpha-2 code, `GB` unless stated; the postcode is
/// a UK postcode when the country is `GB`, free text otherwise.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub lines: Vec<String>,
    pub town: String,
    pub postcode: String,
    pub country: String,
}

impl Address {
    /// In the United Kingdom: country GB and not a Crown Dependency postcode (JE, GY, IM).
    pub fn is_uk(&self) -> bool {
        self.country == "GB" && self.crown_dependency().is_none()
    }
    /// The Crown Dependency the address is in — Jersey, Guernsey or the Isle of Man — by its
    /// country code (JE, GG, IM) or, for a "GB" address, its postcode area (JE, GY, IM). They
    /// use UK-looking postcodes but are not the United Kingdom (Interpretation Act 1978 Sch 1:
    /// Great Britain and Northern Ireland).
    pub fn crown_dependency(&self) -> Option<&'static str> {
        let area: String = crate::normalise::postcode_key(&self.postcode)
            .chars()
            .take_while(char::is_ascii_alphabetic)
            .collect();
        let by_area = match area.as_str() {
            "JE" => Some("Jersey"),
            "GY" => Some("Guernsey"),
            "IM" => Some("the Isle of Man"),
            _ => None,
        };
        let by_country = match self.country.as_str() {
            "JE" => Some("Jersey"),
            "GG" => Some("Guernsey"),
            "IM" => Some("the Isle of Man"),
            _ => None,
        };
        by_country.or(if self.country == "GB" { by_area } else { None })
    }
    /// True when any line names a PO Box, however it is spelt: "PO Box 12", "P.O.Box12",
    /// "POBox 9", "Post Office Box 7", "POB 3" (BNF: a PO Box is not an acceptable patient
    /// address on a controlled-drug prescription). "Pobbox Lane" or "Hippo Box Road" are not.
    pub fn is_po_box(&self) -> bool {
        self.lines
            .iter()
            .chain(std::iter::once(&self.town))
            .any(|l| names_po_box(&crate::normalise::words(l)))
    }
    /// The whole normalised address (every line and the postcode) for the "several patients at
    /// one address" check and the identity rules.
    pub fn match_key(&self) -> String {
        crate::normalise::address_key(self.lines.iter().map(String::as_str), &self.postcode)
    }
}

/// Whether a run of words, starting at a word boundary, spells a PO Box: the words joined
/// from some word on begin "pobox", "postofficebox" or "pob", then a number (optionally after
/// "no"/"number") or nothing more.
fn names_po_box(words: &[String]) -> bool {
    (0..words.len()).any(|start| {
        let joined: String = words[start..].concat();
        ["postofficebox", "pobox", "pob"].iter().any(|prefix| {
            joined.strip_prefix(prefix).is_some_and(|rest| {
                let rest = rest
                    .strip_prefix("number")
                    .or_else(|| rest.strip_prefix("no"))
                    .unwrap_or(rest);
                // "pob" alone is a word in place names; it needs its number.
                (rest.is_empty() && *prefix != "pob")
                    || rest.starts_with(|c: char| c.is_ascii_digit())
            })
        })
    })
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Address(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn postcodes() {
        for (i, o) in [
            ("M1 1AE", "M1 1AE"),
            ("m11ae", "M1 1AE"),
            ("W1G 9QD", "W1G 9QD"),
            ("SW1A1AA", "SW1A 1AA"),
            ("B33 8TH", "B33 8TH"),
            ("CR2 6XH", "CR2 6XH"),
            ("DN55 1PT", "DN55 1PT"),
            ("EC1A 1BB", "EC1A 1BB"),
            ("gir 0aa", "GIR 0AA"),
        ] {
            assert_eq!(Postcode::parse(i).unwrap().as_str(), o, "{i}");
        }
        for bad in [
            "",
            "M1",
            "1M 1AE",
            "M1 AAE",
            "M1 1A1",
            "ABCDE 1AA",
            "M1 1AÉ",
            "12345",
        ] {
            assert!(Postcode::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Postcode::parse("SW1A 1AA").unwrap().outward(), "SW1A");
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse("Sam.Taylor@Example.COM").unwrap().as_str(),
            "Sam.Taylor@example.com"
        );
        for bad in [
            "",
            "a",
            "a@b",
            "@b.com",
            "a@@b.com",
            "a b@c.com",
            "a@b..com",
            "a@-b.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert_eq!(
            UkPhone::parse("07700900123").unwrap().as_str(),
            "+447700900123"
        );
        assert_eq!(
            UkPhone::parse("+44 7700 900123").unwrap().as_str(),
            "+447700900123"
        );
        assert_eq!(
            UkPhone::parse("+44 (0)7700 900123").unwrap().as_str(),
            "+447700900123"
        );
        assert_eq!(
            UkPhone::parse("0044 20 7946 0000").unwrap().as_str(),
            "+442079460000"
        );
        assert_eq!(
            UkPhone::parse("(020) 7946 0000").unwrap().as_str(),
            "+442079460000"
        );
        for bad in [
            "",
            "12345",
            "07700",
            "+33 6 12 34 56 78",
            "0770090012a",
            "06700900123",
            "077009001234",
        ] {
            assert!(UkPhone::parse(bad).is_err(), "{bad}");
        }
    }

    fn addr(lines: &[&str]) -> Address {
        Address {
            lines: lines.iter().map(|s| s.to_string()).collect(),
            town: "Leeds".into(),
            postcode: "LS1 1AA".into(),
            country: "GB".into(),
        }
    }

    #[test]
    fn po_boxes() {
        assert!(addr(&["PO Box 123"]).is_po_box());
        assert!(addr(&["P.O. Box 9"]).is_po_box());
        assert!(addr(&["p o box 9"]).is_po_box());
        assert!(addr(&["POBox 9"]).is_po_box());
        assert!(!addr(&["10 High Street"]).is_po_box());
        assert!(!addr(&["Flat 2", "Pobbox Lane"]).is_po_box());
        // Every spelling in the rules sheet, and a few more seen in clinic data.
        for spelt in [
            "P.O.Box12",
            "Post Office Box 7",
            "POB 3",
            "pob3",
            "P O Box No. 4",
            "PO BOX",
            "p.o. box",
            "Post-Office Box 99",
        ] {
            assert!(addr(&[spelt]).is_po_box(), "{spelt}");
        }
        for not in [
            "Hippo Box Road",
            "Pob Lane",
            "Po Boxer Street",
            "10 Post Office Road",
            "Boxhill",
        ] {
            assert!(!addr(&[not]).is_po_box(), "{not}");
        }
    }

    #[test]
    fn crown_dependencies_are_not_the_uk() {
        let mut a = addr(&["1 King Street"]);
        assert!(a.is_uk());
        for (pc, place) in [
            ("JE2 3AB", "Jersey"),
            ("GY1 1AA", "Guernsey"),
            ("IM1 1AA", "the Isle of Man"),
        ] {
            a.postcode = pc.into();
            assert!(!a.is_uk(), "{pc}");
            assert_eq!(a.crown_dependency(), Some(place));
        }
        // Areas that merely start alike are British.
        for pc in ["IG1 1AA", "GU1 1AA", "IP1 1AA"] {
            a.postcode = pc.into();
            assert!(a.is_uk(), "{pc}");
        }
        a.postcode = "1234".into();
        a.country = "JE".into();
        assert!(!a.is_uk());
        a.country = "FR".into();
        assert!(!a.is_uk());
        assert_eq!(a.crown_dependency(), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = Postcode::parse(&s);
            let _ = Email::parse(&s);
            let _ = UkPhone::parse(&s);
        }
        #[test]
        fn postcode_roundtrips(a in "[A-Z]{1,2}[0-9]{1,2}", b in "[0-9][A-Z]{2}") {
            let p = Postcode::parse(&format!("{a}{b}")).unwrap();
            prop_assert_eq!(p.as_str(), format!("{a} {b}"));
            prop_assert_eq!(Postcode::parse(p.as_str()).unwrap(), p);
        }
    }
}
