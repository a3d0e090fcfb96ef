//! What the writer thread drives, and the ceiling: the same item bytes appended to a file and
//! `fdatasync`ed once per batch (`bench/ceiling`'s durable endpoint without HTTP).

use crate::data::{Chain, Rx, chain_hash, items};
use std::io::Write;
use std::path::Path;

/// A storage engine under the writer thread.
pub trait Engine: Send {
    /// Write the batch in one commit, durable before it returns when `durable` (otherwise the
    /// preload's `sync` makes it so); per write, whether it was stored (`false`: its
    /// idempotency key existed, and nothing of it was written).
    fn commit(&mut self, batch: &[&Rx], durable: bool) -> anyhow::Result<Vec<bool>>;
    /// After a batch has been answered (SQLite checkpoints here, as the product's writer).
    fn between_batches(&mut self) {}
    /// Make every committed write durable.
    fn sync(&mut self) -> anyhow::Result<()>;
    /// Engine figures for the report line (`writes` acknowledged in the run).
    fn note(&self, _writes: u64) -> String {
        String::new()
    }
    fn close(self: Box<Self>) -> anyhow::Result<()>;
}

/// Appends every item (key, value, each length-prefixed) of every write to one file.
pub struct Ceiling {
    file: std::fs::File,
    chain: Chain,
    buf: Vec<u8>,
}

impl Ceiling {
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("ceiling.log"))?;
        Ok(Self {
            file,
            chain: Chain::default(),
            buf: Vec::with_capacity(1 << 20),
        })
    }
}

impl Engine for Ceiling {
    fn commit(&mut self, batch: &[&Rx], durable: bool) -> anyhow::Result<Vec<bool>> {
        self.buf.clear();
        for rx in batch {
            let seq = self.chain.seq + 1;
            let hash = chain_hash(&self.chain.hash, seq, rx);
            for it in items(rx, seq, &self.chain.hash, &hash) {
                let k = it.key();
                self.buf.extend_from_slice(&(k.len() as u32).to_le_bytes());
                self.buf.extend_from_slice(&k);
                self.buf
                    .extend_from_slice(&(it.value.len() as u32).to_le_bytes());
                self.buf.extend_from_slice(&it.value);
            }
            self.chain = Chain { seq, hash };
        }
        self.file.write_all(&self.buf)?;
        if durable {
            self.file.sync_data()?;
        }
        Ok(vec![true; batch.len()])
    }

    fn sync(&mut self) -> anyhow::Result<()> {
        Ok(self.file.sync_data()?)
    }

    fn close(self: Box<Self>) -> anyhow::Result<()> {
        Ok(())
    }
}
