//! From what `zpool status` says to the neutral facts, before any drive is
//! looked at: every leaf with its membership and counters, every top-level
//! vdev with its slots, the pool's state and scan. Pure: the backend then
//! finds each leaf's disk, and [`weakest`] needs to know which leaves have
//! one (a leaf whose device is gone serves nothing, whatever ZFS says).
//!
//! The convention this follows is written down in `facts.rs`.

use std::collections::BTreeMap;

use crate::backend::zfs::{Pool, ScanFunction, ScanState, Vdev, VdevKind, VdevState};
use crate::health::model::{MemberState, Membership, Problem, SyncProgress};

/// One leaf vdev (a disk, a partition, a file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafLook {
    /// ZFS's name for it (`nvme0n1p1`, `ata-...-part1`, `nvme1n1p1/old`).
    pub name: String,
    pub guid: Option<u64>,
    pub path: Option<String>,
    pub kind: VdevKind,
    pub state: VdevState,
    pub membership: Membership,
    pub counters: BTreeMap<String, u64>,
    /// The replaced half of a `replacing-N` group whose new device has
    /// the same path (`.../old`): its path names no device of its own.
    pub old: bool,
    /// A hot spare of the `spares` group (not in use).
    pub spare: bool,
}

/// One top-level vdev and its slots (children).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopLook {
    pub name: String,
    /// `mirror`, `raidz1`..`raidz3`, `draid1`..`draid3`, `disk`.
    pub level: String,
    /// Each slot: the indices (into [`PoolLook::leaves`]) of the leaves in
    /// it (one, or the members of a `replacing-N`/`spare-N` group).
    pub slots: Vec<Vec<usize>>,
    /// Whether the pool's data lives on it (not a log or cache device).
    pub data: bool,
}

/// One pool, before its drives are looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolLook {
    pub name: String,
    /// The pool's state as ZFS spells it.
    pub state: String,
    pub leaves: Vec<LeafLook>,
    pub tops: Vec<TopLook>,
    pub sync: Option<SyncProgress>,
    pub problems: Vec<Problem>,
}

/// The weakest data-bearing top-level vdev: its level, width and slots
/// that serve no full copy (no leaf that is ONLINE, not being resilvered
/// and `present`), the one with the least redundancy left (the first on a
/// tie). `("none", 0, 0)` for a pool without one.
pub fn weakest(look: &PoolLook, present: impl Fn(usize) -> bool) -> (String, u32, u32) {
    let mut best: Option<(i64, String, u32, u32)> = None;
    for top in look.tops.iter().filter(|t| t.data) {
        let width = top.slots.len() as u32;
        let unserving = top
            .slots
            .iter()
            .filter(|slot| {
                !slot.iter().any(|&i| {
                    let leaf = &look.leaves[i];
                    leaf.state == VdevState::Online
                        && leaf.membership.state == MemberState::InSync
                        && present(i)
                })
            })
            .count() as u32;
        let left = super::facts::redundancy_left(&top.level, width, unserving);
        if best.as_ref().is_none_or(|(b, ..)| left < *b) {
            best = Some((left, top.level.clone(), width, unserving));
        }
    }
    best.map_or(("none".into(), 0, 0), |(_, level, width, unserving)| {
        (level, width, unserving)
    })
}

