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

// ---------------------------------------------------------------------------
// The snapshot convention.
//
// The zfs backend and the simulator playing a pool fill a snapshot the same
// way, then call [`annotate`], so a dry run judges exactly as a real swap:
//
// - every leaf vdev of the pool (a disk or partition, in whatever group) is
//   a member drive: `Membership.name` is the leaf's GUID in decimal,
//   `Membership.role` the index of the leaf's slot in its top-level vdev
//   (the child index; both leaves of a `replacing-N`/`spare-N` group share
//   it), and `Membership.flags` the leaf's state lowercased (`online`,
//   `degraded`, `faulted`, `offline`, `removed`, `unavail`), then
//   `resilvering` while ZFS resilvers onto it, then `replacing` or `spare`
//   when it sits in such a group;
// - `Membership.state`: `Rebuilding` for an ONLINE leaf being resilvered,
//   `InSync` for any other ONLINE leaf, `Faulty` for every other state;
//   a hot spare not in use (AVAIL) is a `Spare` with no role;
// - counters `zfs.read_errors`, `zfs.write_errors`, `zfs.checksum_errors`
//   and `zfs.slow_ios` (0 when ZFS does not report slow I/Os);
// - `array.name` is the pool, `array.state` the pool's state as ZFS spells
//   it (`ONLINE`, `DEGRADED`, ...), and `array.level`, `array.raid_disks`,
//   `array.degraded` describe the top-level vdev with the least redundancy
//   left (the first on a tie; logs and cache devices do not count): its
//   level (`mirror`, `raidz1`..`raidz3`, `draid1`..`draid3`, `disk` for a
//   vdev of one leaf), its width (children), and its children that do not
//   serve a full copy (see [`slot_serves`]; a leaf whose drive is gone
//   serves nothing, whatever ZFS still says);
// - a leaf whose drive is gone (pulled, dead) gets no `Drive`, as md's
//   members do: the serial that vanishes is what the guard sees (a stand-in
//   drive would be a drive that appeared, and could be taken for the new
//   one). A `.../old` leaf of a replacing group names no device;
// - `array.sync` is the scan while it runs: action `resilver` or `scrub`,
//   `done`/`total` in 512-byte units (bytes issued over bytes to examine),
//   or per mille over 1000 where `zpool` gives no byte counts;
// - the pool's data errors above zero are a `Problem` (probe `zfs`).
//
// [`annotate`] then fills every drive's faults, `array.running` and
// `array.redundancy_left`.
// ---------------------------------------------------------------------------

use crate::health::model::{ArrayHealth, Drive, Fault, Snapshot};

/// Leaf states (lowercased, as in `Membership.flags`) that are faults.
pub const BAD_STATES: [&str; 5] = ["faulted", "removed", "unavail", "offline", "degraded"];

/// Per-leaf counters whose value above zero is a fault.
const FAULT_COUNTERS: [&str; 2] = ["zfs.read_errors", "zfs.checksum_errors"];

/// Fill the neutral facts of a snapshot the zfs backend (or the simulator
/// playing a pool) has just taken.
pub fn annotate(snap: &mut Snapshot) {
    annotate_array(&mut snap.array);
    for drive in &mut snap.drives {
        annotate_drive(drive);
    }
}

/// `running` from the pool's state; `redundancy_left` from the level,
/// width and unserving children of the weakest top-level vdev.
pub fn annotate_array(array: &mut ArrayHealth) {
    array.running = matches!(array.state.as_str(), "ONLINE" | "DEGRADED");
    array.redundancy_left = redundancy_left(&array.level, array.raid_disks, array.degraded);
}

/// How many more children a top-level vdev of `level` with `width`
/// children, `unserving` of which serve no full copy now, can lose.
pub fn redundancy_left(level: &str, width: u32, unserving: u32) -> i64 {
    let tolerated = match level {
        "mirror" => width.saturating_sub(1),
        "raidz1" | "raidz" | "draid1" => 1,
        "raidz2" | "draid2" => 2,
        "raidz3" | "draid3" => 3,
        _ => 0,
    };
    i64::from(tolerated) - i64::from(unserving)
}

/// Whether a slot of a top-level vdev serves a full copy, from the flags of
/// the leaves in it (one leaf, or the leaves of a `replacing-N`/`spare-N`
/// group): some leaf is ONLINE and not being resilvered.
pub fn slot_serves<'a>(leaves: impl IntoIterator<Item = &'a [String]>) -> bool {
    leaves.into_iter().any(|flags| {
        flags.first().is_some_and(|s| s == "online") && !flags.iter().any(|f| f == "resilvering")
    })
}

