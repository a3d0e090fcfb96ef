//! Compliance findings for one prescription against a patient with a long history, in a store
//! holding many prescriptions: store lookups (history + identity signals) and rule evaluation,
//! as the intake path runs them. Prints p50/p99 per call.
//!
//!   BENCH_ROWS=1000000 BENCH_HISTORY=1000 cargo bench -p rxbridge --bench compliance
//!
//! BENCH_DIR reuses a seeded data directory (seeding 1 M rows takes a few minutes).

use rxbridge::{App, Config};
use rxbridge_app::ports::{Caller, Mode};
use std::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return Ok(()); // `cargo test --benches` probes; nothing to list
    }
    let rows = env("BENCH_ROWS", 100_000);
    let history = env("BENCH_HISTORY", 1_000);
    let iterations = env("BENCH_ITERATIONS", 2_000);
    let (dir, _tmp) = match std::env::var("BENCH_DIR") {
        Ok(d) => (std::path::PathBuf::from(d), None),
        Err(_) => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let fresh = !dir.join("rxbridge.db").exists();
    let app = App::open(Config {
        data_dir: dir.clone(),
        ..Config::default()
    })?;
    let clinic = match app.state.store.list_clinics().await?.into_iter().next() {
        Some(c) if !fresh => c.id,
        _ => {
            let c = app.state.clinics.add("Bench Clinic").await?;
            let t = Instant::now();
            let n = rxbridge::seed::seed(&app, &c.clinic_id, Mode::Test, rows, rows / 4, history)
                .await?;
            eprintln!(
                "seeded {n} prescriptions ({history} for the hot patient) in {:.1} s",
                t.elapsed().as_secs_f64()
            );
            c.clinic_id
        }
    };
    let caller = Caller {
        clinic_id: clinic,
        mode: Mode::Test,
    };
    let total = rxbridge_app::audit::verify_chain(app.state.store.as_ref())
        .await?
        .events;
    let today = rxbridge_domain::dates::london_date(jiff::Timestamp::now());
    for (label, patient) in [
        ("hot patient (long history)", 0u64),
        ("ordinary patient", 17),
    ] {
        let rx = rxbridge::seed::synthetic(patient, 0, today);
        let keys = app.state.intake.patient_keys(&rx.patient);
        let history_len = app
            .state
            .store
            .patient_history(Mode::Test, &keys, &caller.clinic_id, 100_000)
            .await?
            .len();
        let mut samples = Vec::with_capacity(iterations as usize);
        let mut n_findings = 0;
        for _ in 0..iterations {
            let t = Instant::now();
            let f = app
                .state
                .intake
                .findings(&caller, &rx, &keys, &Default::default())
                .await?;
            samples.push(t.elapsed().as_secs_f64() * 1e6);
            n_findings = f.len();
        }
        samples.sort_by(|a, b| a.total_cmp(b));
        println!(
            "compliance findings, {label}: {} calls, p50 {:.0} µs, p99 {:.0} µs ({} findings; {} earlier items for this patient; store {} events)",
            iterations,
            pct(&samples, 0.5),
            pct(&samples, 0.99),
            n_findings,
            history_len,
            total
        );
    }
    app.store.close();
    Ok(())
}
