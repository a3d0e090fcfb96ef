//! Audit anchors on AWS.
//!
//! - The anchor key: an Ed25519 seed made at first start, stored only sealed (AES-256-GCM under
//!   the patient-data key, which KMS wraps — `keys.rs`) in the table's `CONFIG` /
//!   `ANCHORKEY` item, its public half beside it in `CONFIG` / `ANCHORPUB` for the operator's
//!   verify. Concurrent first starts agree (written only if absent; the loser reads the
//!   winner's). KMS itself offers Ed25519 signing keys (`ECC_NIST_EDWARDS25519`); they are not
//!   used because no local stand-in emulates them, and this way the key is as well protected as
//!   the patient data (opened only through the Lambda role's KMS grant).
//! - The witness: an S3 bucket with Object Lock (compliance-mode default retention, set by the
//!   CDK stack): each anchor is a new object `anchors/<time>-<events>.json` that nobody — not
//!   the worker, not an administrator — can overwrite or delete until its retention ends.

use anyhow::{Context as _, anyhow};
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ChecksumAlgorithm;
use rxbridge_app::PatientVault;
use rxbridge_app::anchor::{Anchor, AnchorKey, AnchorPublicKey, Witness};
use rxbridge_store_dynamodb::DynamoStore;

const KEY_ITEM: &str = "ANCHORKEY";
const PUB_ITEM: &str = "ANCHORPUB";

fn seal_context(table: &str) -> String {
    format!("rxbridge-anchor-key:{table}")
}

/// The stage's anchor key, created on first use.
pub async fn anchor_key(store: &DynamoStore, vault: &PatientVault) -> anyhow::Result<AnchorKey> {
    let ctx = seal_context(store.table());
    let sealed = match store.config_blob(KEY_ITEM).await? {
        Some(s) => s,
        None => {
            let key = rxbridge_app::anchor::generate_key();
            let sealed = vault.seal(&ctx, &key.to_bytes());
            if store.put_config_blob_once(KEY_ITEM, &sealed).await? {
                // The public half, for `rxbridge-aws verify --anchor` without KMS access.
                store
                    .put_config_blob_once(PUB_ITEM, key.verifying_key().as_bytes())
                    .await?;
                tracing::info!(public_key = %hex::encode(key.verifying_key().as_bytes()), "created the audit anchor key");
                sealed
            } else {
                store
                    .config_blob(KEY_ITEM)
                    .await?
                    .ok_or_else(|| anyhow!("the anchor key vanished"))?
            }
        }
    };
    let seed: [u8; 32] = vault
        .open(&ctx, &sealed)
        .context("opening the anchor key")?
        .try_into()
        .map_err(|_| anyhow!("the anchor key is not 32 bytes"))?;
    Ok(AnchorKey::from_bytes(&seed))
}

/// The public key recorded with the stage's anchor key (`None` before the first start).
pub async fn recorded_public_key(store: &DynamoStore) -> anyhow::Result<Option<AnchorPublicKey>> {
    let Some(b) = store.config_blob(PUB_ITEM).await? else {
        return Ok(None);
    };
    let b: [u8; 32] = b
        .try_into()
        .map_err(|_| anyhow!("the recorded anchor public key is not 32 bytes"))?;
    Ok(Some(AnchorPublicKey::from_bytes(&b)?))
}

/// An S3 bucket with Object Lock.
pub struct S3Witness {
    client: Client,
    bucket: String,
}

impl S3Witness {
    /// `path_style`: address the bucket in the path (local stand-ins need it).
    pub fn new(sdk: &aws_config::SdkConfig, bucket: &str, path_style: bool) -> Self {
        Self {
            client: crate::s3_client(sdk, path_style),
            bucket: bucket.to_string(),
        }
    }

    pub fn object_key(a: &Anchor) -> String {
        format!(
            "anchors/{}-{}.json",
            a.at.strftime("%Y%m%dT%H%M%SZ"),
            a.chains.first().map_or(0, |c| c.length)
        )
    }
}

#[async_trait]
impl Witness for S3Witness {
    fn name(&self) -> String {
        format!("s3://{}", self.bucket)
    }
    async fn publish(&self, a: &Anchor) -> anyhow::Result<String> {
        let key = Self::object_key(a);
        let body = serde_json::to_vec_pretty(a)?;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            // Object Lock buckets require an integrity checksum on every write.
            .checksum_algorithm(ChecksumAlgorithm::Sha256)
            // Never over an existing anchor.
            .if_none_match("*")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| {
                anyhow!(
                    "S3 PutObject {key}: {}",
                    rxbridge_store_dynamodb::sdk_message(&e)
                )
            })?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }
}
