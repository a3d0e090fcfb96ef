//! Parse + validate the example payload, and evaluate the compliance rules on it.
//! Run: cargo bench -p rxbridge-http --bench validate

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rxbridge_domain::compliance::{Context, IdentitySignals, Thresholds, evaluate};
use rxbridge_domain::formulary::Formulary;
use rxbridge_http::contract::parse_prescription;

fn bench(c: &mut Criterion) {
    let today = jiff::civil::date(2026, 11, 26);
    let body = rxbridge_http::schema::example_submission();
    let text = serde_json::to_vec(&body).unwrap();
    let formulary = Formulary::builtin();
    c.bench_function("json_parse+contract_validate", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(&text)).unwrap();
            parse_prescription(&v, today, formulary).unwrap()
        })
    });
    let invalid = rxbridge_http::schema::example_invalid_submission();
    c.bench_function("contract_validate_invalid(3 errors)", |b| {
        b.iter(|| parse_prescription(black_box(&invalid), today, formulary).unwrap_err())
    });
    let rx = parse_prescription(&body, today, formulary).unwrap();
    let t = Thresholds::default();
    c.bench_function("compliance_rules(no history)", |b| {
        b.iter(|| {
            evaluate(
                black_box(&rx),
                &Context {
                    today,
                    formulary,
                    thresholds: &t,
                    history: &[],
                    identity: IdentitySignals::default(),
                    signature: Default::default(),
                },
            )
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
