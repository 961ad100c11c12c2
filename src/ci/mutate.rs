//! Bad-hardware variants that no one wrote by hand (`swapguard test --mutate`).
//!
//! A scenario that completes proves the runbook works on good hardware; it
//! says nothing about whether the runbook stops on bad hardware. From each
//! such healthy scenario this module derives [`Scenario`] values in memory,
//! one per thing that can go wrong at each step:
//!
//! - for every step, every survivor's counters rise during that step
//!   (the backend's own error counter such as `md.errors`, and a
//!   media-error counter such as
//!   `smart.current_pending_sector`): the incident's nudged drive;
//! - at every physical step that pulls, the wrong drive is pulled instead:
//!   each survivor, and each drive outside the array;
//! - at the step that finds the new drive, the drive on the cart is too
//!   small, or not blank, or is the quarantined drive pulled earlier.
//!
//! Every variant must end halted or refused; a degrading survivor and a
//! wrong pull must halt the very step they happen in (hands are in the
//! chassis), a bad new drive any step before the run ends. A variant that
//! completes, ends any other way or halts too late is a runbook step that
//! lets bad hardware through, and is reported with the step id and the
//! mutation (`suite.rs` judges). The events are timed from
//! the healthy run's own journal: a rise lands halfway through the step it
//! is meant for, so "during `pull`" really is while hands are in the
//! chassis, not at some later look.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::health::model::MemberState;
use crate::runbook::model::{DriveExpect, Role, Runbook, StepKind};
use crate::scenario::{
    Action, DriveGroup, DriveSpec, During, Event, Outcome as Expected, Scenario,
};
use crate::units::format_size;

/// How much a counter rises in a variant: enough to be unmistakable.
const RISE: u64 = 8;

/// Media-error counters, in order of preference; a survivor's first one
/// that exists rises besides the backend's own error counter.
const MEDIA_COUNTERS: [&str; 5] = [
    "smart.current_pending_sector",
    "smart.reallocated_sector_ct",
    "nvme.media_errors",
    "nvme.critical_warning",
    "io.ioerr_cnt",
];

/// What a variant changes about the healthy scenario.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Mutation {
    /// A survivor's counter rises during the step.
    CounterRises {
        drive: String,
        counter: String,
        from: u64,
        to: u64,
    },
    /// The technician pulls this drive instead of the target.
    WrongDrivePulled { drive: String },
    /// The drive on the cart is smaller than the drive it replaces.
    NewDriveTooSmall {
        drive: String,
        size: u64,
        target_size: u64,
    },
    /// The drive on the cart carries a partition table or a superblock.
    NewDriveNotBlank { drive: String },
    /// The technician inserts the drive pulled (and quarantined) earlier.
    QuarantinedDriveInserted { drive: String },
}

impl Mutation {
    /// What a runbook that lets this variant through fails to do.
    pub fn escape(&self, step: &str) -> String {
        match self {
            Mutation::CounterRises { .. } => {
                format!("step `{step}` lets a degrading survivor through")
            }
            Mutation::WrongDrivePulled { .. } => {
                format!("step `{step}` does not notice the wrong drive pulled")
            }
            Mutation::NewDriveTooSmall { .. } => {
                format!("step `{step}` accepts a new drive that is too small")
            }
            Mutation::NewDriveNotBlank { .. } => {
                format!("step `{step}` accepts a new drive that is not blank")
            }
            Mutation::QuarantinedDriveInserted { .. } => {
                format!("step `{step}` accepts the quarantined drive as the new one")
            }
        }
    }
}

impl fmt::Display for Mutation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mutation::CounterRises {
                drive,
                counter,
                from,
                to,
            } => write!(f, "survivor {drive}: `{counter}` rises {from} → {to}"),
            Mutation::WrongDrivePulled { drive } => {
                write!(f, "the technician pulls {drive} instead of the target")
            }
            Mutation::NewDriveTooSmall {
                drive,
                size,
                target_size,
            } => write!(
                f,
                "the new drive {drive} is too small ({} for a {} target)",
                format_size(*size),
                format_size(*target_size)
            ),
            Mutation::NewDriveNotBlank { drive } => {
                write!(f, "the new drive {drive} is not blank")
            }
            Mutation::QuarantinedDriveInserted { drive } => {
                write!(
                    f,
                    "the technician inserts {drive}, the drive pulled earlier, as the new one"
                )
            }
        }
    }
}

