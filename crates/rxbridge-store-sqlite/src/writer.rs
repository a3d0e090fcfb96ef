//! The group-commit writer: one thread takes every write queued at that moment, runs them in
//! one transaction, commits once, and only then answers each caller. A batch first runs without
//! savepoints (a savepoint makes SQLite copy every page a write touches before changing it);
//! if any write in it fails or panics, the attempt is rolled back and the batch runs again with
//! each write in its own savepoint, so only the failed write's statements are undone.
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
/// A write's statements; `true` when they succeeded.
pub(crate) type Run = Box<dyn FnMut(&Connection, &mut Chain) -> bool + Send>;

/// A queued write. `run` does its statements and says whether they succeeded; it may run twice
/// (see the module's docs), so it keeps its outcome for `finish`, which answers the caller with
/// the outcome of the transaction.
pub(crate) struct Job {
    pub run: Run,
    pub finish: Completion,
}

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
    /// WAL frames (pages) the commits appended; divided by `writes`, the pages a write costs.
    pub wal_frames: AtomicU64,
    /// Batches run a second time, each write in its own savepoint, after one of them failed.
    pub retried_batches: AtomicU64,
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
        let _ = writeln!(
            out,
            "# HELP rxbridge_store_retried_batches Batches run again write by write in savepoints after a write failed."
        );
        let _ = writeln!(out, "# TYPE rxbridge_store_retried_batches counter");
        let _ = writeln!(
            out,
            "rxbridge_store_retried_batches_total {}",
            self.retried_batches.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP rxbridge_store_wal_frames Pages appended to the write-ahead log by commits."
        );
        let _ = writeln!(out, "# TYPE rxbridge_store_wal_frames counter");
        let _ = writeln!(
            out,
            "rxbridge_store_wal_frames_total {}",
            self.wal_frames.load(Ordering::Relaxed)
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

/// `BEGIN IMMEDIATE` and the chain's head; `None` (the batch's callers get an error as the jobs
/// are dropped) if either fails.
fn begin(
    conn: &Connection,
    head: fn(&Connection) -> rusqlite::Result<Chain>,
    writes: usize,
) -> Option<Chain> {
    match conn
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| e.to_string())
        .and_then(|_| schema_is_ours(conn))
        .and_then(|_| head(conn).map_err(|e| e.to_string()))
    {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, writes, "could not begin a write transaction");
            let _ = conn.execute_batch("ROLLBACK");
            None
        }
    }
}

/// A newer build upgraded the file while this one runs (its tables may have changed under
/// it): it writes nothing more. Read inside the write transaction, so no upgrade can start
/// between the check and the writes.
fn schema_is_ours(conn: &Connection) -> Result<(), String> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    let ours = crate::migrations::MIGRATIONS.len() as i64;
    if version == ours {
        Ok(())
    } else {
        Err(format!(
            "the database is at schema {version} and this build writes schema {ours}: a newer rxbridge upgraded it; stop this process"
        ))
    }
}

/// Every write of the batch, one after another with no savepoint; `false` at the first that
/// fails or panics (the rest do not run).
fn run_plain(conn: &Connection, chain: &mut Chain, batch: &mut [Pending]) -> bool {
    batch.iter_mut().all(|job| {
        let run = &mut job.run;
        matches!(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(conn, chain))),
            Ok(true)
        )
    })
}

/// Every write of the batch in its own savepoint: a failed one is rolled back alone, a
/// panicking one too (its caller gets an error: its answer is dropped). `true` when a
/// savepoint could not be opened or closed cleanly, or the transaction is gone: it may then
/// hold part of a failed write, so nothing more runs and the whole batch must be rolled back.
fn run_in_savepoints(conn: &Connection, chain: &mut Chain, batch: &mut [Pending]) -> bool {
    let mut poisoned = false;
    for job in batch {
        let before = chain.clone();
        if let Err(e) = conn
            .prepare_cached("SAVEPOINT w")
            .and_then(|mut s| s.execute([]))
        {
            tracing::error!(error = %e, "could not open a savepoint");
            poisoned = true;
            break;
        }
        let run = &mut job.run;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(conn, chain)));
        let ok = matches!(outcome, Ok(true));
        if !ok {
            *chain = before;
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
        if outcome.is_err() {
            tracing::error!("a write panicked; it was rolled back");
            job.finish = None;
        }
        // SQLite may have rolled the whole transaction back on its own (a full disk, an I/O
        // error): the next savepoint would then open a transaction of its own and commit a
        // write outside the batch. Stop; the batch is rolled back.
        if poisoned || conn.is_autocommit() {
            poisoned = true;
            break;
        }
    }
    poisoned
}

