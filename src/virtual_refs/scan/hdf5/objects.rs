//! The file's groups and datasets, found by walking the group hierarchy from the root one
//! level at a time (every object header of a level requested together).

use std::collections::HashSet;

use super::attribute::{self, Attribute};
use super::bytes::{bad, gather, Cursor, Fault, FileBytes, Parsed, Sizes};
use super::datatype::{self, Dataspace, Datatype};
use super::heaps::{symbol_node, LocalHeap};
use super::layout::{self, Filter, Layout};
use super::link::{self, Link, Target};
use super::object_header::{self, kind, ObjectHeader, FLAG_SHARED};
use super::{btree1, dense};

/// Objects one file may have (a bound for hostile files).
const MAX_OBJECTS: usize = 1 << 20;
/// Group nesting depth.
const MAX_DEPTH: usize = 64;

/// A group: its path (`""` for the root, else `a/b`) and attributes.
#[derive(Clone, Debug)]
pub(crate) struct Group {
    pub(crate) path: String,
    pub(crate) attributes: Vec<Attribute>,
}

/// A dataset as its object header describes it.
#[derive(Clone, Debug)]
pub(crate) struct Dataset {
    /// Path from the root (`a/b/name`).
    pub(crate) path: String,
    /// Its object header's address (what object references name).
    pub(crate) address: u64,
    pub(crate) datatype: Datatype,
    pub(crate) space: Dataspace,
    pub(crate) layout: Layout,
    pub(crate) filters: Vec<Filter>,
    pub(crate) attributes: Vec<Attribute>,
}

impl Dataset {
    /// The dataset's name (the last part of its path).
    pub(crate) fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The group holding it (`""` for the root).
    pub(crate) fn group(&self) -> &str {
        self.path.rsplit_once('/').map_or("", |(g, _)| g)
    }

    /// The attribute named `name`.
    pub(crate) fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
}

/// Every group and dataset of the file.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tree {
    pub(crate) groups: Vec<Group>,
    pub(crate) datasets: Vec<Dataset>,
}

/// Walks the hierarchy from the root group's object header at `root`.
pub(crate) fn walk(file: &FileBytes, sizes: Sizes, root: u64) -> Parsed<Tree> {
    let mut tree = Tree::default();
    let mut seen: HashSet<u64> = HashSet::from([root]);
    let mut level: Vec<(String, u64)> = vec![(String::new(), root)];
    for _ in 0..=MAX_DEPTH {
        if level.is_empty() {
            return Ok(tree);
        }
        let headers = gather(
            level
                .iter()
                .map(|(_, a)| object_header::read(file, sizes, *a)),
        )?;
        let objects = gather(
            level
                .iter()
                .zip(&headers)
                .map(|((path, _), h)| object(file, sizes, path, h)),
        )?;
        let mut next = Vec::new();
        for object in objects {
            match object {
                Object::Group(group, links) => {
                    for l in links {
                        let Target::Hard(addr) = l.target else {
                            // Soft and external links name objects reached otherwise or
                            // elsewhere: a netCDF reader skips them too.
                            continue;
                        };
                        if !seen.insert(addr) {
                            continue; // an object reached twice (a hard-link alias)
                        }
                        let path = if group.path.is_empty() {
                            l.name
                        } else {
                            format!("{}/{}", group.path, l.name)
                        };
                        next.push((path, addr));
                    }
                    tree.groups.push(group);
                }
                Object::Dataset(d) => tree.datasets.push(*d),
                Object::Other => {}
            }
            if seen.len() > MAX_OBJECTS {
                return bad(format!("more than {MAX_OBJECTS} objects"));
            }
        }
        level = next;
    }
    bad(format!("groups nest deeper than {MAX_DEPTH} levels"))
}

enum Object {
    Group(Group, Vec<Link>),
    Dataset(Box<Dataset>),
    Other,
}

