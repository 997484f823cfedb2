//! Virtual chunk containers declared in the repository configuration.
//!
//! The declarations are a sequence of records `config/containers/<seq>`, each created only
//! if absent and holding the whole container list; the newest record wins. A writer reads
//! the newest record, adds its containers and creates the next record; when another writer
//! took that slot first it reads again and retries, so concurrent declarations are never
//! lost and no conditional update is needed. Finding the newest record gallops over
//! existence checks, like branch records.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::clients::repository_option_refusal;
use super::location::check_prefix;
use crate::error::{Error, Result};
use crate::format::now_us;
use crate::repo::Repository;
use crate::storage::record_seq::RecordSeq;
use crate::storage::{get_optional, layout, PutOutcome};

/// How many times a declaration is retried when other writers keep taking the next record.
const DECLARE_ATTEMPTS: u32 = 64;

/// A place virtual chunks may live: a URL prefix and the non-secret object-store settings
/// needed to read below it. Declared in the repository configuration (see
/// [`Repository::declare_virtual_containers`]); reading from it still needs authorization
/// (see [`crate::VirtualAccess`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VirtualContainer {
    /// URL prefix (`file://`, `s3://`, `gs://`, `az://`, `http://`, `https://`), normalised
    /// to end with `/`.
    pub prefix: String,
    /// Object-store options that are not secrets (region, endpoint, `allow_http`...), as the
    /// backend's configuration keys. Credentials, and options that redirect credentials or
    /// weaken transport security, are refused (see [`VirtualContainer::new`]): give them when
    /// opening. Used only by readers that trust this container (see [`crate::VirtualAccess`]).
    pub options: Vec<(String, String)>,
}

impl VirtualContainer {
    /// A container, with its prefix checked and normalised (a plain absolute path becomes a
    /// `file://` URL, a `/` is appended) and its options checked.
    ///
    /// Fails with [`Error::VirtualLocationRefused`] for a prefix that is not an absolute URL of
    /// a supported scheme or that holds `.`/`..` segments, for an option whose key looks
    /// like a credential, and for an option that would redirect the reader's credentials or
    /// weaken transport security (proxies, `allow_invalid_certificates`, metadata and
    /// credential endpoints or files, role and bucket overrides, URLs with `user:password@`):
    /// such options may only be given by the reader, when opening.
    pub fn new(prefix: &str, options: Vec<(String, String)>) -> Result<Self> {
        let checked = check_prefix(prefix)?;
        for (key, value) in &options {
            if looks_secret(key) {
                return Err(Error::VirtualLocationRefused {
                    location: checked.text.clone(),
                    reason: format!(
                        "option `{key}` looks like a credential; credentials are never stored in \
                         the repository: give them when opening (VirtualAccess::with_options)"
                    ),
                });
            }
            if let Some(reason) = repository_option_refusal(key, value) {
                return Err(Error::VirtualLocationRefused {
                    location: checked.text.clone(),
                    reason: format!(
                        "{reason}; give it when opening (VirtualAccess::with_options) if you \
                         trust it"
                    ),
                });
            }
        }
        Ok(VirtualContainer {
            prefix: checked.text,
            options,
        })
    }

    /// True when the normalised location `url` lies below this container's prefix.
    pub(crate) fn holds(&self, url: &str) -> bool {
        url.starts_with(&self.prefix)
    }
}

/// True for option keys that name credentials or other secrets: a word `key`, `sas` or `pat`
/// (`aws_access_key_id`, `azure_storage_account_key`...), or any key mentioning a secret,
/// password, token, credential or bearer.
pub(crate) fn looks_secret(key: &str) -> bool {
    const SECRET_PARTS: [&str; 6] = [
        "secret",
        "password",
        "passwd",
        "token",
        "credential",
        "bearer",
    ];
    let key = key.to_ascii_lowercase();
    key.split(['_', '-', '.'])
        .any(|word| matches!(word, "key" | "sas" | "pat"))
        || SECRET_PARTS.iter().any(|part| key.contains(part))
}

/// One record of the container declarations.
#[derive(Debug, Serialize, Deserialize)]
struct ContainerRecord {
    seq: u64,
    written_at_us: i64,
    containers: Vec<VirtualContainer>,
}

impl Repository {
    /// The newest declaration record: its sequence number and containers (`None` when
    /// nothing was ever declared). Declarations are few: the window of records from 0 fetched
    /// together usually holds the newest (one round trip); longer sequences are probed as
    /// branch records are (algorithms.md §3).
    async fn newest_container_record(&self) -> Result<Option<(u64, Vec<VirtualContainer>)>> {
        let key_of = |seq: u64| layout::container_record_key(seq);
        let records = RecordSeq::new(self.storage().as_ref(), &key_of);
        let Some(newest) = records.newest(0).await? else {
            return Ok(None);
        };
        let key = layout::container_record_key(newest.seq);
        let record: ContainerRecord = serde_json::from_slice(&newest.bytes)
            .map_err(|e| Error::corrupt(&key, format!("not a container record: {e}")))?;
        if record.seq != newest.seq {
            return Err(Error::corrupt(
                key,
                format!("record claims sequence {}", record.seq),
            ));
        }
        Ok(Some((newest.seq, record.containers)))
    }

    /// The virtual chunk containers declared in the repository, sorted by prefix.
    ///
    /// Records are checked again as they are read (a record may have been written by hand or
    /// by an older version): fails with [`Error::VirtualLocationRefused`] naming the container
    /// when one is refused by [`VirtualContainer::new`]. Declaring its prefix again with
    /// acceptable options replaces it.
    pub async fn virtual_containers(&self) -> Result<Vec<VirtualContainer>> {
        let containers = match self.newest_container_record().await? {
            Some((seq, raw)) => {
                let record = layout::container_record_key(seq);
                raw.iter()
                    .map(|c| recheck(c).map_err(|e| stored_refusal(&record, c, e)))
                    .collect::<Result<Vec<_>>>()?
            }
            None => Vec::new(),
        };
        self.virtual_reader.remember_declared(&containers);
        Ok(containers)
    }