/// The drive's faults from its leaf state and ZFS counters.
pub fn annotate_drive(drive: &mut Drive) {
    let meaning = |name: &str| {
        CONDITIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, m)| m)
            .to_string()
    };
    let mut faults = Vec::new();
    if let Some(member) = &drive.member {
        for state in BAD_STATES {
            if member.flags.iter().any(|f| f == state) {
                let condition = format!("zfs.{state}");
                faults.push(Fault {
                    meaning: meaning(&condition),
                    condition,
                    value: "set".into(),
                    flag: true,
                });
            }
        }
    }
    for name in FAULT_COUNTERS {
        if let Some(n) = drive.counters.get(name).filter(|n| **n > 0) {
            faults.push(Fault {
                condition: name.to_string(),
                value: n.to_string(),
                meaning: meaning(name),
                flag: false,
            });
        }
    }
    drive.faults = faults;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::model::{Identity, MemberState, Membership};
    use std::collections::BTreeMap;

    fn leaf(flags: &[&str], counters: &[(&str, u64)]) -> Drive {
        Drive {
            id: Identity {
                dev: "sdb".into(),
                serial: Some("S1".into()),
                ..Identity::default()
            },
            member: Some(Membership {
                state: MemberState::InSync,
                role: Some(0),
                flags: flags.iter().map(|f| f.to_string()).collect(),
                name: Some("12296363858440934939".into()),
            }),
            counters: counters
                .iter()
                .map(|(n, v)| (n.to_string(), *v))
                .collect::<BTreeMap<_, _>>(),
            smart: None,
            blank: None,
            faults: Vec::new(),
        }
    }

    fn faults(d: &Drive) -> Vec<String> {
        d.faults
            .iter()
            .map(|f| {
                format!(
                    "{}={}{}",
                    f.condition,
                    f.value,
                    if f.flag { "!" } else { "" }
                )
            })
            .collect()
    }

    #[test]
    fn leaf_states_are_flag_faults_and_error_counters_counter_faults() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, u64)], &'a [&'a str]);
        let cases: [Case; 9] = [
            (&["online"], &[("zfs.read_errors", 0)], &[]),
            (&["online", "resilvering", "replacing"], &[], &[]),
            (&["faulted"], &[], &["zfs.faulted=set!"]),
            (&["removed"], &[], &["zfs.removed=set!"]),
            (&["unavail", "replacing"], &[], &["zfs.unavail=set!"]),
            (&["offline"], &[], &["zfs.offline=set!"]),
            (&["degraded"], &[], &["zfs.degraded=set!"]),
            (
                &["online"],
                &[
                    ("zfs.read_errors", 2),
                    ("zfs.checksum_errors", 5),
                    ("zfs.write_errors", 1),
                    ("zfs.slow_ios", 9),
                ],
                &["zfs.read_errors=2", "zfs.checksum_errors=5"],
            ),
            (
                &["faulted"],
                &[("zfs.read_errors", 3)],
                &["zfs.faulted=set!", "zfs.read_errors=3"],
            ),
        ];
        for (flags, counters, want) in cases {
            let mut d = leaf(flags, counters);
            annotate_drive(&mut d);
            assert_eq!(faults(&d), want, "{flags:?} {counters:?}");
            assert!(d.faults.iter().all(|f| !f.meaning.is_empty()));
        }
    }

    #[test]
    fn a_faulted_leaf_under_an_online_pool_is_still_a_fault() {
        let mut snap = Snapshot {
            at_ms: 0,
            array: ArrayHealth {
                name: "tank".into(),
                level: "mirror".into(),
                state: "ONLINE".into(),
                raid_disks: 2,
                degraded: 0,
                ..ArrayHealth::default()
            },
            drives: vec![leaf(&["online"], &[]), leaf(&["faulted"], &[])],
            problems: Vec::new(),
        };
        annotate(&mut snap);
        assert!(snap.array.running);
        assert!(snap.drives[0].faults.is_empty());
        assert_eq!(faults(&snap.drives[1]), ["zfs.faulted=set!"]);
    }

    #[test]
    fn redundancy_by_level_and_pool_state() {
        for (level, width, unserving, want) in [
            ("mirror", 2, 0, 1),
            ("mirror", 3, 1, 1),
            ("mirror", 2, 1, 0),
            ("mirror", 2, 2, -1),
            ("raidz1", 4, 0, 1),
            ("raidz2", 6, 1, 1),
            ("raidz3", 8, 0, 3),
            ("disk", 1, 0, 0),
            ("draid2", 8, 0, 2),
            ("draid2:4d:1s:8c", 8, 0, 0),
        ] {
            let mut a = ArrayHealth {
                level: level.into(),
                raid_disks: width,
                degraded: unserving,
                state: "ONLINE".into(),
                ..ArrayHealth::default()
            };
            annotate_array(&mut a);
            assert_eq!(a.redundancy_left, want, "{level} {width} {unserving}");
        }
        for (state, want) in [
            ("ONLINE", true),
            ("DEGRADED", true),
            ("FAULTED", false),
            ("SUSPENDED", false),
            ("UNAVAIL", false),
            ("online", false),
        ] {
            let mut a = ArrayHealth {
                state: state.into(),
                ..ArrayHealth::default()
            };
            annotate_array(&mut a);
            assert_eq!(a.running, want, "{state}");
        }
    }

    #[test]
    fn a_slot_serves_when_one_leaf_is_online_and_not_resilvering() {
        let f = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let online = f(&["online"]);
        let resilvering = f(&["online", "resilvering", "replacing"]);
        let offline = f(&["offline", "replacing"]);
        let removed = f(&["removed"]);
        assert!(slot_serves([online.as_slice()]));
        assert!(!slot_serves([removed.as_slice()]));
        assert!(!slot_serves([offline.as_slice(), resilvering.as_slice()]));
        assert!(slot_serves([online.as_slice(), resilvering.as_slice()]));
        assert!(!slot_serves(std::iter::empty::<&[String]>()));
    }
}
