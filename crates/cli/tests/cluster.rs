//! A real master and agents (separate `strata` processes on loopback) running real tasks:
//! registration, the endpoints tools scrape, the operator API and its event stream, the
//! `strata` CLI, and a framework written with the Rust SDK (multi-task ACCEPT, custom and
//! default executors, environment, URIs, argv, kill with grace, two agents).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};
use strata_api::scheduler::{Accept, Command, Event, Failure, Kill};
use strata_api::{FrameworkInfo, Offer, TaskId, TaskState, TaskStatus};
use strata_sdk::Scheduler;
use strata_testkit::{wait_until, Cluster};
use strata_transport::Client;

/// Deadline for anything a test waits for (generous: CI machines are small and noisy).
const WAIT: Duration = Duration::from_secs(30);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_strata"))
}

// ----- a framework through the SDK ---------------------------------------------------

/// A subscribed SDK framework that records what it saw and acknowledges every update.
struct Fw {
    s: Scheduler,
    offers: Vec<Offer>,
    updates: Vec<TaskStatus>,
    failures: Vec<Failure>,
    first_event: Option<&'static str>,
}

impl Fw {
    async fn subscribe(master: &str, extra: Value) -> Self {
        let mut info = json!({"user": strata_testkit::current_user(), "name": "it-sdk", "failover_timeout": 0.0});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            info[k] = v;
        }
        let info: FrameworkInfo = serde_json::from_value(info).expect("valid FrameworkInfo");
        let s = Scheduler::subscribe(master, info).await.expect("subscribe");
        Self {
            s,
            offers: Vec::new(),
            updates: Vec::new(),
            failures: Vec::new(),
            first_event: None,
        }
    }

    fn id(&self) -> String {
        self.s.framework_id().to_string()
    }

    /// Reads one event (HEARTBEATs skipped), records it and acknowledges updates.
    async fn next(&mut self, deadline: Instant, what: &str) {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = match tokio::time::timeout(left, self.s.next_event()).await {
            Ok(e) => e
                .expect("event stream")
                .expect("the master closed the stream"),
            Err(_) => panic!("timed out waiting for {what}; updates: {:?}", self.updates),
        };
        self.first_event.get_or_insert(match &event {
            Event::Offers(_) => "OFFERS",
            _ => "other",
        });
        match event {
            Event::Offers(o) => self.offers.extend(o.offers),
            Event::Rescind(r) => self.offers.retain(|o| o.id != r.offer_id),
            Event::Update(u) => {
                self.s.acknowledge(&u.status).await.expect("ACKNOWLEDGE");
                self.updates.push(u.status);
            }
            Event::Failure(f) => self.failures.push(f),
            Event::Error(e) => panic!("the master sent ERROR: {}", e.message),
            _ => {}
        }
    }

    /// Reads events until `f` finds what it looks for in the recorded state.
    async fn until<T>(&mut self, what: &str, mut f: impl FnMut(&Self) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            self.next(deadline, what).await;
        }
    }

    /// Takes an outstanding offer (waiting for one).
    async fn offer(&mut self) -> Offer {
        self.until("an offer", |f| (!f.offers.is_empty()).then_some(()))
            .await;
        self.offers.remove(0)
    }

    /// The task's terminal status.
    async fn terminal(&mut self, task: &str) -> TaskStatus {
        self.until(&format!("task {task} to end"), |f| {
            f.updates
                .iter()
                .find(|s| s.task_id.as_str() == task && s.state.is_terminal())
                .cloned()
        })
        .await
    }

    /// Waits until the task reached `state`.
    async fn reach(&mut self, task: &str, state: TaskState) -> TaskStatus {
        self.until(&format!("task {task} to reach {state}"), |f| {
            f.updates
                .iter()
                .find(|s| s.task_id.as_str() == task && s.state == state)
                .cloned()
        })
        .await
    }

    /// ACCEPT `offer` with `operations` (JSON); unused resources come back at once.
    async fn accept(&self, offer: &Offer, operations: Value) {
        let accept: Accept = serde_json::from_value(json!({
            "offer_ids": [offer.id], "operations": operations, "filters": {"refuse_seconds": 0.0}
        }))
        .expect("valid ACCEPT");
        self.s.call(Command::Accept(accept)).await.expect("ACCEPT");
    }
}

