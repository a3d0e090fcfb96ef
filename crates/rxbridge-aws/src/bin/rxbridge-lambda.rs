//! The Lambda binary (`bootstrap`): `RXBRIDGE_LAMBDA_ROLE=api` serves API Gateway (HTTP API)
//! events with the same router as the embedded server; `worker` runs the scheduled background
//! work. Configuration from the environment, secret settings from the stage's Secrets Manager
//! secret (`RXBRIDGE_SECRETS_ARN`, read once here; `docs/deploy-aws.md`).

use rxbridge_aws::{AwsSettings, lambda};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // JSON logs to CloudWatch; never request bodies (patient data).
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RXBRIDGE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .without_time()
        .init();
    let mut config = rxbridge::Config::load(None)?;
    // Lambda's only writable place; mail (`.eml` fallback) and temporary files go there.
    if std::env::var_os("RXBRIDGE_DATA_DIR").is_none() {
        config.data_dir = "/tmp/rxbridge".into();
    }
    // Stripe keys, webhook-signing secrets, SMTP credentials: never in the environment.
    rxbridge_aws::secrets::load(&mut config).await?;
    let settings = AwsSettings::from_env()?;
    let role = std::env::var("RXBRIDGE_LAMBDA_ROLE").unwrap_or_else(|_| "api".into());
    let started = lambda::start(
        config,
        &settings,
        std::sync::Arc::new(rxbridge_app::SystemClock),
    )
    .await?;
    tracing::info!(
        role = %role,
        init_ms = started.init.as_millis() as u64,
        "rxbridge initialised"
    );
    match role.as_str() {
        "worker" => lambda::run_worker(started).await,
        _ => lambda::run_api(started).await,
    }
}
