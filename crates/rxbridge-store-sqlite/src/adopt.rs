//! Rows written before schema 6 named no event (`event_seq` 0), so the state guard would refuse
//! every in-flight order after an upgrade. The upgrade adopts them once, as found: each batch of
//! up to 200 rows is bound into a `state.adopted` event (the same binding a write makes) and the
//! rows name it. From then on an edit is caught as for any other row; what was edited *before*
//! the upgrade cannot be told from the chain (documented in `docs/audit.md`).

use crate::fulfilment::{ENTRY_COLUMNS, MSG_COLUMNS, entry_row, msg_row};
use crate::queries::{RX_COLUMNS, append_event, chain_head, json, rx_row};
use rusqlite::{Connection, params};
use rxbridge_app::events::NewEvent;
use rxbridge_app::payments::PaymentRecord;
use rxbridge_app::state::Binding;

const BATCH: i64 = 200;

fn event(table: &str, rows: usize) -> NewEvent {
    NewEvent {
        at: jiff::Timestamp::now(),
        kind: "state.adopted".into(),
        actor: "system".into(),
        subject: "state".into(),
        detail: serde_json::json!({
            "table": table,
            "rows": rows,
            "reason": "rows written before state binding, bound as found at the upgrade",
        }),
    }
}

/// Bind every unbound row, in batches, inside the caller's transaction. Returns how many.
pub fn adopt_unbound(c: &Connection) -> anyhow::Result<u64> {
    let mut chain = chain_head(c)?;
    let mut total = 0u64;
    let bind = |table: &str,
                binding: Binding,
                rows: usize,
                chain: &mut crate::writer::Chain|
     -> anyhow::Result<i64> {
        let seq = chain.seq + 1;
        let mut e = event(table, rows);
        binding.apply(&mut e);
        append_event(c, chain, &e).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(seq)
    };
    loop {
        let rows: Vec<_> = c
            .prepare(&format!(
                "SELECT {} FROM prescriptions WHERE event_seq = 0 ORDER BY seq LIMIT {BATCH}",
                // This runs at schema 6, before the exemption column exists; no row from then
                // has one.
                RX_COLUMNS.replace(", nhs_exemption", ", NULL")
            ))?
            .query_map([], rx_row)?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            break;
        }
        let mut b = Binding::default();
        for (_, r) in &rows {
            b.prescription(r);
        }
        let seq = bind("prescriptions", b, rows.len(), &mut chain)?;
        for (_, r) in &rows {
            c.execute(
                "UPDATE prescriptions SET event_seq = ?1 WHERE id = ?2",
                params![seq, r.id],
            )?;
        }
        total += rows.len() as u64;
    }
    loop {
        let rows: Vec<PaymentRecord> = c
            .prepare(&format!(
                "SELECT doc FROM payments WHERE event_seq = 0 ORDER BY created_at, id LIMIT {BATCH}"
            ))?
            .query_map([], |r| json(r.get(0)?))?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            break;
        }
        let seq = chain.seq + 1;
        let mut b = Binding::default();
        let rows: Vec<PaymentRecord> = rows
            .into_iter()
            .map(|mut p| {
                p.event_seq = seq;
                b.payment(&p);
                p
            })
            .collect();
        bind("payments", b, rows.len(), &mut chain)?;
        for p in &rows {
            c.execute(
                "UPDATE payments SET event_seq = ?1, doc = ?2 WHERE id = ?3",
                params![seq, serde_json::to_string(p)?, p.id],
            )?;
        }
        total += rows.len() as u64;
    }
    loop {
        let rows: Vec<_> = c
            .prepare(&format!(
                "SELECT {MSG_COLUMNS} FROM outbox WHERE event_seq = 0 ORDER BY seq LIMIT {BATCH}"
            ))?
            .query_map([], msg_row)?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            break;
        }
        let mut b = Binding::default();
        for m in &rows {
            b.message(&m.message);
        }
        let seq = bind("outbox", b, rows.len(), &mut chain)?;
        for m in &rows {
            c.execute(
                "UPDATE outbox SET event_seq = ?1 WHERE id = ?2",
                params![seq, m.message.id],
            )?;
        }
        total += rows.len() as u64;
    }
    // Register entries are append-only: the trigger is lifted for this one update only.
    c.execute_batch("DROP TRIGGER register_no_update")?;
    loop {
        let rows: Vec<_> = c
            .prepare(&format!(
                "SELECT {ENTRY_COLUMNS} FROM register_entries WHERE event_seq = 0 ORDER BY seq LIMIT {BATCH}"
            ))?
            .query_map([], entry_row)?
            .collect::<Result<_, _>>()?;
        if rows.is_empty() {
            break;
        }
        let mut b = Binding::default();
        for e in &rows {
            b.entry(e);
        }
        let seq = bind("register_entries", b, rows.len(), &mut chain)?;
        for e in &rows {
            c.execute(
                "UPDATE register_entries SET event_seq = ?1 WHERE seq = ?2",
                params![seq, e.seq],
            )?;
        }
        total += rows.len() as u64;
    }
    c.execute_batch(
        "CREATE TRIGGER register_no_update BEFORE UPDATE ON register_entries
             BEGIN SELECT RAISE(ABORT, 'register entries are append-only'); END;",
    )?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    use crate::SqliteStore;
    use rxbridge_app::contract::{
        approve_change, clinic, fulfilment, keys, new_rx, payment, record,
    };
    use rxbridge_app::payments::PaymentStatus;
    use rxbridge_app::ports::{EventLog, Mode, PaymentStore, StaffViews, Store};
    use rxbridge_app::registers::{EntryKind, Register, RegisterStore};
    use rxbridge_app::state::StateGuard;
    use std::sync::Arc;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_from_before_schema_6_are_adopted_once_and_then_guarded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rx.db");
        {
            let store = Arc::new(SqliteStore::open(&path).unwrap());
            let s: Arc<dyn Store> = store.clone();
            clinic(&s, "cl_a").await;
            s.insert_prescription(new_rx(
                record("rx_1", "cl_a", Mode::Test, "R-1"),
                "k1",
                keys(None, "d1"),
            ))
            .await
            .unwrap();
            let mut change = approve_change(
                "rx_1",
                1,
                payment("pay_1", "rx_1", PaymentStatus::AwaitingPayment),
            );
            change
                .register
                .push(fulfilment::entry(EntryKind::Receipt, 10));
            s.commit(change).await.unwrap();
            store.close();
        }
        // The same rows as a schema-5 database holds them: no event_seq.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "ALTER TABLE prescriptions DROP COLUMN event_seq;
             ALTER TABLE prescriptions DROP COLUMN nhs_exemption;
             ALTER TABLE payments DROP COLUMN event_seq;
             ALTER TABLE outbox DROP COLUMN event_seq;
             ALTER TABLE register_entries DROP COLUMN event_seq;
             DROP INDEX outbox_unsealed;
             DROP INDEX rx_history_without_nhs;
             CREATE INDEX rxp_nhs ON rx_patient(mode, nhs) WHERE nhs IS NOT NULL;
             CREATE INDEX rxp_name_dob ON rx_patient(mode, name_dob);
             PRAGMA user_version = 5;",
        )
        .unwrap();
        let payment_doc: String = c
            .query_row("SELECT doc FROM payments", [], |r| r.get(0))
            .unwrap();
        let mut doc: serde_json::Value = serde_json::from_str(&payment_doc).unwrap();
        doc.as_object_mut().unwrap().remove("event_seq");
        c.execute("UPDATE payments SET doc = ?1", [doc.to_string()])
            .unwrap();
        drop(c);

        let store = Arc::new(SqliteStore::open(&path).unwrap());
        let rx = store
            .get_prescription_for_staff(Mode::Test, "rx_1")
            .await
            .unwrap()
            .unwrap();
        let p = store.get_payment("pay_1").await.unwrap().unwrap();
        let e = store
            .last_register_entry(Register::Cd, "CONCERTA-XL-36")
            .await
            .unwrap()
            .unwrap();
        assert!(rx.event_seq > 0 && p.event_seq > 0 && e.event_seq > 0);
        let guard = StateGuard::new(store.as_ref());
        guard.prescription(&rx, "test").await.unwrap();
        guard.payment(&p, "test").await.unwrap();
        guard.entry(&e, "test").await.unwrap();
        assert_eq!(
            rxbridge_app::audit::verify_state(store.as_ref(), store.as_ref())
                .await
                .unwrap(),
            []
        );
        let adopted = store.timeline("state").await.unwrap();
        assert_eq!(
            adopted
                .iter()
                .map(|e| e.event.kind.as_str())
                .collect::<Vec<_>>(),
            ["state.adopted"; 3],
            "prescriptions, payments, register entries"
        );
        assert!(
            rxbridge_app::audit::verify_chain(store.as_ref())
                .await
                .is_ok()
        );
        // The register is append-only again.
        store.close();
        let c = rusqlite::Connection::open(&path).unwrap();
        assert!(
            c.execute("UPDATE register_entries SET quantity = 1", [])
                .is_err()
        );
    }
}
