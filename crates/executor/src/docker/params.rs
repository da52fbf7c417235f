//! `DockerInfo.parameters`: Mesos passes each `{key, value}` to `docker run` as
//! `--key=value`; Strata talks to the Engine API instead, so it maps the common options
//! onto container settings and rejects every other key (the task fails with a message
//! listing the supported ones). As in Mesos, the first `net`/`network` replaces the
//! network mode. Pure.

use super::spec::{DockerRun, PlanError};
use std::collections::BTreeMap;
use strata_api::container::Parameter;

/// Supported keys (`docker run` long option names); `e`, `l`, `u`, `w`, `h`, `v` and
/// `dns-opt` are accepted as aliases.
pub const SUPPORTED: &[&str] = &[
    "add-host",
    "cap-add",
    "cap-drop",
    "dns",
    "dns-option",
    "dns-search",
    "entrypoint",
    "env",
    "hostname",
    "init",
    "label",
    "log-driver",
    "log-opt",
    "memory-reservation",
    "memory-swap",
    "net",
    "network",
    "oom-kill-disable",
    "oom-score-adj",
    "pids-limit",
    "privileged",
    "read-only",
    "security-opt",
    "shm-size",
    "sysctl",
    "tmpfs",
    "ulimit",
    "user",
    "volume",
    "workdir",
];

/// Container settings that only parameters set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParamOptions {
    pub user: Option<String>,
    pub working_dir: Option<String>,
    pub memory_swap_bytes: Option<i64>,
    pub extra_hosts: Vec<String>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    pub shm_size_bytes: Option<i64>,
    pub init: Option<bool>,
    pub read_only: Option<bool>,
    pub pids_limit: Option<i64>,
    pub security_opt: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub tmpfs: BTreeMap<String, String>,
    /// `(name, soft, hard)`.
    pub ulimits: Vec<(String, i64, i64)>,
    pub log_driver: Option<String>,
    pub log_opts: BTreeMap<String, String>,
    pub oom_score_adj: Option<i64>,
    pub oom_kill_disable: Option<bool>,
}

/// Applies `params` in order to `run` (and `env`, whose later entries win).
pub fn apply(
    params: &[Parameter],
    run: &mut DockerRun,
    env: &mut Vec<(String, String)>,
) -> Result<(), PlanError> {
    let mut network_set = false;
    for p in params {
        let key = canonical(&p.key);
        if key == "net" || key == "network" {
            if !network_set {
                run.network = p.value.clone();
                network_set = true;
            }
            continue;
        }
        apply_one(key, p, run, env)?;
    }
    Ok(())
}

fn canonical(key: &str) -> &str {
    let key = key.trim_start_matches('-');
    match key {
        "e" => "env",
        "l" => "label",
        "u" => "user",
        "w" => "workdir",
        "h" => "hostname",
        "v" => "volume",
        "dns-opt" => "dns-option",
        other => other,
    }
}

