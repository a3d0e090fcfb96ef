//! Staff identity: accounts with a role, local sign-in with argon2id password hashes, lockout
//! with back-off (held only where the client address agrees, and a budget per address:
//! `throttle`), sessions (only a hash of the token is stored) each with its CSRF token.
//! Sign-in sits behind the `Identity` trait so an external OIDC provider (Cognito on AWS)
//! can replace the local one without touching the portal.

use crate::clock::Clock;
use crate::crypto::sha256_hex;
use crate::events::NewEvent;
use crate::ports::StoreError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use async_trait::async_trait;
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use rand::RngCore;
use rxbridge_domain::contact::Email;
use rxbridge_domain::ids::GphcNumber;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;

/// Failed sign-ins allowed before the account locks; each further failure doubles the lock.
pub const FREE_ATTEMPTS: u32 = 5;
/// Longest lock after repeated failures.
pub const MAX_LOCK: SignedDuration = SignedDuration::from_secs(60 * 60);
/// A session ends after this long without use...
pub const IDLE_TIMEOUT: SignedDuration = SignedDuration::from_secs(30 * 60);
/// ...and after this long in any case.
pub const ABSOLUTE_TIMEOUT: SignedDuration = SignedDuration::from_secs(12 * 60 * 60);
pub use crate::passwords::MIN_PASSWORD_CHARS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Support,
    Pharmacist,
    /// Payments, refunds and the month-end exports.
    Finance,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Support => "support",
            Role::Pharmacist => "pharmacist",
            Role::Finance => "finance",
            Role::Admin => "admin",
        }
    }
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "support" => Some(Role::Support),
            "pharmacist" => Some(Role::Pharmacist),
            "finance" => Some(Role::Finance),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffAccount {
    pub id: String,
    /// Lower-cased.
    pub email: String,
    pub role: Role,
    pub gphc: Option<GphcNumber>,
    /// argon2id PHC string.
    pub password_hash: String,
    pub must_change_password: bool,
    pub failed_attempts: u32,
    pub locked_until: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// SHA-256 of the session token; the token itself lives only in the browser's cookie.
    pub token_hash: String,
    pub staff_id: String,
    pub csrf_token: String,
    pub created_at: Timestamp,
    pub last_seen: Timestamp,
}

/// The staff port. Every write appends its event to the hash-chained log in one transaction.
#[async_trait]
pub trait StaffStore: Send + Sync + 'static {
    /// # Errors
    /// `Duplicate` when the email is taken.
    async fn add_staff(&self, account: StaffAccount, event: NewEvent) -> Result<(), StoreError>;
    async fn staff_by_email(&self, email: &str) -> Result<Option<StaffAccount>, StoreError>;
    async fn staff_by_id(&self, id: &str) -> Result<Option<StaffAccount>, StoreError>;
    /// Every account, oldest first.
    async fn list_staff(&self) -> Result<Vec<StaffAccount>, StoreError>;
    /// Store the new failure count and lock.
    async fn record_failure(
        &self,
        id: &str,
        failed_attempts: u32,
        locked_until: Option<Timestamp>,
        event: NewEvent,
    ) -> Result<(), StoreError>;
    /// Reset failures and create the session.
    async fn record_sign_in(
        &self,
        session: SessionRecord,
        event: NewEvent,
    ) -> Result<(), StoreError>;
    /// Replace the password hash, clear `must_change_password`, and end every other session
    /// of the account (all but `keep_session`, a token hash).
    async fn set_password(
        &self,
        id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
        event: NewEvent,
    ) -> Result<(), StoreError>;
    /// Replace the password hash with a one-time password's: `must_change_password` set,
    /// failures and lock cleared, every session of the account ended. `NotFound` for an
    /// unknown id.
    async fn reset_password(
        &self,
        id: &str,
        password_hash: &str,
        event: NewEvent,
    ) -> Result<(), StoreError>;
    async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError>;
    async fn touch_session(&self, token_hash: &str, at: Timestamp) -> Result<(), StoreError>;
    /// Remove the session (sign-out or expiry). Not an error when it is already gone.
    async fn end_session(
        &self,
        token_hash: &str,
        event: Option<NewEvent>,
    ) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("the email or password is wrong")]
    InvalidCredentials,
    #[error("too many failed attempts: try again after {0}")]
    Locked(Timestamp),
    #[error("{0}")]
    Invalid(String),
    #[error("an account with this email already exists")]
    EmailTaken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A signed-in member of staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSession {
    pub staff: StaffAccount,
    pub csrf_token: String,
    pub token_hash: String,
}

