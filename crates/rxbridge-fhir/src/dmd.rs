//! The dm+d table: which dm+d (SNOMED CT UK Drug Extension) concept names which formulary
//! product, each code with the source it was taken from. The data is `data/dmd.json`,
//! compiled into the binary. A code not in the table is never guessed from a display name.

use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The code system of dm+d concepts in FHIR.
pub const SNOMED: &str = "http://snomed.info/sct";

/// One dm+d code of a formulary product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmdCode {
    /// The SNOMED CT identifier (digits only).
    pub dmd: String,
    /// The formulary product code it names.
    pub product_code: String,
    /// `VMP`, `AMP`, `VMPP` or `AMPP`.
    pub concept: String,
    /// Where the code was taken from.
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DmdTable {
    pub version: String,
    pub note: String,
    pub codes: Vec<DmdCode>,
}

impl DmdTable {
    /// The table shipped in the binary.
    pub fn builtin() -> &'static DmdTable {
        static T: OnceLock<DmdTable> = OnceLock::new();
        T.get_or_init(|| {
            DmdTable::from_json(include_str!("../data/dmd.json"))
                .expect("data/dmd.json is valid (checked by the crate's tests)")
        })
    }

    /// Read a table, checking each code is a SNOMED CT identifier of a dm+d concept kind.
    pub fn from_json(text: &str) -> Result<DmdTable, String> {
        let t: DmdTable = serde_json::from_str(text).map_err(|e| e.to_string())?;
        for c in &t.codes {
            if !is_sctid(&c.dmd) {
                return Err(format!("{:?} is not a SNOMED CT identifier", c.dmd));
            }
            if !matches!(c.concept.as_str(), "VMP" | "AMP" | "VMPP" | "AMPP") {
                return Err(format!("{}: concept must be VMP, AMP, VMPP or AMPP", c.dmd));
            }
            if c.source.trim().is_empty() {
                return Err(format!("{}: a code needs its source", c.dmd));
            }
        }
        Ok(t)
    }

    /// The formulary product a dm+d code names.
    pub fn product_for(&self, dmd: &str) -> Option<&str> {
        self.codes
            .iter()
            .find(|c| c.dmd == dmd)
            .map(|c| c.product_code.as_str())
    }

    /// The codes of one product.
    pub fn codes_of<'a>(&'a self, product_code: &'a str) -> impl Iterator<Item = &'a DmdCode> {
        self.codes
            .iter()
            .filter(move |c| c.product_code == product_code)
    }
}

/// SNOMED CT identifiers: 6 to 18 digits, no leading zero.
fn is_sctid(s: &str) -> bool {
    (6..=18).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) && !s.starts_with('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rxbridge_domain::formulary::Formulary;

    #[test]
    fn the_builtin_table_is_valid_and_names_only_formulary_products() {
        let t = DmdTable::builtin();
        for c in &t.codes {
            assert!(
                Formulary::builtin().get(&c.product_code).is_some(),
                "{} names {}, which is not in the formulary",
                c.dmd,
                c.product_code
            );
        }
        let mut seen = std::collections::HashSet::new();
        assert!(
            t.codes.iter().all(|c| seen.insert(&c.dmd)),
            "a dm+d code twice"
        );
    }

    #[test]
    fn a_code_without_source_or_not_a_sctid_is_refused() {
        let bad = |code: &str, source: &str| {
            format!(
                r#"{{"version":"v","note":"n","codes":[{{"dmd":"{code}","product_code":"X","concept":"AMP","source":"{source}"}}]}}"#
            )
        };
        assert!(DmdTable::from_json(&bad("12345678", "")).is_err());
        assert!(DmdTable::from_json(&bad("12AB5678", "s")).is_err());
        assert!(DmdTable::from_json(&bad("012345678", "s")).is_err());
        assert!(DmdTable::from_json(&bad("12345678", "s")).is_ok());
    }
}
