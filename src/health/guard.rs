//! The guard: a pure comparison of the baseline snapshot with a later one.
//!
//! `compare` is the heart of the safety contract. It knows nothing about
//! backends, steps or terminals: given the baseline, the current look, what
//! the target and new drive may be doing right now, and the runbook's guard
//! policy, it lists every way the array is worse off than the step allows.
//! An empty list is the only "go on"; anything it cannot read is a violation.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::health::model::{Drive, DriveKey, MemberState, Smart, Snapshot};
use crate::health::policy::{DriveExpect, GuardPolicy, Requirement};

/// Counters that rise with normal wear, not damage: a rebuild that takes a
/// day can move an SSD's wear percentage by one without anything being wrong.
/// They are recorded in the journal but never halt.
/// ATA wear-levelling's normalized value falls as the drive wears and its
/// threshold is fixed; the verdict judges both, the guard neither.
pub const WEAR_COUNTERS: [&str; 3] = [
    "nvme.percentage_used",
    crate::health::verdict::WEAR_LEVELING_VALUE,
    crate::health::verdict::WEAR_LEVELING_THRESHOLD,
];

/// How a drive looks now, in the vocabulary of step expectations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Observed {
    InSync,
    Rebuilding,
    Spare,
    Faulty,
    /// Present but not a member of the array.
    Removed,
    /// Not present at all.
    Absent,
}

impl Observed {
    pub fn of(drive: Option<&Drive>) -> Observed {
        match drive {
            None => Observed::Absent,
            Some(d) => match d.state() {
                None => Observed::Removed,
                Some(MemberState::InSync) => Observed::InSync,
                Some(MemberState::Rebuilding) => Observed::Rebuilding,
                Some(MemberState::Spare) => Observed::Spare,
                Some(MemberState::Faulty) => Observed::Faulty,
            },
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Observed::InSync => "in-sync",
            Observed::Rebuilding => "rebuilding",
            Observed::Spare => "spare",
            Observed::Faulty => "faulty",
            Observed::Removed => "removed",
            Observed::Absent => "absent",
        }
    }
}

impl fmt::Display for Observed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether what is observed satisfies an expectation.
pub fn satisfies(observed: Observed, expect: DriveExpect) -> bool {
    match expect {
        DriveExpect::InSync => observed == Observed::InSync,
        DriveExpect::Rebuilding => observed == Observed::Rebuilding,
        DriveExpect::Faulty => observed == Observed::Faulty,
        // A drive md dropped to spare is no longer holding data either.
        DriveExpect::Removed => matches!(observed, Observed::Removed | Observed::Spare),
        DriveExpect::Absent => observed == Observed::Absent,
        DriveExpect::Present => observed != Observed::Absent,
    }
}

/// What the new drive may be doing at this moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NewAllowance {
    /// No drive may appear.
    NotYet,
    /// One drive may appear (a physical insert step is running).
    MayAppear,
    /// The new drive is known; it must be in one of these states.
    Bound(DriveKey, Vec<DriveExpect>),
}

/// What the step allows at this moment: the target's and the new drive's
/// acceptable states, and how many array slots may be missing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allowed {
    pub target: DriveKey,
    pub target_states: Vec<DriveExpect>,
    pub new: NewAllowance,
    pub max_degraded: u32,
}

/// Which drive a violation is about, in the terms the technician uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    Survivor,
    Target,
    NewDrive,
    OtherDrive,
    Array,
    /// Something that could not be read.
    Probe,
}

impl Subject {
    fn label(self) -> &'static str {
        match self {
            Subject::Survivor => "survivor",
            Subject::Target => "target",
            Subject::NewDrive => "new drive",
            Subject::OtherDrive => "drive",
            Subject::Array => "array",
            Subject::Probe => "unreadable",
        }
    }
}

