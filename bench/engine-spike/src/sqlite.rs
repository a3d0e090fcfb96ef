//! SQLite as the product runs it (`rxbridge-store-sqlite`: WAL, `synchronous=FULL`, one
//! writer connection with a 16 MiB page cache, a batch per transaction, checkpoints after the
//! batch is answered with a helper thread copying frames ahead), in two layouts:
//! - `Product`: the tables and indexes one intake writes today (`migrations.rs` at schema 11:
//!   idempotency, prescriptions, rx_patient, rx_patient_phone, rx_history, events), written by
//!   the same statements as `queries::insert_prescription`;
//! - `Items`: the single item table `items(pk, sk, value)` holding the DynamoDB layout's items.

use crate::data::{Chain, GENESIS_HASH, Rx, chain_hash, items};
use crate::engine::Engine;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::mpsc;

/// The product's checkpoint mark (`writer.rs`: `CHECKPOINT_PAGES`).
const CHECKPOINT_PAGES: i32 = 4_096;

/// The product's tables and indexes that an intake writes, in their shape at schema 11
/// (the CREATE statements of `crates/rxbridge-store-sqlite/src/migrations.rs`, with the later
/// ALTERs and index changes folded in; the foreign key to `clinics` left out).
const PRODUCT_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS prescriptions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    clinic_id TEXT NOT NULL,
    mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
    clinic_reference TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    version INTEGER NOT NULL,
    issued_on TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    items TEXT NOT NULL,
    findings TEXT NOT NULL,
    sealed BLOB NOT NULL,
    event_seq INTEGER NOT NULL DEFAULT 0,
    nhs_exemption TEXT
);
CREATE INDEX IF NOT EXISTS rx_by_clinic ON prescriptions(clinic_id, mode, seq);
CREATE INDEX IF NOT EXISTS rx_by_reference ON prescriptions(clinic_id, mode, clinic_reference, seq);
CREATE INDEX IF NOT EXISTS rx_by_status ON prescriptions(clinic_id, mode, status, seq);
CREATE INDEX IF NOT EXISTS rx_by_mode_status ON prescriptions(mode, status, seq);
CREATE INDEX IF NOT EXISTS rx_by_mode_reference ON prescriptions(mode, clinic_reference, seq);
CREATE TABLE IF NOT EXISTS rx_patient (
    prescription_id TEXT PRIMARY KEY REFERENCES prescriptions(id),
    mode TEXT NOT NULL,
    identity TEXT NOT NULL,
    nhs TEXT,
    demographic TEXT NOT NULL,
    name_dob TEXT NOT NULL,
    family_dob TEXT NOT NULL,
    email TEXT,
    postcode TEXT NOT NULL,
    address TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rxp_nhs ON rx_patient(mode, nhs, name_dob) WHERE nhs IS NOT NULL;
CREATE INDEX IF NOT EXISTS rxp_name_dob ON rx_patient(mode, name_dob, nhs);
CREATE INDEX IF NOT EXISTS rxp_family_dob ON rx_patient(mode, family_dob);
CREATE INDEX IF NOT EXISTS rxp_email ON rx_patient(mode, email) WHERE email IS NOT NULL;
CREATE INDEX IF NOT EXISTS rxp_postcode ON rx_patient(mode, postcode);
CREATE INDEX IF NOT EXISTS rxp_address ON rx_patient(mode, address, identity);
CREATE TABLE IF NOT EXISTS rx_patient_phone (
    prescription_id TEXT PRIMARY KEY REFERENCES prescriptions(id),
    mode TEXT NOT NULL,
    phone TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rxp_phone ON rx_patient_phone(mode, phone);
CREATE TABLE IF NOT EXISTS rx_history (
    mode TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    prescription_id TEXT NOT NULL,
    has_nhs INTEGER NOT NULL,
    clinic_id TEXT NOT NULL,
    issued_on TEXT NOT NULL,
    status TEXT NOT NULL,
    items TEXT NOT NULL,
    PRIMARY KEY (mode, key, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rx_history_by_prescription ON rx_history(prescription_id);
CREATE INDEX IF NOT EXISTS rx_history_without_nhs ON rx_history(mode, key, seq) WHERE has_nhs = 0;
CREATE TABLE IF NOT EXISTS idempotency (
    clinic_id TEXT NOT NULL,
    mode TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    response_status INTEGER NOT NULL,
    response_body TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (clinic_id, mode, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_subject ON events(subject, seq);
"#;

const ITEMS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items (pk TEXT NOT NULL, sk TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (pk, sk)) WITHOUT ROWID;";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Product,
    Items,
}

pub struct Sqlite {
    conn: Connection,
    layout: Layout,
    wal_pages: Arc<AtomicI32>,
    wal_frames: Arc<AtomicU64>,
    helper: Option<(mpsc::SyncSender<()>, std::thread::JoinHandle<()>)>,
    chain: Chain,
}

fn open_conn(path: &Path, cache_kib: i64, bulk: bool) -> rusqlite::Result<Connection> {
    let c = Connection::open(path)?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    let mode: String = c.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    assert_eq!(mode, "wal");
    // FULL: a commit is fsynced before it returns. The preload alone runs with NORMAL (no sync
    // per commit) and syncs at its end with a checkpoint.
    let sync = if bulk { "NORMAL" } else { "FULL" };
    c.execute_batch(&format!(
        "PRAGMA synchronous={sync}; PRAGMA temp_store=MEMORY; PRAGMA secure_delete=FAST; PRAGMA wal_autocheckpoint=0;"
    ))?;
    c.pragma_update(None, "cache_size", -cache_kib)?;
    Ok(c)
}

/// A PASSIVE checkpoint; `SQLITE_BUSY` (another one running) is fine.
fn checkpoint(c: &Connection) {
    let _ = c.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
}

impl Sqlite {
    /// `bulk`: the preload's settings (`Tuning::bulk_load`: a 256 MiB cache, no helper).
    pub fn open(dir: &Path, layout: Layout, bulk: bool) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("spike.db");
        let cache_kib = if bulk { 256 * 1024 } else { 16 * 1024 };
        let mut conn = open_conn(&path, cache_kib, bulk)?;
        conn.execute_batch(match layout {
            Layout::Product => PRODUCT_SCHEMA,
            Layout::Items => ITEMS_SCHEMA,
        })?;
        let wal_pages = Arc::new(AtomicI32::new(0));
        let wal_frames = Arc::new(AtomicU64::new(0));
        let (wp, wf, last) = (wal_pages.clone(), wal_frames.clone(), AtomicI32::new(0));
        conn.wal_hook(Some(
            move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
                wp.store(pages, Ordering::Relaxed);
                let before = last.swap(pages, Ordering::Relaxed);
                let appended = if pages >= before {
                    pages - before
                } else {
                    pages
                };
                wf.fetch_add(appended.max(0) as u64, Ordering::Relaxed);
                Ok(())
            },
        ))?;
        let helper = if bulk {
            None
        } else {
            let c = open_conn(&path, 1024, false)?;
            let (wake, rx) = mpsc::sync_channel::<()>(1);
            let t = std::thread::Builder::new()
                .name("spike-checkpoint".into())
                .spawn(move || {
                    while rx.recv().is_ok() {
                        checkpoint(&c);
                    }
                })?;
            Some((wake, t))
        };
        let chain = read_head(&conn, layout)?;
        Ok(Self {
            conn,
            layout,
            wal_pages,
            wal_frames,
            helper,
            chain,
        })
    }
}

fn read_head(c: &Connection, layout: Layout) -> rusqlite::Result<Chain> {
    let head = match layout {
        Layout::Product => c
            .query_row(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
                [],
                |r| {
                    Ok(Chain {
                        seq: r.get(0)?,
                        hash: r.get(1)?,
                    })
                },
            )
            .optional()?,
        Layout::Items => c
            .query_row(
                "SELECT value FROM items WHERE pk = 'CHAIN' AND sk = 'HEAD'",
                [],
                |r| r.get::<_, Vec<u8>>(0),
            )
            .optional()?
            .map(|v| head_of(&v)),
    };
    Ok(head.unwrap_or_default())
}

/// The chain head from the `CHAIN`/`HEAD` item's value (seq, then hash: `data::items`).
pub fn head_of(v: &[u8]) -> Chain {
    let mut attrs = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let n = v[i] as usize;
        let name_end = i + 1 + n;
        let len =
            u32::from_le_bytes(v[name_end..name_end + 4].try_into().unwrap_or_default()) as usize;
        attrs.push(&v[name_end + 4..name_end + 4 + len]);
        i = name_end + 4 + len;
    }
    match attrs.as_slice() {
        [seq, hash] => Chain {
            seq: std::str::from_utf8(seq)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0),
            hash: String::from_utf8_lossy(hash).into_owned(),
        },
        _ => Chain {
            seq: 0,
            hash: GENESIS_HASH.into(),
        },
    }
}

/// One intake in the product's tables (`queries::insert_prescription`): `false` when the
/// idempotency key was taken.
fn insert_product(c: &Connection, chain: &mut Chain, rx: &Rx) -> rusqlite::Result<bool> {
    let claimed = c
        .prepare_cached(
            "INSERT INTO idempotency (clinic_id, mode, key, request_hash, response_status, response_body, created_at)
             VALUES (?1, 'live', ?2, ?3, 201, ?4, ?5) ON CONFLICT DO NOTHING",
        )?
        .execute(params![rx.clinic_id, rx.idem_key, rx.request_hash, rx.answer, rx.created_at])?;
    if claimed == 0 {
        return Ok(false);
    }
    let seq = chain.seq + 1;
    c.prepare_cached(
        "INSERT INTO prescriptions (id, clinic_id, mode, clinic_reference, kind, status, version, issued_on, created_at, updated_at, items, findings, sealed, event_seq, nhs_exemption)
         VALUES (?1, ?2, 'live', ?3, 'private', 'received', 1, ?4, ?5, ?5, ?6, ?7, ?8, ?9, NULL)",
    )?
    .execute(params![rx.id, rx.clinic_id, rx.clinic_reference, rx.issued_on, rx.created_at, rx.items_json, rx.findings_json, rx.sealed, seq])?;
    let rx_seq = c.last_insert_rowid();
    let p = &rx.patient;
    c.prepare_cached(
        "INSERT INTO rx_patient (prescription_id, mode, identity, nhs, demographic, name_dob, family_dob, email, postcode, address)
         VALUES (?1, 'live', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![rx.id, p.identity, p.nhs, p.demographic, p.name_dob, p.family_dob, p.email, p.postcode, p.address])?;
    c.prepare_cached(
        "INSERT INTO rx_patient_phone (prescription_id, mode, phone) VALUES (?1, 'live', ?2)",
    )?
    .execute(params![rx.id, p.phone])?;
    for key in [format!("d:{}", p.demographic), format!("n:{}", p.nhs)] {
        c.prepare_cached(
            "INSERT INTO rx_history (mode, key, seq, prescription_id, has_nhs, clinic_id, issued_on, status, items)
             VALUES ('live', ?1, ?2, ?3, 1, ?4, ?5, 'received', ?6)",
        )?
        .execute(params![key, rx_seq, rx.id, rx.clinic_id, rx.issued_on, rx.items_json])?;
    }
    let hash = chain_hash(&chain.hash, seq, rx);
    c.prepare_cached(
        "INSERT INTO events (seq, at, kind, actor, subject, detail, prev_hash, hash) VALUES (?1, ?2, 'prescription.received', ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![seq, rx.created_at, format!("clinic:{}", rx.clinic_id), rx.id, rx.event_detail, chain.hash, hash])?;
    *chain = Chain { seq, hash };
    Ok(true)
}

/// One intake as items: the idempotency item claimed first (the conditional put), then the
/// rest put (replacing an item under the same key, as a DynamoDB put does).
fn insert_items(c: &Connection, chain: &mut Chain, rx: &Rx) -> rusqlite::Result<bool> {
    let seq = chain.seq + 1;
    let hash = chain_hash(&chain.hash, seq, rx);
    let all = items(rx, seq, &chain.hash, &hash);
    let (idem, rest) = all.split_first().expect("an intake has items");
    let claimed = c
        .prepare_cached(
            "INSERT INTO items (pk, sk, value) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        )?
        .execute(params![idem.pk, idem.sk, idem.value])?;
    if claimed == 0 {
        return Ok(false);
    }
    let mut put =
        c.prepare_cached("INSERT OR REPLACE INTO items (pk, sk, value) VALUES (?1, ?2, ?3)")?;
    for it in rest {
        put.execute(params![it.pk, it.sk, it.value])?;
    }
    *chain = Chain { seq, hash };
    Ok(true)
}

impl Engine for Sqlite {
    fn commit(&mut self, batch: &[&Rx], _durable: bool) -> anyhow::Result<Vec<bool>> {
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        let mut chain = self.chain.clone();
        let mut out = Vec::with_capacity(batch.len());
        for rx in batch {
            let r = match self.layout {
                Layout::Product => insert_product(&self.conn, &mut chain, rx),
                Layout::Items => insert_items(&self.conn, &mut chain, rx),
            };
            match r {
                Ok(stored) => out.push(stored),
                Err(e) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                    return Err(e.into());
                }
            }
        }
        if let Err(e) = self.conn.execute_batch("COMMIT") {
            let _ = self.conn.execute_batch("ROLLBACK");
            return Err(e.into());
        }
        self.chain = chain;
        Ok(out)
    }

    fn between_batches(&mut self) {
        let pages = self.wal_pages.load(Ordering::Relaxed);
        let mark = if self.helper.is_some() {
            CHECKPOINT_PAGES
        } else {
            65_536
        };
        if pages >= mark {
            self.wal_pages.store(0, Ordering::Relaxed);
            checkpoint(&self.conn);
        } else if pages >= mark / 4
            && let Some((wake, _)) = &self.helper
        {
            let _ = wake.try_send(());
        }
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn note(&self, writes: u64) -> String {
        format!(
            "wal_frames_per_rx={:.1}",
            self.wal_frames.load(Ordering::Relaxed) as f64 / writes.max(1) as f64
        )
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        let Sqlite { conn, helper, .. } = *self;
        if let Some((wake, t)) = helper {
            drop(wake);
            let _ = t.join();
        }
        drop(conn);
        Ok(())
    }
}
