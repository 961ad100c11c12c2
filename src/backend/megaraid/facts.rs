//! What MegaRAID's own words mean for health: the counters every physical
//! drive carries, the drive states that are faults, the programs that
//! speak to the controller and their subcommands that write to a drive.
//! The registry (src/backend/registry.rs) lists these for lint, the guard
//! and `test --mutate`; the real backend and the simulator playing a
//! controller fill snapshots by the convention below and call
//! [`annotate`].
//!
//! # The contract
//!
//! - Backend `megaraid`. The tool is the first of [`PROGRAMS`] on PATH
//!   (`storcli64`, `storcli`, `perccli64`, `perccli`; perccli is a
//!   rebranded storcli with the same commands and JSON), or the one a
//!   runbook or host config names. Every call is argv ending in `J`
//!   (JSON), run through the bounded runner. A call that exits non-zero,
//!   times out, prints JSON that does not parse, or whose envelope's
//!   `Command Status.Status` is not `Success` is unreadable health: the
//!   look fails closed naming the call and its `Description`, `ErrCd`,
//!   `ErrMsg`.
//! - `--array` is a virtual drive, `/cN/vM` (the canonical form, e.g.
//!   `/c0/v0`), or the VD's block device (`/dev/sda`), mapped through
//!   `/cN/vall show all J` (`OS Drive Name`, or the SCSI NAA id).
//! - Every physical drive of the VD's drive group is a member drive; every
//!   other physical drive on the controller that is in no drive group
//!   (UGood, UBad, JBOD, hot spares, foreign) is a non-member drive. A hot
//!   spare (`GHS`, `DHS`) is a member in state `Spare` with no role, as
//!   ZFS's AVAIL spares.
//! - `Identity.dev` = `cN/eE/sS` (`c0/e252/s1`; `cN/sS` for a drive with
//!   no enclosure, as storcli prints `/c0/s3`). The engine binds
//!   `{X.dev}` to `/<dev>` for such an address (exactly the storcli
//!   address, `/c0/e252/s1`), `{X.name}` to `<dev>`, and no `{X.part}`:
//!   runbooks write `storcli64 {target.dev} set offline`.
//! - `Identity.slot` = `EID:Slt` (`252:1`, or the slot alone without an
//!   enclosure); serial (`SN`), WWN, model (`Model Number`), firmware
//!   (`Firmware Revision`) and size in bytes from `/cN/eall/sall show all
//!   J`; transport from the PD `Intf`, lowercased (`sata`, `sas`, `nvme`).
//!   Drives are known by serial/WWN, never by slot: a new drive in the
//!   pulled drive's bay takes its address.
//!
//! # The snapshot convention
//!
//! - `Membership.name` = the storcli address `/cN/eE/sS`;
//!   `Membership.role` = the drive's row in its drive group (the
//!   `TOPOLOGY` row; rows of later arrays of the group follow those of
//!   earlier ones); `Membership.flags` = the PD `State` lowercased
//!   (`onln`, `offln`, `rbld`, `ubad`, `ghs`, ...), then `foreign` when
//!   its `DG` is `F`, then `smart_alert` when `S.M.A.R.T alert flagged by
//!   drive` is `Yes`.
//! - `Membership.state`: `Onln` → `InSync`; `Rbld` (and `Cpybck` onto it)
//!   → `Rebuilding`; `GHS`/`DHS` → `Spare`; every other state of a drive
//!   in the group (`Offln`, `Failed`, `UBad`, ...) → `Faulty`.
//! - A row of the group whose drive is gone (`Msng`, no PD behind it)
//!   gets no `Drive`, as md's and ZFS's gone members: the serial that
//!   vanishes is what the guard sees.
//! - Counters on every drive: `megaraid.media_errors` (`Media Error
//!   Count`), `megaraid.other_errors` (`Other Error Count`),
//!   `megaraid.predictive_failures` (`Predictive Failure Count`). `N/A` or
//!   absent on a member is unreadable (a `Problem`, probe `megaraid`), not
//!   zero; on a non-member the counter is left out.
//! - `array.name` = `/cN/vM`; `array.level` = the VD's RAID level
//!   lowercased (`raid1`, `raid5`, `raid6`, `raid10`, ...);
//!   `array.state` = the VD `State` as storcli spells it (`Optl`, `Dgrd`,
//!   `Pdgd`, `OfLn`, `Rec`); `array.raid_disks` = the rows of the drive
//!   group; `array.degraded` = the rows without an `Onln` drive.
//! - `array.sync` while a member rebuilds: action `rebuild`, `done` and
//!   `total` in 512-byte units from `Progress%` of `show rebuild J` over
//!   the drive's size (or the percentage over 100 when the size is not
//!   known); the slowest rebuild when several run.
//! - A foreign configuration on the controller (`/cN/fall show J` lists
//!   one) is a `Problem` (probe `megaraid.foreign`): nothing goes on while
//!   it exists. Runbooks never `import` it; clearing it is a command step
//!   (`storcli64 /cN/fall delete`) behind a typed confirmation.
//! - A member's faults come from its flags (filled by [`annotate`]); a
//!   non-member's faults are filled by the backend (or the simulator) with
//!   [`drive_faults`] from the same flags, and [`annotate`] leaves them.
//!
//! [`annotate`] then fills every member's faults, `array.running` and
//! `array.redundancy_left`.

