//! Every shipped scenario, walked by a toy engine and a toy guard.
//!
//! The real engine lives elsewhere; this stand-in drives the simulator the
//! way the engine's contract says (step phases, `wait` in 250 ms slices,
//! fast looks with a full look every 10 s and at the end of each step) and
//! checks survivors the simplest strict way. It proves the scenarios make
//! the hardware do what their `[expect]` says, at the step it says: a
//! scenario whose event lands in the wrong step fails here first.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use super::SimBackend;
use crate::backend::sim::scenario::{Outcome, Scenario, parse};
use crate::backend::{Backend, Depth, StepPhase};
use crate::clock::{Clock, SimClock};
use crate::health::model::{Drive, DriveKey, Identity, MemberState, Smart, Snapshot};
use crate::runbook::model::{
    Confirm, DriveExpect, Expectation, Role, Span, Step, StepKind, WaitUntil,
};

/// What a toy step does.
#[derive(Clone, Copy)]
enum Toy {
    Confirm,
    Command(&'static str),
    Locate,
    Pull,
    Insert,
    Wait,
}

const MEMBER: &[(&str, Toy)] = &[
    ("antistatic", Toy::Confirm),
    ("fail", Toy::Command("mdadm /dev/md0 --fail {target}")),
    ("remove", Toy::Command("mdadm /dev/md0 --remove {target}")),
    ("locate", Toy::Locate),
    ("pull", Toy::Pull),
    ("insert", Toy::Insert),
    ("add", Toy::Command("mdadm /dev/md0 --add {new}")),
    ("rebuild", Toy::Wait),
];

const HOT: &[(&str, Toy)] = &[
    ("antistatic", Toy::Confirm),
    ("insert", Toy::Insert),
    (
        "replace",
        Toy::Command("mdadm /dev/md0 --add {new} --replace {target} --with {new}"),
    ),
    ("copy", Toy::Wait),
    ("remove", Toy::Command("mdadm /dev/md0 --remove {target}")),
    ("locate", Toy::Locate),
    ("pull", Toy::Pull),
];

fn model_step(id: &str, toy: Toy) -> Step {
    let (kind, target, new) = match toy {
        Toy::Confirm => (StepKind::Confirm, None, None),
        Toy::Command(_) => (
            StepKind::Command {
                run: Vec::new(),
                destructive: false,
            },
            None,
            None,
        ),
        Toy::Locate => (StepKind::Locate { on: Role::Target }, None, None),
        Toy::Pull => (StepKind::Physical, Some(DriveExpect::Absent), None),
        Toy::Insert => (StepKind::Physical, None, Some(DriveExpect::Present)),
        Toy::Wait => (
            StepKind::Wait {
                until: WaitUntil::InSync,
            },
            None,
            None,
        ),
    };
    Step {
        id: id.to_string(),
        kind,
        say: None,
        expect: Expectation {
            target,
            new,
            degraded: None,
        },
        new_drive: None,
        confirm: Confirm::None,
        quarantine: None,
        optional: false,
        timeout: None,
        span: Span::default(),
    }
}

struct Toys {
    sim: SimBackend,
    clock: SimClock,
    baseline: Snapshot,
    target: Identity,
    new: Option<Identity>,
    quarantined: BTreeSet<DriveKey>,
    last_full: u64,
    /// Keys present when the current step began.
    at_start: BTreeSet<DriveKey>,
}

/// How the toy run ended: outcome, step, reason.
type End = (Outcome, String, String);

impl Toys {
    fn look(&mut self, force_full: bool) -> Result<Snapshot, String> {
        let now = self.clock.now_ms();
        let full = force_full || now >= self.last_full + 10_000;
        if full {
            self.last_full = now;
        }
        let depth = if full { Depth::Full } else { Depth::Fast };
        self.sim
            .snapshot("md0", depth)
            .map_err(|e| format!("array unreadable: {e}"))
    }

