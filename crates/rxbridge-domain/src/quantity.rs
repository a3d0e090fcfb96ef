//! Quantities: a positive whole number of dosage units, and the English words a CD prescription
//! must also state it in (MDR 2001 reg 15(1)(f): "in both words and figures").

use serde::{Deserialize, Serialize};

/// The largest quantity accepted on one item. Far above any real ADHD supply; it keeps
/// arithmetic on quantities free of overflow.
pub const MAX_QUANTITY: u32 = 9_999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("must be a whole number from 1 to {MAX_QUANTITY}")]
    OutOfRange,
    #[error("is not a number written in English words (e.g. \"twenty-eight\"): {0}")]
    Words(String),
}

/// A positive whole number of dosage units (1..=9 999).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Quantity(u32);

impl Quantity {
    pub fn new(n: u32) -> Result<Self, QuantityError> {
        if (1..=MAX_QUANTITY).contains(&n) {
            Ok(Self(n))
        } else {
            Err(QuantityError::OutOfRange)
        }
    }
    pub fn get(self) -> u32 {
        self.0
    }
}
impl TryFrom<u32> for Quantity {
    type Error = QuantityError;
    fn try_from(n: u32) -> Result<Self, QuantityError> {
        Self::new(n)
    }
}
impl From<Quantity> for u32 {
    fn from(q: Quantity) -> u32 {
        q.0
    }
}

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];

fn unit_value(w: &str) -> Option<u32> {
    UNITS.iter().position(|u| *u == w).map(|p| p as u32)
}
fn tens_value(w: &str) -> Option<u32> {
    TENS.iter()
        .position(|t| !t.is_empty() && *t == w)
        .map(|p| p as u32 * 10)
}

/// Words that name the dosage unit and may follow the number: MDR 2001 reg 15(1)(f) asks for
/// "the total quantity ... or the number of dosage units", so "twenty-eight capsules" is
/// lawful. "Only" is the customary guard against additions ("twenty-eight only").
const UNIT_WORDS: &[&str] = &[
    "tablet",
    "tablets",
    "tab",
    "tabs",
    "capsule",
    "capsules",
    "cap",
    "caps",
    "sachet",
    "sachets",
    "patch",
    "patches",
    "dosage",
    "dose",
    "doses",
    "unit",
    "units",
    "modified",
    "prolonged",
    "extended",
    "release",
    "mr",
    "xl",
    "ml",
    "millilitres",
    "milliliters",
    "only",
];

/// The words of `lower` (already lower-cased), without trailing unit words.
fn word_tokens(lower: &str) -> Vec<&str> {
    let mut tokens: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == '-')
        .filter(|t| !t.is_empty())
        .collect();
    // Trailing unit words ("twenty-eight capsules", "fifty-six modified-release tablets only").
    while tokens.len() > 1 && tokens.last().is_some_and(|t| UNIT_WORDS.contains(t)) {
        tokens.pop();
    }
    tokens
}

/// Parse a whole number written in British English words: "twenty-eight", "twenty eight",
/// "one hundred and twelve", "one thousand two hundred", "a hundred", optionally followed by
/// the dosage unit ("twenty-eight capsules"). Case and extra spaces are ignored; hyphens and
/// spaces are interchangeable; "and" is allowed only where English puts it (after "hundred"
/// or "thousand"). Anything else — digits, misspellings, "twenty twenty" — is refused, because
/// on a CD prescription the words are a legal record that must state one number
/// unambiguously. [`read_quantity_words`] also recognises a spelling slip.
pub fn parse_quantity_words(input: &str) -> Result<u32, QuantityError> {
    parse_tokens(&word_tokens(&input.to_lowercase()))
}

fn parse_tokens(tokens: &[&str]) -> Result<u32, QuantityError> {
    if tokens.is_empty() {
        return Err(QuantityError::Words("it is empty".into()));
    }
    let mut p = WordParser { t: tokens, i: 0 };
    let n = p.number()?;
    if p.i != tokens.len() {
        return Err(QuantityError::Words(format!(
            "unexpected word \"{}\"",
            tokens[p.i]
        )));
    }
    Ok(n)
}

/// What the words on a prescription state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordsReading {
    pub value: u32,
    /// The words as they should have been spelt, when they state the number only after a
    /// minor spelling slip is corrected ("twenty-eigth" → "twenty-eight"). MDR 2001 reg
    /// 16(1A)(a): a pharmacist may amend a minor spelling mistake.
    pub corrected: Option<String>,
}

fn vocabulary() -> impl Iterator<Item = &'static str> {
    UNITS
        .iter()
        .chain(TENS.iter().filter(|t| !t.is_empty()))
        .copied()
        .chain(["hundred", "thousand", "and", "a"])
}