/// The neutral facts of `pool`.
pub fn look(pool: &Pool) -> PoolLook {
    let mut out = PoolLook {
        name: pool.name.clone(),
        state: state_word(&pool.state).to_uppercase(),
        leaves: Vec::new(),
        tops: Vec::new(),
        sync: None,
        problems: Vec::new(),
    };
    let problem = |message: String| Problem {
        probe: "zfs".into(),
        subject: pool.name.clone(),
        message,
    };
    for vdev in &pool.vdevs {
        match &vdev.kind {
            VdevKind::Class(class) if class == "spares" => {
                for spare in &vdev.children {
                    // A spare in use shows again inside its `spare-N`
                    // group, where it is judged.
                    if spare.state == VdevState::InUse {
                        continue;
                    }
                    let mut leaf = leaf_look(spare, None, &[]);
                    leaf.spare = true;
                    leaf.membership.state = MemberState::Spare;
                    out.leaves.push(leaf);
                }
            }
            VdevKind::Class(class) => {
                let data = matches!(class.as_str(), "special" | "dedup");
                for top in &vdev.children {
                    add_top(&mut out, top, data);
                }
            }
            _ => add_top(&mut out, vdev, true),
        }
    }
    for leaf in &out.leaves {
        if leaf.guid.is_none() {
            out.problems.push(problem(format!(
                "`zpool status` gives leaf `{}` no GUID",
                leaf.name
            )));
        }
        if leaf.kind == VdevKind::File {
            out.problems.push(problem(format!(
                "leaf `{}` is a file, not a drive: swapguard guards pools of drives",
                leaf.name
            )));
        }
    }
    match pool.data_errors {
        Some(0) => {}
        Some(n) => out.problems.push(problem(format!(
            "ZFS counts {n} data error(s) in the pool (`zpool status -v {}` lists the files)",
            pool.name
        ))),
        None => out.problems.push(problem(
            "`zpool status` did not say how many data errors the pool has".into(),
        )),
    }
    if let Some(scan) = &pool.scan
        && scan.state == ScanState::Scanning
    {
        let action = match scan.function {
            ScanFunction::Resilver => Some("resilver"),
            ScanFunction::Scrub | ScanFunction::ErrorScrub => Some("scrub"),
            ScanFunction::None => None,
        };
        if let Some(action) = action {
            let (done, total) = match (scan.bytes, scan.permille) {
                (Some((issued, total)), _) if total > 0 => (
                    issued.min(total) / SyncProgress::UNIT_BYTES,
                    total / SyncProgress::UNIT_BYTES,
                ),
                (_, Some(permille)) => (u64::from(permille), 1000),
                _ => (0, 0),
            };
            out.sync = Some(SyncProgress {
                action: action.into(),
                done,
                total,
                speed_kib: None,
            });
        }
    }
    out
}

/// A top-level vdev and its leaves.
fn add_top(out: &mut PoolLook, top: &Vdev, data: bool) {
    let (level, children): (String, Vec<&Vdev>) = match top.kind {
        VdevKind::Mirror => ("mirror".into(), top.children.iter().collect()),
        VdevKind::Raidz => {
            let stem = top.name.split('-').next().unwrap_or("raidz");
            let level = if stem == "raidz" { "raidz1" } else { stem };
            (level.to_string(), top.children.iter().collect())
        }
        VdevKind::Draid => {
            let stem = top.name.split(':').next().unwrap_or("draid");
            let level = if stem == "draid" { "draid1" } else { stem };
            (level.to_string(), top.children.iter().collect())
        }
        // A single device, or a group replacing one: one slot.
        _ => ("disk".into(), vec![top]),
    };
    let mut slots = Vec::new();
    for (slot, child) in children.into_iter().enumerate() {
        let mut indices = Vec::new();
        collect(out, child, slot as u32, &mut Vec::new(), &mut indices);
        slots.push(indices);
    }
    out.tops.push(TopLook {
        name: top.name.clone(),
        level,
        slots,
        data,
    });
}

/// The leaves under `vdev` (a slot of a top-level vdev), with the groups
/// they sit in.
fn collect(
    out: &mut PoolLook,
    vdev: &Vdev,
    slot: u32,
    groups: &mut Vec<&'static str>,
    indices: &mut Vec<usize>,
) {
    if vdev.children.is_empty() {
        indices.push(out.leaves.len());
        out.leaves.push(leaf_look(vdev, Some(slot), groups));
        return;
    }
    let group = match vdev.kind {
        VdevKind::Replacing => Some("replacing"),
        VdevKind::Spare => Some("spare"),
        _ => None,
    };
    if let Some(g) = group {
        groups.push(g);
    }
    for child in &vdev.children {
        collect(out, child, slot, groups, indices);
    }
    if group.is_some() {
        groups.pop();
    }
}

fn leaf_look(vdev: &Vdev, role: Option<u32>, groups: &[&str]) -> LeafLook {
    let mut flags = vec![state_word(&vdev.state)];
    if vdev.resilvering {
        flags.push("resilvering".into());
    }
    for g in groups {
        if !flags.iter().any(|f| f == g) {
            flags.push(g.to_string());
        }
    }
    let state = match vdev.state {
        VdevState::Online if vdev.resilvering => MemberState::Rebuilding,
        VdevState::Online => MemberState::InSync,
        _ => MemberState::Faulty,
    };
    let counters = [
        ("zfs.read_errors", vdev.read_errors),
        ("zfs.write_errors", vdev.write_errors),
        ("zfs.checksum_errors", vdev.checksum_errors),
        ("zfs.slow_ios", vdev.slow_ios.unwrap_or(0)),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v))
    .collect();
    let old =
        vdev.name.ends_with("/old") || vdev.path.as_deref().is_some_and(|p| p.ends_with("/old"));
    LeafLook {
        name: vdev.name.clone(),
        guid: vdev.guid,
        path: vdev.path.clone(),
        kind: vdev.kind.clone(),
        state: vdev.state.clone(),
        membership: Membership {
            state,
            role,
            flags,
            name: vdev.guid.map(|g| g.to_string()),
        },
        counters,
        old,
        spare: false,
    }
}

