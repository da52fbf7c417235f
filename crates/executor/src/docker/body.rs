//! Pure conversions between a `DockerRun` and the Docker Engine API: the create request
//! body, the image reference to pull, a container's exit code as a `Termination`, and
//! what its inspection says: its addresses (for probes) and whether it was OOM-killed.

use super::spec::{DockerRun, CPU_CFS_PERIOD_US};
use crate::termination::{OomKill, Termination};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, HostConfig, HostConfigLogConfig, PortBinding,
    ResourcesUlimits,
};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// The image with `:latest` added when it names no tag or digest (Mesos does the same so
/// that a pull does not fetch every tag of the repository).
pub fn image_reference(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains(':') || last.contains('@') {
        image.to_string()
    } else {
        format!("{image}:latest")
    }
}

/// How a container's main process ended, from Docker's exit code: Docker reports a
/// process killed by signal N as 128 + N, which reads back as that signal.
pub fn exit_termination(code: i64) -> Termination {
    match code {
        129..=191 => Termination::Signaled {
            signal: (code - 128) as i32,
            core_dumped: false,
        },
        _ => Termination::Exited(i32::try_from(code).unwrap_or(-1)),
    }
}

/// A container's IPv4 and global IPv6 addresses on `network` (the one it was created
/// on; any of its networks if Docker names it differently), IPv4 first. None on the
/// host's network or network `none`.
pub fn container_ips(inspect: &ContainerInspectResponse, network: &str) -> Vec<IpAddr> {
    let Some(networks) = inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
    else {
        return Vec::new();
    };
    let mut endpoints: Vec<(&String, _)> = networks.iter().collect();
    // The container's own network first, then the rest in a stable order.
    endpoints.sort_by_key(|(name, _)| (name.as_str() != network, name.as_str()));
    let addresses = endpoints.into_iter().flat_map(|(_, e)| {
        let v6 = e.global_ipv6_address.as_deref();
        [e.ip_address.as_deref(), v6]
    });
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in addresses.flatten().filter_map(|a| a.parse::<IpAddr>().ok()) {
        if !ip.is_unspecified() && !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    ips.sort_by_key(|ip| ip.is_ipv6());
    ips
}

/// The OOM kill of an ended container (`State.OOMKilled`), with its memory limit
/// (`HostConfig.Memory`, 0 = none).
pub fn oom_kill(inspect: &ContainerInspectResponse) -> Option<OomKill> {
    let killed = inspect.state.as_ref().and_then(|s| s.oom_killed);
    killed.filter(|k| *k)?;
    let limit = inspect.host_config.as_ref().and_then(|h| h.memory);
    Some(OomKill {
        memory_limit_bytes: limit.and_then(|m| u64::try_from(m).ok()).filter(|m| *m > 0),
    })
}

fn some_vec<T: Clone>(v: &[T]) -> Option<Vec<T>> {
    (!v.is_empty()).then(|| v.to_vec())
}

fn some_map(m: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    (!m.is_empty()).then(|| m.clone().into_iter().collect())
}

/// The `POST /containers/create` body for `run`.
pub fn create_body(run: &DockerRun) -> ContainerCreateBody {
    let exposed: Vec<String> = run
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.container_port, p.protocol))
        .collect();
    ContainerCreateBody {
        image: Some(image_reference(&run.image)),
        entrypoint: run.entrypoint.clone(),
        cmd: some_vec(&run.cmd),
        env: Some(run.env.clone()),
        labels: Some(run.labels.clone().into_iter().collect()),
        hostname: run.hostname.clone(),
        user: run.options.user.clone(),
        working_dir: run.options.working_dir.clone(),
        exposed_ports: some_vec(&exposed),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        host_config: Some(host_config(run)),
        ..Default::default()
    }
}

fn host_config(run: &DockerRun) -> HostConfig {
    let o = &run.options;
    let l = &run.limits;
    let log_config = o.log_driver.as_ref().map(|driver| HostConfigLogConfig {
        typ: Some(driver.clone()),
        config: some_map(&o.log_opts),
    });
    let ulimits: Vec<ResourcesUlimits> = o
        .ulimits
        .iter()
        .map(|(name, soft, hard)| ResourcesUlimits {
            name: Some(name.clone()),
            soft: Some(*soft),
            hard: Some(*hard),
        })
        .collect();
    HostConfig {
        binds: some_vec(&run.binds),
        volume_driver: run.volume_driver.clone(),
        network_mode: Some(run.network.clone()),
        port_bindings: port_bindings(run),
        privileged: Some(run.privileged),
        cpu_shares: l.cpu_shares,
        cpu_quota: l.cpu_quota_us,
        cpu_period: l.cpu_quota_us.map(|_| CPU_CFS_PERIOD_US),
        memory: l.memory_bytes,
        memory_reservation: l.memory_reservation_bytes,
        memory_swap: o.memory_swap_bytes,
        extra_hosts: some_vec(&o.extra_hosts),
        cap_add: some_vec(&o.cap_add),
        cap_drop: some_vec(&o.cap_drop),
        dns: some_vec(&o.dns),
        dns_search: some_vec(&o.dns_search),
        dns_options: some_vec(&o.dns_options),
        shm_size: o.shm_size_bytes,
        init: o.init,
        readonly_rootfs: o.read_only,
        pids_limit: o.pids_limit,
        security_opt: some_vec(&o.security_opt),
        sysctls: some_map(&o.sysctls),
        tmpfs: some_map(&o.tmpfs),
        ulimits: some_vec(&ulimits),
        log_config,
        oom_score_adj: o.oom_score_adj,
        oom_kill_disable: o.oom_kill_disable,
        ..Default::default()
    }
}

fn port_bindings(run: &DockerRun) -> Option<HashMap<String, Option<Vec<PortBinding>>>> {
    let mut map: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &run.ports {
        let binding = PortBinding {
            host_ip: None,
            host_port: Some(p.host_port.to_string()),
        };
        map.entry(format!("{}/{}", p.container_port, p.protocol))
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(binding);
    }
    (!map.is_empty()).then_some(map)
}
