//! fjall (a log-structured merge tree) holding the DynamoDB layout's items in one keyspace,
//! key = pk, 0, sk. fjall has no group commit of its own: the writer thread builds one write
//! batch for all the writes queued, commits it (one journal append) and syncs the journal with
//! `fdatasync` before any of them is acknowledged. The idempotency item is claimed first, as
//! the conditional put of the DynamoDB adapter: a point read (bloom filters first), and within
//! a batch a set of the keys already claimed in it.
//!
//! Memory for the 64 MiB RSS budget: a 16 MiB block cache, memtables of 8 MiB (one active,
//! sealed ones until their flush) and the smallest journal bound fjall allows (64 MiB, on disk).

use crate::data::{Chain, Rx, chain_hash, idem_pk, items, key};
use crate::engine::Engine;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, KvSeparationOptions, PersistMode};
use std::collections::HashSet;
use std::path::Path;

pub const CACHE_BYTES: u64 = 16 * 1024 * 1024;
pub const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;
const JOURNAL_BYTES: u64 = 64 * 1024 * 1024;

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
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            .open()?;
        let items = db.keyspace("items", || {
            let o = KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES);
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
