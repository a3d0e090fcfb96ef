//! fjall (a log-structured merge tree) holding the DynamoDB layout's items in one keyspace,
//! key = pk, 0, sk. fjall has no group commit of its own: the writer thread builds one write
//! batch for all the writes queued, commits it (one journal append) and syncs the journal with
//! `fdatasync` before any of them is acknowledged. The idempotency item is claimed first, as
//! the conditional put of the DynamoDB adapter: a point read (bloom filters first), and within
//! a batch a set of the keys already claimed in it.
//!
//! Memory for the 64 MiB RSS budget: a 16 MiB block cache and 8 MiB memtables with fjall's
//! 64 MiB tables peaked at 98–112 MiB under this load; an 8 MiB block cache, 4 MiB memtables (one active, up to four
//! sealed until their flush), 16 MiB tables and two background workers peaked at 52–54 MiB (one
//! worker was faster but let sealed memtables pile up: 150–176 MiB). The journal is bounded at
//! the smallest size fjall allows (64 MiB, on disk).

use crate::data::{Chain, Rx, chain_hash, idem_pk, items, key};
use crate::engine::Engine;
use fjall::compaction::Leveled;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

pub const CACHE_MIB: u64 = 8;
pub const MEMTABLE_MIB: u64 = 4;
pub const TABLE_MIB: u64 = 16;
pub const WORKERS: usize = 2;
const JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

/// A size in MiB from the environment (`SPIKE_FJALL_CACHE_MIB`, `SPIKE_FJALL_MEMTABLE_MIB`:
/// for trying other settings), or `default`.
fn mib(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        * 1024
        * 1024
}

pub struct Fjall {
    db: Database,
    items: Keyspace,
    chain: Chain,
}

impl Fjall {
    /// `blobs`: values of 1 KiB and more (the sealed record, the stored answer) in blob files
    /// of their own (fjall's key-value separation), so compactions do not rewrite them.
    pub fn open(dir: &Path, blobs: bool) -> anyhow::Result<Self> {
        let db = Database::builder(dir)
            .cache_size(mib("SPIKE_FJALL_CACHE_MIB", CACHE_MIB))
            .max_journaling_size(JOURNAL_BYTES)
            .worker_threads(
                std::env::var("SPIKE_FJALL_WORKERS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(WORKERS),
            )
            .open()?;
        let memtable = mib("SPIKE_FJALL_MEMTABLE_MIB", MEMTABLE_MIB);
        let items = db.keyspace("items", || {
            let o = KeyspaceCreateOptions::default()
                .max_memtable_size(memtable)
                .compaction_strategy(Arc::new(
                    Leveled::default()
                        .with_table_target_size(mib("SPIKE_FJALL_TABLE_MIB", TABLE_MIB)),
                ));
            if blobs {
                o.with_kv_separation(Some(KvSeparationOptions::default()))
            } else {
                o
            }
        })?;
        let chain = match items.get(key("CHAIN", "HEAD"))? {
            Some(v) => crate::sqlite::head_of(&v),
            None => Chain::default(),
        };
        Ok(Self { db, items, chain })
    }

    /// The stored value of an item.
    pub fn get(&self, pk: &str, sk: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(self.items.get(key(pk, sk))?.map(|v| v.to_vec()))
    }

    pub fn head(&self) -> &Chain {
        &self.chain
    }
}

impl Engine for Fjall {
    fn commit(&mut self, batch: &[&Rx], durable: bool) -> anyhow::Result<Vec<bool>> {
        let mut wb = self.db.batch();
        if durable {
            wb = wb.durability(Some(PersistMode::SyncData));
        }
        let mut claimed = HashSet::with_capacity(batch.len());
        let mut chain = self.chain.clone();
        let mut out = Vec::with_capacity(batch.len());
        for rx in batch {
            let idem = key(&idem_pk(rx), "IDEM");
            if claimed.contains(&idem) || self.items.contains_key(&idem)? {
                out.push(false);
                continue;
            }
            let seq = chain.seq + 1;
            let hash = chain_hash(&chain.hash, seq, rx);
            for it in items(rx, seq, &chain.hash, &hash) {
                wb.insert(&self.items, it.key(), it.value);
            }
            claimed.insert(idem);
            chain = Chain { seq, hash };
            out.push(true);
        }
        // One journal append for the whole batch; with `durable`, fdatasync before it returns.
        wb.commit()?;
        self.chain = chain;
        Ok(out)
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        Ok(self.db.persist(PersistMode::SyncAll)?)
    }

    fn note(&self, _writes: u64) -> String {
        format!(
            "tables={} l0_tables={} blob_files={} disk_mib={:.0}",
            self.items.table_count(),
            self.items.l0_table_count(),
            self.items.blob_file_count(),
            self.items.disk_space() as f64 / 1048576.0
        )
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
}
