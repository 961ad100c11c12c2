//! How the live array is shown to people: the `{target.*}`/`{new.*}`
//! variables bound from a drive's identity, and the health panel.

use crate::health::guard::Observed;
use crate::health::model::{DriveKey, Identity, Snapshot};
use crate::operator::PanelLine;
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
            || drive
                .is_some_and(|d| observed == Observed::InSync && !d.faults.iter().any(|f| f.flag));
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
