//! Health checks and checks of a task as Mesos v1 JSON: `HealthCheck` (its result sets
//! `TaskStatus.healthy`, and enough failures kill the task), `CheckInfo` (results only,
//! reported in `TaskStatus.check_status`) and `CheckStatusInfo`, plus Mesos' validation
//! rules and messages (`common/validation.cpp`).
//!
//! Parsing is lenient like stout: unknown keys are ignored, `null` means unset, an unknown
//! enum name drops the field. Serialising writes every defaulted field (timings,
//! `consecutive_failures`, `protocol`), as Mesos does.

use crate::mesos::{lenient_enum, CommandInfo};
use serde::{Deserialize, Serialize};

wire_enum! {
    /// `CheckInfo.Type`, also used for `HealthCheck.Type` (same names and numbers).
    pub enum CheckType {
        Unknown = "UNKNOWN",
        Command = "COMMAND",
        Http = "HTTP",
        Tcp = "TCP",
    }
}

wire_enum! {
    /// `NetworkInfo.Protocol`.
    pub enum NetworkProtocol {
        Ipv4 = "IPv4",
        Ipv6 = "IPv6",
    }
}

/// Mesos defaults of the timing fields (seconds) and of `consecutive_failures`.
pub mod defaults {
    pub const DELAY_SECONDS: f64 = 15.0;
    pub const INTERVAL_SECONDS: f64 = 10.0;
    pub const TIMEOUT_SECONDS: f64 = 20.0;
    pub const CONSECUTIVE_FAILURES: u32 = 3;
    pub const GRACE_PERIOD_SECONDS: f64 = 10.0;
}

/// `HealthCheck.HTTPCheckInfo`: GET `scheme://127.0.0.1:port<path>` (`[::1]` for IPv6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "raw::HttpHealth")]
pub struct HttpHealthCheck {
    pub protocol: NetworkProtocol,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    pub port: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Ignored by Mesos (any 2xx/3xx is healthy); kept so it passes through.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<u32>,
}

/// `HealthCheck.TCPCheckInfo`: connect to `127.0.0.1:port` (`::1` for IPv6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "raw::TcpHealth")]
pub struct TcpHealthCheck {
    pub protocol: NetworkProtocol,
    pub port: u32,
}

/// `HealthCheck`. Fields are in Mesos' declaration order, which is the JSON order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "raw::Health")]
pub struct HealthCheck {
    pub delay_seconds: f64,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
    pub consecutive_failures: u32,
    pub grace_period_seconds: f64,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<CheckType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpHealthCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpHealthCheck>,
}

/// `CheckInfo.Command`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandCheck {
    pub command: CommandInfo,
}

/// `CheckInfo.Http`: GET `http://127.0.0.1:port<path>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpCheck {
    pub port: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// `CheckInfo.Tcp`: connect to `127.0.0.1:port`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TcpCheck {
    pub port: u32,
}

/// `CheckInfo`: a check whose results are only reported, never acted upon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "raw::Check")]
pub struct CheckInfo {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<CheckType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheck>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheck>,
    pub delay_seconds: f64,
    pub interval_seconds: f64,
    pub timeout_seconds: f64,
}

/// `CheckStatusInfo.Command`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CommandCheckStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

/// `CheckStatusInfo.Http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HttpCheckStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u32>,
}

/// `CheckStatusInfo.Tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TcpCheckStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succeeded: Option<bool>,
}

/// `CheckStatusInfo`: the latest result of a task's check. A result of the right type with
/// nothing inside (`{"type":"COMMAND","command":{}}`) means "not known yet".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CheckStatusInfo {
    #[serde(
        rename = "type",
        default,
        deserialize_with = "lenient_enum",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<CheckType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandCheckStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpCheckStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<TcpCheckStatus>,
}

