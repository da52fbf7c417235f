//! A fake isolator for tests: records every call, keeps the same bookkeeping rules as the
//! cgroups backends (unknown containers, hard limit only raised after prepare), tracks
//! the pids it was given through `/proc`, and fails on demand.

use super::cgroups::mapping;
use super::{ContainerId, IsolationError, Isolator, Limitation, Limits, Usage};
use futures_util::future::{self, BoxFuture};
use futures_util::FutureExt;
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// An isolator operation (for recorded calls and injected failures).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Prepare,
    Isolate,
    Update,
    Usage,
    Limitation,
    Cleanup,
    Recover,
}

/// One call the fake received, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Prepare(ContainerId, Limits),
    Isolate(ContainerId, u32),
    Update(ContainerId, Limits),
    Usage(ContainerId),
    Limitation(ContainerId),
    Cleanup(ContainerId),
    Recover,
}

#[derive(Debug)]
struct Failure {
    op: Op,
    message: String,
    /// `None`: every call fails until cleared.
    remaining: Option<usize>,
}

#[derive(Debug, Default)]
struct Container {
    limits: Limits,
    hard_limit: Option<u64>,
    pids: Vec<u32>,
    usage: Option<Usage>,
    limitation: Option<Limitation>,
}

#[derive(Debug, Default)]
struct State {
    calls: Vec<Call>,
    containers: BTreeMap<ContainerId, Container>,
    failures: Vec<Failure>,
}

/// See the module docs. Cheap to share behind an `Arc`.
#[derive(Debug, Default)]
pub struct FakeIsolator {
    state: Mutex<State>,
}

impl FakeIsolator {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The next call of `op` fails with `message` (and has no effect).
    pub fn fail_next(&self, op: Op, message: impl Into<String>) {
        self.lock().failures.push(Failure {
            op,
            message: message.into(),
            remaining: Some(1),
        });
    }

    /// Every call of `op` fails until [`FakeIsolator::clear_failures`].
    pub fn fail_always(&self, op: Op, message: impl Into<String>) {
        self.lock().failures.push(Failure {
            op,
            message: message.into(),
            remaining: None,
        });
    }

    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Statistics `usage` returns for `id` (timestamp, processes and limits are filled
    /// in); false if the container is unknown.
    pub fn set_usage(&self, id: &ContainerId, usage: Usage) -> bool {
        self.with_container(id, |c| c.usage = Some(usage))
    }

    /// Makes `limitation`/`watch` report `limitation` for `id`; false if unknown.
    pub fn trigger_limitation(&self, id: &ContainerId, limitation: Limitation) -> bool {
        self.with_container(id, |c| c.limitation = Some(limitation))
    }

    /// Prepared containers not yet cleaned up.
    pub fn containers(&self) -> Vec<ContainerId> {
        self.lock().containers.keys().cloned().collect()
    }

    /// The limits last applied to `id`.
    pub fn limits(&self, id: &ContainerId) -> Option<Limits> {
        self.lock().containers.get(id).map(|c| c.limits)
    }

    /// Pids isolated into `id`.
    pub fn pids(&self, id: &ContainerId) -> Vec<u32> {
        self.lock()
            .containers
            .get(id)
            .map(|c| c.pids.clone())
            .unwrap_or_default()
    }

    fn with_container(&self, id: &ContainerId, f: impl FnOnce(&mut Container)) -> bool {
        self.lock().containers.get_mut(id).map(f).is_some()
    }

    /// Records the call, then applies an injected failure if one matches.
    fn enter(&self, call: Call, op: Op, id: &str) -> Result<MutexGuard<'_, State>, IsolationError> {
        let mut state = self.lock();
        state.calls.push(call);
        let Some(i) = state.failures.iter().position(|f| f.op == op) else {
            return Ok(state);
        };
        let message = state.failures[i].message.clone();
        match &mut state.failures[i].remaining {
            Some(n) if *n <= 1 => {
                state.failures.remove(i);
            }
            Some(n) => *n -= 1,
            None => {}
        }
        Err(IsolationError::Injected {
            op,
            id: id.to_string(),
            message,
        })
    }

    fn prepare_now(&self, id: &ContainerId, limits: &Limits) -> Result<(), IsolationError> {
        let mut state = self.enter(Call::Prepare(id.clone(), *limits), Op::Prepare, id.as_str())?;
        super::types::check_limits(id, limits)?;
        if state.containers.contains_key(id) {
            return Err(IsolationError::AlreadyExists(id.clone()));
        }
        let container = Container {
            limits: *limits,
            hard_limit: mapping::mem_hard_bytes(limits),
            ..Container::default()
        };
        state.containers.insert(id.clone(), container);
        Ok(())
    }

    fn isolate_now(&self, id: &ContainerId, pid: u32) -> Result<(), IsolationError> {
        let mut state = self.enter(Call::Isolate(id.clone(), pid), Op::Isolate, id.as_str())?;
        if !alive(pid) {
            return Err(IsolationError::io(
                "write",
                format!("<fake>/{id}/cgroup.procs"),
                std::io::Error::from_raw_os_error(nix::libc::ESRCH),
            ));
        }
        let c = known(&mut state, id)?;
        c.pids.push(pid);
        Ok(())
    }

    fn update_now(&self, id: &ContainerId, limits: &Limits) -> Result<(), IsolationError> {
        let mut state = self.enter(Call::Update(id.clone(), *limits), Op::Update, id.as_str())?;
        super::types::check_limits(id, limits)?;
        let c = known(&mut state, id)?;
        let new = mapping::mem_hard_bytes(limits);
        if mapping::should_write_hard_limit(false, new, c.hard_limit) {
            c.hard_limit = new;
        }
        c.limits = *limits;
        Ok(())
    }

