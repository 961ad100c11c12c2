//! `btrfs` (btrfs-progs), interpreted against the simulated file system.
//!
//! Modelled: `replace start [-r] [-f] [-B] SRC NEW MNT` (SRC a devid or a
//! device path; the copy runs in the background, or with `-B` the command
//! runs until it ends), `replace status [-1] MNT` (without `-1` it runs
//! until the replace ends), `balance start [--bg] [-dconvert=P[,soft]]
//! [-mconvert=P[,soft]] MNT` (in the foreground it runs until the balance
//! ends), `balance status MNT`, `filesystem resize
//! [DEVID:]max MNT`, `filesystem df MNT` and `device stats [-c] MNT`.
//! Refusals are exit statuses with a message in btrfs-progs' style on
//! stderr; anything else (another subcommand, a foreground balance, a
//! conversion to another profile) is an error that asks for a canned
//! `[[command]]`, never a made-up success. Group and command names may be
//! abbreviated as btrfs-progs allows (`fi df`).

use std::time::Duration;

use anyhow::{Result, bail};

use crate::backend::CommandOutput;
use crate::backend::sim::btrfs::{BtrfsFs, CHUNK_BYTES, Ended};
use crate::backend::sim::pool::Pool;
use crate::clock::SIM_EPOCH_MS;

/// Run one btrfs command line. `Err` only for what the simulator does not
/// model.
pub(crate) fn run(
    fs: &mut BtrfsFs,
    pool: &mut Pool,
    argv: &[String],
    now_ms: u64,
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let unmodelled = || {
        anyhow::anyhow!(
            "the simulator does not model `{}`; add a [[command]] with its canned output",
            argv.join(" ")
        )
    };
    let (group, command, args) = classify(argv).ok_or_else(unmodelled)?;
    let args = args.as_slice();
    let mut out = Out::new(argv);
    let mut cmd = Cmd {
        fs,
        pool,
        now_ms,
        log,
    };
    match (group, command) {
        (Some("replace"), Some("start")) => cmd.replace_start(args, &mut out)?,
        (Some("replace"), Some("status")) => cmd.replace_status(args, &mut out)?,
        (Some("balance"), Some("start")) => cmd.balance_start(args, &mut out)?,
        (Some("balance"), Some("status")) => cmd.balance_status(args, &mut out)?,
        (Some("filesystem"), Some("resize")) => cmd.resize(args, &mut out)?,
        (Some("filesystem"), Some("df")) => cmd.df(args, &mut out)?,
        (Some("device"), Some("stats")) => cmd.stats(args, &mut out)?,
        _ => return Err(unmodelled()),
    }
    Ok(out.0)
}

/// `btrfs GROUP COMMAND ARGS...`, names expanded from their prefixes.
fn classify(argv: &[String]) -> Option<(Option<&'static str>, Option<&'static str>, Vec<&str>)> {
    let words: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    let (group, rest) = words.split_first()?;
    let (command, args) = rest.split_first()?;
    let group = expand(group, &["filesystem", "device", "replace", "balance"]);
    let command = match group {
        Some("replace") => expand(command, &["start", "status", "cancel"]),
        Some("balance") => expand(command, &["start", "status"]),
        Some("filesystem") => expand(command, &["resize", "df", "show", "usage"]),
        Some("device") => expand(command, &["stats", "add", "remove", "delete"]),
        _ => None,
    };
    Some((group, command, args.to_vec()))
}