/// The one number word within a slip of `w` (one edit for short words, two for words of six
/// letters or more; a swap of two neighbouring letters is one edit), if exactly one is
/// nearest.
fn correct(w: &str) -> Option<&'static str> {
    if w.len() < 3 || !w.chars().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let limit = if w.len() >= 6 { 2 } else { 1 };
    let mut best: Vec<(&'static str, usize)> = vocabulary()
        .filter(|v| v.len() >= 3)
        .map(|v| (v, strsim::osa_distance(w, v)))
        .filter(|(_, d)| *d <= limit)
        .collect();
    best.sort_by_key(|(_, d)| *d);
    match best.as_slice() {
        [(v, _)] => Some(*v),
        [(v, d1), (_, d2), ..] if d1 < d2 => Some(*v),
        _ => None,
    }
}

/// Read the quantity in words as a pharmacist would: exactly as [`parse_quantity_words`],
/// or, failing that, after correcting minor spelling slips word by word. Words that cannot be
/// read either way are refused with the strict parser's reason.
pub fn read_quantity_words(input: &str) -> Result<WordsReading, QuantityError> {
    // Lower-cased only when it has to be (the words usually arrive in lower case).
    let lower: std::borrow::Cow<str> =
        if input.is_ascii() && !input.bytes().any(|b| b.is_ascii_uppercase()) {
            input.into()
        } else {
            input.to_lowercase().into()
        };
    let strict = word_tokens(&lower);
    let err = match parse_tokens(&strict) {
        Ok(value) => {
            return Ok(WordsReading {
                value,
                corrected: None,
            });
        }
        Err(e) => e,
    };
    let vocab: Vec<&str> = vocabulary().collect();
    let fixed: Option<Vec<&str>> = strict
        .iter()
        .map(|t| {
            if vocab.contains(t) {
                Some(*t)
            } else {
                correct(t)
            }
        })
        .collect();
    match fixed.map(|f| parse_tokens(&f)) {
        Some(Ok(value)) => Ok(WordsReading {
            value,
            corrected: Some(to_words(value)),
        }),
        _ => Err(err),
    }
}

struct WordParser<'a> {
    t: &'a [&'a str],
    i: usize,
}

impl WordParser<'_> {
    fn peek(&self) -> Option<&str> {
        self.t.get(self.i).copied()
    }
    fn eat(&mut self, w: &str) -> bool {
        if self.peek() == Some(w) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn err(&self) -> QuantityError {
        match self.peek() {
            Some(w) => QuantityError::Words(format!("unexpected word \"{w}\"")),
            None => QuantityError::Words("it ends too early".into()),
        }
    }
    /// number := below_thousand ["thousand" [["and"] below_thousand]] | "zero"
    fn number(&mut self) -> Result<u32, QuantityError> {
        if self.eat("zero") {
            return Ok(0);
        }
        let first = self.below_thousand()?;
        if self.eat("thousand") {
            if self.peek().is_none() {
                return Ok(first * 1000);
            }
            let had_and = self.eat("and");
            let rest = self.below_thousand()?;
            // "one thousand and five" is English; "one thousand and two hundred" is not.
            if had_and && rest >= 100 {
                return Err(QuantityError::Words("\"and\" before hundreds".into()));
            }
            return Ok(first * 1000 + rest);
        }
        Ok(first)
    }
    /// below_thousand := ["a" | unit1-9] "hundred" [["and"] below_hundred] | below_hundred
    fn below_thousand(&mut self) -> Result<u32, QuantityError> {
        let start = self.i;
        let hundreds = if self.eat("a") {
            Some(1)
        } else {
            match self.peek().and_then(unit_value) {
                Some(u @ 1..=9) if self.t.get(self.i + 1) == Some(&"hundred") => {
                    self.i += 1;
                    Some(u)
                }
                _ => None,
            }
        };
        if let Some(h) = hundreds {
            if !self.eat("hundred") {
                self.i = start;
                return Err(self.err());
            }
            let had_and = self.eat("and");
            match self.peek() {
                Some(w) if unit_value(w).is_some_and(|u| u > 0) || tens_value(w).is_some() => {
                    Ok(h * 100 + self.below_hundred()?)
                }
                _ if had_and => Err(self.err()),
                _ => Ok(h * 100),
            }
        } else {
            self.below_hundred()
        }
    }
    /// below_hundred := tens [unit1-9] | unit1-19
    fn below_hundred(&mut self) -> Result<u32, QuantityError> {
        let w = self.peek().ok_or_else(|| self.err())?;
        if let Some(t) = tens_value(w) {
            self.i += 1;
            if let Some(u @ 1..=9) = self.peek().and_then(unit_value) {
                self.i += 1;
                return Ok(t + u);
            }
            return Ok(t);
        }
        match unit_value(w) {
            Some(u @ 1..=19) => {
                self.i += 1;
                Ok(u)
            }
            _ => Err(self.err()),
        }
    }
}

