//! What btrfs's own words mean for health: the per-device error counters,
//! the device states that are faults, and `btrfs`'s subcommands that write
//! to a drive. The registry (src/backend/registry.rs) lists these for lint,
//! the guard and `test --mutate`.

use crate::backend::btrfs::profile::{ChunkKind, Profile};
use crate::backend::registry::Tool;
use crate::health::model::{ArrayHealth, Drive, Fault, MemberState, Snapshot};

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

/// `btrfs`, and its subcommands that write to a drive. A write with a
/// space is a subcommand path, matched word by word among the arguments
/// that are not options, abbreviations included (`btrfs rep sta`); one
/// without is an argument matched anywhere, as for `mdadm`.
///
/// Not listed, so read-only for lint: `replace status`/`cancel`, `scrub`,
/// `balance` (it rewrites chunks among the file system's own devices,
/// never onto a drive outside it), `filesystem resize`/`show`/`df`,
/// `device stats`. A runbook may still mark such a step destructive.
pub const TOOLS: [Tool; 1] = [Tool {
    program: "btrfs",
    writes: &BTRFS_WRITES,
}];

const BTRFS_WRITES: [(&str, &str); 6] = [
    (
        "replace start",
        "writes the file system's data onto the new device",
    ),
    (
        "device add",
        "adds the device to the file system and writes to it",
    ),
    (
        "device remove",
        "moves the device's data onto the others and wipes its superblock",
    ),
    (
        "device delete",
        "moves the device's data onto the others and wipes its superblock",
    ),
    ("rescue", "rewrites the file system's metadata in place"),
    ("--repair", "rewrites the file system's metadata in place"),
];

/// btrfs file systems have no block device of their own.
pub fn is_array_device(_name: &str) -> bool {
    false
}

// ---------------------------------------------------------------------
// The snapshot convention, shared by the real backend and the simulator
// playing btrfs: both fill these fields, then call [`annotate`], so a dry
// run judges exactly as a real swap does.
//
// - `array.name`: the file system's UUID.
// - `array.level`: the data profile the file system is meant to have
//   (`raid1`, `raid1c3`, `raid10`, ...; `single`, `dup`, `raid0` have no
//   redundancy): the most tolerant data profile present.
// - `array.state`: the chunk profiles present, one `kind:profile` word each,
//   space-separated, in any order: `data:raid1 metadata:raid1
//   system:raid1`; a file system mounted `degraded` that took writes also
//   shows `data:single` (the trap). An empty or unknown word makes the file
//   system not `running` (fail closed). `annotate` does not rewrite it.
// - `array.raid_disks`: the file system's devices, the missing ones
//   included, the replace target (devid 0) not.
// - `array.sync`: a running `replace`, `balance` or `scrub`, as
//   `SyncProgress` with that action; the unit is 512-byte sectors as for
//   md (btrfs reports percent or chunks: the backend scales to the device
//   or file-system size).
// - each device: `Membership.name` = its devid in decimal (`0` for the
//   replace target), `Membership.flags` = btrfs's words that are set:
//   `missing`, `replace_target`, `in_fs_metadata`, `writeable`;
//   `Membership.role` = the devid. Counters `btrfs.write_io_errs`,
//   `btrfs.read_io_errs`, `btrfs.flush_io_errs`, `btrfs.corruption_errs`,
//   `btrfs.generation_errs` (and `kernel.io_errors` where the kernel log
//   is read).
//
// `annotate` then sets each member's state from its flags (`missing` →
// faulty, `replace_target` → rebuilding, else in sync), its faults
// (`btrfs.missing`; any btrfs counter above zero), and the array's
// `degraded` (missing devices), `running` and `redundancy_left`.

/// Fill the neutral facts of a snapshot btrfs (or the simulator playing
/// btrfs) has just taken. See the convention above.
pub fn annotate(snap: &mut Snapshot) {
    for drive in &mut snap.drives {
        annotate_drive(drive);
    }
    let missing = snap
        .drives
        .iter()
        .filter_map(|d| d.member.as_ref())
        .filter(|m| m.flags.iter().any(|f| f == "missing"))
        .count();
    annotate_array(&mut snap.array, u32::try_from(missing).unwrap_or(u32::MAX));
}

