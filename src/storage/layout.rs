//! Where every object lives. Object keys are formed here and nowhere else.
//!
//! ```text
//! floe.json                          repository marker: format version, creation time
//! snapshots/<snapshot id>            snapshots
//! manifests/<manifest id>            manifest shards
//! txlogs/<txlog id>                  transaction logs too large to inline
//! chunks/<chunk object id>           chunk objects and packs
//! refs/branch.<name>/<seq>           one record per branch move (seq: 20 decimal digits)
//! refs/branch.<name>/hint            advisory: a recent seq (verified before use)
//! refs/tag.<name>/ref                a tag
//! refs/tag.<name>/deleted            a deleted tag's tombstone
//! config/containers/<seq>            virtual chunk containers, whole list (seq: 20 digits)
//! config/expiry/<seq>                the expiry horizon, whole list of cuts (seq: 20 digits)
//! config/expiry/hint                 advisory: a recent expiry seq
//! gc/<seq>                           one record per garbage-collection run (seq: 20 digits)
//! gc/hint                            advisory: a recent GC seq
//! gc/done/<seq>                      written when run <seq> finished its deletes
//! gc/clock/<nonce>                   short-lived probes that read the store's clock
//! ```

use crate::format::lifecycle::GcObject;
use crate::id::{ChunkObjectId, ManifestId, SnapshotId, TxLogId};

/// The repository marker object.
pub const REPO_INFO_KEY: &str = "floe.json";
/// Directory of snapshots.
pub const SNAPSHOTS_DIR: &str = "snapshots";
/// Directory of manifests.
pub const MANIFESTS_DIR: &str = "manifests";
/// Directory of transaction logs.
pub const TXLOGS_DIR: &str = "txlogs";
/// Directory of chunk objects.
pub const CHUNKS_DIR: &str = "chunks";
/// Directory of refs.
pub const REFS_DIR: &str = "refs";
/// Directory of repository configuration records.
pub const CONFIG_DIR: &str = "config";
/// Directory of garbage-collection records.
pub const GC_DIR: &str = "gc";
const BRANCH_PREFIX: &str = "branch.";
const TAG_PREFIX: &str = "tag.";

/// Key of a snapshot.
pub fn snapshot_key(id: &SnapshotId) -> String {
    format!("{SNAPSHOTS_DIR}/{id}")
}

/// Key of a manifest shard.
pub fn manifest_key(id: &ManifestId) -> String {
    format!("{MANIFESTS_DIR}/{id}")
}

/// Key of a transaction log.
pub fn txlog_key(id: &TxLogId) -> String {
    format!("{TXLOGS_DIR}/{id}")
}

/// Key of a chunk object.
pub fn chunk_object_key(id: &ChunkObjectId) -> String {
    format!("{CHUNKS_DIR}/{id}")
}

/// Key of record `seq` of a branch.
pub fn branch_record_key(name: &str, seq: u64) -> String {
    format!("{REFS_DIR}/{BRANCH_PREFIX}{name}/{seq:020}")
}

/// Key of a branch's advisory hint.
pub fn branch_hint_key(name: &str) -> String {
    format!("{REFS_DIR}/{BRANCH_PREFIX}{name}/hint")
}

/// Key of a tag.
pub fn tag_key(name: &str) -> String {
    format!("{REFS_DIR}/{TAG_PREFIX}{name}/ref")
}

/// Key of a deleted tag's tombstone.
pub fn tag_tombstone_key(name: &str) -> String {
    format!("{REFS_DIR}/{TAG_PREFIX}{name}/deleted")
}

/// Key of record `seq` of the virtual chunk container declarations (each record holds the
/// whole list; the newest record wins).
pub fn container_record_key(seq: u64) -> String {
    format!("{CONFIG_DIR}/containers/{seq:020}")
}

/// Key of record `seq` of the expiry horizon.
pub fn expiry_record_key(seq: u64) -> String {
    format!("{CONFIG_DIR}/expiry/{seq:020}")
}

/// Key of the expiry horizon's advisory hint.
pub fn expiry_hint_key() -> String {
    format!("{CONFIG_DIR}/expiry/hint")
}

/// Key of the record of garbage-collection run `seq`.
pub fn gc_record_key(seq: u64) -> String {
    format!("{GC_DIR}/{seq:020}")
}

/// Key of the garbage-collection records' advisory hint.
pub fn gc_hint_key() -> String {
    format!("{GC_DIR}/hint")
}

/// Key of the marker a GC run writes once all its deletes are done.
pub fn gc_done_key(seq: u64) -> String {
    format!("{GC_DIR}/done/{seq:020}")
}

