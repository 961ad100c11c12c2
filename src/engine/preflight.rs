//! Preflight: everything that must hold before the first step touches
//! anything. A refusal here leaves the array exactly as it was.

use crate::engine::{Run, Stop, Walk};
use crate::health::guard::Observed;
use crate::health::model::{Drive, MemberState, Smart, Snapshot};
use crate::health::verdict::{self, Level};
use crate::journal::Event;
use crate::operator::{Answer, NoteLevel, Question, QuestionKind};
use crate::runbook::model::{ParamKind, Precondition, Requirement};
use crate::sanitize::sanitize;

/// The step id preflight's questions carry: `preflight = "..."` in an
/// answers file or a scenario's `[answers]`.
pub const PREFLIGHT: &str = "preflight";

/// The word that acknowledges an at-risk survivor.
pub(crate) const AT_RISK_WORD: &str = "at-risk";

/// Shortest written reason that overrides a failing survivor: "ok" or
/// "yes" is not a reason.
pub(crate) const MIN_REASON_CHARS: usize = 15;

/// Find the drive the technician named as the target (kernel name, serial,
/// WWN or bay), in the baseline. It must name exactly one array member.
pub(crate) fn resolve_target(run: &Run<'_>, baseline: &Snapshot) -> Result<Drive, Stop> {
    let param = run
        .runbook
        .params
        .iter()
        .find(|p| p.kind == ParamKind::Member)
        .map_or("target", |p| p.name.as_str());
    if run
        .runbook
        .params
        .iter()
        .any(|p| p.name == "target" && p.kind == ParamKind::Drive)
    {
        return resolve_drive(run, baseline);
    }
    let Some(name) = run.params.get(param) else {
        return Err(Stop::Refuse {
            reasons: vec![format!(
                "no target given: pass `--{param} DEVICE|SERIAL|BAY`"
            )],
        });
    };
    let found = baseline.find(name);
    let members: Vec<&Drive> = found
        .iter()
        .copied()
        .filter(|d| d.member.is_some())
        .collect();
    match (members.as_slice(), found.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], []) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` is not present: no drive has that name, serial, WWN or bay{}",
                list_members(baseline)
            )],
        }),
        ([], [other, ..]) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` is {}, which is not a member of `{}`{}",
                other.id.describe(),
                baseline.array.name,
                list_members(baseline)
            )],
        }),
        (many, _) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` matches {} members ({}); name it by serial",
                many.len(),
                many.iter()
                    .map(|d| d.id.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        }),
    }
}

/// A `drive` target (a restore target): any one drive of the system. That
/// it is outside the array and not quarantined is checked in preflight, so
/// the refusal names the drive.
fn resolve_drive(run: &Run<'_>, baseline: &Snapshot) -> Result<Drive, Stop> {
    let Some(name) = run.params.get("target").filter(|n| !n.is_empty()) else {
        return Err(Stop::Refuse {
            reasons: vec!["no target given: pass `--target SERIAL` (the drive to write to)".into()],
        });
    };
    match baseline.find(name).as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` is not present: no drive has that name, serial, WWN or bay"
            )],
        }),
        many => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` matches {} drives ({}); name it by serial",
                many.len(),
                many.iter()
                    .map(|d| d.id.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        }),
    }
}

fn list_members(s: &Snapshot) -> String {
    let names: Vec<String> = s.members().map(|d| d.id.describe()).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; members are: {}", names.join(", "))
    }
}

/// The survivors' verdicts, sorted for preflight: lines to refuse on, lines
/// to ask about, and conditions the runbook accepts.
#[derive(Default)]
struct Judged {
    failing: Vec<String>,
    at_risk: Vec<String>,
    accepted: Vec<String>,
}

/// `survivor sda (serial S1, bay 0) is failing: nvme.media_errors = 7 (...)`.
fn judged(walk: &Walk<'_, '_>) -> Judged {
    let base = &walk.baseline;
    let target_key = walk.target.key();
    let leaving = u32::from(walk.target.state() == Some(MemberState::InSync));
    let last_copy = base.array.last_copy(leaving);
    let accepted = &walk.run.runbook.guard.accept_survivor;
    let mut out = Judged::default();
    for d in base.members().filter(|d| d.key() != target_key) {
        let v = verdict::judge(d, last_copy, accepted);
        let who = d.id.describe();
        for f in &v.findings {
            let line = format!("survivor {who} is {}: {f}", f.level.prose());
            if f.accepted {
                out.accepted.push(line);
            } else if f.level == Level::Failing {
                out.failing.push(line);
            } else {
                out.at_risk.push(line);
            }
        }
    }
    out
}

pub(crate) fn check(walk: &mut Walk<'_, '_>) -> Result<(), Stop> {
    let mut reasons = Vec::new();
    let base = &walk.baseline;
    let smart_required = walk.run.runbook.guard.smart == Requirement::Required;
    let target_key = walk.target.key();

    // Fail closed: anything the baseline could not read refuses the run.
    for p in &base.problems {
        if p.probe == "smart" && !smart_required {
            continue;
        }
        reasons.push(format!(
            "cannot read {} of {}: {}",
            p.probe, p.subject, p.message
        ));
    }
    // A target the array lists as missing (its device already gone, a
    // btrfs device after the disk died) has nothing left to read, pull or
    // tell apart: the run replaces it where it stands.
    let target_gone = walk.target.device_gone();
    if target_gone {
        let name = walk
            .target
            .member
            .as_ref()
            .and_then(|m| m.name.clone())
            .unwrap_or_default();
        walk.run.operator.note(
            NoteLevel::Info,
            &sanitize(
                &format!(
                    "the target (member `{name}` of `{}`) is missing already: its device is gone, so there is no drive to read or pull; the new drive replaces it",
                    base.array.name
                ),
                false,
            ),
        );
    }
    for d in base.members() {
        if target_gone && d.key() == target_key {
            continue;
        }
        match &d.smart {
            Some(Smart::Unreadable { reason }) if smart_required => reasons.push(format!(
                "cannot read SMART of {}: {reason} (mark `smart = \"optional\"` in [guard] only if this array has no SMART)",
                d.id.describe()
            )),
            None if smart_required => reasons.push(format!(
                "SMART of {} was not read",
                d.id.describe()
            )),
            _ => {}
        }
        if d.key().is_weak() {
            let who = if d.key() == target_key {
                "the target"
            } else {
                "a survivor"
            };
            reasons.push(format!(
                "{who} {} has no readable serial or WWN: a pulled or swapped drive could not be told apart",
                d.id.describe()
            ));
        }
    }

    let mut judgement = None;
    for pre in &walk.run.runbook.preflight.require {
        match pre {
            Precondition::SurvivorsHealthy => {
                for d in base.members().filter(|d| d.key() != target_key) {
                    let observed = Observed::of(Some(d));
                    if d.state() != Some(MemberState::InSync) {
                        reasons.push(format!(
                            "survivor {} is {observed}, not in sync",
                            d.id.describe()
                        ));
                    }
                }
                judgement = Some(judged(walk));
            }
            Precondition::RedundantWithoutTarget => {
                let target_in_sync = walk.target.state() == Some(MemberState::InSync);
                if base.array.redundancy_left < i64::from(target_in_sync) {
                    let tolerated = base.array.tolerated();
                    reasons.push(format!(
                        "`{}` ({}, {} slots, {} missing) would lose data without the target: it tolerates {tolerated} missing",
                        base.array.name, base.array.level, base.array.raid_disks, base.array.degraded
                    ));
                }
            }
            Precondition::NoRebuildRunning => {
                if let Some(sync) = &base.array.sync {
                    reasons.push(format!(
                        "a {} is running on `{}` ({:.1}% done); wait until it finishes",
                        sync.action,
                        base.array.name,
                        sync.fraction() * 100.0
                    ));
                }
            }
            Precondition::TargetIdentified => {
                if walk.target.key().is_weak() && !target_gone {
                    reasons.push(format!(
                        "the target {} has no readable serial or WWN",
                        walk.target.id.describe()
                    ));
                }
            }
        }
    }
    // The registry is consulted before every write; one that cannot be
    // read now would fail in the middle of the run.
    if let Err(e) = walk.registry() {
        reasons.push(format!("cannot read the quarantine registry: {e:#}"));
    }
    reasons.extend(walk.drive_target_refusals());
    if !base.array.running {
        reasons.push(format!(
            "`{}` is {}, not running",
            base.array.name, base.array.state
        ));
    }

    let checks = walk.run.runbook.preflight.checks.clone();
    for c in &checks {
        match walk.run_check(c) {
            Ok(seen) => walk.run.operator.note(
                crate::operator::NoteLevel::Good,
                &crate::sanitize::sanitize(&format!("check `{}` passed: {seen}", c.name), false),
            ),
            Err(reason) => reasons.push(format!("check `{}` failed: {reason}", c.name)),
        }
    }
    reasons.dedup();
    let judgement = judgement.unwrap_or_default();
    if !reasons.is_empty() {
        reasons.extend(judgement.failing);
        return Err(Stop::Refuse { reasons });
    }
    walk.survivor_verdicts(judgement)
}

