//! Ctrl-C, SIGTERM and SIGHUP stop a run at a safe point.
//!
//! A thread receives the signals and decides ([`react`]); the engine only
//! sees a flag, which it checks between actions (never between a command
//! and the journal entry for its result) and then stops with
//! "interrupted", switching off the LEDs it switched on. The process then
//! exits 130, by re-raising SIGINT when that is what stopped it, as fd does,
//! so a calling shell sees the interrupt ([`exit`]).
//!
//! A second Ctrl-C while the first is pending (a hung tool, a slow SMART
//! probe) leaves at once, without waiting for the safe point, except during
//! a physical or command step: the technician's hands may be in the
//! chassis, or a command's result may never reach the journal, and leaving
//! then stops the guard without the usual goodbye. So there the second
//! Ctrl-C only asks, and a third leaves. SIGTERM and SIGHUP never leave
//! early: they come from the system or a closed terminal, not from a person
//! who can be asked.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// What the process knows about signals received.
struct State {
    /// Set on the first signal; the engine stops at its next safe point.
    flag: Arc<AtomicBool>,
    /// SIGINTs received since the flag was last cleared.
    sigints: AtomicUsize,
    /// The last signal received (0: none).
    last: AtomicI32,
    /// A physical or command step is on screen.
    physical: AtomicBool,
}

static STATE: OnceLock<Arc<State>> = OnceLock::new();

/// What to do on a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Set the flag: stop at the next safe point.
    Stop,
    /// Tell the technician a further Ctrl-C leaves at once, and why that is
    /// risky now.
    Ask,
    /// Leave at once.
    Leave,
}

/// The decision, pure: `sigints_before` is how many Ctrl-Cs came before
/// this signal while the first is still pending.
pub fn react(signal: i32, sigints_before: usize, physical: bool) -> Reaction {
    if signal != SIGINT {
        return Reaction::Stop;
    }
    match (sigints_before, physical) {
        (0, _) => Reaction::Stop,
        (1, true) => Reaction::Ask,
        _ => Reaction::Leave,
    }
}

fn state() -> Result<Arc<State>> {
    if let Some(s) = STATE.get() {
        return Ok(Arc::clone(s));
    }
    let state = Arc::new(State {
        flag: Arc::new(AtomicBool::new(false)),
        sigints: AtomicUsize::new(0),
        last: AtomicI32::new(0),
        physical: AtomicBool::new(false),
    });
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    let seen = Arc::clone(&state);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                let before = if signal == SIGINT {
                    seen.sigints.fetch_add(1, Ordering::SeqCst)
                } else {
                    0
                };
                seen.last.store(signal, Ordering::SeqCst);
                match react(signal, before, seen.physical.load(Ordering::SeqCst)) {
                    Reaction::Stop => seen.flag.store(true, Ordering::SeqCst),
                    Reaction::Ask => eprintln!(
                        "\nswapguard stops at the next safe point. Leaving now could leave hands in \
                         the chassis unwatched, or a command's result unrecorded. \
                         Press Ctrl-C again to leave anyway."
                    ),
                    Reaction::Leave => {
                        eprintln!(
                            "\nleaving at once; the journal has everything up to its last entry \
                             (`swapguard resume` continues the run)"
                        );
                        leave(SIGINT, crate::exit::Code::Interrupted.number());
                    }
                }
            }
        })
        .context("cannot start the signal thread")?;
    Ok(Arc::clone(STATE.get_or_init(|| state)))
}

/// The process-wide interrupt flag, with handlers installed on first use.
/// Clear it (and the count of Ctrl-Cs) with [`reset`] before a run.
pub fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    Ok(Arc::clone(&state()?.flag))
}

/// Whether a signal asked the run to stop and it has not stopped yet (a
/// prompt waiting for a line gives up when this turns true).
pub fn pending() -> bool {
    STATE.get().is_some_and(|s| s.flag.load(Ordering::SeqCst))
}

/// Forget earlier signals: a new run starts uninterrupted.
pub fn reset() {
    if let Some(s) = STATE.get() {
        s.flag.store(false, Ordering::SeqCst);
        s.sigints.store(0, Ordering::SeqCst);
        s.last.store(0, Ordering::SeqCst);
        s.physical.store(false, Ordering::SeqCst);
    }
}

/// Whether a physical or command step is on screen (for the second Ctrl-C).
pub fn set_physical(on: bool) {
    if let Some(s) = STATE.get() {
        s.physical.store(on, Ordering::SeqCst);
    }
}

/// End the process with `code`. After an interrupt by SIGINT the signal is
/// raised again with its default action, so a calling shell or script sees
/// that the program was interrupted (status 130 in the shell), not that it
/// merely failed.
pub fn exit(code: i32) -> ! {
    let by_sigint = STATE
        .get()
        .is_some_and(|s| s.last.load(Ordering::SeqCst) == SIGINT);
    if code == crate::exit::Code::Interrupted.number() && by_sigint {
        leave(SIGINT, code);
    }
    std::process::exit(code)
}

fn leave(signal: i32, code: i32) -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_ctrl_c_asks_during_a_physical_step_and_leaves_otherwise() {
        use Reaction::{Ask, Leave, Stop};
        let cases = [
            ("first ctrl-c", SIGINT, 0, false, Stop),
            ("first ctrl-c, physical", SIGINT, 0, true, Stop),
            ("second ctrl-c", SIGINT, 1, false, Leave),
            ("second ctrl-c, physical", SIGINT, 1, true, Ask),
            ("third ctrl-c, physical", SIGINT, 2, true, Leave),
            ("sigterm", SIGTERM, 0, false, Stop),
            ("sigterm after ctrl-c", SIGTERM, 0, true, Stop),
            ("sighup", SIGHUP, 0, false, Stop),
        ];
        for (name, signal, before, physical, want) in cases {
            assert_eq!(react(signal, before, physical), want, "{name}");
        }
    }
}
