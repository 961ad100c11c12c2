//! `mdadm` manage mode, interpreted against the simulated array.
//!
//! `mdadm /dev/md0 --fail /dev/sdb --remove /dev/sdb` is a sequence of
//! operations applied in order, stopping at the first that fails, with
//! mdadm's own wording on stderr (mdadm prints even its successes there).
//! The refusals are the point: `--remove` of a working member is "Device or
//! resource busy", a device node that is gone "Cannot find", a drive that
//! carries this array's old superblock is not silently turned into a spare.
//! Other mdadm modes (`--detail`, `--create`, ...) are not simulated: the
//! caller gets an error, never a made-up success.

use anyhow::{Result, bail};

use crate::backend::CommandOutput;
use crate::backend::sim::md::{Failure, MdArray};
use crate::backend::sim::pool::Pool;
use crate::health::model::MemberState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Add,
    ReAdd,
    Remove,
    Fail,
    Replace,
    With,
}

impl Op {
    fn from_flag(flag: &str) -> Option<Op> {
        Some(match flag {
            "--add" | "-a" => Op::Add,
            "--re-add" => Op::ReAdd,
            "--remove" | "-r" => Op::Remove,
            "--fail" | "-f" | "--set-faulty" => Op::Fail,
            "--replace" => Op::Replace,
            "--with" => Op::With,
            _ => return None,
        })
    }
}

/// Flags that change nothing in the simulation.
const QUIET_FLAGS: [&str; 6] = ["--manage", "--verbose", "-v", "--quiet", "-q", "--force"];

/// A device argument, resolved.
enum Target {
    /// A present drive, by index.
    Drive(usize),
    /// `failed`: every faulty member.
    Failed,
    /// `detached`: every member whose device node is gone.
    Detached,
}

struct Run<'a> {
    md: &'a mut MdArray,
    pool: &'a mut Pool,
    /// The array's device node, `/dev/md0`.
    dev: String,
    stderr: String,
    log: Vec<String>,
    now_ms: u64,
    /// The member the last `--replace` marked, for a following `--with`.
    replacing: Option<usize>,
}

/// Run one mdadm command line. `Err` only for what the simulator does not
/// model; every refusal real mdadm would give is an exit status.
pub(crate) fn run(
    md: &mut MdArray,
    pool: &mut Pool,
    argv: &[String],
    now_ms: u64,
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let mut args = argv
        .iter()
        .skip(1)
        .filter(|a| !QUIET_FLAGS.contains(&a.as_str()))
        .peekable();
    let Some(named) = args.next() else {
        bail!("the simulator cannot run `mdadm` without arguments");
    };
    if named.starts_with('-') {
        bail!(
            "the simulator models mdadm manage mode only (`mdadm /dev/md0 --fail ...`), not `{}`; add a [[command]] with canned output",
            argv.join(" ")
        );
    }
    let mut out = CommandOutput {
        argv: argv.to_vec(),
        code: Some(0),
        ..CommandOutput::default()
    };
    let array_dev = format!("/dev/{}", md.array.name);
    if named != &array_dev
        && named != &format!("/dev/md/{}", md.array.name.trim_start_matches("md"))
    {
        out.code = Some(1);
        out.stderr = format!("mdadm: error opening {named}: No such file or directory\n");
        return Ok(out);
    }
    let mut run = Run {
        md,
        pool,
        dev: array_dev,
        stderr: String::new(),
        log: Vec::new(),
        now_ms,
        replacing: None,
    };
    let mut op = None;
    let mut code = 0;
    for arg in args {
        if arg.starts_with('-') {
            match Op::from_flag(arg) {
                Some(o) => op = Some(o),
                None => {
                    run.stderr
                        .push_str(&format!("mdadm: unrecognized option '{arg}'\n"));
                    code = 2;
                    break;
                }
            }
            continue;
        }
        let Some(o) = op else {
            run.stderr.push_str(&format!(
                "mdadm: {arg}: no operation given (use --add, --fail, --remove, ...)\n"
            ));
            code = 1;
            break;
        };
        if !run.apply(o, arg) {
            code = 1;
            break;
        }
    }
    let mut after = Vec::new();
    run.md.start_recovery(run.pool, now_ms, &mut after);
    log.append(&mut run.log);
    log.append(&mut after);
    out.code = Some(code);
    out.stderr = run.stderr;
    Ok(out)
}

