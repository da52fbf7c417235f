//! `strata agents|frameworks|tasks|logs|kill`: read the master's endpoints and print
//! tables (or JSON with `--json`).

use crate::locate;
use crate::table::render;
use clap::Args;
use serde_json::{json, Value};
use std::io::Write;
use std::time::Duration;
use strata_transport::Client;

/// Options shared by the listing commands.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The master, `host:port`.
    #[arg(long, default_value = "127.0.0.1:5050", env = "STRATA_MASTER")]
    pub master: String,
    /// Print the master's JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `strata tasks` options.
#[derive(Debug, Args)]
pub struct TasksArgs {
    #[command(flatten)]
    pub q: QueryArgs,
    /// Include finished tasks.
    #[arg(long, short)]
    pub all: bool,
}

/// `strata logs` options.
#[derive(Debug, Args)]
pub struct LogsArgs {
    pub task: String,
    #[arg(long, default_value = "127.0.0.1:5050", env = "STRATA_MASTER")]
    pub master: String,
    /// Keep printing new output until the task ends.
    #[arg(long, short)]
    pub follow: bool,
    /// Print stderr instead of stdout.
    #[arg(long)]
    pub stderr: bool,
}

/// `strata kill` options.
#[derive(Debug, Args)]
pub struct KillArgs {
    pub task: String,
    #[arg(long, default_value = "127.0.0.1:5050", env = "STRATA_MASTER")]
    pub master: String,
}

fn num(v: &Value) -> String {
    let n = v.as_f64().unwrap_or(0.0);
    if n.fract() == 0.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.2}")
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

async fn fetch(master: &str, path: &str) -> anyhow::Result<Value> {
    Client::default()
        .get_json(&format!("http://{master}{path}"))
        .await
        .map_err(|e| {
            anyhow::anyhow!("{e}\n(is a master running at {master}? start one with `strata dev`)")
        })
}

fn print_json(v: &Value) -> anyhow::Result<i32> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(0)
}

pub async fn agents(a: QueryArgs) -> anyhow::Result<i32> {
    let v = fetch(&a.master, "/master/slaves").await?;
    if a.json {
        return print_json(&v);
    }
    let rows = v["slaves"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|x| {
            vec![
                s(&x["id"]),
                s(&x["hostname"]),
                locate::agent_address(x["pid"].as_str().unwrap_or("")).unwrap_or_default(),
                if x["active"] == true {
                    "yes".into()
                } else {
                    "no".into()
                },
                format!(
                    "{}/{}",
                    num(&x["used_resources"]["cpus"]),
                    num(&x["resources"]["cpus"])
                ),
                format!(
                    "{}/{}",
                    num(&x["used_resources"]["mem"]),
                    num(&x["resources"]["mem"])
                ),
            ]
        })
        .collect();
    println!(
        "{}",
        render(
            &["ID", "HOSTNAME", "ADDRESS", "ACTIVE", "CPUS", "MEM(MB)"],
            rows
        )
    );
    Ok(0)
}

pub async fn frameworks(a: QueryArgs) -> anyhow::Result<i32> {
    let v = fetch(&a.master, "/master/frameworks").await?;
    if a.json {
        return print_json(&v);
    }
    let rows = v["frameworks"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            vec![
                s(&f["id"]),
                s(&f["name"]),
                if f["active"] == true {
                    "yes".into()
                } else {
                    "no".into()
                },
                f["tasks"]
                    .as_array()
                    .map(|t| t.len())
                    .unwrap_or(0)
                    .to_string(),
                num(&f["used_resources"]["cpus"]),
                num(&f["used_resources"]["mem"]),
            ]
        })
        .collect();
    println!(
        "{}",
        render(&["ID", "NAME", "ACTIVE", "TASKS", "CPUS", "MEM(MB)"], rows)
    );
    Ok(0)
}

pub async fn tasks(a: TasksArgs) -> anyhow::Result<i32> {
    let v = fetch(&a.q.master, "/master/tasks?limit=-1&order=asc").await?;
    let list: Vec<Value> = v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| a.all || !is_terminal(t["state"].as_str().unwrap_or("")))
        .cloned()
        .collect();
    if a.q.json {
        return print_json(&json!({"tasks": list}));
    }
    let rows = list
        .iter()
        .map(|t| {
            vec![
                s(&t["id"]),
                s(&t["name"]),
                s(&t["state"]),
                s(&t["framework_id"]),
                s(&t["slave_id"]),
                num(&t["resources"]["cpus"]),
                num(&t["resources"]["mem"]),
                short(&s(&t["message"]), 60),
            ]
        })
        .collect();
    println!(
        "{}",
        render(
            &[
                "ID",
                "NAME",
                "STATE",
                "FRAMEWORK",
                "AGENT",
                "CPUS",
                "MEM(MB)",
                "MESSAGE"
            ],
            rows
        )
    );
    Ok(0)
}

