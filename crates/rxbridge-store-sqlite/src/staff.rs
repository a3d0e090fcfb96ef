//! The staff port on SQLite.

use crate::SqliteStore;
use crate::queries::unexpected;
use crate::writer::Chain;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::StoreError;
use rxbridge_app::staff::{Role, SessionRecord, StaffAccount, StaffStore};
use rxbridge_domain::ids::GphcNumber;

fn ts(s: String) -> rusqlite::Result<jiff::Timestamp> {
    s.parse().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) const STAFF_COLUMNS: &str = "id, email, role, gphc, password_hash, must_change_password, failed_attempts, locked_until, created_at";

pub(crate) fn staff_row(r: &Row) -> rusqlite::Result<StaffAccount> {
    let role: String = r.get(2)?;
    Ok(StaffAccount {
        id: r.get(0)?,
        email: r.get(1)?,
        role: Role::parse(&role).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(2, role, rusqlite::types::Type::Text)
        })?,
        gphc: r
            .get::<_, Option<String>>(3)?
            .and_then(|g| GphcNumber::parse(&g).ok()),
        password_hash: r.get(4)?,
        must_change_password: r.get(5)?,
        failed_attempts: r.get(6)?,
        locked_until: r.get::<_, Option<String>>(7)?.map(ts).transpose()?,
        created_at: ts(r.get(8)?)?,
    })
}

fn one_staff(c: &Connection, where_: &str, v: &str) -> Result<Option<StaffAccount>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT {STAFF_COLUMNS} FROM staff WHERE {where_} = ?1"
    ))
    .and_then(|mut s| s.query_row([v], staff_row).optional())
    .map_err(unexpected)
}

fn require_one(n: usize) -> Result<(), StoreError> {
    if n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

#[async_trait]
impl StaffStore for SqliteStore {
    async fn add_staff(&self, a: StaffAccount, event: NewEvent) -> Result<(), StoreError> {
        self.write(move |c, chain: &mut Chain| {
            c.execute(
                &format!("INSERT INTO staff ({STAFF_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
                params![a.id, a.email, a.role.as_str(), a.gphc.as_ref().map(|g| g.as_str().to_string()), a.password_hash, a.must_change_password, a.failed_attempts, a.locked_until.map(|t| t.to_string()), a.created_at.to_string()],
            )
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => StoreError::Duplicate,
                e => unexpected(e),
            })?;
            crate::queries::append_event(c, chain, &event)
        })
        .await
    }

    async fn staff_by_email(&self, email: &str) -> Result<Option<StaffAccount>, StoreError> {
        let e = email.to_string();
        self.read(move |c| one_staff(c, "email", &e)).await
    }

    async fn staff_by_id(&self, id: &str) -> Result<Option<StaffAccount>, StoreError> {
        let i = id.to_string();
        self.read(move |c| one_staff(c, "id", &i)).await
    }

    async fn list_staff(&self) -> Result<Vec<StaffAccount>, StoreError> {
        self.read(|c| {
            c.prepare_cached(&format!(
                "SELECT {STAFF_COLUMNS} FROM staff ORDER BY created_at, id"
            ))
            .and_then(|mut s| s.query_map([], staff_row)?.collect())
            .map_err(unexpected)
        })
        .await
    }

    async fn record_failure(
        &self,
        id: &str,
        failed: u32,
        locked_until: Option<jiff::Timestamp>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let id = id.to_string();
        self.write(move |c, chain| {
            let n = c
                .execute(
                    "UPDATE staff SET failed_attempts = ?1, locked_until = ?2 WHERE id = ?3",
                    params![failed, locked_until.map(|t| t.to_string()), id],
                )
                .map_err(unexpected)?;
            require_one(n)?;
            crate::queries::append_event(c, chain, &event)
        })
        .await
    }

    async fn record_sign_in(&self, s: SessionRecord, event: NewEvent) -> Result<(), StoreError> {
        self.write(move |c, chain| {
            let n = c
                .execute("UPDATE staff SET failed_attempts = 0, locked_until = NULL WHERE id = ?1", [&s.staff_id])
                .map_err(unexpected)?;
            require_one(n)?;
            c.execute(
                "INSERT INTO staff_sessions (token_hash, staff_id, csrf_token, created_at, last_seen) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.token_hash, s.staff_id, s.csrf_token, s.created_at.to_string(), s.last_seen.to_string()],
            )
            .map_err(unexpected)?;
            crate::queries::append_event(c, chain, &event)
        })
        .await
    }

    async fn set_password(
        &self,
        id: &str,
        hash: &str,
        keep_session: Option<&str>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let (id, hash, keep) = (
            id.to_string(),
            hash.to_string(),
            keep_session.map(str::to_string),
        );
        self.write(move |c, chain| {
            let n = c
                .execute(
                    "UPDATE staff SET password_hash = ?1, must_change_password = 0 WHERE id = ?2",
                    params![hash, id],
                )
                .map_err(unexpected)?;
            require_one(n)?;
            c.execute(
                "DELETE FROM staff_sessions WHERE staff_id = ?1 AND (?2 IS NULL OR token_hash != ?2)",
                params![id, keep],
            )
            .map_err(unexpected)?;
            crate::queries::append_event(c, chain, &event)
        })
        .await
    }

    async fn reset_password(
        &self,
        id: &str,
        hash: &str,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let (id, hash) = (id.to_string(), hash.to_string());
        self.write(move |c, chain| {
            let n = c
                .execute(
                    "UPDATE staff SET password_hash = ?1, must_change_password = 1, failed_attempts = 0, locked_until = NULL WHERE id = ?2",
                    params![hash, id],
                )
                .map_err(unexpected)?;
            require_one(n)?;
            c.execute("DELETE FROM staff_sessions WHERE staff_id = ?1", [&id])
                .map_err(unexpected)?;
            crate::queries::append_event(c, chain, &event)
        })
        .await
    }

    async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let t = token_hash.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT token_hash, staff_id, csrf_token, created_at, last_seen FROM staff_sessions WHERE token_hash = ?1")
                .and_then(|mut s| {
                    s.query_row([t], |r| {
                        Ok(SessionRecord { token_hash: r.get(0)?, staff_id: r.get(1)?, csrf_token: r.get(2)?, created_at: ts(r.get(3)?)?, last_seen: ts(r.get(4)?)? })
                    })
                    .optional()
                })
                .map_err(unexpected)
        })
        .await
    }

    async fn touch_session(&self, token_hash: &str, at: jiff::Timestamp) -> Result<(), StoreError> {
        let t = token_hash.to_string();
        self.write(move |c, _| {
            c.execute(
                "UPDATE staff_sessions SET last_seen = ?1 WHERE token_hash = ?2",
                params![at.to_string(), t],
            )
            .map_err(unexpected)?;
            Ok(())
        })
        .await
    }

    async fn end_session(
        &self,
        token_hash: &str,
        event: Option<NewEvent>,
    ) -> Result<(), StoreError> {
        let t = token_hash.to_string();
        self.write(move |c, chain| {
            let n = c
                .execute("DELETE FROM staff_sessions WHERE token_hash = ?1", [&t])
                .map_err(unexpected)?;
            if n > 0
                && let Some(e) = &event
            {
                crate::queries::append_event(c, chain, e)?;
            }
            Ok(())
        })
        .await
    }
}
