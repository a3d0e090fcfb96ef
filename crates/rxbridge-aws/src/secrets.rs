//! Secret settings at start-up. The stack keeps every secret setting (Stripe keys, the
//! webhook-signing secrets, SMTP credentials, a moved pharmacy's patient-data key) in one
//! Secrets Manager secret encrypted with the stage's KMS key, and gives the functions only its
//! ARN (`RXBRIDGE_SECRETS_ARN`): nothing secret sits in the Lambda environment, which anyone
//! allowed `lambda:GetFunctionConfiguration` can read. The secret is a JSON object with the same
//! names and value formats as the environment variables (`docs/configuration.md`). It is read
//! once per cold start through the AWS Parameters and Secrets Lambda extension (a local HTTP
//! endpoint that calls `GetSecretValue` with the function's own role, so no SDK client is built
//! here) and applied to the configuration before it is validated.

use anyhow::{Context as _, anyhow, bail};
use rxbridge::Config;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The settings the secret may hold: every secret `RXBRIDGE_*` setting, and nothing else (a
/// non-secret setting belongs in the environment, where it can be reviewed).
pub const SECRET_SETTINGS: [&str; 6] = [
    "RXBRIDGE_PATIENT_KEY",
    "RXBRIDGE_STRIPE_SECRET_KEY",
    "RXBRIDGE_STRIPE_WEBHOOK_SECRETS",
    "RXBRIDGE_SMTP_USERNAME",
    "RXBRIDGE_SMTP_PASSWORD",
    "RXBRIDGE_WAREHOUSE_INBOUND_SECRETS",
];

/// Apply the secret's settings (`secret_string`, the secret's JSON) to `config`. `in_env` says
/// whether a name is also set in the environment: a setting in both places is refused, so that
/// a stale plain copy cannot linger beside the secret. Returns the names applied; on an error
/// `config` is left as it was. Errors name the setting, never a value.
pub fn apply(
    config: &mut Config,
    secret_string: &str,
    in_env: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<String>> {
    // serde_json's messages can quote the input: only the position is reported.
    let settings: BTreeMap<String, serde_json::Value> = serde_json::from_str(secret_string)
        .map_err(|e| {
            anyhow!(
                "the secret is not a JSON object of RXBRIDGE_* names to strings (line {}, column {})",
                e.line(),
                e.column()
            )
        })?;
    let mut next = config.clone();
    let mut applied = Vec::new();
    for (name, value) in settings {
        if !SECRET_SETTINGS.contains(&name.as_str()) {
            bail!("{}", not_a_secret_setting(&name));
        }
        let serde_json::Value::String(value) = value else {
            bail!("{name} in the secret must be a string (the environment variable's format)");
        };
        if in_env(&name) {
            bail!(
                "{name} is set both in the environment and in the secret: remove it from the environment"
            );
        }
        match name.as_str() {
            "RXBRIDGE_PATIENT_KEY" => next.patient_key = Some(value.into()),
            "RXBRIDGE_STRIPE_SECRET_KEY" => next.stripe.secret_key = Some(value.into()),
            "RXBRIDGE_STRIPE_WEBHOOK_SECRETS" => next.stripe.webhook_secrets = secrets(&value),
            "RXBRIDGE_SMTP_USERNAME" => next.mail.smtp_username = Some(value),
            "RXBRIDGE_SMTP_PASSWORD" => next.mail.smtp_password = Some(value.into()),
            "RXBRIDGE_WAREHOUSE_INBOUND_SECRETS" => {
                next.warehouse.inbound_secrets = secrets(&value)
            }
            // Every name in SECRET_SETTINGS has its arm above (tested).
            _ => bail!("{}", not_a_secret_setting(&name)),
        }
        applied.push(name);
    }
    *config = next;
    Ok(applied)
}

fn not_a_secret_setting(name: &str) -> String {
    // A key is shown only when it looks like a setting's name (a value pasted as a key is not).
    let shown = if name.len() <= 64
        && name.starts_with("RXBRIDGE_")
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        name.to_string()
    } else {
        "a key that is not an RXBRIDGE_* name".to_string()
    };
    format!(
        "the secret holds {shown}, which is not a secret setting (it may hold {}; other settings go in the environment)",
        SECRET_SETTINGS.join(", ")
    )
}

/// Comma-separated, as in the environment variables (two webhook secrets while one is rolled).
fn secrets(value: &str) -> Vec<SecretString> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(SecretString::from)
        .collect()
}