/// Directory of clock probes.
pub fn gc_clock_dir() -> String {
    format!("{GC_DIR}/clock")
}

/// Key of the object `GC names.
pub fn gc_object_key(object: &GcObject) -> String {
    match object {
        GcObject::Snapshot(id) => snapshot_key(id),
        GcObject::TxLog(id) => txlog_key(id),
        GcObject::Manifest(id) => manifest_key(id),
        GcObject::Chunks(id) => chunk_object_key(id),
    }
}

/// The object a key names, when it parses exactly as one of floe's digest-addressed keys
/// (`<dir>/<64 lowercase hex>`); anything else (a foreign file, a temporary upload) is
/// `None` and GC never touches it.
pub fn gc_object_of_key(key: &str) -> Option<GcObject> {
    if !is_immutable_key(key) {
        return None;
    }
    let (dir, id) = key.split_once('/')?;
    Some(match dir {
        SNAPSHOTS_DIR => GcObject::Snapshot(SnapshotId::parse(id).ok()?),
        TXLOGS_DIR => GcObject::TxLog(TxLogId::parse(id).ok()?),
        MANIFESTS_DIR => GcObject::Manifest(ManifestId::parse(id).ok()?),
        CHUNKS_DIR => GcObject::Chunks(ChunkObjectId::parse(id).ok()?),
        _ => return None,
    })
}

/// A name found under `refs/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefDirName {
    /// `refs/branch.<name>`.
    Branch(String),
    /// `refs/tag.<name>`.
    Tag(String),
}

/// Classifies one `refs/` sub-prefix (as returned by a directory listing).
pub fn parse_ref_dir(prefix: &str) -> Option<RefDirName> {
    let name = prefix.strip_prefix(REFS_DIR)?.strip_prefix('/')?;
    if let Some(b) = name.strip_prefix(BRANCH_PREFIX) {
        Some(RefDirName::Branch(b.to_string()))
    } else {
        name.strip_prefix(TAG_PREFIX)
            .map(|t| RefDirName::Tag(t.to_string()))
    }
}

/// The id part of a key inside one of the digest-addressed directories.
pub fn id_of_key<'a>(dir: &str, key: &'a str) -> Option<&'a str> {
    key.strip_prefix(dir)?.strip_prefix('/')
}

/// True for keys whose object never changes once written: snapshots, manifests, transaction
/// logs and chunk objects, each named by a 64-character lowercase hex digest directly inside
/// its directory. Refs, hints, tombstones, the repository marker and any other key are
/// mutable (or unknown) and false. A cache may keep the bytes of a true key forever.
pub(crate) fn is_immutable_key(key: &str) -> bool {
    let Some((dir, id)) = key.split_once('/') else {
        return false;
    };
    matches!(dir, SNAPSHOTS_DIR | MANIFESTS_DIR | TXLOGS_DIR | CHUNKS_DIR)
        && id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable() {
        let id = SnapshotId::from_bytes([0xab; 32]);
        assert_eq!(snapshot_key(&id), format!("snapshots/{}", "ab".repeat(32)));
        assert_eq!(
            branch_record_key("main", 7),
            "refs/branch.main/00000000000000000007"
        );
        assert_eq!(tag_key("v1"), "refs/tag.v1/ref");
        assert_eq!(
            parse_ref_dir("refs/branch.dev"),
            Some(RefDirName::Branch("dev".into()))
        );
        assert_eq!(
            parse_ref_dir("refs/tag.v1"),
            Some(RefDirName::Tag("v1".into()))
        );
        assert_eq!(parse_ref_dir("refs/other"), None);
        assert_eq!(id_of_key(SNAPSHOTS_DIR, "snapshots/abc"), Some("abc"));
    }

    #[test]
    fn only_digest_keys_are_immutable() {
        let hex = "ab".repeat(32);
        for dir in [SNAPSHOTS_DIR, MANIFESTS_DIR, TXLOGS_DIR, CHUNKS_DIR] {
            assert!(is_immutable_key(&format!("{dir}/{hex}")), "{dir}");
        }
        let mutable = [
            REPO_INFO_KEY.to_string(),
            branch_record_key("main", 1),
            branch_hint_key("main"),
            tag_key("v1"),
            tag_tombstone_key("v1"),
            format!("refs/{hex}"),
            format!("snapshots/{}", "AB".repeat(32)),
            format!("snapshots/{hex}/x"),
            format!("snapshots/{}", &hex[1..]),
            format!("chunks/../{}", &hex[3..]),
            String::new(),
        ];
        for key in mutable {
            assert!(!is_immutable_key(&key), "{key}");
        }
    }
}
