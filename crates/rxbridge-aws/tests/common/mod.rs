//! Set-up shared by the AWS tests: buckets and keys in the local stand-in.

/// A new KMS key in the stand-in; its id.
pub async fn kms_key(sdk: &aws_config::SdkConfig, description: &str) -> String {
    aws_sdk_kms::Client::new(sdk)
        .create_key()
        .description(description)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id
}

/// A new bucket in eu-west-2 (the stand-in's region), optionally with Object Lock.
pub async fn bucket(s3: &aws_sdk_s3::Client, name: &str, object_lock: bool) {
    let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest2)
        .build();
    s3.create_bucket()
        .bucket(name)
        .create_bucket_configuration(location)
        .set_object_lock_enabled_for_bucket(object_lock.then_some(true))
        .send()
        .await
        .unwrap();
}
