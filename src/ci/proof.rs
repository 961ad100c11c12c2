//! The rule that a runbook proves it halts.
//!
//! A runbook whose scenarios all complete proves only that it works when
//! nothing goes wrong. `swapguard test` warns about a runbook with no
//! scenario in which a survivor fails; this file decides what counts
//! (docs/ci.md, "Every runbook must prove it halts").

use crate::ci::discover::Found;
use crate::ci::mutate;
use crate::ci::suite::{Case, Verdict};
use crate::scenario::{Action, DriveGroup, During, Outcome as Expected, Probe, Scenario};

/// The rule that a runbook proves it halts: at least one of its scenarios
/// that passed expects `halted`, has an event during a step (not the
/// baseline, which preflight would refuse) that acts on a survivor — a
/// member other than the target — and names that survivor (its kernel name
/// or serial) in `[expect] reasons`.
pub fn proves_it_halts(found: &[Found], cases: &[Case]) -> bool {
    found.iter().zip(cases).any(|(f, c)| {
        let Ok(s) = &f.scenario else { return false };
        c.verdict == Verdict::Pass && s.expect.outcome == Expected::Halted && survivor_fails(s)
    })
}

fn survivor_fails(s: &Scenario) -> bool {
    let target = mutate::target_of(s);
    let touched = |a: &Action| -> Option<usize> {
        match a {
            Action::Set { drive, .. }
            | Action::Flags { drive, .. }
            | Action::SmartFailed(drive)
            | Action::Fail(drive)
            | Action::Pull(drive)
            | Action::Vanish(drive)
            | Action::Unreadable(Probe::Smart(drive) | Probe::Counters(drive))
            | Action::ZeroCanary(Some(drive)) => Some(*drive),
            Action::Unreadable(Probe::Array) | Action::Insert(_) | Action::ZeroCanary(None) => None,
        }
    };
    s.events
        .iter()
        .filter(|e| matches!(e.during, During::Step(_)))
        .flat_map(|e| &e.actions)
        .filter_map(touched)
        .filter(|&d| Some(d) != target)
        .filter_map(|d| s.drives.get(d))
        .filter(|d| d.group == DriveGroup::Member)
        .any(|d| {
            s.expect.reasons.iter().any(|r| {
                d.serial
                    .as_ref()
                    .is_some_and(|serial| r.contains(serial.as_str()))
                    || d.dev.as_ref().is_some_and(|dev| {
                        r.split(|c: char| !c.is_ascii_alphanumeric())
                            .any(|word| word == dev)
                    })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    use crate::scenario;

    fn shipped(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("runbooks/scenarios")
            .join(rel)
    }

    #[test]
    fn which_scenarios_prove_a_runbook_halts() {
        let cases = [
            (
                "md-replace-member/survivor-pending-sectors-during-pull.toml",
                true,
            ),
            (
                "md-replace-member/survivor-write-errors-during-pull.toml",
                true,
            ),
            ("md-replace-member/wrong-drive-pulled.toml", true),
            (
                "md-replace-member/second-member-fails-during-rebuild.toml",
                true,
            ),
            ("md-replace-hot/survivor-fails-during-copy.toml", true),
            // Completes: nothing fails.
            ("md-replace-member/healthy.toml", false),
            // The new drive is bad, not a survivor.
            ("md-replace-member/new-drive-too-small.toml", false),
            ("md-replace-member/broken-drive-put-back.toml", false),
            // Broken before the run: preflight refuses, nothing halts.
            ("md-replace-member/smart-unreadable.toml", false),
        ];
        for (rel, want) in cases {
            let s = scenario::load(&shipped(rel)).unwrap();
            let proves = s.expect.outcome == scenario::Outcome::Halted && survivor_fails(&s);
            assert_eq!(proves, want, "{rel}");
        }
    }

    #[test]
    fn a_survivor_must_be_named_in_the_reasons() {
        let mut s = scenario::load(&shipped(
            "md-replace-member/survivor-pending-sectors-during-pull.toml",
        ))
        .unwrap();
        assert!(survivor_fails(&s));
        s.expect.reasons = vec!["smart.current_pending_sector".into()];
        assert!(
            !survivor_fails(&s),
            "the counter alone does not name the drive"
        );
        s.expect.reasons = vec!["survivor sda (serial".into()];
        assert!(survivor_fails(&s), "the name as a word");
        s.expect.reasons = vec!["sdab".into()];
        assert!(!survivor_fails(&s), "not a substring of another name");
        s.expect.reasons = vec!["S3Z1NB0K100001".into()];
        assert!(survivor_fails(&s), "the serial");
    }
}
