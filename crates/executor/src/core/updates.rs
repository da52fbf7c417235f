//! The book of status updates sent to the agent but not yet acknowledged, in send order.
//! They are resent in SUBSCRIBE after a reconnection and gate the executor's exit.

use base64::Engine;
use strata_api::{TaskId, TaskStatus};

/// A status update uuid: 16 raw bytes (base64 on the wire).
pub type Uuid = [u8; 16];

/// Encodes a uuid the way `TaskStatus.uuid` carries it.
pub fn encode_uuid(uuid: &Uuid) -> String {
    base64::engine::general_purpose::STANDARD.encode(uuid)
}

/// Decodes a wire uuid; `None` unless it is base64 of exactly 16 bytes.
pub fn decode_uuid(text: &str) -> Option<Uuid> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    bytes.try_into().ok()
}

/// One unacknowledged update.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// Position in send order (monotonic).
    pub seq: u64,
    pub uuid: Uuid,
    pub status: TaskStatus,
}

/// Unacknowledged updates in send order.
#[derive(Debug, Default)]
pub struct UpdateBook {
    pending: Vec<Pending>,
    next_seq: u64,
}

impl UpdateBook {
    /// Records a sent update; returns its sequence number.
    pub fn push(&mut self, uuid: Uuid, status: TaskStatus) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.pending.push(Pending { seq, uuid, status });
        seq
    }

    /// Removes the update with `uuid`; returns its task if it was pending.
    pub fn ack(&mut self, uuid: &Uuid) -> Option<TaskId> {
        let index = self.pending.iter().position(|p| &p.uuid == uuid)?;
        Some(self.pending.remove(index).status.task_id)
    }

    /// Whether the update with `uuid` is still unacknowledged.
    pub fn contains(&self, uuid: &Uuid) -> bool {
        self.pending.iter().any(|p| &p.uuid == uuid)
    }

    /// Whether nothing waits for an acknowledgement.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The sequence number the next update will get (everything below it was recorded).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Unacknowledged updates in send order.
    pub fn pending(&self) -> &[Pending] {
        &self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_api::TaskState;

    #[test]
    fn acks_remove_only_their_update() {
        let mut book = UpdateBook::default();
        let status = |id: &str| TaskStatus::new(TaskId::new(id), TaskState::Running);
        assert_eq!(book.push([1; 16], status("a")), 0);
        assert_eq!(book.push([2; 16], status("b")), 1);
        assert_eq!(book.ack(&[3; 16]), None);
        assert_eq!(book.ack(&[1; 16]), Some(TaskId::new("a")));
        assert_eq!(book.ack(&[1; 16]), None);
        assert!(book.contains(&[2; 16]));
        assert_eq!(book.next_seq(), 2);
        assert_eq!(book.ack(&[2; 16]), Some(TaskId::new("b")));
        assert!(book.is_empty());
    }

    #[test]
    fn uuids_round_trip_and_reject_wrong_lengths() {
        let uuid = [7u8; 16];
        assert_eq!(decode_uuid(&encode_uuid(&uuid)), Some(uuid));
        assert_eq!(encode_uuid(&[0; 16]), "AAAAAAAAAAAAAAAAAAAAAA==");
        assert_eq!(decode_uuid("AAAA"), None);
        assert_eq!(decode_uuid("not base64!"), None);
    }
}
