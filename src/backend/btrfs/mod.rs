//! btrfs multi-device file systems: what the kernel and btrfs-progs say.
//!
//! This folder holds the readers the btrfs backend is built from, each a
//! pure function over text or a plain path root so tests run them on
//! captured outputs and trees:
//!
//! - `sysfs.rs`: `/sys/fs/btrfs/<uuid>/devinfo/<devid>/` (missing, replace
//!   target, writeable, the five error counters) and `allocation/` (which
//!   chunk profiles exist, so a `single` chunk on a RAID1 file system is
//!   seen without running a tool);
//! - `progs.rs`: `btrfs filesystem show --raw`, `btrfs device stats` (text
//!   and `--format json`), `btrfs filesystem df --raw`, `btrfs replace
//!   status -1`, `btrfs balance status`, `btrfs scrub status` (both formats);
//! - `profile.rs`: chunk profiles and how many devices each can lose.
//!
//! Counters carry the names below; each rise on a survivor is a degradation.

pub mod backend;
pub mod facts;
pub mod profile;
pub mod progs;
pub mod sysfs;

/// The five per-device error counters btrfs keeps (persisted in the device
/// tree, so they survive a remount), as swapguard names them.
pub const COUNTER_NAMES: [&str; 5] = [
    "btrfs.write_io_errs",
    "btrfs.read_io_errs",
    "btrfs.flush_io_errs",
    "btrfs.corruption_errs",
    "btrfs.generation_errs",
];

/// One device's error counters, in btrfs's own order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErrorStats {
    pub write: u64,
    pub read: u64,
    pub flush: u64,
    pub corruption: u64,
    pub generation: u64,
}

impl ErrorStats {
    /// The counters under their swapguard names (`COUNTER_NAMES`).
    pub fn named(&self) -> [(&'static str, u64); 5] {
        [
            (COUNTER_NAMES[0], self.write),
            (COUNTER_NAMES[1], self.read),
            (COUNTER_NAMES[2], self.flush),
            (COUNTER_NAMES[3], self.corruption),
            (COUNTER_NAMES[4], self.generation),
        ]
    }

    /// Set one counter from a name as btrfs prints it: `write_io_errs`
    /// (btrfs-progs) or `write_errs` (sysfs `error_stats`). `false` for a
    /// name that is not one of the five.
    fn set(&mut self, name: &str, value: u64) -> bool {
        let slot = match name {
            "write_io_errs" | "write_errs" => &mut self.write,
            "read_io_errs" | "read_errs" => &mut self.read,
            "flush_io_errs" | "flush_errs" => &mut self.flush,
            "corruption_errs" => &mut self.corruption,
            "generation_errs" => &mut self.generation,
            _ => return false,
        };
        *slot = value;
        true
    }
}

/// A sequence of `name value` pairs (sysfs `error_stats`, on one line or
/// several) or of `[path].name value` lines, collected into the five
/// counters. Every one of the five must be present exactly once; an
/// unknown name is an error, so a renamed counter cannot read as zero.
fn collect_stats<'a>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) -> Result<ErrorStats, String> {
    let mut stats = ErrorStats::default();
    let mut seen = Vec::new();
    for (name, value) in pairs {
        let value: u64 = value
            .parse()
            .map_err(|_| format!("`{name}` has the value `{value}`, not a number"))?;
        if seen.contains(&name) {
            return Err(format!("`{name}` is given twice"));
        }
        if !stats.set(name, value) {
            return Err(format!("`{name}` is not a btrfs device error counter"));
        }
        seen.push(name);
    }
    if seen.len() != 5 {
        return Err(format!(
            "{} of the five error counters given ({}), want write, read, flush, corruption and generation",
            seen.len(),
            if seen.is_empty() {
                "none".to_string()
            } else {
                seen.join(", ")
            }
        ));
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_from_pairs_in_both_spellings() {
        let sysfs = "write_errs 1 read_errs 2 flush_errs 3 corruption_errs 4 generation_errs 5";
        let words: Vec<&str> = sysfs.split_whitespace().collect();
        let stats = collect_stats(words.chunks(2).map(|p| (p[0], p[1]))).unwrap();
        assert_eq!(
            stats,
            ErrorStats {
                write: 1,
                read: 2,
                flush: 3,
                corruption: 4,
                generation: 5
            }
        );
        assert_eq!(stats.named()[3], ("btrfs.corruption_errs", 4));
    }

    #[test]
    fn stats_refuse_missing_twice_unknown_and_garbage() {
        let table: &[(&[(&str, &str)], &str)] = &[
            (&[], "0 of the five error counters given (none)"),
            (
                &[("write_errs", "0"), ("read_errs", "0")],
                "2 of the five error counters given (write_errs, read_errs)",
            ),
            (&[("write_errs", "0"), ("write_errs", "1")], "given twice"),
            (&[("trim_errs", "0")], "`trim_errs` is not a btrfs device"),
            (&[("write_errs", "-1")], "`-1`, not a number"),
            (&[("write_errs", "")], "``, not a number"),
        ];
        for (pairs, want) in table {
            let err = collect_stats(pairs.iter().copied()).unwrap_err();
            assert!(err.contains(want), "{pairs:?}: {err}");
        }
    }
}

#[cfg(test)]
mod backend_tests;
#[cfg(test)]
mod tests_captures;

/// Open btrfs on a real host: the registry's constructor for
/// `backend = "btrfs"` (`--array` = a mount point or the file-system UUID).
pub fn open(
    host: crate::backend::registry::Host,
) -> anyhow::Result<Box<dyn crate::backend::Backend>> {
    let kmsg = host.sysroot.join("dev/kmsg");
    let mut backend = backend::BtrfsBackend::real(host.sysroot, host.processes);
    if host.watch_kernel_log {
        backend = backend.watching(kmsg);
    }
    if let Some(clock) = host.clock {
        backend = backend.with_clock(Box::new(clock));
    }
    Ok(Box::new(backend))
}
