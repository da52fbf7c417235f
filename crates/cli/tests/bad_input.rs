//! Bad input against a real master and agent: every documented 4xx comes back with a
//! message, asynchronous errors arrive as status updates, sandbox files stay confined, and
//! afterwards the cluster still works (no panic, no lost or corrupted state).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};
use strata_testkit::{wait_until, Cluster};
use strata_transport::{Client, EventStream, Reply};

/// Deadline for anything a test waits for (generous: CI machines are small and noisy).
const WAIT: Duration = Duration::from_secs(30);

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_strata"))
}

/// POSTs `body` with exactly the given Content-Type (none if `None`) and headers.
async fn post(
    url: &str,
    content_type: Option<&str>,
    headers: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(url);
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.body(body).send().await.expect("an HTTP answer");
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap_or_default())
}

async fn post_json(url: &str, headers: &[(&str, &str)], body: &Value) -> (u16, String) {
    post(url, Some("application/json"), headers, body.to_string()).await
}

fn subscribe_body(extra: Value) -> Value {
    let mut info = json!({"user": strata_testkit::current_user(), "name": "it-bad-input"});
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        info[k] = v;
    }
    json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}})
}

// ----- a framework speaking raw JSON -------------------------------------------------------

/// A framework on the raw v1 JSON API: it sees events exactly as sent and may send any call.
struct RawFw {
    client: Client,
    url: String,
    events: EventStream,
    stream_id: String,
    fid: String,
    seen: Vec<Value>,
}

impl RawFw {
    async fn subscribe(c: &Cluster, extra: Value) -> Self {
        let client = Client::default();
        let url = format!("http://{}/api/v1/scheduler", c.master.addr);
        let mut events = client
            .stream(&url, &[], &subscribe_body(extra))
            .await
            .unwrap();
        let stream_id = events.header("mesos-stream-id").expect("Mesos-Stream-Id");
        let first: Value = events.next().await.unwrap().unwrap();
        assert_eq!(first["type"], "SUBSCRIBED", "{first}");
        let fid = first["subscribed"]["framework_id"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        Self {
            client,
            url,
            events,
            stream_id,
            fid,
            seen: Vec::new(),
        }
    }

    /// Sends `call` with this framework's id and stream id.
    async fn call(&self, mut call: Value) -> Reply {
        call["framework_id"] = json!({"value": self.fid});
        let headers = [("Mesos-Stream-Id", self.stream_id.as_str())];
        self.client
            .post_json(&self.url, &headers, &call)
            .await
            .unwrap()
    }

    /// Reads events until `f` finds something among those seen; acknowledges updates
    /// that carry a uuid.
    async fn until(&mut self, what: &str, mut f: impl FnMut(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(e) = self.seen.iter().find(|e| f(e)) {
                return e.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let e: Value = match tokio::time::timeout(left, self.events.next()).await {
                Ok(e) => e.unwrap().expect("the master closed the stream"),
                Err(_) => panic!("timed out waiting for {what}; seen: {:?}", self.seen),
            };
            let status = &e["update"]["status"];
            if e["type"] == "UPDATE" && status.get("uuid").is_some() {
                let ack = json!({"type": "ACKNOWLEDGE", "acknowledge": {
                    "agent_id": status["agent_id"], "task_id": status["task_id"], "uuid": status["uuid"]}});
                assert_eq!(self.call(ack).await.status, 202);
            }
            if e["type"] != "HEARTBEAT" {
                self.seen.push(e);
            }
        }
    }

    /// An update for `task` in `state`: the status object.
    async fn update(&mut self, task: &str, state: &str) -> Value {
        let e = self
            .until(&format!("{task} {state}"), |e| {
                let s = &e["update"]["status"];
                s["task_id"]["value"] == task && s["state"] == state
            })
            .await;
        e["update"]["status"].clone()
    }

    async fn offer(&mut self) -> Value {
        let e = self.until("an offer", |e| e["type"] == "OFFERS").await;
        e["offers"]["offers"][0].clone()
    }

    async fn accept(&self, offer_id: Value, tasks: Vec<Value>) {
        let call = json!({"type": "ACCEPT", "accept": {"offer_ids": [offer_id],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
            "filters": {"refuse_seconds": 0.0}}});
        let r = self.call(call).await;
        assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    }
}

fn task(id: &str, agent_id: &Value, cpus: f64, cmd: &str) -> Value {
    json!({"name": id, "task_id": {"value": id}, "agent_id": agent_id,
           "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
                         {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}}],
           "command": {"value": cmd}})
}

// ----- after the abuse ------------------------------------------------------------------

