//! [`FaultyStorage`]: a decorator that injects storage faults, for tests and chaos runs.
//!
//! Nothing in floe constructs it: it exists only when a caller wraps a storage in it. Faults
//! are described by [`FaultRule`]s; each storage call is matched against every rule (by
//! [`StorageOp`] and key prefix) and a matching rule fires either on its Nth matching call or
//! at random with a probability drawn from a seeded generator.

use std::fmt;
use std::ops::Range;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{DirListing, DynStorage, ListedObject, PutOutcome, Storage};
use crate::error::{Error, Result};

/// The kind of a [`Storage`] call, one per trait method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StorageOp {
    /// [`Storage::get`].
    Get,
    /// [`Storage::get_range`].
    GetRange,
    /// [`Storage::get_ranges`].
    GetRanges,
    /// [`Storage::head`].
    Head,
    /// [`Storage::put`].
    Put,
    /// [`Storage::put_if_absent`].
    PutIfAbsent,
    /// [`Storage::list`].
    List,
    /// [`Storage::list_dir`].
    ListDir,
    /// [`Storage::delete`].
    Delete,
}

impl StorageOp {
    /// Every kind of call.
    pub const ALL: [StorageOp; 9] = [
        StorageOp::Get,
        StorageOp::GetRange,
        StorageOp::GetRanges,
        StorageOp::Head,
        StorageOp::Put,
        StorageOp::PutIfAbsent,
        StorageOp::List,
        StorageOp::ListDir,
        StorageOp::Delete,
    ];
}

/// What happens to a call a rule fires on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with [`Error::Storage`] before reaching the wrapped storage: it does not
    /// happen.
    ErrorBefore,
    /// The call reaches the wrapped storage and takes effect, then its answer is replaced by
    /// [`Error::Storage`]: a lost response.
    ErrorAfter,
    /// The call is delayed by this long, then proceeds normally.
    Latency(Duration),
    /// The call never completes (until its future is dropped) and never reaches the storage.
    Hang,
}

/// When a matching rule fires.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Trigger {
    Always,
    Nth(u64),
    Probability(f64),
}

/// One fault to inject: which calls it matches, when it fires, and what it does.
///
/// A rule matches a call when the call's kind is among its operations (all kinds unless
/// [`FaultRule::ops`] narrows them) and the call's key starts with its prefix (for listings,
/// the listed prefix is the key). By default a rule fires on every matching call.
#[derive(Clone, Debug)]
pub struct FaultRule {
    fault: Fault,
    ops: Vec<StorageOp>,
    prefix: String,
    trigger: Trigger,
}

impl FaultRule {
    /// A rule injecting `fault` on every call.
    pub fn new(fault: Fault) -> Self {
        FaultRule {
            fault,
            ops: StorageOp::ALL.to_vec(),
            prefix: String::new(),
            trigger: Trigger::Always,
        }
    }

    /// Matches only calls of these kinds.
    pub fn ops(mut self, ops: &[StorageOp]) -> Self {
        self.ops = ops.to_vec();
        self
    }

    /// Matches only keys starting with `prefix`.
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.to_string();
        self
    }

    /// Fires only on the `n`th matching call (1-based) counted from when the rule was added,
    /// and never again.
    pub fn nth(mut self, n: u64) -> Self {
        self.trigger = Trigger::Nth(n);
        self
    }

    /// Fires on each matching call with probability `p` (clamped to `0..=1`), drawn from the
    /// decorator's seeded generator.
    pub fn probability(mut self, p: f64) -> Self {
        self.trigger = Trigger::Probability(p.clamp(0.0, 1.0));
        self
    }

    fn matches(&self, op: StorageOp, key: &str) -> bool {
        self.ops.contains(&op) && key.starts_with(&self.prefix)
    }
}

/// How many faults of each kind were injected, and how many calls were seen.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Calls made to the decorator (faulty or not).
    pub calls: u64,
    /// Calls failed before reaching storage.
    pub errors_before: u64,
    /// Calls whose response was replaced by an error.
    pub errors_after: u64,
    /// Calls delayed.
    pub latencies: u64,
    /// Calls that hung.
    pub hangs: u64,
}

impl FaultCounts {
    /// Errors injected, before and after the call.
    pub fn errors(&self) -> u64 {
        self.errors_before + self.errors_after
    }
}

struct ArmedRule {
    rule: FaultRule,
    matched: u64,
}

