//! The engine's side of the quarantine registry (src/quarantine.rs): record
//! the target the moment it is seen leaving, and refuse every write to a
//! quarantined drive.
//!
//! Three paths write to a drive and all three ask here first: a new drive
//! before it is accepted (`accept.rs`), a `drive` param such as a restore
//! target at preflight, and every command step, whose arguments are
//! resolved right before it runs: by the backend to the whole disks they
//! reach (`stat`, sysfs: `backend/disk/devpath.rs`), or by name in a dry run,
//! then to the drives of a live look. Drives are matched by serial and WWN,
//! never by `/dev` name or spelling: after a hot-plug a quarantined drive
//! can come up under a name a healthy one had, and `//dev/sdb`, a by-path
//! link or a partition are the same disk as `/dev/sdb`.
//!
//! The target of a runbook that quarantines it is entered the moment a look
//! sees it leaving (pulled, or newly faulty or removed), before the guard
//! judges that look, and before a command fails or removes it: a halt in
//! the same moment must not let it escape (issue 10, the incident's second
//! half). The registry is written before the journal.

use anyhow::Result;

use crate::backend::disk::devpath;
use crate::backend::{ArgDevice, Depth};
use crate::engine::{Stop, Walk};
use crate::health::guard::{Observed, Subject, Violation};
use crate::health::model::{Drive, DriveKey, Identity, Snapshot};
use crate::journal::{Event, rfc3339};
use crate::operator::NoteLevel;
use crate::quarantine::{self, Entry, LastHealth, Registry};
use crate::runbook::model::{ParamKind, Role, Step, StepKind};
use crate::sanitize::sanitize;

use crate::backend::disk::devpath::NOT_DRIVES;
use crate::backend::registry;

/// What an argument of a command turned out to name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Named<'s> {
    /// A drive of the live look (the whole disk, one of its partitions, or
    /// a disk under a device-mapper or md device).
    Drive(&'s Drive),
    /// An md array, or something that is not a drive (`/dev/zero`).
    NotADrive,
    /// No drive of the live look has this name.
    Unknown,
    /// It names, or looks like it names, a device that cannot be resolved:
    /// refused whatever the command (fail closed).
    Unresolved(String),
}

/// The arguments of a command that may name a file: every argument after
/// the program; for `key=value` (`of=/dev/sdb`, `--target=/mnt`), the value.
fn candidates(argv: &[String]) -> Vec<&str> {
    argv.iter()
        .skip(1)
        .map(|arg| match arg.split_once('=') {
            Some((key, value)) if !key.contains('/') => value,
            _ => arg.as_str(),
        })
        .collect()
}

/// Every argument of `argv` that names a device, and what it names.
/// `resolve` is the backend's look at the filesystem (`stat`, sysfs);
/// where it has none (`None`, the simulator) a path is matched by name
/// against the live look, after folding `//`, `.` and `..` away. Pure.
pub(crate) fn devices_named<'s>(
    argv: &[String],
    now: &'s Snapshot,
    mut resolve: impl FnMut(&str) -> Option<ArgDevice>,
) -> Vec<(String, Named<'s>)> {
    let mut out = Vec::new();
    for arg in candidates(argv) {
        match resolve(arg) {
            None if arg.contains('/') => out.push((arg.to_string(), by_name(arg, now))),
            None | Some(ArgDevice::Nothing | ArgDevice::NotABlockDevice) => {}
            Some(ArgDevice::Unresolved(why)) => {
                out.push((arg.to_string(), Named::Unresolved(why)));
            }
            Some(ArgDevice::Block { what, disks }) => {
                if disks.is_empty() {
                    out.push((arg.to_string(), Named::Unknown));
                }
                for disk in disks {
                    let shown = if what.starts_with(&format!("{disk} ")) {
                        format!("{arg} (block device {what})")
                    } else {
                        format!("{arg} (block device {what}, on {disk})")
                    };
                    out.push((shown, by_disk(&disk, now)));
                }
            }
        }
    }
    out
}

/// A whole disk's kernel name, as sysfs gave it.
fn by_disk<'s>(name: &str, now: &'s Snapshot) -> Named<'s> {
    if let Some(d) = now.drives.iter().find(|d| d.id.dev == name) {
        return Named::Drive(d);
    }
    if registry::is_array_device(name) || name == now.array.name {
        Named::NotADrive
    } else {
        Named::Unknown
    }
}

