//! Resource sums the views share: what frameworks use and are offered, per agent.

use crate::master::Master;
use crate::state::FrameworkState;
use std::collections::BTreeMap;
use strata_api::AgentId;
use strata_resources::Resources;

/// Resources of a framework's custom executors (all agents).
pub fn executor_resources(fw: &FrameworkState) -> Resources {
    let mut total = Resources::new();
    for info in fw.executors.values().flat_map(|m| m.values()) {
        total += Resources::from_wire(&info.resources).unwrap_or_default();
    }
    total
}

/// What a framework's live tasks and executors use (a shared volume once per agent,
/// however many of its tasks use it).
pub fn framework_used(m: &Master, fw: &FrameworkState) -> Resources {
    let mut by_agent: BTreeMap<&AgentId, Resources> = BTreeMap::new();
    for (aid, execs) in &fw.executors {
        for info in execs.values() {
            *by_agent.entry(aid).or_default() +=
                Resources::from_wire(&info.resources).unwrap_or_default();
        }
    }
    for t in fw.tasks.values().filter(|t| !t.released) {
        *by_agent.entry(&t.agent_id).or_default() += t.resources.clone();
    }
    by_agent
        .into_iter()
        .fold(Resources::new(), |acc, (aid, used)| {
            match m.agents.get(aid) {
                Some(a) => acc + crate::shared_volumes::once_on(&used, &a.total),
                None => acc + used,
            }
        })
}

/// What all frameworks' live tasks and executors use on one agent (a shared volume once,
/// however many tasks use it).
pub fn used_on_agent(m: &Master, aid: &AgentId) -> Resources {
    let mut total = Resources::new();
    let Some(agent) = m.agents.get(aid) else {
        return total;
    };
    for (fid, tid) in &agent.tasks {
        if let Some(t) = m
            .frameworks
            .get(fid)
            .and_then(|f| f.tasks.get(tid))
            .filter(|t| !t.released)
        {
            total += t.resources.clone();
        }
    }
    for fw in m.frameworks.values() {
        for info in fw.executors.get(aid).into_iter().flat_map(|e| e.values()) {
            total += Resources::from_wire(&info.resources).unwrap_or_default();
        }
    }
    crate::shared_volumes::once_on(&total, &agent.total)
}

/// What is currently offered on one agent (a shared volume once, however many offers
/// hold it).
pub fn offered_on_agent(m: &Master, aid: &AgentId) -> Resources {
    let mut total = Resources::new();
    if let Some(agent) = m.agents.get(aid) {
        for id in &agent.offers {
            if let Some(o) = m.offers.get(id) {
                total += o.resources.clone();
            }
        }
        total = crate::shared_volumes::once_on(&total, &agent.total);
    }
    total
}
