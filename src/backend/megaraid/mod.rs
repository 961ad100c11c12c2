//! Broadcom MegaRAID and Dell PERC controllers, through their own tool
//! (`storcli64`, `storcli`, `perccli64`, `perccli`) and its JSON output
//! (`... J`).
//!
//! The operating system sees only virtual drives (VDs); the physical
//! drives behind them are known to the controller by enclosure and slot.
//! A look asks the tool about the VD, its drive group and every physical
//! drive on the controller, and judges every drive, never the VD's state
//! alone. See `facts.rs` for the contract shared with the simulator.

pub mod facts;

pub use facts::COUNTER_NAMES;
