//! The password policy for staff accounts, after NIST SP 800-63B §5.1.1.2 (memorized
//! secrets): a minimum length rather than composition rules, and a check against values known
//! to be commonly used, expected or compromised — a list of breached passwords, repetitive
//! strings and context-specific words (here the account's email). The list ships in the binary
//! (`data/common-passwords.txt`, sources and licences in `data/README.md`); nothing is fetched.
//! Every refusal says which rule it broke, so the form can show it.

use std::collections::HashSet;
use std::sync::LazyLock;

/// SP 800-63B asks for at least 8; 12 because these accounts approve controlled drugs.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// SP 800-63B: allow at least 64. The cap keeps argon2 work per sign-in bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

static COMMON: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../data/common-passwords.txt")
        .lines()
        .filter(|l| !l.is_empty())
        .collect()
});

/// How many passwords the shipped list holds.
pub fn common_list_len() -> usize {
    COMMON.len()
}

/// `Ok` when `password` may be set for the account with `email`; otherwise why not, in words
/// for the person choosing it.
pub fn check(password: &str, email: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(format!(
            "The new password needs at least {MIN_PASSWORD_CHARS} characters (a few unrelated words make a good one)."
        ));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(format!(
            "The new password can have at most {MAX_PASSWORD_CHARS} characters."
        ));
    }
    let lower = password.to_lowercase();
    if repeats_a_short_unit(&lower) {
        return Err(
            "The new password is one character (or a few) repeated: choose something less predictable."
                .into(),
        );
    }
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if !email.is_empty()
        && (lower.contains(&email) || (local.chars().count() >= 3 && lower.contains(local)))
    {
        return Err(
            "The new password must not contain your email address or its name part.".into(),
        );
    }
    if COMMON.contains(lower.as_str()) {
        return Err(
            "The new password is on a list of common or breached passwords: choose another.".into(),
        );
    }
    // "password123456", "qwerty2024!!": a listed password with digits or symbols appended.
    let stem = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    if stem.chars().count() >= 4 && stem != lower && COMMON.contains(stem) {
        return Err(
            "The new password is a common or breached password with digits or symbols added: choose another."
                .into(),
        );
    }
    Ok(())
}

/// True when `s` is one unit of at most four characters repeated ("aaaa…", "abab…").
fn repeats_a_short_unit(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    (1..=4).any(|unit| {
        chars.len() > unit
            && chars.len().is_multiple_of(unit)
            && chars.chunks(unit).all(|c| c == &chars[..unit])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "Jo.Bloggs@pharmacy.example";

    #[test]
    fn the_list_is_shipped_and_large() {
        assert!(common_list_len() > 49_000, "{}", common_list_len());
    }

    #[test]
    fn refusals_name_their_rule() {
        for (pw, why) in [
            ("short", "at least 12"),
            ("aaaaaaaaaaaa", "repeated"),
            ("ZZZZZZZZZZZZZZZZ", "repeated"),
            ("abababababab", "repeated"),
            ("jo.bloggs@pharmacy.example", "email"),
            ("my name is jo.bloggs, ok?", "email"),
            ("JO.BLOGGS-is-my-password", "email"),
            ("qwertyuiop123", "list of common"),
            ("1q2w3e4r5t6y", "list of common"),
            ("Password1234", "list of common"),
            ("iloveyou1234", "common or breached password with digits"),
            ("dragon123456!", "common or breached password with digits"),
        ] {
            let e = check(pw, EMAIL).unwrap_err();
            assert!(e.contains(why), "{pw}: {e}");
        }
        assert!(
            check(&"xy".repeat(150), EMAIL)
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn good_passphrases_pass() {
        for pw in [
            "a much better passphrase",
            "correct horse battery staple",
            "Lanterns over 7 quiet harbours",
            "ümlaut übung über alles",
        ] {
            assert_eq!(check(pw, EMAIL), Ok(()), "{pw}");
        }
    }
}
