//! The staff port on DynamoDB: accounts `STAFF#{id}` / `STAFF` (gsi1 `STAFFALL` by creation),
//! a unique `EMAIL#{email}` / `EMAIL` pointer written in the same transaction, and sessions
//! `SESS#{token hash}` / `SESS` with a TTL past the 12-hour cap. The account item lists its
//! sessions' hashes (read strongly consistent), so a password change ends every other session
//! without relying on an eventually consistent index.

use crate::items::{self, Get, Item, Role as Guard, key, n, ns_key, s};
use crate::{DynamoStore, Query, Tx, unexpected};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use jiff::Timestamp;
use rxbridge_app::events::NewEvent;
use rxbridge_app::ports::StoreError;
use rxbridge_app::staff::{ABSOLUTE_TIMEOUT, Role, SessionRecord, StaffAccount, StaffStore};
use rxbridge_domain::ids::GphcNumber;

pub(crate) fn staff_pk(id: &str) -> String {
    format!("STAFF#{id}")
}

fn sess_pk(token_hash: &str) -> String {
    format!("SESS#{token_hash}")
}

pub(crate) fn staff_item(a: &StaffAccount) -> Item {
    let mut attrs = vec![
        ("gsi1pk", s("STAFFALL")),
        ("gsi1sk", s(format!("{}#{}", ns_key(a.created_at), a.id))),
        ("id", s(&a.id)),
        ("email", s(&a.email)),
        ("role", s(a.role.as_str())),
        ("password_hash", s(&a.password_hash)),
        (
            "must_change_password",
            AttributeValue::Bool(a.must_change_password),
        ),
        ("failed_attempts", n(i64::from(a.failed_attempts))),
        ("created_at", s(a.created_at.to_string())),
    ];
    if let Some(g) = &a.gphc {
        attrs.push(("gphc", s(g.as_str())));
    }
    if let Some(l) = a.locked_until {
        attrs.push(("locked_until", s(l.to_string())));
    }
    items::item(staff_pk(&a.id), "STAFF", attrs)
}

pub(crate) fn parse_staff(i: &Item) -> Result<StaffAccount, StoreError> {
    let g = Get(i);
    let role = g.s("role")?;
    Ok(StaffAccount {
        id: g.s("id")?,
        email: g.s("email")?,
        role: Role::parse(&role).ok_or_else(|| unexpected(format!("bad role {role}")))?,
        gphc: g.opt_s("gphc").and_then(|v| GphcNumber::parse(&v).ok()),
        password_hash: g.s("password_hash")?,
        must_change_password: g.bool("must_change_password"),
        failed_attempts: u32::try_from(g.n("failed_attempts")?).map_err(unexpected)?,
        locked_until: g
            .opt_s("locked_until")
            .map(|v| v.parse())
            .transpose()
            .map_err(unexpected)?,
        created_at: g.ts("created_at")?,
    })
}

fn parse_session(i: &Item) -> Result<SessionRecord, StoreError> {
    let g = Get(i);
    Ok(SessionRecord {
        token_hash: g.s("token_hash")?,
        staff_id: g.s("staff_id")?,
        csrf_token: g.s("csrf_token")?,
        created_at: g.ts("created_at")?,
        last_seen: g.ts("last_seen")?,
    })
}

/// Sessions deleted per transaction beside the account update (DynamoDB allows 100 items).
const SESSIONS_PER_TX: usize = 90;

fn event_tx(event: &NewEvent) -> Tx {
    Tx {
        ops: vec![],
        events: vec![event.clone()],
    }
}

#[async_trait]
impl StaffStore for DynamoStore {
    async fn add_staff(&self, account: StaffAccount, event: NewEvent) -> Result<(), StoreError> {
        let t = self.table.as_str();
        self.write(|_| {
            let (a, event) = (&account, &event);
            async move {
                let mut tx = event_tx(event);
                tx.push(
                    items::put(
                        t,
                        items::item(
                            format!("EMAIL#{}", a.email),
                            "EMAIL",
                            vec![("staff_id", s(&a.id))],
                        ),
                        Some("attribute_not_exists(#pk)"),
                    )?,
                    Guard::Duplicate,
                );
                tx.push(
                    items::put(t, staff_item(a), Some("attribute_not_exists(#pk)"))?,
                    Guard::Duplicate,
                );
                Ok((tx, ()))
            }
        })
        .await
    }

