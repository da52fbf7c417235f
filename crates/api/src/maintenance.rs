//! Maintenance and draining wire shapes: `MachineID`, `Unavailability`, maintenance
//! `Schedule`/`Window`, inverse offers and their responses, `DrainConfig`/`DrainInfo`.

use crate::ids::{AgentId, FrameworkId, OfferId};
use crate::mesos::{DurationInfo, Filters, TimeInfo, Url};
use serde::{Deserialize, Serialize};

/// `MachineID`: a machine named by hostname, IP, or both.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MachineId {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
}

impl MachineId {
    /// The identity used for equality: hostname lowercased (Mesos compares hostnames
    /// case-insensitively), empty fields as absent.
    pub fn key(&self) -> (String, String) {
        (
            self.hostname.as_deref().unwrap_or("").to_ascii_lowercase(),
            self.ip.clone().unwrap_or_default(),
        )
    }

    /// Whether an agent with this hostname and IP runs on this machine: every field the
    /// machine names must match (hostname case-insensitively).
    pub fn matches(&self, hostname: &str, ip: &str) -> bool {
        let (h, i) = self.key();
        (h.is_empty() || h == hostname.to_ascii_lowercase()) && (i.is_empty() || i == ip)
    }

    /// Compact JSON, as Mesos quotes a machine in its error messages.
    pub fn to_json_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// `Unavailability`: from `start` for `duration` (open-ended without one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unavailability {
    pub start: TimeInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationInfo>,
}

/// `maintenance.Window`: machines going down together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    #[serde(default)]
    pub machine_ids: Vec<MachineId>,
    pub unavailability: Unavailability,
}

/// `maintenance.Schedule`. Empty lists are omitted, as Mesos' JSON writer does.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Schedule {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<Window>,
}

/// `InverseOffer`: the master asks for the resources of an agent back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InverseOffer {
    pub id: OfferId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<Url>,
    pub framework_id: FrameworkId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    pub unavailability: Unavailability,
    /// The resources asked back; empty means the whole agent (maintenance).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<strata_resources::WireResource>,
}

/// `INVERSE_OFFERS` event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InverseOffers {
    #[serde(default)]
    pub inverse_offers: Vec<InverseOffer>,
}

/// `RESCIND_INVERSE_OFFER` event payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescindInverseOffer {
    pub inverse_offer_id: OfferId,
}

/// `ACCEPT_INVERSE_OFFERS` / `DECLINE_INVERSE_OFFERS` call payload.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InverseOfferReply {
    #[serde(default)]
    pub inverse_offer_ids: Vec<OfferId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filters: Option<Filters>,
}

wire_enum! {
    /// `allocator.InverseOfferStatus.Status`.
    pub enum InverseOfferStatus {
        Unknown = "UNKNOWN",
        Accept = "ACCEPT",
        Decline = "DECLINE",
    }
}

wire_enum! {
    /// `DrainState`.
    pub enum DrainState {
        Unknown = "UNKNOWN",
        Draining = "DRAINING",
        Drained = "DRAINED",
    }
}

/// `DrainConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DrainConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_grace_period: Option<DurationInfo>,
    #[serde(default)]
    pub mark_gone: bool,
}

/// `DrainInfo`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainInfo {
    pub state: DrainState,
    pub config: DrainConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_match_by_the_fields_they_name() {
        let both = MachineId {
            hostname: Some("Node1".into()),
            ip: Some("10.0.0.1".into()),
        };
        let host = MachineId {
            hostname: Some("node1".into()),
            ip: None,
        };
        let ip = MachineId {
            hostname: None,
            ip: Some("10.0.0.2".into()),
        };
        assert!(both.matches("node1", "10.0.0.1"));
        assert!(!both.matches("node1", "10.0.0.2"));
        assert!(host.matches("NODE1", "1.2.3.4"));
        assert!(ip.matches("anything", "10.0.0.2"));
        assert_eq!(both.key(), ("node1".to_string(), "10.0.0.1".to_string()));
    }

    #[test]
    fn schedule_round_trips_in_mesos_shape() {
        let text = r#"{"windows":[{"machine_ids":[{"hostname":"m1","ip":"10.0.0.1"}],"unavailability":{"start":{"nanoseconds":1443830400000000000},"duration":{"nanoseconds":3600000000000}}}]}"#;
        let s: Schedule = serde_json::from_str(text).unwrap();
        assert_eq!(
            s.windows[0].unavailability.start.nanoseconds,
            1_443_830_400_000_000_000
        );
        assert_eq!(serde_json::to_string(&s).unwrap(), text);
        assert_eq!(serde_json::to_string(&Schedule::default()).unwrap(), "{}");
    }
}