use crate::backend::registry::Tool;
use crate::health::model::{ArrayHealth, Drive, Fault, Snapshot};

/// The controller's tool, in the order it is looked for on PATH.
pub const PROGRAMS: [&str; 4] = ["storcli64", "storcli", "perccli64", "perccli"];

/// Per-drive counters, read at every look (`/cN/eall/sall show all J`):
/// any rise on a survivor halts.
pub const COUNTER_NAMES: [&str; 3] = [
    "megaraid.media_errors",
    "megaraid.other_errors",
    "megaraid.predictive_failures",
];

/// A drive's faults, as survivor conditions (name, meaning).
pub const CONDITIONS: [(&str, &str); 5] = [
    (
        "megaraid.smart_alert",
        "the drive flagged a S.M.A.R.T alert to the controller",
    ),
    (
        "megaraid.offline",
        "the controller holds the drive offline (Offln)",
    ),
    (
        "megaraid.failed",
        "the controller marked the drive failed or unconfigured bad (UBad)",
    ),
    (
        "megaraid.missing",
        "the controller lists the drive as missing from its group (Msng)",
    ),
    (
        "megaraid.foreign",
        "the drive carries a foreign configuration (never import it blindly)",
    ),
];

/// The counter `test --mutate` raises on a survivor: a damaged drive shows
/// first as media errors.
pub const ERROR_COUNTER: &str = "megaraid.media_errors";

/// The controller's tools: the same commands under four names.
pub const TOOLS: [Tool; 4] = [
    Tool {
        program: "storcli64",
        writes: &WRITES,
    },
    Tool {
        program: "storcli",
        writes: &WRITES,
    },
    Tool {
        program: "perccli64",
        writes: &WRITES,
    },
    Tool {
        program: "perccli",
        writes: &WRITES,
    },
];

/// storcli's words that write to a drive or change what the controller
/// does with one. They follow the address (`storcli64 /c0/e252/s1 set
/// offline`); lint's subcommand paths (`start rebuild`) are matched among
/// the arguments that are not options, wherever they sit. `start locate`
/// and `stop locate` only blink an LED and are not listed.
const WRITES: [(&str, &str); 12] = [
    (
        "set",
        "changes a drive's state (offline, missing, good, jbod, ...)",
    ),
    ("spindown", "spins the drive down and takes it out of use"),
    ("insert", "puts the drive into a drive group's row"),
    ("start rebuild", "rebuilds the drive group onto the drive"),
    ("start copyback", "copies a drive's data onto another drive"),
    ("start erase", "erases the drive"),
    ("start init", "initializes the virtual drive, erasing it"),
    ("delete", "deletes a configuration"),
    ("del", "deletes a configuration"),
    ("add", "creates a virtual drive or hot spare on drives"),
    (
        "import",
        "imports a foreign configuration, which can bring an old array back over the live one",
    ),
    ("erase", "erases the drive"),
];

/// A VD's block device is a SCSI disk like any other (`sda`): it cannot be
/// told from a drive by its name, so no name under `/dev/` is taken for a
/// MegaRAID array here.
pub fn is_array_device(_name: &str) -> bool {
    false
}

