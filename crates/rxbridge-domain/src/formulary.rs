//! The formulary: the ADHD products a prescription may name, with their legal schedule,
//! licensed ages and licensed maximum daily doses. The data is `data/formulary.json`, compiled
//! into the binary; each entry cites its source and a confidence (`certain` / `likely` /
//! `unsure`, as their sources allow).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Legal category under MDR 2001 / HMR 2012.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Schedule {
    #[serde(rename = "CD2")]
    Cd2,
    #[serde(rename = "CD3")]
    Cd3,
    #[serde(rename = "CD4-1")]
    Cd4Part1,
    #[serde(rename = "CD4-2")]
    Cd4Part2,
    #[serde(rename = "CD5")]
    Cd5,
    #[serde(rename = "POM")]
    Pom,
}

impl Schedule {
    /// Schedules 2 and 3: full prescription-writing requirements (MDR 2001 reg 15), no repeats,
    /// private prescriptions on FP10PCD.
    pub fn is_sch2_or_3(self) -> bool {
        matches!(self, Schedule::Cd2 | Schedule::Cd3)
    }
    /// Schedules 2, 3 and 4: 28-day validity (MDR 2001 reg 16(1)(e) and HMR 2012 reg 217).
    pub fn has_28_day_validity(self) -> bool {
        matches!(
            self,
            Schedule::Cd2 | Schedule::Cd3 | Schedule::Cd4Part1 | Schedule::Cd4Part2
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Schedule::Cd2 => "CD2",
            Schedule::Cd3 => "CD3",
            Schedule::Cd4Part1 => "CD4-1",
            Schedule::Cd4Part2 => "CD4-2",
            Schedule::Cd5 => "CD5",
            Schedule::Pom => "POM",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MaxDailyDose {
    pub child: Option<f64>,
    pub adult: Option<f64>,
}

/// A narrower maximum for an age band (e.g. guanfacine 6–12: 4 mg, 13–17: 7 mg).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DoseBand {
    pub min_age: u32,
    pub max_age: u32,
    pub max_mg: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Product {
    pub code: String,
    pub name: String,
    pub brand: Option<String>,
    pub active_ingredient: String,
    pub form: String,
    /// What one dosage unit is called ("tablet", "capsule").
    pub dose_unit: String,
    pub strength_mg: f64,
    pub schedule: Schedule,
    pub licensed_min_age: Option<u32>,
    pub licensed_max_age: Option<u32>,
    pub max_daily_dose_mg: MaxDailyDose,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub max_daily_dose_bands: Vec<DoseBand>,
    /// Illustrative private price per dosage unit, in pence.
    pub unit_price_pence: i64,
    pub source: String,
    pub confidence: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// Whose licensed maximum applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoseBasis {
    Band { min_age: u32, max_age: u32 },
    Child,
    Adult,
}

impl Product {
    /// The dosage unit in the plural ("tablets", "capsules"), for messages.
    pub fn dose_unit_plural(&self) -> String {
        if self.dose_unit.ends_with('s') || self.dose_unit == "ml" {
            self.dose_unit.clone()
        } else {
            format!("{}s", self.dose_unit)
        }
    }
    pub fn is_stimulant(&self) -> bool {
        matches!(
            self.active_ingredient.as_str(),
            "methylphenidate" | "lisdexamfetamine" | "dexamfetamine"
        )
    }
    /// The licensed maximum daily dose for a patient of `age` years, and which band it comes
    /// from; `None` where the source gives none (then no dose check is made).
    pub fn max_daily_dose_for_age(&self, age: i32) -> Option<(f64, DoseBasis)> {
        let age_u = age.max(0) as u32;
        if let Some(b) = self
            .max_daily_dose_bands
            .iter()
            .find(|b| (b.min_age..=b.max_age).contains(&age_u))
        {
            return Some((
                b.max_mg,
                DoseBasis::Band {
                    min_age: b.min_age,
                    max_age: b.max_age,
                },
            ));
        }
        if age < 18 {
            self.max_daily_dose_mg.child.map(|m| (m, DoseBasis::Child))
        } else {
            self.max_daily_dose_mg.adult.map(|m| (m, DoseBasis::Adult))
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Formulary {
    pub version: String,
    pub products: Vec<Product>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl Formulary {
    /// Parse a formulary document (the shape of `data/formulary.json`).
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let mut f: Formulary = serde_json::from_str(json)?;
        f.index = f
            .products
            .iter()
            .enumerate()
            .map(|(i, p)| (p.code.clone(), i))
            .collect();
        Ok(f)
    }
    /// The formulary shipped with this build.
    pub fn builtin() -> &'static Formulary {
        static F: OnceLock<Formulary> = OnceLock::new();
        F.get_or_init(|| {
            Formulary::from_json(include_str!("../data/formulary.json"))
                .expect("data/formulary.json is valid (checked by tests)")
        })
    }
    pub fn get(&self, code: &str) -> Option<&Product> {
        self.index.get(code).map(|i| &self.products[*i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_formulary_is_complete_and_consistent() {
        let f = Formulary::builtin();
        assert!(f.products.len() >= 40);
        let mut codes = std::collections::HashSet::new();
        for p in &f.products {
            assert!(codes.insert(&p.code), "duplicate code {}", p.code);
            assert!(!p.source.is_empty(), "{} has no source", p.code);
            assert!(["certain", "likely", "unsure"].contains(&p.confidence.as_str()));
            assert!(p.strength_mg > 0.0);
            assert!(p.unit_price_pence > 0);
            // MDR 2001 Sch 2: the stimulants are Schedule 2; atomoxetine and guanfacine are POM.
            if p.is_stimulant() {
                assert_eq!(p.schedule, Schedule::Cd2, "{}", p.code);
            } else {
                assert_eq!(p.schedule, Schedule::Pom, "{}", p.code);
            }
        }
        for ing in [
            "lisdexamfetamine",
            "methylphenidate",
            "dexamfetamine",
            "atomoxetine",
            "guanfacine",
        ] {
            assert!(
                f.products.iter().any(|p| p.active_ingredient == ing),
                "{ing}"
            );
        }
        assert_eq!(
            f.get("CONCERTA-XL-18").unwrap().max_daily_dose_mg.adult,
            Some(72.0)
        );
    }

    #[test]
    fn dose_bands() {
        let g = Formulary::builtin().get("INTUNIV-4").unwrap();
        assert_eq!(g.max_daily_dose_for_age(12).unwrap().0, 4.0);
        assert_eq!(g.max_daily_dose_for_age(13).unwrap().0, 7.0);
        let c = Formulary::builtin().get("CONCERTA-XL-36").unwrap();
        assert_eq!(c.max_daily_dose_for_age(17).unwrap().0, 54.0);
        assert_eq!(c.max_daily_dose_for_age(18).unwrap().0, 72.0);
        let m = Formulary::builtin().get("MEDIKINET-XL-10").unwrap();
        assert_eq!(m.max_daily_dose_for_age(30), None);
    }
}
