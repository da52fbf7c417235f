//! Error types: `ParseError` for text input (agent flags, range/set literals,
//! attributes) and `ValidationError` for structurally valid but semantically
//! invalid resources (Mesos v1 JSON).

use thiserror::Error;

/// An error while parsing textual resource or attribute syntax.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// An item has no name before the `:` (or the `(`).
    #[error("empty resource name in '{0}'")]
    EmptyName(String),
    /// An item has no `name:value` separator.
    #[error("missing ':' in '{0}'")]
    MissingSeparator(String),
    /// An item has a name but no value after the `:`.
    #[error("missing value in '{0}'")]
    MissingValue(String),
    /// A value could not be parsed as a number.
    #[error("invalid number '{0}'")]
    InvalidNumber(String),
    /// A scalar is negative, NaN or infinite.
    #[error("invalid scalar '{0}': must be finite and non-negative")]
    InvalidScalar(String),
    /// A range whose begin exceeds its end, or a malformed range item.
    #[error("invalid range '{0}'")]
    InvalidRange(String),
    /// Brackets or braces are not balanced.
    #[error("unbalanced brackets in '{0}'")]
    Unbalanced(String),
    /// `name()` with nothing between the parentheses.
    #[error("empty role in '{0}'")]
    EmptyRole(String),
    /// A role name that Mesos would reject.
    #[error("invalid role '{role}': {reason}")]
    InvalidRole {
        /// The offending role.
        role: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The text looked like JSON but did not deserialize.
    #[error("invalid resources JSON: {0}")]
    Json(String),
    /// The JSON deserialized but failed validation.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// An error validating a Mesos `Resource` or `Attribute` object.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValidationError {
    /// The resource has an empty name.
    #[error("resource name must not be empty")]
    EmptyName,
    /// `type` is not one of SCALAR/RANGES/SET/TEXT.
    #[error("resource '{name}': unknown type '{ty}'")]
    UnknownType {
        /// Resource name.
        name: String,
        /// The offending type string.
        ty: String,
    },
    /// `type` is valid Mesos but not allowed here (TEXT resources).
    #[error("resource '{name}': type '{ty}' is not supported")]
    UnsupportedType {
        /// Resource name.
        name: String,
        /// The offending type string.
        ty: String,
    },
    /// The value field matching `type` is absent.
    #[error("resource '{name}': type '{ty}' but no matching value")]
    MissingValue {
        /// Resource name.
        name: String,
        /// The declared type.
        ty: String,
    },
    /// A scalar is negative, NaN or infinite.
    #[error("resource '{name}': invalid scalar value {value}")]
    InvalidScalar {
        /// Resource name.
        name: String,
        /// The offending value, as text.
        value: String,
    },
    /// A range with begin > end.
    #[error("resource '{name}': invalid range [{begin}-{end}]")]
    InvalidRange {
        /// Resource name.
        name: String,
        /// Range begin.
        begin: u64,
        /// Range end.
        end: u64,
    },
    /// A role name that Mesos would reject.
    #[error("resource '{name}': invalid role '{role}': {reason}")]
    InvalidRole {
        /// Resource name.
        name: String,
        /// The offending role.
        role: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A malformed reservation (missing/unknown type, missing role, ...).
    #[error("resource '{name}': invalid reservation: {reason}")]
    InvalidReservation {
        /// Resource name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The same resource name appears with two different value types.
    #[error("resource '{name}' appears with different types ({first} and {second})")]
    TypeConflict {
        /// Resource name.
        name: String,
        /// The type seen first.
        first: String,
        /// The conflicting type.
        second: String,
    },
}
