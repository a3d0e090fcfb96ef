//! Opening connections (the pragmas every connection gets, owner-only files) and the pool of
//! read-only connections.

use anyhow::anyhow;
use rusqlite::{Connection, OpenFlags};
use rxbridge_app::ports::StoreError;
use std::path::Path;
use std::sync::Mutex;

/// Read connections kept open for reuse; reads beyond this wait for one (opening a connection
/// per read under load costs more than waiting for a warm one).
pub(crate) const READ_POOL: usize = 6;
/// Connections kept warm: the blocking-pool readers plus the request path's inline lookups
/// (at most one per async worker thread at a time).
const READ_POOL_KEPT: usize = READ_POOL + 4;

pub(crate) fn open_conn(path: &Path, read_only: bool) -> rusqlite::Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let c = Connection::open_with_flags(path, flags)?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    // Query-planner stability: plans are fixed when a statement is prepared. Without it, this
    // build's STAT4 planner marks parameters compared against partial-index terms as
    // plan-relevant and re-compiles the statement at every re-bind (measured: 14 % of CPU).
    c.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // synchronous=FULL: in WAL mode a commit is fsynced before it returns — a 201 means the
    // prescription is on disk.
    c.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;")?;
    if !read_only {
        // Content a write removes (an outbox body sealed in place, an expired session) is
        // zeroed in its page rather than left readable in free space, where that costs no
        // extra I/O (SQLite's FAST mode).
        c.execute_batch("PRAGMA secure_delete=FAST;")?;
    }
    if read_only {
        // 1 MiB per reader (SQLite's default is 2 MiB): a reader's cache is emptied whenever it
        // starts a read after a commit, so under write load it never holds more than one read's
        // pages; the smaller bound keeps the pool's memory in check.
        c.pragma_update(None, "cache_size", -1024)?;
    }
    Ok(c)
}

/// Make the database readable by its owner only before SQLite opens it: SQLite creates a new
/// database 0644 (less the umask) and gives its `-wal` and `-shm` files the database file's
/// mode, so creating the file 0600 first makes all three owner-only. An existing database (and
/// its WAL and shared-memory files) created looser by an earlier version is tightened.
pub(crate) fn owner_only(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)?;
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::metadata(&p) {
                Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))?
                }
                _ => {}
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Run `f` on a pooled read connection (opening one if none is free) and return it to the pool.
pub(crate) fn with_reader<T>(
    pool: &Mutex<Vec<Connection>>,
    path: &Path,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let conn = pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let conn = match conn {
        Some(c) => c,
        None => open_conn(path, true).map_err(unexpected)?,
    };
    let r = f(&conn);
    let mut p = pool.lock().unwrap_or_else(|e| e.into_inner());
    if p.len() < READ_POOL_KEPT {
        p.push(conn);
    }
    r
}

/// A driver error the caller cannot act on, as the port's `Unexpected`.
pub fn unexpected(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow!("sqlite: {e}"))
}
