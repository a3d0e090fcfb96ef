//! The group-commit writer: one thread takes every write queued at that moment, runs each in
//! its own savepoint inside one transaction, commits once, and only then answers each caller.
//! Also its settings (`Tuning`), its counters (`WriterStats`) and the WAL checkpoints it runs
//! between batches. Knows nothing of the schema: the head of the event chain is read through
//! the function it is started with.

use crate::conn::open_conn;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

/// How many queued writes one transaction takes at most (group commit).
const MAX_BATCH: usize = 512;

/// WAL size (pages) at which the writer folds the log back into the database. SQLite's own
/// auto-checkpoint (1 000 pages) runs inside the commit that crosses it, so every caller of that
/// batch waited for it; here the writer checkpoints after it has answered the batch, and the
/// `Checkpointer` has copied most frames by then. A larger log also lets a page that many
/// writes touch reach the database file once per checkpoint rather than once per 1 000 pages;
/// 16 384 was tried and made the writer's pauses long on a large store (bench/README.md).
const CHECKPOINT_PAGES: i32 = 4_096;

/// The writer's settings. `from_env` reads `RXBRIDGE_STORE_MAX_BATCH` (1 turns group commit
/// off) and `RXBRIDGE_STORE_CHECKPOINT_PAGES`, both for comparing in benchmarks.
#[derive(Clone, Copy, Debug)]
pub struct Tuning {
    /// Writes one transaction takes at most (1..=4096; 512 unless bulk loading).
    pub max_batch: usize,
    /// WAL pages after which the writer checkpoints (100..=1 048 576).
    pub checkpoint_pages: i32,
    /// The writer connection's page cache, in KiB.
    pub cache_kib: u32,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            max_batch: MAX_BATCH,
            checkpoint_pages: CHECKPOINT_PAGES,
            cache_kib: 16 * 1024,
        }
    }
}

impl Tuning {
    /// For loading many records with nothing else running (`rxbridge dev seed`): transactions
    /// of up to 4 096 writes put many inserts into each index page they touch, a 256 MiB page
    /// cache holds the lookup indexes of a million prescriptions, and a 256 MiB log lets a
    /// checkpoint write each page once for many commits. Durability is unchanged.
    pub fn bulk_load() -> Self {
        Self {
            max_batch: 4096,
            checkpoint_pages: 65_536,
            cache_kib: 256 * 1024,
        }
    }

    /// The defaults, with `RXBRIDGE_STORE_MAX_BATCH` and `RXBRIDGE_STORE_CHECKPOINT_PAGES`.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<i64>().ok());
        let d = Self::default();
        Self {
            max_batch: var("RXBRIDGE_STORE_MAX_BATCH")
                .map_or(d.max_batch, |n| n.clamp(1, MAX_BATCH as i64) as usize),
            checkpoint_pages: var("RXBRIDGE_STORE_CHECKPOINT_PAGES")
                .map_or(d.checkpoint_pages, |n| n.clamp(100, 1 << 20) as i32),
            ..d
        }
    }
}

pub(crate) type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
pub(crate) type Job = Box<dyn FnOnce(&Connection, &mut Chain) -> (bool, Completion) + Send>;

/// The head of the event chain, as seen inside the current write transaction.
#[derive(Clone, Debug)]
pub(crate) struct Chain {
    pub seq: i64,
    pub hash: String,
}

/// Upper bounds of the batch-size histogram buckets.
const BATCH_BUCKETS: [u64; 13] = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096];

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub batches: AtomicU64,
    pub writes: AtomicU64,
    pub failed_commits: AtomicU64,
    /// Batches whose size was at most `BATCH_BUCKETS[i]` (not cumulative).
    batch_sizes: [AtomicU64; 13],
}

