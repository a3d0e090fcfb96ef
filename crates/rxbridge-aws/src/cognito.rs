//! Staff sign-in through Cognito: the OIDC/JWT adapter of the identity port.
//!
//! A token is accepted only if it is an RS256 JWT signed by a key of the user pool's JWKS
//! (fetched over HTTPS and cached; refreshed when an unknown `kid` appears — key rotation — at
//! most once a minute, so forged `kid`s cannot hammer Cognito), its issuer is the pool, it has
//! not expired, it is an ID token for this app client (`aud`) or an access token for it
//! (`client_id`), and its `cognito:groups` name exactly one rxbridge role.

use async_trait::async_trait;
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use rxbridge_app::staff::{Identity, NewSession, Role, StaffError, StaffService};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::RwLock;

/// The least time between two JWKS fetches triggered by unknown key ids.
const MIN_REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("not a JWT")]
    Malformed,
    #[error("the token's algorithm is not RS256")]
    Algorithm,
    #[error("the token was signed with an unknown key")]
    UnknownKey,
    #[error("the token's signature or claims are invalid: {0}")]
    Invalid(String),
    #[error("the token was issued by someone else")]
    Issuer,
    #[error("the token has expired")]
    Expired,
    #[error("the token is for another application")]
    Audience,
    #[error("the token is neither an ID nor an access token")]
    TokenUse,
    #[error("the account is in no rxbridge group")]
    NoRole,
    #[error("the account is in several rxbridge groups; it must be in exactly one")]
    SeveralRoles,
    #[error("the user pool's keys could not be fetched: {0}")]
    Jwks(String),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    exp: i64,
    token_use: Option<String>,
    aud: Option<String>,
    client_id: Option<String>,
    email: Option<String>,
    #[serde(rename = "cognito:username")]
    cognito_username: Option<String>,
    username: Option<String>,
    #[serde(rename = "cognito:groups", default)]
    groups: Vec<String>,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub subject: String,
    /// `email`, else a user name that is an email address.
    pub email: Option<String>,
    pub role: Role,
    /// `id` or `access`.
    pub token_use: String,
}

#[derive(Deserialize)]
struct Jwk {
    kid: String,
    kty: String,
    n: Option<String>,
    e: Option<String>,
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    fetched: Option<Instant>,
}

pub struct CognitoVerifier {
    issuer: String,
    client_id: String,
    jwks_url: String,
    http: reqwest::Client,
    cache: RwLock<KeyCache>,
}

impl CognitoVerifier {
    /// For the user pool `pool_id` in `region` and the portal's app client.
    pub fn new(region: &str, pool_id: &str, client_id: &str) -> anyhow::Result<Self> {
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool_id}");
        let jwks_url = format!("{issuer}/.well-known/jwks.json");
        Ok(Self {
            issuer,
            client_id: client_id.to_string(),
            jwks_url,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?,
            cache: RwLock::new(KeyCache::default()),
        })
    }

    /// Fetch the keys from elsewhere (a local stand-in serves them at its own address).
    pub fn with_jwks_url(mut self, url: &str) -> Self {
        self.jwks_url = url.to_string();
        self
    }

    async fn refresh(&self) -> Result<(), TokenError> {
        let mut cache = self.cache.write().await;
        if cache.fetched.is_some_and(|t| t.elapsed() < MIN_REFRESH) {
            return Ok(());
        }
        cache.fetched = Some(Instant::now());
        let set: JwkSet = self
            .http
            .get(&self.jwks_url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| TokenError::Jwks(e.to_string()))?
            .json()
            .await
            .map_err(|e| TokenError::Jwks(e.to_string()))?;
        let mut keys = HashMap::new();
        for k in set.keys {
            if k.kty != "RSA" {
                continue;
            }
            if let (Some(n), Some(e)) = (&k.n, &k.e)
                && let Ok(key) = DecodingKey::from_rsa_components(n, e)
            {
                keys.insert(k.kid, key);
            }
        }
        cache.keys = keys;
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        if let Some(k) = self.cache.read().await.keys.get(kid) {
            return Ok(k.clone());
        }
        self.refresh().await?;
        self.cache
            .read()
            .await
            .keys
            .get(kid)
            .cloned()
            .ok_or(TokenError::UnknownKey)
    }

    /// Verify `token` as of `now`.
    pub async fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedToken, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.key(&kid).await?;
        let mut v = Validation::new(Algorithm::RS256);
        // Expiry against the injected clock, audience by token type: both checked below.
        v.validate_exp = false;
        v.validate_aud = false;
        v.required_spec_claims.clear();
        let data = jsonwebtoken::decode::<Claims>(token, &key, &v)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let c = data.claims;
        if c.iss != self.issuer {
            return Err(TokenError::Issuer);
        }
        if c.exp <= now.as_second() {
            return Err(TokenError::Expired);
        }
        let token_use = c.token_use.clone().unwrap_or_default();
        let audience = match token_use.as_str() {
            "id" => c.aud.as_deref(),
            "access" => c.client_id.as_deref(),
            _ => return Err(TokenError::TokenUse),
        };
        if audience != Some(self.client_id.as_str()) {
            return Err(TokenError::Audience);
        }
        let roles: Vec<Role> = c.groups.iter().filter_map(|g| Role::parse(g)).collect();
        let role = match roles.as_slice() {
            [] => return Err(TokenError::NoRole),
            [r] => *r,
            _ => return Err(TokenError::SeveralRoles),
        };
        let email = c.email.or_else(|| {
            c.cognito_username
                .or(c.username)
                .filter(|u| u.contains('@'))
        });
        Ok(VerifiedToken {
            subject: c.sub,
            email,
            role,
            token_use,
        })
    }
}