/// One derived scenario.
#[derive(Clone, Debug)]
pub struct Variant {
    /// The healthy scenario it comes from.
    pub from: PathBuf,
    /// The step the mutation is aimed at.
    pub step: String,
    pub mutation: Mutation,
    pub scenario: Scenario,
}

/// When each step ran in the healthy run: simulated milliseconds from the
/// step's start to its end, by step id.
pub type StepTimes = BTreeMap<String, (u64, u64)>;

/// Read step start and end times from a journal's lines.
pub fn step_times(journal: &[serde_json::Value]) -> StepTimes {
    let mut started: BTreeMap<String, u64> = BTreeMap::new();
    let mut out = StepTimes::new();
    for line in journal {
        let (Some(event), Some(step), Some(at)) = (
            line["event"].as_str(),
            line["step"].as_str(),
            line["at"].as_str().and_then(millis_of),
        ) else {
            continue;
        };
        match event {
            "step-started" => {
                started.insert(step.to_string(), at);
            }
            "step-completed" => {
                if let Some(&start) = started.get(step) {
                    out.insert(step.to_string(), (start, at.max(start)));
                }
            }
            _ => {}
        }
    }
    out
}

fn millis_of(rfc3339: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339(rfc3339).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(d.as_millis()).ok()
}

/// Variants of one healthy scenario, and notes on mutations that do not
/// apply to this runbook (for the report).
#[derive(Debug, Default)]
pub struct Derived {
    pub variants: Vec<Variant>,
    pub notes: Vec<String>,
}

/// Derive every variant of `healthy` for `runbook`. `times` are the
/// healthy run's step times ([`step_times`]).
pub fn derive(runbook: &Runbook, healthy: &Scenario, times: &StepTimes) -> Derived {
    let mut out = Derived::default();
    if healthy.expect.outcome != Expected::Completed {
        return out;
    }
    let Some(target) = target_of(healthy) else {
        out.notes.push(format!(
            "`{}`: cannot tell which drive the target `{}` is, so no variants",
            healthy.path.display(),
            healthy.params.get("target").map_or("", String::as_str)
        ));
        return out;
    };
    let survivors: Vec<usize> = healthy
        .drives
        .iter()
        .enumerate()
        .filter(|(i, d)| {
            *i != target && d.group == DriveGroup::Member && d.state == MemberState::InSync
        })
        .map(|(i, _)| i)
        .collect();
    let bystanders: Vec<usize> = healthy
        .drives
        .iter()
        .enumerate()
        .filter(|(i, d)| *i != target && d.group == DriveGroup::Other)
        .map(|(i, _)| i)
        .collect();
    let spare = healthy
        .drives
        .iter()
        .position(|d| d.group == DriveGroup::Spare);
    let mut quarantined = false;

    for step in &runbook.steps {
        let Some(&(start, end)) = times.get(&step.id) else {
            out.notes.push(format!(
                "`{}` never reached step `{}`, so no variants for it",
                healthy.path.display(),
                step.id
            ));
            continue;
        };
        let halfway = Duration::from_millis((end - start) / 2);
        let mut push = |mutation: Mutation, scenario: Scenario| {
            out.variants.push(Variant {
                from: healthy.path.clone(),
                step: step.id.clone(),
                mutation,
                scenario,
            });
        };

        for &s in &survivors {
            for counter in counters_for(runbook, &healthy.drives[s]) {
                let from = current(healthy, s, &counter);
                let to = from + RISE;
                let mutation = Mutation::CounterRises {
                    drive: describe(&healthy.drives[s]),
                    counter: counter.clone(),
                    from,
                    to,
                };
                let event = Event {
                    during: During::Step(step.id.clone()),
                    after: halfway,
                    actions: vec![Action::Set {
                        drive: s,
                        counter,
                        value: to,
                    }],
                };
                push(
                    mutation.clone(),
                    with_event(healthy, &step.id, &mutation, event),
                );
            }
        }

        let physical = step.kind == StepKind::Physical;
        if physical && step.expect.target == Some(DriveExpect::Absent) {
            for &w in survivors.iter().chain(&bystanders) {
                let mutation = Mutation::WrongDrivePulled {
                    drive: describe(&healthy.drives[w]),
                };
                let event = Event {
                    during: During::Step(step.id.clone()),
                    after: healthy.technician.pull_after,
                    actions: vec![Action::Pull(w)],
                };
                push(
                    mutation.clone(),
                    with_event(healthy, &step.id, &mutation, event),
                );
            }
        }

        if physical && step.expect.new == Some(DriveExpect::Present) {
            match spare {
                Some(sp) => {
                    let target_size = healthy.drives[target].size_bytes;
                    let mut small = healthy.clone();
                    small.drives[sp].size_bytes = target_size / 2;
                    let mutation = Mutation::NewDriveTooSmall {
                        drive: describe(&healthy.drives[sp]),
                        size: target_size / 2,
                        target_size,
                    };
                    rename(&mut small, &step.id, &mutation);
                    push(mutation, small);

                    let mut used = healthy.clone();
                    used.drives[sp].blank = false;
                    // Behind a RAID controller a used drive is one that
                    // carries another controller's configuration.
                    if runbook.backend.name() == "megaraid" {
                        used.drives[sp].controller.foreign = true;
                    }
                    let mutation = Mutation::NewDriveNotBlank {
                        drive: describe(&healthy.drives[sp]),
                    };
                    rename(&mut used, &step.id, &mutation);
                    push(mutation, used);
                }
                None => out.notes.push(format!(
                    "`{}` has no spare drive, so no new-drive variants at `{}`",
                    healthy.path.display(),
                    step.id
                )),
            }
            if quarantined {
                let mutation = Mutation::QuarantinedDriveInserted {
                    drive: describe(&healthy.drives[target]),
                };
                let event = Event {
                    during: During::Step(step.id.clone()),
                    after: healthy.technician.insert_after,
                    actions: vec![Action::Insert(target)],
                };
                push(
                    mutation.clone(),
                    with_event(healthy, &step.id, &mutation, event),
                );
            } else {
                out.notes.push(format!(
                    "no quarantined-drive variant at `{}`: the target is still in the machine then",
                    step.id
                ));
            }
        }

        if step.quarantine == Some(Role::Target) && step.expect.target == Some(DriveExpect::Absent)
        {
            quarantined = true;
        }
    }
    out
}

