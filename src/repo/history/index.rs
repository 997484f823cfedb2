//! The history index every snapshot carries (history.md §1–2): derived from the parent alone
//! when a commit builds its snapshot, without reading anything else.
//!
//! - `skips`: the ancestors at generations `floor((g − 1) / 2^k) · 2^k`, for descents that
//!   halve the distance at every snapshot read;
//! - `recent`: the log entries of the 32 nearest ancestors;
//! - `pages`: the ancestors whose generations are multiples of 32 that a whole-history query
//!   needs, grouped in levels of 32 so that it fetches them a level at a time, all of a level
//!   together.

use crate::format::snapshot::{
    AncestorRef, LogRecord, Snapshot, HISTORY_PAGE_BASE, RECENT_ENTRY_MAX_TEXT, RECENT_LOG_LEN,
};
use crate::id::SnapshotId;

/// The history fields of a new snapshot.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChildHistory {
    pub(crate) generation: u64,
    pub(crate) skips: Vec<AncestorRef>,
    pub(crate) recent: Vec<LogRecord>,
    pub(crate) pages: Vec<AncestorRef>,
}

/// The page level of generation `a`: the largest `k ≥ 1` with `32^k` dividing `a`, or 0 when
/// `a` is not a page (not a multiple of 32, or the root).
pub(crate) fn page_level(a: u64) -> u32 {
    if a == 0 {
        return 0;
    }
    let mut level = 0;
    let mut rest = a;
    while rest % HISTORY_PAGE_BASE == 0 {
        rest /= HISTORY_PAGE_BASE;
        level += 1;
    }
    level
}

/// The span of generations a page of `level` stands for: `32^level` (saturating).
pub(crate) fn page_span(level: u32) -> u64 {
    HISTORY_PAGE_BASE.saturating_pow(level)
}

/// True when page `a` (an ancestor, `0 < a ≤ p`) belongs in the `pages` of a child of the
/// snapshot of generation `p`: `a` lies in the same block of `32^(level + 1)` generations as
/// `p`, and is not that block's start.
fn page_belongs(a: u64, p: u64) -> bool {
    let level = page_level(a);
    if level == 0 || a > p {
        return false;
    }
    let block = page_span(level + 1);
    a > p / block * block
}

/// The generations the `pages` of a snapshot of generation `g` name, newest first
/// (history.md §1).
pub(crate) fn required_page_generations(g: u64) -> Vec<u64> {
    let Some(p) = g.checked_sub(1) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut level = 1u32;
    loop {
        let span = page_span(level);
        let next = page_span(level + 1);
        if span > p {
            break;
        }
        let block_start = if next == u64::MAX { 0 } else { p / next * next };
        let mut a = p / span * span;
        while a > block_start {
            if page_level(a) == level {
                out.push(a);
            }
            a -= span;
        }
        if span == u64::MAX || next == u64::MAX {
            break;
        }
        level += 1;
    }
    out.sort_unstable_by(|x, y| y.cmp(x));
    out
}

/// How many `recent` entries a snapshot of generation `g` carries (history.md §1): its
/// ancestors down to the newest page below it (or the root), or, in a history written before
/// pages existed (`paged` false), the 32 nearest.
pub(crate) fn required_recent_len(g: u64, paged: bool) -> u64 {
    let Some(p) = g.checked_sub(1) else {
        return 0;
    };
    if paged {
        p - p / HISTORY_PAGE_BASE * HISTORY_PAGE_BASE + 1
    } else {
        g.min(RECENT_LOG_LEN as u64)
    }
}

/// The history fields of a new child of `parent` (history.md §2), in the form of the
/// parent's history.
pub(crate) fn child_history(parent_id: SnapshotId, parent: &Snapshot) -> ChildHistory {
    // A history written before pages existed stays in its form: the 32 nearest ancestors,
    // no pages. A parent of generation 32 or less looks the same in both forms; its child
    // takes the paged form.
    let paged = parent.generation <= HISTORY_PAGE_BASE || !parent.pages.is_empty();
    child_history_in(parent_id, parent, paged)
}