    async fn staff_by_email(&self, email: &str) -> Result<Option<StaffAccount>, StoreError> {
        let Some(ptr) = self.get(&format!("EMAIL#{email}"), "EMAIL").await? else {
            return Ok(None);
        };
        self.staff_by_id(&Get(&ptr).s("staff_id")?).await
    }

    async fn staff_by_id(&self, id: &str) -> Result<Option<StaffAccount>, StoreError> {
        self.get(&staff_pk(id), "STAFF")
            .await?
            .map(|i| parse_staff(&i))
            .transpose()
    }

    async fn list_staff(&self) -> Result<Vec<StaffAccount>, StoreError> {
        self.query(Query::partition(Some("gsi1"), "STAFFALL"))
            .await?
            .iter()
            .map(parse_staff)
            .collect()
    }

    async fn record_failure(
        &self,
        id: &str,
        failed_attempts: u32,
        locked_until: Option<Timestamp>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let t = self.table.as_str();
        self.write(|_| {
            let event = &event;
            async move {
                let mut tx = event_tx(event);
                let op = match locked_until {
                    Some(l) => items::update(
                        t,
                        key(staff_pk(id), "STAFF"),
                        "SET #failed_attempts = :f, #locked_until = :l",
                        Some("attribute_exists(#pk)"),
                        [
                            (":f", n(i64::from(failed_attempts))),
                            (":l", s(l.to_string())),
                        ],
                    )?,
                    None => items::update(
                        t,
                        key(staff_pk(id), "STAFF"),
                        "SET #failed_attempts = :f REMOVE #locked_until",
                        Some("attribute_exists(#pk)"),
                        [(":f", n(i64::from(failed_attempts)))],
                    )?,
                };
                tx.push(op, Guard::NotFound);
                Ok((tx, ()))
            }
        })
        .await
    }

    async fn record_sign_in(
        &self,
        session: SessionRecord,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let t = self.table.as_str();
        self.write(|_| {
            let (sess, event) = (&session, &event);
            async move {
                let mut tx = event_tx(event);
                tx.push(
                    items::update(
                        t,
                        key(staff_pk(&sess.staff_id), "STAFF"),
                        "SET #failed_attempts = :z REMOVE #locked_until ADD #sessions :t",
                        Some("attribute_exists(#pk)"),
                        [
                            (":z", n(0)),
                            (":t", AttributeValue::Ss(vec![sess.token_hash.clone()])),
                        ],
                    )?,
                    Guard::NotFound,
                );
                let expires = sess
                    .created_at
                    .checked_add(ABSOLUTE_TIMEOUT)
                    .map_err(unexpected)?
                    .as_second()
                    + 3600;
                tx.push(
                    items::put(
                        t,
                        items::item(
                            sess_pk(&sess.token_hash),
                            "SESS",
                            vec![
                                ("token_hash", s(&sess.token_hash)),
                                ("staff_id", s(&sess.staff_id)),
                                ("csrf_token", s(&sess.csrf_token)),
                                ("created_at", s(sess.created_at.to_string())),
                                ("last_seen", s(sess.last_seen.to_string())),
                                ("expires_at", n(expires)),
                            ],
                        ),
                        Some("attribute_not_exists(#pk)"),
                    )?,
                    Guard::Duplicate,
                );
                Ok((tx, ()))
            }
        })
        .await
    }

    async fn set_password(
        &self,
        id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let set = "SET #password_hash = :h, #must_change_password = :f";
        let values = vec![
            (":h", s(password_hash)),
            (":f", AttributeValue::Bool(false)),
        ];
        self.replace_password(id, keep_session, set, values, event)
            .await
    }

    async fn reset_password(
        &self,
        id: &str,
        password_hash: &str,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let set = "SET #password_hash = :h, #must_change_password = :t, #failed_attempts = :z REMOVE #locked_until";
        let values = vec![
            (":h", s(password_hash)),
            (":t", AttributeValue::Bool(true)),
            (":z", n(0)),
        ];
        self.replace_password(id, None, set, values, event).await
    }

