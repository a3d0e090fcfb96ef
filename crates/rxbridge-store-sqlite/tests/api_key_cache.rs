//! API-key lookups are cached by `Clinics` while the store's API-key generation stays the same:
//! a key rotated by another process on the same data directory (the CLI beside the server) is
//! refused at its next request, and a cached key costs no key lookup.

use async_trait::async_trait;
use rxbridge_app::clinics::Clinics;
use rxbridge_app::clock::SystemClock;
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::{ApiKeyRecord, Caller, Clinic, ClinicStore, Mode, StoreError};
use rxbridge_store_sqlite::SqliteStore;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The SQLite store, counting key lookups; `generation: false` hides its generation (as a store
/// without one).
struct Counting {
    inner: SqliteStore,
    lookups: AtomicUsize,
    generation: bool,
}

#[async_trait]
impl ClinicStore for Counting {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn create_clinic(
        &self,
        clinic: Clinic,
        keys: Vec<ApiKeyRecord>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        self.inner.create_clinic(clinic, keys, event).await
    }
    async fn get_clinic(&self, id: &str) -> Result<Option<Clinic>, StoreError> {
        self.inner.get_clinic(id).await
    }
    async fn list_clinics(&self) -> Result<Vec<Clinic>, StoreError> {
        self.inner.list_clinics().await
    }
    async fn rotate_key(&self, key: ApiKeyRecord, event: NewEvent) -> Result<(), StoreError> {
        self.inner.rotate_key(key, event).await
    }
    async fn find_api_key(&self, key_hash: &str) -> Result<Option<Caller>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        self.inner.find_api_key(key_hash).await
    }
    async fn api_key_generation(&self) -> Result<Option<i64>, StoreError> {
        if self.generation {
            self.inner.api_key_generation().await
        } else {
            Ok(None)
        }
    }
}

fn counting(path: &std::path::Path, generation: bool) -> Arc<Counting> {
    Arc::new(Counting {
        inner: SqliteStore::open(path).unwrap(),
        lookups: AtomicUsize::new(0),
        generation,
    })
}

#[tokio::test]
async fn a_key_rotated_by_another_process_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rxbridge.db");
    let server_store = counting(&path, true);
    let server = Clinics::new(server_store.clone(), Arc::new(SystemClock));
    let new = server.add("Acme").await.unwrap();
    let test = server.authenticate(&new.test_key).await.unwrap().unwrap();
    assert_eq!(
        (test.clinic_id.as_str(), test.mode),
        (new.clinic_id.as_str(), Mode::Test)
    );
    let before = server_store.lookups.load(Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(
            server.authenticate(&new.test_key).await.unwrap(),
            Some(test.clone())
        );
    }
    assert_eq!(
        server_store.lookups.load(Ordering::SeqCst),
        before,
        "a cached key is not looked up again"
    );
    assert!(
        server
            .authenticate("rxb_test_unknown")
            .await
            .unwrap()
            .is_none()
    );

    // The CLI: another store on the same file (its own connections and writer).
    let cli = Clinics::new(counting(&path, true), Arc::new(SystemClock));
    let rotated = cli.rotate_key(&new.clinic_id, Mode::Test).await.unwrap();
    assert!(
        server.authenticate(&new.test_key).await.unwrap().is_none(),
        "the rotated key is refused at its next request"
    );
    assert!(server.authenticate(&new.test_key).await.unwrap().is_none());
    assert_eq!(
        server.authenticate(&rotated).await.unwrap(),
        Some(test.clone())
    );
    let live = server.authenticate(&new.live_key).await.unwrap().unwrap();
    assert_eq!(live.mode, Mode::Live, "the live key is untouched");
}

#[tokio::test]
async fn without_a_generation_a_rotation_in_this_process_still_refuses_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = counting(&dir.path().join("rxbridge.db"), false);
    let clinics = Clinics::new(store.clone(), Arc::new(SystemClock));
    let new = clinics.add("Acme").await.unwrap();
    assert!(clinics.authenticate(&new.test_key).await.unwrap().is_some());
    let before = store.lookups.load(Ordering::SeqCst);
    assert!(clinics.authenticate(&new.test_key).await.unwrap().is_some());
    assert_eq!(
        store.lookups.load(Ordering::SeqCst),
        before,
        "served from the cache"
    );
    let rotated = clinics
        .rotate_key(&new.clinic_id, Mode::Test)
        .await
        .unwrap();
    assert!(clinics.authenticate(&new.test_key).await.unwrap().is_none());
    assert!(clinics.authenticate(&rotated).await.unwrap().is_some());
}

/// A data directory of schema 10 (before the generation) opens, and its keys are counted from
/// then on.
#[tokio::test]
async fn a_schema_10_data_directory_gets_the_generation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rxbridge.db");
    let clinics = Clinics::new(
        Arc::new(SqliteStore::open(&path).unwrap()),
        Arc::new(SystemClock),
    );
    let new = clinics.add("Acme").await.unwrap();
    drop(clinics);
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "DROP TRIGGER api_keys_generation_insert;
         DROP TRIGGER api_keys_generation_update;
         DROP TRIGGER api_keys_generation_delete;
         DROP TABLE api_key_generation;
         PRAGMA user_version = 10;",
    )
    .unwrap();
    drop(c);
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    assert_eq!(store.api_key_generation().await.unwrap(), Some(0));
    let clinics = Clinics::new(store.clone(), Arc::new(SystemClock));
    assert!(clinics.authenticate(&new.test_key).await.unwrap().is_some());
    clinics
        .rotate_key(&new.clinic_id, Mode::Test)
        .await
        .unwrap();
    assert_eq!(
        store.api_key_generation().await.unwrap(),
        Some(2),
        "the old key revoked, the new one added"
    );
    assert!(clinics.authenticate(&new.test_key).await.unwrap().is_none());
}
