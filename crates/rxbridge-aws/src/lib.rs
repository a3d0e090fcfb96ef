//! rxbridge on AWS: the same use cases and router as the embedded build, on DynamoDB
//! (`rxbridge-store-dynamodb`), S3 documents, a KMS envelope key for patient data and Cognito
//! staff tokens, served by Lambda behind API Gateway (HTTP API), with the background work as a
//! scheduled Lambda. Configuration comes from the environment (the CDK stack sets it) and,
//! for secret settings, from the stage's Secrets Manager secret read at start-up (`secrets`).

pub mod anchors;
pub mod cognito;
pub mod documents;
pub mod keys;
pub mod lambda;
pub mod secrets;

use anyhow::Context as _;
use rxbridge::{Backend, Config};
use rxbridge_store_dynamodb::DynamoStore;
use std::sync::Arc;

/// Where the AWS resources are (`RXBRIDGE_*`, set by the CDK stack).
#[derive(Debug, Clone, Default)]
pub struct AwsSettings {
    /// `RXBRIDGE_TABLE`
    pub table: String,
    /// `RXBRIDGE_DOCUMENTS_BUCKET`
    pub bucket: String,
    /// `RXBRIDGE_KMS_KEY_ID`: the key that wraps the patient-data key and encrypts documents.
    /// Without it the patient-data key must come from `RXBRIDGE_PATIENT_KEY` (a secret
    /// injected from Secrets Manager).
    pub kms_key_id: Option<String>,
    /// `RXBRIDGE_COGNITO_USER_POOL_ID` and `RXBRIDGE_COGNITO_CLIENT_ID`: staff sign-in.
    pub cognito_pool_id: Option<String>,
    pub cognito_client_id: Option<String>,
    /// `RXBRIDGE_COGNITO_DOMAIN`: the user pool's sign-in domain
    /// (`https://{prefix}.auth.{region}.amazoncognito.com`). With the pool and client set, the
    /// portal signs staff in there (password + MFA) and refuses local passwords.
    pub cognito_domain: Option<String>,
    /// `RXBRIDGE_COGNITO_JWKS_URL`: where the pool's keys are, when not at the issuer (local
    /// stand-ins only).
    pub cognito_jwks_url: Option<String>,
    /// `RXBRIDGE_AWS_ENDPOINT`: a local stand-in (moto_server) instead of AWS.
    pub endpoint_url: Option<String>,
    /// `RXBRIDGE_ANCHOR_BUCKET`: the S3 bucket (Object Lock) the worker writes audit anchors
    /// to; no anchors on AWS when unset.
    pub anchor_bucket: Option<String>,
}

impl AwsSettings {
    pub fn from_env() -> anyhow::Result<Self> {
        let need = |name: &str| {
            std::env::var(name)
                .with_context(|| format!("{name} must be set (the CDK stack sets it)"))
        };
        let opt = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        Ok(Self {
            table: need("RXBRIDGE_TABLE")?,
            bucket: need("RXBRIDGE_DOCUMENTS_BUCKET")?,
            kms_key_id: opt("RXBRIDGE_KMS_KEY_ID"),
            cognito_pool_id: opt("RXBRIDGE_COGNITO_USER_POOL_ID"),
            cognito_client_id: opt("RXBRIDGE_COGNITO_CLIENT_ID"),
            cognito_domain: opt("RXBRIDGE_COGNITO_DOMAIN"),
            cognito_jwks_url: opt("RXBRIDGE_COGNITO_JWKS_URL"),
            endpoint_url: opt("RXBRIDGE_AWS_ENDPOINT"),
            anchor_bucket: opt("RXBRIDGE_ANCHOR_BUCKET"),
        })
    }
}

/// The SDK configuration: the default chain (Lambda's role, region from the environment), or
/// the local stand-in with dummy credentials.
pub async fn sdk_config(settings: &AwsSettings) -> aws_config::SdkConfig {
    match &settings.endpoint_url {
        Some(url) => local_sdk_config(url),
        None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
    }
}

/// An S3 client; `path_style` addresses the bucket in the path (local stand-ins need it).
pub fn s3_client(sdk: &aws_config::SdkConfig, path_style: bool) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(path_style)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// A configuration for a local stand-in (tests, development).
pub fn local_sdk_config(endpoint_url: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("eu-west-2"))
        .endpoint_url(endpoint_url)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("local", "local", None, None, "static"),
        ))
        .build()
}

/// The AWS adapters of every port, and the store (for the worker and tests).
pub struct AwsBackend {
    pub backend: Backend,
    pub store: Arc<DynamoStore>,
}

/// Build the adapters: the DynamoDB store, S3 documents and the patient-data key (KMS data
/// key unwrapped once here, at start-up; or `patient_key` from the environment).
pub async fn backend(
    config: &Config,
    settings: &AwsSettings,
    sdk: &aws_config::SdkConfig,
) -> anyhow::Result<AwsBackend> {
    let store = Arc::new(DynamoStore::with_client(
        aws_sdk_dynamodb::Client::new(sdk),
        &settings.table,
    ));
    let vault = match (&config.patient_key, &settings.kms_key_id) {
        (Some(k), _) => {
            rxbridge_app::PatientVault::from_hex(secrecy::ExposeSecret::expose_secret(k))
                .context("RXBRIDGE_PATIENT_KEY")?
        }
        (None, Some(key_id)) => {
            keys::patient_vault(&aws_sdk_kms::Client::new(sdk), &store, key_id).await?
        }
        (None, None) => anyhow::bail!(
            "no patient-data key: set RXBRIDGE_KMS_KEY_ID (envelope encryption) or RXBRIDGE_PATIENT_KEY"
        ),
    };
    let documents = Arc::new(documents::S3Documents::new(
        sdk,
        &settings.bucket,
        settings.kms_key_id.clone(),
        settings.endpoint_url.is_some(),
    ));
    Ok(AwsBackend {
        backend: Backend::on(store.clone(), documents, vault),
        store,
    })
}