fn alive(pid: Option<u32>) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.expect("running")));
    // Field 3 is the state; an exited child we have not reaped is a zombie ('Z').
    stat.ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_string())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}

/// The master still serves its state with the agent active, a new framework still runs a
/// task, and neither daemon died. `frameworks` are closed first (failover_timeout 0: they
/// are removed), so the offers they hold go back to the allocator.
async fn assert_still_healthy(c: &Cluster, frameworks: Vec<RawFw>) {
    drop(frameworks);
    let state = c.get("/master/state").await.expect("/master/state");
    assert_eq!(state["activated_slaves"], 1, "{state}");
    let (code, out, err) = c.cli(&["run", "--", "echo", "still-ok"]).await;
    assert_eq!((code, out.trim()), (0, "still-ok"), "stderr: {err}");
    assert!(alive(c.master.proc.pid()), "the master process died");
    assert!(alive(c.agents[0].proc.pid()), "the agent process died");
}

// ----- the scheduler API -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn scheduler_api_rejects_bad_calls_synchronously() {
    let c = Cluster::start(bin(), 1).await;
    let url = format!("http://{}/api/v1/scheduler", c.master.addr);
    let sub = subscribe_body(json!({})).to_string();

    let (status, _) = post(&url, None, &[], sub.clone()).await;
    assert_eq!(status, 400, "no Content-Type");
    let (status, _) = post(&url, Some("text/plain"), &[], sub.clone()).await;
    assert_eq!(status, 415, "text/plain");
    let (status, _) = post(&url, Some("application/x-protobuf"), &[], sub.clone()).await;
    assert_eq!(status, 415, "protobuf");
    let (status, msg) = post(&url, Some("application/json"), &[], "{\"type\":").await;
    assert_eq!(status, 400, "malformed JSON");
    assert!(msg.contains("Failed to parse"), "{msg}");
    let (status, msg) = post_json(&url, &[], &json!({"framework_id": {"value": "f"}})).await;
    assert_eq!(status, 400, "missing type: {msg}");
    assert!(msg.contains("'type'"), "{msg}");
    let accept = json!({"type": "ACCEPT", "framework_id": {"value": "f"}});
    let (status, msg) = post_json(&url, &[], &accept).await;
    assert_eq!(status, 400);
    assert!(msg.contains("Expecting 'accept' to be present"), "{msg}");
    let headers = [("Mesos-Stream-Id", "3b1c7fa2-0000-0000-0000-000000000000")];
    let (status, msg) = post_json(&url, &headers, &subscribe_body(json!({}))).await;
    assert_eq!(status, 400, "SUBSCRIBE with a stream id: {msg}");
    let mut differs = subscribe_body(json!({"id": {"value": "b"}}));
    differs["framework_id"] = json!({"value": "a"});
    let (status, msg) = post_json(&url, &[], &differs).await;
    assert_eq!(status, 400);
    assert!(msg.contains("differs"), "{msg}");

    let fw = RawFw::subscribe(&c, json!({})).await;
    let revive = json!({"type": "REVIVE", "framework_id": {"value": fw.fid}});
    let (status, msg) = post_json(&url, &[], &revive).await;
    assert_eq!(status, 400, "no stream id: {msg}");
    let (status, msg) = post_json(&url, &headers, &revive).await;
    assert_eq!(status, 400, "wrong stream id: {msg}");
    assert_eq!(fw.call(json!({"type": "REVIVE"})).await.status, 202);
    let unknown = json!({"type": "REVIVE", "framework_id": {"value": "no-such-framework"}});
    let (status, msg) = post_json(&url, &headers, &unknown).await;
    assert_eq!(status, 400);
    assert!(msg.contains("Framework cannot be found"), "{msg}");

    let resp = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 405, "GET on the scheduler API");
    let (status, _) = post(&url, Some("application/json"), &[], vec![b' '; 9 << 20]).await;
    assert_eq!(status, 413, "a body over 8 MiB");

    // Invalid FrameworkInfo: 200, one ERROR event, then the stream ends.
    let bad = subscribe_body(json!({"role": "web", "capabilities": [{"type": "MULTI_ROLE"}]}));
    let mut events = fw.client.stream(&url, &[], &bad).await.unwrap();
    let e: Value = events.next().await.unwrap().expect("an ERROR event");
    assert_eq!(e["type"], "ERROR", "{e}");
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("MULTI_ROLE"), "{message}");
    let end = tokio::time::timeout(WAIT, events.next::<Value>()).await;
    assert!(matches!(end, Ok(Ok(None))), "stream must close: {end:?}");
    drop(fw);

    // A framework whose stream closed but which still exists (failover_timeout > 0): 403.
    let gone = RawFw::subscribe(&c, json!({"failover_timeout": 3600.0})).await;
    let (fid, stream_id) = (gone.fid.clone(), gone.stream_id.clone());
    drop(gone);
    wait_until(WAIT, "the framework to disconnect", async || {
        let v = c
            .get(&format!("/master/frameworks?framework_id={fid}"))
            .await
            .ok()?;
        (v["frameworks"][0]["connected"] == false).then_some(())
    })
    .await;
    let revive = json!({"type": "REVIVE", "framework_id": {"value": fid}});
    let (status, msg) = post_json(&url, &[("Mesos-Stream-Id", &stream_id)], &revive).await;
    assert_eq!(status, 403, "{msg}");
    assert!(msg.contains("not subscribed"), "{msg}");

    assert_still_healthy(&c, vec![]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_launches_come_back_as_task_updates() {
    let c = Cluster::start(bin(), 1).await;
    let mut fw = RawFw::subscribe(&c, json!({})).await;
    let agent = json!({"value": "some-agent"});
    fw.accept(
        json!({"value": "no-such-offer"}),
        vec![task("lost-1", &agent, 0.1, "true")],
    )
    .await;
    let s = fw.update("lost-1", "TASK_LOST").await;
    assert_eq!(s["reason"], "REASON_INVALID_OFFERS", "{s}");
    assert_eq!(s["source"], "SOURCE_MASTER", "{s}");
    assert!(
        s.get("uuid").is_none(),
        "master-made updates carry no uuid: {s}"
    );

    let offer = fw.offer().await;
    let aid = offer["agent_id"].clone();
    let tasks = vec![
        task("too-big", &aid, 100.0, "true"),
        task("dup", &aid, 0.1, "true"),
        task("dup", &aid, 0.1, "true"),
        task("bad/id", &aid, 0.1, "true"),
    ];
    fw.accept(offer["id"].clone(), tasks).await;
    let s = fw.update("too-big", "TASK_ERROR").await;
    assert_eq!(s["reason"], "REASON_TASK_INVALID", "{s}");
    assert!(
        s["message"]
            .as_str()
            .unwrap()
            .contains("more than available"),
        "{s}"
    );
    let s = fw.update("dup", "TASK_ERROR").await;
    assert!(
        s["message"].as_str().unwrap().contains("duplicate ID"),
        "{s}"
    );
    let s = fw.update("bad/id", "TASK_ERROR").await;
    assert_eq!(s["reason"], "REASON_TASK_INVALID", "{s}");
    fw.update("dup", "TASK_FINISHED").await;

    let mut aware =
        RawFw::subscribe(&c, json!({"capabilities": [{"type": "PARTITION_AWARE"}]})).await;
    aware
        .accept(
            json!({"value": "no-such-offer"}),
            vec![task("dropped-1", &agent, 0.1, "true")],
        )
        .await;
    let s = aware.update("dropped-1", "TASK_DROPPED").await;
    assert_eq!(s["reason"], "REASON_INVALID_OFFERS", "{s}");
    assert!(s.get("uuid").is_none(), "{s}");

    assert_still_healthy(&c, vec![fw, aware]).await;
}

// ----- operator API, agent link, executor API ---------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn operator_agent_link_and_executor_api_reject_bad_calls() {
    let c = Cluster::start(bin(), 1).await;
    let m = &c.master.addr;
    let operator = format!("http://{m}/api/v1");
    let (status, msg) = post_json(&operator, &[], &json!({"type": "UNKNOWN"})).await;
    assert_eq!(status, 501, "{msg}");
    let (status, msg) = post(&operator, Some("application/json"), &[], "{nope").await;
    assert_eq!(status, 400, "{msg}");
    let teardown = json!({"type": "TEARDOWN", "teardown": {"framework_id": {"value": "nope"}}});
    let (status, msg) = post_json(&operator, &[], &teardown).await;
    assert_eq!(status, 400, "{msg}");

    let message = format!("http://{m}{}", strata_api::agent_link::MESSAGE_PATH);
    let session = [(strata_api::agent_link::SESSION_HEADER, "bogus-session")];
    let (status, msg) = post_json(&message, &session, &json!({"type": "PONG"})).await;
    assert_eq!(status, 409, "{msg}");
    let connect = format!("http://{m}{}", strata_api::agent_link::CONNECT_PATH);
    let (status, msg) = post_json(&connect, &[], &json!({"protocol": 1})).await;
    assert_eq!(status, 400, "{msg}");
    let (status, msg) = post(&connect, Some("application/json"), &[], "not json").await;
    assert_eq!(status, 400, "{msg}");

    let executor = format!("http://{}/api/v1/executor", c.agents[0].addr);
    let update = json!({"type": "UPDATE", "framework_id": {"value": "nope"},
        "executor_id": {"value": "nope"}, "update": {"status": {"task_id": {"value": "t"},
        "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR", "uuid": "AAAAAAAAAAAAAAAAAAAAAA=="}}});
    let (status, msg) = post_json(&executor, &[], &update).await;
    assert_eq!(status, 400, "{msg}");
    let (status, msg) = post(&executor, Some("application/json"), &[], "[").await;
    assert_eq!(status, 400, "{msg}");

    assert_still_healthy(&c, vec![]).await;
}

