//! The store contract-test suite. Every store adapter runs it through `store_contract_tests!`
//! with a factory for fresh, empty stores:
//!
//! ```ignore
//! rxbridge_app::store_contract_tests!(async { (Arc::new(MyStore::open_temp()) as Arc<dyn Store>, guard) });
//! ```
//!
//! Each suite function is one clause of a port's contract (see the traits in `ports`). The
//! suites live in one module per port, each with its own macro (`clinic_store_contract_tests!`,
//! `prescription_store_contract_tests!`, `event_log_contract_tests!`,
//! `patient_index_contract_tests!`, `payment_store_contract_tests!`); `store_contract_tests!`
//! runs them all. The shared fixtures are here.

use crate::audit::verify_chain;
use crate::events::NewEvent;
use crate::ports::*;
use jiff::Timestamp;
use jiff::civil::date;
use rxbridge_domain::compliance::{Finding, Severity};
use rxbridge_domain::lifecycle::Status;
use rxbridge_domain::prescription::PrescriptionType;
use std::sync::Arc;

pub type Fixture = (Arc<dyn Store>, Box<dyn std::any::Any + Send>);

mod clinics;
mod events;
pub mod fulfilment;
mod patients;
mod payments;
/// The prescriber-key port's contract.
pub mod prescriber_keys;
mod prescriptions;
pub mod staff;
/// State bound to the chain, with a store-specific edit outside the application.
pub mod state;

pub use clinics::*;
pub use events::*;
pub use patients::*;
pub use payments::*;
pub use prescriptions::*;

/// Every store suite below, one module per port. A store adapter runs them all with
/// `store_contract_tests!(fresh())`, or one port's with its own macro.
#[macro_export]
macro_rules! store_contract_tests {
    ($make:expr) => {
        mod store_contract {
            #[allow(unused_imports)]
            use super::*;
            $crate::clinic_store_contract_tests!($make);
            $crate::prescription_store_contract_tests!($make);
            $crate::event_log_contract_tests!($make);
            $crate::patient_index_contract_tests!($make);
            $crate::payment_store_contract_tests!($make);
        }
    };
}

/// One port's suite as a test module: `$module` with one test per clause.
#[doc(hidden)]
#[macro_export]
macro_rules! store_contract_suite {
    ($make:expr, $module:ident: $($name:ident),+) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture: $crate::contract::Fixture = $make.await;
                    $crate::contract::$name(fixture.0.clone()).await;
                    drop(fixture);
                }
            )+
        }
    };
}

fn now() -> Timestamp {
    "2026-11-26T10:00:00Z".parse().unwrap()
}

fn ev(kind: &str, subject: &str) -> NewEvent {
    NewEvent {
        at: now(),
        kind: kind.into(),
        actor: "test".into(),
        subject: subject.into(),
        detail: serde_json::json!({"k": kind}),
    }
}

pub async fn clinic(store: &Arc<dyn Store>, id: &str) {
    store
        .create_clinic(
            Clinic {
                id: id.into(),
                name: format!("Clinic {id}"),
                created_at: now(),
            },
            vec![
                key(id, Mode::Test, &format!("{id}-test")),
                key(id, Mode::Live, &format!("{id}-live")),
            ],
            ev("clinic.created", id),
        )
        .await
        .unwrap();
}

fn key(clinic: &str, mode: Mode, hash: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        key_hash: hash.into(),
        prefix: "rxb_test_abcd".into(),
        clinic_id: clinic.into(),
        mode,
        created_at: now(),
    }
}

pub fn keys(nhs: Option<&str>, demo: &str) -> PatientKeys {
    PatientKeys {
        nhs: nhs.map(String::from),
        demographic: demo.into(),
        name_dob: format!("nd-{demo}"),
        family_dob: format!("fd-{demo}"),
        phone: None,
        email: Some(format!("em-{demo}")),
        postcode: format!("pc-{demo}"),
        address: format!("ad-{demo}"),
    }
}