fn object(file: &FileBytes, sizes: Sizes, path: &str, h: &ObjectHeader) -> Parsed<Object> {
    let attributes = attributes(file, sizes, h);
    if h.first(kind::LAYOUT).is_some() {
        let attributes = attributes?;
        return dataset(file, sizes, path, h, attributes).map(|d| Object::Dataset(Box::new(d)));
    }
    let is_group = [
        kind::SYMBOL_TABLE,
        kind::LINK_INFO,
        kind::LINK,
        kind::GROUP_INFO,
    ]
    .iter()
    .any(|&k| h.first(k).is_some())
        || path.is_empty();
    if !is_group {
        return Ok(Object::Other); // a committed datatype
    }
    let links = links(file, sizes, h);
    let (attributes, links) = match (attributes, links) {
        (Ok(a), Ok(l)) => (a, l),
        (Err(Fault::Missing(mut a)), Err(Fault::Missing(l))) => {
            a.extend(l);
            return Err(Fault::Missing(a));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    Ok(Object::Group(
        Group {
            path: path.to_string(),
            attributes,
        },
        links,
    ))
}

/// A group's links: symbol table, link messages, or dense links.
fn links(file: &FileBytes, sizes: Sizes, h: &ObjectHeader) -> Parsed<Vec<Link>> {
    let mut out = Vec::new();
    if let Some(m) = h.first(kind::SYMBOL_TABLE) {
        let mut c = Cursor::new(&m.data, 0, sizes);
        let btree = c.address_field()?;
        let heap_at = c.address_field()?;
        let heap = LocalHeap::read(file, sizes, heap_at);
        let nodes = btree1::group_nodes(file, sizes, btree);
        let (heap, nodes) = match (heap, nodes) {
            (Ok(h), Ok(n)) => (h, n),
            (Err(Fault::Missing(mut a)), Err(Fault::Missing(b))) => {
                a.extend(b);
                return Err(Fault::Missing(a));
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        for entries in gather(nodes.iter().map(|&n| symbol_node(file, sizes, n)))? {
            for (name_at, addr) in entries {
                out.push(Link {
                    name: heap.name(name_at)?,
                    target: Target::Hard(addr),
                    creation_order: None,
                });
            }
        }
    }
    for m in h.all(kind::LINK) {
        out.push(link::link(&mut Cursor::new(&m.data, 0, sizes))?);
    }
    if let Some(m) = h.first(kind::LINK_INFO) {
        if let Some(storage) = link::link_info(&mut Cursor::new(&m.data, 0, sizes))? {
            out.extend(dense::links(file, sizes, storage)?);
        }
    }
    // The order the netCDF library visits links in: creation order where the group tracks
    // it, else by name.
    if out.iter().all(|l| l.creation_order.is_some()) {
        out.sort_by_key(|l| l.creation_order);
    } else {
        out.sort_by(|a, b| a.name.cmp(&b.name));
    }
    for l in &out {
        if l.name.is_empty() || l.name.contains('/') || l.name == "." || l.name == ".." {
            return bad(format!("a link named `{}`", l.name.escape_default()));
        }
    }
    Ok(out)
}

/// An object's attributes: attribute messages, or dense attributes; shared datatypes
/// resolved.
fn attributes(file: &FileBytes, sizes: Sizes, h: &ObjectHeader) -> Parsed<Vec<Attribute>> {
    let mut out = Vec::new();
    for m in h.all(kind::ATTRIBUTE) {
        out.push(attribute::attribute(
            &mut Cursor::new(&m.data, 0, sizes),
            sizes,
        )?);
    }
    if let Some(m) = h.first(kind::ATTRIBUTE_INFO) {
        if let Some(storage) = link::attribute_info(&mut Cursor::new(&m.data, 0, sizes))? {
            out.extend(dense::attributes(file, sizes, storage)?);
        }
    }
    let resolved = gather(out.iter().map(|a| match a.shared_type {
        Some(at) => committed_type(file, sizes, at),
        None => Ok(a.datatype.clone()),
    }))?;
    for (a, t) in out.iter_mut().zip(resolved) {
        a.datatype = t;
    }
    Ok(out)
}

/// The datatype of the committed datatype object at `addr`.
fn committed_type(file: &FileBytes, sizes: Sizes, addr: u64) -> Parsed<Datatype> {
    let h = object_header::read(file, sizes, addr)?;
    match h.first(kind::DATATYPE) {
        Some(m) => datatype::datatype(&mut Cursor::new(&m.data, 0, sizes)),
        None => bad(format!("no committed datatype at byte {addr}")),
    }
}

fn dataset(
    file: &FileBytes,
    sizes: Sizes,
    path: &str,
    h: &ObjectHeader,
    attributes: Vec<Attribute>,
) -> Parsed<Dataset> {
    let need = |k: u16, what: &str| {
        h.first(k)
            .ok_or_else(|| Fault::Bad(format!("dataset `{path}` has no {what} message")))
    };
    if h.first(kind::EXTERNAL_FILES).is_some() {
        return bad(format!(
            "dataset `{path}` stores its data in external files (not supported)"
        ));
    }
    let type_message = need(kind::DATATYPE, "datatype")?;
    let datatype = if type_message.flags & FLAG_SHARED != 0 {
        let at = attribute::shared_address(&mut Cursor::new(&type_message.data, 0, sizes))?;
        committed_type(file, sizes, at)?
    } else {
        datatype::datatype(&mut Cursor::new(&type_message.data, 0, sizes))?
    };
    let space = datatype::dataspace(
        &mut Cursor::new(&need(kind::DATASPACE, "dataspace")?.data, 0, sizes),
        sizes,
    )?;
    let layout = layout::layout(&mut Cursor::new(
        &need(kind::LAYOUT, "data layout")?.data,
        0,
        sizes,
    ))
    .map_err(|e| match e {
        Fault::Bad(reason) => Fault::Bad(format!("dataset `{path}`: {reason}")),
        other => other,
    })?;
    let filters = match h.first(kind::FILTER_PIPELINE) {
        Some(m) => layout::filters(&mut Cursor::new(&m.data, 0, sizes))?,
        None => Vec::new(),
    };
    Ok(Dataset {
        path: path.to_string(),
        address: h.address,
        datatype,
        space,
        layout,
        filters,
        attributes,
    })
}