/// The chunk profiles in `array.state`; `Err` names the first word that is
/// not `kind:profile`.
pub fn chunk_profiles(state: &str) -> Result<Vec<(ChunkKind, Profile)>, String> {
    let mut out = Vec::new();
    for word in state.split_whitespace() {
        let parsed = word
            .split_once(':')
            .and_then(|(k, p)| Some((ChunkKind::parse(k)?, Profile::parse(p)?)));
        match parsed {
            Some(pair) => out.push(pair),
            None => return Err(format!("`{word}` is not a btrfs chunk kind:profile")),
        }
    }
    if out.is_empty() {
        return Err("no chunk profile known".into());
    }
    Ok(out)
}

/// The `array.state` word list for a set of chunk profiles (sorted,
/// without repeats).
pub fn state_words(profiles: &[(ChunkKind, Profile)]) -> String {
    let mut sorted = profiles.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted
        .iter()
        .map(|(k, p)| format!("{k}:{p}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether some chunk holds fewer copies than others of its kind (a
/// `single` data chunk beside `raid1` ones): data written while the file
/// system was mounted degraded, which a balance must convert back.
pub fn has_weak_chunks(profiles: &[(ChunkKind, Profile)]) -> bool {
    profiles.iter().any(|(kind, p)| {
        profiles
            .iter()
            .any(|(k, q)| k == kind && q.tolerance() > p.tolerance())
    })
}

/// `degraded`, `running` and `redundancy_left` from the chunk profiles in
/// `state` and the number of missing devices.
///
/// Each redundant chunk profile can lose its tolerance minus the missing
/// devices; a `single` or `dup` chunk has one copy (0). The kernel keeps a
/// file system mounted read-write only while every chunk can still be
/// read, so a `single` chunk of a mounted file system is taken to be on a
/// present device (written while degraded); its redundancy is 0, not
/// negative. The weakest chunk decides: a `single` data chunk on a RAID1
/// file system leaves that data with no copy to lose.
pub fn annotate_array(array: &mut ArrayHealth, missing: u32) {
    array.degraded = missing;
    match chunk_profiles(&array.state) {
        Ok(profiles) => {
            let weakest = profiles
                .iter()
                .map(|(_, p)| {
                    let tol = i64::from(p.tolerance());
                    if tol == 0 {
                        0
                    } else {
                        tol - i64::from(missing)
                    }
                })
                .min()
                .unwrap_or(-1);
            array.redundancy_left = weakest;
            array.running = weakest >= 0;
        }
        Err(_) => {
            array.redundancy_left = -1;
            array.running = false;
        }
    }
}

/// The drive's state and faults from its btrfs flags and counters.
pub fn annotate_drive(drive: &mut Drive) {
    let meaning = |name: &str| {
        CONDITIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, m)| m)
            .to_string()
    };
    let mut faults = Vec::new();
    if let Some(member) = &mut drive.member {
        let has = |f: &str| member.flags.iter().any(|x| x == f);
        member.state = if has("missing") {
            MemberState::Faulty
        } else if has("replace_target") {
            MemberState::Rebuilding
        } else {
            MemberState::InSync
        };
        if has("missing") {
            faults.push(Fault {
                condition: "btrfs.missing".into(),
                value: "set".into(),
                meaning: meaning("btrfs.missing"),
                flag: true,
            });
        }
    }
    for name in crate::backend::btrfs::COUNTER_NAMES {
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
    use crate::health::model::{Identity, Membership};
    use std::collections::BTreeMap;

    fn member(devid: u32, flags: &[&str], counters: &[(&str, u64)]) -> Drive {
        Drive {
            id: Identity {
                dev: format!("sd{}", char::from(b'a' + devid as u8)),
                serial: Some(format!("S{devid}")),
                ..Identity::default()
            },
            member: Some(Membership {
                state: MemberState::InSync,
                role: Some(devid),
                flags: flags.iter().map(|f| f.to_string()).collect(),
                name: Some(devid.to_string()),
            }),
            counters: counters
                .iter()
                .map(|(n, v)| (n.to_string(), *v))
                .collect::<BTreeMap<_, _>>(),
            smart: None,
            blank: None,
            faults: vec![],
        }
    }

    fn snap(state: &str, drives: Vec<Drive>) -> Snapshot {
        Snapshot {
            at_ms: 0,
            array: ArrayHealth {
                name: "684eee49-ed32-4b3b-87c9-44b880800856".into(),
                level: "raid1".into(),
                state: state.into(),
                raid_disks: 2,
                ..ArrayHealth::default()
            },
            drives,
            problems: vec![],
        }
    }

    const RAID1: &str = "data:raid1 metadata:raid1 system:raid1";

    #[test]
    fn healthy_raid1_can_lose_one() {
        let mut s = snap(RAID1, vec![member(1, &[], &[]), member(2, &[], &[])]);
        annotate(&mut s);
        assert!(s.array.running);
        assert_eq!((s.array.redundancy_left, s.array.degraded), (1, 0));
        assert!(s.drives.iter().all(|d| d.faults.is_empty()));
        assert!(!s.array.last_copy(0));
        assert!(s.array.last_copy(1));
    }

    #[test]
    fn single_chunk_on_raid1_leaves_no_redundancy() {
        let mut s = snap(
            &format!("{RAID1} data:single"),
            vec![member(1, &[], &[]), member(2, &[], &[])],
        );
        annotate(&mut s);
        assert_eq!(s.array.redundancy_left, 0);
        assert!(s.array.running);
        assert_eq!(s.array.degraded, 0);
        // preflight's redundant_without_target refuses an in-sync target
        assert!(s.array.last_copy(0));
        assert!(has_weak_chunks(&chunk_profiles(&s.array.state).unwrap()));
    }

    #[test]
    fn missing_device_is_faulty_and_degrades() {
        let mut s = snap(
            &format!("{RAID1} data:single"),
            vec![member(1, &[], &[]), member(2, &["missing"], &[])],
        );
        annotate(&mut s);
        assert_eq!((s.array.redundancy_left, s.array.degraded), (0, 1));
        assert!(s.array.running);
        let d = &s.drives[1];
        assert_eq!(d.state(), Some(MemberState::Faulty));
        assert_eq!(d.faults[0].condition, "btrfs.missing");
        assert!(d.faults[0].flag);
    }

    #[test]
    fn raid1c3_and_raid10_tolerances() {
        for (state, missing, want) in [
            ("data:raid1c3 metadata:raid1c3 system:raid1c3", 0, 2),
            ("data:raid1c3 metadata:raid1c3 system:raid1c3", 1, 1),
            ("data:raid10 metadata:raid1 system:raid1", 0, 1),
            ("data:raid1 metadata:raid1 system:raid1", 2, -1),
            ("data:raid1c3 metadata:raid1 system:raid1", 0, 1),
            ("data:single metadata:dup system:dup", 0, 0),
            ("data:raid0 metadata:raid1 system:raid1", 0, 0),
        ] {
            let mut a = ArrayHealth {
                state: state.into(),
                ..ArrayHealth::default()
            };
            annotate_array(&mut a, missing);
            assert_eq!(a.redundancy_left, want, "{state} missing {missing}");
            assert_eq!(a.running, want >= 0, "{state} missing {missing}");
        }
    }

    #[test]
    fn unknown_or_empty_profiles_fail_closed() {
        for state in ["", "data:raid7", "raid1", "data raid1"] {
            let mut a = ArrayHealth {
                state: state.into(),
                redundancy_left: 5,
                running: true,
                ..ArrayHealth::default()
            };
            annotate_array(&mut a, 0);
            assert!(!a.running, "{state:?}");
            assert_eq!(a.redundancy_left, -1, "{state:?}");
        }
    }

    #[test]
    fn counters_above_zero_are_faults_and_replace_target_rebuilds() {
        let mut s = snap(
            RAID1,
            vec![
                member(
                    1,
                    &["in_fs_metadata", "writeable"],
                    &[("btrfs.corruption_errs", 3), ("btrfs.read_io_errs", 0)],
                ),
                member(0, &["replace_target"], &[]),
            ],
        );
        annotate(&mut s);
        let faults: Vec<_> = s.drives[0]
            .faults
            .iter()
            .map(|f| (f.condition.as_str(), f.value.as_str(), f.flag))
            .collect();
        assert_eq!(faults, [("btrfs.corruption_errs", "3", false)]);
        assert_eq!(s.drives[0].state(), Some(MemberState::InSync));
        assert_eq!(s.drives[1].state(), Some(MemberState::Rebuilding));
        // annotate twice gives the same snapshot
        let once = s.clone();
        annotate(&mut s);
        assert_eq!(s, once);
    }

    #[test]
    fn state_words_round_trip() {
        let p = chunk_profiles("system:raid1 data:single data:raid1 data:raid1").unwrap();
        assert_eq!(state_words(&p), "data:single data:raid1 system:raid1");
    }
}
