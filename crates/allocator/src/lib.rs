//! The allocator: decides which framework is offered which agent's free resources, by
//! weighted hierarchical Dominant Resource Fairness over roles, then over frameworks
//! within a role, within quota limits and guarantees, honouring refusal filters.
//!
//! Plain data in, decisions out. It knows nothing about HTTP, JSON, offers' ids or time
//! sources: callers pass `now` in seconds and get [`Allocation`]s back.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod allocator;
mod filters;
pub mod quota;
pub mod roles;
mod sorter;

pub use allocator::{
    Allocation, Allocator, Config, Explanation, Key, Pending, Placement, Reason, RoleReport,
};
pub use quota::Quota;
pub use sorter::Sorter;
