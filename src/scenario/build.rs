//! Turning a raw scenario file into the checked [`Scenario`].
//!
//! Every check that needs more than one value at a time lives here: drive
//! names in events resolve against the drives, counters carry a namespace,
//! slots and serials are unique. Problems are collected, not stopped at, so
//! a scenario author sees them all at once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::backend::disk::identity;
use crate::backend::sim::machine::ControllerDrive;
use crate::backend::sim::names::Family;
use crate::health::model::MemberState;
use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::model::Span;
use crate::scenario::raw::{RawDrive, RawEvent, RawFile, backticked, did_you_mean, span_of};
use crate::scenario::{
    Action, ArraySpec, CannedCommand, DriveGroup, DriveSpec, During, Event, Expected, Outcome,
    Probe, Quarantined, Scenario, StepRef, Technician,
};

/// Counters a drive of this family reports when the file names none: the
/// SMART error counters the guard watches, all zero.
fn default_counters(family: Family) -> &'static [&'static str] {
    match family {
        Family::Sd => &[
            "io.ioerr_cnt",
            "smart.current_pending_sector",
            "smart.offline_uncorrectable",
            "smart.reallocated_sector_ct",
            "smart.reported_uncorrect",
            "smart.udma_crc_error_count",
        ],
        Family::Nvme => &[
            "nvme.critical_warning",
            "nvme.media_errors",
            "nvme.num_err_log_entries",
        ],
        Family::Vd => &[],
    }
}

/// md state flags an event may add (the kernel's `dev-*/state` spelling).
pub const EVENT_FLAGS: [&str; 5] = [
    "write_error",
    "want_replacement",
    "blocked",
    "write_mostly",
    "failfast",
];

pub(super) struct Builder<'a> {
    pub path: &'a Path,
    pub source: &'a str,
    pub diagnostics: Vec<Diagnostic>,
}

