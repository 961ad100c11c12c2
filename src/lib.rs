//! swapguard: a guarded drive-swap tool for RAID arrays.
//!
//! `run` is the whole program: it parses arguments, dispatches the
//! command, prints errors in one place and returns the exit code. It can be
//! called more than once in a process.

pub mod backend;
pub mod canary;
pub mod ci;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod engine;
pub mod error;
pub mod exit;
pub mod health;
pub mod journal;
pub mod lock;
pub mod notify;
pub mod operator;
pub mod output;
pub mod quarantine;
pub mod runbook;
pub mod sanitize;
pub mod scenario;
pub mod session;
pub mod signals;
pub mod simulate;
pub mod state;
pub mod trust;
pub mod units;

use std::ffi::OsString;

use crate::error::{Diagnostics, UsageError};
use crate::lock::LockHeld;

/// Run swapguard with these arguments (the first is the program name) and
/// return the process exit code.
pub fn run<I, T>(args: I) -> i32
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    code(args).number()
}

fn code<I, T>(args: I) -> exit::Code
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let config = match cli::parse(args) {
        Ok(config) => config,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::Code::Usage
            } else {
                exit::Code::Success
            };
        }
    };
    match commands::dispatch(&config) {
        Ok(code) => code,
        // Whoever read the output went away (`| head -1`): nothing to say.
        Err(e) if output::is_stdout_closed(&e) => exit::Code::Success,
        Err(e) if e.downcast_ref::<Diagnostics>().is_some() => {
            eprintln!("{}", sanitize::sanitize(&e.to_string(), true));
            exit::Code::Usage
        }
        Err(e) => {
            eprintln!("error: {}", sanitize::sanitize(&format!("{e:#}"), true));
            if e.downcast_ref::<LockHeld>().is_some() {
                exit::Code::Locked
            } else if e.downcast_ref::<UsageError>().is_some()
                || e.downcast_ref::<state::Unsafe>().is_some()
            {
                exit::Code::Usage
            } else {
                exit::Code::Failure
            }
        }
    }
}