impl CheckStatusInfo {
    /// The "no result yet" status of a check of type `kind` (Mesos sets the type and an
    /// empty message of that type; an UNKNOWN type gets no payload).
    pub fn empty(kind: CheckType) -> Self {
        let mut status = CheckStatusInfo {
            kind: Some(kind),
            ..Default::default()
        };
        match kind {
            CheckType::Command => status.command = Some(CommandCheckStatus::default()),
            CheckType::Http => status.http = Some(HttpCheckStatus::default()),
            CheckType::Tcp => status.tcp = Some(TcpCheckStatus::default()),
            CheckType::Unknown => {}
        }
        status
    }

    /// A COMMAND check's result.
    pub fn command(exit_code: i32) -> Self {
        CheckStatusInfo {
            command: Some(CommandCheckStatus {
                exit_code: Some(exit_code),
            }),
            ..Self::empty(CheckType::Command)
        }
    }

    /// An HTTP check's result.
    pub fn http(status_code: u32) -> Self {
        CheckStatusInfo {
            http: Some(HttpCheckStatus {
                status_code: Some(status_code),
            }),
            ..Self::empty(CheckType::Http)
        }
    }

    /// A TCP check's result.
    pub fn tcp(succeeded: bool) -> Self {
        CheckStatusInfo {
            tcp: Some(TcpCheckStatus {
                succeeded: Some(succeeded),
            }),
            ..Self::empty(CheckType::Tcp)
        }
    }
}

