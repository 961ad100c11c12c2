//! The backend registry: the one place that maps the name a runbook writes
//! (`backend = "md"`) to the code that opens that kind of storage.
//!
//! Adding a backend is its folder under `src/backend/` and one line in
//! [`BACKENDS`]. A name whose backend is not built yet is listed with no
//! constructor, so lint and `run` can say so clearly instead of calling it
//! unknown.

use std::path::PathBuf;

use anyhow::Result;

use crate::backend::process::ProcessRunner;
use crate::backend::{Backend, btrfs, md, megaraid, zfs};
use crate::clock::SystemClock;

/// What a real backend is opened with: where the host's /proc, /sys and
/// /dev are (`/` or a captured tree), how programs are run, and for a run
/// (not `status`) the kernel log to watch and the run's clock.
pub struct Host {
    pub sysroot: PathBuf,
    pub processes: ProcessRunner,
    /// Watch the kernel log (`<sysroot>/dev/kmsg`) for I/O errors.
    pub watch_kernel_log: bool,
    pub clock: Option<SystemClock>,
}

/// Opens one kind of storage on a host.
pub type Open = fn(Host) -> Result<Box<dyn Backend>>;

/// One backend name.
pub struct Entry {
    /// What a runbook writes: `backend = "md"`.
    pub name: &'static str,
    /// How to open it on a real host; `None`: the name is reserved, the
    /// backend is not built yet.
    pub open: Option<Open>,
    /// Whether a runbook may name it. The simulator is never named: a dry
    /// run swaps it in for the runbook's own backend.
    pub runbook: bool,
    /// The cheap counters it reads at every look (what `[guard] tolerate`
    /// and `halt_on` may name besides SMART and the kernel log's).
    pub counters: &'static [&'static str],
    /// Its own faults as survivor conditions (name, meaning): what
    /// `[guard] accept_survivor` may name besides the drive-level ones.
    pub conditions: &'static [(&'static str, &'static str)],
    /// Its own command-line tools and the options of each that write to a
    /// drive: what lint holds behind a typed confirmation.
    pub tools: &'static [Tool],
    /// Whether a name under `/dev/` (`md0`, `md/data`) is one of its
    /// arrays rather than a drive.
    pub array_device: fn(&str) -> bool,
    /// Its own per-member error counter, the first to rise on a damaged
    /// member: what `test --mutate` raises on a survivor.
    pub error_counter: Option<&'static str>,
    /// Where each member of one of its arrays holds its copy of the data,
    /// for the data canary (see `canary::MemberCopies`); `None`: its
    /// members cannot be read one by one.
    pub member_copies: Option<crate::canary::MemberCopies>,
}

/// A backend's command-line tool (md: `mdadm`).
pub struct Tool {
    pub program: &'static str,
    /// Options that write to a drive, and what they do
    /// (`--zero-superblock`, `erases the RAID superblock`).
    pub writes: &'static [(&'static str, &'static str)],
}

/// Every backend, in the order `status` asks them.
#[rustfmt::skip]
pub const BACKENDS: [Entry; 5] = [
    Entry { name: "md", open: Some(md::open), runbook: true, counters: &md::COUNTER_NAMES, conditions: &md::facts::CONDITIONS, tools: &md::facts::TOOLS, array_device: md::facts::is_array_device, error_counter: Some(md::facts::ERROR_COUNTER), member_copies: Some(md::copies::member_copies) },
    Entry { name: "btrfs", open: Some(btrfs::open), runbook: true, counters: &btrfs::COUNTER_NAMES, conditions: &btrfs::facts::CONDITIONS, tools: &btrfs::facts::TOOLS, array_device: btrfs::facts::is_array_device, error_counter: Some(btrfs::facts::ERROR_COUNTER), member_copies: None },
    Entry { name: "zfs", open: Some(zfs::open), runbook: true, counters: &zfs::facts::COUNTER_NAMES, conditions: &zfs::facts::CONDITIONS, tools: &zfs::facts::TOOLS, array_device: zfs::facts::is_array_device, error_counter: Some(zfs::facts::ERROR_COUNTER), member_copies: None },
    Entry { name: "megaraid", open: Some(megaraid::open), runbook: true, counters: &megaraid::COUNTER_NAMES, conditions: &megaraid::facts::CONDITIONS, tools: &megaraid::facts::TOOLS, array_device: megaraid::facts::is_array_device, error_counter: Some(megaraid::facts::ERROR_COUNTER), member_copies: None },
    // The simulator plays md: its counters and conditions are md's.
    Entry { name: "sim", open: None, runbook: false, counters: &[], conditions: &[], tools: &[], array_device: |_| false, error_counter: None, member_copies: None },
];

/// The entry called `name`.
pub fn entry(name: &str) -> Option<&'static Entry> {
    BACKENDS.iter().find(|e| e.name == name)
}

