//! The load: producers (threads), each submitting one prescription at a time and waiting for
//! its acknowledgement, and one writer thread that group-commits whatever is queued (up to
//! `MAX_BATCH`, as `rxbridge-store-sqlite`'s writer) and acknowledges a batch only once its
//! commit is durable. Also the preload (big batches, one durable sync at the end) and the
//! figures of a run: writes/s, ack latency, bytes written to disk, peak RSS.

use crate::data::{Gen, Rx};
use crate::engine::Engine;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Writes one commit takes at most (`rxbridge-store-sqlite`'s `MAX_BATCH`).
pub const MAX_BATCH: usize = 512;

/// A write and where its acknowledgement goes: `Ok(true)` stored, `Ok(false)` its
/// idempotency key was taken, `Err` the commit failed.
type Job = (Rx, mpsc::SyncSender<Result<bool, String>>);

/// What a measured run reports.
#[derive(Debug)]
pub struct Report {
    pub writes: u64,
    pub seconds: f64,
    pub p50_us: u32,
    pub p99_us: u32,
    pub batches: u64,
    pub write_bytes: u64,
    pub rss_before_kib: u64,
    pub peak_rss_kib: u64,
    pub engine_note: String,
}

impl Report {
    pub fn line(&self, engine: &str, stored: u64) -> String {
        let w = self.writes.max(1) as f64;
        format!(
            "RESULT engine={engine} stored_before={stored} writes={} seconds={:.2} writes_per_s={:.0} p50_ms={:.2} p99_ms={:.2} avg_batch={:.1} write_kib_per_rx={:.1} rss_before_mib={:.1} peak_rss_mib={:.1} {}",
            self.writes,
            self.seconds,
            self.writes as f64 / self.seconds,
            f64::from(self.p50_us) / 1000.0,
            f64::from(self.p99_us) / 1000.0,
            self.writes as f64 / self.batches.max(1) as f64,
            self.write_bytes as f64 / w / 1024.0,
            self.rss_before_kib as f64 / 1024.0,
            self.peak_rss_kib as f64 / 1024.0,
            self.engine_note
        )
    }
}

/// Bytes this process has caused to be written to disk (`write_bytes` of `/proc/self/io`).
pub fn write_bytes() -> u64 {
    proc_field("/proc/self/io", "write_bytes:")
}

/// `VmHWM` / `VmRSS` of `/proc/self/status`, in KiB.
pub fn status_kib(field: &str) -> u64 {
    proc_field("/proc/self/status", field)
}

fn proc_field(file: &str, field: &str) -> u64 {
    std::fs::read_to_string(file)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The writer thread: take one job, then every job already queued, commit them durably in one
/// go, then answer each. Returns the number of batches.
fn writer(mut engine: Box<dyn Engine>, rx: mpsc::Receiver<Job>) -> (Box<dyn Engine>, u64) {
    let mut batches = 0;
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let batch: Vec<&Rx> = jobs.iter().map(|(r, _)| r).collect();
        let outcome = engine.commit(&batch, true).map_err(|e| format!("{e:#}"));
        for (i, (_, ack)) in jobs.drain(..).enumerate() {
            let _ = ack.send(outcome.as_ref().map(|o| o[i]).map_err(Clone::clone));
        }
        batches += 1;
        engine.between_batches();
    }
    (engine, batches)
}

/// What each acknowledged write is told to, e.g. print its keys (the crash test's child).
pub type OnAck = std::sync::Arc<dyn Fn(&Rx) + Send + Sync>;

/// `producers` threads submit for `duration` (or until `limit` writes each, if given), each
/// waiting for its acknowledgement; `seed` picks the data set.
pub fn run(
    engine: Box<dyn Engine>,
    producers: u64,
    duration: Duration,
    seed: u64,
    on_ack: Option<OnAck>,
) -> anyhow::Result<Report> {
    let rss_before_kib = status_kib("VmRSS:");
    let (tx, rx) = mpsc::channel::<Job>();
    let writer = std::thread::Builder::new()
        .name("spike-writer".into())
        .spawn(move || writer(engine, rx))?;
    let bytes0 = write_bytes();
    let start = Instant::now();
    let end = start + duration;
    let mut threads = Vec::new();
    for p in 0..producers {
        let tx = tx.clone();
        let on_ack = on_ack.clone();
        threads.push(std::thread::spawn(move || -> anyhow::Result<Vec<u32>> {
            let mut g = Gen::new(seed, p);
            let (ack_tx, ack_rx) = mpsc::sync_channel(1);
            let mut lat = Vec::with_capacity(4096);
            while Instant::now() < end {
                let rx = g.next_rx();
                let t = Instant::now();
                tx.send((rx.clone(), ack_tx.clone()))
                    .map_err(|_| anyhow::anyhow!("the writer stopped"))?;
                let stored = ack_rx
                    .recv()?
                    .map_err(|e| anyhow::anyhow!("commit failed: {e}"))?;
                lat.push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
                anyhow::ensure!(stored, "a fresh idempotency key was refused");
                if let Some(f) = &on_ack {
                    f(&rx);
                }
            }
            Ok(lat)
        }));
    }
    drop(tx);
    let mut lat = Vec::new();
    for t in threads {
        lat.extend(
            t.join()
                .map_err(|_| anyhow::anyhow!("a producer panicked"))??,
        );
    }
    let seconds = start.elapsed().as_secs_f64();
    let (engine, batches) = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer panicked"))?;
    let write_bytes = write_bytes() - bytes0;
    let engine_note = engine.note(lat.len() as u64);
    engine.close()?;
    lat.sort_unstable();
    let q = |f: f64| lat.get(((lat.len() as f64 * f) as usize).min(lat.len().saturating_sub(1)));
    Ok(Report {
        writes: lat.len() as u64,
        seconds,
        p50_us: q(0.5).copied().unwrap_or(0),
        p99_us: q(0.99).copied().unwrap_or(0),
        batches,
        write_bytes,
        rss_before_kib,
        peak_rss_kib: status_kib("VmHWM:"),
        engine_note,
    })
}

/// Prescriptions in one preload step: the preload goes in whole steps, each with a generator
/// of its own, so that every engine is given the same data whatever its speed.
pub const PRELOAD_STEP: u64 = 65_536;

/// Store preload steps `first_step..` (`PRELOAD_STEP` prescriptions each) until `steps` are
/// done or `max` has passed (checked between steps), in commits of `batch` with no sync between
/// them and one at the end; a generator thread beside the writer. Returns the steps done.
pub fn preload(
    mut engine: Box<dyn Engine>,
    first_step: u64,
    steps: u64,
    batch: usize,
    seed: u64,
    max: Duration,
) -> anyhow::Result<u64> {
    let (tx, rx) = mpsc::sync_channel::<Vec<Rx>>(4);
    let end = Instant::now() + max;
    let gen_thread = std::thread::spawn(move || {
        for step in first_step..first_step + steps {
            if Instant::now() >= end {
                break;
            }
            let mut g = Gen::new(seed, 1_000_000 + step);
            let mut left = PRELOAD_STEP;
            while left > 0 {
                let n = left.min(batch as u64);
                let b: Vec<Rx> = (0..n).map(|_| g.next_rx()).collect();
                if tx.send(b).is_err() {
                    return;
                }
                left -= n;
            }
        }
    });
    let mut stored = 0;
    for b in rx {
        let refs: Vec<&Rx> = b.iter().collect();
        engine.commit(&refs, false)?;
        engine.between_batches();
        stored += b.len() as u64;
    }
    let _ = gen_thread.join();
    engine.sync()?;
    engine.close()?;
    Ok(stored / PRELOAD_STEP)
}