/// A state lowercased, as `Membership.flags` carries it.
fn state_word(state: &VdevState) -> String {
    match state {
        VdevState::Online => "online".into(),
        VdevState::Degraded => "degraded".into(),
        VdevState::Faulted => "faulted".into(),
        VdevState::Offline => "offline".into(),
        VdevState::Removed => "removed".into(),
        VdevState::Unavail => "unavail".into(),
        VdevState::Avail => "avail".into(),
        VdevState::InUse => "inuse".into(),
        VdevState::Suspended => "suspended".into(),
        VdevState::Unknown(s) => s.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::zfs::status_text;

    fn capture(name: &str) -> PoolLook {
        capture_with(name, "")
    }

    fn capture_with(name: &str, tail: &str) -> PoolLook {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/zfs")
            .join(name);
        let text = std::fs::read_to_string(path).unwrap() + tail;
        let pools = status_text::parse(&text).unwrap();
        look(&pools[0])
    }

    /// `name state role flags` for every leaf.
    fn leaves(l: &PoolLook) -> Vec<String> {
        l.leaves
            .iter()
            .map(|x| {
                format!(
                    "{} {} {:?} {}",
                    x.name,
                    x.membership.state,
                    x.membership.role,
                    x.membership.flags.join(",")
                )
            })
            .collect()
    }

    #[test]
    fn older_text_formats_give_the_conventions_facts() {
        // Logs and cache are members but hold no copy of the pool's data:
        // the weakest vdev is the data mirror.
        let l = capture("list-status-logs-cache-resilver-issue3267.txt");
        assert_eq!(
            leaves(&l),
            [
                "sdc in-sync Some(0) online",
                "sdd in-sync Some(1) online",
                "sda3 in-sync Some(0) online",
                "sdb3 in-sync Some(1) online",
                "sda4 in-sync Some(0) online",
                "sdb4 in-sync Some(0) online",
            ]
        );
        assert_eq!(weakest(&l, |_| true), ("mirror".into(), 2, 0));
        assert_eq!(l.sync.as_ref().map(|s| s.action.as_str()), Some("resilver"));

        // raidz2 replacing an UNAVAIL disk: that slot serves nothing yet.
        let l = capture("list-status-resilver-0.7-format-issue8715.txt");
        assert_eq!(
            leaves(&l)[4..6],
            [
                "sde faulty Some(4) unavail,replacing",
                "sde1 rebuilding Some(4) online,resilvering,replacing",
            ]
        );
        assert_eq!(weakest(&l, |_| true), ("raidz2".into(), 6, 1));

        // Two mirrors; in mirror-0 the replacing slot is still being
        // resilvered and the other leaf is DEGRADED: no full copy left there.
        let l = capture("list-status-resilver-replacing-0.8-issue7537.txt");
        assert_eq!(
            leaves(&l)[..3],
            [
                "ata-WDC_WD3001FFSX-68JNUN0_WD-WCC13RYDLSH9 faulty Some(0) offline,replacing",
                "sdh rebuilding Some(0) online,resilvering,replacing",
                "ata-WDC_WD3001FFSX-68JNUN0_WD-WCC13HETXXKA faulty Some(1) degraded",
            ]
        );
        assert_eq!(weakest(&l, |_| true), ("mirror".into(), 2, 2));
        // A leaf whose drive is gone serves nothing either.
        let l = capture("list-status-logs-cache-resilver-issue3267.txt");
        assert_eq!(weakest(&l, |i| i != 1), ("mirror".into(), 2, 1));

        // (This capture stops after `config:`.)
        let l = capture_with(
            "list-status-scrub-progress-2.2-format-zfs_exporter-test.txt",
            "\n\tNAME        STATE     READ WRITE CKSUM\n\tvault       ONLINE       0     0     0\n\t  sda       ONLINE       0     0     0\n\nerrors: No known data errors\n",
        );
        assert_eq!(weakest(&l, |_| true), ("disk".into(), 1, 0));
        let sync = l.sync.unwrap();
        assert_eq!(
            (sync.action.as_str(), sync.done, sync.total),
            ("scrub", 251, 1000)
        );
    }
}
