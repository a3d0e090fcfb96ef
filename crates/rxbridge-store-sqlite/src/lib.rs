//! The embedded default store: SQLite in WAL mode with `synchronous=FULL`, versioned
//! migrations, and group commit.
//!
//! Writes go to one writer thread. It takes every write queued at that moment, runs them in
//! one transaction, commits once (one fsync for the whole batch), and only then answers each
//! caller — so an `Ok` always means the write is on disk, and many concurrent submissions share
//! one durable commit. A write that fails is undone and nothing else: the batch then runs again
//! with each write in its own savepoint (a first attempt without savepoints spares SQLite a copy
//! of every page each write touches).
//!
//! The WAL is checkpointed by the writer between batches (after answering), with a helper
//! thread copying frames ahead of it; see `CHECKPOINT_PAGES`.
//!
//! Reads use a small pool of read-only connections; WAL lets them run beside the writer. The
//! request path's short indexed lookups run on the calling thread; everything else goes to
//! tokio's blocking pool. Other processes (the CLI) may write to the same file: the writer
//! re-reads the head of the event chain inside each write transaction, under SQLite's write
//! lock.

mod adopt;
mod conn;
mod fulfilment;
#[cfg(test)]
mod hot_keys;
#[cfg(test)]
mod layout;
mod migrations;
#[cfg(test)]
mod patient_lookups;
mod patients;
mod payments;
mod prescriber_keys;
mod queries;
mod staff;
mod store;
#[cfg(test)]
mod tests;
mod transfer;
mod writer;

pub use writer::{Tuning, WriterStats};

use anyhow::{Context as _, anyhow};
use conn::{READ_POOL, open_conn, owner_only, with_reader};
use rusqlite::Connection;
use rxbridge_app::ports::StoreError;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use writer::{Chain, Checkpointer, Completion, Job, writer_loop};

pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    writer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    readers: Arc<Mutex<Vec<Connection>>>,
    read_permits: Arc<tokio::sync::Semaphore>,
    stats: Arc<WriterStats>,
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path` and bring its schema up to date.
    pub fn open(path: impl AsRef<Path>) -> anyhow::Result<Self> {
        Self::open_tuned(path, Tuning::from_env())
    }

    /// [`Self::open`] with explicit writer settings.
    pub fn open_tuned(path: impl AsRef<Path>, tuning: Tuning) -> anyhow::Result<Self> {
        let path = path.as_ref().to_path_buf();
        let (mut conn, _) = open_migrated(&path)?;
        // The writer's page cache (16 MiB by default): the upper levels of the lookup indexes
        // (random keys) stay in memory as the store grows. Readers keep 1 MiB (`open_conn`).
        conn.pragma_update(None, "cache_size", -i64::from(tuning.cache_kib))?;
        // Replaces SQLite's auto-checkpoint (which runs inside a commit): the hook only records
        // the log's size after each commit, and the writer checkpoints between batches.
        // It also counts the frames each commit appended (the log's size grows by them, or
        // starts again from them after a checkpoint let it restart).
        let wal_pages = Arc::new(std::sync::atomic::AtomicI32::new(0));
        let stats = Arc::new(WriterStats::default());
        let (wp, st, last) = (
            wal_pages.clone(),
            stats.clone(),
            std::sync::atomic::AtomicI32::new(0),
        );
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
                wp.store(pages, Ordering::Relaxed);
                let before = last.swap(pages, Ordering::Relaxed);
                let appended = if pages >= before {
                    pages - before
                } else {
                    pages
                };
                st.wal_frames
                    .fetch_add(appended.max(0) as u64, Ordering::Relaxed);
                Ok(())
            },
        ))?;
        let (tx, rx) = mpsc::channel::<Job>();
        let st = stats.clone();
        let checkpointer = Checkpointer::start(&path)?;
        let handle = std::thread::Builder::new()
            .name("rxbridge-sqlite-writer".into())
            .spawn(move || {
                writer_loop(
                    conn,
                    rx,
                    st,
                    wal_pages,
                    tuning,
                    checkpointer,
                    queries::chain_head,
                )
            })?;
        Ok(Self {
            path,
            writer: Mutex::new(Some(tx)),
            writer_thread: Mutex::new(Some(handle)),
            readers: Arc::default(),
            read_permits: Arc::new(tokio::sync::Semaphore::new(READ_POOL)),
            stats,
        })
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Finish every queued write and stop the writer (also done on drop).
    pub fn close(&self) {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = self
            .writer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = h.join();
        }
    }

    async fn write<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection, &mut Chain) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.enqueue(f)?
            .await
            .map_err(|_| StoreError::Unexpected(anyhow!("the writer thread dropped a write")))?
    }

    /// Queue a write for the writer; the receiver gets its result once its batch committed.
    /// `f` may run twice (the writer's second attempt at a batch, `writer`): only the outcome
    /// of its last run counts, and it is `Fn` so that a second run sees what the first saw.
    fn enqueue<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection, &mut Chain) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<T, StoreError>>, StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let outcome = Arc::new(Mutex::new(None::<Result<T, StoreError>>));
        let kept = outcome.clone();
        let run = Box::new(move |conn: &Connection, chain: &mut Chain| {
            let r = f(conn, chain);
            let ok = r.is_ok();
            *kept.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            ok
        });
        let finish: Completion = Box::new(move |commit| {
            let r = outcome.lock().unwrap_or_else(|e| e.into_inner()).take();
            let out = match (commit, r) {
                (_, None) => Err(StoreError::Unexpected(anyhow!("the write did not run"))),
                (Ok(()), Some(r)) => r,
                (Err(e), Some(Ok(_))) => Err(StoreError::Unexpected(anyhow!("commit failed: {e}"))),
                (Err(_), Some(r)) => r,
            };
            let _ = tx.send(out);
        });
        let job = Job { run, finish };
        {
            let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let sender = guard
                .as_ref()
                .ok_or_else(|| StoreError::Unexpected(anyhow!("the store is closed")))?;
            sender
                .send(job)
                .map_err(|_| StoreError::Unexpected(anyhow!("the writer thread has stopped")))?;
        }
        Ok(rx)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let pool = self.readers.clone();
        let path = self.path.clone();
        let permit = self
            .read_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unexpected(anyhow!("the store is closed")))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            with_reader(&pool, &path, f)
        })
        .await
        .map_err(|e| StoreError::Unexpected(anyhow!("read task failed: {e}")))?
    }

    /// A short, bounded, indexed lookup on the request path, run on the calling thread.
    /// Handing it to the blocking pool and back costs two thread switches — more than the
    /// lookup itself (a few to a hundred microseconds from cached pages). Only for queries
    /// with an index and a row limit; anything that scans goes through [`Self::read`].
    fn read_now<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        with_reader(&self.readers, &self.path, f)
    }
}

/// The schema version this build writes (one step per migration).
pub const SCHEMA_VERSION: usize = migrations::MIGRATIONS.len();

/// The schema version of the database at `path`, read without upgrading or writing anything;
/// `None` when there is no database file there (none is created).
pub fn schema_version(path: impl AsRef<Path>) -> anyhow::Result<Option<usize>> {
    let path = path.as_ref();
    if !path.try_exists()? {
        return Ok(None);
    }
    let conn = open_conn(path, false)
        .with_context(|| format!("opening the database {}", path.display()))?;
    let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    Ok(Some(v as usize))
}

/// Upgrade the database at `path` in place to [`SCHEMA_VERSION`], as every open does, and say
/// what was done: the version found and the steps this call applied. Refuses when there is no
/// database there (none is created) or its schema is newer than this build's.
pub fn upgrade(path: impl AsRef<Path>) -> anyhow::Result<(usize, Vec<usize>)> {
    let path = path.as_ref();
    let found = schema_version(path)?
        .ok_or_else(|| anyhow!("there is no database at {}", path.display()))?;
    let (conn, applied) = open_migrated(path)?;
    drop(conn);
    Ok((found, applied))
}

/// The writer's connection: owner-only files, WAL mode, the schema brought up to date (the
/// steps applied are returned).
fn open_migrated(path: &Path) -> anyhow::Result<(Connection, Vec<usize>)> {
    owner_only(path).with_context(|| format!("securing {}", path.display()))?;
    let mut conn = open_conn(path, false)
        .with_context(|| format!("opening the database {}", path.display()))?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    if mode != "wal" {
        return Err(anyhow!(
            "could not switch {} to WAL mode (got {mode})",
            path.display()
        ));
    }
    let applied = migrations::migrate(&mut conn)?;
    Ok((conn, applied))
}

/// A new database at an earlier schema `version`, for upgrade drills and tests of the upgrade
/// path; refuses a path that already exists.
#[doc(hidden)]
pub fn create_at_schema(path: impl AsRef<Path>, version: usize) -> anyhow::Result<()> {
    let path = path.as_ref();
    if path.try_exists()? {
        return Err(anyhow!("{} already exists", path.display()));
    }
    if version > SCHEMA_VERSION {
        return Err(anyhow!("this build knows schemas up to {SCHEMA_VERSION}"));
    }
    owner_only(path)?;
    let mut conn = open_conn(path, false)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?;
    migrations::migrate_to(&mut conn, version)?;
    Ok(())
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        self.close();
    }
}
