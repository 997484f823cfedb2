//! Naming a version: branch, tag, snapshot id (or unique prefix), or a branch as of a time.

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::branch_hint::HistoryNeed;
use crate::id::{is_hex_prefix, SnapshotId};
use crate::repo::read::repository::Repository;

/// Shortest snapshot id prefix accepted.
pub const MIN_ID_PREFIX: usize = 4;

/// A way to name one version of the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionSpec {
    /// The tip of a branch.
    Branch(String),
    /// A tag.
    Tag(String),
    /// A snapshot by id.
    Snapshot(SnapshotId),
    /// The newest snapshot of `branch` committed at or before `time`.
    AsOf {
        /// The branch whose history is searched.
        branch: String,
        /// The point in time.
        time: DateTime<Utc>,
    },
    /// A name to resolve in order: branch, tag, snapshot id or unique id prefix.
    Name(String),
}

impl VersionSpec {
    /// Parses the command-line form: `branch@<RFC 3339 time>` or a name (see [`VersionSpec::Name`]).
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = |reason: &str| Error::InvalidVersion {
            spec: text.to_string(),
            reason: reason.to_string(),
        };
        if text.is_empty() {
            return Err(invalid("empty"));
        }
        if let Some((branch, time)) = text.split_once('@') {
            let time = DateTime::parse_from_rfc3339(time)
                .map_err(|e| invalid(&format!("`{time}` is not an RFC 3339 time ({e})")))?
                .with_timezone(&Utc);
            return Ok(VersionSpec::AsOf {
                branch: branch.to_string(),
                time,
            });
        }
        Ok(VersionSpec::Name(text.to_string()))
    }
}

impl std::fmt::Display for VersionSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VersionSpec::Branch(b) => write!(f, "branch {b}"),
            VersionSpec::Tag(t) => write!(f, "tag {t}"),
            VersionSpec::Snapshot(id) => write!(f, "snapshot {id}"),
            VersionSpec::AsOf { branch, time } => write!(f, "{branch}@{}", time.to_rfc3339()),
            VersionSpec::Name(n) => f.write_str(n),
        }
    }
}

impl Repository {
    /// The snapshot a version names.
    pub async fn resolve(&self, spec: &VersionSpec) -> Result<SnapshotId> {
        self.resolve_for(spec, None).await
    }

    /// [`Self::resolve`] for a log of the newest `depth` entries of the version: when it
    /// names a branch, the history its hint names is fetched together with the branch's head
    /// records (algorithms.md §3.1), saving the log a round trip.
    pub(crate) async fn resolve_for_log(
        &self,
        spec: &VersionSpec,
        depth: u64,
    ) -> Result<SnapshotId> {
        self.resolve_for(spec, Some(HistoryNeed::Newest(depth)))
            .await
    }

    async fn resolve_for(
        &self,
        spec: &VersionSpec,
        need: Option<HistoryNeed>,
    ) -> Result<SnapshotId> {
        match spec {
            VersionSpec::Branch(b) => Ok(self.branch_head_for(b, need).await?.1),
            VersionSpec::Tag(t) => Ok(self.tag(t).await?.snapshot),
            VersionSpec::Snapshot(id) => match self.load_snapshot(id).await {
                Ok(_) => Ok(*id),
                Err(e) => Err(self.explain_missing(e).await),
            },
            VersionSpec::AsOf { branch, time } => {
                // As-of descends the history: fetch what the hint names ahead.
                let need = HistoryNeed::AsOf(time.timestamp_micros());
                // The expiry horizon is read together with the head.
                let (head, horizon) = futures::join!(
                    self.branch_head_for(branch, Some(need)),
                    self.expiry_horizon()
                );
                let tip = head?.1;
                self.snapshot_as_of_named(&spec.to_string(), tip, *time, Some(horizon?))
                    .await?
                    .ok_or_else(|| Error::NoCommitAsOf {
                        branch: branch.clone(),
                        time: time.to_rfc3339(),
                    })
            }
            VersionSpec::Name(name) => self.resolve_name(name, need).await,
        }
    }

    async fn resolve_name(&self, name: &str, need: Option<HistoryNeed>) -> Result<SnapshotId> {
        let ref_like = crate::format::refs::validate_ref_name("branch", name).is_ok();
        if ref_like {
            match self.branch_head_for(name, need).await {
                Ok((_, id)) => return Ok(id),
                Err(Error::BranchNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            match self.tag(name).await {
                Ok(tag) => return Ok(tag.snapshot),
                Err(Error::TagNotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        if is_hex_prefix(name) && name.len() >= MIN_ID_PREFIX {
            if let Ok(id) = SnapshotId::parse(name) {
                return match self.load_snapshot(&id).await {
                    Ok(_) => Ok(id),
                    Err(e) => Err(self.explain_missing(e).await),
                };
            }
            let found = self.find_snapshots_by_prefix(name).await?;
            return match found.as_slice() {
                [one] => Ok(*one),
                [] => Err(Error::SnapshotNotFound {
                    id: name.to_string(),
                }),
                many => Err(Error::AmbiguousSnapshotPrefix {
                    prefix: name.to_string(),
                    count: many.len(),
                }),
            };
        }
        Err(Error::InvalidVersion {
            spec: name.to_string(),
            reason: "no branch, tag or snapshot has this name".to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(
            VersionSpec::parse("main").unwrap(),
            VersionSpec::Name("main".into())
        );
        match VersionSpec::parse("main@2026-01-02T03:04:05Z").unwrap() {
            VersionSpec::AsOf { branch, time } => {
                assert_eq!(branch, "main");
                assert_eq!(time.timestamp(), 1767323045);
            }
            other => panic!("{other:?}"),
        }
        assert!(VersionSpec::parse("main@yesterday").is_err());
        assert!(VersionSpec::parse("").is_err());
    }
}
