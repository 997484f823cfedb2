//! The lifecycle soak on a local directory (spec/algorithms.md §14-16): 8 writers, 2 ref movers
//! (one of them also merging into side branches and `main`, squashing and amending), expiry
//! and GC with a 2 s grace period, concurrently, 500 rounds; after every round every retained
//! version reads back against the model and fsck is clean.
//!
//! The longer variant (5,000 rounds) is ignored; run it with
//! `cargo test --release --all-features --test lifecycle_soak -- --ignored`.
//! `FLOE_SOAK_SEED=N` replaces either variant's seed (to explore other interleavings).
//! The S3 variant lives in `tests/s3.rs`.

mod common;

use std::time::Duration;

use common::soak::soak;

async fn local_soak(rounds: u64, seed: u64) {
    let seed = std::env::var("FLOE_SOAK_SEED")
        .map(|s| s.parse().expect("FLOE_SOAK_SEED is a number"))
        .unwrap_or(seed);
    let dir = tempfile::tempdir().unwrap();
    let storage = floe::create_storage(dir.path().to_str().unwrap(), &vec![]).unwrap();
    let summary = soak(storage, rounds, seed, Duration::from_secs(2)).await;
    println!("{summary:?}");
    assert!(
        summary.deleted_objects > 0,
        "GC never deleted anything: {summary:?}"
    );
    assert!(summary.versions_checked > rounds, "{summary:?}");
    assert!(
        summary.merges > 0 && summary.rewrites > 0,
        "no merge, squash or amend landed: {summary:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_ref_movers_expiry_and_gc_for_500_rounds() {
    local_soak(500, 7).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long soak: cargo test --release --all-features --test lifecycle_soak -- --ignored"]
async fn writers_ref_movers_expiry_and_gc_for_5000_rounds() {
    local_soak(5000, 11).await;
}
