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

/// Why an option stored in the repository (a container's declared options) is refused, if it
/// is: options that send the reader's credentials or requests elsewhere than the container's
/// store, or that weaken transport security, are never taken from the repository, whoever
/// trusts the container. The key is interpreted as every backend would read it (S3, GCS,
/// Azure, HTTP client), so no alias slips through. A value holding `user:password@` in a URL
/// is refused too. Such options may still be given by the user when opening
/// ([`super::VirtualAccess::with_options`]).
pub(crate) fn repository_option_refusal(key: &str, value: &str) -> Option<String> {
    use object_store::aws::AmazonS3ConfigKey as S3;
    use object_store::azure::AzureConfigKey as Az;
    use object_store::gcp::GoogleConfigKey as Gcs;
    use object_store::ClientConfigKey as Client;
    let transport = |client: &Client| {
        matches!(
            client,
            Client::ProxyUrl
                | Client::ProxyCaCertificate
                | Client::ProxyExcludes
                | Client::AllowInvalidCertificates
        )
    };
    let client = Client::from_str(key).ok();
    let s3 = S3::from_str(key).ok();
    let azure = Az::from_str(key).ok();
    let gcs = Gcs::from_str(key).ok();
    let weakens = client.as_ref().is_some_and(transport)
        || matches!(&s3, Some(S3::Client(c)) if transport(c))
        || matches!(&azure, Some(Az::Client(c)) if transport(c))
        || matches!(&gcs, Some(Gcs::Client(c)) if transport(c));
    if weakens {
        return Some(format!(
            "option `{key}` (proxy or certificate checking) would redirect or weaken the \
             connection carrying your credentials"
        ));
    }
    let steers = matches!(
        s3,
        Some(
            S3::Bucket
                | S3::MetadataEndpoint
                | S3::ImdsV1Fallback
                | S3::ContainerCredentialsRelativeUri
                | S3::ContainerCredentialsFullUri
                | S3::ContainerAuthorizationTokenFile
                | S3::WebIdentityTokenFile
                | S3::RoleArn
                | S3::RoleSessionName
                | S3::StsEndpoint
        )
    ) || matches!(
        azure,
        Some(
            Az::ContainerName
                | Az::ClientId
                | Az::AuthorityId
                | Az::AuthorityHost
                | Az::MsiEndpoint
                | Az::ObjectId
                | Az::MsiResourceId
                | Az::FederatedTokenFile
                | Az::UseAzureCli
                | Az::CredentialType
                | Az::FabricTokenServiceUrl
                | Az::FabricWorkloadHost
                | Az::FabricSessionToken
                | Az::FabricClusterIdentifier
        )
    ) || matches!(
        gcs,
        Some(Gcs::Bucket | Gcs::ServiceAccount | Gcs::ApplicationCredentials)
    );
    if steers {
        return Some(format!(
            "option `{key}` chooses where credentials come from or which bucket is read; \
             the repository may not set it"
        ));
    }
    if let Some((_, rest)) = value.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
        if authority.contains('@') {
            return Some(format!(
                "option `{key}` holds a URL with credentials (`user:password@`)"
            ));
        }
    }
    None
}

/// A short, stable identity of the store a client built from `prefix` and `options` reads:
/// the prefix and every option that is not a secret (endpoint, region...), hashed. Secrets
/// are left out: they choose who reads, not what is read, and must not leak into names.
pub(crate) fn store_identity(prefix: &str, options: &StorageOptions) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(prefix.as_bytes());
    let mut plain: Vec<&(String, String)> = options
        .iter()
        .filter(|(k, _)| !super::containers::looks_secret(k))
        .collect();
    plain.sort();
    for (k, v) in plain {
        for part in [k, v] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part.as_bytes());
        }
    }
    hasher.finalize().to_hex()[..16].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_redirecting_credentials_or_weakening_tls_are_refused() {
        for (key, value) in [
            ("proxy_url", "http://proxy"),
            ("aws_proxy_url", "http://proxy"),
            ("azure_proxy_url", "http://proxy"),
            ("proxy_ca_certificate", "pem"),
            ("proxy_excludes", "x"),
            ("allow_invalid_certificates", "true"),
            ("aws_allow_invalid_certificates", "true"),
            ("aws_metadata_endpoint", "http://evil"),
            ("aws_container_credentials_relative_uri", "/x"),
            ("aws_container_credentials_full_uri", "http://evil"),
            ("aws_web_identity_token_file", "/x"),
            ("aws_role_arn", "arn"),
            ("aws_endpoint_url_sts", "http://evil"),
            ("aws_bucket", "other"),
            ("azure_msi_endpoint", "http://evil"),
            ("identity_endpoint", "http://evil"),
            ("azure_federated_token_file", "/x"),
            ("azure_authority_host", "http://evil"),
            ("azure_container_name", "other"),
            ("google_application_credentials", "/x"),
            ("google_service_account", "/x"),
            ("aws_endpoint", "https://user:pw@host"),
        ] {
            assert!(
                repository_option_refusal(key, value).is_some(),
                "{key}={value}"
            );
        }
        for (key, value) in [
            ("aws_endpoint", "https://minio.example:9000"),
            ("azure_endpoint", "https://acct.blob.example"),
            ("aws_region", "eu-west-1"),
            ("allow_http", "true"),
            ("aws_skip_signature", "true"),
            ("timeout", "30s"),
            ("user_agent", "me@example"),
        ] {
            assert_eq!(repository_option_refusal(key, value), None, "{key}");
        }
    }

    #[test]
    fn store_identity_depends_on_prefix_and_plain_options_only() {
        let endpoint = |e: &str| vec![("aws_endpoint".to_string(), e.to_string())];
        let a = store_identity("s3://b/", &endpoint("https://one"));
        assert_eq!(a, store_identity("s3://b/", &endpoint("https://one")));
        assert_ne!(a, store_identity("s3://b/", &endpoint("https://two")));
        assert_ne!(a, store_identity("s3://c/", &endpoint("https://one")));
        let mut with_secret = endpoint("https://one");
        with_secret.push(("aws_secret_access_key".into(), "s".into()));
        assert_eq!(a, store_identity("s3://b/", &with_secret));
    }
}
