//! The prescriber-key port on SQLite: one row per (clinic, kid), never deleted.

use crate::SqliteStore;
use crate::queries::{append_event, unexpected};
use crate::writer::Chain;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, params};
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::StoreError;
use rxbridge_app::signatures::{PrescriberKey, PrescriberKeyStore, SigningAlg};

pub(crate) const COLUMNS: &str =
    "clinic_id, kid, registration, alg, public_key_pem, added_at, revoked_at";

fn bad(i: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
}

pub(crate) fn row(r: &Row) -> rusqlite::Result<PrescriberKey> {
    let alg: String = r.get(3)?;
    Ok(PrescriberKey {
        clinic_id: r.get(0)?,
        kid: r.get(1)?,
        registration: r.get(2)?,
        alg: SigningAlg::parse(&alg).ok_or_else(|| {
            rusqlite::Error::InvalidColumnType(3, alg, rusqlite::types::Type::Text)
        })?,
        public_key_pem: r.get(4)?,
        added_at: r.get::<_, String>(5)?.parse().map_err(|e| bad(5, e))?,
        revoked_at: r
            .get::<_, Option<String>>(6)?
            .map(|s| s.parse().map_err(|e| bad(6, e)))
            .transpose()?,
    })
}

fn get(c: &Connection, clinic_id: &str, kid: &str) -> Result<Option<PrescriberKey>, StoreError> {
    c.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM prescriber_keys WHERE clinic_id = ?1 AND kid = ?2"
    ))
    .and_then(|mut s| s.query_row(params![clinic_id, kid], row).optional())
    .map_err(unexpected)
}

#[async_trait]
impl PrescriberKeyStore for SqliteStore {
    async fn add_prescriber_key(
        &self,
        k: PrescriberKey,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        self.write(move |c, chain: &mut Chain| {
            if crate::queries::get_clinic(c, &k.clinic_id)?.is_none() {
                return Err(StoreError::NotFound);
            }
            c.execute(
                &format!(
                    "INSERT INTO prescriber_keys ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)"
                ),
                params![
                    k.clinic_id,
                    k.kid,
                    k.registration,
                    k.alg.as_str(),
                    k.public_key_pem,
                    k.added_at.to_string()
                ],
            )
            .map_err(crate::queries::duplicate_or_unexpected)?;
            append_event(c, chain, &event)
        })
        .await
    }

    async fn prescriber_key(
        &self,
        clinic_id: &str,
        kid: &str,
    ) -> Result<Option<PrescriberKey>, StoreError> {
        self.read_now(|c| get(c, clinic_id, kid))
    }

    async fn prescriber_keys(&self, clinic_id: &str) -> Result<Vec<PrescriberKey>, StoreError> {
        let clinic_id = clinic_id.to_string();
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM prescriber_keys WHERE clinic_id = ?1 ORDER BY added_at, kid"
            ))
            .and_then(|mut s| s.query_map([&clinic_id], row)?.collect())
            .map_err(unexpected)
        })
        .await
    }

    async fn revoke_prescriber_key(
        &self,
        clinic_id: &str,
        kid: &str,
        at: jiff::Timestamp,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let (clinic_id, kid) = (clinic_id.to_string(), kid.to_string());
        self.write(move |c, chain: &mut Chain| {
            match get(c, &clinic_id, &kid)? {
                None => return Err(StoreError::NotFound),
                Some(k) if k.revoked_at.is_some() => return Err(StoreError::Conflict),
                Some(_) => {}
            }
            c.execute(
                "UPDATE prescriber_keys SET revoked_at = ?3 WHERE clinic_id = ?1 AND kid = ?2",
                params![clinic_id, kid, at.to_string()],
            )
            .map_err(unexpected)?;
            append_event(c, chain, &event)
        })
        .await
    }
}
