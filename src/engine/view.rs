//! How the live array is shown to people: the `{target.*}`/`{new.*}`
//! variables bound from a drive's identity, and the health panel.

use std::time::Duration;

use crate::backend::Depth;
use crate::engine::Run;
use crate::health::guard::{self, Observed, Violation};
use crate::health::model::{Drive, DriveKey, Identity, Smart, Snapshot};
use crate::health::verdict;
use crate::operator::{HaltReport, PanelLine, Progress, STALL_AFTER};
use crate::runbook::model::StepKind;
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

/// Bind `{role.dev}`, `{role.serial}`, ... for a drive, and
/// `{role.member}` when the drive is a member with a backend name.
pub(crate) fn bind_drive(vars: &mut Vars, role: &str, drive: &Drive) {
    if let Some(name) = drive.member.as_ref().and_then(|m| m.name.as_ref()) {
        vars.set(format!("{role}.member"), name.clone());
    }
    bind_identity(vars, role, &drive.id);
}

/// Bind `{role.dev}`, `{role.serial}`, ... from a drive's identity.
fn bind_identity(vars: &mut Vars, role: &str, id: &Identity) {
    let serial = id.serial.clone().unwrap_or_default();
    let serial4: String = {
        let chars: Vec<char> = serial.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    };
    vars.set(format!("{role}.name"), id.dev.clone());
    if id.dev.contains('/') {
        // A controller address (MegaRAID: `c0/e252/s1`), not a kernel
        // name: the drive has no block device of its own, so `{dev}` is
        // the address as the controller's tool spells it and there is no
        // partition to name.
        vars.set(format!("{role}.dev"), format!("/{}", id.dev));
    } else {
        vars.set(format!("{role}.dev"), format!("/dev/{}", id.dev));
        // Kernel names that end in a digit take a `p` before the partition
        // number (`nvme1n1p3`, `mmcblk0p1`); others do not (`sdb3`).
        let sep = if id.dev.ends_with(|c: char| c.is_ascii_digit()) {
            "p"
        } else {
            ""
        };
        vars.set(format!("{role}.part"), format!("/dev/{}{sep}", id.dev));
    }
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

/// The health panel: survivors, target, new drive. A survivor is marked
/// by its absolute health, not only by change: in sync with no bad flag,
/// SMART passing and readable, no condition the verdict counts against it
/// (media errors, pending sectors, a critical warning...), and no counter
/// above its baseline. Anything else is shown in its state column and the
/// row is not OK. SMART is judged from `now` when that look read it, else
/// from the baseline (a fast look reads no SMART, and a failing drive does
/// not become healthy between two polls).
pub fn panel_lines(
    baseline: &Snapshot,
    now: &Snapshot,
    target: &DriveKey,
    new: Option<&DriveKey>,
) -> Vec<PanelLine> {
    let mut lines = Vec::new();
    let last_copy = baseline.array.last_copy(1);
    for before in baseline.members() {
        let key = before.key();
        let drive = now.drive(&key);
        let role = if &key == target { "target" } else { "survivor" };
        let observed = Observed::of(drive);
        let mut state = observed.name().to_string();
        let ok = if role == "target" {
            true
        } else {
            let mut warnings = Vec::new();
            if let Some(d) = drive {
                warnings = survivor_warnings(before, d, last_copy);
            }
            let in_sync = drive
                .is_some_and(|d| observed == Observed::InSync && !d.faults.iter().any(|f| f.flag));
            if !warnings.is_empty() {
                state = format!("{state}; {}", warnings.join("; "));
            }
            in_sync && warnings.is_empty()
        };
        lines.push(PanelLine {
            role: role.into(),
            drive: sanitize(&before.id.describe(), false),
            state: sanitize(&state, false),
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

/// Counters whose rise says nothing about a survivor's health: wear creeps
/// up on its own, and the NVMe error log also counts harmless entries (the
/// guard notes its first rise once). Marking a drive for them would be the
/// guard crying wolf.
const NOT_A_WARNING: [&str; 2] = [
    "nvme.percentage_used",
    crate::runbook::model::NVME_ERROR_LOG_COUNTER,
];

/// What is wrong with a survivor now, in short: bad md flags, SMART failing,
/// the verdict's conditions, and every counter above its
/// baseline value (`smart.udma_crc_error_count 0 → 3`).
fn survivor_warnings(before: &Drive, now: &Drive, last_copy: bool) -> Vec<String> {
    let mut out = Vec::new();
    for fault in now.faults.iter().filter(|f| f.flag) {
        out.push(format!(
            "flag `{}`",
            fault
                .flag_name()
                .map_or(fault.condition.as_str(), |(_, n)| n)
        ));
    }
    let smart_source = if now.smart.is_some() { now } else { before };
    if let Some(Smart::Read { passed: false, .. }) = &smart_source.smart {
        out.push("SMART failing".into());
    }
    let mut judged = smart_source.clone();
    judged.counters = now.counters.clone();
    for f in verdict::judge(&judged, last_copy, &[]).findings {
        if f.level != verdict::Level::Healthy {
            out.push(format!(
                "{} = {} ({})",
                f.condition,
                f.value,
                f.level.prose()
            ));
        }
    }
    let smart_counters = |d: &Drive| match &d.smart {
        Some(Smart::Read { counters, .. }) => Some(counters.clone()),
        _ => None,
    };
    let pairs = [
        (Some(before.counters.clone()), Some(now.counters.clone())),
        (smart_counters(before), smart_counters(now)),
    ];
    for (b, a) in pairs {
        let (Some(b), Some(a)) = (b, a) else { continue };
        for (name, &is) in a
            .iter()
            .filter(|(n, _)| !NOT_A_WARNING.contains(&n.as_str()))
        {
            let was = b.get(name).copied().unwrap_or(0);
            if is > was {
                out.push(format!("{name} {was} \u{2192} {is}"));
            }
        }
    }
    out
}

impl crate::engine::Walk<'_, '_> {
    /// The panel for `now`, with the warnings already given in this run
    /// (a CRC rise seen by the last SMART poll) kept on their drive's row:
    /// a fast look reads no SMART, and a warning must not turn back into
    /// OK at the next panel.
    pub(crate) fn panel_for(&self, now: &Snapshot) -> Vec<PanelLine> {
        let mut lines = panel_lines(
            &self.baseline,
            now,
            &self.target.key(),
            self.new.as_ref().map(Drive::key).as_ref(),
        );
        for line in lines.iter_mut().filter(|l| l.role == "survivor") {
            for warned in &self.warned {
                let Some(rest) = warned
                    .strip_prefix("survivor ")
                    .unwrap_or(warned)
                    .strip_prefix(line.drive.as_str())
                else {
                    continue;
                };
                let what = rest
                    .trim_start_matches(':')
                    .split_whitespace()
                    .next()
                    .unwrap_or_default();
                if what.is_empty() || line.state.contains(what) || NOT_A_WARNING.contains(&what) {
                    continue;
                }
                line.state = format!("{}; {what} rose (warning)", line.state);
                line.ok = false;
            }
        }
        lines
    }
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

impl crate::engine::Walk<'_, '_> {
    /// Everything that moved, not only what the look that tripped the guard
    /// could see: a fast look reads no SMART, so a survivor whose md error
    /// count and SMART uncorrectable count rose together would be reported
    /// by its md count alone. One full look is taken (the run is stopping
    /// anyway; every step already takes one before and after) and its
    /// violations are added to the first. Returns the full look too, for
    /// the journal.
    pub(crate) fn all_that_moved(
        &mut self,
        mut violations: Vec<Violation>,
        allowed: &guard::Allowed,
    ) -> (Vec<Violation>, Option<Snapshot>) {
        let Ok(full) = self.run.backend.snapshot(&self.array, Depth::Full) else {
            return (violations, None);
        };
        for v in guard::compare(&self.baseline, &full, allowed, &self.run.runbook.guard) {
            if !violations
                .iter()
                .any(|w| w.who == v.who && w.what == v.what)
            {
                violations.push(v);
            }
        }
        (violations, Some(full))
    }

    /// The first line of a halt, in the words a technician acts on. A
    /// survivor gone during a physical step was pulled by mistake: say so,
    /// and where it goes back, instead of "degraded".
    pub(crate) fn halt_headline(&self, step: &str, violations: &[Violation]) -> String {
        let physical = self
            .run
            .runbook
            .step(step)
            .is_some_and(|s| matches!(s.kind, StepKind::Physical));
        let pulled = violations.iter().find(|v| {
            v.subject == guard::Subject::Survivor && v.what == "present" && v.after == "vanished"
        });
        if physical && let Some(v) = pulled {
            let id = self
                .baseline
                .members()
                .find(|d| d.id.describe() == v.who)
                .map(|d| d.id.clone());
            return wrong_pull_headline(&v.who, id.as_ref());
        }
        let Some(first) = violations.first() else {
            return format!("step `{step}` stopped");
        };
        let who = &first.who;
        match first.subject {
            guard::Subject::Survivor => {
                format!("survivor {who} degraded during step `{step}`")
            }
            guard::Subject::Target => {
                format!("the target {who} did not do what step `{step}` expects")
            }
            guard::Subject::NewDrive => {
                format!("the new drive {who} misbehaved during step `{step}`")
            }
            guard::Subject::OtherDrive => {
                format!("a drive outside the plan changed during step `{step}`: {who}")
            }
            guard::Subject::Array => {
                format!("array {who} lost more redundancy than step `{step}` allows")
            }
            guard::Subject::Probe => format!(
                "cannot read the health of {who} during step `{step}`: the guard stops rather than guess"
            ),
        }
    }
}

/// `you pulled sda (serial S1, bay 0), which is a SURVIVOR; put it back in
/// bay 0 now, do not touch anything else`.
pub(crate) fn wrong_pull_headline(who: &str, id: Option<&Identity>) -> String {
    let back = match id.and_then(|i| i.slot.as_deref()) {
        Some(slot) => format!("put it back in bay {slot} now"),
        None => "put it back where it came from now".to_string(),
    };
    format!(
        "you pulled {}, which is a SURVIVOR; {back}, do not touch anything else",
        sanitize(who, false)
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::{bind_drive, panel_lines, wait_progress, wrong_pull_headline};
    use crate::health::model::{
        ArrayHealth, Drive, Identity, MemberState, Membership, Smart, Snapshot, SyncProgress,
    };
    use crate::runbook::template::Vars;

    fn drive(dev: &str, serial: &str, slot: Option<&str>, transport: &str) -> Drive {
        Drive {
            id: Identity {
                dev: dev.into(),
                serial: Some(serial.into()),
                slot: slot.map(String::from),
                transport: Some(transport.into()),
                ..Identity::default()
            },
            member: Some(Membership {
                state: MemberState::InSync,
                role: Some(0),
                flags: vec!["in_sync".into()],
                name: None,
            }),
            counters: BTreeMap::new(),
            smart: None,
            blank: None,
            faults: Vec::new(),
        }
    }

    fn snapshot(at_ms: u64, drives: Vec<Drive>, sync: Option<SyncProgress>) -> Snapshot {
        Snapshot {
            at_ms,
            array: ArrayHealth {
                name: "md0".into(),
                level: "raid1".into(),
                state: "clean".into(),
                raid_disks: 2,
                degraded: 0,
                sync,
                running: true,
                redundancy_left: 1,
            },
            drives,
            problems: Vec::new(),
        }
    }

    #[test]
    fn a_member_binds_its_backend_name_and_a_drive_that_is_no_member_does_not() {
        let mut member = drive("nvme1n1", "S2", Some("2"), "nvme");
        member.member.as_mut().unwrap().name = Some("5321684231234567890".into());
        let mut vars = Vars::new();
        bind_drive(&mut vars, "target", &member);
        assert_eq!(vars.get("target.member"), Some("5321684231234567890"));
        assert_eq!(vars.get("target.dev"), Some("/dev/nvme1n1"));

        let mut new = drive("nvme2n1", "S3", Some("3"), "nvme");
        new.member = None;
        bind_drive(&mut vars, "new", &new);
        assert_eq!(vars.get("new.member"), None);
        assert_eq!(vars.get("new.serial"), Some("S3"));
    }

    #[test]
    fn part_and_member_are_bound_for_sata_scsi_and_nvme() {
        for (dev, transport, part) in [
            ("sdb", "sata", "/dev/sdb"),
            ("sdaa", "sas", "/dev/sdaa"),
            ("nvme1n1", "nvme", "/dev/nvme1n1p"),
            ("mmcblk0", "mmc", "/dev/mmcblk0p"),
        ] {
            let mut d = drive(dev, "S1", None, transport);
            if let Some(m) = d.member.as_mut() {
                m.name = Some("9182736455463728190".into());
            }
            let mut vars = crate::runbook::template::Vars::new();
            bind_drive(&mut vars, "new", &d);
            assert_eq!(vars.get("new.part"), Some(part), "{dev}");
            assert_eq!(vars.get("new.member"), Some("9182736455463728190"));
        }
    }

    #[test]
    fn a_controller_address_binds_as_the_tools_address_with_no_partition() {
        for (dev, transport, want) in [
            ("c0/e252/s1", "sata", "/c0/e252/s1"),
            ("c0/e32/s12", "sas", "/c0/e32/s12"),
            ("c1/s3", "nvme", "/c1/s3"),
        ] {
            let d = drive(dev, "S1", Some("252:1"), transport);
            let mut vars = Vars::new();
            bind_drive(&mut vars, "target", &d);
            assert_eq!(vars.get("target.dev"), Some(want), "{dev}");
            assert_eq!(vars.get("target.name"), Some(dev));
            assert_eq!(vars.get("target.part"), None, "{dev}");
            assert_eq!(vars.get("target.slot"), Some("252:1"));
        }
        let mut vars = Vars::new();
        bind_drive(&mut vars, "target", &drive("sdb", "S1", None, "sata"));
        assert_eq!(vars.get("target.dev"), Some("/dev/sdb"));
        assert_eq!(vars.get("target.part"), Some("/dev/sdb"));
    }

    #[test]
    fn wrong_pull_headline_names_the_bay_on_sata_scsi_and_nvme() {
        for (d, want) in [
            (
                drive("sda", "WD-WCC4N7XY1234", Some("0"), "sata"),
                "you pulled sda (serial WD-WCC4N7XY1234, bay 0), which is a SURVIVOR; put it back in bay 0 now, do not touch anything else",
            ),
            (
                drive("sdc", "ZA1B2C3D", Some("enclosure 0 slot 4"), "sas"),
                "you pulled sdc (serial ZA1B2C3D, bay enclosure 0 slot 4), which is a SURVIVOR; put it back in bay enclosure 0 slot 4 now, do not touch anything else",
            ),
            (
                drive("nvme0n1", "LAB-A-0001", None, "nvme"),
                "you pulled nvme0n1 (serial LAB-A-0001, bay unknown), which is a SURVIVOR; put it back where it came from now, do not touch anything else",
            ),
        ] {
            assert_eq!(wrong_pull_headline(&d.id.describe(), Some(&d.id)), want);
        }
    }

    /// Regression: a CRC rise on a SATA survivor left its panel row `OK`.
    #[test]
    fn panel_shows_a_survivors_warning_not_ok() {
        let smart = |crc: u64, passed: bool| {
            Some(Smart::Read {
                passed,
                counters: BTreeMap::from([("smart.udma_crc_error_count".to_string(), crc)]),
            })
        };
        let mut a = drive("sda", "S3Z1NB0K100001", Some("0"), "sata");
        a.smart = smart(0, true);
        let b = drive("sdb", "S3Z1NB0K100002", Some("1"), "sata");
        let target = b.key();
        let base = snapshot(0, vec![a.clone(), b.clone()], None);
        let rows = panel_lines(&base, &base, &target, None);
        assert!(rows[0].ok, "{rows:?}");
        let mut crc = a.clone();
        crc.smart = smart(3, true);
        let now = snapshot(1, vec![crc, b.clone()], None);
        let rows = panel_lines(&base, &now, &target, None);
        assert!(!rows[0].ok, "{rows:?}");
        assert_eq!(
            rows[0].state,
            "in-sync; smart.udma_crc_error_count 0 \u{2192} 3"
        );
        // Absolute health: failing SMART and an NVMe media error count show
        // even when nothing changed since the baseline.
        let mut failing = a.clone();
        failing.smart = smart(0, false);
        let mut nvme = drive("nvme0n1", "LAB-A-0001", None, "nvme");
        nvme.smart = Some(Smart::Read {
            passed: true,
            counters: BTreeMap::from([("nvme.media_errors".to_string(), 7)]),
        });
        for survivor in [failing, nvme] {
            let base = snapshot(0, vec![survivor, b.clone()], None);
            let rows = panel_lines(&base, &base, &target, None);
            assert!(!rows[0].ok, "{rows:?}");
        }
    }

    #[test]
    fn progress_is_md_own_and_stalls_after_30s() {
        let sync = |done: u64| SyncProgress {
            action: "recover".into(),
            done,
            total: 2_000_000,
            speed_kib: Some(100_000),
        };
        let at = |ms: u64, done: u64| snapshot(ms, vec![], Some(sync(done)));
        let mut moved = None;
        let p = wait_progress("rebuild", &at(0, 1_000_000), &mut moved).unwrap();
        assert_eq!(p.speed, Some(102_400_000));
        assert_eq!(p.remaining, Some(512_000_000));
        assert_eq!(p.eta, Some(Duration::from_secs(5)));
        assert_eq!(p.stalled_for, None);
        // Not moving for 29 s is not a stall; 30 s is, and hides the estimate.
        let p = wait_progress("rebuild", &at(29_000, 1_000_000), &mut moved).unwrap();
        assert_eq!(p.stalled_for, None);
        let p = wait_progress("rebuild", &at(45_000, 1_000_000), &mut moved).unwrap();
        assert_eq!(p.stalled_for, Some(Duration::from_secs(45)));
        assert_eq!((p.eta, p.speed), (None, None));
        // Moving again ends the stall.
        let p = wait_progress("rebuild", &at(46_000, 1_000_100), &mut moved).unwrap();
        assert_eq!(p.stalled_for, None);
        assert!(p.eta.is_some());
        assert!(wait_progress("rebuild", &snapshot(0, vec![], None), &mut moved).is_none());
    }
}