/// What a successful sign-in hands to the browser.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub token: String,
    pub session: StaffSession,
}

/// Proving who someone is. `LocalIdentity` checks passwords; an OIDC adapter verifies tokens.
#[async_trait]
pub trait Identity: Send + Sync {
    async fn sign_in(&self, email: &str, secret: &str) -> Result<NewSession, StaffError>;
}

/// Sign-in on an external provider's own page (OAuth 2.0 authorization code flow with PKCE):
/// the portal sends the browser to `authorize_url` and gets a code back at its callback.
#[async_trait]
pub trait ExternalSignIn: Send + Sync {
    /// What the sign-in page calls the provider ("your pharmacy account").
    fn label(&self) -> &str;
    /// Where to send the browser; `state` comes back with the code, `code_challenge` is the
    /// PKCE S256 challenge of a verifier the portal keeps.
    fn authorize_url(&self, state: &str, code_challenge: &str) -> String;
    /// Exchange the code (with the PKCE verifier) for the provider's tokens, verify them and
    /// open a session.
    async fn complete(&self, code: &str, code_verifier: &str) -> Result<NewSession, StaffError>;
}

/// A fresh PKCE verifier (43 URL-safe characters).
pub fn pkce_verifier() -> String {
    random_token()
}

/// The PKCE S256 challenge of `verifier`: base64url(SHA-256(verifier)), no padding.
pub fn pkce_challenge(verifier: &str) -> String {
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// A random one-time password that passes the policy for `email` (20 characters of a
/// 56-letter alphabet fail it practically never; a failure is simply drawn again).
fn one_time_password(email: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    loop {
        let mut b = [0u8; 20];
        rand::rngs::OsRng.fill_bytes(&mut b);
        let p: String = b
            .iter()
            .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
            .collect();
        if crate::passwords::check(&p, email).is_ok() {
            return p;
        }
    }
}

pub fn hash_password(password: &str) -> Result<String, StaffError> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StaffError::Invalid(format!("could not hash the password: {e}")))
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Lock after `FREE_ATTEMPTS` failures: 1 minute, then doubling, at most `MAX_LOCK`.
pub fn lock_for(failed_attempts: u32) -> Option<SignedDuration> {
    if failed_attempts < FREE_ATTEMPTS {
        return None;
    }
    let minutes = 1u64 << (failed_attempts - FREE_ATTEMPTS).min(6);
    Some(SignedDuration::from_secs(60 * minutes as i64).min(MAX_LOCK))
}

pub struct StaffService {
    store: Arc<dyn StaffStore>,
    clock: Arc<dyn Clock>,
    /// A real argon2id hash of a random password, verified against when the email is unknown,
    /// so a wrong email costs the same time as a wrong password.
    dummy_hash: String,
    throttle: crate::throttle::SignInThrottle,
}

impl StaffService {
    pub fn new(store: Arc<dyn StaffStore>, clock: Arc<dyn Clock>) -> Self {
        let dummy_hash = hash_password(&random_token()).unwrap_or_default();
        Self {
            store,
            clock,
            dummy_hash,
            throttle: Default::default(),
        }
    }

    fn event(&self, kind: &str, actor: &str, subject: &str, detail: serde_json::Value) -> NewEvent {
        NewEvent::new(self.clock.now(), kind, actor, subject, detail)
    }

