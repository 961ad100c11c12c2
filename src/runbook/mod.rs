//! Runbooks: the procedures team leads write, read and checked.
//!
//! A runbook is TOML. `raw.rs` mirrors the file with serde
//! (`deny_unknown_fields`); `load.rs` walks the spanned TOML tree so every
//! problem is reported with its line and column, then builds the typed
//! `model.rs` the engine walks. `keys.rs` checks keys; `sections.rs`,
//! `preflight.rs`, `steps.rs`, `external_check.rs`, `canary.rs`,
//! `expect.rs`, `vars.rs` and `destructive.rs` check meaning, and `lint.rs`
//! renders the diagnostics of many files for `swapguard lint`. Below them
//! all, `ctx.rs` (the load context, spans), `values.rs` (durations, choices,
//! "did you mean") and `placeholders.rs` (where `{variables}` are) use none
//! of the checks, so the files import each other in one direction only
//! (`layering_tests.rs` holds them to it). The format is documented in
//! docs/runbook-format.md.

mod canary;
mod ctx;
pub(crate) mod destructive;
pub mod diag;
mod expect;
mod external_check;
mod halt_texts;
mod keys;
pub mod lint;
pub mod load;
pub mod model;
mod notify;
mod placeholders;
mod preflight;
pub mod raw;
mod sections;
mod shell;
mod steps;
pub mod template;
mod values;
pub mod vars;

#[cfg(test)]
#[path = "layering_tests.rs"]
mod layering_tests;