/// How long a btrfs command just run keeps running: `replace start -B` and
/// `replace status` without `-1` until the replace ends, a `balance start` without `--bg`
/// until the balance ends.
pub(crate) fn runs_for(fs: &BtrfsFs, argv: &[String], now_ms: u64) -> Duration {
    if argv
        .first()
        .is_none_or(|p| p.rsplit('/').next() != Some("btrfs"))
    {
        return Duration::ZERO;
    }
    let Some((group, command, args)) = classify(argv) else {
        return Duration::ZERO;
    };
    let until = match (group, command) {
        (Some("replace"), Some("start")) if args.contains(&"-B") => {
            fs.replace.map(|r| r.started_ms.saturating_add(fs.copy_ms))
        }
        (Some("replace"), Some("status")) if !args.contains(&"-1") => {
            fs.replace.map(|r| r.started_ms.saturating_add(fs.copy_ms))
        }
        (Some("balance"), Some("start"))
            if !args.iter().any(|a| *a == "--bg" || *a == "--background") =>
        {
            fs.balance_ends_at()
        }
        _ => None,
    };
    Duration::from_millis(until.map_or(0, |at| at.saturating_sub(now_ms)))
}

/// An unambiguous prefix of one of `names`, as btrfs-progs accepts.
fn expand<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    let matching: Vec<&&str> = names.iter().filter(|n| n.starts_with(word)).collect();
    match matching.as_slice() {
        [one] if !word.is_empty() => Some(one),
        _ => names.iter().find(|n| **n == word).copied(),
    }
}

struct Out(CommandOutput);

impl Out {
    fn new(argv: &[String]) -> Out {
        Out(CommandOutput {
            argv: argv.to_vec(),
            code: Some(0),
            ..CommandOutput::default()
        })
    }

    fn say(&mut self, line: impl AsRef<str>) {
        self.0.stdout.push_str(line.as_ref());
        self.0.stdout.push('\n');
    }

    fn fail(&mut self, code: i32, line: impl AsRef<str>) {
        self.0.stderr.push_str(line.as_ref());
        self.0.stderr.push('\n');
        self.0.code = Some(code);
    }
}

struct Cmd<'a> {
    fs: &'a mut BtrfsFs,
    pool: &'a mut Pool,
    now_ms: u64,
    log: &'a mut Vec<String>,
}

