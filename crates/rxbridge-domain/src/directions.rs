//! Reading the prescriber's free-text directions: is the dose explicit at all ("as directed"
//! and its equivalents are not, MDR 2001 reg 15(1)(f) and the BNF), and what dose does the
//! text state, so that directions contradicting the structured dose can be flagged.
//!
//! The reading is deliberately conservative: a number is taken only where the text states one
//! unambiguously; text that states two different doses ("one, increasing to two") states none.

/// True when the directions say nothing but "as directed" in one of its forms: "as directed",
/// "use as directed", "as instructed", "as advised", "use as directed by your specialist",
/// "MDU" / "M.D.U." (*mitte, dictum utendum*), "UD" / "ut dictum". "One as directed" states a
/// dose and is acceptable.
pub fn is_only_as_directed(instructions: &str) -> bool {
    let words = crate::normalise::words(instructions);
    // "M.D.U." and "U.D." arrive as single letters.
    let joined: String = words.concat();
    if matches!(joined.as_str(), "mdu" | "ud" | "utdictum") {
        return true;
    }
    const FILLER: &[&str] = &[
        "use",
        "take",
        "to",
        "be",
        "taken",
        "used",
        "give",
        "given",
        "apply",
        "as",
        "per",
        "by",
        "your",
        "the",
        "a",
        "you",
        "have",
        "been",
        "were",
        "on",
        "from",
        "with",
        "specialist",
        "doctor",
        "prescriber",
        "clinician",
        "consultant",
        "clinic",
        "team",
        "nurse",
        "pharmacist",
        "gp",
        "instructions",
        "instruction",
        "leaflet",
        "label",
        "directions",
        "directed",
        "dir",
        "asd",
        "instructed",
        "advised",
        "told",
        "mdu",
        "ud",
        "ut",
        "dictum",
        "mitte",
        "utendum",
        "m",
        "d",
        "u",
    ];
    const CORE: &[&str] = &[
        "directed",
        "dir",
        "asd",
        "instructed",
        "advised",
        "told",
        "instructions",
        "instruction",
        "directions",
        "mdu",
        "ud",
        "dictum",
        "utendum",
    ];
    !words.is_empty()
        && words.iter().all(|w| FILLER.contains(&w.as_str()))
        && (words.iter().any(|w| CORE.contains(&w.as_str())) || joined.contains("mdu"))
}

/// The dose the directions text states, where it states one unambiguously.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StatedDose {
    /// Dosage units per administration ("take TWO capsules" → 2, "half a tablet" → 0.5).
    pub units: Option<f64>,
    /// Administrations a day ("twice daily" → 2, "each morning" → 1, "every 8 hours" → 3).
    pub times_per_day: Option<u32>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Num(f64),
}

/// Words and numbers; "1/2", "½" and "0.5" are numbers, other punctuation breaks words.
fn tokens(text: &str) -> Vec<Tok> {
    let folded = deunicode::deunicode(&text.replace('½', " 1/2 ")).to_ascii_lowercase();
    let mut out = Vec::new();
    let b = folded.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.' || b[i] == b'/') {
                i += 1;
            }
            let s = folded[start..i].trim_end_matches(['.', '/']);
            let n = match s.split_once('/') {
                Some((a, d)) => match (a.parse::<f64>(), d.parse::<f64>()) {
                    (Ok(a), Ok(d)) if d > 0.0 => Some(a / d),
                    _ => None,
                },
                None => s.parse::<f64>().ok(),
            };
            if let Some(n) = n {
                out.push(Tok::Num(n));
            }
        } else if c.is_ascii_alphabetic() {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphabetic() {
                i += 1;
            }
            out.push(Tok::Word(folded[start..i].to_string()));
        } else {
            i += 1;
        }
    }
    out
}

fn word_number(w: &str) -> Option<f64> {
    Some(match w {
        "one" => 1.0,
        "two" => 2.0,
        "three" => 3.0,
        "four" => 4.0,
        "five" => 5.0,
        "six" => 6.0,
        "seven" => 7.0,
        "eight" => 8.0,
        "nine" => 9.0,
        "ten" => 10.0,
        "half" => 0.5,
        _ => return None,
    })
}