pub fn record(id: &str, clinic: &str, mode: Mode, reference: &str) -> PrescriptionRecord {
    PrescriptionRecord {
        id: id.into(),
        clinic_id: clinic.into(),
        mode,
        clinic_reference: reference.into(),
        kind: PrescriptionType::Private,
        status: Status::AwaitingClinicalCheck,
        version: 1,
        issued_on: date(2026, 11, 20),
        created_at: now(),
        updated_at: now(),
        findings: vec![Finding {
            code: "cd_over_30_days".into(),
            severity: Severity::Flag,
            item: Some(0),
            message: "m".into(),
            rule: "r".into(),
            refs: Vec::new(),
        }],
        items: vec![ItemSummary {
            product_code: "CONCERTA-XL-36".into(),
            active_ingredient: "methylphenidate".into(),
            quantity: 28,
            days_supply: 28,
        }],
        sealed: vec![1, 2, 3, 4],
        event_seq: 0,
        nhs_exemption: None,
    }
}

pub fn new_rx(rec: PrescriptionRecord, idem_key: &str, patient: PatientKeys) -> NewPrescription {
    NewPrescription {
        idempotency: IdempotencyRecord {
            clinic_id: rec.clinic_id.clone(),
            mode: rec.mode,
            key: idem_key.into(),
            request_hash: format!("hash-of-{}", rec.id),
            response_status: 201,
            response_body: format!("{{\"id\":\"{}\"}}", rec.id),
            created_at: now(),
        },
        event: ev("prescription.received", &rec.id),
        record: rec,
        patient,
    }
}

async fn insert(
    store: &Arc<dyn Store>,
    rec: PrescriptionRecord,
    idem: &str,
    p: PatientKeys,
) -> InsertOutcome {
    store
        .insert_prescription(new_rx(rec, idem, p))
        .await
        .unwrap()
}

/// Insert prescription `id` of `clinic` (test mode, reference "R", demographics "d").
pub async fn insert_plain(store: &Arc<dyn Store>, id: &str, clinic: &str, idem: &str) {
    insert(
        store,
        record(id, clinic, Mode::Test, "R"),
        idem,
        keys(None, "d"),
    )
    .await;
}

/// Cancel prescription `id` at `version`, with its event.
pub async fn cancel(store: &dyn Store, id: &str, version: i64) -> PrescriptionRecord {
    store
        .transition(
            id,
            version,
            Status::Cancelled,
            ev("prescription.cancelled", id),
        )
        .await
        .unwrap()
}

/// The kinds of `subject`'s timeline, oldest first.
pub async fn kinds(store: &dyn Store, subject: &str) -> Vec<String> {
    let t = store.timeline(subject).await.unwrap();
    t.into_iter().map(|e| e.event.kind).collect()
}

/// The same patient details under NHS number `i`: every other key is shared (the hot-key
/// tests of each store).
pub fn shared_keys(i: u32) -> PatientKeys {
    PatientKeys {
        nhs: Some(format!("nhs-{i:05}")),
        demographic: "demo".into(),
        name_dob: "name-dob".into(),
        family_dob: "family-dob".into(),
        phone: None,
        email: Some("email".into()),
        postcode: "postcode".into(),
        address: "address".into(),
    }
}

/// Insert prescriptions `from..to` of clinic `cl_a` under [`shared_keys`], `parallel` at a time.
pub async fn insert_sharing_keys(store: &Arc<dyn Store>, from: u32, to: u32, parallel: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in from..to {
        let store = store.clone();
        tasks.spawn(async move {
            let rec = record(&format!("rx_{i}"), "cl_a", Mode::Test, "R");
            store
                .insert_prescription(new_rx(rec, &format!("k{i}"), shared_keys(i)))
                .await
                .unwrap();
        });
        if tasks.len() >= parallel {
            tasks.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
}