impl WriterStats {
    fn observe_batch(&self, n: usize) {
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.writes.fetch_add(n as u64, Ordering::Relaxed);
        let i = BATCH_BUCKETS
            .iter()
            .position(|b| n as u64 <= *b)
            .unwrap_or(BATCH_BUCKETS.len() - 1);
        self.batch_sizes[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text: the group-commit batch-size histogram and commit failures.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP rxbridge_store_commit_batch_size Writes per durable commit (group commit)."
        );
        let _ = writeln!(out, "# TYPE rxbridge_store_commit_batch_size histogram");
        let mut cumulative = 0;
        for (i, b) in BATCH_BUCKETS.iter().enumerate() {
            cumulative += self.batch_sizes[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "rxbridge_store_commit_batch_size_bucket{{le=\"{b}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "rxbridge_store_commit_batch_size_bucket{{le=\"+Inf\"}} {}",
            self.batches.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "rxbridge_store_commit_batch_size_sum {}",
            self.writes.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "rxbridge_store_commit_batch_size_count {}",
            self.batches.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rxbridge_store_failed_commits Write transactions that failed to commit."
        );
        let _ = writeln!(out, "# TYPE rxbridge_store_failed_commits counter");
        let _ = writeln!(
            out,
            "rxbridge_store_failed_commits_total {}",
            self.failed_commits.load(Ordering::Relaxed)
        );
    }
}

/// Copies WAL frames into the database file on its own connection and thread while the
/// writer carries on (a PASSIVE checkpoint takes no lock a writer needs). On its own it never
/// lets the log restart — new frames keep arriving — so the writer still checkpoints at the
/// threshold, but by then most frames are already copied and the writer's pause is short.
pub(crate) struct Checkpointer {
    wake: mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path) -> anyhow::Result<Self> {
        let conn = open_conn(path, false)?;
        let (wake, rx) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("rxbridge-sqlite-checkpoint".into())
            .spawn(move || {
                while rx.recv().is_ok() {
                    checkpoint(&conn);
                }
            })?;
        Ok(Self { wake, thread })
    }

    /// Ask for a checkpoint; a no-op if one is already asked for.
    fn nudge(&self) {
        let _ = self.wake.try_send(());
    }

    fn stop(self) {
        drop(self.wake);
        let _ = self.thread.join();
    }
}

/// A PASSIVE checkpoint: copies what it can without waiting; `SQLITE_BUSY` means another
/// checkpoint is running, which is fine.
fn checkpoint(conn: &Connection) {
    match conn.wal_checkpoint_v2(None::<&str>, rusqlite::wal::CheckpointMode::PASSIVE) {
        Ok(_) => {}
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::DatabaseBusy => {}
        Err(e) => {
            tracing::warn!(error = %e, "checkpoint failed; the log is folded in at the next one")
        }
    }
}

pub(crate) fn writer_loop(
    conn: Connection,
    rx: mpsc::Receiver<Job>,
    stats: Arc<WriterStats>,
    wal_pages: Arc<std::sync::atomic::AtomicI32>,
    tuning: Tuning,
    checkpointer: Checkpointer,
    head: fn(&Connection) -> rusqlite::Result<Chain>,
) {
    let (max, checkpoint_at) = (tuning.max_batch, tuning.checkpoint_pages);
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        stats.observe_batch(batch.len());
        let mut chain = match conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| e.to_string())
            .and_then(|_| head(&conn).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => {
                // Run nothing: dropping the jobs answers every caller with an error.
                tracing::error!(error = %e, writes = batch.len(), "could not begin a write transaction");
                let _ = conn.execute_batch("ROLLBACK");
                continue;
            }
        };
        let mut completions = Vec::with_capacity(batch.len());
        // Set when a savepoint could not be closed cleanly: the transaction may then hold part
        // of a failed write, so the whole batch is rolled back and every caller gets an error.
        let mut poisoned = false;
        for job in batch {
            let before = chain.clone();
            if let Err(e) = conn
                .prepare_cached("SAVEPOINT w")
                .and_then(|mut s| s.execute([]))
            {
                tracing::error!(error = %e, "could not open a savepoint");
                poisoned = true;
                continue;
            }
            // A panicking write is contained to its savepoint: its caller gets an error (the
            // job and its reply channel are dropped) and the writer carries on.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn, &mut chain)));
            let ok = matches!(&outcome, Ok((true, _)));
            if !ok {
                chain = before;
            }
            let end = if ok {
                conn.prepare_cached("RELEASE w")
                    .and_then(|mut s| s.execute([]).map(|_| ()))
            } else {
                conn.execute_batch("ROLLBACK TO w; RELEASE w")
            };
            if let Err(e) = end {
                tracing::error!(error = %e, "savepoint end failed; rolling back the batch");
                poisoned = true;
            }
            match outcome {
                Ok((_, done)) => completions.push(done),
                Err(_) => tracing::error!("a write panicked; it was rolled back"),
            }
        }
        let commit = if poisoned {
            Err("the batch was rolled back after a savepoint failure".to_string())
        } else {
            conn.execute_batch("COMMIT").map_err(|e| e.to_string())
        };
        if commit.is_err() {
            stats.failed_commits.fetch_add(1, Ordering::Relaxed);
            let _ = conn.execute_batch("ROLLBACK");
        }
        for done in completions {
            done(commit.clone());
        }
        // Every caller of the batch has its answer; writes queued meanwhile form the next one.
        let pages = wal_pages.load(Ordering::Relaxed);
        if pages >= checkpoint_at {
            wal_pages.store(0, Ordering::Relaxed);
            checkpoint(&conn);
        } else if pages >= checkpoint_at / 4 {
            checkpointer.nudge();
        }
    }
    checkpointer.stop();
    // Every queued write is done: fold the WAL into the database and truncate it.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}
