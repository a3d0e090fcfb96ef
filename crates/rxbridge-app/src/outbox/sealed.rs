//! Outbox message bodies at rest. A body that carries patient data (the warehouse's order: the
//! recipient's name, address, phone and the medicine) is sealed with the patient vault the
//! moment it is built, so no store — SQLite rows, its WAL, DynamoDB items, export files, dead
//! letters — ever holds it in the clear; it is opened only by the delivery worker just before
//! it is signed and sent, and by the ERP orders file as it is rendered (UK GDPR Art. 32(1)(a):
//! encryption of personal data; the NHS DSPT "data at rest" standard).
//!
//! The associated data binds a sealed body to its row: message id, destination, event type and
//! subject. A body copied onto another message, or a message whose destination was edited to
//! point a patient's address at a clinic's endpoint, no longer opens.
//!
//! Thin notices (a status change, a cancellation: ids and a status, no patient data) stay clear
//! JSON so operators can query them.

use super::message::{Body, NewMessage, OutboxStore, warehouse_destination};
use crate::crypto::{PatientVault, VaultError};
use crate::ports::{Mode, StoreError};
use serde_json::Value;

/// Event types whose bodies carry patient data and are therefore always sealed (all sent to
/// the warehouse).
pub const PATIENT_DATA_EVENT_TYPES: [&str; 1] = ["fulfilment.requested"];

/// The associated data of a message's sealed body: everything that routes it.
pub fn seal_context(m: &NewMessage) -> String {
    format!(
        "outbox/v1|{}|{}|{}|{}",
        m.id, m.destination, m.event_type, m.subject
    )
}

/// Seal `payload` as the body of `m` (whose other fields must be final).
pub fn seal_body(vault: &PatientVault, m: &NewMessage, payload: &Value) -> Body {
    Body::Sealed {
        sealed: vault.seal(
            &seal_context(m),
            &serde_json::to_vec(payload).expect("JSON values serialise"),
        ),
    }
}

/// The JSON of a message's body, opening it when sealed.
pub fn open_body(vault: &PatientVault, m: &NewMessage) -> Result<Value, VaultError> {
    match &m.payload {
        Body::Clear(v) => Ok(v.clone()),
        Body::Sealed { sealed } => {
            let bytes = vault.open(&seal_context(m), sealed)?;
            serde_json::from_slice(&bytes).map_err(|_| VaultError::Open)
        }
    }
}

/// Seal every stored body of a patient-data event type that is still clear (rows written
/// before bodies were sealed), `batch` at a time. Idempotent; returns how many were sealed.
pub async fn seal_stored_bodies(
    store: &dyn OutboxStore,
    vault: &PatientVault,
    batch: u32,
) -> Result<u64, StoreError> {
    let mut n = 0;
    let kinds = PATIENT_DATA_EVENT_TYPES
        .iter()
        .flat_map(|t| [Mode::Test, Mode::Live].map(|mode| (*t, warehouse_destination(mode))));
    for (event_type, destination) in kinds {
        loop {
            let clear = store
                .unsealed(event_type, &destination, batch.max(1))
                .await?;
            if clear.is_empty() {
                break;
            }
            for m in &clear {
                let Body::Clear(v) = &m.message.payload else {
                    continue;
                };
                let Body::Sealed { sealed } = seal_body(vault, &m.message, v) else {
                    unreachable!("seal_body seals");
                };
                store.seal_body(&m.message.id, sealed).await?;
                n += 1;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(dest: &str) -> NewMessage {
        NewMessage {
            id: "msg_1".into(),
            destination: dest.into(),
            event_type: "fulfilment.requested".into(),
            subject: "rx_1".into(),
            payload: Body::Clear(Value::Null),
            created_at: jiff::Timestamp::UNIX_EPOCH,
        }
    }

    #[test]
    fn sealed_bodies_open_only_on_their_own_row() {
        let v = PatientVault::new(&[7; 32]).unwrap();
        let payload = serde_json::json!({ "deliver_to": { "name": "Sam Taylor" } });
        let mut m = msg("warehouse:test");
        m.payload = seal_body(&v, &m, &payload);
        let Body::Sealed { sealed } = &m.payload else {
            panic!("sealed")
        };
        assert!(!sealed.windows(3).any(|w| w == b"Sam"));
        assert_eq!(open_body(&v, &m).unwrap(), payload);
        // Re-routed to a clinic's endpoint: refused.
        let mut moved = m.clone();
        moved.destination = "clinic:cl_1:test".into();
        assert!(open_body(&v, &moved).is_err());
        let mut other = m.clone();
        other.id = "msg_2".into();
        assert!(open_body(&v, &other).is_err());
        // Serialised (export files) it stays sealed and reads back as it was.
        let text = serde_json::to_string(&m.payload).unwrap();
        assert!(!text.contains("Sam"));
        assert_eq!(serde_json::from_str::<Body>(&text).unwrap(), m.payload);
        // A body written before sealing reads as clear.
        assert_eq!(
            serde_json::from_str::<Body>(r#"{"type":"x"}"#).unwrap(),
            Body::Clear(serde_json::json!({ "type": "x" }))
        );
    }
}