/// Whether a state name is terminal.
pub fn is_terminal(state: &str) -> bool {
    strata_api::TaskState::from_name(state).is_some_and(|s| s.is_terminal())
}

fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

pub async fn logs(a: LogsArgs) -> anyhow::Result<i32> {
    let client = Client::default();
    let loc = match locate::task(&client, &a.master, &a.task).await {
        Ok(loc) => loc,
        Err(e) => return black_box(&client, &a, e).await,
    };
    let path = format!(
        "{}/{}",
        loc.directory,
        if a.stderr { "stderr" } else { "stdout" }
    );
    if locate::read_file(&client, &loc.agent, &path, 0)
        .await
        .is_err()
    {
        // The agent still lists the run but its sandbox was garbage-collected.
        return black_box(
            &client,
            &a,
            anyhow::anyhow!("the sandbox of {} is gone", a.task),
        )
        .await;
    }
    let mut offset = 0;
    let mut out = std::io::stdout();
    loop {
        let (data, next) = locate::read_file(&client, &loc.agent, &path, offset).await?;
        out.write_all(data.as_bytes())?;
        out.flush()?;
        let advanced = next != offset;
        offset = next;
        if !a.follow {
            if advanced && data.len() >= 65536 {
                continue;
            }
            return Ok(0);
        }
        if !advanced {
            let state = locate::task(&client, &a.master, &a.task)
                .await
                .map(|l| l.state)
                .unwrap_or_default();
            if is_terminal(&state) {
                let (rest, _) = locate::read_file(&client, &loc.agent, &path, offset).await?;
                out.write_all(rest.as_bytes())?;
                return Ok(0);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

pub async fn kill(a: KillArgs) -> anyhow::Result<i32> {
    let body = json!({"type": "KILL_TASK", "kill_task": {"task_id": {"value": a.task}}});
    let reply = Client::default()
        .post_json(&format!("http://{}/api/v1", a.master), &[], &body)
        .await?;
    if reply.status == 200 {
        println!("kill sent to task {}", a.task);
        Ok(0)
    } else {
        eprintln!("strata kill: {}", String::from_utf8_lossy(&reply.body));
        Ok(1)
    }
}

/// When the sandbox is gone, what the agent kept of the task: how it ended and the last
/// few KB of its output.
async fn black_box(client: &Client, a: &LogsArgs, why: anyhow::Error) -> anyhow::Result<i32> {
    let Ok((agent, framework_id)) = locate::task_agent(client, &a.master, &a.task).await else {
        return Err(why);
    };
    let url = format!(
        "http://{agent}/blackbox?task_id={}&framework_id={}",
        locate::encode(&a.task),
        locate::encode(&framework_id)
    );
    let records: Value = client.get_json(&url).await.map_err(|_| why)?;
    let Some(r) = records.as_array().and_then(|r| r.first()) else {
        anyhow::bail!(
            "task '{}' has neither a sandbox nor a black-box record on agent {agent}",
            a.task
        );
    };
    let mut facts = vec![format!("{}", s(&r["state"]))];
    for (k, label) in [
        ("exit_code", "exit code"),
        ("signal", "signal"),
        ("reason", "reason"),
        ("message", "message"),
    ] {
        if !r[k].is_null() {
            facts.push(format!("{label} {}", s(&r[k])));
        }
    }
    if r["oom"] == true {
        facts.push("killed for exceeding its memory".into());
    }
    eprintln!(
        "strata logs: the sandbox of {} is gone; its black box says: {}",
        a.task,
        facts.join(", ")
    );
    eprintln!(
        "strata logs: last bytes of {}:",
        if a.stderr { "stderr" } else { "stdout" }
    );
    print!(
        "{}",
        s(&r[if a.stderr {
            "stderr_tail"
        } else {
            "stdout_tail"
        }])
    );
    Ok(0)
}
