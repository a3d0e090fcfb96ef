//! Application-restricted access to the NHS API platform: the client signs a short-lived JWT
//! (RS512, `kid` naming the public key registered with the platform; `iss` and `sub` the
//! application's API key, `aud` the token endpoint, a fresh `jti`, `exp` at most five minutes
//! ahead) and exchanges it for an access token with an OAuth2 `client_credentials` grant.

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The `client_assertion_type` of a JWT client assertion (RFC 7523).
pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The longest lifetime the platform accepts for an assertion, in seconds.
pub const MAX_ASSERTION_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub jti: String,
    pub exp: i64,
}

/// Signs a client assertion for `api_key` to present at `token_url`, valid from `now`
/// (seconds since the epoch) for `MAX_ASSERTION_SECS`.
pub fn assertion(
    key: &EncodingKey,
    kid: &str,
    api_key: &str,
    token_url: &str,
    now: i64,
) -> Result<String, jsonwebtoken::errors::Error> {
    let mut header = Header::new(Algorithm::RS512);
    header.kid = Some(kid.into());
    header.typ = Some("JWT".into());
    let claims = Claims {
        iss: api_key.into(),
        sub: api_key.into(),
        aud: token_url.into(),
        jti: uuid::Uuid::new_v4().to_string(),
        exp: now + MAX_ASSERTION_SECS,
    };
    jsonwebtoken::encode(&header, &claims, key)
}

/// The token endpoint's answer. The platform sends `expires_in` as a string ("599"); a
/// number is accepted too.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenAnswer {
    pub access_token: String,
    pub expires_in: ExpiresIn,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ExpiresIn {
    Number(u64),
    Text(String),
}

impl ExpiresIn {
    pub fn seconds(&self) -> Option<u64> {
        match self {
            ExpiresIn::Number(n) => Some(*n),
            ExpiresIn::Text(t) => t.trim().parse().ok(),
        }
    }
}