    /// Create an account; returns it and a one-time password that must be changed at first
    /// sign-in. A pharmacist needs a GPhC number.
    pub async fn add(
        &self,
        email: &str,
        role: Role,
        gphc: Option<&str>,
    ) -> Result<(StaffAccount, String), StaffError> {
        self.add_by("cli", email, role, gphc).await
    }

    pub async fn list(&self) -> Result<Vec<StaffAccount>, StaffError> {
        Ok(self.store.list_staff().await?)
    }

    /// `add`, recording who did it (`cli`, or `staff:<admin id>` from the portal).
    pub async fn add_by(
        &self,
        actor: &str,
        email: &str,
        role: Role,
        gphc: Option<&str>,
    ) -> Result<(StaffAccount, String), StaffError> {
        let email = Email::parse(email)
            .map_err(|e| StaffError::Invalid(format!("email {e}")))?
            .lookup_key();
        let gphc = match gphc {
            Some(g) => Some(
                GphcNumber::parse(g)
                    .map_err(|e| StaffError::Invalid(format!("GPhC number {e}")))?,
            ),
            None => None,
        };
        if role == Role::Pharmacist && gphc.is_none() {
            return Err(StaffError::Invalid(
                "a pharmacist needs a GPhC number (--gphc)".into(),
            ));
        }
        let password = one_time_password(&email);
        let account = StaffAccount {
            id: format!("st_{}", uuid::Uuid::now_v7().simple()),
            email: email.clone(),
            role,
            gphc,
            password_hash: hash_password(&password)?,
            must_change_password: true,
            failed_attempts: 0,
            locked_until: None,
            created_at: self.clock.now(),
        };
        let event = self.event(
            "staff.created",
            actor,
            &account.id,
            serde_json::json!({ "role": role.as_str() }),
        );
        match self.store.add_staff(account.clone(), event).await {
            Err(StoreError::Duplicate) => Err(StaffError::EmailTaken),
            other => other.map(|_| (account, password)).map_err(Into::into),
        }
    }

    /// A new one-time password for the account with `email` (a forgotten password, or a
    /// demo run again): it must be changed at the next sign-in; the lock is lifted and every
    /// session ends. `actor` is who did it (`cli`).
    pub async fn reset_password(
        &self,
        actor: &str,
        email: &str,
    ) -> Result<(StaffAccount, String), StaffError> {
        let email = email.trim().to_lowercase();
        let Some(account) = self.store.staff_by_email(&email).await? else {
            return Err(StaffError::Invalid(format!(
                "no staff account has the email {email}"
            )));
        };
        let password = one_time_password(&email);
        let event = self.event(
            "staff.password_reset",
            actor,
            &account.id,
            serde_json::json!({}),
        );
        self.store
            .reset_password(&account.id, &hash_password(&password)?, event)
            .await?;
        Ok((account, password))
    }

