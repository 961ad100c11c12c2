//! How the live array is shown to people: the `{target.*}`/`{new.*}`
//! variables bound from a drive's identity, and the health panel.

use std::time::Duration;

use crate::engine::Run;
use crate::health::guard::{self, Observed};
use crate::health::model::{DriveKey, Identity, Snapshot};
use crate::operator::{HaltReport, PanelLine, Progress, STALL_AFTER};
use crate::runbook::template::{self, Vars};
use crate::sanitize::sanitize;

impl crate::engine::Walk<'_, '_> {
    /// A command's argv with variables bound, every value checked and, in
    /// a shell command line, quoted ([`template::render_command`]).
    pub(crate) fn render_argv(
        &self,
        run: &[crate::runbook::model::Template],
    ) -> anyhow::Result<Vec<String>> {
        let texts: Vec<&str> = run.iter().map(|t| t.text.as_str()).collect();
        template::render_command(&texts, &self.vars, &self.run.runbook.params)
    }

    /// [`Self::render_argv`] for step `step`: a refused value halts the
    /// run before the step does anything.
    pub(crate) fn command_argv(
        &self,
        step: &str,
        run: &[crate::runbook::model::Template],
    ) -> Result<Vec<String>, crate::engine::Stop> {
        self.render_argv(run)
            .map_err(|e| crate::engine::Stop::Halt {
                step: step.to_string(),
                headline: format!("step `{step}` does not run: {e:#}"),
                violations: Vec::new(),
            })
    }
}

