//! Transaction logs: what one commit changed, for diff, status and conflict detection.

use serde::{Deserialize, Serialize};

use super::manifest::ChunkCoord;
use super::path::NodePath;

/// What happened to a node in a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeChange {
    /// The node was created.
    Created,
    /// The node's metadata changed (attributes, shape, ...).
    Updated,
    /// The node was deleted (with everything below it).
    Deleted,
}

/// The changes of one commit relative to its parent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLog {
    /// Nodes created, updated or deleted, sorted by path.
    pub nodes: Vec<(NodePath, NodeChange)>,
    /// Per array (sorted by path): the chunks written or deleted, sorted.
    pub chunks: Vec<(NodePath, Vec<ChunkCoord>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::envelope::{decode, encode, ObjectKind};

    #[test]
    fn txlog_round_trip() {
        let log = TxLog {
            nodes: vec![(NodePath::new("a").unwrap(), NodeChange::Updated)],
            chunks: vec![(NodePath::new("a").unwrap(), vec![vec![0, 1], vec![2, 3]])],
        };
        let bytes = encode(ObjectKind::TxLog, &log).unwrap();
        let back: TxLog = decode("t", &bytes, ObjectKind::TxLog).unwrap();
        assert_eq!(back, log);
        assert!(decode::<TxLog>("t", &bytes[..bytes.len() - 1], ObjectKind::TxLog).is_err());
    }
}