/// A job in a batch; `finish` is taken away when its write panicked.
struct Pending {
    run: Run,
    finish: Option<Completion>,
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
    let pending = |j: Job| Pending {
        run: j.run,
        finish: Some(j.finish),
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![pending(first)];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(j) => batch.push(pending(j)),
                Err(_) => break,
            }
        }
        stats.observe_batch(batch.len());
        let Some(mut chain) = begin(&conn, head, batch.len()) else {
            continue;
        };
        let mut poisoned = false;
        if !run_plain(&conn, &mut chain, &mut batch) {
            // A write failed or panicked: none of this attempt is kept; the batch runs again,
            // each write in its own savepoint.
            let _ = conn.execute_batch("ROLLBACK");
            stats.retried_batches.fetch_add(1, Ordering::Relaxed);
            let Some(c) = begin(&conn, head, batch.len()) else {
                continue;
            };
            chain = c;
            poisoned = run_in_savepoints(&conn, &mut chain, &mut batch);
        }
        let completions: Vec<Completion> = batch.into_iter().filter_map(|j| j.finish).collect();
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

#[cfg(test)]
mod tests {
    use crate::SqliteStore;
    use crate::queries::unexpected;
    use rxbridge_app::ports::{ClinicStore, StoreError};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};

    /// What a queued write does after inserting its clinic.
    #[derive(Clone, Copy)]
    enum Then {
        Succeed,
        Fail,
        Panic,
    }

    /// Holds the writer inside a write, queues one write per entry of `plan` (each inserts
    /// clinic `cl_<i>`, then does what its entry says), releases it, and returns each write's
    /// outcome, how many times each ran, and how many transactions they took.
    async fn one_batch(plan: &[Then]) -> (Batch, Vec<Result<(), StoreError>>, Vec<usize>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("rx.db")).unwrap();
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let held = s
            .enqueue(move |_, _| {
                let _ = entered_tx.send(());
                let _ = release_rx.recv();
                Ok(())
            })
            .unwrap();
        entered_rx.recv().unwrap();
        let runs: Vec<Arc<AtomicUsize>> = plan.iter().map(|_| Arc::default()).collect();
        let queued: Vec<_> = plan
            .iter()
            .enumerate()
            .map(|(i, then)| {
                let (then, runs) = (*then, runs[i].clone());
                s.enqueue(move |c, _| {
                    runs.fetch_add(1, Ordering::SeqCst);
                    c.execute(
                        "INSERT INTO clinics (id, name, created_at) VALUES (?1, 'n', '2026-12-01T12:00:00Z')",
                        [format!("cl_{i}")],
                    )
                    .map_err(unexpected)?;
                    match then {
                        Then::Succeed => Ok(()),
                        Then::Fail => Err(StoreError::Conflict),
                        Then::Panic => panic!("a bug in a write"),
                    }
                })
                .unwrap()
            })
            .collect();
        release_tx.send(()).unwrap();
        held.await.unwrap().unwrap();
        let mut out = Vec::new();
        for q in queued {
            out.push(
                q.await
                    .unwrap_or_else(|_| Err(StoreError::Unexpected(anyhow::anyhow!("dropped")))),
            );
        }
        let batches = s.stats().batches.load(Ordering::Relaxed) - 1;
        let runs = runs.iter().map(|r| r.load(Ordering::SeqCst)).collect();
        (Batch(s, dir), out, runs, batches)
    }

    /// The store and the directory it lives in (removed when dropped).
    struct Batch(SqliteStore, tempfile::TempDir);

    #[tokio::test]
    async fn a_batch_that_succeeds_runs_each_write_once() {
        let (Batch(s, _dir), out, runs, batches) = one_batch(&[Then::Succeed; 5]).await;
        assert_eq!(batches, 1);
        assert!(out.iter().all(Result::is_ok), "{out:?}");
        assert_eq!(runs, [1; 5], "no savepoint attempt");
        assert_eq!(s.stats().retried_batches.load(Ordering::Relaxed), 0);
        assert_eq!(s.list_clinics().await.unwrap().len(), 5);
    }

    #[tokio::test]
    async fn a_failed_or_panicking_write_is_undone_alone_and_the_rest_of_its_batch_commits() {
        use Then::*;
        let (Batch(s, _dir), out, runs, batches) =
            one_batch(&[Succeed, Fail, Succeed, Panic, Succeed]).await;
        assert_eq!(batches, 1, "one transaction");
        assert!(
            out[0].is_ok() && out[2].is_ok() && out[4].is_ok(),
            "{out:?}"
        );
        assert!(matches!(out[1], Err(StoreError::Conflict)), "{:?}", out[1]);
        assert!(out[3].is_err());
        let mut ids: Vec<String> = s
            .list_clinics()
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["cl_0", "cl_2", "cl_4"]);
        // The first attempt stopped at the failed write; the second ran each in a savepoint.
        assert_eq!(runs, [2, 2, 1, 1, 1]);
        assert_eq!(s.stats().retried_batches.load(Ordering::Relaxed), 1);
    }
}
