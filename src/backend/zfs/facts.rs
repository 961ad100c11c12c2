//! What ZFS's own words mean for health: the counters a leaf carries, the
//! leaf states that are faults, and `zpool`'s subcommands that write to a
//! drive. The registry (src/backend/registry.rs) lists these for lint, the
//! guard and `test --mutate`.

use crate::backend::registry::Tool;

/// Per-leaf counters, read at every look (`zpool status`): any rise on a
/// survivor halts.
pub const COUNTER_NAMES: [&str; 4] = [
    "zfs.read_errors",
    "zfs.write_errors",
    "zfs.checksum_errors",
    "zfs.slow_ios",
];

/// A leaf's faults, as survivor conditions (name, meaning).
pub const CONDITIONS: [(&str, &str); 7] = [
    ("zfs.faulted", "ZFS faulted the device (too many errors)"),
    ("zfs.removed", "ZFS saw the device removed"),
    ("zfs.unavail", "ZFS cannot open the device"),
    ("zfs.offline", "the device was taken offline"),
    (
        "zfs.degraded",
        "ZFS marked the device degraded (too many errors)",
    ),
    ("zfs.read_errors", "ZFS counted read errors on the device"),
    (
        "zfs.checksum_errors",
        "ZFS found data on the device that failed its checksum",
    ),
];

/// The counter `test --mutate` raises on a survivor: a damaged copy shows
/// first as checksum errors.
pub const ERROR_COUNTER: &str = "zfs.checksum_errors";

/// `zpool`, and its subcommands that write to a drive.
pub const TOOLS: [Tool; 1] = [Tool {
    program: "zpool",
    writes: &ZPOOL_WRITES,
}];

const ZPOOL_WRITES: [(&str, &str); 6] = [
    ("replace", "writes the pool's data onto the new device"),
    ("attach", "writes the pool's data onto the attached device"),
    ("add", "adds the device to the pool and writes to it"),
    ("create", "writes new pool labels over the devices"),
    ("labelclear", "erases the device's ZFS labels"),
    ("destroy", "destroys the pool"),
];

/// Whether a name under `/dev/` is a ZFS volume (`zd0`, `zvol/tank/vol`)
/// rather than a drive.
pub fn is_array_device(name: &str) -> bool {
    name.starts_with("zvol/")
        || name
            .strip_prefix("zd")
            .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_digit()))
}