    async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        self.get(&sess_pk(token_hash), "SESS")
            .await?
            .map(|i| parse_session(&i))
            .transpose()
    }

    async fn touch_session(&self, token_hash: &str, at: Timestamp) -> Result<(), StoreError> {
        let op = items::update(
            &self.table,
            key(sess_pk(token_hash), "SESS"),
            "SET #last_seen = :at",
            Some("attribute_exists(#pk)"),
            [(":at", s(at.to_string()))],
        )?;
        match self.transact_plain(vec![(op, Guard::NotFound)]).await {
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn end_session(
        &self,
        token_hash: &str,
        event: Option<NewEvent>,
    ) -> Result<(), StoreError> {
        let Some(existing) = self.session(token_hash).await? else {
            return Ok(());
        };
        let t = self.table.as_str();
        let r = self
            .write(|_| {
                let event = &event;
                let staff_id = existing.staff_id.clone();
                async move {
                    let mut tx = Tx {
                        ops: vec![],
                        events: event.iter().cloned().collect(),
                    };
                    tx.push(
                        items::delete_if_exists(t, key(sess_pk(token_hash), "SESS"))?,
                        Guard::NotFound,
                    );
                    tx.push(
                        items::update(
                            t,
                            key(staff_pk(&staff_id), "STAFF"),
                            "DELETE #sessions :t",
                            None,
                            [(":t", AttributeValue::Ss(vec![token_hash.to_string()]))],
                        )?,
                        Guard::Other,
                    );
                    Ok((tx, ()))
                }
            })
            .await;
        match r {
            // Ended by someone else in between: already gone, which is what was asked.
            Ok(()) | Err(StoreError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

impl DynamoStore {
    /// Update the account with `set` (an update expression's SET / REMOVE clauses over
    /// `values`) and end every session but `keep_session`, with `event`, in one transaction
    /// (sessions beyond what fits beside it ended first, on their own).
    async fn replace_password(
        &self,
        id: &str,
        keep_session: Option<&str>,
        set: &str,
        values: Vec<(&'static str, AttributeValue)>,
        event: NewEvent,
    ) -> Result<(), StoreError> {
        let t = self.table.as_str();
        let ending_now = |account: &Item| -> Vec<String> {
            Get(account)
                .list_s("sessions")
                .into_iter()
                .filter(|h| Some(h.as_str()) != keep_session)
                .collect()
        };
        let account = self
            .get(&staff_pk(id), "STAFF")
            .await?
            .ok_or(StoreError::NotFound)?;
        // More sessions than one transaction takes: end the extra ones first.
        let mut ending = ending_now(&account);
        while ending.len() > SESSIONS_PER_TX {
            let rest: Vec<String> = ending.split_off(SESSIONS_PER_TX);
            for chunk in rest.chunks(SESSIONS_PER_TX) {
                let mut ops = Vec::new();
                for h in chunk {
                    ops.push((items::delete(t, key(sess_pk(h), "SESS"))?, Guard::Other));
                }
                self.transact_plain(ops).await?;
            }
        }
        self.write(|_| {
            let (event, values) = (&event, values.clone());
            async move {
                // Read again in every attempt, and write only if the session set is still the
                // one read: a sign-in in between changes it, fails the condition, and the
                // attempt is rebuilt on a fresh read, so no session outlives the change.
                let account = self
                    .get(&staff_pk(id), "STAFF")
                    .await?
                    .ok_or(StoreError::NotFound)?;
                let held = Get(&account).list_s("sessions").len();
                let mut ending = ending_now(&account);
                ending.truncate(SESSIONS_PER_TX);
                let mut tx = event_tx(event);
                let mut values = values;
                let expr = if ending.is_empty() {
                    set.to_string()
                } else {
                    values.push((":gone", AttributeValue::Ss(ending.clone())));
                    format!("{set} DELETE #sessions :gone")
                };
                let cond = if held == 0 {
                    "attribute_exists(#pk) AND attribute_not_exists(#sessions)"
                } else {
                    values.push((":held", n(held as i64)));
                    "attribute_exists(#pk) AND size(#sessions) = :held"
                };
                tx.push(
                    items::update(t, key(staff_pk(id), "STAFF"), &expr, Some(cond), values)?,
                    Guard::Recheck,
                );
                for h in &ending {
                    tx.push(items::delete(t, key(sess_pk(h), "SESS"))?, Guard::Other);
                }
                Ok((tx, ()))
            }
        })
        .await
    }
}
