//! Health: the snapshot model and the guard that compares snapshots.

pub mod guard;
pub mod model;
pub mod policy;
pub mod verdict;
