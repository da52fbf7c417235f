//! `strata run -- CMD…`: a one-off task through a tiny built-in framework. It waits for an
//! offer that fits, launches the command, streams stdout/stderr, and exits with the task's
//! exit status.

use crate::locate;
use clap::Args;
use std::io::Write;
use std::path::Path;
use std::time::Duration;
use strata_api::scheduler::{Accept, Command, Decline, Event, Kill, Launch, Operation};
use strata_api::{
    CommandInfo, CommandUri, Filters, FrameworkInfo, Offer, TaskId, TaskInfo, TaskState, TaskStatus,
};
use strata_resources::{Resource, Resources, WireFormat};
use strata_sdk::Scheduler;
use strata_transport::Client;
use tokio::sync::watch;

/// `strata run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(long, default_value = "127.0.0.1:5050", env = "STRATA_MASTER")]
    pub master: String,
    /// CPUs for the task.
    #[arg(long, default_value_t = 0.1)]
    pub cpus: f64,
    /// Memory for the task, MB.
    #[arg(long, default_value_t = 64.0)]
    pub mem: f64,
    /// Task name (default: the command).
    #[arg(long)]
    pub name: Option<String>,
    /// The command; one argument is run by `sh -c`, several are quoted first.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The task's command: a local script named by a relative path is fetched into the