/// Why a health check or check is invalid; the texts are Mesos'.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckError {
    #[error("{0} must specify 'type'")]
    NoType(&'static str),
    #[error("'UNKNOWN' is not a valid {0} type")]
    UnknownType(&'static str),
    #[error("Expecting '{field}' to be set for {kind} {what}")]
    Missing {
        field: &'static str,
        kind: CheckType,
        what: &'static str,
    },
    #[error("Command {what} must contain {expected}")]
    NoCommandValue {
        what: &'static str,
        expected: &'static str,
    },
    #[error("Unsupported HTTP health check scheme: '{0}'")]
    Scheme(String),
    #[error("The path '{path}' of HTTP {what} must start with '/'")]
    Path { path: String, what: &'static str },
    #[error("Expecting '{0}' to be non-negative")]
    Negative(&'static str),
    #[error("Expecting '{0}' to be a finite number of seconds")]
    NotFinite(&'static str),
}

const HEALTH: &str = "health check";
const CHECK: &str = "check";

impl HealthCheck {
    /// A health check of `kind` with Mesos' default timings and no payload.
    pub fn new(kind: CheckType) -> Self {
        raw::Health {
            kind: Some(kind),
            ..Default::default()
        }
        .into()
    }

    /// A COMMAND health check (healthy iff the command exits 0).
    pub fn command(command: CommandInfo) -> Self {
        HealthCheck {
            command: Some(command),
            ..Self::new(CheckType::Command)
        }
    }

    /// An HTTP health check on `port` and `path` (healthy iff the status is 200–399).
    pub fn http(port: u32, path: Option<&str>) -> Self {
        let http = raw::HttpHealth {
            port,
            path: path.map(str::to_string),
            ..Default::default()
        };
        HealthCheck {
            http: Some(http.into()),
            ..Self::new(CheckType::Http)
        }
    }

    /// A TCP health check on `port` (healthy iff a connection is accepted).
    pub fn tcp(port: u32) -> Self {
        let tcp = raw::TcpHealth {
            port,
            protocol: None,
        };
        HealthCheck {
            tcp: Some(tcp.into()),
            ..Self::new(CheckType::Tcp)
        }
    }

    /// Mesos' `validateHealthCheck`.
    pub fn validate(&self) -> Result<(), CheckError> {
        let kind = self.kind.ok_or(CheckError::NoType("HealthCheck"))?;
        let missing = |field| CheckError::Missing {
            field,
            kind,
            what: HEALTH,
        };
        match kind {
            CheckType::Unknown => return Err(CheckError::UnknownType(HEALTH)),
            CheckType::Command => {
                validate_command(self.command.as_ref().ok_or(missing("command"))?, HEALTH)?
            }
            CheckType::Http => {
                let http = self.http.as_ref().ok_or(missing("http"))?;
                if let Some(scheme) = http
                    .scheme
                    .as_ref()
                    .filter(|s| *s != "http" && *s != "https")
                {
                    return Err(CheckError::Scheme(scheme.clone()));
                }
                validate_path(http.path.as_deref(), HEALTH)?;
            }
            CheckType::Tcp => {
                self.tcp.as_ref().ok_or(missing("tcp"))?;
            }
        }
        validate_seconds("delay_seconds", self.delay_seconds)?;
        validate_seconds("grace_period_seconds", self.grace_period_seconds)?;
        validate_seconds("interval_seconds", self.interval_seconds)?;
        validate_seconds("timeout_seconds", self.timeout_seconds)
    }
}

impl CheckInfo {
    /// A check of `kind` with Mesos' default timings and no payload.
    pub fn new(kind: CheckType) -> Self {
        raw::Check {
            kind: Some(kind),
            ..Default::default()
        }
        .into()
    }

    /// A COMMAND check (reports the exit code).
    pub fn command(command: CommandInfo) -> Self {
        CheckInfo {
            command: Some(CommandCheck { command }),
            ..Self::new(CheckType::Command)
        }
    }

    /// An HTTP check (reports the status code).
    pub fn http(port: u32, path: Option<&str>) -> Self {
        CheckInfo {
            http: Some(HttpCheck {
                port,
                path: path.map(str::to_string),
            }),
            ..Self::new(CheckType::Http)
        }
    }

    /// A TCP check (reports whether a connection was accepted).
    pub fn tcp(port: u32) -> Self {
        CheckInfo {
            tcp: Some(TcpCheck { port }),
            ..Self::new(CheckType::Tcp)
        }
    }

    /// Mesos' `validateCheckInfo`.
    pub fn validate(&self) -> Result<(), CheckError> {
        let kind = self.kind.ok_or(CheckError::NoType("CheckInfo"))?;
        let missing = |field| CheckError::Missing {
            field,
            kind,
            what: CHECK,
        };
        match kind {
            CheckType::Unknown => return Err(CheckError::UnknownType(CHECK)),
            CheckType::Command => {
                let command = self.command.as_ref().ok_or(missing("command"))?;
                validate_command(&command.command, CHECK)?;
            }
            CheckType::Http => {
                let http = self.http.as_ref().ok_or(missing("http"))?;
                validate_path(http.path.as_deref(), CHECK)?;
            }
            CheckType::Tcp => {
                self.tcp.as_ref().ok_or(missing("tcp"))?;
            }
        }
        validate_seconds("delay_seconds", self.delay_seconds)?;
        validate_seconds("interval_seconds", self.interval_seconds)?;
        validate_seconds("timeout_seconds", self.timeout_seconds)
    }
}

fn validate_command(command: &CommandInfo, what: &'static str) -> Result<(), CheckError> {
    if command.value.is_some() {
        return Ok(());
    }
    let expected = if command.shell {
        "'shell command'"
    } else {
        "'executable path'"
    };
    Err(CheckError::NoCommandValue { what, expected })
}

fn validate_path(path: Option<&str>, what: &'static str) -> Result<(), CheckError> {
    match path {
        Some(path) if !path.starts_with('/') => Err(CheckError::Path {
            path: path.to_string(),
            what,
        }),
        _ => Ok(()),
    }
}

/// Mesos rejects negative values; a value no duration can hold (NaN, infinite) would
/// abort a Mesos executor, so it is rejected here as well.
fn validate_seconds(field: &'static str, value: f64) -> Result<(), CheckError> {
    if value < 0.0 {
        return Err(CheckError::Negative(field));
    }
    match std::time::Duration::try_from_secs_f64(value) {
        Ok(_) => Ok(()),
        Err(_) => Err(CheckError::NotFinite(field)),
    }
}

/// The parsed shapes: every defaulted field optional (absent or `null` = unset), turned
/// into the public types with Mesos' defaults filled in.
mod raw {
    use super::defaults::*;
    use super::{CheckType, CommandCheck, HttpCheck, NetworkProtocol, TcpCheck};
    use crate::mesos::{lenient_enum, CommandInfo};
    use serde::Deserialize;

    #[derive(Default, Deserialize)]
    pub struct HttpHealth {
        #[serde(default, deserialize_with = "lenient_enum")]
        pub protocol: Option<NetworkProtocol>,
        #[serde(default)]
        pub scheme: Option<String>,
        pub port: u32,
        #[serde(default)]
        pub path: Option<String>,
        #[serde(default)]
        pub statuses: Option<Vec<u32>>,
    }

    impl From<HttpHealth> for super::HttpHealthCheck {
        fn from(r: HttpHealth) -> Self {
            super::HttpHealthCheck {
                protocol: r.protocol.unwrap_or(NetworkProtocol::Ipv4),
                scheme: r.scheme,
                port: r.port,
                path: r.path,
                statuses: r.statuses.unwrap_or_default(),
            }
        }
    }

    #[derive(Deserialize)]
    pub struct TcpHealth {
        #[serde(default, deserialize_with = "lenient_enum")]
        pub protocol: Option<NetworkProtocol>,
        pub port: u32,
    }

    impl From<TcpHealth> for super::TcpHealthCheck {
        fn from(r: TcpHealth) -> Self {
            super::TcpHealthCheck {
                protocol: r.protocol.unwrap_or(NetworkProtocol::Ipv4),
                port: r.port,
            }
        }
    }

    #[derive(Default, Deserialize)]
    pub struct Health {
        #[serde(default)]
        pub delay_seconds: Option<f64>,
        #[serde(default)]
        pub interval_seconds: Option<f64>,
        #[serde(default)]
        pub timeout_seconds: Option<f64>,
        #[serde(default)]
        pub consecutive_failures: Option<u32>,
        #[serde(default)]
        pub grace_period_seconds: Option<f64>,
        #[serde(rename = "type", default, deserialize_with = "lenient_enum")]
        pub kind: Option<CheckType>,
        #[serde(default)]
        pub command: Option<CommandInfo>,
        #[serde(default)]
        pub http: Option<super::HttpHealthCheck>,
        #[serde(default)]
        pub tcp: Option<super::TcpHealthCheck>,
    }

    impl From<Health> for super::HealthCheck {
        fn from(r: Health) -> Self {
            super::HealthCheck {
                delay_seconds: r.delay_seconds.unwrap_or(DELAY_SECONDS),
                interval_seconds: r.interval_seconds.unwrap_or(INTERVAL_SECONDS),
                timeout_seconds: r.timeout_seconds.unwrap_or(TIMEOUT_SECONDS),
                consecutive_failures: r.consecutive_failures.unwrap_or(CONSECUTIVE_FAILURES),
                grace_period_seconds: r.grace_period_seconds.unwrap_or(GRACE_PERIOD_SECONDS),
                kind: r.kind,
                command: r.command,
                http: r.http,
                tcp: r.tcp,
            }
        }
    }

    #[derive(Default, Deserialize)]
    pub struct Check {
        #[serde(rename = "type", default, deserialize_with = "lenient_enum")]
        pub kind: Option<CheckType>,
        #[serde(default)]
        pub command: Option<CommandCheck>,
        #[serde(default)]
        pub http: Option<HttpCheck>,
        #[serde(default)]
        pub tcp: Option<TcpCheck>,
        #[serde(default)]
        pub delay_seconds: Option<f64>,
        #[serde(default)]
        pub interval_seconds: Option<f64>,
        #[serde(default)]
        pub timeout_seconds: Option<f64>,
    }

    impl From<Check> for super::CheckInfo {
        fn from(r: Check) -> Self {
            super::CheckInfo {
                kind: r.kind,
                command: r.command,
                http: r.http,
                tcp: r.tcp,
                delay_seconds: r.delay_seconds.unwrap_or(DELAY_SECONDS),
                interval_seconds: r.interval_seconds.unwrap_or(INTERVAL_SECONDS),
                timeout_seconds: r.timeout_seconds.unwrap_or(TIMEOUT_SECONDS),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn round_trip<T: Serialize + serde::de::DeserializeOwned>(input: serde_json::Value) -> String {
        let parsed: T = serde_json::from_value(input).unwrap();
        serde_json::to_string(&parsed).unwrap()
    }

    #[test]
    fn health_check_writes_defaults_in_declaration_order() {
        let cases = [
            (
                json!({"type": "COMMAND", "command": {"value": "exit 0"}, "unknown": 1}),
                r#"{"delay_seconds":15.0,"interval_seconds":10.0,"timeout_seconds":20.0,"consecutive_failures":3,"grace_period_seconds":10.0,"type":"COMMAND","command":{"shell":true,"value":"exit 0"}}"#,
            ),
            (
                json!({"type": "HTTP", "http": {"port": 80, "path": "/h"}, "delay_seconds": null, "interval_seconds": 0.5}),
                r#"{"delay_seconds":15.0,"interval_seconds":0.5,"timeout_seconds":20.0,"consecutive_failures":3,"grace_period_seconds":10.0,"type":"HTTP","http":{"protocol":"IPv4","port":80,"path":"/h"}}"#,
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 81, "protocol": "IPv9"}, "consecutive_failures": 1, "grace_period_seconds": 0}),
                r#"{"delay_seconds":15.0,"interval_seconds":10.0,"timeout_seconds":20.0,"consecutive_failures":1,"grace_period_seconds":0.0,"type":"TCP","tcp":{"protocol":"IPv4","port":81}}"#,
            ),
            (
                json!({"type": "FUTURE"}),
                r#"{"delay_seconds":15.0,"interval_seconds":10.0,"timeout_seconds":20.0,"consecutive_failures":3,"grace_period_seconds":10.0}"#,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                round_trip::<HealthCheck>(input.clone()),
                expected,
                "{input}"
            );
        }
        assert!(serde_json::from_value::<HealthCheck>(json!({"type": "TCP", "tcp": {}})).is_err());
    }

    #[test]
    fn check_info_writes_defaults_and_wraps_the_command() {
        let cases = [
            (
                json!({"type": "COMMAND", "command": {"command": {"value": "test -f ready"}}}),
                r#"{"type":"COMMAND","command":{"command":{"shell":true,"value":"test -f ready"}},"delay_seconds":15.0,"interval_seconds":10.0,"timeout_seconds":20.0}"#,
            ),
            (
                json!({"type": "HTTP", "http": {"port": 8080}, "timeout_seconds": 1}),
                r#"{"type":"HTTP","http":{"port":8080},"delay_seconds":15.0,"interval_seconds":10.0,"timeout_seconds":1.0}"#,
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(round_trip::<CheckInfo>(input.clone()), expected, "{input}");
        }
        assert_eq!(
            serde_json::to_value(CheckInfo::tcp(9)).unwrap(),
            json!({"type": "TCP", "tcp": {"port": 9}, "delay_seconds": 15.0, "interval_seconds": 10.0, "timeout_seconds": 20.0})
        );
    }

    #[test]
    fn check_status_shapes() {
        let cases = [
            (
                CheckStatusInfo::empty(CheckType::Command),
                r#"{"type":"COMMAND","command":{}}"#,
            ),
            (
                CheckStatusInfo::empty(CheckType::Http),
                r#"{"type":"HTTP","http":{}}"#,
            ),
            (
                CheckStatusInfo::empty(CheckType::Tcp),
                r#"{"type":"TCP","tcp":{}}"#,
            ),
            (
                CheckStatusInfo::command(1),
                r#"{"type":"COMMAND","command":{"exit_code":1}}"#,
            ),
            (
                CheckStatusInfo::http(503),
                r#"{"type":"HTTP","http":{"status_code":503}}"#,
            ),
            (
                CheckStatusInfo::tcp(false),
                r#"{"type":"TCP","tcp":{"succeeded":false}}"#,
            ),
        ];
        for (status, expected) in cases {
            assert_eq!(serde_json::to_string(&status).unwrap(), expected);
            assert_eq!(
                serde_json::from_str::<CheckStatusInfo>(expected).unwrap(),
                status
            );
        }
        let lenient: CheckStatusInfo =
            serde_json::from_str(r#"{"type":"LATER","extra":true,"tcp":{"succeeded":true}}"#)
                .unwrap();
        assert_eq!(lenient.kind, None);
        assert_eq!(
            lenient.tcp,
            Some(TcpCheckStatus {
                succeeded: Some(true)
            })
        );
    }

    fn health(v: serde_json::Value) -> HealthCheck {
        serde_json::from_value(v).unwrap()
    }

    fn check(v: serde_json::Value) -> CheckInfo {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_follows_mesos() {
        let health_cases = [
            (json!({}), Some("HealthCheck must specify 'type'")),
            (
                json!({"type": "UNKNOWN"}),
                Some("'UNKNOWN' is not a valid health check type"),
            ),
            (
                json!({"type": "COMMAND"}),
                Some("Expecting 'command' to be set for COMMAND health check"),
            ),
            (
                json!({"type": "COMMAND", "command": {}}),
                Some("Command health check must contain 'shell command'"),
            ),
            (
                json!({"type": "COMMAND", "command": {"shell": false}}),
                Some("Command health check must contain 'executable path'"),
            ),
            (
                json!({"type": "HTTP"}),
                Some("Expecting 'http' to be set for HTTP health check"),
            ),
            (
                json!({"type": "HTTP", "http": {"port": 1, "scheme": "ftp"}}),
                Some("Unsupported HTTP health check scheme: 'ftp'"),
            ),
            (
                json!({"type": "HTTP", "http": {"port": 1, "path": "x"}}),
                Some("The path 'x' of HTTP health check must start with '/'"),
            ),
            (
                json!({"type": "TCP"}),
                Some("Expecting 'tcp' to be set for TCP health check"),
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 1}, "grace_period_seconds": -1}),
                Some("Expecting 'grace_period_seconds' to be non-negative"),
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 1}, "timeout_seconds": 1e300}),
                Some("Expecting 'timeout_seconds' to be a finite number of seconds"),
            ),
            (
                json!({"type": "HTTP", "http": {"port": 1, "scheme": "https", "path": "/"}}),
                None,
            ),
            (
                json!({"type": "COMMAND", "command": {"value": "true"}, "delay_seconds": 0}),
                None,
            ),
        ];
        for (input, expected) in health_cases {
            let got = health(input.clone())
                .validate()
                .err()
                .map(|e| e.to_string());
            assert_eq!(got.as_deref(), expected, "{input}");
        }
        let check_cases = [
            (json!({}), Some("CheckInfo must specify 'type'")),
            (
                json!({"type": "COMMAND", "command": {"command": {}}}),
                Some("Command check must contain 'shell command'"),
            ),
            (
                json!({"type": "HTTP", "http": {"port": 1, "path": "h"}}),
                Some("The path 'h' of HTTP check must start with '/'"),
            ),
            (
                json!({"type": "TCP", "tcp": {"port": 1}, "interval_seconds": -0.1}),
                Some("Expecting 'interval_seconds' to be non-negative"),
            ),
            (json!({"type": "TCP", "tcp": {"port": 1}}), None),
        ];
        for (input, expected) in check_cases {
            let got = check(input.clone()).validate().err().map(|e| e.to_string());
            assert_eq!(got.as_deref(), expected, "{input}");
        }
    }

    #[test]
    fn constructors_use_mesos_defaults() {
        let h = HealthCheck::http(8080, Some("/health"));
        assert_eq!(h.kind, Some(CheckType::Http));
        assert_eq!(
            (h.delay_seconds, h.interval_seconds, h.timeout_seconds),
            (15.0, 10.0, 20.0)
        );
        assert_eq!((h.consecutive_failures, h.grace_period_seconds), (3, 10.0));
        assert_eq!(
            h.http.as_ref().map(|x| x.protocol),
            Some(NetworkProtocol::Ipv4)
        );
        assert!(h.validate().is_ok());
        assert!(HealthCheck::tcp(1).validate().is_ok());
        assert!(HealthCheck::command(CommandInfo::shell("true"))
            .validate()
            .is_ok());
        assert!(CheckInfo::command(CommandInfo::shell("true"))
            .validate()
            .is_ok());
        assert!(CheckInfo::http(1, None).validate().is_ok());
    }
}
