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

/// What one session changed relative to the base: the documents it put (groups it created
/// listed in `created` too), its chunk edits (`None` deletes) and, for arrays that shrank in
/// the session, the smallest extent of dimension 0 they had (the clip). What its transaction
/// log tells later commits once landed is [`Changes::as_logged`].
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub puts: BTreeMap<String, Doc>,
    pub created: BTreeSet<String>,
    pub chunks: BTreeMap<String, BTreeMap<Vec<u64>, Option<Vec<u8>>>>,
    pub clips: BTreeMap<String, u64>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.chunks.is_empty()
    }

    /// What the transaction log of these changes says once they landed on `tip` and made
    /// `next`: a put that leaves the node as `tip` had it (without a clip) is no change at
    /// all, and a put is a creation only where `tip` had no node.
    pub fn as_logged(&self, tip: &State, next: &State) -> Changes {
        let puts: BTreeMap<String, Doc> = self
            .puts
            .iter()
            .filter(|(p, _)| self.clips.contains_key(*p) || tip.nodes.get(*p) != next.nodes.get(*p))
            .map(|(p, _)| (p.clone(), next.nodes[p].clone()))
            .collect();
        let created = puts
            .keys()
            .filter(|p| !tip.nodes.contains_key(*p))
            .cloned()
            .collect();
        Changes {
            puts,
            created,
            chunks: self.chunks.clone(),
            clips: self.clips.clone(),
        }
    }
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
    /// Both created the node, with different documents.
    Created { path: String },
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
/// the newest landed commit that put it and left exactly `ours`' document there (unless
/// `ours` shrank it); what older commits did to its metadata no longer matters. The first
/// commit that created a node `ours` puts and that is not agreed there or at a newer commit,
/// or wrote or deleted a chunk `ours` wrote or deleted, is the conflict. A landed commit
/// *marks* a node that `ours` puts or writes chunks of when it put that node, or wrote chunks
/// of it while `ours` puts it, and is newer than the commit the node is agreed at. Every
/// marked node is then merged (`merge_doc`) in path order, against the agreed document (or
/// the base's), with theirs = the node in the tip; a failed merge names the newest landed
/// commit that marked the node.
pub fn decide(
    base: &State,
    landed: &[(&Changes, &State)],
    ours: &Changes,
) -> Result<State, Expected> {
    // The newest landed commit each agreed node is agreed at.
    let mut agreed: BTreeMap<&String, usize> = BTreeMap::new();
    for (k, (theirs, state)) in landed.iter().enumerate().rev() {
        let conflict = |what| {
            Err(Expected {
                their_commit: k,
                what,
            })
        };
        for (path, doc) in &ours.puts {
            let same = state.nodes.get(path) == Some(doc);
            if theirs.puts.contains_key(path) && same && !ours.clips.contains_key(path) {
                agreed.entry(path).or_insert(k);
            }
        }
        let created = |p: &String| theirs.created.contains(p) && !agreed.contains_key(p);
        if let Some(path) = ours.puts.keys().find(|p| created(p)) {
            return conflict(Named::Created { path: path.clone() });
        }
        for (path, edits) in &ours.chunks {
            let Some(their_edits) = theirs.chunks.get(path) else {
                continue;
            };
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
    }
    let tip = landed.last().map_or(base, |(_, state)| state);
    let mut next = tip.clone();
    let touched: BTreeSet<&String> = ours.puts.keys().chain(ours.chunks.keys()).collect();
    for path in touched {
        let agreed_at = agreed.get(path).copied();
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
        let marks =
            |c: &Changes| c.puts.contains_key(path) || (ours_puts && c.chunks.contains_key(path));
        let mut their_facts = Facts::default();
        let mut newest_mark = None;
        for (k, (theirs, state)) in landed.iter().enumerate() {
            if agreed_at.is_some_and(|a| k <= a) || !marks(theirs) {
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
    Ok(next)
}
