//! Runbooks: the procedures team leads write, read and checked.
//!
//! A runbook is TOML. `raw.rs` mirrors the file with serde
//! (`deny_unknown_fields`); `load.rs` walks the spanned TOML tree so every
//! problem is reported with its line and column, then builds the typed
//! `model.rs` the engine walks.

pub mod diag;
pub mod load;
pub mod model;
pub mod raw;
pub mod template;
