//! Runbooks in CI: prove each one before a technician follows it.
//!
//! `swapguard test` finds runbooks and their scenarios (`discover.rs`),
//! lints each runbook and dry-runs every scenario on the same engine and
//! simulator as `swapguard dry-run` (`suite.rs`), derives bad-hardware
//! variants of the healthy scenarios that every runbook must halt on
//! (`mutate.rs`), warns about a runbook that never proves it halts
//! (`proof.rs`), and reports for people (`report.rs`), for scripts (the
//! [`suite::Report`] as JSON) and for CI systems (`junit.rs`). `plan.rs`
//! prints a runbook as a paper checklist. docs/ci.md describes the layout
//! and the rules.

pub mod discover;
pub mod junit;
pub mod mutate;
pub mod plan;
pub mod proof;
pub mod report;
pub mod suite;