/// One way the array is worse off than the step allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub subject: Subject,
    /// `sda (serial S3Z1NB0K100001, bay 0)` or the array name.
    pub who: String,
    /// The counter, flag or property that moved: `smart.current_pending_sector`,
    /// `state`, `present`, `degraded`, `readable`.
    pub what: String,
    pub before: String,
    pub after: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} {} → {}",
            self.subject.label(),
            self.who,
            self.what,
            self.before,
            self.after
        )
    }
}

fn violation(
    subject: Subject,
    who: impl Into<String>,
    what: impl Into<String>,
    before: impl Into<String>,
    after: impl Into<String>,
) -> Violation {
    Violation {
        subject,
        who: who.into(),
        what: what.into(),
        before: before.into(),
        after: after.into(),
    }
}

fn expect_list(states: &[DriveExpect]) -> String {
    states
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Compare `now` with `baseline`. Pure: no I/O, no clock.
pub fn compare(
    baseline: &Snapshot,
    now: &Snapshot,
    allowed: &Allowed,
    policy: &GuardPolicy,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let smart_required = policy.smart == Requirement::Required;

    for problem in &now.problems {
        if problem.probe == "smart" && !smart_required {
            continue;
        }
        out.push(violation(
            Subject::Probe,
            &problem.subject,
            format!("{} readable", problem.probe),
            "yes",
            format!("no ({})", problem.message),
        ));
    }

    // The array as a whole.
    let who = &baseline.array.name;
    if now.array.degraded > allowed.max_degraded {
        out.push(violation(
            Subject::Array,
            who,
            "degraded (slots missing)",
            format!("{} allowed", allowed.max_degraded),
            now.array.degraded.to_string(),
        ));
    }
    if baseline.array.running && !now.array.running {
        out.push(violation(
            Subject::Array,
            who,
            "state",
            &baseline.array.state,
            &now.array.state,
        ));
    }
    if now.array.level != baseline.array.level {
        out.push(violation(
            Subject::Array,
            who,
            "level",
            &baseline.array.level,
            &now.array.level,
        ));
    }

    // Every drive the baseline saw.
    for before in &baseline.drives {
        let key = before.key();
        let after = now.drive(&key);
        if key == allowed.target {
            let observed = Observed::of(after);
            if !allowed
                .target_states
                .iter()
                .any(|e| satisfies(observed, *e))
            {
                out.push(violation(
                    Subject::Target,
                    before.id.describe(),
                    "state",
                    format!("expected {}", expect_list(&allowed.target_states)),
                    observed.name(),
                ));
            }
            continue;
        }
        if let NewAllowance::Bound(new_key, _) = &allowed.new
            && *new_key == key
        {
            continue;
        }
        match before.member {
            Some(_) => survivor(before, after, smart_required, policy, &mut out),
            None => {
                if after.is_none() {
                    out.push(violation(
                        Subject::OtherDrive,
                        before.id.describe(),
                        "present",
                        "yes",
                        "vanished",
                    ));
                }
            }
        }
    }

    // Drives the baseline did not see.
    let mut appeared: Vec<&Drive> = now
        .drives
        .iter()
        .filter(|d| baseline.drive(&d.key()).is_none())
        .collect();
    match &allowed.new {
        NewAllowance::NotYet => {}
        NewAllowance::MayAppear => {
            // One new drive is what the step asks for; the engine binds it.
            if !appeared.is_empty() {
                appeared.remove(0);
            }
        }
        NewAllowance::Bound(new_key, states) => {
            let drive = now.drive(new_key);
            let observed = Observed::of(drive);
            if !states.iter().any(|e| satisfies(observed, *e)) {
                out.push(violation(
                    Subject::NewDrive,
                    drive.map_or_else(|| new_key.to_string(), |d| d.id.describe()),
                    "state",
                    format!("expected {}", expect_list(states)),
                    observed.name(),
                ));
            }
            if let Some(d) = drive {
                faults(Subject::NewDrive, None, d, &mut out);
                smart_verdict(Subject::NewDrive, None, d, smart_required, &mut out);
            }
            appeared.retain(|d| d.key() != *new_key);
        }
    }
    for drive in appeared {
        out.push(violation(
            Subject::OtherDrive,
            drive.id.describe(),
            "present",
            "absent",
            "appeared unexpectedly",
        ));
    }
    out
}

/// A survivor: a member other than the target and the new drive.
fn survivor(
    before: &Drive,
    after: Option<&Drive>,
    smart_required: bool,
    policy: &GuardPolicy,
    out: &mut Vec<Violation>,
) {
    let who = before.id.describe();
    let Some(after) = after else {
        out.push(violation(
            Subject::Survivor,
            who,
            "present",
            "yes",
            "vanished",
        ));
        return;
    };
    let was = Observed::of(Some(before));
    let is = Observed::of(Some(after));
    // A hot spare that md starts rebuilding onto is still not holding data
    // the array depends on; every other change of state is a halt.
    let spare_taken = was == Observed::Spare && is == Observed::Rebuilding;
    if was != is && !spare_taken {
        out.push(violation(
            Subject::Survivor,
            &who,
            "state",
            was.name(),
            is.name(),
        ));
    }
    faults(Subject::Survivor, Some(before), after, out);
    counters(
        &who,
        &before.counters,
        &after.counters,
        "counters",
        policy,
        out,
    );
    if let (Some(Smart::Read { counters: b, .. }), Some(Smart::Read { counters: a, .. })) =
        (&before.smart, &after.smart)
    {
        counters(&who, b, a, "smart", policy, out);
    }
    smart_verdict(Subject::Survivor, Some(before), after, smart_required, out);
}

/// Faults the backend reports that the drive did not have before (a
/// member flag such as md's `write_error`), in the backend's own words.
/// Faults the guard watches another way (a counter) are left to that.
fn faults(subject: Subject, before: Option<&Drive>, after: &Drive, out: &mut Vec<Violation>) {
    if after.member.is_none() {
        return;
    }
    let had = |condition: &str| {
        before
            .filter(|b| b.member.is_some())
            .is_some_and(|b| b.faults.iter().any(|f| f.condition == condition))
    };
    for fault in &after.faults {
        if let Some((backend, flag)) = fault.flag_name()
            && !had(&fault.condition)
        {
            out.push(violation(
                subject,
                after.id.describe(),
                format!("{backend} flag `{flag}`"),
                "clear",
                "set",
            ));
        }
    }
}

fn smart_verdict(
    subject: Subject,
    before: Option<&Drive>,
    after: &Drive,
    smart_required: bool,
    out: &mut Vec<Violation>,
) {
    match &after.smart {
        Some(Smart::Read { passed: false, .. }) => {
            let was_failing = matches!(
                before.and_then(|b| b.smart.as_ref()),
                Some(Smart::Read { passed: false, .. })
            );
            if !was_failing {
                out.push(violation(
                    subject,
                    after.id.describe(),
                    "SMART overall health",
                    "passed",
                    "FAILED",
                ));
            }
        }
        Some(Smart::Unreadable { reason }) if smart_required => {
            out.push(violation(
                subject,
                after.id.describe(),
                "SMART readable",
                "yes",
                format!("no ({reason})"),
            ));
        }
        _ => {}
    }
}

/// Any increase of any counter is a violation unless the runbook tolerates
/// that counter. A counter that was readable and no longer is, is a violation
/// too: it could be hiding an increase.
fn counters(
    who: &str,
    before: &BTreeMap<String, u64>,
    after: &BTreeMap<String, u64>,
    source: &str,
    policy: &GuardPolicy,
    out: &mut Vec<Violation>,
) {
    let ignored = |name: &str| {
        policy.tolerate.iter().any(|t| t == name)
            || policy.warn_only.iter().any(|w| w == name)
            || WEAR_COUNTERS.contains(&name)
    };
    for (name, &was) in before {
        if ignored(name) {
            continue;
        }
        match after.get(name) {
            Some(&is) if is > was => out.push(violation(
                Subject::Survivor,
                who,
                name,
                was.to_string(),
                is.to_string(),
            )),
            Some(_) => {}
            None => out.push(violation(
                Subject::Survivor,
                who,
                name,
                was.to_string(),
                format!("unreadable ({source})"),
            )),
        }
    }
    for (name, &is) in after {
        if is > 0 && !before.contains_key(name) && !ignored(name) {
            out.push(violation(
                Subject::Survivor,
                who,
                name,
                "not reported",
                is.to_string(),
            ));
        }
    }
}

/// Why a rise of a warn-only counter does not halt, for the warning line.
pub fn warning_reason(counter: &str) -> &'static str {
    match counter {
        crate::health::policy::CRC_COUNTER => {
            "transfer errors between the drive and its controller (cable or backplane), not media damage"
        }
        crate::health::policy::NVME_ERROR_LOG_COUNTER => {
            "the NVMe error log also records harmless entries (a log page the drive lacks); \
             media errors and critical warnings, which do halt, have not moved"
        }
        _ => "this runbook only warns about it",
    }
}