/// Bind `{role.dev}`, `{role.serial}`, ... for a drive.
pub(crate) fn bind_drive(vars: &mut Vars, role: &str, id: &Identity) {
    let serial = id.serial.clone().unwrap_or_default();
    let serial4: String = {
        let chars: Vec<char> = serial.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    vars.set(format!("{role}.dev"), format!("/dev/{}", id.dev));
    vars.set(format!("{role}.name"), id.dev.clone());
    vars.set(
        format!("{role}.serial"),
        if serial.is_empty() {
            "unknown".into()
        } else {
            serial.clone()
        },
    );
    vars.set(format!("{role}.serial4"), serial4);
    vars.set(
        format!("{role}.wwn"),
        id.wwn.clone().unwrap_or_else(|| "unknown".into()),
    );
    vars.set(
        format!("{role}.model"),
        id.model.clone().unwrap_or_else(|| "unknown".into()),
    );
    vars.set(
        format!("{role}.size"),
        id.size_bytes
            .map_or_else(|| "unknown".into(), |b| b.to_string()),
    );
    vars.set(
        format!("{role}.slot"),
        id.slot.clone().unwrap_or_else(|| {
            format!("unknown (no bay information: identify the drive by serial {serial})")
        }),
    );
}

/// The health panel: survivors, target, new drive.
pub fn panel_lines(
    baseline: &Snapshot,
    now: &Snapshot,
    target: &DriveKey,
    new: Option<&DriveKey>,
) -> Vec<PanelLine> {
    let mut lines = Vec::new();
    for before in baseline.members() {
        let key = before.key();
        let drive = now.drive(&key);
        let role = if &key == target { "target" } else { "survivor" };
        let observed = Observed::of(drive);
        let ok = role == "target"
            || drive.is_some_and(|d| {
                observed == Observed::InSync
                    && d.member.as_ref().is_none_or(|m| {
                        !m.flags
                            .iter()
                            .any(|f| guard::BAD_FLAGS.contains(&f.as_str()))
                    })
            });
        lines.push(PanelLine {
            role: role.into(),
            drive: sanitize(&before.id.describe(), false),
            state: observed.name().into(),
            ok,
        });
    }
    if let Some(key) = new {
        let drive = now.drive(key);
        lines.push(PanelLine {
            role: "new".into(),
            drive: drive.map_or_else(|| key.to_string(), |d| sanitize(&d.id.describe(), false)),
            state: match Observed::of(drive) {
                Observed::Removed => "inserted, not in the array yet".into(),
                other => other.name().into(),
            },
            ok: drive.is_some(),
        });
    }
    lines
}

/// The progress of a wait as the operator shows it, every figure from the
/// backend: the fraction and work remaining from `sync_completed`, the
/// speed from `sync_speed`, the finish estimate the one over the other.
/// `moved` remembers when the work done last changed (`(ms, done)`); when
/// it has not changed for [`STALL_AFTER`] the wait is stalled, and the
/// estimate (which md goes on computing from a decaying speed) is withheld.
/// `None` when no sync is running.
pub(crate) fn wait_progress(
    step_id: &str,
    now: &Snapshot,
    moved: &mut Option<(u64, u64)>,
) -> Option<Progress> {
    let sync = now.array.sync.as_ref()?;
    let t = now.at_ms;
    let since = match *moved {
        Some((t0, done0)) if done0 == sync.done => t.saturating_sub(t0),
        _ => {
            *moved = Some((t, sync.done));
            0
        }
    };
    let stalled_for = Some(Duration::from_millis(since)).filter(|d| *d >= STALL_AFTER);
    Some(Progress {
        step_id: step_id.to_string(),
        label: format!("{} of {}", sync.action, now.array.name),
        fraction: Some(sync.fraction()),
        eta: sync.finish_estimate().filter(|_| stalled_for.is_none()),
        speed: sync.speed_bytes().filter(|_| stalled_for.is_none()),
        remaining: Some(sync.remaining_bytes()),
        stalled_for,
    })
}

/// The report of a refusal: preflight found a reason not to start, before
/// anything was touched. Its guidance is not the runbook's `[on_halt]` text
/// (that is for a halt, with hands maybe in the chassis) but a plain
/// explanation: what was checked, what to fix, and the command that runs
/// the same swap again.
pub(crate) fn refusal_report(run: &Run<'_>, reasons: Vec<String>) -> HaltReport {
    let array = run.params.get("array").map_or("the array", String::as_str);
    let about_target = reasons
        .iter()
        .any(|r| r.starts_with("target `") || r.starts_with("no target"));
    let mut checked: Vec<String> = run
        .runbook
        .preflight
        .require
        .iter()
        .map(|p| format!("`{}`", p.name()))
        .collect();
    match run.runbook.preflight.checks.len() {
        0 => {}
        1 => checked.push("the runbook's check".into()),
        n => checked.push(format!("the runbook's {n} checks")),
    }
    let checked = if about_target {
        format!("the target named on the command line was looked up among the drives of `{array}`")
    } else if checked.is_empty() {
        format!("the health of `{array}` and every member was read")
    } else {
        format!(
            "the health of `{array}` and every member was read, then {}",
            checked.join(", ")
        )
    };
    let fix = if about_target {
        "name the target by one of the members listed above: its kernel name, serial, WWN or bay"
    } else if reasons.iter().any(|r| r.starts_with("cannot read")) {
        "make that health readable (is the tool installed, does it run as root?)"
    } else {
        "put right what is listed above, or ask the storage lead; a survivor at risk \
         is only accepted with a written reason, at the prompt"
    };
    let rerun = rerun_command(run, about_target);
    let guidance = format!(
        "Nothing was touched: no step ran and no drive was changed.\n\n\
         checked: {checked}\n\
         to fix: {fix}\n\n\
         then run again:\n    {rerun}\n"
    );
    HaltReport {
        step_id: "preflight".into(),
        headline: "preflight refused to start: nothing was touched".into(),
        details: reasons,
        guidance,
    }
}

/// `swapguard run RUNBOOK --array A --target T --param K=V`, quoted for a
/// shell. With `target_unknown` the target is a placeholder to fill in.
fn rerun_command(run: &Run<'_>, target_unknown: bool) -> String {
    let mut argv = vec![
        "swapguard".to_string(),
        "run".to_string(),
        run.runbook.path.display().to_string(),
    ];
    for (name, value) in &run.params {
        match name.as_str() {
            "array" => argv.extend(["--array".to_string(), value.clone()]),
            "target" if target_unknown => {
                argv.extend(["--target".to_string(), "SERIAL".to_string()]);
            }
            "target" => argv.extend(["--target".to_string(), value.clone()]),
            _ => argv.extend(["--param".to_string(), format!("{name}={value}")]),
        }
    }
    crate::operator::render::shell_line(&argv)
}
