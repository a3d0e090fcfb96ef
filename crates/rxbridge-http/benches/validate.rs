//! Parse + validate the shared bench payloads (`bench/payloads`, the same bytes the Zod peer in
//! `bench/zod` times), and evaluate the compliance rules on the valid one.
//! Run: cargo bench -p rxbridge-http --bench validate (`bench/validate.sh` runs it beside Zod
//! and prints the ratios).

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use rxbridge_domain::compliance::{Context, IdentitySignals, Thresholds, evaluate};
use rxbridge_domain::formulary::Formulary;
use rxbridge_http::contract::{parse_prescription, parse_prescription_bytes};

/// The `rxbridge` binary's allocator: the figures are the service's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const VALID: &[u8] = include_bytes!("../../../bench/payloads/valid.json");
const INVALID: &[u8] = include_bytes!("../../../bench/payloads/invalid.json");

fn bench(c: &mut Criterion) {
    let today = jiff::civil::date(2026, 11, 26);
    let formulary = Formulary::builtin();
    // Bytes in, prescription or every error out: the fast path, and the collecting parser when
    // that does not accept the body.
    c.bench_function("json_parse+contract_validate", |b| {
        b.iter(|| parse_prescription_bytes(black_box(VALID), today, formulary).unwrap())
    });
    c.bench_function("json_parse+contract_validate_invalid(3 errors)", |b| {
        b.iter(|| parse_prescription_bytes(black_box(INVALID), today, formulary).unwrap_err())
    });
    // The floor under any serde reading of the body: scanning it as JSON, building nothing.
    c.bench_function("json_scan_only(IgnoredAny)", |b| {
        b.iter(|| {
            let text = std::str::from_utf8(black_box(VALID)).unwrap();
            serde_json::from_str::<serde::de::IgnoredAny>(text).unwrap()
        })
    });
    // The collecting parser alone on the valid body (what every body took before the fast path).
    c.bench_function("json_parse+collecting_parser", |b| {
        b.iter(|| {
            let v: serde_json::Value = serde_json::from_slice(black_box(VALID)).unwrap();
            parse_prescription(&v, today, formulary).unwrap()
        })
    });
    let invalid: serde_json::Value = serde_json::from_slice(INVALID).unwrap();
    c.bench_function("contract_validate_invalid(3 errors)", |b| {
        b.iter(|| parse_prescription(black_box(&invalid), today, formulary).unwrap_err())
    });
    let body: serde_json::Value = serde_json::from_slice(VALID).unwrap();
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