/// A number at `i`: a figure, a word ("two"), "half", "a half", "one and a half"; with how
/// many tokens it takes.
fn number_at(t: &[Tok], i: usize) -> Option<(f64, usize)> {
    let w = |k: usize| match t.get(k) {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let base = match t.get(i)? {
        Tok::Num(n) => (*n, 1),
        Tok::Word(x) if x == "a" && w(i + 1) == Some("half") => (0.5, 2),
        Tok::Word(x) => (word_number(x)?, 1),
    };
    // "one and a half", "1 and a half"
    if base.0 >= 1.0 && w(i + base.1) == Some("and") {
        if w(i + base.1 + 1) == Some("a") && w(i + base.1 + 2) == Some("half") {
            return Some((base.0 + 0.5, base.1 + 3));
        }
        if w(i + base.1 + 1) == Some("half") {
            return Some((base.0 + 0.5, base.1 + 2));
        }
    }
    Some(base)
}

const UNIT_NOUNS: &[&str] = &[
    "tablet", "tablets", "tab", "tabs", "capsule", "capsules", "cap", "caps", "sachet", "sachets",
    "patch", "patches",
];
const UNIT_QUALIFIERS: &[&str] = &[
    "mr",
    "xl",
    "sr",
    "modified",
    "prolonged",
    "release",
    "extended",
    "of",
    "a",
];
const VERBS: &[&str] = &[
    "take",
    "give",
    "swallow",
    "chew",
    "to",
    "then",
    "increasing",
    "increase",
    "reducing",
    "reduce",
];

/// Slots of the day: mentions of several distinct slots ("in the morning and at lunchtime")
/// mean as many administrations.
fn slot_of(w: &str) -> Option<u8> {
    Some(match w {
        "morning" | "mornings" | "breakfast" | "mane" => 0,
        "lunchtime" | "lunch" | "midday" | "noon" => 1,
        "afternoon" => 2,
        "evening" | "teatime" | "tea" => 3,
        "night" | "bedtime" | "nocte" => 4,
        _ => return None,
    })
}

/// Read the dose the text states. Either part is `None` when the text does not state it, or
/// states two different values.
pub fn stated_dose(instructions: &str) -> StatedDose {
    let t = tokens(instructions);
    let w = |k: usize| match t.get(k) {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let mut units: Vec<f64> = Vec::new();
    let mut freqs: Vec<u32> = Vec::new();
    let mut slots: Vec<u8> = Vec::new();
    let mut i = 0;
    while i < t.len() {
        // Units: a number followed (after qualifiers) by a dosage-unit noun, or a number right
        // after "take".
        if let Some((n, used)) = number_at(&t, i) {
            let mut j = i + used;
            while w(j).is_some_and(|x| UNIT_QUALIFIERS.contains(&x)) {
                j += 1;
            }
            // "take ONE", and "increasing to TWO" (a second dose makes the text ambiguous).
            let after_verb = i > 0 && w(i - 1).is_some_and(|x| VERBS.contains(&x));
            let noun = w(j).is_some_and(|x| UNIT_NOUNS.contains(&x));
            // "N times a day", "every N hours"
            if w(i + used) == Some("times") || w(i + used) == Some("x") {
                let per_day = matches!(w(i + used + 1), Some("a" | "per" | "each" | "every"))
                    && matches!(w(i + used + 2), Some("day"))
                    || matches!(w(i + used + 1), Some("daily" | "day"));
                if per_day && n.fract() == 0.0 && n >= 1.0 {
                    freqs.push(n as u32);
                    i += used + 2;
                    continue;
                }
            }
            if i > 0 && w(i - 1) == Some("every") && matches!(w(i + used), Some("hours" | "hrs")) {
                if n > 0.0 && (24.0 / n).fract() == 0.0 {
                    freqs.push((24.0 / n) as u32);
                }
                i += used + 1;
                continue;
            }
            if noun || (after_verb && !matches!(w(i + used), Some("mg" | "ml" | "hours"))) {
                units.push(n);
                i = if noun { j + 1 } else { i + used };
                continue;
            }
            i += used;
            continue;
        }
        let Some(word) = w(i) else {
            i += 1;
            continue;
        };
        let next = w(i + 1);
        let next2 = w(i + 2);
        let day_word = |x: Option<&str>| matches!(x, Some("day" | "daily"));
        let freq = match word {
            "once" if day_word(next) || matches!(next, Some("a" | "per" | "each")) => Some(1),
            "twice" if day_word(next) || matches!(next, Some("a" | "per" | "each")) => Some(2),
            "od" | "qd" | "om" => Some(1),
            "bd" | "bid" => Some(2),
            "tds" | "tid" => Some(3),
            "qds" | "qid" => Some(4),
            "daily" => Some(1),
            _ => None,
        };
        if let Some(f) = freq {
            freqs.push(f);
            // Skip "a day" / "daily" so that "daily" is not counted twice.
            i += match (next, next2) {
                (Some("a" | "per" | "each"), Some("day")) => 3,
                (Some("day" | "daily"), _) => 2,
                _ => 1,
            };
            continue;
        }
        if let Some(s) = slot_of(word)
            && !slots.contains(&s)
        {
            slots.push(s);
        }
        i += 1;
    }
    let single = |v: &[f64]| {
        let first = *v.first()?;
        v.iter().all(|x| (x - first).abs() < 1e-9).then_some(first)
    };
    let times = match (freqs.first(), slots.len()) {
        (Some(&f), _) if freqs.iter().all(|x| *x == f) => Some(f),
        (Some(_), _) => None,
        (None, 0) => None,
        (None, n) => Some(n as u32),
    };
    StatedDose {
        units: single(&units),
        times_per_day: times,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_directed_in_all_its_forms() {
        for text in [
            "as directed",
            "As Directed.",
            "use as directed",
            "take as directed",
            "as instructed",
            "Take as advised",
            "Use as directed by your specialist",
            "MDU",
            "M.D.U.",
            "m d u",
            "UD",
            "u.d.",
            "ut dictum",
            "as directed by the clinic",
            "Take as per instructions",
        ] {
            assert!(is_only_as_directed(text), "{text}");
        }
        for text in [
            "one as directed",
            "Take ONE capsule each morning",
            "Take one tablet as directed",
            "1 daily as directed",
            "Take two at night",
            "",
        ] {
            assert!(!is_only_as_directed(text), "{text}");
        }
    }

    fn sd(u: Option<f64>, t: Option<u32>) -> StatedDose {
        StatedDose {
            units: u,
            times_per_day: t,
        }
    }

    #[test]
    fn doses_stated_in_words_and_figures() {
        for (text, want) in [
            ("Take ONE capsule each morning", sd(Some(1.0), Some(1))),
            ("take TWO capsules in the morning", sd(Some(2.0), Some(1))),
            ("Take 1 tablet twice a day", sd(Some(1.0), Some(2))),
            ("one tablet three times daily", sd(Some(1.0), Some(3))),
            ("Take half a tablet at night", sd(Some(0.5), Some(1))),
            ("1/2 tab bd", sd(Some(0.5), Some(2))),
            ("one and a half tablets once a day", sd(Some(1.5), Some(1))),
            (
                "Take one in the morning and one at lunchtime",
                sd(Some(1.0), Some(2)),
            ),
            ("2 caps every 12 hours", sd(Some(2.0), Some(2))),
            ("Take 1 tablet daily", sd(Some(1.0), Some(1))),
            ("Take ONE each morning", sd(Some(1.0), Some(1))),
            ("36 mg each morning", sd(None, Some(1))),
            // Two different doses: none is stated.
            (
                "Take ONE capsule each morning, increasing to TWO after a week",
                sd(None, Some(1)),
            ),
            (
                "one tablet twice daily then three times daily",
                sd(Some(1.0), None),
            ),
            ("as directed", sd(None, None)),
            // Clock times are not slots: "not after 2pm" is no second dose.
            (
                "Take ONE tablet each morning, not after 2pm",
                sd(Some(1.0), Some(1)),
            ),
        ] {
            assert_eq!(stated_dose(text), want, "{text}");
        }
    }
}
