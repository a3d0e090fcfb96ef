//! Per-item rules: the legal content of a Schedule 2/3 item (quantity in words and figures,
//! an explicit dose, no repeats — MDR 2001 regs 15-16) and the clinical checks on every item
//! (days of treatment computed from the dose, directions against the structured dose, the
//! licensed maximum dose and age range).

use super::*;
use crate::directions::stated_dose;

pub(super) fn legal(rx: &Prescription, facts: &Facts<'_>, out: &mut Vec<Finding>) {
    for (i, item) in rx.items.iter().enumerate() {
        if !facts.sch23(i) {
            continue;
        }
        let q = item.quantity.get();
        match (item.quantity_in_words.as_deref(), item.quantity_in_words_value) {
            (None, _) => out.push(finding(CD_QUANTITY_WORDS_MISSING, Some(i), format!(
                "Quantity {q} is given in figures only; the pharmacist may add it in words (\"{}\") under MDR 2001 reg 16(1A) once satisfied it is what the prescriber intended, recording the amendment.",
                crate::quantity::to_words(q)))),
            (Some(w), Some(v)) if v != q => out.push(finding(CD_QUANTITY_WORDS_MISMATCH, Some(i), format!(
                "The quantity in words \"{w}\" states {v} but the figures state {q}; the prescriber must correct it."))),
            (Some(w), Some(_)) if !item.quantity_figures_given => out.push(finding(CD_QUANTITY_FIGURES_MISSING, Some(i), format!(
                "The quantity is given in words only (\"{w}\" = {q}); the pharmacist may add the figures under MDR 2001 reg 16(1A), recording the amendment."))),
            (Some(w), Some(_)) => {
                if let Some(fixed) = &item.quantity_words_corrected {
                    out.push(finding(CD_QUANTITY_WORDS_MISSPELT, Some(i), format!(
                        "The quantity in words \"{w}\" has a spelling mistake (\"{fixed}\" = {q}, as the figures); the pharmacist may amend it under MDR 2001 reg 16(1A)(a), recording the amendment.")));
                }
            }
            (Some(_), None) => {}
        }
        if is_only_as_directed(&item.instructions) {
            out.push(finding(CD_DOSE_NOT_EXPLICIT, Some(i), format!(
                "The instructions \"{}\" do not state a dose; write e.g. \"Take ONE capsule each morning\".",
                item.instructions)));
        }
        if item.repeats > 0 || item.repeatable {
            let what = if item.repeats > 0 {
                format!("{} repeat(s) requested", item.repeats)
            } else {
                "Marked repeatable".to_string()
            };
            out.push(finding(
                CD_REPEAT_NOT_ALLOWED,
                Some(i),
                format!("{what}; Schedule 2/3 items cannot be repeat-dispensed."),
            ));
        }
    }
}

/// Daily mg of one ingredient across items, the highest applicable maximum, and the item count.
type IngredientTotal = (f64, Option<(f64, DoseBasis)>, usize);

