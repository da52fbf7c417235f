//! Sans-I/O bookkeeping of a scheduler session: which offers are outstanding and the
//! latest state of each task, updated from events.

use std::collections::BTreeMap;
use strata_api::scheduler::Event;
use strata_api::{FrameworkId, Offer, OfferId, TaskId, TaskStatus};

/// Why a session operation is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("offer {0} is not outstanding")]
    UnknownOffer(String),
}

/// Session state derived from events.
#[derive(Debug, Clone)]
pub struct Session {
    framework_id: FrameworkId,
    offers: BTreeMap<OfferId, Offer>,
    tasks: BTreeMap<TaskId, TaskStatus>,
}

impl Session {
    /// A session for a subscribed framework.
    pub fn new(framework_id: FrameworkId) -> Self {
        Self {
            framework_id,
            offers: BTreeMap::new(),
            tasks: BTreeMap::new(),
        }
    }

    /// The framework id.
    pub fn framework_id(&self) -> &FrameworkId {
        &self.framework_id
    }

    /// Updates the state from one event.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::Offers(o) => {
                for offer in &o.offers {
                    self.offers.insert(offer.id.clone(), offer.clone());
                }
            }
            Event::Rescind(r) => {
                self.offers.remove(&r.offer_id);
            }
            Event::Update(u) => {
                self.tasks
                    .insert(u.status.task_id.clone(), u.status.clone());
            }
            _ => {}
        }
    }

    /// Takes an offer out of the outstanding set (about to accept or decline it).
    pub fn take_offer(&mut self, id: &OfferId) -> Result<Offer, SessionError> {
        self.offers
            .remove(id)
            .ok_or_else(|| SessionError::UnknownOffer(id.to_string()))
    }

    /// Outstanding offers.
    pub fn offers(&self) -> impl Iterator<Item = &Offer> {
        self.offers.values()
    }

    /// Latest status of a task.
    pub fn task(&self, id: &TaskId) -> Option<&TaskStatus> {
        self.tasks.get(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::scheduler::{Offers, Rescind, Update};
    use strata_api::{AgentId, TaskState};

    fn offer(id: &str) -> Offer {
        serde_json::from_value(serde_json::json!({
            "id": {"value": id}, "framework_id": {"value": "f"}, "agent_id": {"value": "a"}, "hostname": "h"
        }))
        .unwrap()
    }

    #[test]
    fn tracks_offers_and_tasks() {
        let mut s = Session::new(FrameworkId::new("f"));
        s.observe(&Event::Offers(Offers {
            offers: vec![offer("o1"), offer("o2")],
        }));
        s.observe(&Event::Rescind(Rescind {
            offer_id: OfferId::new("o1"),
        }));
        assert_eq!(s.offers().count(), 1);
        assert!(s.take_offer(&OfferId::new("o1")).is_err());
        assert!(s.take_offer(&OfferId::new("o2")).is_ok());
        let mut st = TaskStatus::new(TaskId::new("t"), TaskState::Running);
        st.agent_id = Some(AgentId::new("a"));
        s.observe(&Event::Update(Update { status: st }));
        assert_eq!(
            s.task(&TaskId::new("t")).map(|t| t.state),
            Some(TaskState::Running)
        );
    }
}