/// The scenario drive the `target` parameter names: by kernel name (with or
/// without `/dev/`), serial, WWN or bay, among the members.
pub fn target_of(scenario: &Scenario) -> Option<usize> {
    let value = scenario.params.get("target")?;
    let value = value.strip_prefix("/dev/").unwrap_or(value);
    let named = |d: &&DriveSpec| {
        [&d.dev, &d.serial, &d.wwn, &d.slot]
            .iter()
            .any(|field| field.as_deref() == Some(value))
    };
    // A member target first; a `drive` target (a restore target) is any
    // drive outside the array; then the storage's own member name (a
    // btrfs devid, for a scenario of a mounted file system).
    scenario
        .drives
        .iter()
        .position(|d| d.group == DriveGroup::Member && named(&d))
        .or_else(|| {
            scenario
                .drives
                .iter()
                .position(|d| d.group != DriveGroup::Spare && named(&d))
        })
        .or_else(|| {
            scenario.array.mount.as_ref().and_then(|_| {
                crate::backend::sim::machine::btrfs_devid_drive(&scenario.drives, value)
            })
        })
        .or_else(|| {
            // A MegaRAID drive by its storcli address: `/c0/e252/s1` is
            // the drive in slot `252:1`.
            use crate::backend::megaraid::facts::{drive_slot, parse_drive_address};
            let (_, enclosure, slot) = parse_drive_address(value)?;
            let slot = drive_slot(enclosure, slot);
            scenario
                .drives
                .iter()
                .position(|d| d.group != DriveGroup::Spare && d.slot.as_deref() == Some(&slot))
        })
}

/// `sda (serial S3Z1NB0K100001)`, or the serial alone for a spare.
fn describe(drive: &DriveSpec) -> String {
    match (&drive.dev, &drive.serial) {
        (Some(dev), Some(serial)) if drive.group != DriveGroup::Spare => {
            format!("{dev} (serial {serial})")
        }
        _ => drive.label(),
    }
}

/// The counters of a survivor that rise: the backend's own error counter
/// (md: `md.errors`), and its first media-error counter.
fn counters_for(runbook: &Runbook, drive: &DriveSpec) -> Vec<String> {
    let mut out: Vec<String> = crate::backend::registry::entry(runbook.backend.name())
        .and_then(|e| e.error_counter)
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(c) = MEDIA_COUNTERS
        .iter()
        .find(|c| drive.counters.contains_key(**c))
    {
        out.push((*c).to_string());
    }
    out
}

