//! `ContainerInfo` and what it holds: `DockerInfo` (image, network, port mappings,
//! parameters), `Volume`, `Image` and `NetworkInfo`. Parsing is lenient like stout
//! (unknown keys ignored, an unknown enum name drops an optional field, numbers and bools
//! may arrive as strings) and serialising writes Mesos' proto defaults
//! (`DockerInfo.network: "HOST"`, `privileged: false`, `Image.cached: true`).
//! `ContainerInfo::validate` holds the master's checks (Mesos `validateContainerInfo`).

use crate::mesos::{lenient_enum, Labels};
use serde::{Deserialize, Deserializer, Serialize};

fn default_true() -> bool {
    true
}

/// A bool that may arrive as `true` or `"true"` (stout accepts both).
fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(lenient_opt_bool(d)?.unwrap_or(false))
}

fn lenient_bool_true<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(lenient_opt_bool(d)?.unwrap_or(true))
}

fn lenient_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Bool(b)) => Ok(Some(b)),
        Some(serde_json::Value::String(s)) if s == "true" => Ok(Some(true)),
        Some(serde_json::Value::String(s)) if s == "false" => Ok(Some(false)),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected a bool, got {other}"
        ))),
    }
}

/// A port number that may arrive as a number or a numeric string.
fn lenient_port<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    let number = match &value {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    number
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| serde::de::Error::custom(format!("expected a port number, got {value}")))
}

wire_enum! {
    /// `ContainerInfo.Type`.
    pub enum ContainerType {
        Docker = "DOCKER",
        Mesos = "MESOS",
    }
}

wire_enum! {
    /// `ContainerInfo.DockerInfo.Network`.
    pub enum DockerNetwork {
        Host = "HOST",
        Bridge = "BRIDGE",
        None = "NONE",
        User = "USER",
    }
}

wire_enum! {
    /// `Volume.Mode`.
    pub enum VolumeMode {
        Rw = "RW",
        Ro = "RO",
    }
}

wire_enum! {
    /// `Image.Type`.
    pub enum ImageType {
        Appc = "APPC",
        Docker = "DOCKER",
    }
}

/// The network when none (or an unknown one) is given: HOST, as in Mesos on Linux.
fn lenient_network<'de, D: Deserializer<'de>>(d: D) -> Result<DockerNetwork, D::Error> {
    Ok(lenient_enum(d)?.unwrap_or(DockerNetwork::Host))
}

fn default_network() -> DockerNetwork {
    DockerNetwork::Host
}

/// `ContainerInfo.DockerInfo.PortMapping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    #[serde(deserialize_with = "lenient_port")]
    pub host_port: u32,
    #[serde(deserialize_with = "lenient_port")]
    pub container_port: u32,
    /// `tcp` (Docker's default when unset) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `Parameter`: a `docker run` option as `{key, value}` (`--key=value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    pub key: String,
    pub value: String,
}

/// `ContainerInfo.DockerInfo`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerInfo {
    pub image: String,
    #[serde(default = "default_network", deserialize_with = "lenient_network")]
    pub network: DockerNetwork,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub privileged: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
    #[serde(
        default,
        deserialize_with = "lenient_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub force_pull_image: Option<bool>,
    /// Deprecated in Mesos (use `Volume.source.docker_volume.driver`); still honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_driver: Option<String>,
}

impl DockerInfo {
    /// A DockerInfo for `image` with Mesos' defaults (HOST network, unprivileged).
    pub fn new(image: impl Into<String>) -> Self {
        DockerInfo {
            image: image.into(),
            network: DockerNetwork::Host,
            port_mappings: Vec::new(),
            privileged: false,
            parameters: Vec::new(),
            force_pull_image: None,
            volume_driver: None,
        }
    }
}

/// `Image.Docker`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerImage {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

/// `Image` (of a MESOS container or an image volume).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    #[serde(rename = "type")]
    pub kind: ImageType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appc: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerImage>,
    #[serde(default = "default_true", deserialize_with = "lenient_bool_true")]
    pub cached: bool,
}

/// `Volume.Source.DockerVolume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerVolume {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_options: Option<serde_json::Value>,
}

/// `Volume.Source`. The type is kept as text so unknown ones pass through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeSource {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_volume: Option<DockerVolume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_path: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csi_volume: Option<serde_json::Value>,
}

/// `Volume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub mode: VolumeMode,
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<VolumeSource>,
}

/// `NetworkInfo.IPAddress`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpAddress {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
}

/// `NetworkInfo.PortMapping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkPortMapping {
    #[serde(deserialize_with = "lenient_port")]
    pub host_port: u32,
    #[serde(deserialize_with = "lenient_port")]
    pub container_port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

/// `NetworkInfo`: a network the container joins (for Docker: `name` is the network).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkInfo {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_addresses: Vec<IpAddress>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Labels>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<NetworkPortMapping>,
}

/// `ContainerInfo.MesosInfo`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct MesosInfo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Image>,
}

/// `ContainerInfo`. Fields Strata does not interpret (`linux_info`, `rlimit_info`,
/// `tty_info`) pass through as raw JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerInfo {
    #[serde(rename = "type")]
    pub kind: ContainerType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mesos: Option<MesosInfo>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_infos: Vec<NetworkInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_info: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rlimit_info: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tty_info: Option<serde_json::Value>,
}