/// Write a number in British English words, hyphenating tens ("one hundred and twenty-eight").
/// Used in messages and in tests of the parser.
pub fn to_words(n: u32) -> String {
    fn below_hundred(n: u32) -> String {
        if n < 20 {
            UNITS[n as usize].to_string()
        } else if n.is_multiple_of(10) {
            TENS[(n / 10) as usize].to_string()
        } else {
            format!("{}-{}", TENS[(n / 10) as usize], UNITS[(n % 10) as usize])
        }
    }
    fn below_thousand(n: u32) -> String {
        match (n / 100, n % 100) {
            (0, r) => below_hundred(r),
            (h, 0) => format!("{} hundred", UNITS[h as usize]),
            (h, r) => format!("{} hundred and {}", UNITS[h as usize], below_hundred(r)),
        }
    }
    match (n / 1000, n % 1000) {
        (0, r) => below_thousand(r),
        (t, 0) => format!("{} thousand", below_thousand(t)),
        (t, r) if r < 100 => format!("{} thousand and {}", below_thousand(t), below_hundred(r)),
        (t, r) => format!("{} thousand {}", below_thousand(t), below_thousand(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        for (w, n) in [
            ("twenty-eight", 28),
            ("twenty eight", 28),
            ("Twenty-Eight", 28),
            ("  thirty  ", 30),
            ("fifty-six", 56),
            ("one hundred and twelve", 112),
            ("one hundred twelve", 112),
            ("a hundred", 100),
            ("one hundred", 100),
            ("one thousand", 1000),
            ("one thousand and five", 1005),
            ("two thousand three hundred and forty-five", 2345),
            ("nineteen", 19),
            ("seven", 7),
            ("twenty-eight tablets", 28),
            ("twenty-eight capsules", 28),
            ("Fifty-six modified-release tablets only", 56),
            ("thirty caps", 30),
        ] {
            assert_eq!(parse_quantity_words(w), Ok(n), "{w}");
        }
    }

    #[test]
    fn spelling_slips_are_read_and_named() {
        for (w, n, fixed) in [
            ("twenty-eigth", 28, "twenty-eight"),
            ("twenty eihgt capsules", 28, "twenty-eight"),
            ("fourty-two", 42, "forty-two"),
            ("thirtey", 30, "thirty"),
            ("fifty-sixx", 56, "fifty-six"),
            ("ninty", 90, "ninety"),
        ] {
            assert_eq!(
                read_quantity_words(w),
                Ok(WordsReading {
                    value: n,
                    corrected: Some(fixed.into())
                }),
                "{w}"
            );
            assert!(
                parse_quantity_words(w).is_err(),
                "strict parser accepts {w}"
            );
        }
        assert_eq!(
            read_quantity_words("twenty-eight"),
            Ok(WordsReading {
                value: 28,
                corrected: None
            })
        );
        for w in ["lots", "twenty blah", "28", "tweeeeenty", ""] {
            assert!(read_quantity_words(w).is_err(), "{w}");
        }
    }

    #[test]
    fn refusals() {
        for w in [
            "",
            "28",
            "twenty twenty",
            "twentyeight",
            "eight twenty",
            "one hundred and",
            "and twenty",
            "hundred",
            "one one",
            "ten nine",
            "one thousand and two hundred",
            "twenty-eight (28)",
        ] {
            assert!(parse_quantity_words(w).is_err(), "{w:?}");
        }
    }

    #[test]
    fn quantity_bounds() {
        assert!(Quantity::new(0).is_err());
        assert!(Quantity::new(1).is_ok());
        assert!(Quantity::new(MAX_QUANTITY).is_ok());
        assert!(Quantity::new(MAX_QUANTITY + 1).is_err());
    }

    proptest! {
        #[test]
        fn words_roundtrip(n in 1u32..=MAX_QUANTITY, spaces in any::<bool>(), upper in any::<bool>()) {
            let mut w = to_words(n);
            if spaces { w = w.replace('-', " "); }
            if upper { w = w.to_uppercase(); }
            prop_assert_eq!(parse_quantity_words(&w), Ok(n), "{}", w);
        }

        #[test]
        fn never_panics(s in "\\PC{0,60}") {
            let _ = parse_quantity_words(&s);
            let _ = read_quantity_words(&s);
        }

        #[test]
        fn word_soup_never_panics(ws in proptest::collection::vec(prop_oneof![
            Just("one"), Just("twenty"), Just("hundred"), Just("thousand"), Just("and"), Just("a"), Just("nineteen"), Just("-")
        ], 0..8)) {
            let s = ws.join(" ");
            if let Ok(n) = parse_quantity_words(&s) {
                // Whatever parses must be the canonical reading of itself.
                prop_assert_eq!(parse_quantity_words(&to_words(n)), Ok(n));
            }
        }
    }
}
