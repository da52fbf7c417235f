//! The allocator: decides which framework is offered which agent's free resources, by
//! weighted Dominant Resource Fairness over roles, then over frameworks within a role.
//!
//! Plain data in, decisions out. It knows nothing about HTTP, JSON, offers' ids or time
//! sources: callers pass `now` in seconds and get [`Allocation`]s back.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod allocator;
mod sorter;

pub use allocator::{Allocation, Allocator, Config, Key};
pub use sorter::Sorter;