/// The names a runbook may write in `backend = "..."`.
pub fn runbook_names() -> impl Iterator<Item = &'static str> + Clone {
    BACKENDS.iter().filter(|e| e.runbook).map(|e| e.name)
}

/// The names of the backends that are built and can run on a real host.
pub fn built_names() -> impl Iterator<Item = &'static str> + Clone {
    BACKENDS
        .iter()
        .filter(|e| e.runbook && e.open.is_some())
        .map(|e| e.name)
}

/// How to open the backend called `name`; `None` when the name is unknown,
/// not a runbook backend or not built yet (say so with [`not_built`]).
pub fn opener(name: &str) -> Option<Open> {
    entry(name).filter(|e| e.runbook).and_then(|e| e.open)
}

/// Every backend that is built, opened on the host `host` makes (each
/// gets its own): what `status` asks for arrays. A backend that cannot be
/// opened is an error, not "unavailable": a host without ZFS or btrfs says
/// so through [`Backend::unavailable`], and an open that fails is something
/// else the user must see (fail closed).
pub fn available(host: impl Fn() -> Host) -> Result<Vec<Box<dyn Backend>>> {
    BACKENDS
        .iter()
        .filter(|e| e.runbook)
        .filter_map(|e| e.open)
        .map(|open| open(host()))
        .collect()
}

/// The backend tool called `program` (the base name of argv[0]), if any
/// backend has one by that name.
pub fn tool(program: &str) -> Option<&'static Tool> {
    BACKENDS
        .iter()
        .flat_map(|e| e.tools.iter())
        .find(|t| t.program == program)
}

/// Whether a name under `/dev/` names an array of any backend, not a
/// drive.
pub fn is_array_device(name: &str) -> bool {
    BACKENDS.iter().any(|e| (e.array_device)(name))
}

/// Where each member of the array `disk` holds its copy: the first
/// backend that knows `disk` as one of its arrays answers.
pub fn member_copies(
    root: &std::path::Path,
    disk: &str,
) -> Result<Option<Vec<(String, u64)>>, String> {
    for copies in BACKENDS.iter().filter_map(|e| e.member_copies) {
        if let Some(found) = copies(root, disk)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Every backend's own counter names.
pub fn counter_names() -> impl Iterator<Item = &'static str> {
    BACKENDS.iter().flat_map(|e| e.counters.iter().copied())
}

/// Every survivor condition, worst first as the verdict lists them: the
/// drive-level failing ones (SMART, NVMe, SCSI), every backend's own
/// faults (failing), then the drive-level ones that are only at risk.
pub fn condition_names() -> Vec<&'static str> {
    use crate::health::verdict::{CONDITIONS, Level};
    let drive = |failing: bool| {
        CONDITIONS
            .iter()
            .filter(move |c| (c.level == Level::Failing) == failing)
            .map(|c| c.name)
    };
    drive(true)
        .chain(
            BACKENDS
                .iter()
                .flat_map(|e| e.conditions.iter().map(|(n, _)| *n)),
        )
        .chain(drive(false))
        .collect()
}

/// A survivor condition's level and meaning; backend faults are failing.
pub fn condition(name: &str) -> Option<(crate::health::verdict::Level, &'static str)> {
    if let Some(c) = crate::health::verdict::condition_named(name) {
        return Some((c.level, c.meaning));
    }
    BACKENDS
        .iter()
        .flat_map(|e| e.conditions.iter())
        .find(|(n, _)| *n == name)
        .map(|(_, meaning)| (crate::health::verdict::Level::Failing, *meaning))
}

/// `the `zfs` backend is not built yet; runbooks can use `md``.
pub fn not_built(name: &str) -> String {
    let built: Vec<String> = built_names().map(|n| format!("`{n}`")).collect();
    format!(
        "the `{name}` backend is not built yet; runbooks can use {}",
        built.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once() {
        let mut names: Vec<&str> = BACKENDS.iter().map(|e| e.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), BACKENDS.len());
    }

    #[test]
    fn md_is_built_and_the_others_are_reserved() {
        assert_eq!(
            built_names().collect::<Vec<_>>(),
            ["md", "btrfs", "zfs", "megaraid"]
        );
        assert_eq!(
            runbook_names().collect::<Vec<_>>(),
            ["md", "btrfs", "zfs", "megaraid"]
        );
        assert!(entry("sim").is_some_and(|e| !e.runbook));
    }

    #[test]
    fn a_backend_not_built_has_no_opener_and_says_what_is_built() {
        assert!(opener("md").is_some());
        assert!(opener("megaraid").is_some());
        assert!(opener("sim").is_none());
        assert_eq!(
            not_built("lvm"),
            "the `lvm` backend is not built yet; runbooks can use `md`, `btrfs`, `zfs`, `megaraid`"
        );
    }
}
