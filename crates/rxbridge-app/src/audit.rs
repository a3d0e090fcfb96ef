//! Audit: walk the whole hash-chained event log and report the first broken link.

use crate::events::{BrokenLink, GENESIS_HASH, verify_run};
use crate::ports::{Store, StoreError};

#[derive(Debug)]
pub struct ChainReport {
    pub events: i64,
    pub head_hash: String,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("the event chain is broken at event {}: {}", .0.seq, .0.reason)]
    Broken(BrokenLink),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub async fn verify_chain(store: &dyn Store) -> Result<ChainReport, VerifyError> {
    let (mut seq, mut hash) = (0i64, GENESIS_HASH.to_string());
    loop {
        let page = store.events_after(seq, 1000).await?;
        if page.is_empty() {
            return Ok(ChainReport {
                events: seq,
                head_hash: hash,
            });
        }
        (seq, hash) = verify_run(seq, &hash, &page).map_err(VerifyError::Broken)?;
    }
}
