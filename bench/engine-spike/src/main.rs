//! The spike's command line (`bench/engine-spike.sh` runs the whole comparison):
//!
//!   rxbridge-engine-spike run ENGINE DIR [SECONDS [PRODUCERS [SEED]]]
//!   rxbridge-engine-spike preload ENGINE DIR TARGET MAX_SECONDS
//!   rxbridge-engine-spike crash-child DIR      (fjall; the crash test's child)
//!
//! `run` prints one `RESULT` line; `preload` adds whole steps of prescriptions until DIR holds
//! TARGET or MAX_SECONDS have passed, and records the count in DIR/preloaded.

use rxbridge_engine_spike::{drive, open};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The data set of measured runs; the preload uses its own steps.
const RUN_SEED: u64 = 1;
const PRELOAD_SEED: u64 = 2;
const PRELOAD_BATCH: usize = 4096;

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: Option<T>) -> anyhow::Result<T> {
    match args.get(i) {
        Some(v) => v
            .parse()
            .map_err(|_| anyhow::anyhow!("argument {i} ({v:?}) is not a number")),
        None => default.ok_or_else(|| anyhow::anyhow!("argument {i} is missing (see --help)")),
    }
}

fn preloaded(dir: &Path) -> u64 {
    std::fs::read_to_string(dir.join("preloaded"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: rxbridge-engine-spike run ENGINE DIR [SECONDS [PRODUCERS [SEED]]] | preload ENGINE DIR TARGET MAX_SECONDS | crash-child DIR";
    match args.get(1).map(String::as_str) {
        Some("run") => {
            let (engine, dir) = (
                arg::<String>(&args, 2, None)?,
                PathBuf::from(arg::<String>(&args, 3, None)?),
            );
            let seconds: f64 = arg(&args, 4, Some(10.0))?;
            let producers: u64 = arg(&args, 5, Some(64))?;
            let seed: u64 = arg(&args, 6, Some(RUN_SEED))?;
            let stored = preloaded(&dir);
            let e = open(&engine, &dir, false)?;
            let r = drive::run(e, producers, Duration::from_secs_f64(seconds), seed, None)?;
            println!("{}", r.line(&engine, stored));
        }
        Some("preload") => {
            let (engine, dir) = (
                arg::<String>(&args, 2, None)?,
                PathBuf::from(arg::<String>(&args, 3, None)?),
            );
            let target: u64 = arg(&args, 4, None)?;
            let max: f64 = arg(&args, 5, None)?;
            let before = preloaded(&dir);
            let first = before / drive::PRELOAD_STEP;
            let steps = target.saturating_sub(before).div_ceil(drive::PRELOAD_STEP);
            let start = std::time::Instant::now();
            let e = open(&engine, &dir, true)?;
            let done = drive::preload(
                e,
                first,
                steps,
                PRELOAD_BATCH,
                PRELOAD_SEED,
                Duration::from_secs_f64(max),
            )?;
            let now = (first + done) * drive::PRELOAD_STEP;
            std::fs::write(dir.join("preloaded"), now.to_string())?;
            println!(
                "PRELOADED engine={engine} stored={now} added={} seconds={:.1}",
                now - before,
                start.elapsed().as_secs_f64()
            );
        }
        Some("crash-child") => {
            let dir = PathBuf::from(arg::<String>(&args, 2, None)?);
            let e = open("fjall", &dir, false)?;
            // Every acknowledged write, as soon as it is acknowledged; the test kills this
            // process (SIGKILL) at some point and checks each one printed is stored.
            let on_ack: drive::OnAck = std::sync::Arc::new(|rx| {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(
                    out,
                    "ack {}\t{}",
                    rxbridge_engine_spike::data::idem_pk(rx),
                    rxbridge_engine_spike::data::rx_pk(rx)
                );
                let _ = out.flush();
            });
            drive::run(e, 8, Duration::from_secs(3600), 7, Some(on_ack))?;
        }
        _ => anyhow::bail!("{usage}"),
    }
    Ok(())
}
