//! The patient's history across clinics: early supply, duplicates and more than one stimulant
//! at once (GPhC distance-selling safeguards; NICE NG87).

use super::*;

pub(super) fn check(
    rx: &Prescription,
    ctx: &Context<'_>,
    facts: &Facts<'_>,
    out: &mut Vec<Finding>,
) {
    let stimulants_here: BTreeSet<&str> = facts
        .products
        .iter()
        .flatten()
        .filter(|p| p.is_stimulant())
        .map(|p| p.active_ingredient.as_str())
        .collect();
    let issued_day = epoch_day(rx.issued_on);
    // Per history entry once: its start and end as day numbers (cheap integer comparisons).
    let running: Vec<(&HistoryEntry, i64, i64)> = ctx
        .history
        .iter()
        .filter(|h| h.counts())
        .map(|h| {
            let start = epoch_day(h.start);
            (h, start, start + i64::from(h.days_supply))
        })
        .collect();
    // History is newest first: report the newest conflicting prescription per rule and item,
    // and how many more there are, so a long history gives one readable finding, not hundreds.
    for (i, (item, p)) in rx.items.iter().zip(&facts.products).enumerate() {
        let Some(p) = p else { continue };
        let (mut duplicate, mut early): (Option<Finding>, Option<Finding>) = (None, None);
        let (mut more_duplicates, mut more_early) = (0usize, 0usize);
        for &(h, start, end) in &running {
            if h.active_ingredient != p.active_ingredient || h.days_supply == 0 {
                continue;
            }
            let elapsed = issued_day - start;
            // Periods overlap, and less than the threshold of the earlier supply has elapsed
            // (a new course when the last is nearly used up is the normal monthly repeat).
            let overlaps = issued_day < end && elapsed > -i64::from(item.days_supply);
            if !overlaps {
                continue;
            }
            let pct = elapsed * 100 / i64::from(h.days_supply);
            if pct >= i64::from(ctx.thresholds.early_supply_elapsed_percent) {
                continue;
            }
            let other = if h.same_clinic {
                "this clinic"
            } else {
                "another clinic"
            };
            if h.product_code == item.product_code {
                if duplicate.is_some() {
                    more_duplicates += 1;
                    continue;
                }
                let ends = h
                    .start
                    .saturating_add(jiff::Span::new().days(i64::from(h.days_supply)));
                let mut f = finding(
                    DUPLICATE_PRESCRIPTION,
                    Some(i),
                    format!(
                        "Prescription {} from {other} already covers {} from {} for {} days (until {}); this one starts {}.",
                        h.prescription_id, p.name, h.start, h.days_supply, ends, rx.issued_on
                    ),
                );
                f.refs.push(h.prescription_id.clone());
                duplicate = Some(f);
            } else {
                if early.is_some() {
                    more_early += 1;
                    continue;
                }
                let mut f = finding(
                    EARLY_SUPPLY,
                    Some(i),
                    format!(
                        "An earlier supply of {} (prescription {} from {other}, {} days from {}) is only {}% elapsed ({} of {} days) on {}; the threshold is {}%.",
                        h.active_ingredient,
                        h.prescription_id,
                        h.days_supply,
                        h.start,
                        pct.max(0),
                        elapsed.max(0),
                        h.days_supply,
                        rx.issued_on,
                        ctx.thresholds.early_supply_elapsed_percent
                    ),
                );
                f.refs.push(h.prescription_id.clone());
                early = Some(f);
            }
        }
        for (f, more) in [(duplicate, more_duplicates), (early, more_early)] {
            if let Some(mut f) = f {
                if more > 0 {
                    f.message.push_str(&format!(
                        " {more} more earlier prescription(s) overlap as well."
                    ));
                }
                out.push(f);
            }
        }
    }
    let mut stimulants: BTreeSet<&str> = stimulants_here.clone();
    if !stimulants_here.is_empty() {
        for &(h, start, end) in &running {
            if start <= issued_day
                && issued_day < end
                && !stimulants.contains(h.active_ingredient.as_str())
                && ctx
                    .formulary
                    .get(&h.product_code)
                    .is_some_and(Product::is_stimulant)
            {
                stimulants.insert(h.active_ingredient.as_str());
            }
        }
    }
    if stimulants.len() > 1 {
        out.push(finding(
            MULTIPLE_STIMULANTS,
            None,
            format!(
                "The patient would have {} stimulants at once: {}.",
                stimulants.len(),
                stimulants.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
}