/// A counter's highest value in the healthy scenario: at the start, or set
/// by any of its events.
fn current(scenario: &Scenario, drive: usize, counter: &str) -> u64 {
    let start = scenario.drives[drive]
        .counters
        .get(counter)
        .copied()
        .unwrap_or(0);
    scenario
        .events
        .iter()
        .flat_map(|e| &e.actions)
        .filter_map(|a| match a {
            Action::Set {
                drive: d,
                counter: c,
                value,
            } if *d == drive && c == counter => Some(*value),
            _ => None,
        })
        .fold(start, u64::max)
}

fn with_event(healthy: &Scenario, step: &str, mutation: &Mutation, event: Event) -> Scenario {
    let mut s = healthy.clone();
    s.events.push(event);
    rename(&mut s, step, mutation);
    s
}

fn rename(s: &mut Scenario, step: &str, mutation: &Mutation) {
    s.name = format!("{} — mutated at `{step}`: {mutation}", s.name);
    s.expect.outcome = Expected::Halted;
    s.expect.step = None;
    s.expect.reasons.clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::runbook::load;
    use crate::scenario;

    fn shipped(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("runbooks")
            .join(rel)
    }

    fn healthy_member() -> (Runbook, Scenario) {
        let rb = load::load(&shipped("md-replace-member.toml"))
            .unwrap()
            .runbook
            .unwrap();
        let sc = scenario::load(&shipped("scenarios/md-replace-member/healthy.toml")).unwrap();
        (rb, sc)
    }

    fn times(rb: &Runbook) -> StepTimes {
        rb.steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), (i as u64 * 10_000, i as u64 * 10_000 + 6_000)))
            .collect()
    }

    #[test]
    fn reads_step_times_from_journal_lines() {
        let lines: Vec<serde_json::Value> = [
            r#"{"event":"step-started","step":"pull","at":"2026-01-01T00:00:00.500Z"}"#,
            r#"{"event":"snapshot","label":"x","at":"2026-01-01T00:00:01.000Z"}"#,
            r#"{"event":"step-completed","step":"pull","at":"2026-01-01T00:00:05.500Z"}"#,
            r#"{"event":"step-started","step":"insert","at":"2026-01-01T00:00:05.500Z"}"#,
        ]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
        let t = step_times(&lines);
        let base = 1_767_225_600_000;
        assert_eq!(t.get("pull"), Some(&(base + 500, base + 5_500)));
        assert_eq!(t.get("insert"), None, "never completed");
    }

    #[test]
    fn finds_the_target_by_name_serial_or_bay() {
        let (_, mut sc) = healthy_member();
        for (value, want) in [
            ("sdb", Some(1)),
            ("/dev/sdb", Some(1)),
            ("S3Z1NB0K100002", Some(1)),
            ("0", Some(0)),
            // A drive outside the array: what a `drive` target (restore) names.
            ("nvme0n1", Some(3)),
            ("sdz", None),
        ] {
            sc.params.insert("target".into(), value.into());
            assert_eq!(target_of(&sc), want, "{value}");
        }
    }

    #[test]
    fn finds_a_megaraid_target_by_its_storcli_address() {
        let sc = scenario::load(&shipped(
            "scenarios/megaraid-replace-drive/healthy-sas.toml",
        ))
        .unwrap();
        assert_eq!(target_of(&sc), Some(1), "/c0/e252/s1 is the drive in 252:1");
    }

    /// Regression: the failed drive a `drive` target names sits among the
    /// scenario's others; pulling it was offered as "the wrong drive".
    #[test]
    fn the_wrong_drive_pulled_is_never_the_target_itself() {
        let rb = load::load(&shipped("megaraid-replace-with-hotspare.toml"))
            .unwrap()
            .runbook
            .unwrap();
        let sc = scenario::load(&shipped(
            "scenarios/megaraid-replace-with-hotspare/healthy-sas.toml",
        ))
        .unwrap();
        let target = target_of(&sc).expect("the failed drive in 252:1");
        let derived = derive(&rb, &sc, &times(&rb));
        let serial = sc.drives[target].serial.clone().unwrap();
        assert!(
            derived.variants.iter().all(|v| match &v.mutation {
                Mutation::WrongDrivePulled { drive } => !drive.contains(&serial),
                _ => true,
            }),
            "a variant pulls the target and calls it the wrong drive"
        );
    }

    #[test]
    fn derives_every_kind_of_variant_for_the_member_runbook() {
        let (rb, sc) = healthy_member();
        let derived = derive(&rb, &sc, &times(&rb));
        let count = |step: &str, pred: &dyn Fn(&Mutation) -> bool| {
            derived
                .variants
                .iter()
                .filter(|v| v.step == step && pred(&v.mutation))
                .count()
        };
        let rises = |m: &Mutation| matches!(m, Mutation::CounterRises { .. });
        for step in &rb.steps {
            // One survivor (sda): md.errors and smart.current_pending_sector.
            assert_eq!(count(&step.id, &rises), 2, "{}", step.id);
        }
        let wrong = |m: &Mutation| matches!(m, Mutation::WrongDrivePulled { .. });
        assert_eq!(count("pull", &wrong), 2, "sda and the boot disk");
        assert_eq!(count("insert", &wrong), 0);
        let new = |m: &Mutation| {
            matches!(
                m,
                Mutation::NewDriveTooSmall { .. }
                    | Mutation::NewDriveNotBlank { .. }
                    | Mutation::QuarantinedDriveInserted { .. }
            )
        };
        assert_eq!(count("insert", &new), 3);
        assert_eq!(derived.variants.len(), 8 * 2 + 2 + 3);
        assert!(derived.notes.is_empty(), "{:?}", derived.notes);
    }

    #[test]
    fn a_rise_is_timed_halfway_through_its_step_and_nothing_else_changes() {
        let (rb, sc) = healthy_member();
        let derived = derive(&rb, &sc, &times(&rb));
        let v = derived
            .variants
            .iter()
            .find(|v| v.step == "pull" && matches!(&v.mutation, Mutation::CounterRises { counter, .. } if counter == "smart.current_pending_sector"))
            .unwrap();
        assert_eq!(v.scenario.events.len(), sc.events.len() + 1);
        let e = v.scenario.events.last().unwrap();
        assert_eq!(e.during, During::Step("pull".into()));
        assert_eq!(e.after, Duration::from_secs(3));
        assert_eq!(
            e.actions,
            vec![Action::Set {
                drive: 0,
                counter: "smart.current_pending_sector".into(),
                value: 8
            }]
        );
        assert_eq!(v.scenario.drives, sc.drives);
        assert_eq!(
            v.mutation.to_string(),
            "survivor sda (serial S3Z1NB0K100001): `smart.current_pending_sector` rises 0 → 8"
        );
        assert_eq!(
            v.mutation.escape(&v.step),
            "step `pull` lets a degrading survivor through"
        );
    }

    #[test]
    fn new_drive_variants_change_the_spare_and_only_it() {
        let (rb, sc) = healthy_member();
        let derived = derive(&rb, &sc, &times(&rb));
        let small = derived
            .variants
            .iter()
            .find(|v| matches!(v.mutation, Mutation::NewDriveTooSmall { .. }))
            .unwrap();
        assert_eq!(small.scenario.drives[2].size_bytes, 480_000_000_000);
        assert_eq!(small.scenario.drives[1], sc.drives[1]);
        let used = derived
            .variants
            .iter()
            .find(|v| matches!(v.mutation, Mutation::NewDriveNotBlank { .. }))
            .unwrap();
        assert!(!used.scenario.drives[2].blank);
        let back = derived
            .variants
            .iter()
            .find(|v| matches!(v.mutation, Mutation::QuarantinedDriveInserted { .. }))
            .unwrap();
        assert_eq!(
            back.scenario.events.last().unwrap().actions,
            vec![Action::Insert(1)]
        );
    }

    #[test]
    fn hot_runbook_has_no_quarantined_variant_before_its_pull() {
        let rb = load::load(&shipped("md-replace-hot.toml"))
            .unwrap()
            .runbook
            .unwrap();
        let sc = scenario::load(&shipped("scenarios/md-replace-hot/healthy.toml")).unwrap();
        let derived = derive(&rb, &sc, &times(&rb));
        assert!(
            !derived
                .variants
                .iter()
                .any(|v| matches!(v.mutation, Mutation::QuarantinedDriveInserted { .. }))
        );
        assert_eq!(derived.notes.len(), 1, "{:?}", derived.notes);
        assert!(derived.notes[0].contains("`insert`"), "{:?}", derived.notes);
    }

    #[test]
    fn scenarios_that_do_not_complete_give_no_variants() {
        let (rb, _) = healthy_member();
        let sc = scenario::load(&shipped(
            "scenarios/md-replace-member/wrong-drive-pulled.toml",
        ))
        .unwrap();
        assert!(derive(&rb, &sc, &times(&rb)).variants.is_empty());
    }
}
