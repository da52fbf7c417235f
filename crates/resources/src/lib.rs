//! Strata's Mesos-compatible resource model: quantities, ranges, sets and
//! reservations; arithmetic; agent-flag and Mesos v1 JSON parsing; output in
//! Mesos' three JSON formats and the flattened endpoint form. Pure: no IO.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod attributes;
pub mod constraints;
pub mod error;
pub mod flat;
pub mod operations;
pub mod parse;
pub mod ranges;
pub mod resource;
pub mod resources;
pub mod scalar;
pub mod set;
pub mod value;
pub mod wire;

pub use attributes::{
    attributes_to_flat, attributes_to_string, parse_attributes, AttrValue, Attribute, WireAttribute,
};
pub use error::{ParseError, ValidationError};
pub use operations::{Conversion, OperationError};
pub use parse::validate_role;
pub use ranges::{Range, Ranges};
pub use resource::{Label, Labels, Reservation, ReservationKind, Resource};
pub use resources::Resources;
pub use scalar::Scalar;
pub use set::Set;
pub use value::Value;
pub use wire::{WireFormat, WireResource};
