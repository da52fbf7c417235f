//! The no-isolation backend: containers run as plain processes with no enforced limits
//! (Mesos' `posix/cpu,posix/mem`). Used when cgroups are not asked for or not available;
//! the caller logs a warning in the latter case.

use super::{ContainerId, IsolationError, Isolator, Limitation, Limits, Usage};
use futures_util::future::{self, BoxFuture};
use futures_util::FutureExt;

/// Accepts every call and enforces nothing. It keeps no state, so it never reports
/// `UnknownContainer`; `usage` returns a timestamp only.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoIsolation;

impl Isolator for NoIsolation {
    fn name(&self) -> &'static str {
        "none"
    }

    fn prepare<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        future::ready(super::types::check_limits(id, limits)).boxed()
    }

    fn isolate<'a>(
        &'a self,
        _: &'a ContainerId,
        _: u32,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        future::ready(Ok(())).boxed()
    }

    fn update<'a>(
        &'a self,
        id: &'a ContainerId,
        limits: &'a Limits,
    ) -> BoxFuture<'a, Result<(), IsolationError>> {
        self.prepare(id, limits)
    }

    fn usage<'a>(&'a self, _: &'a ContainerId) -> BoxFuture<'a, Result<Usage, IsolationError>> {
        future::ready(Ok(Usage::now())).boxed()
    }

    fn limitation<'a>(
        &'a self,
        _: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Option<Limitation>, IsolationError>> {
        future::ready(Ok(None)).boxed()
    }

    /// Never resolves: nothing is limited.
    fn watch<'a>(
        &'a self,
        _: &'a ContainerId,
    ) -> BoxFuture<'a, Result<Limitation, IsolationError>> {
        future::pending().boxed()
    }

    fn cleanup<'a>(&'a self, _: &'a ContainerId) -> BoxFuture<'a, Result<(), IsolationError>> {
        future::ready(Ok(())).boxed()
    }

    fn recover(&self) -> BoxFuture<'_, Result<Vec<ContainerId>, IsolationError>> {
        future::ready(Ok(Vec::new())).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepts_everything_but_invalid_limits() {
        let iso = NoIsolation;
        let id = ContainerId::new("c1").unwrap();
        let limits = Limits {
            cpus: 1.0,
            mem_mb: 64.0,
            ..Limits::default()
        };
        iso.prepare(&id, &limits).await.unwrap();
        iso.isolate(&id, std::process::id()).await.unwrap();
        assert!(iso.usage(&id).await.unwrap().timestamp > 0.0);
        assert!(iso.limitation(&id).await.unwrap().is_none());
        iso.cleanup(&id).await.unwrap();
        let bad = Limits {
            cpus: f64::NAN,
            ..limits
        };
        assert!(matches!(
            iso.update(&id, &bad).await,
            Err(IsolationError::InvalidLimits { .. })
        ));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(10), iso.watch(&id))
                .await
                .is_err()
        );
    }
}