impl Run<'_> {
    fn say(&mut self, line: String) {
        self.stderr.push_str(&line);
        self.stderr.push('\n');
    }

    /// Resolve a device argument as mdadm would: a path to a device node
    /// that exists now, or a keyword.
    fn target(&mut self, op: Op, arg: &str) -> Option<Target> {
        if matches!(op, Op::Fail | Op::Remove) {
            match arg {
                "failed" => return Some(Target::Failed),
                "detached" => return Some(Target::Detached),
                _ => {}
            }
        }
        let found = if let Some(id) = arg.strip_prefix("/dev/disk/by-id/") {
            self.pool
                .drives
                .iter()
                .position(|d| d.present && d.identity().by_id.as_deref() == Some(id))
        } else if let Some(dev) = arg.strip_prefix("/dev/") {
            self.pool.present(dev)
        } else {
            None
        };
        match found {
            Some(drive) => Some(Target::Drive(drive)),
            None => {
                self.say(format!(
                    "mdadm: Cannot find {arg}: No such file or directory"
                ));
                None
            }
        }
    }

    /// Apply one operation to one device; false stops the command.
    fn apply(&mut self, op: Op, arg: &str) -> bool {
        let Some(target) = self.target(op, arg) else {
            return false;
        };
        match (op, target) {
            (Op::Fail, Target::Drive(d)) => self.fail(arg, d),
            (Op::Remove, Target::Drive(d)) => self.remove(arg, d),
            (Op::Add, Target::Drive(d)) => self.add(arg, d, false),
            (Op::ReAdd, Target::Drive(d)) => self.add(arg, d, true),
            (Op::Replace, Target::Drive(d)) => self.replace(arg, d),
            (Op::With, Target::Drive(d)) => self.with(arg, d),
            (Op::Fail, Target::Detached) => {
                self.for_each(|m, hw| hw.members[m].detached, |run, m| run.fail_member(m))
            }
            (Op::Fail, Target::Failed) => true,
            (Op::Remove, Target::Detached) => self.for_each(
                |m, hw| hw.members[m].detached,
                |run, m| run.remove_member(m),
            ),
            (Op::Remove, Target::Failed) => self.for_each(
                |m, hw| hw.members[m].state == MemberState::Faulty,
                |run, m| run.remove_member(m),
            ),
            (_, Target::Failed | Target::Detached) => {
                self.say(format!(
                    "mdadm: Cannot find {arg}: No such file or directory"
                ));
                false
            }
        }
    }

    fn for_each(
        &mut self,
        select: impl Fn(usize, &MdArray) -> bool,
        mut act: impl FnMut(&mut Self, usize) -> bool,
    ) -> bool {
        let chosen: Vec<usize> = (0..self.md.members.len())
            .filter(|&m| !self.md.members[m].removed && select(m, self.md))
            .collect();
        chosen.into_iter().all(|m| act(self, m))
    }

    fn fail(&mut self, arg: &str, drive: usize) -> bool {
        match self.md.attached_member(drive) {
            Some(m) => self.fail_member(m),
            None => {
                self.say(format!(
                    "mdadm: set device faulty failed for {arg}:  No such device"
                ));
                false
            }
        }
    }

    fn fail_member(&mut self, member: usize) -> bool {
        let name = self.md.member_name(self.pool, member);
        match self.md.md_error(self.pool, member, &mut self.log) {
            Failure::Failed | Failure::AlreadyFaulty => {
                self.say(format!("mdadm: set {name} faulty in {}", self.dev));
                true
            }
            Failure::Refused => {
                self.say(format!(
                    "mdadm: set device faulty failed for {name}:  Device or resource busy"
                ));
                false
            }
        }
    }

    fn remove(&mut self, arg: &str, drive: usize) -> bool {
        match self.md.attached_member(drive) {
            Some(m) => self.remove_member(m),
            None => {
                self.say(format!(
                    "mdadm: hot remove failed for {arg}: No such device or address"
                ));
                false
            }
        }
    }

    fn remove_member(&mut self, member: usize) -> bool {
        let name = self.md.member_name(self.pool, member);
        match self.md.members[member].state {
            MemberState::Faulty | MemberState::Spare => {
                let who = self.md.describe_member(self.pool, member);
                self.md.remove(member);
                self.log
                    .push(format!("md dropped {who} from {}", self.md.array.name));
                self.say(format!("mdadm: hot removed {name} from {}", self.dev));
                true
            }
            MemberState::InSync | MemberState::Rebuilding => {
                self.say(format!(
                    "mdadm: hot remove failed for {name}: Device or resource busy"
                ));
                false
            }
        }
    }

    fn add(&mut self, arg: &str, drive: usize, re_add: bool) -> bool {
        if self.md.attached_member(drive).is_some() {
            self.say(format!("mdadm: Cannot open {arg}: Device or resource busy"));
            return false;
        }
        let needed = self.md.array.component_sectors.saturating_mul(512);
        let d = &self.pool.drives[drive];
        let former = d.superblock.as_deref() == Some(self.md.array.name.as_str());
        if re_add && !former {
            self.say(format!(
                "mdadm: --re-add for {arg} to {} is not possible",
                self.dev
            ));
            return false;
        }
        if d.size_bytes < needed {
            self.say(format!("mdadm: {arg} not large enough to join array"));
            return false;
        }
        if former && !re_add {
            self.say(format!(
                "mdadm: {arg} reports being an active member for {}, but a --re-add fails.",
                self.dev
            ));
            self.say(format!(
                "mdadm: not performing --add as that would convert {arg} in to a spare."
            ));
            self.say(format!(
                "mdadm: To make this a spare, use \"mdadm --zero-superblock {arg}\" first."
            ));
            return false;
        }
        let member = self.md.add(self.pool, drive);
        let who = self.md.describe_member(self.pool, member);
        self.log
            .push(format!("md took {who} into {}", self.md.array.name));
        self.say(format!(
            "mdadm: {} {arg}",
            if re_add { "re-added" } else { "added" }
        ));
        true
    }

    fn replace(&mut self, arg: &str, drive: usize) -> bool {
        let Some(m) = self.md.attached_member(drive) else {
            self.say(format!("mdadm: {arg} is not a member of {}", self.dev));
            return false;
        };
        let member = &self.md.members[m];
        let (Some(role), MemberState::InSync) = (member.role, member.state) else {
            self.say(format!(
                "mdadm: {arg} is not an active member of {}, cannot replace it",
                self.dev
            ));
            return false;
        };
        if !member.flags.iter().any(|f| f == "want_replacement") {
            self.md.members[m]
                .flags
                .push("want_replacement".to_string());
        }
        self.replacing = Some(m);
        self.say(format!(
            "mdadm: Marked {arg} (device {role} in {}) for replacement",
            self.dev
        ));
        true
    }

    fn with(&mut self, arg: &str, drive: usize) -> bool {
        let Some(old) = self.replacing else {
            self.say("mdadm: --with must follow --replace".to_string());
            return false;
        };
        let spare = self
            .md
            .attached_member(drive)
            .filter(|&m| self.md.members[m].state == MemberState::Spare);
        let Some(new) = spare else {
            self.say(format!(
                "mdadm: {arg} is not a spare in {}, cannot use it as a replacement",
                self.dev
            ));
            return false;
        };
        if self.md.recovery.is_some() {
            self.say(format!(
                "mdadm: cannot start a replacement on {arg}: a recovery is running in {}",
                self.dev
            ));
            return false;
        }
        let role = self.md.members[old].role.unwrap_or(0);
        self.md
            .start_replace(self.pool, old, new, self.now_ms, &mut self.log);
        self.say(format!(
            "mdadm: Marked {arg} in {} as replacement for device {role}",
            self.dev
        ));
        true
    }
}
