//! ZFS pools: what `zpool status` says, in either of its forms.
//!
//! - `status_json.rs`: `zpool status -j --json-int` (OpenZFS 2.3 and
//!   later), and the same without `--json-int` (numbers as strings);
//! - `status_text.rs`: `zpool status -p` text of 0.7 to 2.3, the tree read
//!   from indentation (TAB plus two spaces a level, or spaces only in
//!   pasted outputs).
//!
//! Both give the same `Pool`: every vdev with its state and counters, the
//! scan, the pool's data-error count. The guard judges every leaf, never
//! the pool's state alone: a leaf can be FAULTED while its mirror and the
//! pool still say ONLINE.

pub mod backend;
pub mod events;
pub mod facts;
pub mod look;
pub mod status_json;
pub mod status_text;

#[cfg(test)]
mod tests_backend;
#[cfg(test)]
mod tests_captures;

/// One pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub state: VdevState,
    /// The pool's own vdev tree (its root's children), then the class
    /// groups (`logs`, `cache`, `spares`, `special`, `dedup`) as
    /// `VdevKind::Class` vdevs holding theirs.
    pub vdevs: Vec<Vdev>,
    pub scan: Option<Scan>,
    /// Data errors: `error_count` (JSON) or the `errors:` line (text; 0 for
    /// "No known data errors"). `None` when the output does not say.
    pub data_errors: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vdev {
    pub name: String,
    pub kind: VdevKind,
    pub guid: Option<u64>,
    pub path: Option<String>,
    pub state: VdevState,
    pub read_errors: u64,
    pub write_errors: u64,
    pub checksum_errors: u64,
    pub slow_ios: Option<u64>,
    /// Why, as ZFS says it: the text's trailing note (`too many errors`,
    /// `was /dev/sdb1`, `(resilvering)`) or the JSON `aux` reason.
    pub note: Option<String>,
    /// The text form's `(resilvering)` mark (the JSON form has none).
    pub resilvering: bool,
    pub children: Vec<Vdev>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VdevKind {
    Root,
    Mirror,
    Raidz,
    Draid,
    Replacing,
    Spare,
    Disk,
    File,
    /// `logs`, `cache`, `spares`, `special`, `dedup`.
    Class(String),
    Other(String),
}

impl VdevKind {
    /// From the JSON `vdev_type`, or from a text name (`mirror-0`,
    /// `raidz2-1`, `replacing-1`, `spare-0`; anything else is a leaf).
    fn from_type(vdev_type: &str) -> VdevKind {
        match vdev_type {
            "root" => VdevKind::Root,
            "mirror" => VdevKind::Mirror,
            "raidz" => VdevKind::Raidz,
            "draid" => VdevKind::Draid,
            "replacing" => VdevKind::Replacing,
            "spare" => VdevKind::Spare,
            "disk" => VdevKind::Disk,
            "file" => VdevKind::File,
            other => VdevKind::Other(other.to_string()),
        }
    }

    fn from_text_name(name: &str) -> VdevKind {
        let stem = name.rsplit_once('-').map_or(name, |(stem, n)| {
            if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
                stem
            } else {
                name
            }
        });
        match stem {
            "mirror" => VdevKind::Mirror,
            "raidz" | "raidz1" | "raidz2" | "raidz3" => VdevKind::Raidz,
            "replacing" => VdevKind::Replacing,
            "spare" => VdevKind::Spare,
            _ if stem.starts_with("draid") && name.contains(':') => VdevKind::Draid,
            _ => VdevKind::Disk,
        }
    }

    pub fn is_leaf(&self) -> bool {
        matches!(self, VdevKind::Disk | VdevKind::File | VdevKind::Other(_))
    }
}

/// A vdev's or pool's state. The text form prints `UNAVAIL` where the JSON
/// form prints the raw `CANT_OPEN`; OpenZFS's man page example shows
/// `HEALTHY`, which the code never emits: read as ONLINE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VdevState {
    Online,
    Degraded,
    Faulted,
    Offline,
    Removed,
    Unavail,
    /// A hot spare not in use / in use.
    Avail,
    InUse,
    Suspended,
    Unknown(String),
}