/// What makes a warning new. A CRC rise is said at each new value (a
/// cable getting worse is news); the NVMe error-log count once per drive,
/// because a drive that logs an entry for every log page it lacks raises
/// it at every SMART poll, and a warning every ten seconds is soon ignored.
pub fn warning_key(rise: &Violation) -> String {
    if rise.what == crate::health::policy::NVME_ERROR_LOG_COUNTER {
        format!("{} {}", rise.who, rise.what)
    } else {
        rise.to_string()
    }
}

/// Survivors' rises of counters the policy only warns about (by default
/// the ATA CRC count: a cable or backplane problem, not the drive's media).
/// Pure, like `compare`; the engine reports each once.
pub fn warnings(
    baseline: &Snapshot,
    now: &Snapshot,
    target: &DriveKey,
    policy: &GuardPolicy,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for before in baseline.members().filter(|d| &d.key() != target) {
        let Some(after) = now.drive(&before.key()) else {
            continue;
        };
        let pairs = [
            (Some(&before.counters), Some(&after.counters)),
            match (&before.smart, &after.smart) {
                (Some(Smart::Read { counters: b, .. }), Some(Smart::Read { counters: a, .. })) => {
                    (Some(b), Some(a))
                }
                _ => (None, None),
            },
        ];
        for (b, a) in pairs {
            let (Some(b), Some(a)) = (b, a) else { continue };
            for name in &policy.warn_only {
                let was = b.get(name).copied().unwrap_or(0);
                if let Some(&is) = a.get(name)
                    && is > was
                {
                    out.push(violation(
                        Subject::Survivor,
                        before.id.describe(),
                        name,
                        was.to_string(),
                        is.to_string(),
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::model::{ArrayHealth, Identity, Membership, Problem};

    fn drive(dev: &str, serial: &str, slot: &str, state: Option<MemberState>) -> Drive {
        Drive {
            id: Identity {
                dev: dev.into(),
                serial: Some(serial.into()),
                slot: Some(slot.into()),
                size_bytes: Some(960_000_000_000),
                ..Identity::default()
            },
            member: state.map(|state| Membership {
                state,
                role: None,
                flags: vec![match state {
                    MemberState::InSync => "in_sync".into(),
                    MemberState::Faulty => "faulty".into(),
                    _ => "spare".into(),
                }],
                name: None,
            }),
            counters: BTreeMap::from([("md.errors".into(), 0), ("md.bad_blocks".into(), 0)]),
            smart: Some(Smart::Read {
                passed: true,
                counters: BTreeMap::from([("smart.current_pending_sector".into(), 0)]),
            }),
            blank: None,
            faults: Vec::new(),
        }
    }

    /// A two-drive md mirror, its neutral facts filled as md fills them.
    fn mirror() -> Snapshot {
        let mut s = Snapshot {
            at_ms: 0,
            array: ArrayHealth {
                name: "md0".into(),
                level: "raid1".into(),
                state: "clean".into(),
                raid_disks: 2,
                degraded: 0,
                sync: None,
                ..ArrayHealth::default()
            },
            drives: vec![
                drive("sda", "A1", "0", Some(MemberState::InSync)),
                drive("sdb", "B2", "1", Some(MemberState::InSync)),
                drive("nvme0n1", "BOOT", "9", None),
            ],
            problems: vec![],
        };
        crate::backend::md::facts::annotate(&mut s);
        s
    }

    fn allowed(target: &[DriveExpect], new: NewAllowance, max_degraded: u32) -> Allowed {
        Allowed {
            target: DriveKey("serial:B2".into()),
            target_states: target.to_vec(),
            new,
            max_degraded,
        }
    }

    fn lines(v: &[Violation]) -> Vec<String> {
        v.iter().map(|v| v.to_string()).collect()
    }

    fn set_counter(s: &mut Snapshot, dev: &str, name: &str, value: u64) {
        let d = s.drives.iter_mut().find(|d| d.id.dev == dev).unwrap();
        if name.starts_with("smart.") {
            if let Some(Smart::Read { counters, .. }) = &mut d.smart {
                counters.insert(name.into(), value);
            }
        } else {
            d.counters.insert(name.into(), value);
        }
    }

    #[test]
    fn identical_snapshots_pass() {
        let s = mirror();
        let a = allowed(&[DriveExpect::InSync], NewAllowance::NotYet, 0);
        assert_eq!(
            lines(&compare(&s, &s, &a, &GuardPolicy::default())),
            Vec::<String>::new()
        );
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn table() {
        type Mutate = fn(&mut Snapshot);
        let cases: &[(&str, Mutate, &[DriveExpect], NewAllowance, u32, &[&str])] = &[
            (
                "survivor pending sectors rise",
                |s| set_counter(s, "sda", "smart.current_pending_sector", 8),
                &[DriveExpect::InSync, DriveExpect::Absent],
                NewAllowance::NotYet,
                1,
                &["survivor sda (serial A1, bay 0): smart.current_pending_sector 0 → 8"],
            ),
            (
                "survivor md errors rise",
                |s| set_counter(s, "sda", "md.errors", 3),
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &["survivor sda (serial A1, bay 0): md.errors 0 → 3"],
            ),
            (
                "wrong drive pulled",
                |s| {
                    s.drives.retain(|d| d.id.dev != "sda");
                },
                &[DriveExpect::Removed, DriveExpect::Absent],
                NewAllowance::NotYet,
                1,
                &[
                    "survivor sda (serial A1, bay 0): present yes → vanished",
                    "target sdb (serial B2, bay 1): state expected removed or absent → in-sync",
                ],
            ),
            (
                "target pulled as expected",
                |s| {
                    s.drives.retain(|d| d.id.dev != "sdb");
                    s.array.degraded = 1;
                },
                &[DriveExpect::Removed, DriveExpect::Absent],
                NewAllowance::NotYet,
                1,
                &[],
            ),
            (
                "more redundancy lost than allowed",
                |s| s.array.degraded = 1,
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &["array md0: degraded (slots missing) 0 allowed → 1"],
            ),
            (
                "write_error flag while md still says in_sync",
                |s| {
                    let m = s.drives[0].member.as_mut().unwrap();
                    m.flags = vec![
                        "in_sync".into(),
                        "write_error".into(),
                        "want_replacement".into(),
                    ];
                },
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &[
                    "survivor sda (serial A1, bay 0): md flag `write_error` clear → set",
                    "survivor sda (serial A1, bay 0): md flag `want_replacement` clear → set",
                ],
            ),
            (
                "survivor SMART fails",
                |s| {
                    s.drives[0].smart = Some(Smart::Read {
                        passed: false,
                        counters: BTreeMap::from([("smart.current_pending_sector".into(), 0)]),
                    })
                },
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &["survivor sda (serial A1, bay 0): SMART overall health passed → FAILED"],
            ),
            (
                "survivor SMART unreadable fails closed",
                |s| {
                    s.drives[0].smart = Some(Smart::Unreadable {
                        reason: "smartctl: not found".into(),
                    })
                },
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &["survivor sda (serial A1, bay 0): SMART readable yes → no (smartctl: not found)"],
            ),
            (
                "fast look without SMART is not a violation",
                |s| s.drives[0].smart = None,
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &[],
            ),
            (
                "a counter that can no longer be read",
                |s| {
                    s.drives[0].counters.remove("md.errors");
                },
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &["survivor sda (serial A1, bay 0): md.errors 0 → unreadable (counters)"],
            ),
            (
                "a probe problem",
                |s| {
                    s.problems.push(Problem {
                        probe: "md".into(),
                        subject: "md0".into(),
                        message: "cannot read `degraded`".into(),
                    })
                },
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &["unreadable md0: md readable yes → no (cannot read `degraded`)"],
            ),
            (
                "a drive appears when none may",
                |s| s.drives.push(drive("sdc", "C3", "2", None)),
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &["drive sdc (serial C3, bay 2): present absent → appeared unexpectedly"],
            ),
            (
                "a drive appears during the insert step",
                |s| s.drives.push(drive("sdc", "C3", "2", None)),
                &[DriveExpect::InSync],
                NewAllowance::MayAppear,
                1,
                &[],
            ),
            (
                "a non-member disk vanishes",
                |s| {
                    s.drives.retain(|d| d.id.dev != "nvme0n1");
                },
                &[DriveExpect::InSync],
                NewAllowance::NotYet,
                0,
                &["drive nvme0n1 (serial BOOT, bay 9): present yes → vanished"],
            ),
        ];
        for (name, mutate, target, new, max_degraded, want) in cases {
            let base = mirror();
            let mut now = mirror();
            mutate(&mut now);
            crate::backend::md::facts::annotate(&mut now);
            let got = compare(
                &base,
                &now,
                &allowed(target, new.clone(), *max_degraded),
                &GuardPolicy::default(),
            );
            assert_eq!(lines(&got), *want, "{name}");
        }
    }

    #[test]
    fn a_survivor_crc_rise_warns_by_default_and_halts_when_asked() {
        let mut base = mirror();
        for d in &mut base.drives {
            if let Some(Smart::Read { counters, .. }) = &mut d.smart {
                counters.insert("smart.udma_crc_error_count".into(), 1);
            }
        }
        let mut now = base.clone();
        for d in &mut now.drives {
            if let Some(Smart::Read { counters, .. }) = &mut d.smart {
                counters.insert("smart.udma_crc_error_count".into(), 3);
            }
        }
        let target = DriveKey("serial:B2".into());
        let a = allowed(&[DriveExpect::InSync], NewAllowance::NotYet, 0);
        let default = GuardPolicy::default();
        assert_eq!(
            lines(&compare(&base, &now, &a, &default)),
            Vec::<String>::new()
        );
        // Only the survivor: not the target, not a disk outside the array.
        assert_eq!(
            lines(&warnings(&base, &now, &target, &default)),
            ["survivor sda (serial A1, bay 0): smart.udma_crc_error_count 1 → 3"]
        );
        let strict = GuardPolicy {
            warn_only: vec![],
            ..GuardPolicy::default()
        };
        assert_eq!(
            lines(&compare(&base, &now, &a, &strict)),
            ["survivor sda (serial A1, bay 0): smart.udma_crc_error_count 1 → 3"]
        );
    }

    #[test]
    fn nvme_error_log_rise_by_one_warns_instead_of_halting() {
        let with = |n: u64| {
            let mut s = mirror();
            for d in &mut s.drives {
                d.smart = Some(Smart::Read {
                    passed: true,
                    counters: BTreeMap::from([
                        ("nvme.critical_warning".into(), 0),
                        ("nvme.media_errors".into(), 0),
                        ("nvme.num_err_log_entries".into(), n),
                    ]),
                });
            }
            s
        };
        let (base, now) = (with(0), with(1));
        let target = DriveKey("serial:B2".into());
        let a = allowed(&[DriveExpect::InSync], NewAllowance::NotYet, 0);
        let default = GuardPolicy::default();
        assert_eq!(
            lines(&compare(&base, &now, &a, &default)),
            Vec::<String>::new()
        );
        assert_eq!(
            lines(&warnings(&base, &now, &target, &default)),
            ["survivor sda (serial A1, bay 0): nvme.num_err_log_entries 0 → 1"]
        );
        // `halt_on = ["nvme.num_err_log_entries"]` takes it off the list.
        let strict = GuardPolicy {
            warn_only: vec![crate::health::policy::CRC_COUNTER.into()],
            ..GuardPolicy::default()
        };
        assert_eq!(
            lines(&compare(&base, &now, &a, &strict)),
            ["survivor sda (serial A1, bay 0): nvme.num_err_log_entries 0 → 1"]
        );
        // Media errors still halt by default.
        let mut worse = with(1);
        if let Some(Smart::Read { counters, .. }) = &mut worse.drives[0].smart {
            counters.insert("nvme.media_errors".into(), 1);
        }
        assert_eq!(
            lines(&compare(&base, &worse, &a, &default)),
            ["survivor sda (serial A1, bay 0): nvme.media_errors 0 → 1"]
        );
    }

    #[test]
    fn tolerated_counter_and_optional_smart() {
        let base = mirror();
        let mut now = mirror();
        set_counter(&mut now, "sda", "smart.current_pending_sector", 2);
        now.drives[1].smart = Some(Smart::Unreadable {
            reason: "timeout".into(),
        });
        let policy = GuardPolicy {
            smart: Requirement::Optional,
            tolerate: vec!["smart.current_pending_sector".into()],
            ..GuardPolicy::default()
        };
        let a = allowed(&[DriveExpect::InSync], NewAllowance::NotYet, 0);
        assert!(compare(&base, &now, &a, &policy).is_empty());
    }

    #[test]
    fn bound_new_drive_must_follow_its_expectation() {
        let mut base = mirror();
        base.drives.retain(|d| d.id.dev != "sdb");
        base.array.degraded = 1;
        let mut now = base.clone();
        let mut new = drive("sdb", "NEW9", "1", Some(MemberState::Faulty));
        new.member.as_mut().unwrap().flags = vec!["faulty".into()];
        now.drives.push(new);
        crate::backend::md::facts::annotate(&mut now);
        let a = Allowed {
            target: DriveKey("serial:B2".into()),
            target_states: vec![DriveExpect::Absent],
            new: NewAllowance::Bound(
                DriveKey("serial:NEW9".into()),
                vec![DriveExpect::Rebuilding, DriveExpect::InSync],
            ),
            max_degraded: 1,
        };
        assert_eq!(
            lines(&compare(&base, &now, &a, &GuardPolicy::default())),
            [
                "new drive sdb (serial NEW9, bay 1): state expected rebuilding or in-sync → faulty",
                "new drive sdb (serial NEW9, bay 1): md flag `faulty` clear → set",
            ]
        );
    }

    #[test]
    fn a_backend_fault_flag_is_judged_without_knowing_the_backend() {
        let base = mirror();
        let mut now = mirror();
        now.drives[0].faults.push(crate::health::model::Fault {
            condition: "zfs.faulted".into(),
            value: "set".into(),
            meaning: "ZFS faulted the leaf".into(),
            flag: true,
        });
        let a = allowed(&[DriveExpect::InSync], NewAllowance::NotYet, 0);
        assert_eq!(
            lines(&compare(&base, &now, &a, &GuardPolicy::default())),
            ["survivor sda (serial A1, bay 0): zfs flag `faulted` clear → set"]
        );
    }

    #[test]
    fn an_array_that_stops_running_halts() {
        let base = mirror();
        let mut now = mirror();
        now.array.state = "inactive".into();
        now.array.running = false;
        let a = allowed(&[DriveExpect::InSync], NewAllowance::NotYet, 0);
        assert_eq!(
            lines(&compare(&base, &now, &a, &GuardPolicy::default())),
            ["array md0: state clean → inactive"]
        );
    }
}