// ----- sandbox files ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn files_endpoints_stay_inside_sandboxes() {
    let c = Cluster::start(bin(), 1).await;
    let files = |q: &str| format!("http://{}/files/{q}", c.agents[0].addr);
    let get = async |q: &str| {
        let r = c.client.get(&files(q)).await.unwrap();
        (r.status, r.body)
    };
    assert_eq!(get("read").await.0, 400, "no path");
    assert_eq!(get("read?path=").await.0, 400, "empty path");
    assert_eq!(get("read?path=/etc/passwd").await.0, 404);

    let mut fw = RawFw::subscribe(&c, json!({})).await;
    let offer = fw.offer().await;
    let cmd = "ln -s /etc/passwd evil && echo hello-files && echo oops >&2";
    fw.accept(
        offer["id"].clone(),
        vec![task("files", &offer["agent_id"], 0.1, cmd)],
    )
    .await;
    fw.update("files", "TASK_FINISHED").await;
    let fid = fw.fid.clone();
    let dir = wait_until(WAIT, "the task's sandbox", async || {
        let state = c.agent_get(0, "/state").await.ok()?;
        let fws = ["frameworks", "completed_frameworks"]
            .iter()
            .flat_map(|k| state[k].as_array().cloned().unwrap_or_default());
        fws.filter(|f| f["id"] == fid.as_str())
            .flat_map(|f| {
                let ex = ["executors", "completed_executors"];
                ex.iter()
                    .flat_map(|k| f[k].as_array().cloned().unwrap_or_default())
                    .collect::<Vec<_>>()
            })
            .find(|e| e["id"] == "files")?["directory"]
            .as_str()
            .map(str::to_string)
    })
    .await;

    for escape in [
        format!("{dir}/../../../../../../../../../../etc/passwd"),
        format!("{dir}/evil"),
        format!("/frameworks/{fid}/executors/files/runs/latest/../../../../../../../etc/passwd"),
    ] {
        for op in ["read", "download", "browse"] {
            let (status, body) = get(&format!(
                "{op}?path={}",
                strata_testkit::url_encode(&escape)
            ))
            .await;
            assert_eq!(
                status,
                404,
                "{op} {escape}: {}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    let stdout = strata_testkit::url_encode(&format!("{dir}/stdout"));
    let (status, body) = get(&format!("read?path={stdout}&offset=0")).await;
    assert_eq!(status, 200);
    let whole: Value = serde_json::from_slice(&body).unwrap();
    let text = whole["data"].as_str().unwrap().to_string();
    let at = text.find("hello-files").expect("the task's output");
    let (_, body) = get(&format!("read?path={stdout}&offset={}&length=5", at + 6)).await;
    let part: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(part, json!({"data": "files", "offset": at + 6}));
    let (_, body) = get(&format!("read?path={stdout}&offset=-1")).await;
    let size: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(size, json!({"data": "", "offset": text.len()}));
    let (status, raw) = get(&format!("download?path={stdout}")).await;
    assert_eq!(status, 200);
    assert_eq!(raw, text.as_bytes(), "download returns the raw bytes");
    let virtual_path = strata_testkit::url_encode(&format!(
        "/frameworks/{fid}/executors/files/runs/latest/stdout"
    ));
    let (status, raw) = get(&format!("download?path={virtual_path}")).await;
    assert_eq!((status, raw.as_ref()), (200, text.as_bytes()));

    let (status, body) = get(&format!("browse?path={}", strata_testkit::url_encode(&dir))).await;
    assert_eq!(status, 200);
    let listing: Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["path"].as_str()?.rsplit('/').next())
        .collect();
    for name in ["stdout", "stderr"] {
        assert!(names.contains(&name), "{name} not in {names:?}");
    }

    assert_still_healthy(&c, vec![fw]).await;
}
