//! What every store must do with prescriber keys (`PrescriberKeyStore`): keys are scoped to
//! their clinic, a key id is unique per clinic, a revocation is recorded once and the key is
//! kept, and every change writes its event on the chain.

use crate::events::NewEvent;
use crate::ports::{Clinic, Store, StoreError};
use crate::signatures::{PrescriberKey, PrescriberKeyStore, SigningAlg};
use jiff::Timestamp;
use std::sync::Arc;

/// The store twice (its two ports) and whatever keeps it alive.
pub type KeyFixture = (
    Arc<dyn Store>,
    Arc<dyn PrescriberKeyStore>,
    Box<dyn std::any::Any + Send>,
);

#[macro_export]
macro_rules! prescriber_key_store_contract_tests {
    ($make:expr) => {
        mod prescriber_key_store_contract {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn keys_are_scoped_unique_and_kept_when_revoked() {
                let f: $crate::contract::prescriber_keys::KeyFixture = $make.await;
                $crate::contract::prescriber_keys::keys_are_scoped_unique_and_kept_when_revoked(
                    f.0.clone(),
                    f.1.clone(),
                )
                .await;
                drop(f);
            }
        }
    };
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn ev(kind: &str, subject: &str) -> NewEvent {
    NewEvent {
        at: at("2026-11-26T10:00:00Z"),
        kind: kind.into(),
        actor: "test".into(),
        subject: subject.into(),
        detail: serde_json::json!({}),
    }
}

fn key(clinic: &str, kid: &str, added: &str) -> PrescriberKey {
    PrescriberKey {
        clinic_id: clinic.into(),
        kid: kid.into(),
        registration: "gmc:7012345".into(),
        alg: SigningAlg::Es256,
        public_key_pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".into(),
        added_at: at(added),
        revoked_at: None,
    }
}

pub async fn keys_are_scoped_unique_and_kept_when_revoked(
    store: Arc<dyn Store>,
    keys: Arc<dyn PrescriberKeyStore>,
) {
    for id in ["cl_a", "cl_b"] {
        store
            .create_clinic(
                Clinic {
                    id: id.into(),
                    name: id.into(),
                    created_at: at("2026-11-26T09:00:00Z"),
                },
                vec![],
                ev("clinic.created", id),
            )
            .await
            .unwrap();
    }
    let k2 = key("cl_a", "k2", "2026-11-26T10:00:00Z");
    keys.add_prescriber_key(k2.clone(), ev("prescriber_key.added", "cl_a"))
        .await
        .unwrap();
    let k1 = key("cl_a", "k1", "2026-11-26T10:00:01Z");
    keys.add_prescriber_key(k1.clone(), ev("prescriber_key.added", "cl_a"))
        .await
        .unwrap();
    // The same kid at another clinic is another key.
    keys.add_prescriber_key(
        key("cl_b", "k1", "2026-11-26T10:00:02Z"),
        ev("prescriber_key.added", "cl_b"),
    )
    .await
    .unwrap();
    assert!(matches!(
        keys.add_prescriber_key(key("cl_a", "k1", "2026-11-26T11:00:00Z"), ev("x", "cl_a"))
            .await,
        Err(StoreError::Duplicate)
    ));
    assert!(matches!(
        keys.add_prescriber_key(
            key("cl_none", "k1", "2026-11-26T11:00:00Z"),
            ev("x", "cl_none")
        )
        .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        keys.prescriber_key("cl_a", "k1").await.unwrap(),
        Some(k1.clone())
    );
    assert_eq!(keys.prescriber_key("cl_b", "k2").await.unwrap(), None);
    let listed: Vec<String> = keys
        .prescriber_keys("cl_a")
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(listed, ["k2", "k1"], "oldest first");

    let revoked = at("2026-12-01T00:00:00Z");
    keys.revoke_prescriber_key("cl_a", "k1", revoked, ev("prescriber_key.revoked", "cl_a"))
        .await
        .unwrap();
    let got = keys.prescriber_key("cl_a", "k1").await.unwrap().unwrap();
    assert_eq!(got.revoked_at, Some(revoked));
    assert_eq!(
        got.public_key_pem, k1.public_key_pem,
        "kept, so old signatures verify"
    );
    assert!(matches!(
        keys.revoke_prescriber_key("cl_a", "k1", at("2026-12-02T00:00:00Z"), ev("x", "cl_a"))
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        keys.prescriber_key("cl_a", "k1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at,
        Some(revoked),
        "the first revocation stands"
    );
    assert!(matches!(
        keys.revoke_prescriber_key("cl_b", "k2", revoked, ev("x", "cl_b"))
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        keys.prescriber_key("cl_b", "k1")
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_none(),
        "another clinic's key of the same id is untouched"
    );
    // Every change is on the chain.
    let kinds = crate::contract::kinds(&*store, "cl_a").await;
    assert_eq!(
        kinds,
        [
            "clinic.created",
            "prescriber_key.added",
            "prescriber_key.added",
            "prescriber_key.revoked"
        ]
    );
}
