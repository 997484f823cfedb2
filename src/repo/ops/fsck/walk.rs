//! The walk over the ancestry of the roots, and the history checks of each snapshot
//! (history.md §1 on its own, §2 against its parent).

use std::collections::{HashMap, HashSet, VecDeque};

use futures::stream::{FuturesUnordered, StreamExt};

use super::{Checker, FsckProblem};
use crate::error::Result;
use crate::format::snapshot::{AncestorRef, LogRecord, Snapshot, HISTORY_PAGE_BASE};
use crate::id::SnapshotId;
use crate::repo::history::index::{
    child_history, child_history_in, required_page_generations, required_recent_len,
};
use crate::storage::layout;

/// What the walk keeps of a checked snapshot to check its children against.
struct Known {
    generation: u64,
    committed_at_us: i64,
    child_digest: [u8; 32],
    /// For a snapshot of generation 32, which looks the same in both history forms: the
    /// digest of a child in the older form (history.md §1), also acceptable.
    older_form_child_digest: Option<[u8; 32]>,
}

/// What a checked snapshot claims about itself, to be checked against its parent.
struct Claim {
    key: String,
    generation: u64,
    committed_at_us: i64,
    own_digest: [u8; 32],
}

/// A snapshot that was read and decoded.
pub(super) struct Visit {
    parent: Option<SnapshotId>,
    known: Known,
    own_digest: [u8; 32],
    refs: Vec<SnapshotId>,
}

impl Checker<'_> {
    /// Checks every snapshot reachable from `roots`, up to `io_concurrency` at once, and each
    /// snapshot's history fields against its parent's.
    pub(super) async fn walk(&self, roots: Vec<(SnapshotId, String)>) -> Result<()> {
        let mut queue = VecDeque::new();
        let mut requested = HashSet::new();
        for (id, who) in roots {
            if requested.insert(id) {
                queue.push_back((id, who));
            }
        }
        let mut known: HashMap<SnapshotId, Known> = HashMap::new();
        let mut awaiting: HashMap<SnapshotId, Vec<Claim>> = HashMap::new();
        let mut running = FuturesUnordered::new();
        loop {
            while running.len() < self.concurrency {
                let Some((id, who)) = queue.pop_front() else {
                    break;
                };
                running.push(self.check_snapshot(id, who));
            }
            let Some(done) = running.next().await else {
                break;
            };
            let (id, visit) = done?;
            let Some(visit) = visit else { continue };
            let key = layout::snapshot_key(&id);
            for next in &visit.refs {
                if requested.insert(*next) {
                    queue.push_back((*next, key.clone()));
                }
            }
            for claim in awaiting.remove(&id).unwrap_or_default() {
                self.check_against_parent(&claim, &visit.known);
            }
            if let Some(parent) = visit.parent {
                let claim = Claim {
                    key,
                    generation: visit.known.generation,
                    committed_at_us: visit.known.committed_at_us,
                    own_digest: visit.own_digest,
                };
                match known.get(&parent) {
                    Some(parent) => self.check_against_parent(&claim, parent),
                    // Checked when the parent arrives; never, if it is missing or unreadable.
                    None => awaiting.entry(parent).or_default().push(claim),
                }
            }
            known.insert(id, visit.known);
        }
        Ok(())
    }

    fn check_against_parent(&self, child: &Claim, parent: &Known) {
        let problem = |reason: String| {
            self.problem(FsckProblem::InconsistentHistory {
                key: child.key.clone(),
                reason,
            })
        };
        if parent.generation.checked_add(1) != Some(child.generation) {
            problem(format!(
                "generation {} does not follow its parent's generation {}",
                child.generation, parent.generation
            ));
        } else if child.own_digest != parent.child_digest
            && Some(child.own_digest) != parent.older_form_child_digest
        {
            problem(
                "skips, recent log or pages differ from what its parent implies (history.md §2)"
                    .into(),
            );
        }
        if child.committed_at_us <= parent.committed_at_us {
            problem(format!(
                "committed at {} µs, not after its parent ({} µs)",
                child.committed_at_us, parent.committed_at_us
            ));
        }
    }
}

/// The generations `skips` must name for a snapshot of generation `g ≥ 1` (history.md §1).
fn required_skip_generations(g: u64) -> Vec<u64> {
    let p = g.saturating_sub(1);
    let mut out: Vec<u64> = Vec::new();
    for k in 0..=64u32 {
        let a = if k >= 64 { 0 } else { (p >> k) << k };
        if out.last() != Some(&a) {
            out.push(a);
        }
    }
    out
}

