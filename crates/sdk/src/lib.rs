//! A Rust client for the v1 scheduler API, used by Strata's own frameworks (`strata run`,
//! `strata bench`): subscribe, receive events, send calls, acknowledge updates.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod session;

pub use session::{Session, SessionError};

use strata_api::scheduler::{Acknowledge, Call, Command, Event, Subscribe};
use strata_api::{FrameworkId, FrameworkInfo, TaskStatus};
use strata_transport::{Client, EventStream};

/// A subscribed framework: the event stream plus a handle for calls.
#[derive(Debug)]
pub struct Scheduler {
    events: EventStream,
    pub session: Session,
    caller: Caller,
}

/// Sends calls for a subscribed framework. Cheap to clone and `Send + Sync`, so calls can
/// be made from other tasks while one task reads the events.
#[derive(Debug, Clone)]
pub struct Caller {
    client: Client,
    url: String,
    stream_id: String,
    framework_id: FrameworkId,
}

impl Caller {
    /// Sends a call (framework id and stream id added); any non-2xx status is an error.
    pub async fn call(&self, body: Command) -> Result<(), SchedulerError> {
        let call = Call {
            framework_id: Some(self.framework_id.clone()),
            body,
        };
        self.client
            .call(
                &self.url,
                &[("Mesos-Stream-Id", self.stream_id.as_str())],
                &call,
            )
            .await?;
        Ok(())
    }

    /// Acknowledges an update if it carries a uuid.
    pub async fn acknowledge(&self, status: &TaskStatus) -> Result<(), SchedulerError> {
        let (Some(uuid), Some(agent_id)) = (status.uuid.clone(), status.agent_id.clone()) else {
            return Ok(());
        };
        self.call(Command::Acknowledge(Acknowledge {
            agent_id,
            task_id: status.task_id.clone(),
            uuid,
        }))
        .await
    }
}

/// Why the scheduler client failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error(transparent)]
    Transport(#[from] strata_transport::TransportError),
    #[error("the master did not send SUBSCRIBED first (got {0})")]
    NoSubscribed(String),
    #[error("the master answered SUBSCRIBE without a Mesos-Stream-Id header")]
    NoStreamId,
    #[error("the master sent ERROR: {0}")]
    Error(String),
}

impl Scheduler {
    /// Subscribes to `master` (`host:port`) and waits for SUBSCRIBED.
    pub async fn subscribe(master: &str, info: FrameworkInfo) -> Result<Self, SchedulerError> {
        let client = Client::default();
        let url = format!("http://{master}/api/v1/scheduler");
        let call = Call {
            framework_id: info.id.clone(),
            body: Command::Subscribe(Subscribe {
                framework_info: info,
                suppressed_roles: vec![],
                offer_constraints: None,
            }),
        };
        let mut events = client.stream(&url, &[], &call).await?;
        let stream_id = events
            .header("mesos-stream-id")
            .ok_or(SchedulerError::NoStreamId)?;
        let first: Option<Event> = events.next().await?;
        let framework_id = match first {
            Some(Event::Subscribed(s)) => s.framework_id,
            Some(Event::Error(e)) => return Err(SchedulerError::Error(e.message)),
            other => return Err(SchedulerError::NoSubscribed(format!("{other:?}"))),
        };
        let caller = Caller {
            client,
            url,
            stream_id,
            framework_id: framework_id.clone(),
        };
        Ok(Self {
            events,
            session: Session::new(framework_id),
            caller,
        })
    }

    /// The framework id the master assigned.
    pub fn framework_id(&self) -> &FrameworkId {
        self.session.framework_id()
    }

    /// The next event; `Ok(None)` when the master closed the stream. HEARTBEATs are skipped.
    pub async fn next_event(&mut self) -> Result<Option<Event>, SchedulerError> {
        loop {
            match self.events.next::<Event>().await? {
                Some(Event::Heartbeat) => continue,
                other => return Ok(other),
            }
        }
    }

    /// A handle for calls that can move to other tasks.
    pub fn caller(&self) -> Caller {
        self.caller.clone()
    }

    /// Sends a call (framework id and stream id added); any non-2xx status is an error.
    pub async fn call(&self, body: Command) -> Result<(), SchedulerError> {
        self.caller.call(body).await
    }

    /// Acknowledges an update if it carries a uuid.
    pub async fn acknowledge(&self, status: &TaskStatus) -> Result<(), SchedulerError> {
        self.caller.acknowledge(status).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}
    fn assert_sync<T: Sync>() {}

    #[test]
    fn scheduler_and_its_futures_can_cross_tasks() {
        assert_sync::<Scheduler>();
        assert_sync::<Caller>();
        // Compile-time checks only: the futures are built, never polled.
        fn futures_are_send(s: &mut Scheduler) {
            assert_send(&s.call(Command::Teardown));
            assert_send(&s.next_event());
        }
        let _ = futures_are_send;
    }
}