impl ContainerInfo {
    /// A DOCKER container running `docker`.
    pub fn docker(docker: DockerInfo) -> Self {
        ContainerInfo {
            kind: ContainerType::Docker,
            volumes: Vec::new(),
            hostname: None,
            docker: Some(docker),
            mesos: None,
            network_infos: Vec::new(),
            linux_info: None,
            rlimit_info: None,
            tty_info: None,
        }
    }

    /// Whether this is a DOCKER container.
    pub fn is_docker(&self) -> bool {
        self.kind == ContainerType::Docker
    }

    /// Mesos' `validateContainerInfo` (common/validation.cpp), with its messages: each
    /// volume sets exactly one of `host_path`, `image` and `source`; a DOCKER container
    /// has a DockerInfo whose parameters do not name the container.
    pub fn validate(&self) -> Result<(), String> {
        for volume in &self.volumes {
            validate_volume(volume).map_err(|e| format!("Invalid volume: {e}"))?;
        }
        if self.kind == ContainerType::Docker {
            let Some(docker) = &self.docker else {
                return Err("DockerInfo 'docker' is not set for DOCKER typed ContainerInfo".into());
            };
            if docker.parameters.iter().any(|p| p.key == "name") {
                return Err("Parameter in DockerInfo must not be 'name'".into());
            }
        }
        Ok(())
    }
}

fn validate_volume(volume: &Volume) -> Result<(), String> {
    let set = [
        volume.host_path.is_some(),
        volume.image.is_some(),
        volume.source.is_some(),
    ];
    if set.iter().filter(|s| **s).count() != 1 {
        return Err("Only one of them should be set: 'host_path', 'image' and 'source'".into());
    }
    let Some(source) = &volume.source else {
        return Ok(());
    };
    let (present, what) = match source.kind.as_deref() {
        Some("DOCKER_VOLUME") => (source.docker_volume.is_some(), "docker_volume"),
        Some("HOST_PATH") => (source.host_path.is_some(), "host_path"),
        Some("SANDBOX_PATH") => (source.sandbox_path.is_some(), "sandbox_path"),
        Some("SECRET") => (source.secret.is_some(), "secret"),
        Some("CSI_VOLUME") => (source.csi_volume.is_some(), "csi_volume"),
        _ => return Err("'source.type' is unknown".into()),
    };
    match present {
        true => Ok(()),
        false => Err(format!(
            "'source.{what}' is not set for {} volume",
            source.kind.as_deref().unwrap_or_default()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> ContainerInfo {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn docker_info_writes_mesos_defaults() {
        let c = parse(json!({"type": "DOCKER", "docker": {"image": "busybox"}, "extra": 1}));
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"type":"DOCKER","docker":{"image":"busybox","network":"HOST","privileged":false}}"#
        );
    }

    #[test]
    fn parsing_is_lenient_like_stout() {
        let c = parse(json!({"type": "DOCKER", "docker": {
            "image": "i", "network": "CARRIER_PIGEON", "privileged": "true",
            "force_pull_image": "false",
            "port_mappings": [{"host_port": "31000", "container_port": 80, "protocol": "tcp"}],
            "parameters": [{"key": "env", "value": "A=1"}]}}));
        let d = c.docker.unwrap();
        assert_eq!(d.network, DockerNetwork::Host);
        assert!(d.privileged);
        assert_eq!(d.force_pull_image, Some(false));
        assert_eq!(d.port_mappings[0].host_port, 31000);
        assert!(
            serde_json::from_value::<ContainerInfo>(json!({"docker": {"image": "i"}})).is_err()
        );
        assert!(
            serde_json::from_value::<ContainerInfo>(json!({"type": "DOCKER", "docker": {}}))
                .is_err()
        );
    }

    #[test]
    fn image_and_volume_round_trip() {
        let c = parse(json!({"type": "MESOS",
            "mesos": {"image": {"type": "DOCKER", "docker": {"name": "alpine"}}},
            "volumes": [{"mode": "RO", "container_path": "/data", "host_path": "/srv"}],
            "network_infos": [{"name": "net1", "port_mappings": [{"host_port": 1, "container_port": 2}]}]}));
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains(r#""cached":true"#), "{text}");
        assert_eq!(serde_json::from_str::<ContainerInfo>(&text).unwrap(), c);
        assert_eq!(c.volumes[0].mode, VolumeMode::Ro);
    }

    fn check(v: serde_json::Value, expected: Result<(), &str>) {
        assert_eq!(parse(v).validate(), expected.map_err(str::to_string));
    }

    #[test]
    fn validation_follows_mesos_messages() {
        check(json!({"type": "DOCKER", "docker": {"image": "i"}}), Ok(()));
        check(
            json!({"type": "DOCKER"}),
            Err("DockerInfo 'docker' is not set for DOCKER typed ContainerInfo"),
        );
        check(
            json!({"type": "DOCKER", "docker": {"image": "i", "parameters": [{"key": "name", "value": "x"}]}}),
            Err("Parameter in DockerInfo must not be 'name'"),
        );
        check(
            json!({"type": "MESOS", "volumes": [{"mode": "RW", "container_path": "/a"}]}),
            Err(
                "Invalid volume: Only one of them should be set: 'host_path', 'image' and 'source'",
            ),
        );
        check(
            json!({"type": "MESOS", "volumes": [{"mode": "RW", "container_path": "/a", "source": {"type": "DOCKER_VOLUME"}}]}),
            Err("Invalid volume: 'source.docker_volume' is not set for DOCKER_VOLUME volume"),
        );
    }
}
