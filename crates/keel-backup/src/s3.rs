//! S3 and S3-compatible destinations (feature `s3`): `s3://bucket/prefix` opened with
//! object_store's `AmazonS3Builder::from_env`, so the credentials, region and endpoint come from
//! the usual `AWS_*` environment variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION`, `AWS_ENDPOINT` and `AWS_ALLOW_HTTP` for MinIO, moto and
//! the like), never from the URL, the manifest, a log line or an error. TLS is rustls with ring
//! (no C toolchain).

use std::sync::Arc;

use futures_util::StreamExt as _;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;

use crate::BackupError;

/// An S3 bucket and the prefix a backup lives under.
#[derive(Debug, Clone)]
pub struct S3Location {
    /// The store of the bucket.
    pub store: Arc<dyn ObjectStore>,
    /// The bucket's name.
    pub bucket: String,
    /// The prefix of the backup's objects (no leading or trailing `/`).
    pub prefix: String,
}

impl std::fmt::Display for S3Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Whether `text` is an `s3://` URL (rather than a local path).
pub fn is_s3_url(text: &str) -> bool {
    text.starts_with("s3://")
}

fn bad_url(url: &str, why: &str) -> BackupError {
    BackupError::Remote(format!(
        "{} is not a usable S3 location: {why}",
        keel_core::redact::redact_text(url)
    ))
}

/// Opens `s3://bucket/prefix` with the credentials and endpoint of the environment. Nothing is
/// contacted yet: a wrong credential shows at the first request, as a sentence without it.
pub fn open(url: &str) -> Result<S3Location, BackupError> {
    open_with(url, std::iter::empty::<(&str, String)>())
}

/// [`open`], with settings over the environment's, by object_store's `AmazonS3ConfigKey`
/// names (`aws_endpoint`, `aws_access_key_id`, `aws_secret_access_key`, `aws_region`,
/// `aws_allow_http`, ...).
pub fn open_with<'a>(
    url: &str,
    options: impl IntoIterator<Item = (&'a str, String)>,
) -> Result<S3Location, BackupError> {
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| bad_url(url, "it does not start with s3://"))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.contains('@') || bucket.contains(':') {
        // Not echoed: what precedes `@` may be a secret.
        return Err(BackupError::Remote(
            "the S3 URL holds credentials, and credentials do not go in the URL: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY and give s3://bucket/prefix".into(),
        ));
    }
    if bucket.is_empty() {
        return Err(bad_url(url, "it names no bucket (s3://bucket/prefix)"));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        return Err(bad_url(
            url,
            "give each backup a prefix of its own, such as s3://bucket/app/2026-12-02",
        ));
    }
    // reqwest is built without a crypto provider of its own: ring, as the driver already uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (key, value) in options {
        let key = key.parse().map_err(|_| {
            BackupError::Remote(format!("{key:?} is not an S3 setting object_store knows"))
        })?;
        builder = builder.with_config(key, value);
    }
    let store = builder.build().map_err(|e| {
        BackupError::Remote(format!(
            "the S3 client for bucket {bucket} could not be set up: {}",
            keel_core::redact::redact_text(&e.to_string())
        ))
    })?;
    Ok(S3Location {
        store: Arc::new(store),
        bucket: bucket.to_owned(),
        prefix: prefix.to_owned(),
    })
}

/// Whether any object exists under `prefix` (a backup must go to a new prefix, as a local
/// backup must go to a new directory).
pub async fn prefix_is_empty(store: &dyn ObjectStore, prefix: &str) -> Result<bool, BackupError> {
    let base = ObjectPath::from(prefix.trim_end_matches('/'));
    match store.list(Some(&base)).next().await {
        None => Ok(true),
        Some(Ok(_)) => Ok(false),
        Some(Err(e)) => Err(BackupError::Remote(keel_core::redact::redact_text(
            &e.to_string(),
        ))),
    }
}