/// sandbox (the task runs there, not in the caller's directory).
fn command_for(args: &[String]) -> CommandInfo {
    let mut args = args.to_vec();
    let mut uris = Vec::new();
    if let Some(first) = args.first().cloned() {
        let p = Path::new(&first);
        if !p.is_absolute() && first.contains('/') && p.is_file() {
            if let (Ok(abs), Some(name)) = (p.canonicalize(), p.file_name()) {
                uris.push(CommandUri {
                    value: abs.display().to_string(),
                    executable: Some(true),
                    extract: false,
                    cache: None,
                    output_file: None,
                });
                args[0] = format!("./{}", name.to_string_lossy());
            }
        }
    }
    let value = if args.len() == 1 {
        args[0].clone()
    } else {
        args.iter()
            .map(|a| shell_quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut cmd = CommandInfo::shell(value);
    cmd.uris = uris;
    cmd
}

fn fits(offer: &Offer, need: &Resources) -> bool {
    Resources::from_wire(&offer.resources)
        .map(|r| r.cpus() >= need.cpus() && r.mem_mb() >= need.mem_mb())
        .unwrap_or(false)
}

fn exit_code(status: &TaskStatus) -> i32 {
    if status.state == TaskState::Finished {
        return 0;
    }
    let msg = status.message.as_deref().unwrap_or("");
    msg.strip_prefix("Command exited with status ")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(1)
}

pub async fn run(a: RunArgs) -> anyhow::Result<i32> {
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "root".into());
    let info: FrameworkInfo = serde_json::from_value(
        serde_json::json!({"user": user, "name": "strata-run", "failover_timeout": 0.0}),
    )?;
    let mut s = Scheduler::subscribe(&a.master, info).await.map_err(|e| {
        anyhow::anyhow!(
            "{e}\n(is a master running at {}? start one with `strata dev`)",
            a.master
        )
    })?;
    let task_id = TaskId::new(format!(
        "run-{}",
        &s.framework_id().as_str().rsplit('-').next().unwrap_or("0")
    ));
    let need = Resources::from_vec(vec![
        Resource::scalar("cpus", a.cpus),
        Resource::scalar("mem", a.mem),
    ]);
    let command = command_for(&a.command);
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| command.value.clone().unwrap_or_default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut launched = false;
    let mut streamer: Option<tokio::task::JoinHandle<()>> = None;
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    let mut waiting_note = Box::pin(tokio::time::sleep(std::time::Duration::from_secs(5)));
    let result = loop {
        let event = tokio::select! {
            e = s.next_event() => e?,
            _ = &mut waiting_note, if !launched => {
                eprintln!(
                    "strata run: still waiting for an offer with {} cpus and {} MB (see `strata agents`; other frameworks may hold the resources)",
                    a.cpus, a.mem
                );
                waiting_note.as_mut().reset(tokio::time::Instant::now() + std::time::Duration::from_secs(3600));
                continue;
            }
            _ = &mut ctrl_c, if launched => {
                eprintln!("strata run: killing task {task_id}");
                s.call(Command::Kill(Kill { task_id: task_id.clone(), agent_id: None, kill_policy: None })).await?;
                continue;
            }
        };
        let Some(event) = event else {
            anyhow::bail!("the master closed the event stream")
        };
        match event {
            Event::Offers(o) => {
                for offer in o.offers {
                    if !launched && fits(&offer, &need) {
                        launch(&s, &offer, &task_id, &name, &need, command.clone()).await?;
                        launched = true;
                        eprintln!("strata run: task {task_id} launched on {}", offer.hostname);
                    } else {
                        let filters = Some(Filters {
                            refuse_seconds: Some(if launched { 3600.0 } else { 1.0 }),
                        });
                        s.call(Command::Decline(Decline {
                            offer_ids: vec![offer.id],
                            filters,
                        }))
                        .await?;
                    }
                }
            }
            Event::Update(u) if u.status.task_id == task_id => {
                s.acknowledge(&u.status).await?;
                if streamer.is_none()
                    && matches!(u.status.state, TaskState::Starting | TaskState::Running)
                {
                    streamer = Some(tokio::spawn(stream_output(
                        a.master.clone(),
                        task_id.to_string(),
                        stop_rx.clone(),
                    )));
                }
                if u.status.state.is_terminal() {
                    break u.status;
                }
            }
            Event::Error(e) => anyhow::bail!("the master sent ERROR: {}", e.message),
            _ => {}
        }
    };
    let _ = stop_tx.send(true);
    if let Some(h) = streamer {
        let _ = h.await;
    }
    let _ = s.call(Command::Teardown).await;
    eprintln!(
        "strata run: task {task_id} {}{}",
        result.state,
        result
            .message
            .as_deref()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default()
    );
    Ok(exit_code(&result))
}

async fn launch(
    s: &Scheduler,
    offer: &Offer,
    id: &TaskId,
    name: &str,
    need: &Resources,
    command: CommandInfo,
) -> anyhow::Result<()> {
    let task = TaskInfo::command(
        name,
        id.clone(),
        offer.agent_id.clone(),
        need.to_wire(WireFormat::PreRefinement),
        command,
    );
    let op = Operation {
        kind: "LAUNCH".into(),
        id: None,
        launch: Some(Launch {
            task_infos: vec![task],
        }),
        launch_group: None,
        ..Default::default()
    };
    let accept = Accept {
        offer_ids: vec![offer.id.clone()],
        operations: vec![op],
        filters: Some(Filters {
            refuse_seconds: Some(3600.0),
        }),
    };
    s.call(Command::Accept(accept)).await?;
    Ok(())
}

/// Polls the sandbox's stdout and stderr until told to stop, then drains them.
async fn stream_output(master: String, task_id: String, mut stop: watch::Receiver<bool>) {
    let client = Client::default();
    let loc = loop {
        match locate::task(&client, &master, &task_id).await {
            Ok(l) => break l,
            Err(_) if !*stop.borrow() => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => {
                eprintln!("strata run: cannot read the task's output: {e}");
                return;
            }
        }
    };
    let (mut out_off, mut err_off) = (0u64, 0u64);
    loop {
        let finished = *stop.borrow();
        out_off = pump(&client, &loc, "stdout", out_off, &mut std::io::stdout()).await;
        err_off = pump(&client, &loc, "stderr", err_off, &mut std::io::stderr()).await;
        if finished {
            return;
        }
        tokio::select! {
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

async fn pump(
    client: &Client,
    loc: &locate::TaskLocation,
    file: &str,
    mut offset: u64,
    out: &mut impl Write,
) -> u64 {
    let path = format!("{}/{file}", loc.directory);
    loop {
        match locate::read_file(client, &loc.agent, &path, offset).await {
            Ok((data, next)) if !data.is_empty() => {
                let _ = out.write_all(data.as_bytes());
                let _ = out.flush();
                offset = next;
            }
            _ => return offset,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_quoted_for_the_shell() {
        assert_eq!(
            command_for(&["echo hi && ls".into()]).value.unwrap(),
            "echo hi && ls"
        );
        assert_eq!(
            command_for(&["echo".into(), "a b".into(), "it's".into()])
                .value
                .unwrap(),
            r#"echo 'a b' 'it'\''s'"#
        );
    }
}
