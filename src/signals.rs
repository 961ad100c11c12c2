//! Ctrl-C, SIGTERM and SIGHUP stop a run at a safe point.
//!
//! The handler only sets a flag; the engine checks it between actions (never
//! between a command and the journal entry for its result) and stops with
//! "interrupted". A second Ctrl-C while the first is pending ends the
//! process at once with status 130, for a run stuck in a hung tool.

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

static FLAG: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The process-wide interrupt flag, with handlers installed on first use.
pub fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    if let Some(flag) = FLAG.get() {
        return Ok(Arc::clone(flag));
    }
    let flag = Arc::new(AtomicBool::new(false));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        // Order matters: the conditional shutdown fires only when the flag is
        // already set, i.e. on the second signal.
        signal_hook::flag::register_conditional_shutdown(signal, 130, Arc::clone(&flag))
            .context("cannot install signal handler")?;
        signal_hook::flag::register(signal, Arc::clone(&flag))
            .context("cannot install signal handler")?;
    }
    Ok(Arc::clone(FLAG.get_or_init(|| flag)))
}
