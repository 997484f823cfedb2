//! Branches and tags.
//!
//! A branch is a sequence of record objects `refs/branch.<name>/<seq>`, each created only if
//! absent, so exactly one writer wins every step on every backend. The newest record is the
//! tip; a record without a snapshot marks a deletion. Finding the newest record starts from an
//! advisory hint and gallops forward, so it costs a few requests whatever the history length.
//!
//! A tag is one object `refs/tag.<name>/ref` created only if absent and never changed; deleting
//! it creates `refs/tag.<name>/deleted`, and the name is never reused.

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::format::branch_hint::{BranchHint, HistoryNeed};
use crate::format::envelope::{self, ObjectKind};
use crate::format::now_us;
use crate::format::refs::{validate_ref_name, BranchRecord, TagRecord, TagTombstone};
use crate::format::snapshot::{micros_to_time, AncestorRef};
use crate::id::SnapshotId;
use crate::repo::read::repository::{Repository, DEFAULT_BRANCH};
use crate::storage::record_seq::{RecordSeq, Window};
use crate::storage::{get_optional, layout, PutOutcome};

/// The branch hint is rewritten when the record number is a multiple of this, so a reader
/// gallops over at most this many records past it (about 2 log2(8) = 6 existence checks).
pub(crate) const HINT_INTERVAL: u64 = 8;

/// A branch and where it points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BranchInfo {
    /// Branch name.
    pub name: String,
    /// The tip snapshot.
    pub snapshot: SnapshotId,
    /// Number of records before the tip record (commits, resets and re-creations).
    pub seq: u64,
}

/// A tag and what it names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagInfo {
    /// Tag name.
    pub name: String,
    /// The tagged snapshot.
    pub snapshot: SnapshotId,
    /// When the tag was created.
    pub created_at: DateTime<Utc>,
}

/// The newest record of a branch.
#[derive(Clone, Debug)]
pub(crate) struct BranchHead {
    pub(crate) seq: u64,
    pub(crate) snapshot: Option<SnapshotId>,
}

/// Result of trying to append a record to a branch.
#[derive(Debug)]
pub(crate) enum AdvanceOutcome {
    /// Our record is the branch's record `seq`.
    Landed,
    /// Somebody else's record took the slot.
    Lost,
}

impl Repository {
    pub(crate) async fn read_branch_record(
        &self,
        name: &str,
        seq: u64,
    ) -> Result<Option<BranchRecord>> {
        let key = layout::branch_record_key(name, seq);
        match get_optional(self.storage().as_ref(), &key).await? {
            None => Ok(None),
            Some(bytes) => decode_branch_record(&key, seq, &bytes).map(Some),
        }
    }

    pub(crate) async fn read_hint(&self, name: &str) -> Option<BranchHint> {
        let bytes = get_optional(self.storage().as_ref(), &layout::branch_hint_key(name))
            .await
            .ok()??;
        BranchHint::decode(&bytes)
    }

    /// Fetches ahead, into the snapshot cache, the snapshots a history query will probably
    /// need: the hinted snapshot and some of its pages (algorithms.md §3.1). Failures are
    /// ignored (the query fetches what it needs itself).
    async fn fetch_history_ahead(&self, hint: Option<&BranchHint>, need: Option<HistoryNeed>) {
        let (Some(hint), Some(need)) = (hint, need) else {
            return;
        };
        let wanted = hint.history_to_fetch(need, HINT_INTERVAL);
        futures::future::join_all(wanted.iter().map(|id| self.load_snapshot(id))).await;
    }

