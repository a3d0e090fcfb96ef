//! The Documents port on S3: `documents/{id}`, server-side encrypted (SSE-KMS with the
//! stack's key, or SSE-S3), the sniffed content type stored with the object, the size limit
//! checked before upload, and presigned GET links (60 s) for the portal.

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ServerSideEncryption;
use rxbridge_app::originals::{Documents, MAX_SCAN_BYTES};
use rxbridge_app::ports::StoreError;
use rxbridge_store_dynamodb::sdk_message as message;
use std::time::Duration;

/// How long a portal download link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(60);

pub struct S3Documents {
    client: Client,
    bucket: String,
    kms_key_id: Option<String>,
}

fn unexpected(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("s3: {e}"))
}

/// Document ids are generated (`doc_…`); anything else is not one of ours.
fn object_key(id: &str) -> Result<String, StoreError> {
    if id.is_empty() || id.len() > 100 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(StoreError::NotFound);
    }
    Ok(format!("documents/{id}"))
}

impl S3Documents {
    /// `path_style`: address the bucket in the path (local stand-ins need it).
    pub fn new(
        sdk: &aws_config::SdkConfig,
        bucket: &str,
        kms_key_id: Option<String>,
        path_style: bool,
    ) -> Self {
        Self {
            client: crate::s3_client(sdk, path_style),
            bucket: bucket.to_string(),
            kms_key_id,
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) => {
                let msg = message(&e);
                if e.into_service_error().is_not_found() {
                    Ok(false)
                } else {
                    Err(unexpected(msg))
                }
            }
        }
    }
}

#[async_trait]
impl Documents for S3Documents {
    async fn put(&self, id: &str, content_type: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        let key = object_key(id)?;
        if bytes.len() > MAX_SCAN_BYTES {
            return Err(StoreError::Rejected(format!(
                "a document may be at most {MAX_SCAN_BYTES} bytes"
            )));
        }
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes));
        req = match &self.kms_key_id {
            Some(k) => req
                .server_side_encryption(ServerSideEncryption::AwsKms)
                .ssekms_key_id(k),
            None => req.server_side_encryption(ServerSideEncryption::Aes256),
        };
        req.send().await.map_err(|e| unexpected(message(&e)))?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let Ok(key) = object_key(id) else {
            return Ok(None);
        };
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) => {
                let msg = message(&e);
                return if e.into_service_error().is_no_such_key() {
                    Ok(None)
                } else {
                    Err(unexpected(msg))
                };
            }
        };
        let content_type = out
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into());
        let bytes = out.body.collect().await.map_err(unexpected)?.into_bytes();
        Ok(Some((content_type, bytes.to_vec())))
    }

    async fn download_link(&self, id: &str) -> Result<Option<String>, StoreError> {
        let Ok(key) = object_key(id) else {
            return Ok(None);
        };
        if !self.exists(&key).await? {
            return Ok(None);
        }
        let presigned = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .response_content_disposition("attachment")
            .presigned(
                aws_sdk_s3::presigning::PresigningConfig::expires_in(LINK_LIFETIME)
                    .map_err(unexpected)?,
            )
            .await
            .map_err(|e| unexpected(message(&e)))?;
        Ok(Some(presigned.uri().to_string()))
    }
}