/// The extension's address: its default port, or `PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`.
pub fn extension_base() -> String {
    let port = std::env::var("PARAMETERS_SECRETS_EXTENSION_HTTP_PORT")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "2773".into());
    format!("http://localhost:{port}")
}

/// The secret's `SecretString`, from the Parameters and Secrets extension at `base`,
/// authenticated by the function's session token. Lambda starts the runtime once the extension
/// has registered, not once it serves: a refused connection is retried until `wait` has passed.
pub async fn fetch(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    secret_id: &str,
    wait: Duration,
) -> anyhow::Result<String> {
    let url = reqwest::Url::parse_with_params(
        &format!("{base}/secretsmanager/get"),
        &[("secretId", secret_id)],
    )
    .with_context(|| format!("the extension's address {base:?}"))?;
    let deadline = Instant::now() + wait;
    let response = loop {
        let sent = http
            .get(url.clone())
            .header("X-Aws-Parameters-Secrets-Token", token)
            .send()
            .await;
        match sent {
            Ok(r) => break r,
            Err(e) if e.is_connect() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => bail!(
                "reading the secret {secret_id} through the Parameters and Secrets extension at {base}: {e}"
            ),
        }
    };
    let status = response.status();
    let body = response
        .bytes()
        .await
        .with_context(|| format!("reading the extension's answer for {secret_id}"))?;
    if !status.is_success() {
        // An error answer names the failure (AccessDenied, ResourceNotFound…), never a value.
        let text = String::from_utf8_lossy(&body);
        bail!(
            "reading the secret {secret_id}: the extension answered {status}: {}",
            text.chars().take(300).collect::<String>()
        );
    }
    #[derive(serde::Deserialize)]
    struct GetSecretValue {
        #[serde(rename = "SecretString")]
        secret_string: Option<String>,
    }
    let answer: GetSecretValue = serde_json::from_slice(&body).map_err(|e| {
        anyhow!(
            "the extension's answer for {secret_id} is not a GetSecretValue result (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    answer.secret_string.ok_or_else(|| {
        anyhow!("the secret {secret_id} has no SecretString (a binary secret is not read)")
    })
}

/// With `RXBRIDGE_SECRETS_ARN` set (the stack sets it), read that secret and apply it to
/// `config`; without it, nothing changes (local runs, tests).
pub async fn load(config: &mut Config) -> anyhow::Result<()> {
    let Some(arn) = std::env::var("RXBRIDGE_SECRETS_ARN")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        return Ok(());
    };
    let token = std::env::var("AWS_SESSION_TOKEN").context(
        "RXBRIDGE_SECRETS_ARN is set but AWS_SESSION_TOKEN (the function's credentials) is not",
    )?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?;
    let secret = fetch(
        &http,
        &extension_base(),
        &token,
        &arn,
        Duration::from_secs(5),
    )
    .await?;
    let applied = apply(config, &secret, |name| std::env::var_os(name).is_some())?;
    tracing::info!(settings = ?applied, "secret settings read from Secrets Manager");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, StatusCode, Uri};

    /// What a secret field holds (the tests compare values; `Debug` shows none).
    fn shown(s: &Option<secrecy::SecretString>) -> Option<&str> {
        s.as_ref().map(secrecy::ExposeSecret::expose_secret)
    }

    fn all_shown(v: &[secrecy::SecretString]) -> Vec<&str> {
        v.iter().map(secrecy::ExposeSecret::expose_secret).collect()
    }

    const STRIPE: &str = "sk_test_0123456789abcdef";
    const WHSEC_A: &str = "whsec_aaaaaaaaaaaaaaaaaaaaaaaa";
    const WHSEC_B: &str = "whsec_bbbbbbbbbbbbbbbbbbbbbbbb";

    fn nowhere(_: &str) -> bool {
        false
    }

    #[test]
    fn every_secret_setting_lands_in_its_field() {
        let mut c = Config::default();
        let secret = serde_json::json!({
            "RXBRIDGE_PATIENT_KEY": "ab".repeat(32),
            "RXBRIDGE_STRIPE_SECRET_KEY": STRIPE,
            "RXBRIDGE_STRIPE_WEBHOOK_SECRETS": format!("{WHSEC_A}, {WHSEC_B}"),
            "RXBRIDGE_SMTP_USERNAME": "AKIAEXAMPLE",
            "RXBRIDGE_SMTP_PASSWORD": "smtp-password",
            "RXBRIDGE_WAREHOUSE_INBOUND_SECRETS": WHSEC_A,
        });
        let applied = apply(&mut c, &secret.to_string(), nowhere).unwrap();
        let mut expected: Vec<String> = SECRET_SETTINGS.iter().map(|s| s.to_string()).collect();
        expected.sort();
        assert_eq!(applied, expected);
        assert_eq!(shown(&c.patient_key), Some("ab".repeat(32).as_str()));
        assert_eq!(shown(&c.stripe.secret_key), Some(STRIPE));
        assert_eq!(all_shown(&c.stripe.webhook_secrets), vec![WHSEC_A, WHSEC_B]);
        assert_eq!(c.mail.smtp_username.as_deref(), Some("AKIAEXAMPLE"));
        assert_eq!(shown(&c.mail.smtp_password), Some("smtp-password"));
        assert_eq!(all_shown(&c.warehouse.inbound_secrets), vec![WHSEC_A]);
    }

    #[test]
    fn an_empty_secret_changes_nothing() {
        let mut c = Config::default();
        assert!(apply(&mut c, "{}", nowhere).unwrap().is_empty());
        assert_eq!(shown(&c.stripe.secret_key), None);
        assert!(c.stripe.webhook_secrets.is_empty());
        assert_eq!(shown(&c.patient_key), None);
    }

    #[test]
    fn errors_name_the_setting_and_never_the_value() {
        let cases = [
            // Not JSON, or not an object: only the position is reported.
            (format!("\"{STRIPE}\""), "not a JSON object"),
            (
                format!("{{\"RXBRIDGE_STRIPE_SECRET_KEY\": {STRIPE}}}"),
                "line 1",
            ),
            // A non-secret setting belongs in the environment.
            (
                r#"{"RXBRIDGE_PAYMENTS_PROVIDER": "stripe"}"#.to_string(),
                "RXBRIDGE_PAYMENTS_PROVIDER, which is not a secret setting",
            ),
            // A value pasted as a key is not echoed.
            (
                format!("{{\"{STRIPE}\": \"x\"}}"),
                "a key that is not an RXBRIDGE_* name",
            ),
            (
                r#"{"RXBRIDGE_SMTP_PASSWORD": 12345}"#.to_string(),
                "RXBRIDGE_SMTP_PASSWORD in the secret must be a string",
            ),
        ];
        for (secret, expected) in cases {
            let mut c = Config::default();
            let e = apply(&mut c, &secret, nowhere).unwrap_err().to_string();
            assert!(e.contains(expected), "{secret}: {e}");
            assert!(!e.contains(STRIPE), "{secret}: the value leaked into {e}");
            assert!(!e.contains("12345"), "{secret}: the value leaked into {e}");
            assert_eq!(
                shown(&c.stripe.secret_key),
                None,
                "{secret}: nothing is applied"
            );
        }
    }

    #[test]
    fn a_secret_with_one_bad_setting_applies_none() {
        let mut c = Config::default();
        // Keys are applied in name order: the Stripe key comes before the bad one.
        let secret = serde_json::json!({
            "RXBRIDGE_STRIPE_SECRET_KEY": STRIPE,
            "RXBRIDGE_WAREHOUSE_INBOUND_SECRETS": 7,
        });
        assert!(apply(&mut c, &secret.to_string(), nowhere).is_err());
        assert_eq!(shown(&c.stripe.secret_key), None);
    }

    #[test]
    fn a_setting_in_both_the_environment_and_the_secret_is_refused() {
        let mut c = Config::default();
        let secret = serde_json::json!({ "RXBRIDGE_STRIPE_SECRET_KEY": STRIPE }).to_string();
        let e = apply(&mut c, &secret, |n| n == "RXBRIDGE_STRIPE_SECRET_KEY")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("both in the environment and in the secret"),
            "{e}"
        );
        assert!(!e.contains(STRIPE));
    }

    /// A local stand-in for the extension: the GetSecretValue answer for one secret id, only
    /// with the session token.
    async fn stand_in(secret_id: &'static str, secret_string: &'static str) -> String {
        let app = axum::Router::new().route(
            "/secretsmanager/get",
            axum::routing::get(move |uri: Uri, headers: HeaderMap| async move {
                let token = headers
                    .get("X-Aws-Parameters-Secrets-Token")
                    .and_then(|v| v.to_str().ok());
                if token != Some("session-token") {
                    return (StatusCode::UNAUTHORIZED, "missing token".to_string());
                }
                let query = uri.query().unwrap_or_default().to_string();
                let wanted = reqwest::Url::parse(&format!("http://x/?{query}"))
                    .ok()
                    .and_then(|u| {
                        u.query_pairs()
                            .find(|(k, _)| k == "secretId")
                            .map(|(_, v)| v.into_owned())
                    });
                if wanted.as_deref() != Some(secret_id) {
                    return (
                        StatusCode::BAD_REQUEST,
                        "ResourceNotFoundException".to_string(),
                    );
                }
                let body = serde_json::json!({
                    "ARN": secret_id,
                    "Name": "rxbridge-test/settings",
                    "SecretString": secret_string,
                    "VersionId": "v1",
                    "VersionStages": ["AWSCURRENT"],
                });
                (StatusCode::OK, body.to_string())
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    const ARN: &str =
        "arn:aws:secretsmanager:eu-west-2:123456789012:secret:rxbridge-test/settings-AbCdEf";

    #[tokio::test]
    async fn the_secret_is_read_through_the_extension_with_the_session_token() {
        let secret = r#"{"RXBRIDGE_STRIPE_SECRET_KEY":"sk_test_0123456789abcdef"}"#;
        let base = stand_in(ARN, secret).await;
        let http = reqwest::Client::new();
        let got = fetch(&http, &base, "session-token", ARN, Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got, secret);

        let mut c = Config::default();
        apply(&mut c, &got, nowhere).unwrap();
        assert_eq!(shown(&c.stripe.secret_key), Some(STRIPE));
    }

    #[tokio::test]
    async fn a_refused_answer_or_an_absent_extension_is_a_clear_error() {
        let base = stand_in(ARN, "{}").await;
        let http = reqwest::Client::new();
        let e = fetch(&http, &base, "wrong-token", ARN, Duration::ZERO)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("401"), "{e}");
        let e = fetch(
            &http,
            &base,
            "session-token",
            "another-secret",
            Duration::ZERO,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("ResourceNotFoundException"), "{e}");

        // Nothing listening (a port just released): refused, and no wait allowed.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = fetch(&http, &closed, "session-token", ARN, Duration::ZERO)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("Parameters and Secrets extension"), "{e}");
    }
}