    /// The signed-in member of staff for a session token, if the session is live; an expired
    /// session is removed.
    pub async fn session(&self, token: &str) -> Result<Option<StaffSession>, StaffError> {
        let token_hash = sha256_hex(token.as_bytes());
        let Some(s) = self.store.session(&token_hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        let idle = now.duration_since(s.last_seen) > IDLE_TIMEOUT;
        let old = now.duration_since(s.created_at) > ABSOLUTE_TIMEOUT;
        if idle || old {
            self.store
                .end_session(
                    &token_hash,
                    Some(self.event(
                        "staff.session_expired",
                        "system",
                        &s.staff_id,
                        serde_json::json!({}),
                    )),
                )
                .await?;
            return Ok(None);
        }
        let Some(staff) = self.store.staff_by_id(&s.staff_id).await? else {
            return Ok(None);
        };
        if now.duration_since(s.last_seen) > SignedDuration::from_secs(60) {
            self.store.touch_session(&token_hash, now).await?;
        }
        Ok(Some(StaffSession {
            staff,
            csrf_token: s.csrf_token,
            token_hash,
        }))
    }

    pub async fn sign_out(&self, session: &StaffSession) -> Result<(), StaffError> {
        let e = self.event(
            "staff.signed_out",
            &format!("staff:{}", session.staff.id),
            &session.staff.id,
            serde_json::json!({}),
        );
        Ok(self.store.end_session(&session.token_hash, Some(e)).await?)
    }

    /// Change the password (required at first sign-in): the current one must be right and the
    /// new one different and within the policy (`passwords::check`: length, the shipped list
    /// of breached passwords, repetition, the account's email).
    pub async fn change_password(
        &self,
        session: &StaffSession,
        current: &str,
        new: &str,
    ) -> Result<(), StaffError> {
        if !verify_password(current, &session.staff.password_hash) {
            return Err(StaffError::InvalidCredentials);
        }
        crate::passwords::check(new, &session.staff.email).map_err(StaffError::Invalid)?;
        if new == current {
            return Err(StaffError::Invalid(
                "the new password must differ from the current one".into(),
            ));
        }
        let e = self.event(
            "staff.password_changed",
            &format!("staff:{}", session.staff.id),
            &session.staff.id,
            serde_json::json!({}),
        );
        Ok(self
            .store
            .set_password(
                &session.staff.id,
                &hash_password(new)?,
                Some(&session.token_hash),
                e,
            )
            .await?)
    }
}

/// Local sign-in with email and password, from an unknown client address: the account's lock
/// holds as it is (nothing to weigh it against).
#[async_trait]
impl Identity for StaffService {
    async fn sign_in(&self, email: &str, password: &str) -> Result<NewSession, StaffError> {
        self.sign_in_from(None, email, password).await
    }
}

impl StaffService {
    /// Sign in from `client` (the request's address). Refused without checking the password
    /// while the address is throttled (`throttle::ADDRESS_FREE_ATTEMPTS` failures on any
    /// accounts, then back-off); the account's own lock (`FREE_ATTEMPTS` failures, then
    /// back-off) refuses only addresses that have failed on this account recently, so an
    /// outsider's guessing cannot lock the member of staff out from their own address. Only
    /// failed sign-ins count (a wrong password, an unknown email, an attempt the account's lock
    /// refused); a refusal because the address is throttled does not.
    pub async fn sign_in_from(
        &self,
        client: Option<IpAddr>,
        email: &str,
        password: &str,
    ) -> Result<NewSession, StaffError> {
        let now = self.clock.now();
        let email = email.trim().to_lowercase();
        if let Some(ip) = client
            && let Some(until) = self.throttle.address_blocked(ip, now)
        {
            return Err(StaffError::Locked(until));
        }
        let account = self.store.staff_by_email(&email).await?;
        let Some(account) = account else {
            let _ = verify_password(password, &self.dummy_hash);
            if let Some(ip) = client
                && let Some(until) = self.throttle.record_failure(ip, None, now)
            {
                return Err(StaffError::Locked(until));
            }
            return Err(StaffError::InvalidCredentials);
        };
        let agrees = |t: &crate::throttle::SignInThrottle| {
            client.is_none_or(|ip| t.agrees_with_lock(ip, &email, now))
        };
        if let Some(until) = account.locked_until
            && until > now
            && agrees(&self.throttle)
        {
            // A failed sign-in for the address's budget (not the account's: it is locked).
            let address_until = client.and_then(|ip| self.throttle.record_failure(ip, None, now));
            return Err(StaffError::Locked(
                until.max(address_until.unwrap_or(until)),
            ));
        }
        if !verify_password(password, &account.password_hash) {
            let failed = account.failed_attempts + 1;
            let locked_until = lock_for(failed).map(|d| now.saturating_add(d).unwrap_or(now));
            let e = self.event(
                "staff.sign_in_failed",
                "anonymous",
                &account.id,
                serde_json::json!({ "failed_attempts": failed, "locked": locked_until.is_some() }),
            );
            self.store
                .record_failure(&account.id, failed, locked_until, e)
                .await?;
            let address_until =
                client.and_then(|ip| self.throttle.record_failure(ip, Some(&email), now));
            // This address has now failed on the account, so it agrees with the lock.
            return Err(match locked_until.max(address_until) {
                Some(u) => StaffError::Locked(u),
                None => StaffError::InvalidCredentials,
            });
        }
        if let Some(ip) = client {
            self.throttle.record_success(ip, &email);
        }
        self.open_session(account, serde_json::json!({})).await
    }
}

impl StaffService {
    /// Create a session for `account` (failures reset), recording `detail` with the sign-in.
    async fn open_session(
        &self,
        account: StaffAccount,
        detail: serde_json::Value,
    ) -> Result<NewSession, StaffError> {
        let now = self.clock.now();
        let token = random_token();
        let record = SessionRecord {
            token_hash: sha256_hex(token.as_bytes()),
            staff_id: account.id.clone(),
            csrf_token: random_token(),
            created_at: now,
            last_seen: now,
        };
        let e = self.event(
            "staff.signed_in",
            &format!("staff:{}", account.id),
            &account.id,
            detail,
        );
        self.store.record_sign_in(record.clone(), e).await?;
        let mut staff = account;
        staff.failed_attempts = 0;
        staff.locked_until = None;
        Ok(NewSession {
            token,
            session: StaffSession {
                staff,
                csrf_token: record.csrf_token,
                token_hash: record.token_hash,
            },
        })
    }