pub(super) fn clinical(
    rx: &Prescription,
    ctx: &Context<'_>,
    facts: &Facts<'_>,
    out: &mut Vec<Finding>,
) {
    let age_today = facts.age_today;
    for (i, (item, p)) in rx.items.iter().zip(&facts.products).enumerate() {
        let Some(p) = p else { continue };
        let days = item.dose.days_of_treatment(item.quantity.get());
        if p.schedule.has_28_day_validity()
            && days > f64::from(ctx.thresholds.cd_max_days_supply) + 1e-9
        {
            out.push(finding(
                CD_OVER_30_DAYS,
                Some(i),
                format!(
                    "{} {} at {} x {} a day is {} days' treatment of a controlled drug; good practice is at most {} days.",
                    item.quantity.get(),
                    p.dose_unit_plural(),
                    fmt_num(item.dose.units),
                    item.dose.times_per_day,
                    fmt_days(days),
                    ctx.thresholds.cd_max_days_supply
                ),
            ));
        }
        if let Some(declared) = item.declared_days_supply
            && (f64::from(declared) - days).abs() >= 1.0
        {
            out.push(finding(
                DAYS_SUPPLY_MISMATCH,
                Some(i),
                format!(
                    "{declared} days' supply is declared, but {} {} at {} x {} a day last {} days.",
                    item.quantity.get(),
                    p.dose_unit_plural(),
                    fmt_num(item.dose.units),
                    item.dose.times_per_day,
                    fmt_days(days)
                ),
            ));
        }
        let stated = stated_dose(&item.instructions);
        let mut differs = Vec::new();
        if let Some(u) = stated.units
            && (u - item.dose.units).abs() > 1e-9
        {
            differs.push(format!(
                "{} {} at a time (the dose says {})",
                fmt_num(u),
                p.dose_unit_plural(),
                fmt_num(item.dose.units)
            ));
        }
        if let Some(t) = stated.times_per_day
            && t != item.dose.times_per_day
        {
            differs.push(format!(
                "{t} time(s) a day (the dose says {})",
                item.dose.times_per_day
            ));
        }
        if !differs.is_empty() {
            out.push(finding(
                DIRECTIONS_CONTRADICT_DOSE,
                Some(i),
                format!(
                    "The directions \"{}\" state {}; confirm the intended dose with the prescriber.",
                    item.instructions,
                    differs.join(" and ")
                ),
            ));
        }
        if !p.schedule.is_sch2_or_3() && item.repeatable && item.repeats == 0 {
            out.push(finding(
                POM_REPEATS_UNSTATED,
                Some(i),
                format!(
                    "{} is marked repeatable without saying how often: it may be dispensed at most {} times in all.",
                    p.name,
                    item.dispensings_allowed()
                ),
            ));
        }
        let daily = item.dose.units_per_day() * p.strength_mg;
        if let Some((max, basis)) = p.max_daily_dose_for_age(age_today)
            && daily > max + 1e-9
        {
            out.push(finding(DOSE_ABOVE_LICENSED_MAX, Some(i), format!(
                "{} x {} a day x {} mg = {} mg a day, above the licensed maximum of {} mg for {} (patient aged {}).",
                fmt_num(item.dose.units), item.dose.times_per_day, fmt_num(p.strength_mg), fmt_num(daily), fmt_num(max),
                basis_text(basis), age_today)));
        }
        let below = p.licensed_min_age.is_some_and(|m| age_today < m as i32);
        let above = p.licensed_max_age.is_some_and(|m| age_today > m as i32);
        if below || above {
            out.push(finding(
                AGE_OUTSIDE_LICENCE,
                Some(i),
                format!(
                    "The patient is {} years old; {} is licensed for ages {}.",
                    age_today,
                    p.name,
                    age_range(p.licensed_min_age, p.licensed_max_age)
                ),
            ));
        }
    }
    // Same ingredient on several items: check the combined daily dose too.
    let mut by_ingredient: BTreeMap<&str, IngredientTotal> = BTreeMap::new();
    for (item, p) in rx.items.iter().zip(&facts.products) {
        let Some(p) = p else { continue };
        let e = by_ingredient
            .entry(&p.active_ingredient)
            .or_insert((0.0, None, 0));
        e.0 += item.dose.units_per_day() * p.strength_mg;
        e.2 += 1;
        let m = p.max_daily_dose_for_age(age_today);
        e.1 = match (e.1, m) {
            (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
    }
    for (ing, (total, max, n)) in &by_ingredient {
        if *n > 1
            && let Some((max, basis)) = max
            && *total > max + 1e-9
        {
            out.push(finding(DOSE_ABOVE_LICENSED_MAX, None, format!(
                "The items together give {} mg of {ing} a day, above the licensed maximum of {} mg for {}.",
                fmt_num(*total), fmt_num(*max), basis_text(*basis))));
        }
    }
}

/// Days to one decimal place at most ("28", "30.5").
fn fmt_days(d: f64) -> String {
    fmt_num((d * 10.0).round() / 10.0)
}