/// What is wrong with a snapshot's history fields on their own (history.md §1).
pub(super) fn history_findings(s: &Snapshot) -> Vec<String> {
    let g = s.generation;
    let mut out = Vec::new();
    let Some(parent) = s.parent else {
        if g != 0 {
            out.push(format!("generation {g} but no parent"));
        } else if !s.skips.is_empty() || !s.recent.is_empty() {
            out.push("the root snapshot has skips or recent entries".into());
        }
        return out;
    };
    if g == 0 {
        out.push("generation 0 but it has a parent".into());
        return out;
    }
    let expected = required_skip_generations(g);
    let found: Vec<u64> = s.skips.iter().map(|a| a.generation).collect();
    if found != expected {
        out.push(format!(
            "skips name generations {found:?}, history.md §1 requires {expected:?}"
        ));
    }
    if s.skips.first().map(|a| a.id) != Some(parent) {
        out.push("skips[0] is not the parent".into());
    }
    // A history written before pages existed: no pages past generation 32, and the 32
    // nearest ancestors in `recent`.
    let paged = g <= HISTORY_PAGE_BASE || !s.pages.is_empty();
    let want = usize::try_from(required_recent_len(g, paged)).unwrap_or(usize::MAX);
    let gapless = s
        .recent
        .iter()
        .enumerate()
        .all(|(i, r)| Some(r.generation) == (g - 1).checked_sub(i as u64));
    if s.recent.len() != want || !gapless {
        out.push(format!(
            "recent must hold the {want} nearest ancestors (history.md §1), nearest first; it holds {} entries",
            s.recent.len()
        ));
    }
    if s.recent.first().map(|r| r.id) != Some(parent) {
        out.push("recent[0] is not the parent".into());
    }
    // Snapshots written before pages existed have none (readers then walk `recent`).
    let pages: Vec<u64> = s.pages.iter().map(|a| a.generation).collect();
    let required = required_page_generations(g);
    if !pages.is_empty() && pages != required {
        out.push(format!(
            "pages name generations {pages:?}, history.md §1 requires {required:?}"
        ));
    }
    out
}

/// A digest of the fields a child derives from its parent (history.md §2).
fn history_digest(
    generation: u64,
    skips: &[AncestorRef],
    recent: &[LogRecord],
    pages: &[AncestorRef],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(&generation.to_le_bytes());
    h.update(&(pages.len() as u64).to_le_bytes());
    for a in pages {
        h.update(a.id.as_bytes());
        h.update(&a.generation.to_le_bytes());
        h.update(&a.committed_at_us.to_le_bytes());
    }
    h.update(&(skips.len() as u64).to_le_bytes());
    for a in skips {
        h.update(a.id.as_bytes());
        h.update(&a.generation.to_le_bytes());
        h.update(&a.committed_at_us.to_le_bytes());
    }
    h.update(&(recent.len() as u64).to_le_bytes());
    for r in recent {
        h.update(r.id.as_bytes());
        h.update(&r.generation.to_le_bytes());
        h.update(&r.committed_at_us.to_le_bytes());
        match &r.text {
            None => {
                h.update(&[0]);
            }
            Some((message, metadata)) => {
                h.update(&[1]);
                for text in [message, metadata] {
                    h.update(&(text.len() as u64).to_le_bytes());
                    h.update(text.as_bytes());
                }
            }
        }
    }
    *h.finalize().as_bytes()
}

pub(super) fn visit_of(id: SnapshotId, s: &Snapshot) -> Visit {
    let child = child_history(id, s);
    let older_form_child_digest = (s.generation == HISTORY_PAGE_BASE).then(|| {
        let older = child_history_in(id, s, false);
        history_digest(older.generation, &older.skips, &older.recent, &older.pages)
    });
    let mut refs: Vec<SnapshotId> = s.parent.into_iter().collect();
    // The recent log names the nearest ancestors: reading them now keeps the walk concurrent,
    // and it goes on past a missing snapshot.
    refs.extend(s.recent.iter().map(|r| r.id));
    refs.extend(s.skips.iter().map(|a| a.id));
    refs.extend(s.pages.iter().map(|a| a.id));
    Visit {
        parent: s.parent,
        known: Known {
            generation: s.generation,
            committed_at_us: s.committed_at_us,
            child_digest: history_digest(
                child.generation,
                &child.skips,
                &child.recent,
                &child.pages,
            ),
            older_form_child_digest,
        },
        own_digest: history_digest(s.generation, &s.skips, &s.recent, &s.pages),
        refs,
    }
}