    /// The newest record of a branch (possibly a deletion), `None` if it never existed
    /// (algorithms.md §3). Starts from the newest record this handle has seen of the branch,
    /// fetching the records after it and the hint together, or from the hint (read when the
    /// handle opened, for the default branch): one or two round trips when the hint is
    /// current.
    ///
    /// `history` is for history queries (log, as-of): when the head is found from the hint,
    /// the snapshots the hint names that the query needs are fetched together with the
    /// records, so the query finds them cached.
    pub(crate) async fn branch_head_record(
        &self,
        name: &str,
        history: Option<HistoryNeed>,
    ) -> Result<Option<BranchHead>> {
        validate_ref_name("branch", name)?;
        let key_of = |seq: u64| layout::branch_record_key(name, seq);
        let records = RecordSeq::new(self.storage().as_ref(), &key_of);
        let prefetched = self.inner.take_prefetched_hint(name);
        let newest = match self.inner.known_head(name) {
            Some(known) => {
                let hint = async {
                    match prefetched {
                        Some(hint) => Some(hint.seq),
                        None => self.read_hint(name).await.map(|h| h.seq),
                    }
                };
                let (hint, window) = tokio::join!(hint, records.window(known));
                match window? {
                    Window::Newest(found) => Some(found),
                    Window::Full { last } => match hint.filter(|&h| {
                        h > last && h.checked_add(crate::storage::record_seq::WINDOW).is_some()
                    }) {
                        Some(hint) => match records.window(hint).await? {
                            Window::Newest(found) => Some(found),
                            Window::Full { last } => Some(records.newest_from(last).await?),
                            Window::StartMissing => Some(records.newest_from(last).await?),
                        },
                        None => Some(records.newest_from(last).await?),
                    },
                    // A record this handle saw is gone: the storage was replaced under it.
                    Window::StartMissing => records.newest(hint.unwrap_or(0)).await?,
                }
            }
            None => {
                let hint = match prefetched {
                    Some(hint) => Some(hint),
                    None => self.read_hint(name).await,
                };
                let (newest, ()) = tokio::join!(
                    records.newest(hint.as_ref().map_or(0, |h| h.seq)),
                    self.fetch_history_ahead(hint.as_ref(), history)
                );
                newest?
            }
        };
        let Some(newest) = newest else {
            return Ok(None);
        };
        let key = layout::branch_record_key(name, newest.seq);
        let record = decode_branch_record(&key, newest.seq, &newest.bytes)?;
        self.inner.saw_record(name, newest.seq);
        Ok(Some(BranchHead {
            seq: newest.seq,
            snapshot: record.snapshot,
        }))
    }

    /// The newest live record of a branch.
    pub(crate) async fn branch_head(&self, name: &str) -> Result<(u64, SnapshotId)> {
        self.branch_head_for(name, None).await
    }

    /// [`Self::branch_head`] for a history query (see [`Self::branch_head_record`]).
    pub(crate) async fn branch_head_for(
        &self,
        name: &str,
        history: Option<HistoryNeed>,
    ) -> Result<(u64, SnapshotId)> {
        match self.branch_head_record(name, history).await? {
            Some(BranchHead {
                seq,
                snapshot: Some(id),
            }) => Ok((seq, id)),
            _ => Err(Error::BranchNotFound {
                name: name.to_string(),
            }),
        }
    }

    /// The snapshot a branch points at.
    pub async fn branch_tip(&self, name: &str) -> Result<SnapshotId> {
        Ok(self.branch_head(name).await?.1)
    }

    /// Tries to write record `seq` of a branch. Recognises its own earlier write when a
    /// response was lost, so a retried call never reports a false loss. `history` is the
    /// snapshot's generation and history pages when the caller has them (commits), for the
    /// branch hint.
    pub(crate) async fn try_advance_branch(
        &self,
        name: &str,
        seq: u64,
        snapshot: Option<SnapshotId>,
        history: Option<(u64, &[AncestorRef])>,
    ) -> Result<AdvanceOutcome> {
        let key = layout::branch_record_key(name, seq);
        let record = BranchRecord {
            seq,
            snapshot,
            written_at_us: now_us(),
        };
        let bytes = envelope::encode(ObjectKind::Ref, &record)?;
        let outcome = match self.storage().put_if_absent(&key, bytes.clone()).await {
            Ok(PutOutcome::Created) => AdvanceOutcome::Landed,
            Ok(PutOutcome::AlreadyExists) | Err(_) => {
                // Either somebody else won, or our write landed but the answer was lost, or
                // the write failed: the record itself tells which.
                match get_optional(self.storage().as_ref(), &key).await? {
                    Some(found) if found == bytes => AdvanceOutcome::Landed,
                    Some(_) => AdvanceOutcome::Lost,
                    None => match self.storage().put_if_absent(&key, bytes.clone()).await? {
                        PutOutcome::Created => AdvanceOutcome::Landed,
                        PutOutcome::AlreadyExists => {
                            let found = self.storage().get(&key).await?;
                            if found == bytes {
                                AdvanceOutcome::Landed
                            } else {
                                AdvanceOutcome::Lost
                            }
                        }
                    },
                }
            }
        };
        // Either way record `seq` exists now.
        self.inner.saw_record(name, seq);
        if matches!(outcome, AdvanceOutcome::Landed) && seq % HINT_INTERVAL == 0 {
            // Advisory only: a failed or stale hint costs a few extra probes, never correctness.
            // Refreshed every HINT_INTERVAL records: overwriting an object on every commit costs
            // more (a temporary object and a deletion each time) than the probes it saves.
            let hint = match (snapshot, history) {
                (Some(id), Some((generation, pages))) => {
                    BranchHint::with_history(seq, id, generation, pages)
                }
                _ => BranchHint::seq_only(seq),
            };
            let _ = self
                .storage()
                .put(&layout::branch_hint_key(name), Bytes::from(hint.encode()))
                .await;
        }
        Ok(outcome)
    }

