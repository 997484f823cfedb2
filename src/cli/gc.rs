//! `floe gc`: delete objects no retained version reaches, in two phases a grace period apart.

use std::io::Write;
use std::time::Duration;

use super::age::parse_duration;
use super::common::{bytes, time, write_json, CliResult, RepoLocation};
use floe::{GcEntry, GcOptions, GcReport};

/// Documentation of `floe gc`.
pub const LONG_ABOUT: &str = "\
Delete objects that no retained version reaches: history expired by `floe expire`, commits no
branch or tag reaches any more (reset or deleted branches, deleted tags) and, with --full,
orphans no snapshot references (crashed commits, aborted uploads).

Two phases, no lock: a run condemns what became unreachable and deletes only what an earlier
run condemned at least --grace ago and that is still unreachable (a branch moved back to a
condemned snapshot spares it). Time is the store's clock, not this machine's. Each run writes
its record under gc/ before its first delete, and deletes snapshots first, then transaction
logs, manifests and chunk objects, so every snapshot that exists is complete at every moment.

An incremental run costs what changed since the last run (branch records written since, the
snapshots that left or entered the retained history, the manifest shards of the slots they
touched); --full also reads every retained snapshot and manifest and lists storage, touching
only keys that parse exactly as floe's.";

/// Documentation of `floe gc --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document:
  {\"run\": <seq> or null (dry run), \"store_time\": \"<RFC 3339>\", \"full\": bool,
   \"dry_run\": bool, \"retained_snapshots\": n, \"snapshots_read\": n, \"manifests_read\": n,
   \"condemned\": {\"count\": n, \"bytes\": n, \"objects\": [ENTRY, ...]},
   \"waiting\": {...}, \"spared\": {...}, \"deleted\": {...},
   \"too_young\": n, \"sparse_packs\": [{\"object\": \"<id>\", \"size\": n, \"live_bytes\": n}]}
ENTRY: {\"kind\": \"snapshot|txlog|manifest|chunks\", \"id\": \"<id>\",
        \"reason\": \"expired|unreferenced|orphan\", \"condemned_at\": \"<RFC 3339>\", \"size\": n}
condemned: condemned by this run; waiting: condemned earlier, still within the grace period;
spared: condemned earlier and reachable again; deleted: deleted by this run (a dry run: would
be). Objects are listed with --json only when --list is given.";

/// Arguments of `floe gc`.
#[derive(Debug, clap::Args)]
pub struct GcArgs {
    /// How long an object stays condemned before a later run deletes it (`7d`, `12h`, ...);
    /// also the age below which a full run leaves unreferenced objects alone.
    #[arg(long, value_name = "AGE", default_value = "7d", value_parser = parse_duration)]
    grace: Duration,
    /// Also list storage: find orphans and report sparse packs.
    #[arg(long)]
    full: bool,
    /// Report what would be condemned and deleted, without writing or deleting anything.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Report packs whose live bytes are below this fraction of their size (full runs).
    #[arg(long = "sparse-packs", value_name = "FRACTION", default_value_t = 0.5)]
    sparse_packs: f64,
    /// List every object in the JSON document, not only counts.
    #[arg(long)]
    list: bool,
    /// Print one JSON document (see below).
    #[arg(long)]
    json: bool,
}

/// Runs garbage collection.
pub async fn run(location: &RepoLocation, args: GcArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let options = GcOptions {
        grace: args.grace,
        full: args.full,
        dry_run: args.dry_run,
        sparse_pack_threshold: args.sparse_packs,
    };
    let report = repo.gc(&options).await?;
    if args.json {
        return write_json(out, &report.to_json(args.list));
    }
    let line = |out: &mut dyn Write, what: &str, entries: &[GcEntry]| -> std::io::Result<()> {
        writeln!(
            out,
            "{what:<10} {:>8} objects {:>12}",
            entries.len(),
            bytes(GcReport::bytes(entries))
        )
    };
    match report.run {
        Some(run) => writeln!(
            out,
            "gc run {run} at {} (store clock)",
            time(report.store_time)
        )?,
        None => writeln!(
            out,
            "dry run at {} (store clock): nothing written or deleted",
            time(report.store_time)
        )?,
    }
    writeln!(
        out,
        "retained   {:>8} snapshots (read {} snapshots, {} manifests)",
        report.retained_snapshots, report.snapshots_read, report.manifests_read
    )?;
    line(out, "condemned", &report.condemned)?;
    line(out, "waiting", &report.waiting)?;
    line(out, "spared", &report.spared)?;
    line(
        out,
        if report.dry_run {
            "would del."
        } else {
            "deleted"
        },
        &report.deleted,
    )?;
    if report.full {
        writeln!(
            out,
            "too young  {:>8} unreferenced objects left alone (younger than the grace period)",
            report.too_young
        )?;
        for pack in &report.sparse_packs {
            writeln!(
                out,
                "sparse pack {}: {} live of {}",
                pack.object,
                bytes(pack.live_bytes),
                bytes(pack.size)
            )?;
        }
    }
    Ok(())
}
