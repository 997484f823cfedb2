//! Property test of sessions and commits against a simple in-memory model.
//!
//! Random sequences of node, chunk, commit, discard and checkout operations run both on a
//! floe repository (with tiny thresholds, so inline chunks, packs, single-object chunks,
//! several manifest shards, inline deltas and their compaction all occur) and on a model made
//! of `BTreeMap`s. After every operation the writable session must show exactly the model's
//! working state; every committed version must read back exactly what the model recorded for
//! it, through the same handle and through a freshly opened one (cold caches). The model and
//! the checks are in `common/session_model.rs`; fixed sequences and regressions in
//! `model_sequences.rs`.
//!
//! Heavier run: `PROPTEST_CASES=2000 cargo test --test model -- --include-ignored` (the
//! variable sets the number of cases of both properties).

mod common;

use common::session_model::{run, Op, PATHS};
use proptest::prelude::*;

fn op_strategy() -> impl Strategy<Value = Op> {
    let path = 0..PATHS.len();
    let array_path = 1..PATHS.len();
    let shape = [0u64..=9, 0u64..=9];
    let coord = [0u64..=5, 0u64..=4];
    let len = prop_oneof![4 => 0usize..=16, 3 => 17usize..=600, 2 => 601usize..4096, 1 => 4096usize..=4400];
    prop_oneof![
        2 => (path.clone(), proptest::option::of(any::<u8>())).prop_map(|(path, attr)| Op::CreateGroup { path, attr }),
        3 => (array_path.clone(), shape.clone()).prop_map(|(path, shape)| Op::CreateArray { path, shape }),
        12 => (array_path.clone(), coord.clone(), len, any::<u8>())
            .prop_map(|(path, coord, len, seed)| Op::SetChunk { path, coord, len, seed }),
        3 => (array_path.clone(), coord).prop_map(|(path, coord)| Op::DeleteChunk { path, coord }),
        3 => (array_path, shape).prop_map(|(path, shape)| Op::Resize { path, shape }),
        2 => (path.clone(), proptest::option::of(any::<u8>())).prop_map(|(path, attr)| Op::SetAttributes { path, attr }),
        1 => path.prop_map(|path| Op::DeleteNode { path }),
        4 => Just(Op::Commit),
        1 => Just(Op::Discard),
        1 => any::<usize>().prop_map(|version| Op::Checkout { version }),
        1 => Just(Op::Reopen),
    ]
}

/// The number of cases: `PROPTEST_CASES` when set, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn sessions_and_versions_match_the_model(ops in proptest::collection::vec(op_strategy(), 1..40)) {
        run(ops);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(400), failure_persistence: None, ..ProptestConfig::default() })]

    /// Longer sequences; run with `cargo test --test model -- --ignored`.
    #[test]
    #[ignore]
    fn long_sequences_match_the_model(ops in proptest::collection::vec(op_strategy(), 40..160)) {
        run(ops);
    }
}
