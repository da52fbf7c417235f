//! Newtype IDs, written on the wire as `{"value":"…"}` and validated like Mesos IDs.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

macro_rules! wire_id {
    ($($(#[$meta:meta])* $name:ident;)*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub std::sync::Arc<str>);

        impl $name {
            /// Wraps a raw id string. Clones share it (ids are copied into many
            /// records: a task's id is in its record, its statuses and two indexes).
            pub fn new(value: impl Into<String>) -> Self { Self(std::sync::Arc::from(value.into())) }
            /// The raw id string.
            pub fn as_str(&self) -> &str { &self.0 }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(&self.0) }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self { Self(std::sync::Arc::from(s)) }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("value", &*self.0)?;
                m.end()
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                struct Raw { value: String }
                Raw::deserialize(d).map(|r| $name::new(r.value))
            }
        }
    )*};
}

wire_id! {
    /// `<master-uuid>-<4-digit counter>`, assigned by the master.
    FrameworkId;
    /// `<master-uuid>-S<n>`, assigned by the master.
    AgentId;
    /// `<master-uuid>-O<n>`, assigned by the master.
    OfferId;
    /// Chosen by the framework.
    TaskId;
    /// Chosen by the framework (the task id for command tasks).
    ExecutorId;
    /// Chosen by the agent for each executor run.
    ContainerId;
}

/// Why an id from outside is unacceptable (Mesos `common::validation::validateID`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("ID must not be empty")]
    Empty,
    #[error("ID must be at most 255 bytes, got {0}")]
    TooLong(usize),
    #[error("'.' and '..' are disallowed for ID")]
    Dots,
    #[error("ID '{0}' contains invalid characters ('/', '\\' or control characters)")]
    BadChars(String),
}

/// Validates an id the way Mesos does: non-empty, ≤255 bytes, not `.`/`..`, and free of
/// `/`, `\` and control characters (ids become path components in sandboxes).
pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > 255 {
        return Err(IdError::TooLong(id.len()));
    }
    if id == "." || id == ".." {
        return Err(IdError::Dots);
    }
    if id.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
        return Err(IdError::BadChars(id.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_value_objects() {
        let id = TaskId::new("t1");
        assert_eq!(serde_json::to_string(&id).unwrap(), r#"{"value":"t1"}"#);
        let back: TaskId = serde_json::from_str(r#"{"value":"t1","extra":1}"#).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<TaskId>(r#""t1""#).is_err());
    }

    #[test]
    fn validation_matches_mesos() {
        let cases: &[(&str, bool)] = &[
            ("ok-1_2.3", true),
            ("", false),
            (".", false),
            ("..", false),
            ("a/b", false),
            ("a\\b", false),
            ("a\nb", false),
            ("ünïcode", true),
        ];
        for (id, ok) in cases {
            assert_eq!(validate_id(id).is_ok(), *ok, "{id:?}");
        }
        assert_eq!(validate_id(&"x".repeat(256)), Err(IdError::TooLong(256)));
    }
}
