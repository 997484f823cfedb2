//! The merge rules of spec/algorithms.md §8 as a model, written from the spec alone (floe's
//! conflict code is never called): which commit conflicts, what the conflict names, and the
//! state a landed commit produces. Used by `tests/merge_model.rs`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// A node as the model sees it: an array's shape and fill value (`None` for a group) and
/// its attributes.
#[derive(Clone, Debug, PartialEq)]
pub struct Doc {
    pub shape: Option<Vec<u64>>,
    pub fill: Option<u8>,
    pub attributes: Map<String, Value>,
}

/// A whole version: nodes by path (without the leading `/`, the root is `""`) and chunk
/// bytes by array and coordinates.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct State {
    pub nodes: BTreeMap<String, Doc>,
    pub chunks: BTreeMap<(String, Vec<u64>), Vec<u8>>,
}

/// What one session changed relative to its base: the documents it put (groups it created
/// listed in `created` too, arrays it deleted and created again, without their chunks, in
/// `fresh`), its chunk edits (`None` deletes) and, for arrays that shrank in the session, the
/// smallest extent of dimension 0 they had (the clip). What its transaction log tells later
/// commits once landed is [`Changes::as_logged`].
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub puts: BTreeMap<String, Doc>,
    pub created: BTreeSet<String>,
    pub fresh: BTreeSet<String>,
    pub chunks: BTreeMap<String, BTreeMap<Vec<u64>, Option<Vec<u8>>>>,
    pub clips: BTreeMap<String, u64>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.chunks.is_empty()
    }

    /// What the transaction log of these changes says once they landed on `tip` and made
    /// `landed`: a put that leaves the node as `tip` had it (without a clip, and not landing
    /// afresh) is no change at all, and a put is a creation where `tip` had no node or where
    /// it landed afresh.
    pub fn as_logged(&self, tip: &State, landed: &Landed) -> Changes {
        let next = &landed.state;
        let logged = |p: &String| {
            landed.fresh.contains(p)
                || self.clips.contains_key(p)
                || tip.nodes.get(p) != next.nodes.get(p)
        };
        let puts: BTreeMap<String, Doc> = self
            .puts
            .keys()
            .filter(|p| logged(p))
            .map(|p| (p.clone(), next.nodes[p].clone()))
            .collect();
        let created = puts
            .keys()
            .filter(|p| landed.fresh.contains(*p) || !tip.nodes.contains_key(*p))
            .cloned()
            .collect();
        Changes {
            puts,
            created,
            fresh: BTreeSet::new(),
            chunks: self.chunks.clone(),
            clips: self.clips.clone(),
        }
    }
}

/// A landed commit: the state after it, and the nodes it re-created (`fresh` puts that were
/// not agreed, so they land afresh, without the tip's chunks of the node).
#[derive(Clone, Debug)]
pub struct Landed {
    pub state: State,
    pub fresh: BTreeSet<String>,
}

