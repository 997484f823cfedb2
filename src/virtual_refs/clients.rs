//! Object-store clients for virtual chunk containers.

use std::str::FromStr;
use std::sync::Arc;

use object_store::ObjectStore;

use crate::error::{Error, Result};
use crate::storage::StorageOptions;

/// Builds the client reading below a container `prefix` (normalised, see
/// [`super::location::check_prefix`]). Local files are read by absolute path; cloud stores are
/// configured from the usual environment variables and then from `options`; HTTP(S) stores
/// are rooted at the server. Fails with [`Error::VirtualLocationRefused`] naming the container
/// when an option is unknown or the store cannot be configured.
pub(crate) fn build_client(prefix: &str, options: &StorageOptions) -> Result<Arc<dyn ObjectStore>> {
    let invalid = |reason: String| Error::VirtualLocationRefused {
        location: prefix.to_string(),
        reason,
    };
    let url = url::Url::parse(prefix).map_err(|e| invalid(e.to_string()))?;
    let unknown = |store: &str, key: &str| invalid(format!("unknown {store} option `{key}`"));
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "file" => Arc::new(object_store::local::LocalFileSystem::new()),
        "s3" => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env().with_url(prefix);
            for (k, v) in options {
                let key = object_store::aws::AmazonS3ConfigKey::from_str(k)
                    .map_err(|_| unknown("S3", k))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?)
        }
        "gs" => {
            let mut builder =
                object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(prefix);
            for (k, v) in options {
                let key = object_store::gcp::GoogleConfigKey::from_str(k)
                    .map_err(|_| unknown("GCS", k))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?)
        }
        "az" => {
            let mut builder =
                object_store::azure::MicrosoftAzureBuilder::from_env().with_url(prefix);
            for (k, v) in options {
                let key = object_store::azure::AzureConfigKey::from_str(k)
                    .map_err(|_| unknown("Azure", k))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?)
        }
        scheme @ ("http" | "https") => {
            let host = url
                .host_str()
                .ok_or_else(|| invalid("the URL names no host".into()))?;
            let base = match url.port() {
                Some(port) => format!("{scheme}://{host}:{port}"),
                None => format!("{scheme}://{host}"),
            };
            let mut builder = object_store::http::HttpBuilder::new().with_url(base);
            if scheme == "http" {
                builder = builder.with_config(object_store::ClientConfigKey::AllowHttp, "true");
            }
            for (k, v) in options {
                let key =
                    object_store::ClientConfigKey::from_str(k).map_err(|_| unknown("HTTP", k))?;
                builder = builder.with_config(key, v);
            }
            Arc::new(builder.build().map_err(|e| invalid(e.to_string()))?)
        }
        other => return Err(invalid(format!("unsupported scheme `{other}`"))),
    };
    Ok(store)
}