struct State {
    rules: Vec<ArmedRule>,
    rng: StdRng,
    counts: FaultCounts,
    recorded: Option<Vec<(StorageOp, String)>>,
}

/// What to do to one call.
#[derive(Default)]
struct Plan {
    latency: Duration,
    hang: bool,
    error_before: bool,
    error_after: bool,
}

/// A [`Storage`] decorator that injects errors, lost responses, latency and hangs into calls
/// to the storage it wraps, as its [`FaultRule`]s say. For tests and chaos runs only: floe
/// never wraps a storage in it by itself.
///
/// For each call, every rule is matched in the order added. All firing latency rules add
/// their delays (applied first); then the first firing rule of another kind decides the call:
/// it hangs, fails before reaching storage, or reaches storage and has its answer replaced by
/// an error. Injected errors are [`Error::Storage`] whose message starts with
/// `injected fault`. Random decisions come from a generator seeded at construction, so a
/// single-threaded run is reproducible.
pub struct FaultyStorage {
    inner: DynStorage,
    state: Mutex<State>,
}

impl fmt::Debug for FaultyStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultyStorage")
            .field("inner", &self.inner)
            .field("counts", &self.counts())
            .finish()
    }
}

impl FaultyStorage {
    /// Wraps `inner` with no rule; `seed` seeds the generator of probabilistic rules.
    pub fn new(inner: DynStorage, seed: u64) -> Self {
        FaultyStorage {
            inner,
            state: Mutex::new(State {
                rules: Vec::new(),
                rng: StdRng::seed_from_u64(seed),
                counts: FaultCounts::default(),
                recorded: None,
            }),
        }
    }

    /// The wrapped storage (to inspect the repository without faults).
    pub fn inner(&self) -> &DynStorage {
        &self.inner
    }

    /// Adds a rule; its Nth-call count starts now.
    pub fn add_rule(&self, rule: FaultRule) {
        self.state().rules.push(ArmedRule { rule, matched: 0 });
    }

    /// Removes every rule (calls then pass through untouched).
    pub fn clear_rules(&self) {
        self.state().rules.clear();
    }

    /// Faults injected and calls seen so far.
    pub fn counts(&self) -> FaultCounts {
        self.state().counts
    }

    /// Starts recording every call (kind and key), dropping any earlier recording.
    pub fn start_recording(&self) {
        self.state().recorded = Some(Vec::new());
    }