    fn usage_now(&self, id: &ContainerId) -> Result<Usage, IsolationError> {
        let mut state = self.enter(Call::Usage(id.clone()), Op::Usage, id.as_str())?;
        let c = known(&mut state, id)?;
        let mut usage = c.usage.clone().unwrap_or_default();
        usage.timestamp = Usage::now().timestamp;
        let live = live_processes(&c.pids);
        usage.processes = Some(u32::try_from(live).unwrap_or(u32::MAX));
        usage.cpus_limit = mapping::cfs_quota_us(&c.limits, false)
            .map(|q| q as f64 / mapping::CFS_PERIOD_US as f64);
        usage.mem_limit_bytes = c.hard_limit;
        usage.mem_soft_limit_bytes = Some(mapping::mem_soft_bytes(&c.limits));
        Ok(usage)
    }

    fn limitation_now(&self, id: &ContainerId) -> Result<Option<Limitation>, IsolationError> {
        let mut state = self.enter(Call::Limitation(id.clone()), Op::Limitation, id.as_str())?;
        Ok(known(&mut state, id)?.limitation.clone())
    }

    fn cleanup_now(&self, id: &ContainerId) -> Result<(), IsolationError> {
        let mut state = self.enter(Call::Cleanup(id.clone()), Op::Cleanup, id.as_str())?;
        if let Some(c) = state.containers.remove(id) {
            for pid in c.pids.into_iter().filter(|p| alive(*p)) {
                crate::kill_tree(pid);
            }
        }
        Ok(())
    }
}

fn known<'s>(state: &'s mut State, id: &ContainerId) -> Result<&'s mut Container, IsolationError> {
    state
        .containers
        .get_mut(id)
        .ok_or_else(|| IsolationError::UnknownContainer(id.clone()))
}

/// A live (not zombie) process.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|st| st != "Z"))
        })
        .unwrap_or(false)
}

/// Live processes among `pids` and their descendants (what a cgroup would hold).
fn live_processes(pids: &[u32]) -> usize {
    let mut all: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
    for p in all.clone() {
        all.extend(crate::descendants(p).into_iter().filter(|d| alive(*d)));
    }
    all.sort_unstable();
    all.dedup();
    all.len()
}

impl Isolator for FakeIsolator {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn prepare<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        future::ready(self.prepare_now(id, limits)).boxed()
    }

    fn isolate<'a>(
        &'a self,
        id: &'a ContainerId,
        pid: u32,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        future::ready(self.isolate_now(id, pid)).boxed()
    }

    fn update<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        future::ready(self.update_now(id, limits)).boxed()
    }

    fn usage<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<Usage, IsolationError>> {
        future::ready(self.usage_now(id)).boxed()
    }

    fn limitation<'a>(
        &'a self,
        id: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<Limitation>, IsolationError>> {
        future::ready(self.limitation_now(id)).boxed()
    }

    fn cleanup<'a>(&'a self, id: &'a ContainerId) -> BoxFuture<'a, Result<(), IsolationError>> {
        future::ready(self.cleanup_now(id)).boxed()
    }

    fn recover(&self) -> BoxFuture<'_, Result<Vec<ContainerId>, IsolationError>> {
        let result = self
            .enter(Call::Recover, Op::Recover, "")
            .map(|state| state.containers.keys().cloned().collect());
        future::ready(result).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ContainerId {
        ContainerId::new(s).unwrap()
    }

    #[tokio::test]
    async fn records_calls_and_injects_failures() {
        let fake = FakeIsolator::new();
        let c1 = id("c1");
        let limits = Limits {
            cpus: 1.0,
            mem_mb: 64.0,
            ..Limits::default()
        };
        fake.fail_next(Op::Prepare, "disk on fire");
        let err = fake.prepare(&c1, &limits).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "injected failure in Prepare for container c1: disk on fire"
        );
        assert!(fake.containers().is_empty(), "a failed call has no effect");
        fake.prepare(&c1, &limits).await.unwrap();
        fake.fail_always(Op::Usage, "nope");
        assert!(fake.usage(&c1).await.is_err());
        assert!(fake.usage(&c1).await.is_err());
        fake.clear_failures();
        assert!(fake.usage(&c1).await.is_ok());
        fake.cleanup(&c1).await.unwrap();
        assert_eq!(
            fake.calls(),
            vec![
                Call::Prepare(c1.clone(), limits),
                Call::Prepare(c1.clone(), limits),
                Call::Usage(c1.clone()),
                Call::Usage(c1.clone()),
                Call::Usage(c1.clone()),
                Call::Cleanup(c1.clone()),
            ]
        );
    }

    #[tokio::test]
    async fn triggered_limitations_reach_watchers() {
        let fake = std::sync::Arc::new(FakeIsolator::new());
        let c1 = id("c1");
        fake.prepare(&c1, &Limits::default()).await.unwrap();
        let watcher = {
            let fake = fake.clone();
            let c1 = c1.clone();
            tokio::spawn(async move { fake.watch(&c1).await })
        };
        let l = crate::isolation::types::memory_limitation(Some(32 << 20), None);
        assert!(fake.trigger_limitation(&c1, l.clone()));
        assert_eq!(watcher.await.unwrap().unwrap(), l);
        assert!(!fake.trigger_limitation(&id("nope"), l));
    }
}
