//! The items: product, quantity in figures and words, dose, directions, days, repeats.

use super::fields::*;
use super::tree::Value;
use rxbridge_domain::formulary::Formulary;
use rxbridge_domain::prescription::{Dose, Item};
use rxbridge_domain::quantity::{MAX_QUANTITY, Quantity, read_quantity_words};
use std::borrow::Cow;

pub(super) fn dose(v: &Value, at: &str, e: &mut Errs) -> Option<Dose> {
    let m = object(v, at, &["units", "times_per_day"], e)?;
    let units = match field(m, at, "units", true, e) {
        Some(Value::Number(n)) => match n.as_f64() {
            // Quarter units at the finest (a quarter or half tablet).
            Some(u) if u > 0.0 && u <= 20.0 && (u * 4.0).fract() == 0.0 => Some(u),
            _ => {
                e.push(
                    &ptr(at, "units"),
                    "out_of_range",
                    "must be more than 0 and at most 20, in steps of 0.25",
                );
                None
            }
        },
        Some(other) => {
            e.push(
                &ptr(at, "units"),
                "wrong_type",
                format!("must be a number, not {}", type_name(other)),
            );
            None
        }
        None => None,
    };
    let times = integer(m, at, "times_per_day", true, 1, 12, e);
    Some(Dose {
        units: units?,
        times_per_day: times? as u32,
    })
}

pub(super) fn item(v: &Value, i: usize, formulary: &Formulary, e: &mut Errs) -> Option<Item> {
    // A prescription has at most MAX_ITEMS items: their pointers need no formatting.
    const AT: [(&str, &str); 4] = [
        ("/items/0", "/items/0/dose"),
        ("/items/1", "/items/1/dose"),
        ("/items/2", "/items/2/dose"),
        ("/items/3", "/items/3/dose"),
    ];
    let (at, dose_at) = match AT.get(i) {
        Some((a, d)) => (Cow::Borrowed(*a), Cow::Borrowed(*d)),
        None => (
            Cow::Owned(format!("/items/{i}")),
            Cow::Owned(format!("/items/{i}/dose")),
        ),
    };
    let m = object(
        v,
        &at,
        &[
            "product_code",
            "quantity",
            "quantity_in_words",
            "dose",
            "instructions",
            "days_supply",
            "repeats",
            "repeatable",
        ],
        e,
    )?;
    let code = text(m, &at, "product_code", true, 64, e).and_then(|c| {
        if formulary.get(c).is_some() {
            Some(c)
        } else {
            e.push(
                &ptr(&at, "product_code"),
                "unknown_product",
                format!("\"{c}\" is not in the formulary (GET /v1/formulary)"),
            );
            None
        }
    });
    let words = text(m, &at, "quantity_in_words", false, 200, e);
    // The words as a pharmacist reads them: a minor spelling slip is read (and flagged for
    // amendment by the rules); words that state no number are a contract error.
    let reading = match &words {
        Some(w) => match read_quantity_words(w) {
            Ok(r) => Some(Some(r)),
            Err(err) => {
                e.push(
                    &ptr(&at, "quantity_in_words"),
                    "invalid_quantity_words",
                    err.to_string(),
                );
                None
            }
        },
        None => Some(None),
    };
    let words_ok = m.get("quantity_in_words").is_none_or(Value::is_null) || words.is_some();
    let figures_given = !m.get("quantity").is_none_or(Value::is_null);
    // The figures may be left out when the words state the quantity (MDR 2001 reg 16(1A): the
    // pharmacist may add them); one of the two is required.
    let quantity = if figures_given || !words_ok || words.is_none() {
        integer(m, &at, "quantity", true, 1, u64::from(MAX_QUANTITY), e)
            .and_then(|q| Quantity::new(q as u32).ok())
    } else {
        match reading.clone().flatten().map(|r| Quantity::new(r.value)) {
            Some(Ok(q)) => Some(q),
            Some(Err(err)) => {
                e.push(
                    &ptr(&at, "quantity_in_words"),
                    "out_of_range",
                    format!("states a quantity that {err}"),
                );
                None
            }
            None => None,
        }
    };
    let d = field(m, &at, "dose", true, e).and_then(|d| dose(d, &dose_at, e));
    let instructions = text(m, &at, "instructions", true, 500, e);
    let days = integer(m, &at, "days_supply", false, 1, 366, e);
    let days_given_ok = m.get("days_supply").is_none_or(Value::is_null) || days.is_some();
    let repeats = integer(m, &at, "repeats", false, 0, 12, e);
    let repeats_ok = m.get("repeats").is_none_or(Value::is_null) || repeats.is_some();
    let repeatable = boolean(m, &at, "repeatable", false, e);
    let repeatable_ok = m.get("repeatable").is_none_or(Value::is_null) || repeatable.is_some();
    let (quantity, d) = (quantity?, d?);
    // Days of treatment from the dose, whatever is declared: whole days, rounded up.
    let days_supply = d.days_of_treatment(quantity.get()).ceil().clamp(1.0, 366.0) as u32;
    if !(words_ok && days_given_ok && repeats_ok && repeatable_ok) {
        return None;
    }
    let reading = reading?;
    Some(Item {
        product_code: code?.to_string(),
        quantity,
        quantity_figures_given: figures_given,
        quantity_in_words: words.map(str::to_string),
        quantity_in_words_value: reading.as_ref().map(|r| r.value),
        quantity_words_corrected: reading.and_then(|r| r.corrected),
        dose: d,
        instructions: instructions?.to_string(),
        days_supply,
        declared_days_supply: days.map(|n| n as u32),
        repeats: repeats.unwrap_or(0) as u32,
        repeatable: repeatable.unwrap_or(false) || repeats.is_some_and(|r| r > 0),
    })
}