    /// Stops recording and returns the calls recorded since [`FaultyStorage::start_recording`],
    /// in the order they were made.
    pub fn take_recording(&self) -> Vec<(StorageOp, String)> {
        self.state().recorded.take().unwrap_or_default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters to a test decorator: keep going with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn plan(&self, op: StorageOp, key: &str) -> Plan {
        let mut guard = self.state();
        let state = &mut *guard;
        state.counts.calls += 1;
        if let Some(recorded) = &mut state.recorded {
            recorded.push((op, key.to_string()));
        }
        let mut plan = Plan::default();
        let mut decided = false;
        for armed in &mut state.rules {
            if !armed.rule.matches(op, key) {
                continue;
            }
            armed.matched += 1;
            let fires = match armed.rule.trigger {
                Trigger::Always => true,
                Trigger::Nth(n) => armed.matched == n,
                Trigger::Probability(p) => state.rng.random_bool(p),
            };
            if !fires {
                continue;
            }
            match armed.rule.fault {
                Fault::Latency(d) => {
                    plan.latency += d;
                    state.counts.latencies += 1;
                }
                _ if decided => {}
                Fault::Hang => {
                    plan.hang = true;
                    decided = true;
                    state.counts.hangs += 1;
                }
                Fault::ErrorBefore => {
                    plan.error_before = true;
                    decided = true;
                    state.counts.errors_before += 1;
                }
                Fault::ErrorAfter => {
                    plan.error_after = true;
                    decided = true;
                    state.counts.errors_after += 1;
                }
            }
        }
        plan
    }

    /// Runs `call` under the faults planned for it.
    async fn run<T, F>(&self, op: StorageOp, key: &str, call: F) -> Result<T>
    where
        F: std::future::Future<Output = Result<T>>,
    {
        let plan = self.plan(op, key);
        if !plan.latency.is_zero() {
            tokio::time::sleep(plan.latency).await;
        }
        if plan.hang {
            std::future::pending::<()>().await;
        }
        if plan.error_before {
            return Err(injected(op, key, "before the call; it did not happen"));
        }
        let result = call.await;
        if plan.error_after {
            return Err(injected(
                op,
                key,
                "after the call; it happened, its answer is lost",
            ));
        }
        result
    }
}

fn injected(op: StorageOp, key: &str, when: &str) -> Error {
    Error::Storage {
        key: key.to_string(),
        source: object_store::Error::Generic {
            store: "FaultyStorage",
            source: format!("injected fault: {op:?} failed {when}").into(),
        },
    }
}

#[async_trait]
impl Storage for FaultyStorage {
    async fn get(&self, key: &str) -> Result<Bytes> {
        self.run(StorageOp::Get, key, self.inner.get(key)).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes> {
        self.run(StorageOp::GetRange, key, self.inner.get_range(key, range))
            .await
    }
    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.run(
            StorageOp::GetRanges,
            key,
            self.inner.get_ranges(key, ranges),
        )
        .await
    }
    async fn head(&self, key: &str) -> Result<Option<u64>> {
        self.run(StorageOp::Head, key, self.inner.head(key)).await
    }
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.run(StorageOp::Put, key, self.inner.put(key, bytes))
            .await
    }
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<PutOutcome> {
        self.run(
            StorageOp::PutIfAbsent,
            key,
            self.inner.put_if_absent(key, bytes),
        )
        .await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>> {
        self.run(StorageOp::List, prefix, self.inner.list(prefix))
            .await
    }
    async fn list_dir(&self, prefix: &str) -> Result<DirListing> {
        self.run(StorageOp::ListDir, prefix, self.inner.list_dir(prefix))
            .await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.run(StorageOp::Delete, key, self.inner.delete(key))
            .await
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped() -> FaultyStorage {
        let inner = super::super::open_storage("memory://", &vec![]).unwrap();
        FaultyStorage::new(inner, 7)
    }

    #[tokio::test]
    async fn error_before_does_not_write_and_error_after_does() {
        let s = wrapped();
        s.add_rule(
            FaultRule::new(Fault::ErrorBefore)
                .ops(&[StorageOp::Put])
                .prefix("a/")
                .nth(1),
        );
        let err = s.put("a/1", Bytes::from_static(b"x")).await.unwrap_err();
        assert!(err.to_string().contains("injected fault"), "{err}");
        assert_eq!(s.inner().head("a/1").await.unwrap(), None);
        // Fired once only; other prefixes untouched.
        s.put("a/1", Bytes::from_static(b"x")).await.unwrap();
        s.clear_rules();
        s.add_rule(FaultRule::new(Fault::ErrorAfter).ops(&[StorageOp::PutIfAbsent]));
        assert!(s
            .put_if_absent("b/1", Bytes::from_static(b"y"))
            .await
            .is_err());
        assert_eq!(s.inner().head("b/1").await.unwrap(), Some(1));
        let counts = s.counts();
        assert_eq!((counts.errors_before, counts.errors_after), (1, 1));
        assert_eq!(counts.calls, 3);
    }

    #[tokio::test]
    async fn nth_counts_only_matching_calls_and_hang_never_completes() {
        let s = wrapped();
        s.put("k/1", Bytes::from_static(b"x")).await.unwrap();
        s.add_rule(FaultRule::new(Fault::Hang).ops(&[StorageOp::Get]).nth(2));
        s.start_recording();
        s.head("k/1").await.unwrap();
        s.get("k/1").await.unwrap();
        let hung = tokio::time::timeout(Duration::from_millis(20), s.get("k/1")).await;
        assert!(hung.is_err());
        s.get("k/1").await.unwrap();
        assert_eq!(s.counts().hangs, 1);
        let ops: Vec<StorageOp> = s.take_recording().into_iter().map(|(op, _)| op).collect();
        assert_eq!(
            ops,
            [
                StorageOp::Head,
                StorageOp::Get,
                StorageOp::Get,
                StorageOp::Get
            ]
        );
    }

    #[tokio::test]
    async fn probability_is_reproducible_from_the_seed() {
        let run = || async {
            let s = wrapped();
            s.add_rule(FaultRule::new(Fault::ErrorBefore).probability(0.3));
            let mut outcomes = Vec::new();
            for _ in 0..200 {
                outcomes.push(s.head("x").await.is_err());
            }
            (outcomes, s.counts().errors_before)
        };
        let (a, fired) = run().await;
        let (b, _) = run().await;
        assert_eq!(a, b);
        assert!((20..120).contains(&fired), "{fired} of 200 at p = 0.3");
    }
}