    pub(crate) async fn write_first_branch_record(
        &self,
        name: &str,
        snapshot: SnapshotId,
    ) -> Result<()> {
        match self
            .try_advance_branch(name, 0, Some(snapshot), None)
            .await?
        {
            AdvanceOutcome::Landed => Ok(()),
            AdvanceOutcome::Lost => Err(Error::BranchExists {
                name: name.to_string(),
            }),
        }
    }

    /// Creates a branch pointing at `snapshot`. A deleted branch's name can be used again.
    pub async fn create_branch(&self, name: &str, snapshot: SnapshotId) -> Result<()> {
        validate_ref_name("branch", name)?;
        self.check_ref_target(snapshot).await?;
        let next = match self.branch_head_record(name, None).await? {
            None => 0,
            Some(BranchHead {
                snapshot: Some(_), ..
            }) => {
                return Err(Error::BranchExists {
                    name: name.to_string(),
                });
            }
            Some(BranchHead {
                seq,
                snapshot: None,
            }) => seq + 1,
        };
        match self
            .try_advance_branch(name, next, Some(snapshot), None)
            .await?
        {
            AdvanceOutcome::Landed => Ok(()),
            AdvanceOutcome::Lost => Err(Error::BranchExists {
                name: name.to_string(),
            }),
        }
    }

    /// Moves a branch to any snapshot (not necessarily a descendant), recording the move.
    pub async fn reset_branch(&self, name: &str, snapshot: SnapshotId) -> Result<()> {
        self.check_ref_target(snapshot).await?;
        self.move_branch(name, Some(snapshot), None).await
    }

    /// Moves a branch to any snapshot, but only while it still points at `expected`: when it
    /// points elsewhere (another writer moved it since the caller looked), nothing changes
    /// and the error is [`Error::BranchMoved`]. The check and the move are one step: the move
    /// is the record after the one that showed `expected`, written only if absent.
    pub async fn reset_branch_expecting(
        &self,
        name: &str,
        snapshot: SnapshotId,
        expected: SnapshotId,
    ) -> Result<()> {
        self.check_ref_target(snapshot).await?;
        self.move_branch(name, Some(snapshot), Some(expected)).await
    }

