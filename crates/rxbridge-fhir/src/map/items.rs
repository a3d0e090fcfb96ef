//! The items: one per MedicationRequest, product by dm+d code, quantity, quantity in words,
//! dose, directions, days and repeats.

use super::Ctx;
use crate::dmd::{DmdTable, SNOMED};
use crate::model::*;
use rxbridge_domain::directions::stated_dose;
use serde_json::{Map, Value, json};

const CONTROLLED_DRUG: &str = "https://fhir.nhs.uk/StructureDefinition/Extension-DM-ControlledDrug";

pub(super) fn item_of(
    c: &mut Ctx,
    dmd: &DmdTable,
    k: usize,
    i: usize,
    mr: &MedicationRequest,
) -> Value {
    let at = format!("Bundle.entry[{i}].resource");
    let base = format!("/items/{k}");
    c.path(&base, at.clone());
    let mut v = Map::new();
    // The product, by its dm+d code.
    let med = mr.medication_codeable_concept.as_ref();
    let coding = med.and_then(|m| {
        m.coding
            .iter()
            .position(|cd| cd.system.as_deref() == Some(SNOMED))
    });
    match (med, coding) {
        (Some(m), Some(j)) => {
            let cd = &m.coding[j];
            let e = format!("{at}.medicationCodeableConcept.coding[{j}].code");
            c.path(&format!("{base}/product_code"), e.clone());
            match cd.code.as_deref().and_then(|code| dmd.product_for(code)) {
                Some(product) => {
                    v.insert("product_code".into(), json!(product));
                }
                None => c.issue(e, "code-invalid", "unknown_product", format!(
                    "dm+d code {} ({}) is not a formulary product; GET /v1/formulary lists each product's dm+d codes",
                    cd.code.as_deref().unwrap_or("(none)"),
                    cd.display.as_deref().unwrap_or("no display"),
                )),
            }
        }
        _ => {
            let e = if med.is_some() {
                format!("{at}.medicationCodeableConcept")
            } else {
                at.clone()
            };
            c.issue(
                e,
                "required",
                "required",
                "medicationCodeableConcept must carry a dm+d code (system http://snomed.info/sct)",
            );
        }
    }
    let disp = mr.dispense_request.clone().unwrap_or_default();
    let dat = format!("{at}.dispenseRequest");
    if let Some(q) = disp.quantity.as_ref().and_then(|q| q.value) {
        v.insert("quantity".into(), number(q));
        c.path(&format!("{base}/quantity"), format!("{dat}.quantity.value"));
    } else {
        c.path(
            &format!("{base}/quantity"),
            if mr.dispense_request.is_some() {
                dat.clone()
            } else {
                at.clone()
            },
        );
    }
    // Quantity in words: the controlled-drug extension's quantityWords.
    let words = mr.extension.iter().enumerate().find_map(|(e, x)| {
        let (s, w) = (x.url == CONTROLLED_DRUG).then(|| {
            x.extension
                .iter()
                .enumerate()
                .find(|(_, w)| w.url == "quantityWords")
        })??;
        Some((e, s, w.value_string.clone()))
    });
    if let Some((e, s, w)) = words {
        v.insert("quantity_in_words".into(), json!(w));
        c.path(
            &format!("{base}/quantity_in_words"),
            format!("{at}.extension[{e}].extension[{s}].valueString"),
        );
    }
    dose_of(c, &mut v, &base, &at, mr.dosage_instruction.first());
    if let Some(d) = disp.expected_supply_duration.as_ref().and_then(|d| d.value) {
        v.insert("days_supply".into(), number(d));
        c.path(
            &format!("{base}/days_supply"),
            format!("{dat}.expectedSupplyDuration.value"),
        );
    }
    if let Some(r) = disp.number_of_repeats_allowed {
        v.insert("repeats".into(), json!(r));
        c.path(
            &format!("{base}/repeats"),
            format!("{dat}.numberOfRepeatsAllowed"),
        );
    }
    Value::Object(v)
}

/// The dose: units per administration from `doseAndRate` when it counts dosage units (not a
/// mass or volume), else as the text states it; times a day from `timing.repeat` when daily,
/// else as the text states it. What neither states is left out (the contract says so).
fn dose_of(c: &mut Ctx, v: &mut Map<String, Value>, base: &str, at: &str, d: Option<&Dosage>) {
    let Some(d) = d else {
        c.path(&format!("{base}/dose"), at.to_string());
        c.path(&format!("{base}/instructions"), at.to_string());
        return;
    };
    let dat = format!("{at}.dosageInstruction[0]");
    let text_at = if d.text.is_some() {
        format!("{dat}.text")
    } else {
        dat.clone()
    };
    c.path(&format!("{base}/dose"), dat.clone());
    c.path(&format!("{base}/instructions"), text_at.clone());
    v.insert("instructions".into(), json!(d.text));
    let stated = d.text.as_deref().map(stated_dose).unwrap_or_default();
    let mut dose = Map::new();
    let counted = d
        .dose_and_rate
        .first()
        .and_then(|r| r.dose_quantity.as_ref())
        .filter(|q| {
            !matches!(
                q.code.as_deref(),
                Some("mg" | "g" | "ug" | "ng" | "mL" | "ml" | "L" | "[iU]")
            )
        });
    if let Some(u) = counted.and_then(|q| q.value) {
        dose.insert("units".into(), number(u));
        c.path(
            &format!("{base}/dose/units"),
            format!("{dat}.doseAndRate[0].doseQuantity.value"),
        );
    } else if let Some(u) = stated.units {
        dose.insert("units".into(), number(u));
        c.path(&format!("{base}/dose/units"), text_at.clone());
    } else {
        c.path(&format!("{base}/dose/units"), text_at.clone());
    }
    let daily = d
        .timing
        .as_ref()
        .and_then(|t| t.repeat.as_ref())
        .filter(|r| r.period_unit.as_deref() == Some("d") && r.period == Some(1.0));
    if let Some(f) = daily.and_then(|r| r.frequency) {
        dose.insert("times_per_day".into(), json!(f));
        c.path(
            &format!("{base}/dose/times_per_day"),
            format!("{dat}.timing.repeat.frequency"),
        );
    } else if let Some(t) = stated.times_per_day {
        dose.insert("times_per_day".into(), json!(t));
        c.path(&format!("{base}/dose/times_per_day"), text_at);
    } else {
        c.path(&format!("{base}/dose/times_per_day"), text_at);
    }
    v.insert("dose".into(), Value::Object(dose));
}

/// A whole number as a JSON integer (the contract wants integers where FHIR has decimals).
pub(super) fn number(x: f64) -> Value {
    if x.fract() == 0.0 && (0.0..1e15).contains(&x) {
        json!(x as u64)
    } else {
        json!(x)
    }
}
