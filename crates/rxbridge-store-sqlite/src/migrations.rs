//! Versioned schema migrations, tracked in `PRAGMA user_version`. Append new migrations; never
//! edit a released one.

use rusqlite::Connection;

pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: clinics, keys, prescriptions, patient lookups, idempotency, the event log.
    r#"
    CREATE TABLE clinics (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE api_keys (
        key_hash TEXT PRIMARY KEY,
        prefix TEXT NOT NULL,
        clinic_id TEXT NOT NULL REFERENCES clinics(id),
        mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX api_keys_active ON api_keys(clinic_id, mode) WHERE revoked_at IS NULL;

    CREATE TABLE prescriptions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        clinic_id TEXT NOT NULL REFERENCES clinics(id),
        mode TEXT NOT NULL CHECK (mode IN ('test', 'live')),
        clinic_reference TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        version INTEGER NOT NULL,
        issued_on TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        -- Small columns first: the history checks read items without touching the rest.
        items TEXT NOT NULL,
        findings TEXT NOT NULL,
        sealed BLOB NOT NULL
    );
    CREATE INDEX rx_by_clinic ON prescriptions(clinic_id, mode, seq);
    CREATE INDEX rx_by_reference ON prescriptions(clinic_id, mode, clinic_reference, seq);
    CREATE INDEX rx_by_status ON prescriptions(clinic_id, mode, status, seq);

    -- Keyed hashes (HMAC-SHA256) of the patient's identifiers: lookups without decryption.
    CREATE TABLE rx_patient (
        prescription_id TEXT PRIMARY KEY REFERENCES prescriptions(id),
        mode TEXT NOT NULL,
        identity TEXT NOT NULL,
        nhs TEXT,
        demographic TEXT NOT NULL,
        name_dob TEXT NOT NULL,
        family_dob TEXT NOT NULL,
        email TEXT,
        postcode TEXT NOT NULL,
        address TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX rxp_nhs ON rx_patient(mode, nhs) WHERE nhs IS NOT NULL;
    CREATE INDEX rxp_name_dob ON rx_patient(mode, name_dob);
    CREATE INDEX rxp_family_dob ON rx_patient(mode, family_dob);
    CREATE INDEX rxp_email ON rx_patient(mode, email) WHERE email IS NOT NULL;
    CREATE INDEX rxp_postcode ON rx_patient(mode, postcode);
    CREATE INDEX rxp_address ON rx_patient(mode, address, identity);

    -- Patient history, clustered by patient key so one patient's history is a contiguous
    -- range: a row per prescription under its NHS-number key ('n:' + hash) when it has one,
    -- and under its demographic key ('d:' + hash) always. Status follows the prescription
    -- (updated in the same transaction as every transition).
    CREATE TABLE rx_history (
        mode TEXT NOT NULL,
        key TEXT NOT NULL,
        seq INTEGER NOT NULL,
        prescription_id TEXT NOT NULL,
        has_nhs INTEGER NOT NULL,
        clinic_id TEXT NOT NULL,
        issued_on TEXT NOT NULL,
        status TEXT NOT NULL,
        items TEXT NOT NULL,
        PRIMARY KEY (mode, key, seq)
    ) WITHOUT ROWID;
    CREATE INDEX rx_history_by_prescription ON rx_history(prescription_id);

    CREATE TABLE idempotency (
        clinic_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        response_status INTEGER NOT NULL,
        response_body TEXT NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (clinic_id, mode, key)
    ) WITHOUT ROWID;

    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX events_by_subject ON events(subject, seq);
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    "#,
    // 2: staff accounts and sessions.
    r#"
    CREATE TABLE staff (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('support', 'pharmacist', 'admin')),
        gphc TEXT,
        password_hash TEXT NOT NULL,
        must_change_password INTEGER NOT NULL,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE staff_sessions (
        token_hash TEXT PRIMARY KEY,
        staff_id TEXT NOT NULL REFERENCES staff(id),
        csrf_token TEXT NOT NULL,
        created_at TEXT NOT NULL,
        last_seen TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX staff_sessions_by_staff ON staff_sessions(staff_id);
    -- The pharmacist's worklist and staff search across clinics.
    CREATE INDEX rx_by_mode_status ON prescriptions(mode, status, seq);
    CREATE INDEX rx_by_mode_reference ON prescriptions(mode, clinic_reference, seq);
    "#,
    // 3: money — payments, provider-event de-duplication, the finance role.
    r#"
    CREATE TABLE payments (
        id TEXT PRIMARY KEY,
        prescription_id TEXT NOT NULL UNIQUE REFERENCES prescriptions(id),
        mode TEXT NOT NULL,
        status TEXT NOT NULL,
        session_id TEXT,
        payment_ref TEXT,
        charge_date TEXT NOT NULL,
        created_at TEXT NOT NULL,
        version INTEGER NOT NULL,
        doc TEXT NOT NULL
    );
    CREATE INDEX payments_by_session ON payments(session_id) WHERE session_id IS NOT NULL;
    CREATE INDEX payments_by_ref ON payments(payment_ref) WHERE payment_ref IS NOT NULL;
    CREATE INDEX payments_by_status ON payments(status, created_at);
    CREATE INDEX payments_by_charge_date ON payments(mode, charge_date);
    CREATE TABLE provider_events_seen (
        source TEXT NOT NULL,
        event_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (source, event_id)
    ) WITHOUT ROWID;
    CREATE TABLE staff_v3 (
        id TEXT PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL CHECK (role IN ('support', 'pharmacist', 'finance', 'admin')),
        gphc TEXT,
        password_hash TEXT NOT NULL,
        must_change_password INTEGER NOT NULL,
        failed_attempts INTEGER NOT NULL DEFAULT 0,
        locked_until TEXT,
        created_at TEXT NOT NULL
    );
    INSERT INTO staff_v3 SELECT id, email, role, gphc, password_hash, must_change_password, failed_attempts, locked_until, created_at FROM staff;
    DROP TABLE staff;
    ALTER TABLE staff_v3 RENAME TO staff;
    "#,
    // 4: fulfilment — the outbox, endpoints, the CD and POM registers.
    r#"
    CREATE TABLE outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        destination TEXT NOT NULL,
        event_type TEXT NOT NULL,
        subject TEXT NOT NULL,
        payload TEXT NOT NULL,
        created_at TEXT NOT NULL,
        -- Times compared in SQL are integer nanoseconds since the epoch (text timestamps
        -- with varying fractional digits do not sort).
        created_ns INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_ns INTEGER NOT NULL,
        leased_until_ns INTEGER,
        last_error TEXT,
        delivered_at TEXT
    );
    CREATE INDEX outbox_due ON outbox(status, next_attempt_ns);
    CREATE INDEX outbox_order ON outbox(destination, subject, seq);
    CREATE INDEX outbox_by_type ON outbox(event_type, destination, created_ns);
    CREATE TABLE outbox_attempts (
        message_id TEXT NOT NULL,
        n INTEGER NOT NULL,
        at TEXT NOT NULL,
        endpoint_id TEXT,
        http_status INTEGER,
        error TEXT,
        duration_ms INTEGER NOT NULL,
        PRIMARY KEY (message_id, n)
    ) WITHOUT ROWID;
    CREATE TABLE endpoints (
        id TEXT PRIMARY KEY,
        destination TEXT NOT NULL UNIQUE,
        url TEXT NOT NULL,
        secrets BLOB NOT NULL,
        enabled INTEGER NOT NULL,
        disabled_reason TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE register_entries (
        seq INTEGER PRIMARY KEY,
        register TEXT NOT NULL CHECK (register IN ('cd', 'pom')),
        section TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('receipt', 'supply', 'annotation')),
        entry_date TEXT NOT NULL,
        at TEXT NOT NULL,
        author TEXT NOT NULL,
        subject TEXT,
        quantity INTEGER NOT NULL CHECK (quantity >= 0),
        balance_after INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE INDEX register_by_section ON register_entries(register, section, seq);
    CREATE TRIGGER register_no_update BEFORE UPDATE ON register_entries
        BEGIN SELECT RAISE(ABORT, 'register entries are append-only'); END;
    CREATE TRIGGER register_no_delete BEFORE DELETE ON register_entries
        BEGIN SELECT RAISE(ABORT, 'register entries are append-only'); END;
    "#,
    // 5: prescribers' public keys for advanced electronic signatures — never deleted, so that
    // earlier signatures stay verifiable; a revocation is a time.
    r#"
    CREATE TABLE prescriber_keys (
        clinic_id TEXT NOT NULL REFERENCES clinics(id),
        kid TEXT NOT NULL,
        registration TEXT NOT NULL,
        alg TEXT NOT NULL,
        public_key_pem TEXT NOT NULL,
        added_at TEXT NOT NULL,
        revoked_at TEXT,
        PRIMARY KEY (clinic_id, kid)
    ) WITHOUT ROWID;
    CREATE TRIGGER prescriber_keys_no_delete BEFORE DELETE ON prescriber_keys
        BEGIN SELECT RAISE(ABORT, 'prescriber keys are kept'); END;
"#,
    // 6: state bound to the chain — each state row names the event that produced it (rows
    // written before this version are adopted as found, `crate::adopt`).
    r#"
    ALTER TABLE prescriptions ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE payments ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE outbox ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE register_entries ADD COLUMN event_seq INTEGER NOT NULL DEFAULT 0;
    "#,
    // 7: sealed outbox bodies. A body with patient data is now a BLOB sealed by the
    // application; rows written before are still JSON text. This partial index finds those
    // (`OutboxStore::unsealed`) without reading the whole outbox at each start; sealed rows
    // leave it as they are rewritten.
    r#"
    CREATE INDEX outbox_unsealed ON outbox(event_type, destination, seq) WHERE typeof(payload) = 'text';
    "#,
    // 8: hot patient keys. Identity and history reads are index seeks bounded by a limit,
    // never a walk over every record sharing a key (one address or one set of demographics on
    // thousands of records): records without an NHS number under a demographic key get their
    // own index; the identity checks seek (NHS number, name+DOB) and (name+DOB, NHS number)
    // pairs instead of filtering each row.
    r#"
    CREATE INDEX rx_history_without_nhs ON rx_history(mode, key, seq) WHERE has_nhs = 0;
    DROP INDEX rxp_nhs;
    CREATE INDEX rxp_nhs ON rx_patient(mode, nhs, name_dob) WHERE nhs IS NOT NULL;
    DROP INDEX rxp_name_dob;
    CREATE INDEX rxp_name_dob ON rx_patient(mode, name_dob, nhs);
    "#,
    // Staff search by phone, in a table of its own (records stored before this have none).
    r#"
    CREATE TABLE IF NOT EXISTS rx_patient_phone (
        prescription_id TEXT PRIMARY KEY REFERENCES prescriptions(id),
        mode TEXT NOT NULL,
        phone TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS rxp_phone ON rx_patient_phone(mode, phone);
    "#,
    // The NHS charge exemption declared at the pharmacy (JSON of
    // `rxbridge_domain::declaration::NhsExemption`), for an NHS prescription that did not carry
    // it; NULL for every other record, and for those stored before.
    r#"
    ALTER TABLE prescriptions ADD COLUMN nhs_exemption TEXT;
    "#,
    // 11: the API-key generation. The server caches key lookups; this number, bumped by a
    // trigger on every change to `api_keys` whichever process makes it (the CLI rotates keys
    // while the server runs), tells it when a cached answer may be out of date.
    r#"
    CREATE TABLE IF NOT EXISTS api_key_generation (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);
    INSERT OR IGNORE INTO api_key_generation (id, n) VALUES (0, 0);
    CREATE TRIGGER IF NOT EXISTS api_keys_generation_insert AFTER INSERT ON api_keys
        BEGIN UPDATE api_key_generation SET n = n + 1; END;
    CREATE TRIGGER IF NOT EXISTS api_keys_generation_update AFTER UPDATE ON api_keys
        BEGIN UPDATE api_key_generation SET n = n + 1; END;
    CREATE TRIGGER IF NOT EXISTS api_keys_generation_delete AFTER DELETE ON api_keys
        BEGIN UPDATE api_key_generation SET n = n + 1; END;
    "#,
    // 12: narrow idempotency rows. The key's row (a B-tree ordered by the client's random key,
    // so each claim lands on a random page) keeps the request hash and the number of its
    // stored answer; the answer's bytes move to `idempotency_answers`, numbered in order of
    // arrival, so they are appended at the end of that table instead of widening the random
    // page (at ~1.6 KiB a row, two or three rows filled a page and most claims split one).
    // Rows from before are moved here, numbered in the order the export reads them.
    r#"
    CREATE TABLE idempotency_answers (
        seq INTEGER PRIMARY KEY,
        response_status INTEGER NOT NULL,
        response_body TEXT NOT NULL
    );
    CREATE TABLE idempotency_v12 (
        clinic_id TEXT NOT NULL,
        mode TEXT NOT NULL,
        key TEXT NOT NULL,
        request_hash TEXT NOT NULL,
        answer INTEGER NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        PRIMARY KEY (clinic_id, mode, key)
    ) WITHOUT ROWID;
    CREATE TEMP TABLE idempotency_order AS
        SELECT row_number() OVER (ORDER BY created_at, clinic_id, mode, key) AS n, clinic_id, mode, key
        FROM idempotency;
    INSERT INTO idempotency_answers (seq, response_status, response_body)
        SELECT o.n, i.response_status, i.response_body FROM temp.idempotency_order o
        JOIN idempotency i USING (clinic_id, mode, key) ORDER BY o.n;
    INSERT INTO idempotency_v12 (clinic_id, mode, key, request_hash, answer, created_at)
        SELECT i.clinic_id, i.mode, i.key, i.request_hash, o.n, i.created_at
        FROM idempotency i JOIN temp.idempotency_order o USING (clinic_id, mode, key);
    DROP TABLE temp.idempotency_order;
    DROP TABLE idempotency;
    ALTER TABLE idempotency_v12 RENAME TO idempotency;
    "#,
    // 13: indexes no query reads. A clinic's listing walks `rx_by_clinic` (a status filters it)
    // or, by reference, `rx_by_mode_reference`, which staff search reads too; `rx_by_reference`
    // (a random page per submission) and `rx_by_status` (moved at every transition) were kept
    // up to date for nothing. A test (`layout.rs`) checks that every index is read by a query.
    r#"
    DROP INDEX IF EXISTS rx_by_reference;
    DROP INDEX IF EXISTS rx_by_status;
    "#,
    // 14: a patient's lookup keys once per patient, not once per prescription. Each of the six
    // identity indexes of `rx_patient` (and `rxp_phone`) took an entry per prescription on a
    // random page; now a (kind, value, patient) row is written when a patient first shows that
    // value, and a repeat prescription with the same details writes none. `patient` is the
    // history key ('n:' + NHS number hash, or 'd:' + demographics hash, as in `rx_history`),
    // through which staff search finds the prescriptions. Kinds: 'a' address, 'e' email,
    // 'f' family name + date of birth, 'p' postcode, 't' phone. The (NHS number, name + date of
    // birth) pairs the identity checks seek are kept in `rx_nhs_details`, both ways. `rx_patient`
    // and `rx_patient_phone` keep every column (the export reads them, search filters by them).
    r#"
    CREATE TABLE IF NOT EXISTS rx_patient_lookup (
        mode TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT NOT NULL,
        patient TEXT NOT NULL,
        PRIMARY KEY (mode, kind, value, patient)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS rx_nhs_details (
        mode TEXT NOT NULL,
        nhs TEXT NOT NULL,
        name_dob TEXT NOT NULL,
        PRIMARY KEY (mode, nhs, name_dob)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS rx_details_nhs ON rx_nhs_details(mode, name_dob, nhs);
    CREATE TEMP VIEW patient_of AS SELECT prescription_id, mode, nhs, name_dob, family_dob, email, postcode, address,
        CASE WHEN nhs IS NULL THEN 'd:' || demographic ELSE 'n:' || nhs END AS patient FROM rx_patient;
    INSERT INTO rx_patient_lookup SELECT mode, 'a', address, patient FROM temp.patient_of WHERE true ON CONFLICT DO NOTHING;
    INSERT INTO rx_patient_lookup SELECT mode, 'e', email, patient FROM temp.patient_of WHERE email IS NOT NULL ON CONFLICT DO NOTHING;
    INSERT INTO rx_patient_lookup SELECT mode, 'f', family_dob, patient FROM temp.patient_of WHERE true ON CONFLICT DO NOTHING;
    INSERT INTO rx_patient_lookup SELECT mode, 'p', postcode, patient FROM temp.patient_of WHERE true ON CONFLICT DO NOTHING;
    INSERT INTO rx_patient_lookup SELECT ph.mode, 't', ph.phone, p.patient
        FROM rx_patient_phone ph JOIN temp.patient_of p USING (prescription_id) WHERE true ON CONFLICT DO NOTHING;
    INSERT INTO rx_nhs_details SELECT mode, nhs, name_dob FROM rx_patient WHERE nhs IS NOT NULL ON CONFLICT DO NOTHING;
    DROP VIEW temp.patient_of;
    DROP INDEX IF EXISTS rxp_nhs;
    DROP INDEX IF EXISTS rxp_name_dob;
    DROP INDEX IF EXISTS rxp_family_dob;
    DROP INDEX IF EXISTS rxp_email;
    DROP INDEX IF EXISTS rxp_postcode;
    DROP INDEX IF EXISTS rxp_address;
    DROP INDEX IF EXISTS rxp_phone;
    "#,
];

/// Bring the schema up to this build's; the versions this call applied (none when it was
/// already there, or another process applied them first).
pub fn migrate(conn: &mut Connection) -> anyhow::Result<Vec<usize>> {
    migrate_to(conn, MIGRATIONS.len())
}

/// Apply the migrations up to schema `target` (tests build a store of an earlier version).
pub(crate) fn migrate_to(conn: &mut Connection, target: usize) -> anyhow::Result<Vec<usize>> {
    let mut applied = Vec::new();
    let current: usize =
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as usize;
    if current > MIGRATIONS.len() {
        anyhow::bail!(
            "the database schema is version {current}, newer than this build knows ({}): upgrade rxbridge",
            MIGRATIONS.len()
        );
    }
    // Table rebuilds (SQLite cannot alter a CHECK) need foreign keys off for the swap; the
    // references are checked before each migration commits.
    conn.pragma_update(None, "foreign_keys", false)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().take(target).skip(current) {
        // Immediate: two processes opening an old store at once take turns, and the second
        // finds the step done (the version read again inside the transaction) and skips it.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now as usize > i {
            continue;
        }
        if i + 1 == 12 && !has_column(&tx, "idempotency", "response_body")? {
            // Already narrow (a store whose version number was set back): nothing to move.
        } else {
            tx.execute_batch(sql)?;
        }
        let broken: i64 =
            tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })?;
        if broken > 0 {
            anyhow::bail!(
                "migration {} would break {broken} foreign-key reference(s)",
                i + 1
            );
        }
        // Schema 6 binds state rows to events: rows from before it are adopted as found.
        if i + 1 == 6 {
            let n = crate::adopt::adopt_unbound(&tx)?;
            if n > 0 {
                tracing::warn!(
                    rows = n,
                    "bound rows written before state binding to state.adopted events"
                );
            }
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
        applied.push(i + 1);
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    Ok(applied)
}

fn has_column(c: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
        [table, column],
        |r| r.get(0),
    )
}