impl Cmd<'_> {
    /// Split options (`-r`) from operands; an option not in `known` is not
    /// modelled.
    fn split<'w>(&self, args: &[&'w str], known: &[&str]) -> Result<(Vec<&'w str>, Vec<&'w str>)> {
        let mut options = Vec::new();
        let mut operands = Vec::new();
        for a in args {
            if a.starts_with('-') && a.len() > 1 {
                // Filters are glued to their option: `-dconvert=raid1,soft`.
                let glued = |k: &str| matches!(k, "-d" | "-m") && a.starts_with(k);
                if !known
                    .iter()
                    .any(|k| a == k || a.starts_with(&format!("{k}=")) || glued(k))
                {
                    bail!(
                        "the simulated `btrfs` does not model the option `{a}`; add a [[command]] with its canned output"
                    );
                }
                options.push(*a);
            } else {
                operands.push(*a);
            }
        }
        Ok((options, operands))
    }

    /// Whether `path` is the file system's mount point; else the refusal.
    fn mounted(&self, path: &str, out: &mut Out) -> bool {
        let want = self.fs.mount.trim_end_matches('/');
        if path.trim_end_matches('/') == want && !want.is_empty() {
            return true;
        }
        out.fail(1, format!("ERROR: not a btrfs filesystem: {path}"));
        false
    }

    /// A device path: a present drive, by kernel name or by-id name.
    fn drive(&self, path: &str) -> Option<usize> {
        if let Some(id) = path.strip_prefix("/dev/disk/by-id/") {
            self.pool
                .drives
                .iter()
                .position(|d| d.present && d.identity().by_id.as_deref() == Some(id))
        } else {
            path.strip_prefix("/dev/")
                .and_then(|dev| self.pool.present(dev))
        }
    }

    /// Another exclusive operation runs (the kernel allows one at a time).
    fn busy(&self) -> Option<&'static str> {
        if self.fs.replace.is_some() {
            Some("dev_replace")
        } else if self.fs.balance.is_some() {
            Some("balance")
        } else {
            None
        }
    }

    fn replace_start(&mut self, args: &[&str], out: &mut Out) -> Result<()> {
        let (options, operands) = self.split(args, &["-r", "-f", "-B", "-K", "--nodiscard"])?;
        let [src, new, mnt] = operands.as_slice() else {
            out.fail(1, "btrfs replace start: exactly three arguments expected, SRCDEV TARGETDEV MOUNTPOINT");
            return Ok(());
        };
        if !self.mounted(mnt, out) {
            return Ok(());
        }
        let source = if src.chars().all(|c| c.is_ascii_digit()) && !src.is_empty() {
            src.parse().ok().and_then(|devid| self.fs.by_devid(devid))
        } else {
            self.drive(src).and_then(|d| self.fs.attached(d))
        };
        let Some(source) = source.filter(|&s| !self.fs.is_replace_target(s)) else {
            out.fail(
                1,
                format!("ERROR: '{src}' is not a valid devid or device of filesystem '{mnt}'"),
            );
            return Ok(());
        };
        if let Some(op) = self.busy() {
            out.fail(
                1,
                format!("ERROR: unable to start device replace, another exclusive operation '{op}' in progress"),
            );
            return Ok(());
        }
        let Some(drive) = self.drive(new) else {
            out.fail(
                1,
                format!("ERROR: cannot open {new}: No such file or directory"),
            );
            return Ok(());
        };
        if self.fs.any_device(drive).is_some() {
            out.fail(1, format!("ERROR: {new} is mounted"));
            return Ok(());
        }
        let d = &self.pool.drives[drive];
        if !d.blank && !options.contains(&"-f") {
            out.fail(
                1,
                format!(
                    "ERROR: {new} appears to contain an existing filesystem ({}).\nERROR: use the -f option to force overwrite of {new}",
                    if d.superblock.is_some() { "btrfs" } else { "unknown" }
                ),
            );
            return Ok(());
        }
        let needed = self.fs.devices[source].size_bytes;
        if d.size_bytes < needed {
            out.fail(
                1,
                format!(
                    "ERROR: target device smaller than source device (required {needed} bytes)"
                ),
            );
            return Ok(());
        }
        let avoid = options.contains(&"-r");
        self.fs
            .start_replace(self.pool, source, drive, avoid, self.now_ms, self.log);
        Ok(())
    }

    fn replace_status(&mut self, args: &[&str], out: &mut Out) -> Result<()> {
        let (options, operands) = self.split(args, &["-1"])?;
        let once = options.contains(&"-1");
        let [mnt] = operands.as_slice() else {
            out.fail(1, "btrfs replace status: one mount point expected");
            return Ok(());
        };
        if !self.mounted(mnt, out) {
            return Ok(());
        }
        if let (Some(r), false) = (&self.fs.replace, once) {
            // Without `-1` btrfs prints progress until the replace ends
            // (the command runs until then: `runs_for`), its last line the
            // end. Anything that stops the replace first halts the run.
            let end = r.started_ms.saturating_add(self.fs.copy_ms);
            out.say(format!(
                "Started on {}, finished on {}, 0 write errs, 0 uncorr. read errs",
                wall(r.started_ms),
                wall(end)
            ));
            return Ok(());
        }
        if let Some(r) = &self.fs.replace {
            let permille = self.fs.replace_permille(r, self.now_ms);
            out.say(format!(
                "{}.{}% done, 0 write errs, 0 uncorr. read errs",
                permille / 10,
                permille % 10
            ));
            return Ok(());
        }
        match self.fs.replace_ended {
            None => out.say("Never started"),
            Some(Ended {
                started_ms,
                ended_ms,
                canceled_at,
            }) => {
                let (verb, at) = match canceled_at {
                    None => ("finished", String::new()),
                    Some(p) => ("canceled", format!(" at {}.{}%", p / 10, p % 10)),
                };
                out.say(format!(
                    "Started on {}, {verb} on {}{at}, 0 write errs, 0 uncorr. read errs",
                    wall(started_ms),
                    wall(ended_ms)
                ));
            }
        }
        Ok(())
    }

    fn balance_start(&mut self, args: &[&str], out: &mut Out) -> Result<()> {
        let (options, operands) = self.split(args, &["--bg", "--background", "-d", "-m", "-f"])?;
        let background = options.iter().any(|o| *o == "--bg" || *o == "--background");
        let [mnt] = operands.as_slice() else {
            out.fail(1, "btrfs balance start: one mount point expected");
            return Ok(());
        };
        if !self.mounted(mnt, out) {
            return Ok(());
        }
        let profile = self.fs.profile.name();
        let mut kinds = Vec::new();
        for o in &options {
            let (kind, filter) = if let Some(f) = o.strip_prefix("-d") {
                ("Data", f)
            } else if let Some(f) = o.strip_prefix("-m") {
                ("Metadata", f)
            } else {
                continue;
            };
            let convert = filter
                .strip_prefix("convert=")
                .map(|c| c.split(',').collect::<Vec<_>>());
            match convert.as_deref() {
                Some([p]) | Some([p, "soft"]) if *p == profile => kinds.push(kind.to_string()),
                _ => bail!(
                    "the simulator models a balance that converts back to the file system's profile only (`{o}` on a {profile} file system; want `-dconvert={profile},soft`)"
                ),
            }
        }
        if kinds.is_empty() {
            bail!("the simulator models a converting balance only (`-dconvert=`, `-mconvert=`)");
        }
        if let Some(op) = self.busy() {
            out.fail(
                1,
                format!(
                    "ERROR: unable to start balance, another exclusive operation '{op}' in progress"
                ),
            );
            return Ok(());
        }
        if self.fs.missing() > 0 {
            out.fail(
                1,
                format!(
                    "ERROR: error during balancing '{mnt}': Invalid argument\nThere may be more info in syslog - try dmesg | tail"
                ),
            );
            return Ok(());
        }
        self.fs.start_balance(kinds, self.now_ms, self.log);
        if !background {
            // In the foreground btrfs prints this when the balance ends
            // (the command runs until then: `runs_for`).
            let chunks = self.fs.balance.as_ref().map_or(0, |b| b.chunks);
            out.say(format!(
                "Done, had to relocate {chunks} out of {chunks} chunks"
            ));
        }
        Ok(())
    }

    fn balance_status(&mut self, args: &[&str], out: &mut Out) -> Result<()> {
        let (_, operands) = self.split(args, &["-v"])?;
        let [mnt] = operands.as_slice() else {
            out.fail(1, "btrfs balance status: one mount point expected");
            return Ok(());
        };
        if !self.mounted(mnt, out) {
            out.0.code = Some(2);
            return Ok(());
        }
        match &self.fs.balance {
            None => out.say(format!("No balance found on '{mnt}'")),
            Some(b) => {
                let done = self.fs.balance_done(b, self.now_ms);
                out.say(format!("Balance on '{mnt}' is running"));
                out.say(format!(
                    "{done} out of about {} chunks balanced ({} considered), {:3}% left",
                    b.chunks,
                    done + 1,
                    (b.chunks - done) * 100 / b.chunks.max(1)
                ));
                out.0.code = Some(1);
            }
        }
        Ok(())
    }

    fn resize(&mut self, args: &[&str], out: &mut Out) -> Result<()> {
        let (_, operands) = self.split(args, &["--enqueue"])?;
        let [size, mnt] = operands.as_slice() else {
            out.fail(
                1,
                "btrfs filesystem resize: [DEVID:]SIZE and a mount point expected",
            );
            return Ok(());
        };
        if !self.mounted(mnt, out) {
            return Ok(());
        }
        let (devid, amount) = size.split_once(':').unwrap_or(("1", size));
        if amount != "max" {
            bail!("the simulator models `btrfs filesystem resize DEVID:max` only, not `{size}`");
        }
        let found = devid
            .parse::<u64>()
            .ok()
            .and_then(|id| self.fs.by_devid(id))
            .filter(|&i| !self.fs.devices[i].missing && !self.fs.devices[i].detached);
        let Some(device) = found else {
            out.fail(
                1,
                format!("ERROR: unable to resize '{mnt}': No such device"),
            );
            return Ok(());
        };
        if let Some(op) = self.busy() {
            out.fail(
                1,
                format!("ERROR: unable to resize '{mnt}', another exclusive operation '{op}' in progress"),
            );
            return Ok(());
        }
        let drive = self.fs.devices[device].drive;
        let from = self.fs.devices[device].size_bytes;
        let to = self.pool.drives[drive].size_bytes;
        self.fs.devices[device].size_bytes = to;
        out.say(format!(
            "Resize device id {devid} (/dev/{}) from {} to max",
            self.pool.drives[drive].dev,
            gib(from)
        ));
        if to != from {
            self.log.push(format!(
                "btrfs grew devid {devid} from {} to {}",
                gib(from),
                gib(to)
            ));
        }
        Ok(())
    }

    fn df(&mut self, args: &[&str], out: &mut Out) -> Result<()> {
        let (_, operands) = self.split(args, &["--raw", "-b"])?;
        let [mnt] = operands.as_slice() else {
            out.fail(1, "btrfs filesystem df: one mount point expected");
            return Ok(());
        };
        if !self.mounted(mnt, out) {
            return Ok(());
        }
        let profile = self.fs.profile.name().to_uppercase();
        let line = |kind: &str, profile: &str, total: u64| {
            format!("{kind}, {profile}: total={total}, used={}", total / 2)
        };
        let single = |kind: &str| self.fs.single.iter().any(|k| k == kind);
        let mut lines = vec![line("Data", &profile, 4 * CHUNK_BYTES)];
        if single("Data") {
            lines.push(line("Data", "single", CHUNK_BYTES));
        }
        lines.push(line("System", &profile, 8 << 20));
        lines.push(line("Metadata", &profile, CHUNK_BYTES));
        if single("Metadata") {
            lines.push(line("Metadata", "single", 256 << 20));
        }
        lines.push("GlobalReserve, single: total=5767168, used=0".to_string());
        for l in lines {
            out.say(l);
        }
        Ok(())
    }

    fn stats(&mut self, args: &[&str], out: &mut Out) -> Result<()> {
        let (options, operands) = self.split(args, &["-c", "--check"])?;
        let [mnt] = operands.as_slice() else {
            out.fail(1, "btrfs device stats: one mount point expected");
            return Ok(());
        };
        if !self.mounted(mnt, out) {
            return Ok(());
        }
        let mut devices: Vec<usize> = (0..self.fs.devices.len())
            .filter(|&i| !self.fs.devices[i].removed)
            .collect();
        devices.sort_by_key(|&i| self.fs.devices[i].devid);
        let mut any = false;
        for i in devices {
            let d = &self.fs.devices[i];
            let path = if d.missing || d.detached {
                "<missing disk>".to_string()
            } else {
                format!("/dev/{}", self.pool.drives[d.drive].dev)
            };
            for name in crate::backend::btrfs::COUNTER_NAMES {
                let value = d.counters.get(name).copied().unwrap_or(0);
                any |= value > 0;
                let short = name.trim_start_matches("btrfs.");
                out.say(format!("[{path}].{short:<16} {value}"));
            }
        }
        if any && options.iter().any(|o| *o == "-c" || *o == "--check") {
            out.0.code = Some(64);
        }
        Ok(())
    }
}