    /// Adds containers to the repository's declarations (a union: declaring a prefix again
    /// replaces its options; declaring nothing new writes nothing). Safe under concurrency:
    /// when another writer declared meanwhile, this one reads the declarations again and
    /// retries, so both end up declared.
    ///
    /// Each container is checked as by [`VirtualContainer::new`] (prefix normalised, secret
    /// options refused).
    pub async fn declare_virtual_containers(&self, containers: &[VirtualContainer]) -> Result<()> {
        let wanted = containers
            .iter()
            .map(|c| VirtualContainer::new(&c.prefix, c.options.clone()))
            .collect::<Result<Vec<_>>>()?;
        let mut next = 0;
        for _ in 0..DECLARE_ATTEMPTS {
            let (seq, current) = match self.newest_container_record().await? {
                Some((seq, current)) => (seq + 1, current),
                None => (0, Vec::new()),
            };
            next = seq;
            // Stored containers that no longer pass the checks must be replaced by this
            // declaration; the others are kept in their normalised form.
            let mut kept = Vec::with_capacity(current.len());
            for stored in &current {
                match recheck(stored) {
                    Ok(c) => kept.push(c),
                    Err(e) => {
                        let replaced = check_prefix(&stored.prefix)
                            .is_ok_and(|p| wanted.iter().any(|w| w.prefix == p.text));
                        if !replaced {
                            let record = layout::container_record_key(seq - 1);
                            return Err(stored_refusal(&record, stored, e));
                        }
                    }
                }
            }
            let merged = merge(&kept, &wanted);
            if merged == current {
                self.virtual_reader.remember_declared(&current);
                return Ok(());
            }
            let record = ContainerRecord {
                seq,
                written_at_us: now_us(),
                containers: merged.clone(),
            };
            let key = layout::container_record_key(seq);
            let bytes = Bytes::from(
                serde_json::to_vec_pretty(&record)
                    .map_err(|e| Error::corrupt(&key, e.to_string()))?,
            );
            let landed = match self.storage().put_if_absent(&key, bytes.clone()).await {
                Ok(PutOutcome::Created) => true,
                Ok(PutOutcome::AlreadyExists) => false,
                // The answer may have been lost after the write landed: the record tells.
                Err(e) => match get_optional(self.storage().as_ref(), &key).await? {
                    Some(found) => found == bytes,
                    None => return Err(e),
                },
            };
            if landed {
                self.virtual_reader.remember_declared(&merged);
                return Ok(());
            }
        }
        Err(Error::corrupt(
            layout::container_record_key(next),
            format!(
                "declaring virtual chunk containers lost {DECLARE_ATTEMPTS} races in a row; \
                 the storage may answer create-if-absent wrongly"
            ),
        ))
    }
}

/// A stored container checked again as [`VirtualContainer::new`] checks a new one.
fn recheck(stored: &VirtualContainer) -> Result<VirtualContainer> {
    VirtualContainer::new(&stored.prefix, stored.options.clone())
}

/// The error for a stored container refused by [`recheck`].
fn stored_refusal(record: &str, stored: &VirtualContainer, error: Error) -> Error {
    let reason = match error {
        Error::VirtualLocationRefused { reason, .. } => reason,
        other => other.to_string(),
    };
    Error::VirtualLocationRefused {
        location: stored.prefix.clone(),
        reason: format!(
            "the container declared in `{record}` is refused ({reason}); declare its prefix \
             again with acceptable options to replace it"
        ),
    }
}

/// `current` with `wanted` added (a wanted prefix replaces the options of the same prefix),
/// sorted by prefix.
fn merge(current: &[VirtualContainer], wanted: &[VirtualContainer]) -> Vec<VirtualContainer> {
    let mut by_prefix: BTreeMap<&str, &VirtualContainer> = BTreeMap::new();
    for c in current.iter().chain(wanted) {
        by_prefix.insert(&c.prefix, c);
    }
    by_prefix.into_values().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        for secret in [
            "aws_secret_access_key",
            "aws_access_key_id",
            "aws_session_token",
            "google_service_account_key",
            "azure_storage_account_key",
            "azure_storage_sas_key",
            "bearer_token",
            "password",
            "client_secret",
            "azure_client_secret",
        ] {
            assert!(looks_secret(secret), "{secret}");
        }
        for plain in [
            "aws_region",
            "aws_endpoint",
            "allow_http",
            "aws_allow_http",
            "aws_skip_signature",
            "region",
            "endpoint",
        ] {
            assert!(!looks_secret(plain), "{plain}");
        }
    }

    #[test]
    fn containers_normalise_and_merge() {
        let a = VirtualContainer::new("s3://b/x", vec![]).unwrap();
        assert_eq!(a.prefix, "s3://b/x/");
        let secret = VirtualContainer::new(
            "s3://b/x",
            vec![("aws_secret_access_key".into(), "s".into())],
        );
        assert!(secret.is_err());
        let b = VirtualContainer::new("/data", vec![]).unwrap();
        let a2 =
            VirtualContainer::new("s3://b/x/", vec![("aws_region".into(), "r".into())]).unwrap();
        let merged = merge(&[a, b.clone()], std::slice::from_ref(&a2));
        assert_eq!(merged, vec![b, a2]);
    }
}
