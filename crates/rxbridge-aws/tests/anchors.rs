//! Audit anchors on AWS against the local stand-in (moto_server): the anchor key sealed under
//! the KMS-wrapped data key (the same on every cold start), the worker's anchor run writing to
//! an S3 bucket with Object Lock, and the operator's verify against that anchor.

use rxbridge_aws::{AwsSettings, lambda, local_sdk_config};
use rxbridge_store_dynamodb::{DynamoStore, testing};
use std::sync::Arc;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_anchors_to_an_object_lock_bucket_and_verify_uses_it() {
    let endpoint = testing::endpoint();
    let sdk = local_sdk_config(&endpoint);
    let table = testing::unique_table("rxb-anchor");
    let store = DynamoStore::with_client(aws_sdk_dynamodb::Client::new(&sdk), &table);
    store.create_table().await.unwrap();
    let s3 = rxbridge_aws::s3_client(&sdk, true);
    let docs = table.to_lowercase();
    common::bucket(&s3, &docs, false).await;
    // The witness: Object Lock with a compliance-mode default retention, as the stack makes it.
    let anchors = format!("{docs}-anchors");
    common::bucket(&s3, &anchors, true).await;
    use aws_sdk_s3::types::{
        DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
        ObjectLockRule,
    };
    s3.put_object_lock_configuration()
        .bucket(&anchors)
        .object_lock_configuration(
            ObjectLockConfiguration::builder()
                .object_lock_enabled(ObjectLockEnabled::Enabled)
                .rule(
                    ObjectLockRule::builder()
                        .default_retention(
                            DefaultRetention::builder()
                                .mode(ObjectLockRetentionMode::Compliance)
                                .days(1)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let kms_key = common::kms_key(&sdk, "rxbridge anchor test").await;
    let settings = AwsSettings {
        table: table.clone(),
        bucket: docs,
        kms_key_id: Some(kms_key.clone()),
        cognito_pool_id: None,
        cognito_client_id: None,
        cognito_domain: None,
        cognito_jwks_url: None,
        endpoint_url: Some(endpoint.clone()),
        anchor_bucket: Some(anchors.clone()),
    };
    let dir = tempfile::tempdir().unwrap();
    let config = || rxbridge::Config {
        data_dir: dir.path().to_path_buf(),
        ..rxbridge::Config::default()
    };
    let clock: Arc<dyn rxbridge_app::Clock> = Arc::new(rxbridge_app::SystemClock);
    let started = lambda::start(config(), &settings, clock.clone())
        .await
        .unwrap();
    rxbridge_app::clinics::Clinics::new(started.wired.state.store.clone(), clock.clone())
        .add("Anchored Clinic")
        .await
        .unwrap();
    let key = started.anchoring.as_ref().unwrap().key.verifying_key();
    // A second cold start opens the same key.
    let again = lambda::start(config(), &settings, clock.clone())
        .await
        .unwrap();
    assert_eq!(again.anchoring.as_ref().unwrap().key.verifying_key(), key);
    assert_eq!(
        rxbridge_aws::anchors::recorded_public_key(&started.store)
            .await
            .unwrap(),
        Some(key)
    );

    let report = lambda::anchor_run(&started).await;
    assert!(
        report["anchor"].as_str().unwrap().contains("s3://"),
        "{report}"
    );
    let listed = s3
        .list_objects_v2()
        .bucket(&anchors)
        .prefix("anchors/")
        .send()
        .await
        .unwrap();
    let objects = listed.contents();
    assert_eq!(objects.len(), 1);
    let object_key = objects[0].key().unwrap().to_string();
    let body = s3
        .get_object()
        .bucket(&anchors)
        .key(&object_key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    let anchor: rxbridge_app::anchor::Anchor = serde_json::from_slice(&body).unwrap();
    assert_eq!(anchor.chains[0].length, 1, "the clinic's creation");
    anchor.verify_signature(&key).unwrap();
    // The object is under the bucket's compliance-mode retention.
    let head = s3
        .head_object()
        .bucket(&anchors)
        .key(&object_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.object_lock_mode(),
        Some(&aws_sdk_s3::types::ObjectLockMode::Compliance)
    );
    assert!(head.object_lock_retain_until_date().is_some());

    // The operator verifies the stage against the anchor from the bucket.
    let file = dir.path().join("anchor.json");
    std::fs::write(&file, &body).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rxbridge-aws"))
        .args([
            "--table",
            &table,
            "--endpoint",
            &endpoint,
            "verify",
            "--anchor",
        ])
        .arg(&file)
        .env_remove("RXBRIDGE_AUDIT_ANCHOR_PUBLIC_KEY")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("every chain holds what the anchor"), "{said}");
}