    /// The strict toy guard: survivors must look exactly as at baseline.
    fn guard(&self, now: &Snapshot) -> Option<String> {
        if !now.problems.is_empty() {
            return Some(format!("{:?}", now.problems));
        }
        if !now.array.state_is_running() {
            return Some(format!("array state {}", now.array.state));
        }
        for before in self.baseline.members() {
            if before.key() == self.target.key() {
                continue;
            }
            let who = before.id.describe();
            let Some(after) = now.drive(&before.key()) else {
                return Some(format!("{who} vanished"));
            };
            if after.member != before.member {
                return Some(format!("{who}: {:?} → {:?}", before.member, after.member));
            }
            for (k, v) in &after.counters {
                let old = before.counters.get(k).copied().unwrap_or(0);
                if *v > old {
                    return Some(format!("{who}: {k} {old} → {v}"));
                }
            }
            if let (Some(Smart::Read { counters: old, .. }), Some(smart)) =
                (&before.smart, &after.smart)
            {
                match smart {
                    Smart::Read { passed: false, .. } => {
                        return Some(format!("{who}: SMART failed"));
                    }
                    Smart::Read { counters, .. } => {
                        for (k, v) in counters {
                            let was = old.get(k).copied().unwrap_or(0);
                            if *v > was {
                                return Some(format!("{who}: {k} {was} → {v}"));
                            }
                        }
                    }
                    Smart::Unreadable { reason } => return Some(format!("{who}: {reason}")),
                }
            }
        }
        None
    }

    /// The drive's kernel name now (names move after a hot-plug).
    fn dev_of(&mut self, id: &Identity) -> String {
        let snap = self.sim.snapshot("md0", Depth::Fast).ok();
        let dev = snap
            .as_ref()
            .and_then(|s| s.drive(&id.key()))
            .map_or(id.dev.clone(), |d| d.id.dev.clone());
        format!("/dev/{dev}")
    }

    fn done(&mut self, toy: Toy, snap: &Snapshot) -> Result<bool, String> {
        Ok(match toy {
            Toy::Pull => snap.drive(&self.target.key()).is_none(),
            Toy::Insert => {
                // New is what was not there when the step began: a drive
                // from the baseline put back (the pulled one) is new too.
                let known = &self.at_start;
                let Some(new) = snap.drives.iter().find(|d| !known.contains(&d.key())) else {
                    return Ok(false);
                };
                let who = new.id.describe();
                if self.quarantined.contains(&new.key()) {
                    return Err(format!("{who} is quarantined"));
                }
                if new.id.size_bytes < self.target.size_bytes {
                    return Err(format!("{who} is smaller than the target"));
                }
                self.new = Some(new.id.clone());
                true
            }
            Toy::Wait => {
                snap.array.sync.is_none()
                    && snap.array.degraded == 0
                    && self
                        .new
                        .as_ref()
                        .and_then(|n| snap.drive(&n.key()))
                        .and_then(Drive::state)
                        == Some(MemberState::InSync)
            }
            Toy::Confirm | Toy::Command(_) | Toy::Locate => true,
        })
    }