/// The conflict the model expects: the index (in landing order) of the landed commit it
/// names, and what it names.
#[derive(Clone, Debug, PartialEq)]
pub struct Expected {
    pub their_commit: usize,
    pub what: Named,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Named {
    /// Both wrote or deleted these chunks of the array (in theirs' coordinate order).
    Chunks { path: String, coords: Vec<Vec<u64>> },
    /// Both changed the node in ways that do not merge: both created it differently, one
    /// re-created it while the other changed it or wrote its chunks, or one created or
    /// re-created it while the other wrote its chunks.
    Node { path: String },
    /// Both changed these attribute keys of the node to different values.
    Attributes { path: String, keys: Vec<String> },
    /// One side changed the fill value while the other changed more than attributes.
    OtherKey { path: String },
    /// One side shrank the array while the other changed it.
    Shrink { path: String },
}

/// What one side did to a node, besides its final document.
#[derive(Clone, Copy, Debug, Default)]
struct Facts {
    wrote_chunks: bool,
    /// Some version of the node (or the session's clip) was smaller than the base.
    shrank: bool,
    /// Some version of the node had another fill value than the base.
    other: bool,
}

/// How a merge of one node fails.
enum Clash {
    Attributes(Vec<String>),
    OtherKey,
    Shrink,
}

/// True when `shape` is smaller than `base` in some dimension.
fn smaller(base: &Option<Vec<u64>>, shape: &Option<Vec<u64>>) -> bool {
    match (base, shape) {
        (Some(b), Some(s)) => s.iter().zip(b).any(|(s, b)| s < b),
        _ => false,
    }
}

/// Three-way merge of one node changed by both sides (`base` → `theirs`, `base` → `ours`).
///
/// When both sides are active (changed anything, shrank, or wrote chunks): a fill value
/// change merges only with an attributes-only change of the other side, and a shrink with
/// nothing. Then each part takes the side that changed it: two grown shapes take the
/// element-wise maximum, two attribute changes merge key by key (a key both changed to
/// different values, a removal included, is a conflict naming it).
fn merge_doc(base: &Doc, theirs: (&Doc, Facts), ours: (&Doc, Facts)) -> Result<Doc, Clash> {
    struct Side {
        shape_changed: bool,
        attributes_changed: bool,
        other: bool,
        shrank: bool,
        wrote_chunks: bool,
    }
    let side = |(doc, facts): (&Doc, Facts)| Side {
        shape_changed: doc.shape != base.shape,
        attributes_changed: doc.attributes != base.attributes,
        other: facts.other || doc.fill != base.fill,
        shrank: facts.shrank || smaller(&base.shape, &doc.shape),
        wrote_chunks: facts.wrote_chunks,
    };
    let (t, o) = (side(theirs), side(ours));
    let active =
        |s: &Side| s.shape_changed || s.attributes_changed || s.other || s.shrank || s.wrote_chunks;
    let attributes_only = |s: &Side| !s.shape_changed && !s.other && !s.shrank && !s.wrote_chunks;
    if active(&t) && active(&o) {
        if (t.other && !attributes_only(&o)) || (o.other && !attributes_only(&t)) {
            return Err(Clash::OtherKey);
        }
        if t.shrank || o.shrank {
            return Err(Clash::Shrink);
        }
    }
    let (theirs, ours) = (theirs.0, ours.0);
    let fill = if theirs.fill == base.fill {
        ours.fill
    } else if ours.fill == base.fill || ours.fill == theirs.fill {
        theirs.fill
    } else {
        return Err(Clash::OtherKey);
    };
    let shape = if !t.shape_changed {
        ours.shape.clone()
    } else if !o.shape_changed {
        theirs.shape.clone()
    } else {
        let (ts, os) = (theirs.shape.clone().unwrap(), ours.shape.clone().unwrap());
        Some(ts.iter().zip(&os).map(|(t, o)| *t.max(o)).collect())
    };
    let attributes = if !t.attributes_changed {
        ours.attributes.clone()
    } else if !o.attributes_changed {
        theirs.attributes.clone()
    } else {
        let keys: BTreeSet<&String> = base
            .attributes
            .keys()
            .chain(theirs.attributes.keys())
            .chain(ours.attributes.keys())
            .collect();
        let mut merged = Map::new();
        let mut clashes = Vec::new();
        for key in keys {
            let (b, t, o) = (
                base.attributes.get(key),
                theirs.attributes.get(key),
                ours.attributes.get(key),
            );
            let value = if t == b {
                o
            } else if o == b || o == t {
                t
            } else {
                clashes.push(key.clone());
                continue;
            };
            if let Some(v) = value {
                merged.insert(key.clone(), v.clone());
            }
        }
        if !clashes.is_empty() {
            return Err(Clash::Attributes(clashes));
        }
        merged
    };
    Ok(Doc {
        shape,
        fill,
        attributes,
    })
}

/// Decides the commit of `ours` (a session opened on `base`) after `landed` (what the
/// transaction logs of the commits that landed since say, and the state after each, oldest
/// first): the state after it lands, or the conflict it must fail with.
///
/// The rules: the landed commits are walked newest first. A node `ours` puts is *agreed* at
/// the newest landed commit that put it and left exactly `ours`' document there, with the
/// same chunks: `ours` did not shrink it, and the commit created it if `ours` re-created it,
/// updated it if `ours` updated a node of `base`. What older commits did to its metadata no
/// longer matters, but where `ours` writes its chunks the node is *kept* at an older commit
/// unless a commit between them created it: that commit's creation of it conflicts, and its
/// put of it *marks* it. Chunks a commit wrote of a node that a newer commit created are gone.
///
/// At each commit, in this order (the first match is the conflict): a node `ours` puts that
/// is not agreed and that the commit put, when the commit created it or `ours` re-created
/// it; then, in path order, an array `ours` writes chunks of that the commit created (unless
/// agreed and not kept), or whose chunks both wrote or deleted (unless gone); then an array
/// `ours` re-created and the commit wrote chunks of (unless agreed).
///
/// A landed commit newer than the agreement *marks* a node that `ours` puts or writes chunks
/// of when it put that node, or wrote chunks of it while `ours` puts it. Every marked node is
/// then merged (`merge_doc`) in path order, against the agreed document (or the base's),
/// with theirs = the node in the tip; a failed merge names the newest landed commit that
/// marked the node. A node `ours` re-created and nobody agreed with lands afresh.
pub fn decide(
    base: &State,
    landed: &[(&Changes, &State)],
    ours: &Changes,
) -> Result<Landed, Expected> {
    // The newest landed commit each agreed node is agreed at.
    let mut agreed: BTreeMap<&String, usize> = BTreeMap::new();
    // Nodes the commits walked so far (newer than the current one) created.
    let mut renewed: BTreeSet<&String> = BTreeSet::new();
    for (k, (theirs, state)) in landed.iter().enumerate().rev() {
        let conflict = |what| {
            Err(Expected {
                their_commit: k,
                what,
            })
        };
        let node = |path: &String| Named::Node { path: path.clone() };
        let kept: BTreeSet<&String> = agreed
            .keys()
            .filter(|p| !renewed.contains(*p) && ours.chunks.contains_key(**p))
            .copied()
            .collect();
        for (path, doc) in &ours.puts {
            let same_chunks = if ours.fresh.contains(path) {
                theirs.created.contains(path)
            } else {
                !base.nodes.contains_key(path) || !theirs.created.contains(path)
            };
            let same = state.nodes.get(path) == Some(doc) && same_chunks;
            if theirs.puts.contains_key(path) && same && !ours.clips.contains_key(path) {
                agreed.entry(path).or_insert(k);
            }
        }
        let is_agreed = |p: &String| agreed.contains_key(p);
        let replaced = |p: &String| theirs.created.contains(p) || ours.fresh.contains(p);
        if let Some(path) = ours
            .puts
            .keys()
            .find(|p| !is_agreed(p) && theirs.puts.contains_key(*p) && replaced(p))
        {
            return conflict(node(path));
        }
        for (path, edits) in &ours.chunks {
            if (kept.contains(path) || !is_agreed(path)) && theirs.created.contains(path) {
                return conflict(node(path));
            }
            let Some(their_edits) = theirs.chunks.get(path) else {
                continue;
            };
            if renewed.contains(path) {
                continue;
            }
            let coords: Vec<Vec<u64>> = their_edits
                .keys()
                .filter(|c| edits.contains_key(*c))
                .cloned()
                .collect();
            if !coords.is_empty() {
                return conflict(Named::Chunks {
                    path: path.clone(),
                    coords,
                });
            }
        }
        if let Some(path) = theirs
            .chunks
            .keys()
            .find(|p| !is_agreed(p) && ours.fresh.contains(*p))
        {
            return conflict(node(path));
        }
        renewed.extend(theirs.created.iter());
    }
    let tip = landed.last().map_or(base, |(_, state)| state);
    let mut next = tip.clone();
    let mut fresh = BTreeSet::new();
    let touched: BTreeSet<&String> = ours.puts.keys().chain(ours.chunks.keys()).collect();
    for path in touched {
        let agreed_at = agreed.get(path).copied();
        if ours.fresh.contains(path) && agreed_at.is_none() {
            // Nobody touched it since (that was a conflict above): it starts afresh.
            next.nodes.insert(path.clone(), ours.puts[path].clone());
            next.chunks.retain(|(p, _), _| p != path);
            fresh.insert(path.clone());
            continue;
        }
        let b = match agreed_at {
            Some(_) => &ours.puts[path],
            None => match base.nodes.get(path) {
                Some(b) => b,
                None => {
                    // A group this session created: nobody else did (that was a conflict
                    // above).
                    next.nodes.insert(path.clone(), ours.puts[path].clone());
                    continue;
                }
            },
        };
        let ours_puts = ours.puts.contains_key(path);
        let created_after = |k: usize| {
            landed[k + 1..]
                .iter()
                .any(|(c, _)| c.created.contains(path))
        };
        // Newer than the agreement: a put, or a chunk write while `ours` puts the node. Older
        // (where `ours` writes chunks and nothing created the node since): a put.
        let marks = |k: usize, c: &Changes| match agreed_at {
            Some(a) if k == a => false,
            Some(a) if k < a => {
                ours.chunks.contains_key(path) && !created_after(k) && c.puts.contains_key(path)
            }
            _ => c.puts.contains_key(path) || (ours_puts && c.chunks.contains_key(path)),
        };
        let mut their_facts = Facts::default();
        let mut newest_mark = None;
        for (k, (theirs, state)) in landed.iter().enumerate() {
            if !marks(k, theirs) {
                continue;
            }
            newest_mark = Some(k);
            their_facts.wrote_chunks |= theirs.chunks.contains_key(path);
            if theirs.puts.contains_key(path) {
                let doc = &state.nodes[path];
                their_facts.shrank |= smaller(&b.shape, &doc.shape);
                their_facts.other |= doc.fill != b.fill;
            }
        }
        let o = ours.puts.get(path).unwrap_or(b);
        let merged = match newest_mark {
            None => o.clone(),
            Some(their_commit) => {
                let our_facts = Facts {
                    wrote_chunks: ours.chunks.contains_key(path),
                    shrank: ours.clips.contains_key(path),
                    other: false,
                };
                let path = path.clone();
                merge_doc(b, (&tip.nodes[&path], their_facts), (o, our_facts)).map_err(|clash| {
                    let what = match clash {
                        Clash::Attributes(keys) => Named::Attributes { path, keys },
                        Clash::OtherKey => Named::OtherKey { path },
                        Clash::Shrink => Named::Shrink { path },
                    };
                    Expected { their_commit, what }
                })?
            }
        };
        next.nodes.insert(path.clone(), merged);
    }
    for (path, clip) in &ours.clips {
        next.chunks.retain(|(p, c), _| p != path || c[0] < *clip);
    }
    for (path, edits) in &ours.chunks {
        for (coord, edit) in edits {
            let key = (path.clone(), coord.clone());
            match edit {
                Some(bytes) => next.chunks.insert(key, bytes.clone()),
                None => next.chunks.remove(&key),
            };
        }
    }
    Ok(Landed { state: next, fresh })
}
