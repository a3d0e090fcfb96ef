//! The one normaliser for names and addresses. Every rule and every store key that compares a
//! patient's name or address goes through here, so "Siân O'Brien, Flat 2, 10 High St." and
//! "SIAN OBRIEN / flat 2 10 high street" are the same person at the same address
//! (one person, one identity — fold case and accents, ignore punctuation and spacing,
//! expand common street abbreviations, compare every line and the postcode).

use deunicode::deunicode;

/// Lower-case ASCII words: accents and other letters transliterated ("Siân" → "sian",
/// "Müller" → "muller", "Łódź" → "lodz"), every run of anything but letters and digits a word
/// break.
pub fn words(s: &str) -> Vec<String> {
    deunicode(s)
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A name as compared across records: letters only, folded ("O'Brien-Smith" → "obriensmith").
pub fn name_key(s: &str) -> String {
    deunicode(s)
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A UK postcode as compared: upper case, no spaces ("m1 1ae" → "M11AE").
pub fn postcode_key(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Common abbreviations in UK street addresses, expanded so both spellings compare equal.
/// "St" is ambiguous (Street or Saint) but is expanded the same way on both sides, so equality
/// is unaffected.
const ABBREVIATIONS: &[(&str, &str)] = &[
    ("st", "street"),
    ("str", "street"),
    ("rd", "road"),
    ("ave", "avenue"),
    ("av", "avenue"),
    ("ln", "lane"),
    ("dr", "drive"),
    ("ct", "court"),
    ("crt", "court"),
    ("cl", "close"),
    ("cres", "crescent"),
    ("cresc", "crescent"),
    ("sq", "square"),
    ("pl", "place"),
    ("gdns", "gardens"),
    ("gr", "grove"),
    ("gro", "grove"),
    ("pk", "park"),
    ("pde", "parade"),
    ("terr", "terrace"),
    ("ter", "terrace"),
    ("hse", "house"),
    ("apt", "apartment"),
    ("flt", "flat"),
    ("bldg", "building"),
    ("mt", "mount"),
    ("wy", "way"),
];

fn expand(w: &str) -> &str {
    ABBREVIATIONS
        .iter()
        .find(|(a, _)| *a == w)
        .map_or(w, |(_, full)| full)
}

/// The whole address as compared: every line (abbreviations expanded, folded, spacing and
/// punctuation ignored) and the postcode. The town is left out: it varies in spelling
/// ("Gtr Manchester") while the postcode already places the address.
pub fn address_key<'a>(lines: impl IntoIterator<Item = &'a str>, postcode: &str) -> String {
    let mut out = String::new();
    for line in lines {
        for w in words(line) {
            out.push_str(expand(&w));
        }
    }
    out.push('|');
    out.push_str(&postcode_key(postcode));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_case_accents_and_punctuation() {
        assert_eq!(name_key("Siân"), name_key("SIAN"));
        assert_eq!(name_key("O'Brien-Smith"), "obriensmith");
        assert_eq!(name_key("Zoë"), "zoe");
        assert_eq!(name_key("Müller"), "muller");
        assert_ne!(name_key("Sian"), name_key("Sean"));
    }

    #[test]
    fn whole_addresses_compare_after_normalising() {
        let a = address_key(["Flat 2", "10 High St."], "m1 1ae");
        assert_eq!(a, address_key(["flat 2, 10 HIGH STREET"], "M1 1AE"));
        assert_eq!(a, address_key(["Flat 2 10 High Street"], "M11AE"));
        // Another flat in the same building is another address: every line counts.
        assert_ne!(a, address_key(["Flat 3", "10 High Street"], "M1 1AE"));
        assert_eq!(
            address_key(["1 Rue Âcre Rd"], "LS1 1AA"),
            address_key(["1 rue acre road"], "LS11AA")
        );
        assert_ne!(
            address_key(["10 High Street"], "M1 1AE"),
            address_key(["10 High Street"], "M1 1AF")
        );
    }
}