/// `1.Jan 00:02:10` on the simulated wall clock, as btrfs-progs prints a
/// time (`%e.%b %T`: the day padded with a space).
fn wall(ms: u64) -> String {
    const MONTHS: [(&str, u64); 12] = [
        ("Jan", 31),
        ("Feb", 28),
        ("Mar", 31),
        ("Apr", 30),
        ("May", 31),
        ("Jun", 30),
        ("Jul", 31),
        ("Aug", 31),
        ("Sep", 30),
        ("Oct", 31),
        ("Nov", 30),
        ("Dec", 31),
    ];
    // The simulated wall clock starts on 1 January.
    debug_assert_eq!(SIM_EPOCH_MS % 86_400_000, 0);
    let secs = ms / 1000;
    let mut day = secs / 86_400 % 365;
    let mut month = "Jan";
    for (name, days) in MONTHS {
        month = name;
        if day < days {
            break;
        }
        day -= days;
    }
    format!(
        "{:>2}.{month} {:02}:{:02}:{:02}",
        day + 1,
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// `960.00GiB`, as btrfs-progs prints a size.
fn gib(bytes: u64) -> String {
    format!("{:.2}GiB", bytes as f64 / f64::from(1u32 << 30))
}

/// `findmnt [-n] [-S SOURCE] [-M MOUNTPOINT] [-o COLUMNS]`: the one mount
/// the simulation has, the btrfs file system; exit 1 and no output when it
/// does not match (as findmnt does when it finds nothing). SOURCE is
/// `UUID=<uuid>` or a device of the file system; COLUMNS are among
/// TARGET, SOURCE, FSTYPE, OPTIONS and UUID (the file system's).
pub(crate) fn findmnt(fs: &BtrfsFs, pool: &Pool, argv: &[String]) -> Result<CommandOutput> {
    let mut out = Out::new(argv);
    let mut headings = true;
    let mut source = None;
    let mut mountpoint = None;
    let mut columns = None;
    let mut args = argv.iter().skip(1).map(String::as_str);
    while let Some(a) = args.next() {
        match a {
            "-n" | "--noheadings" => headings = false,
            "-S" | "--source" => source = args.next(),
            "-M" | "--mountpoint" => mountpoint = args.next(),
            "-o" | "--output" => columns = args.next(),
            _ => {
                if let Some(v) = a.strip_prefix("--source=") {
                    source = Some(v);
                } else if let Some(v) = a.strip_prefix("--mountpoint=") {
                    mountpoint = Some(v);
                } else if let Some(v) = a.strip_prefix("--output=") {
                    columns = Some(v);
                } else {
                    bail!(
                        "the simulated `findmnt` models `-n`, `-S SOURCE`, `-M MOUNTPOINT` and `-o COLUMNS` only, not `{a}`; add a [[command]] with its canned output"
                    );
                }
            }
        }
    }
    let devices: Vec<String> = fs
        .devices
        .iter()
        .filter(|d| !d.removed && !d.missing && !d.detached && d.devid != 0)
        .map(|d| format!("/dev/{}", pool.drives[d.drive].dev))
        .collect();
    let source_fits = source.is_none_or(|s| {
        s.strip_prefix("UUID=")
            .is_some_and(|u| u.eq_ignore_ascii_case(&fs.uuid))
            || devices.iter().any(|d| d == s)
    });
    let mount_fits =
        mountpoint.is_none_or(|m| m.trim_end_matches('/') == fs.mount.trim_end_matches('/'));
    if !(source_fits && mount_fits) || devices.is_empty() {
        out.0.code = Some(1);
        return Ok(out.0);
    }
    let columns: Vec<String> = columns
        .unwrap_or("TARGET,SOURCE,FSTYPE,OPTIONS")
        .split(',')
        .map(str::to_ascii_uppercase)
        .collect();
    let mut values = Vec::new();
    for c in &columns {
        values.push(match c.as_str() {
            "TARGET" => fs.mount.clone(),
            "SOURCE" => devices[0].clone(),
            "FSTYPE" => "btrfs".to_string(),
            "OPTIONS" => "rw,relatime,space_cache=v2,subvolid=5,subvol=/".to_string(),
            "UUID" => fs.uuid.to_ascii_lowercase(),
            other => bail!(
                "the simulated `findmnt` has no column `{other}`; add a [[command]] with its canned output"
            ),
        });
    }
    if headings {
        out.say(columns.join(" "));
    }
    out.say(values.join(" "));
    Ok(out.0)
}
