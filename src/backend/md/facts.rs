//! What md's own words mean for health, turned into the backend-neutral
//! facts a snapshot carries: which member flags and md counters are faults,
//! which array states serve I/O, how many more members a RAID level can
//! lose. The guard, the verdict and preflight read only the neutral facts.
//!
//! The simulator plays md, so it fills its snapshots through [`annotate`]
//! too: a dry run judges exactly as a real swap does.

use crate::health::model::{ArrayHealth, Drive, Fault, Snapshot};

/// md's faults, in the order the verdict lists them: the condition name a
/// runbook may accept, and what it means. The first four are member flags
/// (`md.<flag>`): md keeps a member `in_sync` after failed rewrites and only
/// records `write_error`/`want_replacement`; the last two are md counters.
pub const CONDITIONS: [(&str, &str); 6] = [
    ("md.faulty", "md marked the member faulty"),
    ("md.write_error", "md recorded a write error on the member"),
    ("md.want_replacement", "md wants the member replaced"),
    ("md.blocked", "md blocked the member after an error"),
    ("md.bad_blocks", "md recorded bad blocks on the member"),
    ("md.errors", "md counted read errors on the member"),
];

/// md's own per-member count of read errors it corrected or failed on.
pub const ERROR_COUNTER: &str = "md.errors";

/// md's tool, and its options that write to a drive.
pub const TOOLS: [crate::backend::registry::Tool; 1] = [crate::backend::registry::Tool {
    program: "mdadm",
    writes: &MDADM_WRITES,
}];

/// mdadm options that write to a drive.
const MDADM_WRITES: [(&str, &str); 9] = [
    ("--zero-superblock", "erases the RAID superblock"),
    ("--add", "overwrites the drive it adds"),
    ("-a", "overwrites the drive it adds"),
    ("--re-add", "overwrites the drive it adds"),
    ("--add-spare", "overwrites the drive it adds"),
    ("--with", "overwrites the replacement drive"),
    ("--create", "writes new superblocks"),
    ("-C", "writes new superblocks"),
    ("--build", "writes over the member drives"),
];

/// Whether a name under `/dev/` is an md array: `md0`, `md127`, `md/data`.
pub fn is_array_device(name: &str) -> bool {
    name.strip_prefix("md").is_some_and(|rest| !rest.is_empty())
}

/// Member flags that mean trouble even while md still calls it in sync.
pub const BAD_FLAGS: [&str; 4] = ["faulty", "write_error", "want_replacement", "blocked"];

/// md counters whose value above zero is a fault.
const FAULT_COUNTERS: [&str; 2] = ["md.bad_blocks", "md.errors"];

/// Fill the neutral facts of a snapshot md (or the simulator playing md)
/// has just taken.
pub fn annotate(snap: &mut Snapshot) {
    annotate_array(&mut snap.array);
    for drive in &mut snap.drives {
        annotate_drive(drive);
    }
}

/// `running` and `redundancy_left` from md's state, level and slots.
pub fn annotate_array(array: &mut ArrayHealth) {
    array.running = state_is_running(&array.state);
    array.redundancy_left =
        i64::from(tolerated_failures(&array.level, array.raid_disks)) - i64::from(array.degraded);
}

/// The drive's faults from its md flags and md counters.
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
        for flag in BAD_FLAGS {
            if member.flags.iter().any(|f| f == flag) {
                let condition = format!("md.{flag}");
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

/// States in which md serves I/O normally.
fn state_is_running(state: &str) -> bool {
    matches!(
        state,
        "clean" | "active" | "active-idle" | "write-pending" | "read-auto"
    )
}

/// How many members a level of md RAID can lose and still serve all data.
/// RAID10 counts as one pair: a survivor may be the last copy of its stripe.
pub fn tolerated_failures(level: &str, raid_disks: u32) -> u32 {
    match level {
        "raid1" => raid_disks.saturating_sub(1),
        "raid4" | "raid5" | "raid10" => 1,
        "raid6" => 2,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redundancy_left_by_level() {
        let cases = [
            ("raid1", 2, 0, 1),
            ("raid1", 3, 1, 1),
            ("raid1", 2, 1, 0),
            ("raid5", 4, 0, 1),
            ("raid6", 5, 1, 1),
            ("raid10", 4, 0, 1),
            ("raid0", 2, 0, 0),
            ("raid5", 4, 2, -1),
        ];
        for (level, raid_disks, degraded, want) in cases {
            let mut a = ArrayHealth {
                level: level.into(),
                raid_disks,
                degraded,
                ..ArrayHealth::default()
            };
            annotate_array(&mut a);
            assert_eq!(a.redundancy_left, want, "{level} {raid_disks} {degraded}");
        }
    }

    #[test]
    fn running_states() {
        for (state, want) in [
            ("clean", true),
            ("active", true),
            ("read-auto", true),
            ("inactive", false),
            ("broken", false),
            ("unknown", false),
        ] {
            let mut a = ArrayHealth {
                state: state.into(),
                ..ArrayHealth::default()
            };
            annotate_array(&mut a);
            assert_eq!(a.running, want, "{state}");
        }
    }
}
