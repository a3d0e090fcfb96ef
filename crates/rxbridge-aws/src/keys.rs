//! The patient-data key by envelope encryption: a 256-bit data key generated once by KMS
//! (`GenerateDataKey`), stored only wrapped (its KMS ciphertext) in the table's `CONFIG` /
//! `DATAKEY` item, and unwrapped (`Decrypt`) once per cold start. The plaintext key never
//! leaves memory; losing the KMS key (or access to it) makes patient data unreadable.

use anyhow::{Context as _, anyhow};
use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;
use rxbridge_app::PatientVault;
use rxbridge_store_dynamodb::DynamoStore;

const ITEM: &str = "DATAKEY";

fn context(table: &str) -> [(String, String); 2] {
    [
        ("purpose".into(), "rxbridge-patient-data".into()),
        ("table".into(), table.into()),
    ]
}

/// The vault keyed by the unwrapped data key, creating the key on first use. Concurrent
/// first starts agree: the wrapped key is written only if absent, and the loser uses the
/// winner's.
pub async fn patient_vault(
    kms: &Client,
    store: &DynamoStore,
    key_id: &str,
) -> anyhow::Result<PatientVault> {
    let wrapped = match store.config_blob(ITEM).await? {
        Some(w) => w,
        None => {
            let mut req = kms
                .generate_data_key()
                .key_id(key_id)
                .key_spec(DataKeySpec::Aes256);
            for (k, v) in context(store.table()) {
                req = req.encryption_context(k, v);
            }
            let out = req
                .send()
                .await
                .map_err(|e| anyhow!("KMS GenerateDataKey: {}", e.into_service_error()))?;
            let blob = out
                .ciphertext_blob
                .ok_or_else(|| anyhow!("KMS returned no wrapped key"))?
                .into_inner();
            if store.put_config_blob_once(ITEM, &blob).await? {
                blob
            } else {
                store
                    .config_blob(ITEM)
                    .await?
                    .ok_or_else(|| anyhow!("the wrapped data key vanished"))?
            }
        }
    };
    let mut req = kms
        .decrypt()
        .ciphertext_blob(Blob::new(wrapped))
        .key_id(key_id);
    for (k, v) in context(store.table()) {
        req = req.encryption_context(k, v);
    }
    let out = req
        .send()
        .await
        .map_err(|e| anyhow!("KMS Decrypt of the data key: {}", e.into_service_error()))?;
    let plain = out
        .plaintext
        .ok_or_else(|| anyhow!("KMS returned no plaintext"))?
        .into_inner();
    if plain.len() != 32 {
        return Err(anyhow!("the data key is {} bytes, not 32", plain.len()));
    }
    PatientVault::from_hex(&hex::encode(plain)).context("the unwrapped data key")
}
