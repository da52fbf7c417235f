//! Finding things through the master's endpoints: a task's agent and sandbox.

use anyhow::{anyhow, Context};
use serde_json::Value;
use strata_transport::Client;

/// Where a task runs and where its files are.
#[derive(Debug, Clone)]
pub struct TaskLocation {
    pub state: String,
    /// `ip:port` of the agent.
    pub agent: String,
    /// Host path of the executor sandbox (the task's sandbox for task-group tasks).
    pub directory: String,
}

/// The agent address in a legacy `pid` (`slave(1)@ip:port`).
pub fn agent_address(pid: &str) -> Option<String> {
    pid.split_once('@').map(|(_, a)| a.to_string())
}

/// Looks a task up in /master/tasks, its agent in /master/slaves, and its executor's
/// sandbox directory in the agent's /state.
pub async fn task(client: &Client, master: &str, task_id: &str) -> anyhow::Result<TaskLocation> {
    let tasks: Value = client
        .get_json(&format!(
            "http://{master}/master/tasks?limit=-1&task_id={task_id}"
        ))
        .await?;
    let task = tasks["tasks"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["id"] == task_id))
        .ok_or_else(|| {
            anyhow!("no task '{task_id}' is known to the master at {master}; see `strata tasks`")
        })?
        .clone();
    let slave_id = task["slave_id"].as_str().unwrap_or_default().to_string();
    let slaves: Value = client
        .get_json(&format!("http://{master}/master/slaves"))
        .await?;
    let agent = slaves["slaves"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == slave_id.as_str()))
        .and_then(|s| s["pid"].as_str())
        .and_then(agent_address)
        .ok_or_else(|| anyhow!("agent {slave_id} of task '{task_id}' is not registered"))?;
    let framework_id = task["framework_id"].as_str().unwrap_or_default();
    let executor_id = match task["executor_id"].as_str() {
        Some(e) if !e.is_empty() => e.to_string(),
        _ => task_id.to_string(),
    };
    let state: Value = client
        .get_json(&format!("http://{agent}/state"))
        .await
        .context("reading the agent's /state")?;
    let directory = find_directory(&state, framework_id, &executor_id, task_id)
        .ok_or_else(|| anyhow!("the agent at {agent} has no sandbox for task '{task_id}' (it may have been garbage-collected)"))?;
    Ok(TaskLocation {
        state: task["state"].as_str().unwrap_or("").to_string(),
        agent,
        directory,
    })
}

fn find_directory(state: &Value, fid: &str, eid: &str, tid: &str) -> Option<String> {
    let frameworks = state["frameworks"].as_array().into_iter().flatten().chain(
        state["completed_frameworks"]
            .as_array()
            .into_iter()
            .flatten(),
    );
    let mut found = None;
    for fw in frameworks.filter(|f| f["id"] == fid) {
        let executors = fw["executors"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(fw["completed_executors"].as_array().into_iter().flatten());
        for ex in executors.filter(|e| e["id"] == eid) {
            if let Some(dir) = ex["directory"].as_str() {
                let group = ex["type"] == "DEFAULT";
                found = Some(if group {
                    format!("{dir}/tasks/{tid}")
                } else {
                    dir.to_string()
                });
            }
        }
    }
    found
}

/// The agent (`ip:port`) and framework of a task, from the master.
pub async fn task_agent(
    client: &Client,
    master: &str,
    task_id: &str,
) -> anyhow::Result<(String, String)> {
    let tasks: Value = client
        .get_json(&format!(
            "http://{master}/master/tasks?limit=-1&task_id={}",
            encode(task_id)
        ))
        .await?;
    let task = tasks["tasks"]
        .as_array()
        .and_then(|a| a.iter().find(|t| t["id"] == task_id))
        .ok_or_else(|| anyhow!("no task '{task_id}' is known to the master at {master}"))?;
    let slave_id = task["slave_id"].as_str().unwrap_or_default();
    let slaves: Value = client
        .get_json(&format!("http://{master}/master/slaves"))
        .await?;
    let agent = slaves["slaves"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["id"] == slave_id))
        .and_then(|s| s["pid"].as_str())
        .and_then(agent_address)
        .ok_or_else(|| anyhow!("agent {slave_id} of task '{task_id}' is not registered"))?;
    Ok((
        agent,
        task["framework_id"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    ))
}

/// Reads a sandbox file from `offset`; returns the text and the next offset.
pub async fn read_file(
    client: &Client,
    agent: &str,
    path: &str,
    offset: u64,
) -> anyhow::Result<(String, u64)> {
    let url = format!(
        "http://{agent}/files/read?path={}&offset={offset}&length=65536",
        encode(path)
    );
    let v: Value = client.get_json(&url).await?;
    let data = v["data"].as_str().unwrap_or_default().to_string();
    let start = v["offset"].as_u64().unwrap_or(offset);
    let next = start + data.len() as u64;
    Ok((data, next))
}

/// Percent-encodes a query value.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
