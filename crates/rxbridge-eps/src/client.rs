//! The HTTP client of the EPS dispensing API. Every call carries a bearer token (fetched
//! with a signed client assertion and cached until shortly before it expires), an
//! `X-Request-ID` (a UUID, the same on every retry of one message, so the service can
//! de-duplicate) and an `X-Correlation-ID`. 429 and 5xx answers, and failures to connect,
//! are retried with exponential backoff, honouring `Retry-After`; other refusals come back
//! with the `OperationOutcome`'s issues.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::EncodingKey;
use rxbridge_fhir::dispensing::Release;
use rxbridge_fhir::dispensing::resources::{Claim, MessageBundle, Parameters, Task};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::auth::{self, ASSERTION_TYPE, TokenAnswer};
use crate::outcome::{self, Issue};

/// Where the API is and who the application is.
#[derive(Debug, Clone)]
pub struct EpsConfig {
    /// `https://int.api.service.nhs.uk/fhir-dispensing` (integration), or a stand-in.
    pub base_url: String,
    /// `https://int.api.service.nhs.uk/oauth2/token`.
    pub token_url: String,
    /// The application's API key (the assertion's `iss` and `sub`).
    pub api_key: String,
    /// The `kid` of the public key registered with the platform.
    pub key_id: String,
    /// The RSA private key, PEM.
    pub private_key_pem: String,
    pub retry: Retry,
}

/// Retries of one message: `attempts` in all, waiting `base × 2ⁿ` (at most `max`) between
/// them, or what `Retry-After` asks (also at most `max`).
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 4,
            base: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