impl VdevState {
    pub fn parse(text: &str) -> VdevState {
        match text {
            "ONLINE" | "HEALTHY" => VdevState::Online,
            "DEGRADED" => VdevState::Degraded,
            "FAULTED" => VdevState::Faulted,
            "OFFLINE" => VdevState::Offline,
            "REMOVED" => VdevState::Removed,
            "UNAVAIL" | "CANT_OPEN" => VdevState::Unavail,
            "AVAIL" => VdevState::Avail,
            "INUSE" => VdevState::InUse,
            "SUSPENDED" => VdevState::Suspended,
            other => VdevState::Unknown(other.to_string()),
        }
    }

    /// A leaf in this state serves reads and writes.
    pub fn is_serving(&self) -> bool {
        matches!(self, VdevState::Online)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scan {
    pub function: ScanFunction,
    pub state: ScanState,
    /// Progress in tenths of a percent where the output gives it.
    pub permille: Option<u32>,
    /// Errors the scan found (a finished scan's `with N errors`).
    pub errors: Option<u64>,
    /// Bytes issued and bytes to examine, where the output gives them in
    /// bytes (`--json-int`).
    pub bytes: Option<(u64, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanFunction {
    None,
    Scrub,
    Resilver,
    ErrorScrub,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanState {
    None,
    Scanning,
    Finished,
    Canceled,
    Paused,
}

impl Pool {
    /// Every leaf, depth first, with the names of the vdevs above it.
    pub fn leaves(&self) -> Vec<(&Vdev, Vec<&str>)> {
        fn walk<'a>(
            v: &'a Vdev,
            above: &mut Vec<&'a str>,
            out: &mut Vec<(&'a Vdev, Vec<&'a str>)>,
        ) {
            if v.kind.is_leaf() && v.children.is_empty() {
                out.push((v, above.clone()));
                return;
            }
            above.push(&v.name);
            for c in &v.children {
                walk(c, above, out);
            }
            above.pop();
        }
        let mut out = Vec::new();
        for v in &self.vdevs {
            walk(v, &mut Vec::new(), &mut out);
        }
        out
    }
}

/// A count as zpool prints it: `0`, `12`, or without `-p`, `1.2K`, `10M`
/// (powers of 1024), rounded up so an approximate count never reads lower
/// than it is.
fn parse_count(text: &str) -> Option<u64> {
    if let Ok(n) = text.parse() {
        return Some(n);
    }
    let (number, unit) = text.split_at(text.len().checked_sub(1)?);
    let scale: u64 = match unit {
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        "P" => 1 << 50,
        _ => return None,
    };
    let n: f64 = number
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let value = n * scale as f64;
    (value < u64::MAX as f64).then_some(value.ceil() as u64)
}

/// Open zfs on a real host: the registry's constructor for
/// `backend = "zfs"`.
pub fn open(
    host: crate::backend::registry::Host,
) -> anyhow::Result<Box<dyn crate::backend::Backend>> {
    let kmsg = host.sysroot.join("dev/kmsg");
    let mut backend = backend::ZfsBackend::real(host.sysroot, host.processes);
    if host.watch_kernel_log {
        backend = backend.watching(kmsg);
    }
    if let Some(clock) = host.clock {
        backend = backend.with_clock(Box::new(clock));
    }
    Ok(Box::new(backend))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_kinds() {
        for (text, want) in [
            ("0", Some(0)),
            ("17", Some(17)),
            ("1.2K", Some(1229)),
            ("10M", Some(10 << 20)),
            ("", None),
            ("-1", None),
            ("1.2X", None),
            ("K", None),
        ] {
            assert_eq!(parse_count(text), want, "{text}");
        }
        for (name, want) in [
            ("mirror-0", VdevKind::Mirror),
            ("raidz2-0", VdevKind::Raidz),
            ("replacing-4", VdevKind::Replacing),
            ("spare-1", VdevKind::Spare),
            ("draid2:4d:1s:8c-0", VdevKind::Draid),
            ("sdb", VdevKind::Disk),
            ("nvme1n1p1/old", VdevKind::Disk),
            ("ata-WDC_WD3001FFSX-68JNUN0_WD-WCC13RYDLSH9", VdevKind::Disk),
            ("12345678901234567890", VdevKind::Disk),
        ] {
            assert_eq!(VdevKind::from_text_name(name), want, "{name}");
        }
    }
}
