//! Per-container resource usage: `/monitor/statistics` (Mesos' legacy shape), the
//! operator call GET_CONTAINERS, and the totals added to `/metrics/snapshot`.

use super::{json_response, text, App};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Map, Value};
use strata_containerizer::isolation::{ContainerId as IsoId, Usage};

/// `ResourceStatistics` JSON (Mesos field names; unmeasured fields omitted).
pub fn statistics_json(u: &Usage) -> Value {
    let mut m = Map::new();
    m.insert("timestamp".into(), json!(u.timestamp));
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("processes", u.processes.map(|v| json!(v)));
    put("threads", u.threads.map(|v| json!(v)));
    put(
        "cpus_user_time_secs",
        u.cpus_user_time_secs.map(|v| json!(v)),
    );
    put(
        "cpus_system_time_secs",
        u.cpus_system_time_secs.map(|v| json!(v)),
    );
    put("cpus_limit", u.cpus_limit.map(|v| json!(v)));
    put("cpus_nr_periods", u.cpus_nr_periods.map(|v| json!(v)));
    put("cpus_nr_throttled", u.cpus_nr_throttled.map(|v| json!(v)));
    put(
        "cpus_throttled_time_secs",
        u.cpus_throttled_time_secs.map(|v| json!(v)),
    );
    put("mem_total_bytes", u.mem_total_bytes.map(|v| json!(v)));
    put("mem_limit_bytes", u.mem_limit_bytes.map(|v| json!(v)));
    put(
        "mem_soft_limit_bytes",
        u.mem_soft_limit_bytes.map(|v| json!(v)),
    );
    put("mem_cache_bytes", u.mem_cache_bytes.map(|v| json!(v)));
    put("mem_rss_bytes", u.mem_rss_bytes.map(|v| json!(v)));
    put(
        "mem_mapped_file_bytes",
        u.mem_mapped_file_bytes.map(|v| json!(v)),
    );
    put("mem_swap_bytes", u.mem_swap_bytes.map(|v| json!(v)));
    put(
        "mem_unevictable_bytes",
        u.mem_unevictable_bytes.map(|v| json!(v)),
    );
    Value::Object(m)
}

/// One running container with its usage.
pub struct ContainerUsage {
    pub framework_id: String,
    pub executor_id: String,
    pub executor_name: String,
    pub source: String,
    pub container_id: String,
    pub usage: Usage,
}

/// Usage of every running container (containers the isolator cannot measure get an
/// empty statistics object with a timestamp, as unisolated Mesos containers do).
pub async fn collect(app: &App) -> Option<Vec<ContainerUsage>> {
    let containers = app.handle.read(|a, _| a.containers()).await?;
    let mut out = Vec::new();
    for (fid, eid, name, source, cid) in containers {
        let usage = match IsoId::new(cid.as_str()) {
            Ok(id) => app
                .isolator
                .usage(&id)
                .await
                .unwrap_or_else(|_| Usage::now()),
            Err(_) => Usage::now(),
        };
        out.push(ContainerUsage {
            framework_id: fid.to_string(),
            executor_id: eid.to_string(),
            executor_name: name,
            source,
            container_id: cid.to_string(),
            usage,
        });
    }
    Some(out)
}

pub async fn statistics(State(app): State<App>) -> Response {
    let Some(list) = collect(&app).await else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "Agent is shutting down");
    };
    let v: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({"framework_id": c.framework_id, "executor_id": c.executor_id, "executor_name": c.executor_name,
                   "source": c.source, "container_id": c.container_id, "statistics": statistics_json(&c.usage)})
        })
        .collect();
    json_response(&Value::Array(v))
}

/// The GET_CONTAINERS body.
pub fn get_containers(list: &[ContainerUsage]) -> Value {
    let containers: Vec<Value> = list
        .iter()
        .map(|c| {
            json!({"framework_id": {"value": c.framework_id}, "executor_id": {"value": c.executor_id},
                   "executor_name": c.executor_name, "container_id": {"value": c.container_id},
                   "container_status": {"container_id": {"value": c.container_id}},
                   "resource_statistics": statistics_json(&c.usage)})
        })
        .collect();
    json!({"containers": containers})
}

/// Totals over all containers for `/metrics/snapshot`.
pub fn totals(list: &[ContainerUsage]) -> Vec<(&'static str, f64)> {
    let sum = |f: fn(&Usage) -> Option<f64>| list.iter().filter_map(|c| f(&c.usage)).sum::<f64>();
    vec![
        ("containers/count", list.len() as f64),
        (
            "containers/cpus_user_time_secs",
            sum(|u| u.cpus_user_time_secs),
        ),
        (
            "containers/cpus_system_time_secs",
            sum(|u| u.cpus_system_time_secs),
        ),
        (
            "containers/cpus_nr_throttled",
            sum(|u| u.cpus_nr_throttled.map(f64::from)),
        ),
        (
            "containers/cpus_throttled_time_secs",
            sum(|u| u.cpus_throttled_time_secs),
        ),
        (
            "containers/mem_rss_bytes",
            sum(|u| u.mem_rss_bytes.map(|v| v as f64)),
        ),
        (
            "containers/mem_total_bytes",
            sum(|u| u.mem_total_bytes.map(|v| v as f64)),
        ),
    ]
}