/// Sign-in with a Cognito ID token (from the hosted sign-in, where the password and MFA were
/// checked): verified, then mapped to the staff account by email and role.
pub struct CognitoIdentity {
    pub verifier: Arc<CognitoVerifier>,
    pub staff: Arc<StaffService>,
    pub clock: Arc<dyn rxbridge_app::Clock>,
}

#[async_trait]
impl Identity for CognitoIdentity {
    /// `secret` is the ID token; `email`, when not empty, must be the token's.
    async fn sign_in(&self, email: &str, secret: &str) -> Result<NewSession, StaffError> {
        let t = self
            .verifier
            .verify(secret, self.clock.now())
            .await
            .map_err(|e| {
                tracing::info!(reason = %e, "a Cognito token was refused");
                StaffError::InvalidCredentials
            })?;
        if t.token_use != "id" {
            return Err(StaffError::InvalidCredentials);
        }
        let token_email = t
            .email
            .ok_or_else(|| StaffError::Invalid("the token carries no email address".into()))?;
        if !email.is_empty() && !email.trim().eq_ignore_ascii_case(&token_email) {
            return Err(StaffError::InvalidCredentials);
        }
        self.staff
            .sign_in_verified(&token_email, t.role, "cognito")
            .await
    }
}

/// The portal's sign-in through Cognito's hosted sign-in pages (where the password and the
/// MFA code are checked): OAuth 2.0 authorization code flow with PKCE against the user pool
/// domain, then the ID token through `CognitoIdentity`.
pub struct CognitoHostedUi {
    /// `https://{prefix}.auth.{region}.amazoncognito.com` (or a custom domain).
    pub domain: String,
    pub client_id: String,
    /// `{public url}/staff/login/callback`, registered on the app client.
    pub redirect_uri: String,
    pub http: reqwest::Client,
    pub identity: CognitoIdentity,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

#[async_trait]
impl rxbridge_app::staff::ExternalSignIn for CognitoHostedUi {
    fn label(&self) -> &str {
        "your pharmacy account"
    }

    fn authorize_url(&self, state: &str, code_challenge: &str) -> String {
        reqwest::Url::parse_with_params(
            &format!("{}/oauth2/authorize", self.domain.trim_end_matches('/')),
            &[
                ("response_type", "code"),
                ("client_id", self.client_id.as_str()),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("scope", "openid email"),
                ("state", state),
                ("code_challenge", code_challenge),
                ("code_challenge_method", "S256"),
            ],
        )
        .map(String::from)
        .unwrap_or_default()
    }

    async fn complete(&self, code: &str, code_verifier: &str) -> Result<NewSession, StaffError> {
        let res = self
            .http
            .post(format!(
                "{}/oauth2/token",
                self.domain.trim_end_matches('/')
            ))
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", self.client_id.as_str()),
                ("code", code),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("code_verifier", code_verifier),
            ])
            .send()
            .await
            .map_err(|e| StaffError::Invalid(format!("Cognito could not be reached: {e}")))?;
        if !res.status().is_success() {
            tracing::info!(status = %res.status(), "Cognito refused the authorization code");
            return Err(StaffError::InvalidCredentials);
        }
        let tokens: TokenResponse = res
            .json()
            .await
            .map_err(|_| StaffError::InvalidCredentials)?;
        self.identity.sign_in("", &tokens.id_token).await
    }
}