impl Retry {
    /// The wait before attempt `n + 1` after attempt `n` (0-based) failed.
    pub fn delay(&self, n: u32, retry_after: Option<Duration>) -> Duration {
        let backoff = self.base.saturating_mul(2u32.saturating_pow(n));
        retry_after.unwrap_or(backoff).min(self.max)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EpsError {
    /// The service refused the message; the issues say why. Retrying the same message
    /// will not help.
    #[error("EPS refused the message ({status}): {}", describe(.issues))]
    Refused { status: u16, issues: Vec<Issue> },
    /// The token endpoint refused the client assertion, or the API the token.
    #[error("EPS refused the credentials: {0}")]
    Unauthorized(String),
    /// Still failing after every retry (429, 5xx, or no connection).
    #[error("EPS unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
    /// An answer that is not what the specification describes.
    #[error("unexpected answer from EPS: {0}")]
    BadAnswer(String),
    #[error("EPS client configuration: {0}")]
    Config(String),
}

fn describe(issues: &[Issue]) -> String {
    let parts: Vec<String> = issues
        .iter()
        .map(|i| {
            format!(
                "{} {}",
                i.spine_code.as_deref().unwrap_or(&i.code),
                i.text.as_deref().unwrap_or("")
            )
        })
        .collect();
    parts.join("; ")
}

/// One message as sent and its answer: what the caller keeps (sealed) for audit.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    pub request_id: String,
    pub correlation_id: String,
    pub path: &'static str,
    pub request: Value,
    pub status: u16,
    pub answer: Value,
    pub attempts: u32,
}

enum Attempt {
    Answered(u16, Value),
    Failed(String, Option<Duration>),
    Fatal(EpsError),
}

/// A refusal the service will give again: typed from its `OperationOutcome`.
fn refusal(path: &str, status: u16, answer: &Value) -> EpsError {
    let issues = outcome::read(answer);
    match (status, issues) {
        (401 | 403, issues) => EpsError::Unauthorized(format!(
            "POST {path}: HTTP {status}: {}",
            describe(&issues.unwrap_or_default())
        )),
        (_, Some(issues)) => EpsError::Refused { status, issues },
        (_, None) => EpsError::BadAnswer(format!(
            "POST {path}: HTTP {status} without an OperationOutcome"
        )),
    }
}

struct Token {
    value: String,
    until: Instant,
}

pub struct EpsClient {
    http: reqwest::Client,
    cfg: EpsConfig,
    key: EncodingKey,
    token: Mutex<Option<Token>>,
}

pub const RELEASE: &str = "/FHIR/R4/Task/$release";
pub const PROCESS_MESSAGE: &str = "/FHIR/R4/$process-message";
pub const TASK: &str = "/FHIR/R4/Task";
pub const CLAIM: &str = "/FHIR/R4/Claim";

impl EpsClient {
    pub fn new(mut cfg: EpsConfig) -> Result<Self, EpsError> {
        let key = EncodingKey::from_rsa_pem(cfg.private_key_pem.as_bytes())
            .map_err(|e| EpsError::Config(format!("the private key is not an RSA PEM key: {e}")))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("rxbridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EpsError::Config(e.to_string()))?;
        cfg.base_url = cfg.base_url.trim_end_matches('/').to_string();
        Ok(EpsClient {
            http,
            cfg,
            key,
            token: Mutex::new(None),
        })
    }

    /// Releases the prescriptions nominated to the pharmacy (or the one the request names).
    pub async fn release(
        &self,
        req: &Parameters,
        correlation_id: &str,
    ) -> Result<(Release, Sent), EpsError> {
        let sent = self.send(RELEASE, req, correlation_id).await?;
        let release = Release::parse(&sent.answer).map_err(EpsError::BadAnswer)?;
        Ok((release, sent))
    }

    pub async fn notify(&self, dn: &MessageBundle, correlation_id: &str) -> Result<Sent, EpsError> {
        self.send(PROCESS_MESSAGE, dn, correlation_id).await
    }

    /// A return or a withdraw (`rxbridge_fhir::dispensing::{return_task, withdraw_task}`).
    pub async fn task(&self, task: &Task, correlation_id: &str) -> Result<Sent, EpsError> {
        self.send(TASK, task, correlation_id).await
    }

    pub async fn claim(&self, claim: &Claim, correlation_id: &str) -> Result<Sent, EpsError> {
        self.send(CLAIM, claim, correlation_id).await
    }

    /// POSTs one message, retrying as `Retry` says with the same `X-Request-ID`.
    pub async fn send(
        &self,
        path: &'static str,
        body: &impl Serialize,
        correlation_id: &str,
    ) -> Result<Sent, EpsError> {
        let request_id = uuid::Uuid::new_v4().to_string();
        self.send_as(path, body, correlation_id, &request_id).await
    }

    /// [`send`](Self::send) with the caller's `X-Request-ID`: a message kept in an outbox is
    /// sent with the same id on every delivery attempt, across restarts, so the service
    /// de-duplicates it.
    pub async fn send_as(
        &self,
        path: &'static str,
        body: &impl Serialize,
        correlation_id: &str,
        request_id: &str,
    ) -> Result<Sent, EpsError> {
        let request = serde_json::to_value(body).map_err(|e| EpsError::Config(e.to_string()))?;
        let request_id = request_id.to_string();
        let retry = self.cfg.retry;
        let (mut n, mut last, mut reauthorised) = (0, String::new(), false);
        while n < retry.attempts.max(1) {
            let attempt = self
                .attempt(path, &request, &request_id, correlation_id)
                .await;
            n += 1;
            let (why, retry_after) = match attempt {
                Attempt::Answered(status, answer) if (200..300).contains(&status) => {
                    let correlation_id = correlation_id.into();
                    let attempts = n;
                    return Ok(Sent {
                        request_id,
                        correlation_id,
                        path,
                        request,
                        status,
                        answer,
                        attempts,
                    });
                }
                Attempt::Answered(401, _) if !reauthorised => {
                    // The token may have ended at the service before our clock said so.
                    reauthorised = true;
                    *self.token.lock().await = None;
                    n -= 1;
                    continue;
                }
                Attempt::Answered(status, answer) => return Err(refusal(path, status, &answer)),
                Attempt::Failed(why, retry_after) => (why, retry_after),
                Attempt::Fatal(e) => return Err(e),
            };
            last = why;
            if n < retry.attempts {
                tokio::time::sleep(retry.delay(n - 1, retry_after)).await;
            }
        }
        Err(EpsError::Unavailable { attempts: n, last })
    }

    /// One attempt: the service's answer, or a failure worth retrying (429, 5xx, no
    /// connection, the token endpoint unavailable), or one that is not.
    async fn attempt(
        &self,
        path: &str,
        request: &Value,
        request_id: &str,
        correlation_id: &str,
    ) -> Attempt {
        let token = match self.token().await {
            Ok(token) => token,
            Err(EpsError::Unavailable { last, .. }) => return Attempt::Failed(last, None),
            Err(e) => return Attempt::Fatal(e),
        };
        let sent = self
            .http
            .post(format!("{}{path}", self.cfg.base_url))
            .bearer_auth(&token)
            .header("X-Request-ID", request_id)
            .header("X-Correlation-ID", correlation_id)
            .header("Content-Type", "application/fhir+json")
            .header("Accept", "application/fhir+json")
            .json(request)
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) => return Attempt::Failed(format!("POST {path}: {e}"), None),
        };
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_secs);
        if status == 429 || status >= 500 {
            return Attempt::Failed(format!("POST {path}: HTTP {status}"), retry_after);
        }
        let text = r.text().await.unwrap_or_default();
        let answer = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
        Attempt::Answered(status, answer)
    }

    /// The cached access token, or a new one when none is held or it is about to expire.
    async fn token(&self) -> Result<String, EpsError> {
        let mut held = self.token.lock().await;
        if let Some(t) = held.as_ref().filter(|t| t.until > Instant::now()) {
            return Ok(t.value.clone());
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let jwt = auth::assertion(
            &self.key,
            &self.cfg.key_id,
            &self.cfg.api_key,
            &self.cfg.token_url,
            now,
        )
        .map_err(|e| EpsError::Config(format!("signing the client assertion: {e}")))?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", ASSERTION_TYPE),
            ("client_assertion", jwt.as_str()),
        ];
        let r = self
            .http
            .post(&self.cfg.token_url)
            .form(&form)
            .send()
            .await
            .map_err(|e| EpsError::Unavailable {
                attempts: 1,
                last: format!("token endpoint: {e}"),
            })?;
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(EpsError::Unavailable {
                attempts: 1,
                last: format!("token endpoint: HTTP {status}"),
            });
        }
        if !status.is_success() {
            let why = serde_json::from_str::<Value>(&text).ok().and_then(|v| {
                v["error_description"]
                    .as_str()
                    .or(v["error"].as_str())
                    .map(str::to_owned)
            });
            return Err(EpsError::Unauthorized(format!(
                "token endpoint: HTTP {status}: {}",
                why.unwrap_or_default()
            )));
        }
        let answer: TokenAnswer = serde_json::from_str(&text)
            .map_err(|e| EpsError::BadAnswer(format!("token endpoint: {e}")))?;
        let secs = answer.expires_in.seconds().ok_or_else(|| {
            EpsError::BadAnswer("token endpoint: expires_in is not a number".into())
        })?;
        *held = Some(Token {
            value: answer.access_token.clone(),
            until: Instant::now() + held_for(secs),
        });
        Ok(answer.access_token)
    }
}

/// How long a token that expires in `secs` is used: until half a minute before it expires
/// (half its life, for short ones).
pub fn held_for(secs: u64) -> Duration {
    Duration::from_secs(secs - (secs / 2).min(30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_retry_after_wins() {
        let r = Retry {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(3),
        };
        let waits: Vec<u128> = (0..4).map(|n| r.delay(n, None).as_millis()).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000]);
        assert_eq!(
            r.delay(0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            r.delay(0, Some(Duration::from_secs(120))),
            Duration::from_secs(3)
        );
        assert_eq!(r.delay(0, Some(Duration::ZERO)), Duration::ZERO);
    }

    #[test]
    fn tokens_are_renewed_before_they_expire() {
        assert_eq!(held_for(599), Duration::from_secs(569));
        assert_eq!(held_for(10), Duration::from_secs(5));
        assert_eq!(held_for(0), Duration::ZERO);
    }
}
