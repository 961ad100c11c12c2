//! What btrfs's own words mean for health: the per-device error counters,
//! the device states that are faults, and `btrfs`'s subcommands that write
//! to a drive. The registry (src/backend/registry.rs) lists these for lint,
//! the guard and `test --mutate`.

use crate::backend::registry::Tool;

/// A device's faults, as survivor conditions (name, meaning).
pub const CONDITIONS: [(&str, &str); 6] = [
    ("btrfs.missing", "btrfs lists the device as missing"),
    (
        "btrfs.write_io_errs",
        "btrfs counted write errors on the device",
    ),
    (
        "btrfs.read_io_errs",
        "btrfs counted read errors on the device",
    ),
    (
        "btrfs.flush_io_errs",
        "btrfs counted failed flushes on the device",
    ),
    (
        "btrfs.corruption_errs",
        "btrfs found data on the device that failed its checksum",
    ),
    (
        "btrfs.generation_errs",
        "btrfs found stale metadata on the device",
    ),
];

/// The counter `test --mutate` raises on a survivor.
pub const ERROR_COUNTER: &str = "btrfs.write_io_errs";

/// `btrfs`, and its subcommands that write to a drive. `replace` also
/// names `replace status`, which only reads: a runbook writes that one with
/// `-1` in a wait step, where lint does not ask for a confirmation.
pub const TOOLS: [Tool; 1] = [Tool {
    program: "btrfs",
    writes: &BTRFS_WRITES,
}];

const BTRFS_WRITES: [(&str, &str); 2] = [
    ("start", "writes the file system's data onto the new device"),
    ("add", "adds the device to the file system and writes to it"),
];

/// btrfs file systems have no block device of their own.
pub fn is_array_device(_name: &str) -> bool {
    false
}
