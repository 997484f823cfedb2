//! Branch hints (objects.md §8, algorithms.md §3): an advisory object per branch naming a
//! recent record, and since the history pages exist also that record's snapshot and its
//! history pages, so that a history query can fetch them together with the head records.
//!
//! The text form is line based; the first line is the record number alone, as hints always
//! were:
//!
//! ```text
//! 1032
//! snapshot <64 hex> <generation>
//! page <generation> <64 hex> <commit time, µs since the epoch>
//! ```
//!
//! A hint is only ever a guess: readers verify the record it names, and the snapshots it names
//! are fetched by id (content-addressed), so a stale or damaged hint costs requests, never
//! correctness. A hint that does not parse is ignored.

use crate::format::snapshot::AncestorRef;
use crate::id::SnapshotId;

/// History pages a hint names at most (the newest ones): enough for every level of a history of
/// 32^3 commits at one page per level-block, and a bound on what a reader fetches on a guess.
pub(crate) const HINT_MAX_PAGES: usize = 64;

/// What a branch hint says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BranchHint {
    /// A recent record of the branch.
    pub(crate) seq: u64,
    /// The snapshot that record names and its generation, when the writer knew them.
    pub(crate) snapshot: Option<(SnapshotId, u64)>,
    /// That snapshot's history pages, newest first.
    pub(crate) pages: Vec<AncestorRef>,
}

/// What a history query will look for, to choose what to fetch ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HistoryNeed {
    /// The newest `n` entries (a log).
    Newest(u64),
    /// The newest snapshot committed at or before this time (µs since the epoch).
    AsOf(i64),
}

impl BranchHint {
    /// A hint naming only a record (what floe wrote before hints named snapshots).
    pub(crate) fn seq_only(seq: u64) -> Self {
        BranchHint {
            seq,
            snapshot: None,
            pages: Vec::new(),
        }
    }

    /// A hint naming record `seq`, its snapshot and the snapshot's pages.
    pub(crate) fn with_history(
        seq: u64,
        snapshot: SnapshotId,
        generation: u64,
        pages: &[AncestorRef],
    ) -> Self {
        BranchHint {
            seq,
            snapshot: Some((snapshot, generation)),
            pages: pages.iter().take(HINT_MAX_PAGES).cloned().collect(),
        }
    }

    /// The text stored under the hint key.
    pub(crate) fn encode(&self) -> String {
        let mut out = self.seq.to_string();
        if let Some((id, generation)) = self.snapshot {
            out.push_str(&format!("\nsnapshot {id} {generation}"));
            for page in &self.pages {
                out.push_str(&format!(
                    "\npage {} {} {}",
                    page.generation, page.id, page.committed_at_us
                ));
            }
        }
        out.push('\n');
        out
    }