    /// Appends a record moving (or, with `None`, deleting) an existing branch, retrying with
    /// backoff while other writers take the next slot.
    async fn move_branch(
        &self,
        name: &str,
        snapshot: Option<SnapshotId>,
        expected: Option<SnapshotId>,
    ) -> Result<()> {
        let settings = self.settings();
        let attempts = settings.max_commit_attempts.max(1);
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(settings.commit_backoff(attempt - 1)).await;
            }
            let (seq, tip) = self.branch_head(name).await?;
            if let Some(expected) = expected.filter(|&e| e != tip) {
                return Err(Error::BranchMoved {
                    name: name.to_string(),
                    expected: expected.to_string(),
                    found: tip.to_string(),
                });
            }
            if let AdvanceOutcome::Landed = self
                .try_advance_branch(name, seq + 1, snapshot, None)
                .await?
            {
                return Ok(());
            }
        }
        Err(Error::TooManyRebaseAttempts {
            branch: name.to_string(),
            attempts,
        })
    }

    /// Deletes a branch (its history stays readable by snapshot id). `main` cannot be deleted.
    pub async fn delete_branch(&self, name: &str) -> Result<()> {
        if name == DEFAULT_BRANCH {
            return Err(Error::ProtectedBranch {
                name: name.to_string(),
            });
        }
        self.move_branch(name, None, None).await
    }

    async fn ref_dir_names(&self) -> Result<Vec<layout::RefDirName>> {
        let listing = self.storage().list_dir(layout::REFS_DIR).await?;
        // Directories whose names break the naming rules were not written by floe: skip them.
        let mut names: Vec<_> = listing
            .prefixes
            .iter()
            .filter_map(|p| layout::parse_ref_dir(p))
            .filter(|n| match n {
                layout::RefDirName::Branch(b) => validate_ref_name("branch", b).is_ok(),
                layout::RefDirName::Tag(t) => validate_ref_name("tag", t).is_ok(),
            })
            .collect();
        names.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        Ok(names)
    }

    /// A branch or tag may point at `snapshot`: it exists in storage (not only in this
    /// handle's cache: GC may have deleted it since), and GC has not condemned it
    /// (spec/algorithms.md §14.1). Both checked together.
    pub(crate) async fn check_ref_target(&self, snapshot: SnapshotId) -> Result<()> {
        let key = layout::snapshot_key(&snapshot);
        let (exists, condemned) =
            futures::join!(self.storage().head(&key), self.refuse_condemned(snapshot));
        if exists?.is_none() {
            let missing = Error::SnapshotNotFound {
                id: snapshot.to_string(),
            };
            return Err(self.explain_missing(missing).await);
        }
        condemned?;
        self.load_snapshot(&snapshot).await.map(|_| ())
    }

    /// Names of every branch that has records, deleted branches included, sorted.
    pub(crate) async fn branch_dir_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .ref_dir_names()
            .await?
            .into_iter()
            .filter_map(|n| match n {
                layout::RefDirName::Branch(b) => Some(b),
                layout::RefDirName::Tag(_) => None,
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// All live branches, sorted by name.
    pub async fn list_branches(&self) -> Result<Vec<BranchInfo>> {
        let mut out = Vec::new();
        for entry in self.ref_dir_names().await? {
            if let layout::RefDirName::Branch(name) = entry {
                if let Some(BranchHead {
                    seq,
                    snapshot: Some(snapshot),
                }) = self.branch_head_record(&name, None).await?
                {
                    out.push(BranchInfo {
                        name,
                        snapshot,
                        seq,
                    });
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Creates a tag. Tag names are never reused, even after deletion.
    pub async fn create_tag(&self, name: &str, snapshot: SnapshotId) -> Result<()> {
        validate_ref_name("tag", name)?;
        self.check_ref_target(snapshot).await?;
        if self
            .storage()
            .head(&layout::tag_tombstone_key(name))
            .await?
            .is_some()
        {
            return Err(Error::TagExists {
                name: name.to_string(),
            });
        }
        let record = TagRecord {
            snapshot,
            created_at_us: now_us(),
        };
        let bytes = envelope::encode(ObjectKind::Ref, &record)?;
        match self
            .storage()
            .put_if_absent(&layout::tag_key(name), bytes)
            .await?
        {
            PutOutcome::Created => Ok(()),
            PutOutcome::AlreadyExists => Err(Error::TagExists {
                name: name.to_string(),
            }),
        }
    }

    /// The tag's record.
    pub async fn tag(&self, name: &str) -> Result<TagInfo> {
        validate_ref_name("tag", name)?;
        if self
            .storage()
            .head(&layout::tag_tombstone_key(name))
            .await?
            .is_some()
        {
            return Err(Error::TagDeleted {
                name: name.to_string(),
            });
        }
        let key = layout::tag_key(name);
        let bytes = get_optional(self.storage().as_ref(), &key)
            .await?
            .ok_or_else(|| Error::TagNotFound {
                name: name.to_string(),
            })?;
        let record: TagRecord = envelope::decode(&key, &bytes, ObjectKind::Ref)?;
        Ok(TagInfo {
            name: name.to_string(),
            snapshot: record.snapshot,
            created_at: micros_to_time(record.created_at_us),
        })
    }

    /// Deletes a tag, leaving a tombstone so the name is never reused.
    pub async fn delete_tag(&self, name: &str) -> Result<()> {
        self.tag(name).await?;
        let bytes = envelope::encode(
            ObjectKind::Ref,
            &TagTombstone {
                deleted_at_us: now_us(),
            },
        )?;
        match self
            .storage()
            .put_if_absent(&layout::tag_tombstone_key(name), bytes)
            .await?
        {
            PutOutcome::Created => Ok(()),
            PutOutcome::AlreadyExists => Err(Error::TagDeleted {
                name: name.to_string(),
            }),
        }
    }

    /// All live tags, sorted by name.
    pub async fn list_tags(&self) -> Result<Vec<TagInfo>> {
        let mut out = Vec::new();
        for entry in self.ref_dir_names().await? {
            if let layout::RefDirName::Tag(name) = entry {
                match self.tag(&name).await {
                    Ok(info) => out.push(info),
                    Err(Error::TagDeleted { .. }) | Err(Error::TagNotFound { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

/// Decodes branch record `seq` read from `key`, checking that it says it is record `seq`.
fn decode_branch_record(key: &str, seq: u64, bytes: &Bytes) -> Result<BranchRecord> {
    let record: BranchRecord = envelope::decode(key, bytes, ObjectKind::Ref)?;
    if record.seq != seq {
        return Err(Error::corrupt(
            key,
            format!("record claims sequence {}", record.seq),
        ));
    }
    Ok(record)
}
