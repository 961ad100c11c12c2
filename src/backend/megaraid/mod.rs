//! Broadcom MegaRAID and Dell PERC controllers, through their own tool
//! (`storcli64`, `storcli`, `perccli64`, `perccli`) and its JSON output
//! (`... J`).
//!
//! The operating system sees only virtual drives (VDs); the physical
//! drives behind them are known to the controller by enclosure and slot.
//! A look asks the tool about the VD, its drive group and every physical
//! drive on the controller, and judges every drive, never the VD's state
//! alone. See `facts.rs` for the contract shared with the simulator.

pub mod backend;
pub mod facts;
pub mod json;
pub mod look;

pub use facts::COUNTER_NAMES;

/// Open megaraid on a real host: the registry's constructor for
/// `backend = "megaraid"`.
pub fn open(
    host: crate::backend::registry::Host,
) -> anyhow::Result<Box<dyn crate::backend::Backend>> {
    let mut backend = backend::MegaraidBackend::real(host.sysroot, host.processes);
    if let Some(clock) = host.clock {
        backend = backend.with_clock(Box::new(clock));
    }
    Ok(Box::new(backend))
}
#[cfg(test)]
mod tests_backend;
#[cfg(test)]
mod tests_captures;