fn resources(cpus: f64, mem: f64) -> Value {
    json!([
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
    ])
}

/// A TaskInfo on the offer's agent with 0.1 cpus and 32 MB; `body` adds `command` or
/// `executor`.
fn task(id: &str, offer: &Offer, body: Value) -> Value {
    let mut t = json!({"name": id, "task_id": {"value": id}, "agent_id": offer.agent_id,
                       "resources": resources(0.1, 32.0)});
    for (k, v) in body.as_object().cloned().unwrap_or_default() {
        t[k] = v;
    }
    t
}

fn sh(cmd: &str) -> Value {
    json!({"command": {"value": cmd}})
}

fn launch(tasks: Vec<Value>) -> Value {
    json!({"type": "LAUNCH", "launch": {"task_infos": tasks}})
}

// ----- sandboxes -----------------------------------------------------------------------

/// The sandbox of executor `eid` of framework `fid` on agent `i` (live or completed).
async fn sandbox(c: &Cluster, i: usize, fid: &str, eid: &str) -> String {
    wait_until(WAIT, &format!("sandbox of executor {eid}"), async || {
        let state = c.agent_get(i, "/state").await.ok()?;
        let fws = ["frameworks", "completed_frameworks"]
            .iter()
            .flat_map(|k| state[k].as_array().cloned().unwrap_or_default());
        fws.filter(|f| f["id"] == fid)
            .flat_map(|f| {
                ["executors", "completed_executors"]
                    .iter()
                    .flat_map(|k| f[k].as_array().cloned().unwrap_or_default())
                    .collect::<Vec<_>>()
            })
            .find(|e| e["id"] == eid)?["directory"]
            .as_str()
            .map(str::to_string)
    })
    .await
}

/// Waits until a sandbox file on agent `i` contains `needle`; returns its text.
async fn file_containing(c: &Cluster, i: usize, path: &str, needle: &str) -> String {
    let url = format!(
        "/files/read?path={}&offset=0",
        strata_testkit::url_encode(path)
    );
    wait_until(WAIT, &format!("{path} to contain {needle:?}"), async || {
        let v = c.agent_get(i, &url).await.ok()?;
        let data = v["data"].as_str()?.to_string();
        data.contains(needle).then_some(data)
    })
    .await
}

// ----- 1. registration -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn agent_registers_with_its_resources_and_attributes() {
    let c = Cluster::start_with(bin(), 1, &[], &["--attributes", "rack:r1;zone:a"]).await;
    let slaves = c.get("/master/slaves").await.unwrap();
    let list = slaves["slaves"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{slaves}");
    let s = &list[0];
    assert_eq!(s["resources"]["cpus"], 4.0);
    assert_eq!(s["resources"]["mem"], 4096.0);
    assert_eq!(s["resources"]["disk"], 10000.0);
    assert_eq!(s["resources"]["ports"], "[31000-31999]");
    assert_eq!(s["attributes"], json!({"rack": "r1", "zone": "a"}));
    assert_eq!(s["pid"], format!("slave(1)@{}", c.agents[0].addr));
    assert_eq!(s["active"], true);
    let id = s["id"].as_str().unwrap();

    let state = c.get("/master/state").await.unwrap();
    assert_eq!(state["activated_slaves"], 1, "{state}");
    // The master lists the agent before the agent has read its REGISTERED message.
    for path in ["/state", "/slave(1)/state"] {
        wait_until(WAIT, &format!("agent {path} to show id {id}"), async || {
            let agent = c.agent_get(0, path).await.ok()?;
            (agent["id"] == id).then_some(())
        })
        .await;
    }
}

