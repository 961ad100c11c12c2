//! Runbooks: the procedures team leads write, read and checked.
//!
//! A runbook is TOML. `raw.rs` mirrors the file with serde
//! (`deny_unknown_fields`); `load.rs` walks the spanned TOML tree so every
//! problem is reported with its line and column, then builds the typed
//! `model.rs` the engine walks. `keys.rs` checks keys; `check.rs`, `preflight.rs`,
//! `steps.rs`, `checks.rs`, `canary.rs`, `expect.rs`, `vars.rs` and `destructive.rs` check meaning, and `lint.rs`
//! renders the diagnostics of many files for `swapguard lint`. The format
//! is documented in docs/runbook-format.md.

mod canary;
mod check;
mod checks;
mod destructive;
pub mod diag;
mod expect;
mod halt_texts;
mod keys;
pub mod lint;
pub mod load;
pub mod model;
mod preflight;
pub mod raw;
mod shell;
mod steps;
pub mod template;
pub mod vars;
