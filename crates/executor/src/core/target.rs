//! Where a task's health check and check reach it: a process task's commands run on the
//! host and its HTTP/TCP probes go to loopback; a DOCKER task's commands run inside its
//! container (Docker's exec, as Mesos' docker executor wraps them in `docker exec`) and
//! its HTTP/TCP probes go to the container's address on its BRIDGE/USER network (Mesos
//! enters the container's network namespace instead), or to loopback on the HOST network.

use super::probe::{port, Probe, ProbeConfigError};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use strata_api::checks::NetworkProtocol;
use strata_api::CommandInfo;

/// Where a task's probes reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProbeTarget {
    /// COMMAND probes run inside this Docker container; on the host when `None`.
    pub container: Option<String>,
    /// Where HTTP and TCP probes connect.
    pub network: ProbeNetwork,
}

/// Where HTTP and TCP probes connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ProbeNetwork {
    /// The host's loopback (process tasks, containers on the HOST network).
    #[default]
    Loopback,
    /// The container's own addresses on its BRIDGE/USER network (none on network NONE
    /// or when Docker did not tell them).
    Container(Vec<IpAddr>),
}

impl ProbeTarget {
    /// The address HTTP and TCP probes of `protocol` connect to.
    pub(super) fn ip(&self, protocol: NetworkProtocol) -> Result<IpAddr, ProbeConfigError> {
        let ips = match &self.network {
            ProbeNetwork::Loopback => return Ok(loopback(protocol)),
            ProbeNetwork::Container(ips) => ips,
        };
        let wanted = |ip: &&IpAddr| match protocol {
            NetworkProtocol::Ipv4 => ip.is_ipv4(),
            NetworkProtocol::Ipv6 => ip.is_ipv6(),
        };
        ips.iter()
            .find(wanted)
            .copied()
            .ok_or_else(|| ProbeConfigError::NoAddress {
                container: self.container.clone().unwrap_or_default(),
                family: match protocol {
                    NetworkProtocol::Ipv4 => "IPv4",
                    NetworkProtocol::Ipv6 => "IPv6",
                },
            })
    }

    /// A COMMAND probe of `command`: on the host, or inside the container.
    pub(super) fn command(&self, command: CommandInfo) -> Probe {
        match &self.container {
            None => Probe::Command(command),
            Some(container) => Probe::Exec {
                container: container.clone(),
                command,
            },
        }
    }

    /// An HTTP probe's URL.
    pub(super) fn url(
        &self,
        scheme: &str,
        protocol: NetworkProtocol,
        tcp_port: u32,
        path: &str,
    ) -> Result<String, ProbeConfigError> {
        let addr = SocketAddr::new(self.ip(protocol)?, port(tcp_port)?);
        Ok(format!("{scheme}://{addr}{path}"))
    }
}

fn loopback(protocol: NetworkProtocol) -> IpAddr {
    match protocol {
        NetworkProtocol::Ipv4 => IpAddr::V4(Ipv4Addr::LOCALHOST),
        NetworkProtocol::Ipv6 => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::super::probe::Prober;
    use super::*;
    use serde_json::json;
    use std::time::Duration;
    use strata_api::{CheckInfo, HealthCheck};

    fn probe_at(health: serde_json::Value, target: &ProbeTarget) -> Result<Probe, String> {
        let check: HealthCheck = serde_json::from_value(health).unwrap();
        Prober::health(&check, Duration::ZERO, target)
            .map(|p| p.probe)
            .map_err(|e| e.to_string())
    }

    fn in_container(network: ProbeNetwork) -> ProbeTarget {
        ProbeTarget {
            container: Some("mesos-c1".into()),
            network,
        }
    }

    #[test]
    fn probes_of_docker_tasks_reach_the_container() {
        let bridge = in_container(ProbeNetwork::Container(vec![
            "172.17.0.5".parse().unwrap(),
            "fd00::5".parse().unwrap(),
        ]));
        let host = in_container(ProbeNetwork::Loopback);
        let none = in_container(ProbeNetwork::Container(Vec::new()));
        let exec = Ok(Probe::Exec {
            container: "mesos-c1".into(),
            command: CommandInfo::shell("test -f /tmp/x"),
        });
        let command = json!({"type": "COMMAND", "command": {"value": "test -f /tmp/x"}});
        let http = json!({"type": "HTTP", "http": {"port": 8080, "path": "/h"}});
        let http6 = json!({"type": "HTTP", "http": {"port": 8080, "protocol": "IPv6"}});
        let tcp = json!({"type": "TCP", "tcp": {"port": 53}});
        let url = |u: &str| Ok(Probe::Http { url: u.into() });
        let no_ipv4 = "container 'mesos-c1' has no IPv4 address on its Docker network to probe; HTTP and TCP checks need HOST networking or a BRIDGE/USER network with IPv4";
        let cases = [
            (&command, &bridge, exec.clone()),
            (&command, &host, exec.clone()),
            (&command, &none, exec),
            (&http, &bridge, url("http://172.17.0.5:8080/h")),
            (&http6, &bridge, url("http://[fd00::5]:8080")),
            (&http, &host, url("http://127.0.0.1:8080/h")),
            (&http, &none, Err(no_ipv4.to_string())),
            (
                &tcp,
                &bridge,
                Ok(Probe::Tcp {
                    addr: "172.17.0.5:53".parse().unwrap(),
                }),
            ),
            (&tcp, &none, Err(no_ipv4.to_string())),
        ];
        for (input, target, expected) in cases {
            assert_eq!(
                probe_at(input.clone(), target),
                expected,
                "{input} {target:?}"
            );
        }
        let check: CheckInfo =
            serde_json::from_value(json!({"type": "TCP", "tcp": {"port": 81}})).unwrap();
        let prober = Prober::check(&check, Duration::ZERO, &bridge).unwrap();
        let addr = "172.17.0.5:81".parse().unwrap();
        assert_eq!(prober.probe, Probe::Tcp { addr });
        let check: CheckInfo = serde_json::from_value(
            json!({"type": "COMMAND", "command": {"command": {"value": "true"}}}),
        )
        .unwrap();
        let prober = Prober::check(&check, Duration::ZERO, &host).unwrap();
        let expected = Probe::Exec {
            container: "mesos-c1".into(),
            command: CommandInfo::shell("true"),
        };
        assert_eq!(prober.probe, expected);
    }
}