    fn step(&mut self, scenario: &Scenario, id: &str, toy: Toy) -> Option<End> {
        let step = model_step(id, toy);
        let target = self.target.clone();
        if let Ok(snap) = self.sim.snapshot("md0", Depth::Fast) {
            self.at_start = snap.drives.iter().map(Drive::key).collect();
        }
        self.sim.step_phase(&step, StepPhase::Began, &target);
        let halt = |reason: String| Some((Outcome::Halted, id.to_string(), reason));
        match toy {
            Toy::Command(line) => {
                if id == "add" {
                    let new = self.new.clone().and_then(|n| n.serial).unwrap_or_default();
                    let expected = &new[new.len().saturating_sub(4)..];
                    if let Some(answer) = scenario.answers.get(id).and_then(|a| a.first()) {
                        if answer != expected {
                            return Some((Outcome::Aborted, id.to_string(), answer.clone()));
                        }
                    }
                }
                let new = match self.new.clone() {
                    Some(n) => self.dev_of(&n),
                    None => String::new(),
                };
                let rendered = line
                    .replace("{target}", &self.dev_of(&target))
                    .replace("{new}", &new);
                let argv: Vec<String> = rendered.split_whitespace().map(String::from).collect();
                let out = self.sim.execute(&argv, Duration::from_secs(30)).ok()?;
                if !out.success() {
                    return Some((Outcome::Refused, id.to_string(), out.stderr));
                }
            }
            Toy::Locate => {
                self.sim.locate(&target, true).ok()?;
            }
            _ => {}
        }
        let deadline = self.clock.now_ms() + 600_000;
        loop {
            let snap = match self.look(false) {
                Ok(s) => s,
                Err(e) => return halt(e),
            };
            if let Some(reason) = self.guard(&snap) {
                return halt(reason);
            }
            match self.done(toy, &snap) {
                Ok(true) => break,
                Ok(false) => {}
                Err(reason) => return halt(reason),
            }
            if self.clock.now_ms() >= deadline {
                return halt("step timed out".to_string());
            }
            self.sim.wait(Duration::from_millis(250)).ok()?;
        }
        let snap = match self.look(true) {
            Ok(s) => s,
            Err(e) => return halt(e),
        };
        if let Some(reason) = self.guard(&snap) {
            return halt(reason);
        }
        self.sim.step_phase(&step, StepPhase::Ended, &target);
        if matches!(toy, Toy::Pull) {
            self.quarantined.insert(target.key());
        }
        None
    }
}

fn walk(scenario: &Scenario) -> End {
    let steps = match scenario.runbook.file_name().and_then(|n| n.to_str()) {
        Some("md-replace-member.toml") => MEMBER,
        Some("md-replace-hot.toml") => HOT,
        other => panic!("no toy steps for {other:?}"),
    };
    let clock = SimClock::new();
    let mut sim = SimBackend::new(scenario, clock.clone()).expect("builds");
    let baseline = sim.snapshot("md0", Depth::Full).expect("baseline");
    let target = baseline
        .find(&scenario.params["target"])
        .first()
        .map(|d| d.id.clone())
        .expect("target");
    for d in baseline.members() {
        if let Some(Smart::Unreadable { reason }) = &d.smart {
            return (
                Outcome::Refused,
                "preflight".into(),
                format!("{}: {reason}", d.id.describe()),
            );
        }
    }
    let mut toys = Toys {
        sim,
        clock,
        baseline,
        target,
        new: None,
        quarantined: BTreeSet::new(),
        last_full: 0,
        at_start: BTreeSet::new(),
    };
    for (id, toy) in steps {
        if let Some(end) = toys.step(scenario, id, *toy) {
            return end;
        }
    }
    (Outcome::Completed, String::new(), String::new())
}

#[test]
fn every_shipped_scenario_ends_as_it_expects_under_a_toy_engine() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/scenarios");
    let mut count = 0;
    for folder in ["md-replace-member", "md-replace-hot"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(folder))
            .expect("folder")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for path in paths {
            let source = std::fs::read_to_string(&path).expect("readable");
            let scenario = parse(&path, &source).expect("parses");
            let (outcome, step, reason) = walk(&scenario);
            let name = path.display();
            assert_eq!(outcome, scenario.expect.outcome, "{name}: {step}: {reason}");
            if outcome != Outcome::Completed {
                assert_eq!(
                    Some(&step),
                    scenario.expect.step.as_ref(),
                    "{name}: {reason}"
                );
            }
            for want in &scenario.expect.reasons {
                assert!(
                    reason.contains(want.as_str()),
                    "{name}: `{want}` not in {reason:?}"
                );
            }
            count += 1;
        }
    }
    assert_eq!(count, 13);
}