/// A path matched by name (no filesystem to ask).
fn by_name<'s>(arg: &str, now: &'s Snapshot) -> Named<'s> {
    let path = std::path::Path::new(arg);
    let folded = devpath::fold(path);
    if !path.is_absolute() {
        return if devpath::looks_like_device(&folded) || arg.split('/').any(|c| c == "dev") {
            Named::Unresolved(format!(
                "`{arg}` is a relative path, which cannot be resolved here; give the device's absolute path"
            ))
        } else {
            Named::NotADrive
        };
    }
    let folded = folded.to_string_lossy();
    if folded.starts_with("/dev/") {
        resolve(&folded, now)
    } else {
        Named::NotADrive
    }
}

fn resolve<'s>(path: &str, now: &'s Snapshot) -> Named<'s> {
    if NOT_DRIVES.contains(&path) || path.starts_with("/dev/fd/") {
        return Named::NotADrive;
    }
    let Some(name) = path.strip_prefix("/dev/") else {
        return Named::Unknown;
    };
    if registry::is_array_device(name) || name == now.array.name {
        return Named::NotADrive;
    }
    if let Some(link) = name.strip_prefix("disk/by-id/") {
        return by_id(link, now);
    }
    // The whole disk, or a partition of it: `sdb1`, `nvme0n1p1`.
    let found = now.drives.iter().find(|d| {
        let dev = d.id.dev.as_str();
        !dev.is_empty()
            && (name == dev
                || name.strip_prefix(dev).is_some_and(|rest| {
                    let digits = rest.strip_prefix('p').unwrap_or(rest);
                    !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
                }))
    });
    found.map_or(Named::Unknown, Named::Drive)
}