// ----- 2. endpoints tools scrape ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn scraped_endpoints_answer_like_mesos() {
    let c = Cluster::start(bin(), 1).await;
    let m = &c.master.addr;
    let version = c.get("/version").await.unwrap();
    let v = version["version"].as_str().unwrap();
    assert!(
        !v.is_empty() && v.chars().all(|ch| ch.is_ascii_digit() || ch == '.'),
        "pymesos parses the version with int(): {v}"
    );
    for path in ["/health", "/master/health"] {
        let r = c.client.get(&format!("http://{m}{path}")).await.unwrap();
        assert_eq!(r.status, 200, "{path}");
    }
    let metrics = c.get("/metrics/snapshot").await.unwrap();
    assert_eq!(metrics["master/slaves_active"], 1.0, "{metrics}");
    assert_eq!(metrics["master/cpus_total"], 4.0);
    assert_eq!(metrics["master/elected"], 1.0);
    assert!(metrics["allocator/mesos/allocation_runs"].is_number());
    wait_until(WAIT, "agent metric slave/registered=1", async || {
        let agent_metrics = c.agent_get(0, "/metrics/snapshot").await.ok()?;
        (agent_metrics["slave/registered"] == 1.0).then_some(())
    })
    .await;
    for path in [
        "/master/state.json",
        "/state",
        "/master/frameworks/",
        "/tasks?order=asc&limit=-1",
    ] {
        let r = c.client.get(&format!("http://{m}{path}")).await.unwrap();
        assert_eq!(r.status, 200, "{path}");
        let v: Value = serde_json::from_slice(&r.body).expect(path);
        assert!(v.is_object(), "{path}: {v}");
    }
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap();
    let r = no_follow
        .get(format!("http://{m}/master/redirect"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    let location = r.headers()["location"].to_str().unwrap();
    let port = m.rsplit(':').next().unwrap();
    assert!(
        location.starts_with("//") && location.ends_with(&format!(":{port}")),
        "{location}"
    );
}

// ----- 3. operator API -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn operator_api_reads_and_event_stream() {
    let c = Cluster::start(bin(), 1).await;
    let agent_id = c.wait_agent_registered(0).await;
    let client = Client::default();
    for path in ["/api/v1", "/api/v1/operator"] {
        let url = format!("http://{}{path}", c.master.addr);
        for kind in [
            "GET_HEALTH",
            "GET_VERSION",
            "GET_FLAGS",
            "GET_METRICS",
            "GET_STATE",
            "GET_AGENTS",
            "GET_FRAMEWORKS",
            "GET_TASKS",
            "GET_ROLES",
            "GET_MASTER",
        ] {
            let r = client.post_json(&url, &[], &json!({"type": kind})).await;
            let r = r.unwrap();
            assert_eq!(r.status, 200, "{path} {kind}");
            let v: Value = r.json(&url).unwrap();
            assert_eq!(v["type"], kind);
            let body = &v[kind.to_ascii_lowercase()];
            assert!(body.is_object(), "{kind}: {v}");
            check_operator_body(kind, body, &agent_id);
        }
    }

    let url = format!("http://{}/api/v1", c.master.addr);
    let mut events = client
        .stream(&url, &[], &json!({"type": "SUBSCRIBE"}))
        .await
        .unwrap();
    let first: Value = events.next().await.unwrap().unwrap();
    assert_eq!(first["type"], "SUBSCRIBED", "{first}");
    let agents = &first["subscribed"]["get_state"]["get_agents"]["agents"];
    assert_eq!(agents[0]["agent_info"]["id"]["value"], agent_id.as_str());

    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offer = fw.offer().await;
    fw.accept(
        &offer,
        json!([launch(vec![task("op-t", &offer, sh("true"))])]),
    )
    .await;
    assert_eq!(fw.terminal("op-t").await.state, TaskState::Finished);

    let (mut added, mut finished) = (false, false);
    let deadline = Instant::now() + WAIT;
    while !(added && finished) {
        let left = deadline.saturating_duration_since(Instant::now());
        let e: Value = tokio::time::timeout(left, events.next())
            .await
            .expect("TASK_ADDED and TASK_UPDATED events")
            .unwrap()
            .expect("operator stream open");
        match e["type"].as_str() {
            Some("TASK_ADDED") => {
                assert_eq!(e["task_added"]["task"]["task_id"]["value"], "op-t", "{e}");
                added = true;
            }
            Some("TASK_UPDATED") => {
                let u = &e["task_updated"];
                assert_eq!(u["status"]["task_id"]["value"], "op-t", "{e}");
                assert_eq!(u["framework_id"]["value"], fw.id().as_str());
                assert!(added, "TASK_UPDATED before TASK_ADDED: {e}");
                finished |= u["state"] == "TASK_FINISHED";
            }
            _ => {}
        }
    }
}

