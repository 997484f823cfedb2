//! The JSON documents of expiry and GC reports, as `floe expire --json`, `floe gc --json` and
//! the Python package print them (one place, so the three never differ).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

use super::expire::ExpireReport;
use super::gc::GcReport;
use crate::format::lifecycle::{GcEntry, GcObject, GcReason};

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn micros(us: i64) -> Value {
    DateTime::from_timestamp_micros(us).map_or(Value::Null, |t| Value::String(time(t)))
}

/// The kind name and id of a GC object.
pub fn gc_object_parts(object: &GcObject) -> (&'static str, String) {
    match object {
        GcObject::Snapshot(id) => ("snapshot", id.to_string()),
        GcObject::TxLog(id) => ("txlog", id.to_string()),
        GcObject::Manifest(id) => ("manifest", id.to_string()),
        GcObject::Chunks(id) => ("chunks", id.to_string()),
    }
}

fn reason_name(reason: GcReason) -> &'static str {
    match reason {
        GcReason::Expired => "expired",
        GcReason::Unreferenced => "unreferenced",
        GcReason::Orphan => "orphan",
    }
}

fn group(entries: &[GcEntry], list: bool) -> Value {
    let mut out = json!({"count": entries.len(), "bytes": GcReport::bytes(entries)});
    if list {
        out["objects"] = entries
            .iter()
            .map(|e| {
                let (kind, id) = gc_object_parts(&e.object);
                json!({"kind": kind, "id": id, "reason": reason_name(e.reason),
                       "condemned_at": micros(e.condemned_at_us), "size": e.size})
            })
            .collect();
    }
    out
}

impl GcReport {
    /// The report as one JSON document; `list` adds every object to the counts.
    pub fn to_json(&self, list: bool) -> Value {
        json!({
            "run": self.run,
            "store_time": time(self.store_time),
            "full": self.full,
            "dry_run": self.dry_run,
            "retained_snapshots": self.retained_snapshots,
            "snapshots_read": self.snapshots_read,
            "manifests_read": self.manifests_read,
            "condemned": group(&self.condemned, list),
            "waiting": group(&self.waiting, list),
            "spared": group(&self.spared, list),
            "deleted": group(&self.deleted, list),
            "too_young": self.too_young,
            "sparse_packs": self.sparse_packs.iter().map(|p| json!({
                "object": p.object.to_string(), "size": p.size, "live_bytes": p.live_bytes,
            })).collect::<Vec<_>>(),
        })
    }
}

impl ExpireReport {
    /// The report as one JSON document.
    pub fn to_json(&self, dry_run: bool) -> Value {
        json!({
            "store_time": time(self.store_time),
            "dry_run": dry_run,
            "record": self.record,
            "would_free": self.would_free.map(|(objects, bytes)| json!({
                "objects": objects, "bytes": bytes,
            })),
            "branches": self.branches.iter().map(|b| json!({
                "branch": b.branch, "tip": b.tip.to_string(), "older_than": time(b.older_than),
                "oldest_kept": b.oldest_kept.to_string(), "kept": b.kept,
                "newly_expired": b.newly_expired,
            })).collect::<Vec<_>>(),
            "tags_cut": self.tags_cut,
            "new_cuts": self.new_cuts.iter().map(|c| json!({
                "child": c.child.to_string(), "parent": c.parent.to_string(), "reason": c.reason,
            })).collect::<Vec<_>>(),
        })
    }
}
