//! Clinic credentials: create a clinic with a sandbox and a live key, rotate a key, and
//! authenticate a bearer key. Keys are shown once; only their SHA-256 is stored.
//!
//! Authentication caches the callers of keys it found, by key hash, for as long as the store's
//! API-key generation stays the same (`ClinicStore::api_key_generation`: SQLite bumps it in the
//! transaction that rotates a key, whichever process rotates it), so a rotated key is refused
//! at its next request. A store without a generation (DynamoDB) has its answers kept for
//! [`KEY_CACHE_TTL`] at most. Unknown keys are never cached.

use crate::clock::Clock;
use crate::crypto::sha256_hex;
use crate::events::NewEvent;
use crate::ports::{ApiKeyRecord, Caller, Clinic, ClinicStore, Mode, StoreError};
use rand::Rng;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a key found in a store without an API-key generation is trusted without asking the
/// store again: a key rotated on DynamoDB stops working within this time on every instance.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(5);

/// Keys cached at most; the cache starts again empty when full (there are a few keys per clinic).
const KEY_CACHE_MAX: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ClinicError {
    #[error("the clinic name must be 1 to 200 characters")]
    BadName,
    #[error("no clinic with id {0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct NewClinic {
    pub clinic_id: String,
    pub test_key: String,
    pub live_key: String,
}

pub struct Clinics {
    store: Arc<dyn ClinicStore>,
    clock: Arc<dyn Clock>,
    keys: Mutex<HashMap<String, CachedKey>>,
    /// Bumped by every key change this process makes: a lookup that began before one does not
    /// fill the cache (it may have read the key the change retired).
    changes: std::sync::atomic::AtomicU64,
}

/// A key found in the store: its caller, under which generation, and when.
#[derive(Clone)]
struct CachedKey {
    caller: Caller,
    generation: Option<i64>,
    found_at: Instant,
}

impl CachedKey {
    /// Whether it still holds: the same generation, or without one, younger than the TTL.
    fn holds(&self, generation: Option<i64>) -> bool {
        match generation {
            Some(_) => self.generation == generation,
            None => self.generation.is_none() && self.found_at.elapsed() < KEY_CACHE_TTL,
        }
    }
}

const KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new API key: `rxb_test_` or `rxb_live_` and 32 base62 characters (190 bits) from the OS.
pub fn generate_key(mode: Mode) -> String {
    let mut rng = rand::rngs::OsRng;
    let body: String = (0..32)
        .map(|_| KEY_ALPHABET[rng.gen_range(0..KEY_ALPHABET.len())] as char)
        .collect();
    format!("rxb_{}_{body}", mode.as_str())
}

/// Which mode a key claims by its prefix (the stored record decides; this only helps reject
/// obvious garbage without a lookup).
pub fn key_mode(key: &str) -> Option<Mode> {
    if key.starts_with("rxb_test_") {
        Some(Mode::Test)
    } else if key.starts_with("rxb_live_") {
        Some(Mode::Live)
    } else {
        None
    }
}

impl Clinics {
    pub fn new(store: Arc<dyn ClinicStore>, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            clock,
            keys: Mutex::default(),
            changes: Default::default(),
        }
    }

    fn key_record(&self, clinic_id: &str, mode: Mode, key: &str) -> ApiKeyRecord {
        ApiKeyRecord {
            key_hash: sha256_hex(key.as_bytes()),
            prefix: key[..13].to_string(),
            clinic_id: clinic_id.to_string(),
            mode,
            created_at: self.clock.now(),
        }
    }

    pub async fn add(&self, name: &str) -> Result<NewClinic, ClinicError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ClinicError::BadName);
        }
        let id = format!("cl_{}", uuid::Uuid::now_v7().simple());
        let test_key = generate_key(Mode::Test);
        let live_key = generate_key(Mode::Live);
        let now = self.clock.now();
        let keys = vec![
            self.key_record(&id, Mode::Test, &test_key),
            self.key_record(&id, Mode::Live, &live_key),
        ];
        let event = NewEvent {
            at: now,
            kind: "clinic.created".into(),
            actor: "cli".into(),
            subject: id.clone(),
            detail: serde_json::json!({ "name": name, "keys": [keys[0].prefix, keys[1].prefix] }),
        };
        self.store
            .create_clinic(
                Clinic {
                    id: id.clone(),
                    name: name.to_string(),
                    created_at: now,
                },
                keys,
                event,
            )
            .await?;
        Ok(NewClinic {
            clinic_id: id,
            test_key,
            live_key,
        })
    }

    /// Issue a new key for `mode`; the previous key of that mode stops working at once.
    pub async fn rotate_key(&self, clinic_id: &str, mode: Mode) -> Result<String, ClinicError> {
        if self.store.get_clinic(clinic_id).await?.is_none() {
            return Err(ClinicError::NotFound(clinic_id.to_string()));
        }
        let key = generate_key(mode);
        let rec = self.key_record(clinic_id, mode, &key);
        let event = NewEvent {
            at: self.clock.now(),
            kind: "clinic.key_rotated".into(),
            actor: "cli".into(),
            subject: clinic_id.to_string(),
            detail: serde_json::json!({ "mode": mode.as_str(), "key": rec.prefix }),
        };
        let rotated = self.store.rotate_key(rec, event).await;
        // This process forgets the old key at once, whatever the store's generation says, and
        // a lookup already under way does not put it back.
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.cache().clear();
        match rotated {
            Err(StoreError::NotFound) => Err(ClinicError::NotFound(clinic_id.to_string())),
            other => other.map(|_| key).map_err(Into::into),
        }
    }

    /// The caller for a bearer key, or `None` for a missing, malformed, unknown or revoked key.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Caller>, StoreError> {
        if key_mode(key).is_none() || key.len() > 100 {
            return Ok(None);
        }
        let hash = sha256_hex(key.as_bytes());
        let changes = self.changes.load(std::sync::atomic::Ordering::SeqCst);
        // Read before the key, so a change committed in between makes the entry stale.
        let generation = self.store.api_key_generation().await?;
        let cached = self.cache().get(&hash).cloned();
        if let Some(c) = cached.filter(|c| c.holds(generation)) {
            return Ok(Some(c.caller));
        }
        let found = self.store.find_api_key(&hash).await?;
        let mut cache = self.cache();
        let changed = self.changes.load(std::sync::atomic::Ordering::SeqCst) != changes;
        match &found {
            Some(_) if changed => {}
            Some(caller) => {
                if cache.len() >= KEY_CACHE_MAX {
                    cache.clear();
                }
                cache.insert(
                    hash,
                    CachedKey {
                        caller: caller.clone(),
                        generation,
                        found_at: Instant::now(),
                    },
                );
            }
            None => {
                cache.remove(&hash);
            }
        }
        Ok(found)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedKey>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn keys_have_prefix_and_entropy() {
        let a = generate_key(Mode::Test);
        let b = generate_key(Mode::Test);
        assert!(a.starts_with("rxb_test_") && a.len() == 41);
        assert_ne!(a, b);
        assert!(generate_key(Mode::Live).starts_with("rxb_live_"));
        assert_eq!(key_mode(&a), Some(Mode::Test));
        assert_eq!(key_mode("Bearer x"), None);
    }
}