fn apply_one(
    key: &str,
    p: &Parameter,
    run: &mut DockerRun,
    env: &mut Vec<(String, String)>,
) -> Result<(), PlanError> {
    let bad = |why: &str| PlanError::BadParameter {
        key: p.key.clone(),
        value: p.value.clone(),
        why: why.to_string(),
    };
    let v = p.value.clone();
    let o = &mut run.options;
    match key {
        "env" => env.push(pair(&v).ok_or_else(|| bad("expected NAME=value"))?),
        "label" => {
            let (k, val) = pair(&v).unwrap_or((v.clone(), String::new()));
            if k.starts_with("strata.") {
                return Err(bad("labels under 'strata.' are set by Strata"));
            }
            run.labels.insert(k, val);
        }
        "user" => o.user = Some(v),
        "workdir" => o.working_dir = Some(v),
        "hostname" => run.hostname = Some(v),
        "entrypoint" => run.entrypoint = Some(vec![v]),
        "volume" => run.binds.push(v),
        "privileged" => run.privileged = parse_bool(&v).ok_or_else(|| bad("expected a bool"))?,
        "memory-swap" => {
            o.memory_swap_bytes = Some(size(&v).ok_or_else(|| bad("expected a size"))?)
        }
        "memory-reservation" => {
            let bytes = size(&v).ok_or_else(|| bad("expected a size"))?;
            run.limits.memory_reservation_bytes = Some(bytes);
        }
        "shm-size" => o.shm_size_bytes = Some(size(&v).ok_or_else(|| bad("expected a size"))?),
        "add-host" => o.extra_hosts.push(v),
        "cap-add" => o.cap_add.push(v),
        "cap-drop" => o.cap_drop.push(v),
        "dns" => o.dns.push(v),
        "dns-search" => o.dns_search.push(v),
        "dns-option" => o.dns_options.push(v),
        "security-opt" => o.security_opt.push(v),
        "init" => o.init = Some(parse_bool(&v).ok_or_else(|| bad("expected a bool"))?),
        "read-only" => o.read_only = Some(parse_bool(&v).ok_or_else(|| bad("expected a bool"))?),
        "oom-kill-disable" => {
            o.oom_kill_disable = Some(parse_bool(&v).ok_or_else(|| bad("expected a bool"))?)
        }
        "pids-limit" => o.pids_limit = Some(v.parse().map_err(|_| bad("expected an integer"))?),
        "oom-score-adj" => {
            o.oom_score_adj = Some(v.parse().map_err(|_| bad("expected an integer"))?)
        }
        "sysctl" => insert_pair(&mut o.sysctls, &v).ok_or_else(|| bad("expected name=value"))?,
        "log-opt" => insert_pair(&mut o.log_opts, &v).ok_or_else(|| bad("expected name=value"))?,
        "log-driver" => o.log_driver = Some(v),
        "tmpfs" => {
            let (path, opts) = v.split_once(':').unwrap_or((v.as_str(), ""));
            o.tmpfs.insert(path.to_string(), opts.to_string());
        }
        "ulimit" => o
            .ulimits
            .push(ulimit(&v).ok_or_else(|| bad("expected name=soft[:hard]"))?),
        _ => return Err(PlanError::UnsupportedParameter { key: p.key.clone() }),
    }
    Ok(())
}

/// `name=value` (the name must not be empty).
fn pair(text: &str) -> Option<(String, String)> {
    let (k, v) = text.split_once('=')?;
    (!k.is_empty()).then(|| (k.to_string(), v.to_string()))
}

fn insert_pair(map: &mut BTreeMap<String, String>, text: &str) -> Option<()> {
    let (k, v) = pair(text)?;
    map.insert(k, v);
    Some(())
}

/// Go's `strconv.ParseBool`, as the docker CLI reads boolean flags.
pub fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A size as the docker CLI reads it (`RAMInBytes`): a number with an optional binary
/// unit `b k m g t p` (an `i` and a `b` may follow), case-insensitive; `-1` = unlimited.
pub fn size(text: &str) -> Option<i64> {
    let text = text.trim();
    if text == "-1" {
        return Some(-1);
    }
    let lower = text.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: f64 = number.parse().ok()?;
    let unit = unit.trim_start();
    let unit = unit.strip_suffix('b').unwrap_or(unit);
    let unit = unit.strip_suffix('i').unwrap_or(unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return None,
    };
    let bytes = number * (1u64 << shift) as f64;
    (bytes.is_finite() && bytes < i64::MAX as f64).then_some(bytes as i64)
}

/// `nofile=1024[:2048]`.
fn ulimit(text: &str) -> Option<(String, i64, i64)> {
    let (name, limits) = pair(text)?;
    let (soft, hard) = limits.split_once(':').unwrap_or((&limits, &limits));
    Some((name, soft.parse().ok()?, hard.parse().ok()?))
}