fn check_operator_body(kind: &str, body: &Value, agent_id: &str) {
    let has = |list: &Value, name: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|x| x["name"] == name))
    };
    match kind {
        "GET_HEALTH" => assert_eq!(body["healthy"], true),
        "GET_VERSION" => assert_eq!(body["version_info"]["version"], "1.12.0"),
        "GET_FLAGS" => assert!(has(&body["flags"], "work_dir"), "{body}"),
        "GET_METRICS" => assert!(has(&body["metrics"], "master/elected"), "{body}"),
        "GET_STATE" => assert!(body["get_agents"]["agents"].is_array(), "{body}"),
        "GET_AGENTS" => {
            assert_eq!(body["agents"][0]["agent_info"]["id"]["value"], agent_id);
            assert_eq!(body["agents"][0]["active"], true);
        }
        "GET_FRAMEWORKS" => assert!(body["frameworks"].is_array(), "{body}"),
        "GET_TASKS" => assert!(body["tasks"].is_array(), "{body}"),
        "GET_ROLES" => assert!(body["roles"].is_array(), "{body}"),
        "GET_MASTER" => assert!(body["master_info"]["id"].is_string(), "{body}"),
        _ => unreachable!("{kind}"),
    }
}

// ----- 4. the CLI ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn cli_run_exit_codes_output_and_scripts() {
    let c = Cluster::start(bin(), 1).await;
    let (code, out, err) = c
        .cli(&["run", "--", "sh", "-c", "echo out; echo err >&2; exit 7"])
        .await;
    assert_eq!(code, 7, "stdout: {out}\nstderr: {err}");
    assert!(out.contains("out"), "stdout: {out}");
    assert!(!out.contains("err"), "stderr leaked into stdout: {out}");
    assert!(err.contains("err"), "stderr: {err}");

    let (code, out, err) = c.cli(&["run", "--", "echo", "hello"]).await;
    assert_eq!((code, out.trim()), (0, "hello"), "stderr: {err}");

    let dir = c.dir.path().join("cwd");
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho from-script \"$(pwd)\"\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let run = tokio::process::Command::new(bin())
        .args(["run", "--", "./script.sh"])
        .current_dir(&dir)
        .env("STRATA_MASTER", &c.master.addr)
        .kill_on_drop(true)
        .output();
    let run = tokio::time::timeout(WAIT, run)
        .await
        .expect("strata run ./script.sh to finish")
        .unwrap();
    let out = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(out.contains("from-script"), "stdout: {out}");
    assert!(
        !out.contains(&dir.display().to_string()),
        "the script ran in the caller's directory, not its sandbox: {out}"
    );

    let (code, out, _) = c.cli(&["tasks", "--all", "--json"]).await;
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    let states: BTreeSet<(String, String)> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // The exact name of the `sh -c …` task depends on how `strata run` quotes it.
    let failed = |(n, s): &(String, String)| n.starts_with("sh -c") && s == "TASK_FAILED";
    assert!(states.iter().any(failed), "{states:?}");
    for expected in [
        ("echo hello", "TASK_FINISHED"),
        ("./script.sh", "TASK_FINISHED"),
    ] {
        let e = (expected.0.to_string(), expected.1.to_string());
        assert!(states.contains(&e), "{expected:?} not in {states:?}");
    }
    assert_eq!(states.len(), 3, "{states:?}");
    let hello = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "echo hello")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, out, err) = c.cli(&["logs", &hello]).await;
    assert_eq!((code, out.trim()), (0, "hello"), "stderr: {err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn cli_listings_and_kill() {
    let c = Cluster::start(bin(), 1).await;
    let agent_id = c.wait_agent_registered(0).await;
    let mut run = tokio::process::Command::new(bin())
        .args(["run", "--", "sleep", "600"])
        .env("STRATA_MASTER", &c.master.addr)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let task = wait_until(WAIT, "the sleep task to run", async || {
        let v = c.get("/master/tasks").await.ok()?;
        let t = v["tasks"]
            .as_array()?
            .iter()
            .find(|t| t["name"] == "sleep 600")?
            .clone();
        (t["state"] == "TASK_RUNNING").then(|| t["id"].as_str().unwrap().to_string())
    })
    .await;

    let (code, out, _) = c.cli(&["tasks"]).await;
    assert_eq!(code, 0);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "ID",
            "NAME",
            "STATE",
            "FRAMEWORK",
            "AGENT",
            "CPUS",
            "MEM(MB)",
            "MESSAGE"
        ]
    );
    assert!(out.contains(&task) && out.contains("TASK_RUNNING"), "{out}");
    let (code, out, _) = c.cli(&["agents"]).await;
    assert_eq!(code, 0);
    assert!(
        out.trim_start().starts_with("ID") && out.contains(&agent_id),
        "{out}"
    );
    assert!(out.contains(&c.agents[0].addr), "{out}");
    let (code, out, _) = c.cli(&["frameworks"]).await;
    assert_eq!(code, 0);
    assert!(
        out.trim_start().starts_with("ID") && out.contains("strata-run"),
        "{out}"
    );

    let (code, out, err) = c.cli(&["kill", &task]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let status = tokio::time::timeout(WAIT, run.wait())
        .await
        .expect("strata run to end after the kill")
        .unwrap();
    assert_ne!(status.code(), Some(0), "a killed task must not exit 0");
    assert_eq!(c.task_state(&task).await.as_deref(), Some("TASK_KILLED"));

    // No master at all: a clear message and exit 1.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let master = format!("127.0.0.1:{port}");
    let (code, _, err) = c
        .cli(&["run", "--master", &master, "--", "echo", "x"])
        .await;
    assert_eq!(code, 1, "stderr: {err}");
    assert!(
        err.contains(&master) && err.contains("is a master running"),
        "{err}"
    );
}

