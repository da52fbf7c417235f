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
    client: Client,
    url: String,
    stream_id: String,
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
        Ok(Self {
            events,
            session: Session::new(framework_id),
            client,
            url,
            stream_id,
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

    /// Sends a call (framework id and stream id added); any non-2xx status is an error.
    pub async fn call(&self, body: Command) -> Result<(), SchedulerError> {
        let call = Call {
            framework_id: Some(self.framework_id().clone()),
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
