//! NHS charge exemption codes and the prescription charge as effective-dated data
//! (`data/nhs.json`, each row with its source). A code is judged on the dispensing date: a
//! code that is not in the table, or not in force on that date, is refused.

use jiff::civil::Date;
use serde::Deserialize;
use std::sync::OnceLock;

/// What an exemption code says about the patient's age, for the age-contradiction rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgeClaim {
    #[serde(rename = "under_16")]
    Under16,
    #[serde(rename = "16_to_18")]
    SixteenToEighteen,
    #[serde(rename = "60_or_over")]
    SixtyOrOver,
}

impl AgeClaim {
    /// Whether a patient of `age` can make this claim.
    pub fn holds_at(self, age: i32) -> bool {
        match self {
            AgeClaim::Under16 => age < 16,
            AgeClaim::SixteenToEighteen => (16..=18).contains(&age),
            AgeClaim::SixtyOrOver => age >= 60,
        }
    }
    pub fn describe(self) -> &'static str {
        match self {
            AgeClaim::Under16 => "under 16",
            AgeClaim::SixteenToEighteen => "aged 16 to 18 in full-time education",
            AgeClaim::SixtyOrOver => "aged 60 or over",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    pub code: String,
    pub meaning: String,
    pub valid_from: Option<Date>,
    pub valid_to: Option<Date>,
    pub confidence: String,
    pub source: String,
    #[serde(default)]
    pub age_claim: Option<AgeClaim>,
}

impl Exemption {
    pub fn in_force_on(&self, on: Date) -> bool {
        self.valid_from.is_none_or(|f| f <= on) && self.valid_to.is_none_or(|t| on <= t)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Charge {
    pub valid_from: Date,
    pub pence_per_item: i64,
    pub confidence: String,
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NhsTables {
    pub reviewed: Date,
    pub note: String,
    pub exemptions: Vec<Exemption>,
    /// Oldest first.
    pub charges: Vec<Charge>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExemptionError {
    #[error("is not an NHS prescription charge exemption code (e.g. 0001 = paid)")]
    Unknown,
    #[error("{code} is not in force on {on} (in force {window})")]
    NotInForce {
        code: String,
        on: Date,
        window: String,
    },
}

impl NhsTables {
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
    /// The tables shipped with this build.
    pub fn builtin() -> &'static NhsTables {
        static T: OnceLock<NhsTables> = OnceLock::new();
        T.get_or_init(|| {
            NhsTables::from_json(include_str!("../data/nhs.json"))
                .expect("data/nhs.json is checked by a unit test")
        })
    }
    pub fn exemption(&self, code: &str) -> Option<&Exemption> {
        self.exemptions.iter().find(|e| e.code == code)
    }
    /// The exemption `code` as claimed for a supply on `on` (the dispensing date).
    pub fn exemption_on(&self, code: &str, on: Date) -> Result<&Exemption, ExemptionError> {
        let e = self.exemption(code).ok_or(ExemptionError::Unknown)?;
        if e.in_force_on(on) {
            Ok(e)
        } else {
            let window = match (e.valid_from, e.valid_to) {
                (Some(f), Some(t)) => format!("from {f} to {t}"),
                (Some(f), None) => format!("from {f}"),
                (None, Some(t)) => format!("until {t}"),
                (None, None) => "always".into(),
            };
            Err(ExemptionError::NotInForce {
                code: code.into(),
                on,
                window,
            })
        }
    }
    /// The charge per item in pence on `on`, or `None` before the first row.
    pub fn charge_on(&self, on: Date) -> Option<i64> {
        self.charges
            .iter()
            .rev()
            .find(|c| c.valid_from <= on)
            .map(|c| c.pence_per_item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn the_shipped_table_is_complete_and_sourced() {
        let t = NhsTables::builtin();
        for c in 1..=16 {
            let code = format!("{c:04}");
            let e = t.exemption(&code).unwrap_or_else(|| panic!("{code}"));
            assert!(!e.source.is_empty() && !e.meaning.is_empty(), "{code}");
        }
        for c in 9003..=9016 {
            assert!(t.exemption(&c.to_string()).is_some(), "{c}");
        }
        assert!(
            t.exemption("0017").is_none(),
            "0017's meaning is unconfirmed"
        );
        assert!(t.exemption("0000").is_none());
        let mut codes: Vec<&str> = t.exemptions.iter().map(|e| e.code.as_str()).collect();
        codes.dedup();
        assert_eq!(codes.len(), t.exemptions.len(), "codes are unique");
        assert!(
            t.charges
                .windows(2)
                .all(|w| w[0].valid_from < w[1].valid_from)
        );
        assert_eq!(t.charge_on(date(2024, 4, 30)), Some(965));
        assert_eq!(t.charge_on(date(2024, 5, 1)), Some(990));
        assert_eq!(t.charge_on(date(2023, 3, 31)), None);
    }

    #[test]
    fn a_code_is_judged_on_the_dispensing_date() {
        let t = NhsTables::from_json(
            r#"{"reviewed":"2026-12-01","note":"","charges":[],"exemptions":[
              {"code":"0016","meaning":"UC","valid_from":"2027-01-01","valid_to":null,"confidence":"test","source":"test"},
              {"code":"0099","meaning":"old","valid_from":null,"valid_to":"2026-06-30","confidence":"test","source":"test"}]}"#,
        )
        .unwrap();
        assert!(matches!(
            t.exemption_on("0016", date(2026, 12, 31)),
            Err(ExemptionError::NotInForce { .. })
        ));
        assert!(t.exemption_on("0016", date(2027, 1, 1)).is_ok());
        assert!(t.exemption_on("0099", date(2026, 6, 30)).is_ok());
        assert!(t.exemption_on("0099", date(2026, 7, 1)).is_err());
        assert_eq!(
            t.exemption_on("1234", date(2026, 7, 1)),
            Err(ExemptionError::Unknown)
        );
        let msg = t
            .exemption_on("0016", date(2026, 12, 31))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("from 2027-01-01"), "{msg}");
    }
}