/// Whether `text` is a storcli drive address, `/cN/eE/sS` or `/cN/sS`
/// (with or without the leading `/`), and its parts (controller,
/// enclosure, slot).
pub fn parse_drive_address(text: &str) -> Option<(u32, Option<u32>, u32)> {
    let rest = text.strip_prefix('/').unwrap_or(text);
    let parts: Vec<&str> = rest.split('/').collect();
    let num = |p: &str, prefix: char| {
        p.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
    };
    match parts.as_slice() {
        [c, e, s] => Some((num(c, 'c')?, Some(num(e, 'e')?), num(s, 's')?)),
        [c, s] => Some((num(c, 'c')?, None, num(s, 's')?)),
        _ => None,
    }
}

/// Whether `text` is a virtual drive, `/cN/vM`, and its parts.
pub fn parse_vd_address(text: &str) -> Option<(u32, u32)> {
    let rest = text.strip_prefix('/')?;
    let (c, v) = rest.split_once('/')?;
    let num = |p: &str, prefix: char| {
        p.strip_prefix(prefix)
            .filter(|n| !n.is_empty() && n.len() <= 9 && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
    };
    Some((num(c, 'c')?, num(v, 'v')?))
}

/// A drive's address as `Identity.dev` holds it: `c0/e252/s1`, `c0/s3`.
pub fn drive_dev(controller: u32, enclosure: Option<u32>, slot: u32) -> String {
    match enclosure {
        Some(e) => format!("c{controller}/e{e}/s{slot}"),
        None => format!("c{controller}/s{slot}"),
    }
}

/// A drive's bay as `Identity.slot` holds it: `252:1`, or `3` without an
/// enclosure.
pub fn drive_slot(enclosure: Option<u32>, slot: u32) -> String {
    match enclosure {
        Some(e) => format!("{e}:{slot}"),
        None => slot.to_string(),
    }
}

/// A drive group's member state from its PD `State` (lowercased).
pub fn member_state(state: &str) -> crate::health::model::MemberState {
    use crate::health::model::MemberState;
    match state {
        "onln" => MemberState::InSync,
        "rbld" | "cpybck" => MemberState::Rebuilding,
        "ghs" | "dhs" => MemberState::Spare,
        _ => MemberState::Faulty,
    }
}

/// Fill the neutral facts of a snapshot the megaraid backend (or the
/// simulator playing a controller) has just taken.
pub fn annotate(snap: &mut Snapshot) {
    annotate_array(&mut snap.array);
    for drive in &mut snap.drives {
        if let Some(member) = &drive.member {
            drive.faults = drive_faults(&member.flags);
        }
    }
}

/// `running` from the VD's state; `redundancy_left` from its level, rows
/// and rows without an online drive.
pub fn annotate_array(array: &mut ArrayHealth) {
    array.running = matches!(array.state.as_str(), "Optl" | "Dgrd" | "Pdgd" | "Rec");
    array.redundancy_left = redundancy_left(&array.level, array.raid_disks, array.degraded);
}

/// How many more drives a VD of `level` can lose whatever drives they are,
/// with `unserving` rows already out. Spanned levels count their weakest
/// span only (a RAID10 survives one loss for sure, not one per span).
pub fn redundancy_left(level: &str, width: u32, unserving: u32) -> i64 {
    let tolerated: u32 = match level {
        "raid1" => u32::from(width >= 2),
        "raid5" | "raid10" | "raid50" | "raid1e" => 1,
        "raid6" | "raid60" => 2,
        _ => 0,
    };
    i64::from(tolerated) - i64::from(unserving)
}

/// A drive's faults from its flags (PD state lowercased, then `foreign`,
/// then `smart_alert`).
pub fn drive_faults(flags: &[String]) -> Vec<Fault> {
    let mut faults = Vec::new();
    let mut push = |condition: &str| {
        if faults.iter().any(|f: &Fault| f.condition == condition) {
            return;
        }
        let meaning = CONDITIONS
            .iter()
            .find(|(n, _)| *n == condition)
            .map_or("", |(_, m)| m);
        faults.push(Fault {
            condition: condition.to_string(),
            value: "set".into(),
            meaning: meaning.to_string(),
            flag: true,
        });
    };
    for flag in flags {
        match flag.as_str() {
            "offln" | "offline" => push("megaraid.offline"),
            "ubad" | "failed" | "ubunsp" => push("megaraid.failed"),
            "msng" | "missing" => push("megaraid.missing"),
            "foreign" => push("megaraid.foreign"),
            "smart_alert" => push("megaraid.smart_alert"),
            _ => {}
        }
    }
    faults
}

/// Whether a drive's faults hold `condition`.
pub fn has_fault(drive: &Drive, condition: &str) -> bool {
    drive.faults.iter().any(|f| f.condition == condition)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::model::MemberState;

    #[test]
    fn addresses_parse_and_print_the_way_storcli_spells_them() {
        for (text, want) in [
            ("/c0/e252/s1", Some((0, Some(252), 1))),
            ("c0/e252/s1", Some((0, Some(252), 1))),
            ("/c1/s3", Some((1, None, 3))),
            ("/c0/e252/sall", None),
            ("/c0/v0", None),
            ("/c0/e/s1", None),
            ("/c0/e252/s1/x", None),
            ("/dev/sda", None),
            ("", None),
            ("/c99999999999/e1/s1", None),
        ] {
            assert_eq!(parse_drive_address(text), want, "{text}");
        }
        assert_eq!(parse_vd_address("/c0/v0"), Some((0, 0)));
        assert_eq!(parse_vd_address("/c2/v13"), Some((2, 13)));
        assert_eq!(parse_vd_address("c0/v0"), None);
        assert_eq!(parse_vd_address("/c0/vall"), None);
        assert_eq!(parse_vd_address("/dev/sda"), None);
        assert_eq!(drive_dev(0, Some(252), 1), "c0/e252/s1");
        assert_eq!(drive_dev(0, None, 3), "c0/s3");
        assert_eq!(drive_slot(Some(252), 1), "252:1");
        assert_eq!(drive_slot(None, 3), "3");
    }

    #[test]
    fn states_map_to_member_states_and_faults() {
        for (state, member, fault) in [
            ("onln", MemberState::InSync, None),
            ("rbld", MemberState::Rebuilding, None),
            ("ghs", MemberState::Spare, None),
            ("dhs", MemberState::Spare, None),
            ("offln", MemberState::Faulty, Some("megaraid.offline")),
            ("ubad", MemberState::Faulty, Some("megaraid.failed")),
            ("failed", MemberState::Faulty, Some("megaraid.failed")),
            ("msng", MemberState::Faulty, Some("megaraid.missing")),
        ] {
            assert_eq!(member_state(state), member, "{state}");
            let faults = drive_faults(&[state.to_string()]);
            assert_eq!(
                faults.first().map(|f| f.condition.as_str()),
                fault,
                "{state}"
            );
        }
        let faults = drive_faults(&["ugood".into(), "foreign".into(), "smart_alert".into()]);
        let names: Vec<&str> = faults.iter().map(|f| f.condition.as_str()).collect();
        assert_eq!(names, ["megaraid.foreign", "megaraid.smart_alert"]);
        assert!(faults.iter().all(|f| f.flag && !f.meaning.is_empty()));
    }

    #[test]
    fn redundancy_by_level_and_vd_state() {
        for (level, width, out, want) in [
            ("raid1", 2, 0, 1),
            ("raid1", 2, 1, 0),
            ("raid5", 4, 0, 1),
            ("raid6", 6, 1, 1),
            ("raid10", 4, 0, 1),
            ("raid0", 2, 0, 0),
            ("raid60", 8, 0, 2),
            ("cachecade", 1, 0, 0),
        ] {
            assert_eq!(redundancy_left(level, width, out), want, "{level}");
        }
        for (state, running) in [
            ("Optl", true),
            ("Dgrd", true),
            ("Pdgd", true),
            ("Rec", true),
            ("OfLn", false),
            ("Frgn", false),
        ] {
            let mut array = ArrayHealth {
                state: state.into(),
                level: "raid1".into(),
                raid_disks: 2,
                ..ArrayHealth::default()
            };
            annotate_array(&mut array);
            assert_eq!(array.running, running, "{state}");
        }
    }

    #[test]
    fn every_tool_holds_the_same_writes() {
        let programs: Vec<&str> = TOOLS.iter().map(|t| t.program).collect();
        assert_eq!(programs, PROGRAMS);
        assert!(TOOLS.iter().all(|t| t.writes.len() == WRITES.len()));
    }
}