/// `/dev/disk/by-id/` names: the drive's own link, a `-partN` of it, a
/// `wwn-` link, or any link ending in `_<serial>`.
fn by_id<'s>(link: &str, now: &'s Snapshot) -> Named<'s> {
    let base = match link.rsplit_once("-part") {
        Some((base, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => base,
        _ => link,
    };
    let found = now.drives.iter().find(|d| {
        d.id.by_id.as_deref() == Some(base)
            || base.strip_prefix("wwn-").is_some_and(|w| {
                d.id.wwn
                    .as_deref()
                    .is_some_and(|have| have.eq_ignore_ascii_case(w))
            })
            || d.id
                .serial
                .as_deref()
                .is_some_and(|s| !s.is_empty() && base.ends_with(&format!("_{s}")))
    });
    found.map_or(Named::Unknown, Named::Drive)
}

impl Walk<'_, '_> {
    /// The registry as it is now (another run may have added to it).
    pub(crate) fn registry(&self) -> Result<Registry> {
        Registry::load(self.run.state_dir)
    }

    /// Why `id` must not be written to: quarantined in this run, or in the
    /// registry. `Err` when the registry cannot be read (fail closed).
    pub(crate) fn quarantine_of(&self, id: &Identity) -> Result<Option<String>> {
        if let Some(q) = self.quarantined.iter().find(|q| q.key() == id.key()) {
            return Ok(Some(format!(
                "quarantined in this run (pulled as {})",
                q.describe()
            )));
        }
        Ok(self.registry()?.find(id).map(Entry::why))
    }

    /// Whether this run quarantines its target at all: a member target of
    /// a runbook with a `quarantine = "target"` step. Such a target is
    /// quarantined the moment it is seen leaving, whichever step that is.
    fn quarantines_target(&self) -> bool {
        self.target_kind() == ParamKind::Member
            && self
                .run
                .runbook
                .steps
                .iter()
                .any(|s| s.quarantine == Some(Role::Target))
    }

    /// Every look goes through here before the guard judges it. A target
    /// seen leaving (pulled, or faulty or removed when it was not at the
    /// baseline) is quarantined at once: a survivor that degrades in the
    /// same moment halts the run, and the drive must not escape through
    /// that halt (issue 10, the incident's second half).
    pub(crate) fn seen_leaving(&mut self, step: &str, now: &Snapshot) -> Result<(), Stop> {
        if !self.quarantines_target() {
            return Ok(());
        }
        let key = self.target.key();
        let seen = now.drive(&key);
        if let Some(d) = seen {
            // A fast look reads no SMART: keep the last SMART seen.
            let mut d = d.clone();
            if d.smart.is_none() {
                d.smart = self.target_seen.take().and_then(|t| t.smart);
            }
            self.target_seen = Some(d);
        }
        if self.quarantined.iter().any(|q| q.key() == key) {
            return Ok(());
        }
        let was = Observed::of(self.baseline.drive(&key));
        let is = Observed::of(seen);
        let how = match is {
            Observed::Absent => format!("pulled during step `{step}`"),
            Observed::Faulty | Observed::Removed if is != was => {
                format!("seen {} during step `{step}`", is.name())
            }
            _ => return Ok(()),
        };
        self.quarantine_target(step, &how)
    }

    /// Before a command step that fails or removes the target from the
    /// array (`mdadm --fail`/`--remove`): quarantine it first, so that no
    /// outcome of the command, not even a crash, leaves it out of the array
    /// and out of the registry.
    pub(crate) fn before_removal(
        &mut self,
        step: &Step,
        argv: &[String],
        named: &[DriveKey],
    ) -> Result<(), Stop> {
        const REMOVING: [&str; 5] = ["--fail", "-f", "--set-faulty", "--remove", "-r"];
        if !self.quarantines_target()
            || !named.contains(&self.target.key())
            || !argv.iter().skip(1).any(|a| REMOVING.contains(&a.as_str()))
        {
            return Ok(());
        }
        let how = format!("failed or removed from the array by step `{}`", step.id);
        self.quarantine_target(&step.id, &how)
    }

    /// Quarantine the target: in the registry first (it must hold whatever
    /// happens to this process next), then in the journal and in this run's
    /// list. Once per run; later calls do nothing.
    pub(crate) fn quarantine_target(&mut self, step: &str, how: &str) -> Result<(), Stop> {
        let drive = self.target.id.clone();
        if self.quarantined.iter().any(|q| q.key() == drive.key()) {
            return Ok(());
        }
        let mut entry = Entry::for_drive(
            &drive,
            rfc3339(self.run.clock.wall_ms()),
            self.run.session.clone(),
            format!(
                "{how} of runbook `{}` on array `{}`",
                self.run.runbook.name, self.array
            ),
        );
        entry.step = Some(step.to_string());
        entry.last_health = Some(LastHealth::of(
            self.target_seen.as_ref().unwrap_or(&self.target),
        ));
        if entry.serial.is_some() || entry.wwn.is_some() {
            quarantine::add(self.run.state_dir, entry).map_err(|e| {
                Stop::Error(e.context(format!(
                    "cannot record the quarantine of {} in the registry",
                    drive.describe()
                )))
            })?;
        }
        self.quarantined.push(drive.clone());
        self.record(Event::Quarantined {
            step: step.to_string(),
            drive: drive.clone(),
        })?;
        self.run.operator.note(
            NoteLevel::Info,
            &sanitize(
                &format!(
                    "quarantined {}: it must not be reused, not even as a restore target",
                    drive.describe()
                ),
                false,
            ),
        );
        Ok(())
    }

    /// Before a command step runs: look at the system now and refuse when
    /// its argv names a quarantined drive (by whatever name it has now), or,
    /// for a destructive command, a device that is no drive of this system.
    /// The run's own member target is exempt: failing and removing it from
    /// the array is what a replacement does.
    /// Returns the drives the argv names, for [`Walk::before_removal`].
    pub(crate) fn argv_refusal(
        &mut self,
        step: &Step,
        argv: &[String],
    ) -> Result<Vec<DriveKey>, Stop> {
        let now = self.look(&step.id, Depth::Fast)?;
        let destructive = matches!(
            step.kind,
            StepKind::Command {
                destructive: true,
                ..
            }
        );
        let member_target = self.target_kind() == ParamKind::Member;
        let mut violations = Vec::new();
        let mut keys = Vec::new();
        let backend = &mut *self.run.backend;
        let named = devices_named(argv, &now, |arg| backend.resolve_arg(arg));
        for (path, named) in named {
            match named {
                Named::NotADrive => {}
                Named::Unresolved(why) => violations.push(Violation {
                    subject: Subject::OtherDrive,
                    who: path.clone(),
                    what: "known drive".into(),
                    before: "must resolve to a drive or to no device".into(),
                    after: format!(
                        "{why}; swapguard cannot tell whether it is a quarantined drive"
                    ),
                }),
                Named::Unknown if destructive => violations.push(Violation {
                    subject: Subject::OtherDrive,
                    who: path.clone(),
                    what: "known drive".into(),
                    before: "must be a drive of this system".into(),
                    after: format!(
                        "`{path}` is no drive swapguard can see, so it cannot tell whether it is quarantined; name the drive itself"
                    ),
                }),
                Named::Unknown => {}
                Named::Drive(drive) => {
                    keys.push(drive.key());
                    if member_target && drive.key() == self.target.key() {
                        continue;
                    }
                    let why = self.quarantine_of(&drive.id).map_err(|e| {
                        Stop::Halt {
                            step: step.id.clone(),
                            headline: format!(
                                "cannot read the quarantine registry, so step `{}` does not run: {e:#}",
                                step.id
                            ),
                            violations: vec![],
                        }
                    })?;
                    if let Some(why) = why {
                        violations.push(Violation {
                            subject: Subject::OtherDrive,
                            who: drive.id.describe(),
                            what: "quarantine".into(),
                            before: "must not be quarantined".into(),
                            after: format!("`{path}` is this drive, {why}"),
                        });
                    }
                }
            }
        }
        if violations.is_empty() {
            return Ok(keys);
        }
        let _ = self.record(Event::Snapshot {
            label: format!("refused {}", step.id),
            snapshot: now,
        });
        Err(Stop::Halt {
            step: step.id.clone(),
            headline: format!(
                "step `{}` was not run: it would write to {}",
                step.id,
                if violations.iter().any(|v| v.what == "quarantine") {
                    "a quarantined drive"
                } else {
                    "a device swapguard cannot identify"
                }
            ),
            violations,
        })
    }

    /// The kind of the `target` param (`member` unless the runbook says `drive`).
    pub(crate) fn target_kind(&self) -> ParamKind {
        self.run
            .runbook
            .params
            .iter()
            .find(|p| p.name == "target")
            .map_or(ParamKind::Member, |p| p.kind)
    }

    /// Preflight for a `drive` target (a restore target): never a member of
    /// the array, never quarantined, known by serial or WWN, SMART passing.
    pub(crate) fn drive_target_refusals(&self) -> Vec<String> {
        let mut reasons = Vec::new();
        if self.target_kind() != ParamKind::Drive {
            return reasons;
        }
        let who = self.target.id.describe();
        if let Some(m) = &self.target.member {
            reasons.push(format!(
                "the target {who} is a member of `{}` ({}): a drive the run writes to must be outside the array",
                self.array, m.state
            ));
        }
        if self.target.key().is_weak() {
            reasons.push(format!(
                "the target {who} has no readable serial or WWN: it cannot be told apart from a quarantined drive"
            ));
        }
        match self.quarantine_of(&self.target.id) {
            Ok(Some(why)) => reasons.push(format!(
                "the target {who} must not be written to: it is {why}"
            )),
            Ok(None) => {}
            Err(e) => reasons.push(format!("cannot read the quarantine registry: {e:#}")),
        }
        reasons
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::model::ArrayHealth;

    fn drive(dev: &str, serial: &str, by_id: Option<&str>) -> Drive {
        Drive {
            id: Identity {
                dev: dev.into(),
                serial: Some(serial.into()),
                wwn: Some(format!("0x5000{serial}")),
                by_id: by_id.map(str::to_string),
                ..Identity::default()
            },
            member: None,
            counters: Default::default(),
            smart: None,
            blank: None,
            faults: Vec::new(),
        }
    }

    fn look() -> Snapshot {
        Snapshot {
            at_ms: 0,
            array: ArrayHealth {
                name: "md0".into(),
                ..ArrayHealth::default()
            },
            drives: vec![
                drive("sda", "A1", Some("ata-M_A1")),
                drive("sdb", "B2", None),
                drive("nvme0n1", "N3", None),
            ],
            problems: vec![],
        }
    }

    fn named(
        argv: &[&str],
        now: &Snapshot,
        resolve: impl FnMut(&str) -> Option<ArgDevice>,
    ) -> Vec<(String, String)> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        devices_named(&argv, now, resolve)
            .into_iter()
            .map(|(path, n)| {
                let what = match n {
                    Named::Drive(d) => d.id.dev.clone(),
                    Named::NotADrive => "not a drive".into(),
                    Named::Unknown => "unknown".into(),
                    Named::Unresolved(_) => "unresolved".into(),
                };
                (path, what)
            })
            .collect()
    }

    fn pairs(want: &[(&str, &str)]) -> Vec<(String, String)> {
        want.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn resolves_device_arguments_by_the_live_look() {
        let now = look();
        let got = named(
            &[
                "dd",
                "if=/dev/zero",
                "of=/dev/sdb1",
                "/dev/md0",
                "/dev/nvme0n1p2",
                "/dev/disk/by-id/ata-M_A1-part1",
                "/dev/disk/by-id/wwn-0x5000B2",
                "/dev/disk/by-id/nvme-Other_N3",
                "/dev/sdc",
                "/dev/mapper/vg-lv",
                "/dev/sdbx",
                "sdb",
                // Other spellings of the same device (issue 18 item 7).
                "//dev/nvme0n1",
                "/dev/./sdb",
                "/dev/../dev/sdb1",
                "/../dev/sda",
                "dev/sdb",
                "../dev/sdb",
                "./sdb",
                "/srv/backup",
                "mnt/restore",
            ],
            &now,
            |_| None,
        );
        let want = pairs(&[
            ("/dev/zero", "not a drive"),
            ("/dev/sdb1", "sdb"),
            ("/dev/md0", "not a drive"),
            ("/dev/nvme0n1p2", "nvme0n1"),
            ("/dev/disk/by-id/ata-M_A1-part1", "sda"),
            ("/dev/disk/by-id/wwn-0x5000B2", "sdb"),
            ("/dev/disk/by-id/nvme-Other_N3", "nvme0n1"),
            ("/dev/sdc", "unknown"),
            ("/dev/mapper/vg-lv", "unknown"),
            ("/dev/sdbx", "unknown"),
            ("//dev/nvme0n1", "nvme0n1"),
            ("/dev/./sdb", "sdb"),
            ("/dev/../dev/sdb1", "sdb"),
            ("/../dev/sda", "sda"),
            ("dev/sdb", "unresolved"),
            ("../dev/sdb", "unresolved"),
            ("./sdb", "unresolved"),
            ("/srv/backup", "not a drive"),
            ("mnt/restore", "not a drive"),
        ]);
        assert_eq!(got, want);
    }

    /// With a filesystem to ask (the md backend), what `stat` and sysfs say
    /// decides, whatever the spelling.
    #[test]
    fn resolves_device_arguments_by_what_the_backend_resolved() {
        let now = look();
        let got = named(
            &["wipefs", "--all", "x", "y", "z", "w", "v"],
            &now,
            |arg| match arg {
                "x" => Some(ArgDevice::Block {
                    what: "nvme0n1 259:0".into(),
                    disks: vec!["nvme0n1".into()],
                }),
                "y" => Some(ArgDevice::Block {
                    what: "dm-0 253:0".into(),
                    disks: vec!["sda".into(), "loop3".into()],
                }),
                "z" => Some(ArgDevice::Block {
                    what: "md0 9:0".into(),
                    disks: vec!["md0".into()],
                }),
                "w" => Some(ArgDevice::Unresolved("gone".into())),
                "v" => Some(ArgDevice::NotABlockDevice),
                _ => Some(ArgDevice::Nothing),
            },
        );
        let want = pairs(&[
            ("x (block device nvme0n1 259:0)", "nvme0n1"),
            ("y (block device dm-0 253:0, on sda)", "sda"),
            ("y (block device dm-0 253:0, on loop3)", "unknown"),
            ("z (block device md0 9:0)", "not a drive"),
            ("w", "unresolved"),
        ]);
        assert_eq!(got, want);
    }
}