/// The history fields of a child of `parent` in the paged form or the older one.
pub(crate) fn child_history_in(
    parent_id: SnapshotId,
    parent: &Snapshot,
    paged: bool,
) -> ChildHistory {
    let p = parent.generation;
    let parent_ref = AncestorRef {
        id: parent_id,
        generation: p,
        committed_at_us: parent.committed_at_us,
    };
    let mut skips: Vec<AncestorRef> = vec![parent_ref.clone()];
    let mut k = 1u32;
    loop {
        let target = if k >= 64 { 0 } else { (p >> k) << k };
        if target != skips.last().map_or(u64::MAX, |s| s.generation) {
            match parent.skips.iter().find(|s| s.generation == target) {
                Some(found) => skips.push(found.clone()),
                None if target == p => {}
                None => break, // parent's index is partial (cannot happen for floe-written data)
            }
        }
        if target == 0 {
            break;
        }
        k += 1;
    }
    let text_len = parent.message.len() + parent.metadata_json.len();
    let parent_log = LogRecord {
        id: parent_id,
        generation: p,
        committed_at_us: parent.committed_at_us,
        text: (text_len <= RECENT_ENTRY_MAX_TEXT)
            .then(|| (parent.message.clone(), parent.metadata_json.clone())),
    };
    let oldest = if paged {
        p / HISTORY_PAGE_BASE * HISTORY_PAGE_BASE
    } else {
        p.saturating_sub(RECENT_LOG_LEN as u64 - 1)
    };
    let mut recent = Vec::with_capacity(RECENT_LOG_LEN);
    recent.push(parent_log);
    recent.extend(
        parent
            .recent
            .iter()
            .take(RECENT_LOG_LEN - 1)
            .take_while(|r| r.generation >= oldest)
            .cloned(),
    );
    // The parent's pages still in their blocks, and the parent itself if it is a page. Every
    // page the child needs is among them (history.md §2).
    let mut pages: Vec<AncestorRef> = Vec::new();
    if paged && page_belongs(p, p) {
        pages.push(parent_ref);
    }
    if paged {
        pages.extend(
            parent
                .pages
                .iter()
                .filter(|a| page_belongs(a.generation, p))
                .cloned(),
        );
    }
    ChildHistory {
        generation: p + 1,
        skips,
        recent,
        pages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::TxLogRef;
    use crate::format::txlog::TxLog;

    fn snap(generation: u64) -> Snapshot {
        Snapshot {
            parent: None,
            generation,
            committed_at_us: generation as i64,
            message: format!("c{generation}"),
            metadata_json: "{}".into(),
            nodes: vec![],
            txlog: TxLogRef::Inline(TxLog::default()),
            skips: vec![],
            recent: vec![],
            pages: vec![],
            merged: None,
            rewritten_from: None,
        }
    }

    #[test]
    fn page_levels() {
        assert_eq!(page_level(0), 0);
        assert_eq!(page_level(31), 0);
        assert_eq!(page_level(32), 1);
        assert_eq!(page_level(64), 1);
        assert_eq!(page_level(1024), 2);
        assert_eq!(page_level(3 * 1024), 2);
        assert_eq!(page_level(32768), 3);
        assert_eq!(required_page_generations(0), Vec::<u64>::new());
        assert_eq!(required_page_generations(32), Vec::<u64>::new());
        assert_eq!(required_page_generations(33), vec![32]);
        assert_eq!(required_page_generations(102), vec![96, 64, 32]);
        assert_eq!(required_page_generations(1025), vec![1024]);
        let at_10k = required_page_generations(10_002);
        // 24 pages of level 1 in 9216..10001, 9 of level 2 below.
        assert_eq!(at_10k.len(), 24 + 9, "{at_10k:?}");
        assert_eq!(at_10k[0], 9984);
        assert_eq!(*at_10k.last().unwrap(), 1024);
    }

    #[test]
    fn derived_fields_match_their_definition() {
        let mut parent = snap(0);
        let mut parent_id = SnapshotId::of_bytes(b"0");
        let mut ids = vec![parent_id];
        for g in 1..=2200u64 {
            let child_fields = child_history(parent_id, &parent);
            assert_eq!(child_fields.generation, g);
            let gens: Vec<u64> = child_fields.skips.iter().map(|s| s.generation).collect();
            let mut expected: Vec<u64> = (0..64).map(|k| ((g - 1) >> k) << k).collect();
            expected.dedup();
            assert_eq!(gens, expected, "skips of generation {g}");
            assert_eq!(
                child_fields.recent.len() as u64,
                required_recent_len(g, true),
                "recent of generation {g}"
            );
            assert!(child_fields.recent.len() <= RECENT_LOG_LEN);
            let gens: Vec<u64> = child_fields.recent.iter().map(|r| r.generation).collect();
            let lowest = (g - 1) / 32 * 32;
            assert_eq!(gens, (lowest..g).rev().collect::<Vec<_>>());
            assert_eq!(child_fields.recent[0].generation, g - 1);
            let pages: Vec<u64> = child_fields.pages.iter().map(|a| a.generation).collect();
            assert_eq!(
                pages,
                required_page_generations(g),
                "pages of generation {g}"
            );
            for page in &child_fields.pages {
                assert_eq!(page.id, ids[page.generation as usize]);
            }
            let mut child = snap(g);
            child.skips = child_fields.skips;
            child.recent = child_fields.recent;
            child.pages = child_fields.pages;
            parent_id = SnapshotId::of_bytes(&g.to_le_bytes());
            ids.push(parent_id);
            parent = child;
        }
    }

    /// Every generation below a tip is reached from the tip's `recent` and `pages`, and from
    /// the pages' own `recent` and `pages`: what the whole-history query relies on.
    #[test]
    fn pages_cover_the_whole_history() {
        for g in [
            1u64, 31, 32, 33, 64, 100, 1023, 1024, 1025, 2049, 10_002, 40_000,
        ] {
            let mut covered = vec![false; g as usize];
            let mut seen = std::collections::HashSet::new();
            let mut pending = vec![g];
            while let Some(s) = pending.pop() {
                if !seen.insert(s) {
                    continue;
                }
                for x in s - required_recent_len(s, true)..s {
                    covered[x as usize] = true;
                }
                pending.extend(required_page_generations(s));
            }
            assert!(covered.iter().all(|&c| c), "tip {g}");
        }
    }
}