    /// Reads a stored hint; `None` when it does not parse (it is then ignored). A bare record
    /// number, the older form, parses as a hint without snapshot.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?.trim();
        let mut lines = text.lines();
        let seq = lines.next()?.trim().parse().ok()?;
        let mut hint = BranchHint::seq_only(seq);
        for line in lines {
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            match words.as_slice() {
                ["snapshot", id, generation] if hint.snapshot.is_none() => {
                    hint.snapshot = Some((SnapshotId::parse(id).ok()?, generation.parse().ok()?));
                }
                ["page", generation, id, time] if hint.snapshot.is_some() => {
                    if hint.pages.len() >= HINT_MAX_PAGES {
                        return None;
                    }
                    hint.pages.push(AncestorRef {
                        id: SnapshotId::parse(id).ok()?,
                        generation: generation.parse().ok()?,
                        committed_at_us: time.parse().ok()?,
                    });
                }
                _ => return None,
            }
        }
        Some(hint)
    }

    /// The snapshots worth fetching ahead for a history query: the hinted snapshot, and of its
    /// pages (a page of generation `a` holds the entries just below `a`)
    /// - for the newest `n` entries, those above generation `generation − n − lag`, where `lag`
    ///   bounds how far the tip may be past the hint;
    /// - for as-of `t`, the oldest page committed after `t`, whose entries (or lower pages)
    ///   hold the answer when it is older than the newest page.
    pub(crate) fn history_to_fetch(&self, need: HistoryNeed, lag: u64) -> Vec<SnapshotId> {
        let Some((id, generation)) = self.snapshot else {
            return Vec::new();
        };
        let mut out = vec![id];
        match need {
            HistoryNeed::Newest(n) => {
                let lowest = generation.saturating_sub(n.saturating_add(lag));
                out.extend(
                    self.pages
                        .iter()
                        .take_while(|page| page.generation > lowest)
                        .map(|page| page.id),
                );
            }
            HistoryNeed::AsOf(t) => {
                let above = self
                    .pages
                    .iter()
                    .take_while(|page| page.committed_at_us > t)
                    .last();
                out.extend(above.map(|page| page.id));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> SnapshotId {
        SnapshotId::of_bytes(&[n])
    }

    #[test]
    fn round_trips_and_reads_the_older_form() {
        let pages: Vec<AncestorRef> = [96u64, 64, 32]
            .iter()
            .map(|&g| AncestorRef {
                id: id(g as u8),
                generation: g,
                committed_at_us: 1000 + g as i64,
            })
            .collect();
        let hint = BranchHint::with_history(104, id(1), 100, &pages);
        let text = hint.encode();
        assert!(text.starts_with("104\nsnapshot "), "{text}");
        assert_eq!(BranchHint::decode(text.as_bytes()), Some(hint.clone()));
        assert_eq!(BranchHint::decode(b" 42\n"), Some(BranchHint::seq_only(42)));
        assert_eq!(BranchHint::decode(b"42"), Some(BranchHint::seq_only(42)));
        // Fetch ahead: the hinted snapshot, then pages down to what the depth needs.
        let newest = |n| hint.history_to_fetch(HistoryNeed::Newest(n), 8);
        assert_eq!(newest(u64::MAX), vec![id(1), id(96), id(64), id(32)]);
        assert_eq!(newest(50), vec![id(1), id(96), id(64)]);
        assert_eq!(
            hint.history_to_fetch(HistoryNeed::Newest(3), 0),
            vec![id(1)]
        );
        // As-of: the oldest page committed after the time.
        let as_of = |t| hint.history_to_fetch(HistoryNeed::AsOf(t), 8);
        assert_eq!(as_of(2000), vec![id(1)]);
        assert_eq!(as_of(1096), vec![id(1)]);
        assert_eq!(as_of(1095), vec![id(1), id(96)]);
        assert_eq!(as_of(1064), vec![id(1), id(96)]);
        assert_eq!(as_of(1063), vec![id(1), id(64)]);
        assert_eq!(as_of(0), vec![id(1), id(32)]);
        assert!(BranchHint::seq_only(3)
            .history_to_fetch(HistoryNeed::Newest(10), 8)
            .is_empty());
    }

    #[test]
    fn damaged_hints_are_ignored() {
        let good = BranchHint::with_history(8, id(1), 8, &[]).encode();
        for bad in [
            "".to_string(),
            "-1".into(),
            "x".into(),
            "8\nsnapshot nothex 8".into(),
            "8\nsnapshot".into(),
            format!("{good}page 3"),
            format!("{good}page 32 {}", id(2)),
            format!("{good}page 32 {} x", id(2)),
            format!("8\npage 32 {} 5", id(2)),
            format!("{good}snapshot {} 9", id(3)),
            format!("{good}extra line"),
        ] {
            assert_eq!(BranchHint::decode(bad.as_bytes()), None, "{bad:?}");
        }
        let too_many: String = (0..=HINT_MAX_PAGES)
            .map(|i| format!("page {} {} 7\n", 32 * (i + 1), id(4)))
            .collect();
        assert_eq!(
            BranchHint::decode(format!("{good}{too_many}").as_bytes()),
            None
        );
    }
}