impl Builder<'_> {
    fn error(&mut self, span: Span, message: impl Into<String>, help: Option<String>) {
        self.diagnostics.push(Diagnostic::at(
            Severity::Error,
            self.path,
            self.source,
            span,
            message,
            help,
        ));
    }

    pub fn build(&mut self, raw: RawFile) -> Option<Scenario> {
        let mut step_refs = Vec::new();
        let header_span = span_of(raw.scenario.span());
        let header = raw.scenario.into_inner();
        let runbook = resolve_runbook(self.path, header.runbook.get_ref());
        step_refs.push(StepRef {
            id: String::new(),
            span: span_of(header.runbook.span()),
            what: "runbook".to_string(),
        });

        let mut params = BTreeMap::new();
        let mut param_spans = BTreeMap::new();
        let params_span = header
            .params
            .as_ref()
            .map_or(header_span, |p| span_of(p.span()));
        for (key, value) in header.params.map(Spanned::into_inner).unwrap_or_default() {
            param_spans.insert(key.get_ref().clone(), span_of(key.span()));
            params.insert(key.into_inner(), value);
        }

        let array_name = raw.array.name.get_ref().trim_start_matches("/dev/");
        // A MegaRAID virtual drive is named by its controller address
        // (`/c0/v0`), as `--array` takes it.
        let vd_address =
            crate::backend::sim::megaraid::parse_vd(raw.array.name.get_ref()).is_some();
        if !vd_address && (array_name.is_empty() || array_name.contains('/')) {
            self.error(
                span_of(raw.array.name.span()),
                format!("`{}` is not an md array name", raw.array.name.get_ref()),
                Some(
                    "write the kernel name, e.g. `md0` (a MegaRAID virtual drive: `/c0/v0`)"
                        .to_string(),
                ),
            );
        }

        let mount = raw.array.mount.map(|m| {
            let path = m.get_ref();
            let fine = path.starts_with('/')
                && path.len() > 1
                && !path.ends_with('/')
                && path
                    .split('/')
                    .skip(1)
                    .all(|p| !p.is_empty() && p != "." && p != "..")
                && !path.chars().any(|c| c.is_control() || c.is_whitespace());
            if !fine {
                self.error(
                    span_of(m.span()),
                    format!(
                        "`mount` must be an absolute path without `.`, `..` or blanks, not `{path}`"
                    ),
                    Some("e.g. `mount = \"/mnt/data\"`".into()),
                );
            }
            m.into_inner()
        });
        let mut drives = Vec::new();
        let mut spans = Vec::new();
        for d in raw.array.members {
            let span = span_of(d.span());
            if let Some(spec) = self.drive(d, DriveGroup::Member, None) {
                drives.push(spec);
                spans.push(span);
            }
        }
        let first_family = drives.first().map_or(Family::Sd, |d: &DriveSpec| d.family);
        for d in raw.array.spares {
            let span = span_of(d.span());
            if let Some(spec) = self.drive(d, DriveGroup::Spare, Some(first_family)) {
                drives.push(spec);
                spans.push(span);
            }
        }
        for d in raw.array.others {
            let span = span_of(d.span());
            if let Some(spec) = self.drive(d, DriveGroup::Other, None) {
                drives.push(spec);
                spans.push(span);
            }
        }
        if !drives.iter().any(|d| d.group == DriveGroup::Member) {
            self.error(
                span_of(raw.array.name.span()),
                "the array has no members",
                Some(
                    "add `members = [{ dev = \"sda\", serial = \"...\", size = \"960G\" }]`".into(),
                ),
            );
        }
        self.check_unique(&drives, &spans);

        let holding_role = drives
            .iter()
            .filter(|d| {
                d.group == DriveGroup::Member
                    && matches!(d.state, MemberState::InSync | MemberState::Rebuilding)
            })
            .count() as u32;
        let not_spare = drives
            .iter()
            .filter(|d| d.group == DriveGroup::Member && d.state != MemberState::Spare)
            .count() as u32;
        let raid_disks = match raw.array.raid_disks {
            Some(n) => {
                if *n.get_ref() < holding_role.max(1) {
                    self.error(
                        span_of(n.span()),
                        format!(
                            "`raid_disks` is {} but {holding_role} members hold a slot",
                            n.get_ref()
                        ),
                        None,
                    );
                }
                *n.get_ref()
            }
            None => not_spare,
        };
        let partition = raw.array.partition.as_ref().map(|p| {
            let n = *p.get_ref();
            if !raw.array.level.is_zfs() {
                self.error(
                    span_of(p.span()),
                    "`partition` is a ZFS pool's layout; md levels take whole members here",
                    None,
                );
            } else if !(1..=128).contains(&n) {
                self.error(
                    span_of(p.span()),
                    format!("`partition` is {n}; a GPT partition number is 1 to 128"),
                    None,
                );
            }
            n
        });
        let rebuilding = drives
            .iter()
            .filter(|d| d.state == MemberState::Rebuilding)
            .count();
        if rebuilding > 1 {
            self.error(
                span_of(raw.array.name.span()),
                "more than one member is `rebuilding`; md recovers one at a time here",
                None,
            );
        }

        let technician = match raw.technician {
            Some(t) => Technician {
                pull_after: t
                    .pull_after
                    .map_or(Technician::default().pull_after, |d| d.0),
                insert_after: t
                    .insert_after
                    .map_or(Technician::default().insert_after, |d| d.0),
            },
            None => Technician::default(),
        };

        let mut events = Vec::new();
        for (i, e) in raw.events.into_iter().enumerate() {
            let span = span_of(e.span());
            if let Some(event) = self.event(i + 1, span, e.into_inner(), &drives, &mut step_refs) {
                events.push(event);
            }
        }

        let mut commands = Vec::new();
        for c in raw.commands {
            let span = span_of(c.span());
            let c = c.into_inner();
            if c.argv.is_empty() {
                self.error(span, "`argv` of a `[[command]]` is empty", None);
                continue;
            }
            commands.push(CannedCommand {
                argv: c.argv,
                code: if c.timed_out {
                    None
                } else {
                    Some(c.code.unwrap_or(0))
                },
                stdout: c.stdout,
                stderr: c.stderr,
                timed_out: c.timed_out,
                duration: c.duration.map_or(Duration::ZERO, |d| d.0),
            });
        }

        let mut quarantined = Vec::new();
        for q in raw.quarantined {
            let q = q.into_inner();
            let label = "[[quarantined]]";
            if let Some(drive) =
                self.drive_ref(label, q.drive.get_ref(), span_of(q.drive.span()), &drives)
            {
                if drives[drive].serial.is_none() && drives[drive].wwn.is_none() {
                    self.error(
                        span_of(q.drive.span()),
                        format!(
                            "{label}: `{}` has no serial or WWN to quarantine it by",
                            q.drive.get_ref()
                        ),
                        None,
                    );
                    continue;
                }
                quarantined.push(Quarantined {
                    drive,
                    reason: q
                        .reason
                        .unwrap_or_else(|| "quarantined before this scenario".into()),
                    at: q.at.unwrap_or_else(|| "2025-12-31T23:00:00.000Z".into()),
                    session: q.session.unwrap_or_else(|| "an earlier run".into()),
                });
            }
        }

        let mut answers = BTreeMap::new();
        for (key, value) in raw.answers {
            step_refs.push(StepRef {
                id: key.get_ref().clone(),
                span: span_of(key.span()),
                what: "[answers]".to_string(),
            });
            answers.insert(key.into_inner(), value.0);
        }

        let expect_span = span_of(raw.expect.span());
        let e = raw.expect.into_inner();
        let reasons = match (e.reason, e.reasons) {
            (Some(_), Some(_)) => {
                self.error(
                    expect_span,
                    "`[expect]` has both `reason` and `reasons`",
                    Some("put every substring in `reasons = [...]`".to_string()),
                );
                Vec::new()
            }
            (Some(one), None) => vec![one],
            (None, Some(many)) => many,
            (None, None) => Vec::new(),
        };
        if e.outcome == Outcome::Completed && !reasons.is_empty() {
            self.error(
                expect_span,
                "a `completed` run has no halt text for `reason` to match",
                None,
            );
        }
        if let Some(step) = &e.step {
            step_refs.push(StepRef {
                id: step.get_ref().clone(),
                span: span_of(step.span()),
                what: "[expect] step".to_string(),
            });
        }

        Some(Scenario {
            path: self.path.to_path_buf(),
            name: header.name,
            runbook,
            params,
            array: ArraySpec {
                name: array_name.to_string(),
                level: raw.array.level,
                raid_disks,
                rebuild_time: raw
                    .array
                    .rebuild_time
                    .map_or(Duration::from_secs(60), |d| d.0),
                partition,
                mount,
                auto_rebuild: raw.array.auto_rebuild,
                drive_group: raw.array.drive_group,
            },
            drives,
            technician,
            events,
            commands,
            quarantined,
            answers,
            expect: Expected {
                outcome: e.outcome,
                step: e.step.map(|s| s.into_inner()),
                reasons,
            },
            source: self.source.to_string(),
            step_refs,
            param_spans,
            params_span,
        })
    }

    fn drive(
        &mut self,
        d: Spanned<RawDrive>,
        group: DriveGroup,
        default_family: Option<Family>,
    ) -> Option<DriveSpec> {
        let span = span_of(d.span());
        let mut d = d.into_inner();
        let dev = match &d.dev {
            Some(dev) => {
                let name = dev.get_ref();
                if let Some(bare) = name.strip_prefix("/dev/") {
                    self.error(
                        span_of(dev.span()),
                        format!("`dev` is a kernel name, not a path: `{name}`"),
                        Some(format!("write `{bare}`")),
                    );
                    return None;
                }
                Some(name.clone())
            }
            None if group == DriveGroup::Spare => None,
            None => {
                self.error(
                    span,
                    "this drive has no `dev`",
                    Some("members and others are present at the start, so they have a kernel name, e.g. `dev = \"sda\"`".into()),
                );
                return None;
            }
        };
        let family = match (&dev, default_family) {
            (Some(name), _) => match Family::of(name) {
                Some(f) => f,
                None => {
                    let span = d.dev.as_ref().map_or(span, |s| span_of(s.span()));
                    self.error(
                        span,
                        format!("`{name}` is not a disk name the simulator knows"),
                        Some("use `sdX`, `vdX` or `nvmeNn1` names".to_string()),
                    );
                    return None;
                }
            },
            (None, Some(f)) => f,
            (None, None) => Family::Sd,
        };
        if group != DriveGroup::Member {
            if let Some(state) = &d.state {
                self.error(
                    span_of(state.span()),
                    "`state` is only for members of the array",
                    None,
                );
            }
        }
        let mut counters: BTreeMap<String, u64> = default_counters(family)
            .iter()
            .map(|k| (k.to_string(), 0))
            .collect();
        for (key, value) in std::mem::take(&mut d.counters) {
            let name = key.get_ref();
            match name.split_once('.') {
                Some((ns, rest)) if !ns.is_empty() && !rest.is_empty() => {
                    counters.insert(name.clone(), value);
                }
                _ => self.error(
                    span_of(key.span()),
                    format!("counter `{name}` has no namespace"),
                    Some("counters are named like `smart.reallocated_sector_ct`, `nvme.media_errors`, `md.errors`".into()),
                ),
            }
        }
        if d.size.0 == 0 {
            self.error(span, "`size` is zero", None);
        }
        let controller = self.controller_drive(&d, group, span);
        // Identity strings as real hardware reports them may be padded
        // (`"LAB-B-0002          "`); the simulator reads them the way the
        // md backend reads sysfs, through the same function.
        let text = |t: Option<String>| t.as_deref().and_then(identity::trimmed);
        Some(DriveSpec {
            group,
            dev,
            serial: text(d.serial),
            wwn: text(d.wwn),
            model: text(d.model),
            firmware: text(d.firmware),
            slot: d.slot.map(|s| s.0),
            size_bytes: d.size.0,
            state: d.state.map_or(
                if group == DriveGroup::Spare {
                    MemberState::Spare
                } else {
                    MemberState::InSync
                },
                |s| s.into_inner(),
            ),
            smart_passed: d.smart_passed.unwrap_or(true),
            counters,
            blank: d.blank.unwrap_or(group == DriveGroup::Spare),
            family,
            controller,
        })
    }

    /// The MegaRAID keys of a drive: `intf`, `pd_state`, `dg`, `foreign`,
    /// `smart_alert`.
    fn controller_drive(&mut self, d: &RawDrive, group: DriveGroup, span: Span) -> ControllerDrive {
        const INTF: [&str; 3] = ["SATA", "SAS", "NVMe"];
        const PD_STATES: [&str; 6] = ["UGood", "UBad", "JBOD", "GHS", "DHS", "Onln"];
        let intf = d.intf.as_ref().and_then(|i| {
            if INTF.contains(&i.get_ref().as_str()) {
                Some(i.get_ref().clone())
            } else {
                self.error(
                    span_of(i.span()),
                    format!(
                        "`intf` is `{}`; a drive's interface is one of {}",
                        i.get_ref(),
                        backticked(&INTF)
                    ),
                    did_you_mean(i.get_ref(), INTF).map(|n| format!("did you mean `{n}`?")),
                );
                None
            }
        });
        let pd_state = d.pd_state.as_ref().and_then(|p| {
            let state = p.get_ref();
            if group == DriveGroup::Member {
                self.error(
                    span_of(p.span()),
                    "`pd_state` is for drives outside the array's drive group; a member's state is `state`",
                    None,
                );
                return None;
            }
            if !PD_STATES.contains(&state.as_str()) {
                self.error(
                    span_of(p.span()),
                    format!("`pd_state` is `{state}`; it is one of {}", backticked(&PD_STATES)),
                    did_you_mean(state, PD_STATES).map(|n| format!("did you mean `{n}`?")),
                );
                return None;
            }
            if (state == "Onln") != d.dg.is_some() {
                self.error(
                    span_of(p.span()),
                    "a drive of another drive group is `pd_state = \"Onln\"` with its `dg`, and only it",
                    None,
                );
                return None;
            }
            Some(state.clone())
        });
        if d.dg.is_some() && d.pd_state.is_none() {
            self.error(
                span,
                "`dg` names another drive group: give the drive `pd_state = \"Onln\"` too",
                None,
            );
        }
        ControllerDrive {
            intf,
            pd_state,
            dg: d.dg,
            foreign: d.foreign,
            smart_alert: d.smart_alert,
        }
    }

    fn check_unique(&mut self, drives: &[DriveSpec], spans: &[Span]) {
        let mut devs = BTreeSet::new();
        let mut serials = BTreeSet::new();
        let mut wwns = BTreeSet::new();
        for (d, &span) in drives.iter().zip(spans) {
            if d.group != DriveGroup::Spare {
                if let Some(dev) = &d.dev {
                    if !devs.insert(dev.clone()) {
                        self.error(
                            span,
                            format!("two drives are named `{dev}` at the start"),
                            None,
                        );
                    }
                }
            }
            if let Some(serial) = &d.serial {
                if !serials.insert(serial.clone()) {
                    self.error(
                        span,
                        format!("two drives have serial `{serial}`"),
                        Some("serials are how drives are told apart; make them unique".into()),
                    );
                }
            }
            if let Some(wwn) = &d.wwn {
                if !wwns.insert(wwn.clone()) {
                    self.error(span, format!("two drives have WWN `{wwn}`"), None);
                }
            }
        }
    }

    fn event(
        &mut self,
        number: usize,
        span: Span,
        e: RawEvent,
        drives: &[DriveSpec],
        step_refs: &mut Vec<StepRef>,
    ) -> Option<Event> {
        let during_name = e.during.get_ref().clone();
        let label = format!("event {number} (during `{during_name}`)");
        let during = if during_name == "baseline" {
            if let Some(after) = &e.after {
                self.error(
                    span_of(after.span()),
                    format!("{label}: `after` has no meaning before the baseline"),
                    Some(
                        "baseline events shape the array before the run starts; remove `after`"
                            .into(),
                    ),
                );
            }
            During::Baseline
        } else if during_name.is_empty() {
            self.error(
                span_of(e.during.span()),
                format!("{label}: `during` is empty"),
                None,
            );
            return None;
        } else {
            step_refs.push(StepRef {
                id: during_name.clone(),
                span: span_of(e.during.span()),
                what: format!("event {number} `during`"),
            });
            During::Step(during_name)
        };
        let after = match (&during, e.after) {
            (During::Baseline, _) => Duration::ZERO,
            (_, Some(after)) => after.into_inner().0,
            (_, None) => Duration::from_secs(1),
        };

        let mut actions = Vec::new();
        let ok_before = self.diagnostics.len();
        for (key, value) in e.set {
            let text = key.get_ref();
            let parsed = text.split_once('.').filter(|(_, counter)| {
                counter
                    .split_once('.')
                    .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty())
            });
            let Some((drive, counter)) = parsed else {
                self.error(
                    span_of(key.span()),
                    format!("{label}: `{text}` does not name a drive and a counter"),
                    Some("write `<drive>.<counter>`, e.g. `\"sda.smart.current_pending_sector\" = 8`".into()),
                );
                continue;
            };
            if let Some(index) = self.drive_ref(&label, drive, span_of(key.span()), drives) {
                actions.push(Action::Set {
                    drive: index,
                    counter: counter.to_string(),
                    value,
                });
            }
        }
        for (key, flags) in e.flags {
            let Some(index) = self.drive_ref(&label, key.get_ref(), span_of(key.span()), drives)
            else {
                continue;
            };
            let mut names = Vec::new();
            for flag in flags {
                if EVENT_FLAGS.contains(&flag.get_ref().as_str()) {
                    names.push(flag.into_inner());
                } else {
                    let help = match did_you_mean(flag.get_ref(), EVENT_FLAGS) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => format!("flags are {}", backticked(&EVENT_FLAGS)),
                    };
                    self.error(
                        span_of(flag.span()),
                        format!("{label}: `{}` is not an md state flag", flag.get_ref()),
                        Some(help),
                    );
                }
            }
            actions.push(Action::Flags {
                drive: index,
                flags: names,
            });
        }
        if let Some(d) = e.smart_failed {
            if let Some(i) = self.drive_ref(&label, d.get_ref(), span_of(d.span()), drives) {
                actions.push(Action::SmartFailed(i));
            }
        }
        for probe in e.unreadable {
            let text = probe.get_ref();
            let span = span_of(probe.span());
            if text == "array" {
                actions.push(Action::Unreadable(Probe::Array));
                continue;
            }
            match text.rsplit_once('.') {
                Some((drive, "smart")) => {
                    if let Some(i) = self.drive_ref(&label, drive, span, drives) {
                        actions.push(Action::Unreadable(Probe::Smart(i)));
                    }
                }
                Some((drive, "counters")) => {
                    if let Some(i) = self.drive_ref(&label, drive, span, drives) {
                        actions.push(Action::Unreadable(Probe::Counters(i)));
                    }
                }
                _ => self.error(
                    span,
                    format!("{label}: `{text}` is not a probe"),
                    Some("probes are `array`, `<drive>.smart` and `<drive>.counters`".into()),
                ),
            }
        }
        let singles = [
            (e.fail, Action::Fail as fn(usize) -> Action),
            (e.pull, Action::Pull),
            (e.vanish, Action::Vanish),
            (e.insert, Action::Insert),
        ];
        for (value, make) in singles {
            if let Some(d) = value {
                if let Some(i) = self.drive_ref(&label, d.get_ref(), span_of(d.span()), drives) {
                    actions.push(make(i));
                }
            }
        }
        if let Some(z) = e.zero_canary {
            if z.get_ref() == "all" {
                actions.push(Action::ZeroCanary(None));
            } else if let Some(i) = self.drive_ref(&label, z.get_ref(), span_of(z.span()), drives) {
                actions.push(Action::ZeroCanary(Some(i)));
            }
        }
        if actions.is_empty() && self.diagnostics.len() == ok_before {
            self.error(
                span,
                format!("{label} does nothing"),
                Some("give it an action: `set`, `flags`, `smart_failed`, `unreadable`, `fail`, `pull`, `vanish`, `insert` or `zero_canary`".into()),
            );
        }
        Some(Event {
            during,
            after,
            actions,
        })
    }

    /// Resolve a drive named in an event: its kernel name at the start (not
    /// for spares, whose names are given on insertion) or its serial.
    fn drive_ref(
        &mut self,
        label: &str,
        name: &str,
        span: Span,
        drives: &[DriveSpec],
    ) -> Option<usize> {
        let by_dev = drives
            .iter()
            .position(|d| d.group != DriveGroup::Spare && d.dev.as_deref() == Some(name));
        let serial = identity::trimmed(name);
        let by_serial = drives
            .iter()
            .position(|d| d.serial.is_some() && d.serial == serial);
        if let Some(i) = by_dev.or(by_serial) {
            return Some(i);
        }
        let known: Vec<&str> = drives
            .iter()
            .filter_map(|d| {
                if d.group == DriveGroup::Spare {
                    d.serial.as_deref()
                } else {
                    d.dev.as_deref()
                }
            })
            .collect();
        let help = match did_you_mean(name, known.iter().copied()) {
            Some(near) => format!("did you mean `{near}`?"),
            None => format!(
                "name a drive by its kernel name at the start or by its serial: {}",
                backticked(&known)
            ),
        };
        self.error(
            span,
            format!("{label}: no drive `{name}` in this scenario"),
            Some(help),
        );
        None
    }
}

fn resolve_runbook(scenario: &Path, runbook: &str) -> PathBuf {
    let dir = scenario.parent().unwrap_or(Path::new(""));
    let joined = dir.join(runbook);
    let absolute = std::path::absolute(&joined).unwrap_or(joined);
    normalize(&absolute)
}

/// Drop `.` and fold `..` without touching the file system (the runbook may
/// not exist when a scenario is only parsed).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}