// ----- 5. a framework through the SDK ---------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn sdk_framework_launches_five_tasks_in_one_accept() {
    let c = Cluster::start(bin(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offer = fw.offer().await;
    assert_eq!(fw.first_event, Some("OFFERS"), "SUBSCRIBED, then offers");
    let ids: Vec<String> = (0..5).map(|i| format!("t{i}")).collect();
    let mk = |id: &String| task(id, &offer, sh(&format!("echo {id}")));
    let ops = json!([
        launch(ids[..3].iter().map(mk).collect()),
        launch(ids[3..].iter().map(mk).collect()),
    ]);
    fw.accept(&offer, ops).await;
    for id in &ids {
        let s = fw.terminal(id).await;
        assert_eq!(s.state, TaskState::Finished, "{s:?}");
        assert!(s.uuid.is_some(), "executor updates need an ack: {s:?}");
    }
    // Every update was acknowledged: the master moved all five to completed_tasks.
    let fid = fw.id();
    wait_until(WAIT, "all five tasks completed", async || {
        let v = c
            .get(&format!("/master/frameworks?framework_id={fid}"))
            .await
            .ok()?;
        let f = &v["frameworks"][0];
        let done = f["completed_tasks"].as_array()?;
        (f["tasks"].as_array()?.is_empty() && done.len() == 5).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_executor_that_just_exits_fails_its_task() {
    let c = Cluster::start(bin(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offer = fw.offer().await;
    let executor = json!({"executor": {
        "executor_id": {"value": "not-an-executor"},
        "command": {"value": "exit 0"},
        "resources": resources(0.1, 32.0),
    }});
    fw.accept(&offer, json!([launch(vec![task("ce", &offer, executor)])]))
        .await;
    let s = fw.terminal("ce").await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert_eq!(
        s.reason.map(|r| r.as_str()),
        Some("REASON_EXECUTOR_TERMINATED")
    );
    let f = fw
        .until("FAILURE for the executor", |f| f.failures.first().cloned())
        .await;
    assert_eq!(
        f.executor_id.as_ref().map(|e| e.as_str()),
        Some("not-an-executor")
    );
    assert_eq!(f.agent_id.as_ref(), Some(&offer.agent_id));
    assert_eq!(f.status, Some(0), "raw wait status of `exit 0`");
}

#[tokio::test(flavor = "multi_thread")]
async fn command_environment_uris_and_argv_reach_the_task() {
    let c = Cluster::start(bin(), 1).await;
    let data = c.dir.path().join("data.txt");
    std::fs::write(&data, "fetched-content\n").unwrap();
    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offer = fw.offer().await;
    let env = json!({"command": {"value": "echo \"FOO=$FOO\"",
        "environment": {"variables": [{"name": "FOO", "value": "bar baz"}]}}});
    let uri = json!({"command": {"value": "cat data.txt",
        "uris": [{"value": data.display().to_string(), "extract": false}]}});
    let argv = json!({"command": {"shell": false, "value": "/bin/echo",
        "arguments": ["echo", "a b"]}});
    let tasks = vec![
        task("env", &offer, env),
        task("uri", &offer, uri),
        task("argv", &offer, argv),
    ];
    fw.accept(&offer, json!([launch(tasks)])).await;
    for id in ["env", "uri", "argv"] {
        let s = fw.terminal(id).await;
        assert_eq!(s.state, TaskState::Finished, "{s:?}");
    }
    let fid = fw.id();
    let dir = sandbox(&c, 0, &fid, "env").await;
    file_containing(&c, 0, &format!("{dir}/stdout"), "FOO=bar baz").await;
    let dir = sandbox(&c, 0, &fid, "argv").await;
    let out = file_containing(&c, 0, &format!("{dir}/stdout"), "a b").await;
    assert!(!out.contains("echo a b"), "argv[0] printed: {out}");

    let dir = sandbox(&c, 0, &fid, "uri").await;
    file_containing(&c, 0, &format!("{dir}/stdout"), "fetched-content").await;
    let listing = c
        .agent_get(
            0,
            &format!("/files/browse?path={}", strata_testkit::url_encode(&dir)),
        )
        .await
        .unwrap();
    let fetched = listing
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == format!("{dir}/data.txt"))
        .unwrap_or_else(|| panic!("data.txt not in the sandbox: {listing}"));
    assert_eq!(fetched["size"], 16);
    assert!(
        fetched["mode"].as_str().unwrap().starts_with("-rw"),
        "{fetched}"
    );
}

// ----- 6. kill with grace --------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn kill_sends_sigterm_first() {
    let c = Cluster::start(bin(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offer = fw.offer().await;
    let cmd = "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.1; done";
    fw.accept(
        &offer,
        json!([launch(vec![task("graceful", &offer, sh(cmd))])]),
    )
    .await;
    fw.reach("graceful", TaskState::Running).await;
    let dir = sandbox(&c, 0, &fw.id(), "graceful").await;
    let stdout = format!("{dir}/stdout");
    file_containing(&c, 0, &stdout, "ready").await;
    let kill = Kill {
        task_id: TaskId::new("graceful"),
        agent_id: None,
        kill_policy: None,
    };
    fw.s.call(Command::Kill(kill)).await.unwrap();
    let s = fw.terminal("graceful").await;
    assert_eq!(s.state, TaskState::Killed, "{s:?}");
    file_containing(&c, 0, &stdout, "got-term").await;
}

// ----- 7. task groups on the default executor ------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn failing_task_in_a_group_kills_the_rest() {
    let c = Cluster::start(bin(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offer = fw.offer().await;
    let group = json!({"type": "LAUNCH_GROUP", "launch_group": {
        "executor": {"type": "DEFAULT", "executor_id": {"value": "grp"},
                     "resources": resources(0.1, 32.0)},
        "task_group": {"tasks": [
            task("g-sleep", &offer, sh("sleep 600")),
            task("g-fail", &offer, sh("exit 1")),
        ]},
    }});
    fw.accept(&offer, json!([group])).await;
    let failed = fw.terminal("g-fail").await;
    assert_eq!(failed.state, TaskState::Failed, "{failed:?}");
    let killed = fw.terminal("g-sleep").await;
    assert_eq!(killed.state, TaskState::Killed, "{killed:?}");
}

/// A task of a pod with `cmd` and a `SANDBOX_PATH` volume of the executor's `shared`
/// directory at `data` in its own sandbox.
fn pod_task(id: &str, offer: &Offer, cmd: &str, container_path: &str) -> Value {
    let mut t = task(id, offer, sh(cmd));
    t["container"] = json!({"type": "MESOS", "volumes": [{
        "mode": "RW", "container_path": container_path,
        "source": {"type": "SANDBOX_PATH", "sandbox_path": {"type": "PARENT", "path": "shared"}},
    }]});
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn pod_tasks_share_a_sandbox_volume() {
    let c = Cluster::start(bin(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offer = fw.offer().await;
    // The reader starts with the writer and waits for what the writer leaves in the volume.
    let writer = "echo from-writer > data/msg; sleep 600";
    let reader = "for i in $(seq 300); do [ -s data/msg ] && break; sleep 0.1; done; \
                  grep -q from-writer data/msg && echo \"reader saw $(cat data/msg)\"";
    let group = json!({"type": "LAUNCH_GROUP", "launch_group": {
        "executor": {"type": "DEFAULT", "executor_id": {"value": "pod"},
                     "resources": resources(0.1, 32.0)},
        "task_group": {"tasks": [
            pod_task("pod-writer", &offer, writer, "data"),
            pod_task("pod-reader", &offer, reader, "data"),
        ]},
    }});
    fw.accept(&offer, json!([group])).await;
    let done = fw.terminal("pod-reader").await;
    assert_eq!(done.state, TaskState::Finished, "{done:?}");
    let dir = sandbox(&c, 0, &fw.id(), "pod").await;
    file_containing(&c, 0, &format!("{dir}/shared/msg"), "from-writer").await;
    file_containing(
        &c,
        0,
        &format!("{dir}/tasks/pod-reader/stdout"),
        "reader saw from-writer",
    )
    .await;
    // The group's other task is still running: a finished task does not end the pod.
    fw.reach("pod-writer", TaskState::Running).await;
    let kill = Kill {
        task_id: TaskId::new("pod-writer"),
        agent_id: None,
        kill_policy: None,
    };
    fw.s.call(Command::Kill(kill)).await.unwrap();
    assert_eq!(fw.terminal("pod-writer").await.state, TaskState::Killed);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pod_volume_outside_the_sandbox_fails_the_task() {
    let c = Cluster::start(bin(), 1).await;
    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offer = fw.offer().await;
    let group = json!({"type": "LAUNCH_GROUP", "launch_group": {
        "executor": {"type": "DEFAULT", "executor_id": {"value": "bad-pod"},
                     "resources": resources(0.1, 32.0)},
        "task_group": {"tasks": [pod_task("escape", &offer, "true", "../../escape")]},
    }});
    fw.accept(&offer, json!([group])).await;
    let s = fw.terminal("escape").await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert!(
        s.message
            .as_deref()
            .unwrap_or("")
            .contains("container_path"),
        "{s:?}"
    );
}

// ----- 8. two agents ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn tasks_spread_over_two_agents() {
    let c = Cluster::start(bin(), 2).await;
    let mut fw = Fw::subscribe(&c.master.addr, json!({})).await;
    let offers = fw
        .until("offers from both agents", |f| {
            let agents: BTreeSet<_> = f.offers.iter().map(|o| o.agent_id.clone()).collect();
            (agents.len() == 2).then(|| {
                agents
                    .iter()
                    .map(|a| f.offers.iter().find(|o| &o.agent_id == a).unwrap().clone())
                    .collect::<Vec<_>>()
            })
        })
        .await;
    for (i, offer) in offers.iter().enumerate() {
        let id = format!("spread-{i}");
        fw.accept(offer, json!([launch(vec![task(&id, offer, sh("true"))])]))
            .await;
    }
    let mut agents = BTreeSet::new();
    for i in 0..offers.len() {
        let s = fw.terminal(&format!("spread-{i}")).await;
        assert_eq!(s.state, TaskState::Finished, "{s:?}");
        agents.insert(s.agent_id.unwrap());
    }
    assert_eq!(agents.len(), 2, "both agents ran a task");
}