    /// Sign in someone an external identity provider has verified (Cognito: password, MFA and
    /// group checked there). The account is found by email, or created on first sign-in for
    /// roles that need nothing more — a pharmacist's account, which carries a GPhC number, is
    /// created by an admin first. The provider's role must match the account's.
    pub async fn sign_in_verified(
        &self,
        email: &str,
        role: Role,
        provider: &str,
    ) -> Result<NewSession, StaffError> {
        let email = Email::parse(email)
            .map_err(|e| StaffError::Invalid(format!("email {e}")))?
            .lookup_key();
        let account = match self.store.staff_by_email(&email).await? {
            Some(a) => a,
            None if role == Role::Pharmacist => {
                return Err(StaffError::Invalid(
                    "a pharmacist's account (with their GPhC number) must be added by an admin before the first sign-in".into(),
                ));
            }
            None => {
                let account = StaffAccount {
                    id: format!("st_{}", uuid::Uuid::now_v7().simple()),
                    email: email.clone(),
                    role,
                    gphc: None,
                    // No local password: this account signs in through the provider only.
                    password_hash: "!external".into(),
                    must_change_password: false,
                    failed_attempts: 0,
                    locked_until: None,
                    created_at: self.clock.now(),
                };
                let e = self.event(
                    "staff.created",
                    provider,
                    &account.id,
                    serde_json::json!({ "role": role.as_str(), "via": provider }),
                );
                match self.store.add_staff(account.clone(), e).await {
                    Ok(()) => account,
                    // Two first sign-ins at once: use the one that was written.
                    Err(StoreError::Duplicate) => self
                        .store
                        .staff_by_email(&email)
                        .await?
                        .ok_or(StaffError::InvalidCredentials)?,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if account.role != role {
            return Err(StaffError::Invalid(format!(
                "the identity provider says {} but this account is {}: an admin must align them",
                role.as_str(),
                account.role.as_str()
            )));
        }
        self.open_session(account, serde_json::json!({ "via": provider }))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn pkce_s256_matches_rfc_7636() {
        // RFC 7636, appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(pkce_verifier().len(), 43);
    }
    #[test]
    fn lockout_backs_off_and_caps() {
        assert_eq!(lock_for(4), None);
        assert_eq!(lock_for(5), Some(SignedDuration::from_secs(60)));
        assert_eq!(lock_for(6), Some(SignedDuration::from_secs(120)));
        assert_eq!(lock_for(7), Some(SignedDuration::from_secs(240)));
        assert_eq!(lock_for(50), Some(MAX_LOCK));
    }
    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
        let p = one_time_password("someone@example.com");
        assert_eq!(p.len(), 20);
        assert_eq!(crate::passwords::check(&p, "someone@example.com"), Ok(()));
    }
}
