//! Source files on the local S3 server `scripts/check` starts (moto): its options, as an
//! importer passes them, and a store to put files there.

use floe::StorageOptions;
use object_store::aws::AmazonS3;

/// The bucket, the source options (endpoint, plain HTTP, region; credentials come from the
/// `AWS_*` variables) and a store on the bucket; `None` (after saying why) when
/// `FLOE_TEST_S3_ENDPOINT` is not set.
pub fn s3_sources(test: &str) -> Option<(String, StorageOptions, AmazonS3)> {
    let Ok(endpoint) = std::env::var("FLOE_TEST_S3_ENDPOINT") else {
        println!("skipping {test}: FLOE_TEST_S3_ENDPOINT is not set (scripts/check starts a local S3 server and sets it)");
        return None;
    };
    let bucket = std::env::var("FLOE_TEST_S3_BUCKET").unwrap_or_else(|_| "floe-test".into());
    let options = vec![
        ("aws_endpoint".to_string(), endpoint),
        ("aws_allow_http".to_string(), "true".to_string()),
        ("aws_region".to_string(), "us-east-1".to_string()),
    ];
    let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket);
    for (k, v) in &options {
        builder = builder.with_config(k.parse().unwrap(), v);
    }
    Some((bucket, options, builder.build().unwrap()))
}

/// A key prefix no other test run uses.
pub fn unique_prefix(name: &str) -> String {
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{unique}", std::process::id())
}