impl Walk<'_, '_> {
    /// Go on with survivors that are not healthy only as the runbook or the
    /// technician says, and journal it: conditions the runbook accepts are
    /// noted; a failing survivor needs a written reason (else refused); an
    /// at-risk one needs the word typed (else aborted).
    fn survivor_verdicts(&mut self, judgement: Judged) -> Result<(), Stop> {
        for line in &judgement.accepted {
            self.run
                .operator
                .note(NoteLevel::Warn, &sanitize(line, false));
        }
        if !judgement.accepted.is_empty() {
            self.record(Event::SurvivorAccepted {
                how: "runbook".into(),
                findings: judgement.accepted.clone(),
                reason: "[guard] accept_survivor".into(),
            })?;
        }
        if !judgement.failing.is_empty() {
            for line in &judgement.failing {
                self.run
                    .operator
                    .note(NoteLevel::Warn, &sanitize(line, false));
            }
            let prompt = format!(
                "A survivor is already failing, and during the swap it holds the last copy of the data. \
                 swapguard refuses to go on. To go on anyway, type the reason (at least {MIN_REASON_CHARS} \
                 characters; it goes into the journal and the report); an empty line keeps the refusal"
            );
            let reason = self.preflight_answer(Question {
                step_id: PREFLIGHT.into(),
                prompt,
                kind: QuestionKind::Reason,
            })?;
            if reason.chars().count() < MIN_REASON_CHARS {
                let mut reasons = judgement.failing;
                reasons.push(if reason.is_empty() {
                    "no written reason was given to go on with a failing survivor".to_string()
                } else {
                    format!(
                        "`{}` is not a reason to go on with a failing survivor: write at least {MIN_REASON_CHARS} characters",
                        sanitize(&reason, false)
                    )
                });
                return Err(Stop::Refuse { reasons });
            }
            let mut findings = judgement.failing;
            findings.extend(judgement.at_risk);
            self.run.operator.note(
                NoteLevel::Warn,
                &format!(
                    "the refusal is overridden, for this reason: {}",
                    sanitize(&reason, false)
                ),
            );
            self.record(Event::SurvivorAccepted {
                how: "override".into(),
                findings,
                reason,
            })?;
            return Ok(());
        }
        if !judgement.at_risk.is_empty() {
            for line in &judgement.at_risk {
                self.run
                    .operator
                    .note(NoteLevel::Warn, &sanitize(line, false));
            }
            let prompt = format!(
                "A survivor is at risk, and during the swap it holds the data the new drive is built from. \
                 Type `{AT_RISK_WORD}` to go on with it; anything else stops here, with nothing touched"
            );
            let typed = self.preflight_answer(Question {
                step_id: PREFLIGHT.into(),
                prompt,
                kind: QuestionKind::TypeExact {
                    expected: AT_RISK_WORD.into(),
                },
            })?;
            if typed != AT_RISK_WORD {
                return Err(Stop::Abort {
                    step: PREFLIGHT.into(),
                    reason: format!(
                        "the at-risk survivor was not acknowledged (`{AT_RISK_WORD}` not typed); nothing was touched"
                    ),
                });
            }
            self.record(Event::SurvivorAccepted {
                how: "acknowledged".into(),
                findings: judgement.at_risk,
                reason: typed,
            })?;
        }
        Ok(())
    }

    /// The answer to a preflight question: the one journaled before an
    /// interruption (a resumed preflight judges the same journaled
    /// baseline, so it asks the same question), else the technician's, which
    /// is journaled at once.
    fn preflight_answer(&mut self, question: Question) -> Result<String, Stop> {
        if let Some(at) = self
            .answered_before
            .iter()
            .position(|(q, _)| *q == question.prompt)
        {
            let (_, answer) = self.answered_before.remove(at);
            self.run.operator.note(
                NoteLevel::Info,
                &format!(
                    "answered before the interruption: {}",
                    sanitize(&answer, false)
                ),
            );
            return Ok(answer);
        }
        let answer = match self.ask(PREFLIGHT, &question)? {
            Answer::Text(t) => t.trim().to_string(),
            Answer::Yes | Answer::No => String::new(),
        };
        self.record(Event::Answer {
            step: PREFLIGHT.into(),
            question: question.prompt,
            answer: answer.clone(),
        })?;
        Ok(answer)
    }
}
