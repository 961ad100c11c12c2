//! The /proc/mdstat parser.
//!
//! Token based, after mdadm's `mdstat.c`, never column based: the kernel's
//! indents differ between active and inactive arrays (6 or 7 spaces, a TAB
//! before `resync=DELAYED`), the percent is right-aligned (`=  1.5%`) and the
//! member flags stack (`sdc1[3](W)(F)`). Anything the grammar does not allow
//! is an error naming the line, so an odd mdstat is never read as healthy.
//!
//! mdstat is a cross-check here; sysfs is authoritative (see `sysfs.rs`).
//! `desc_nr` in `name[desc_nr]` is the superblock slot, not the RAID role.

use anyhow::{Result, anyhow, bail};

/// Everything /proc/mdstat says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mdstat {
    /// Loaded personalities, without brackets: `raid1`, `raid10`.
    pub personalities: Vec<String>,
    pub arrays: Vec<MdstatArray>,
    /// Devices with an md superblock that no array uses.
    pub unused: Vec<String>,
}

impl Mdstat {
    pub fn array(&self, name: &str) -> Option<&MdstatArray> {
        self.arrays.iter().find(|a| a.name == name)
    }
}

/// Whether md accepts writes, from the marker after `active`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Access {
    #[default]
    ReadWrite,
    /// `(read-only)`
    ReadOnly,
    /// `(auto-read-only)`: switches to read-write on the first write.
    AutoReadOnly,
}

/// One `mdN : ...` block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdstatArray {
    pub name: String,
    /// 1-based line of the `mdN :` header, for messages.
    pub line: usize,
    /// `active` (true) or `inactive`.
    pub active: bool,
    pub access: Access,
    /// Personality name; inactive arrays and containers may have none.
    pub level: Option<String>,
    /// In the kernel's order (most recently added first).
    pub members: Vec<MdstatMember>,
    /// Size in 1 KiB blocks.
    pub blocks: Option<u64>,
    /// The word after `super`; `None` for 0.90 metadata, which prints none.
    pub superblock: Option<String>,
    /// `n` of `[n/m]`: slots the array should have.
    pub raid_disks: Option<u32>,
    /// `m` of `[n/m]`: slots with an in-sync device.
    pub working: Option<u32>,
    /// The `[UU_]` pattern without brackets, one char per role.
    pub pattern: Option<String>,
    pub sync: Option<MdstatSync>,
    /// The bitmap line after `bitmap:`, verbatim.
    pub bitmap: Option<String>,
}

impl MdstatArray {
    /// Slots without an in-sync device, from `[n/m]`.
    pub fn degraded(&self) -> Option<u32> {
        Some(self.raid_disks?.saturating_sub(self.working?))
    }
}

/// One `name[desc_nr](flags)` member token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MdstatMember {
    /// Kernel block device name, without `/dev/`.
    pub name: String,
    /// Superblock slot number. NOT the RAID role: roles come from sysfs.
    pub desc_nr: u32,
    /// `(W)`
    pub write_mostly: bool,
    /// `(J)`
    pub journal: bool,
    /// `(F)`
    pub faulty: bool,
    /// `(S)`: no role. A device being recovered to has a role and no `(S)`.
    pub spare: bool,
    /// `(R)`
    pub replacement: bool,
}

/// The resync/recovery line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MdstatSync {
    /// As printed: `recovery`, `resync`, `reshape`, `check`, `repair`.
    pub action: String,
    pub state: SyncState,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncState {
    /// The progress bar line. `done`/`total` are 1 KiB blocks.
    Running {
        /// Tenths of a percent: `8.5%` is 85.
        permille: u32,
        done: u64,
        total: u64,
        /// `finish=17.0min`, verbatim.
        finish: Option<String>,
        speed_kib: Option<u64>,
    },
    /// `resync=DELAYED`: waiting for another array on the same disks.
    Delayed,
    /// `resync=PENDING`: the array is read-only with a resync to do.
    Pending,
    /// `resync=REMOTE` and friends: another cluster node is syncing.
    Remote,
}

/// Parse the whole text of /proc/mdstat.
pub fn parse(text: &str) -> Result<Mdstat> {
    let mut out = Mdstat::default();
    let mut seen_personalities = false;
    let mut seen_unused = false;
    let mut current: Option<MdstatArray> = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let fail = |what: String| anyhow!("mdstat line {number}: {what}: `{line}`");
        if line.trim().is_empty() {
            continue;
        }
        if seen_unused {
            return Err(fail("text after the `unused devices` line".into()));
        }
        if line.starts_with(char::is_whitespace) {
            let Some(array) = current.as_mut() else {
                return Err(fail("continuation line outside an array".into()));
            };
            continuation(array, line.trim()).map_err(fail)?;
            continue;
        }
        if let Some(array) = current.take() {
            out.arrays.push(array);
        }
        if let Some(rest) = line.strip_prefix("Personalities") {
            if seen_personalities || !out.arrays.is_empty() {
                return Err(fail("unexpected `Personalities` line".into()));
            }
            out.personalities = personalities(rest).map_err(fail)?;
            seen_personalities = true;
        } else if let Some(rest) = line.strip_prefix("unused devices:") {
            out.unused = rest
                .split_whitespace()
                .filter(|t| *t != "<none>")
                .map(str::to_string)
                .collect();
            seen_unused = true;
        } else {
            if !seen_personalities {
                return Err(fail("array before the `Personalities` line".into()));
            }
            let array = header(line, number).map_err(fail)?;
            if out.array(&array.name).is_some() {
                return Err(fail(format!("array `{}` listed twice", array.name)));
            }
            current = Some(array);
        }
    }
    if let Some(array) = current.take() {
        out.arrays.push(array);
    }
    if !seen_personalities {
        bail!("mdstat has no `Personalities` line (empty or not /proc/mdstat)");
    }
    if !seen_unused {
        bail!("mdstat has no `unused devices` line (truncated read?)");
    }
    Ok(out)
}

fn personalities(rest: &str) -> Result<Vec<String>, String> {
    let rest = rest
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(|| "no `:` after `Personalities`".to_string())?;
    rest.split_whitespace()
        .map(|token| {
            token
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("personality `{token}` is not `[name]`"))
        })
        .collect()
}

/// `md0 : active (auto-read-only) raid1 sdb1[1](W) sda1[0]`
fn header(line: &str, number: usize) -> Result<MdstatArray, String> {
    let mut tokens = line.split_whitespace();
    let name = tokens.next().unwrap_or_default();
    if !name.starts_with("md") || name.len() < 3 {
        return Err("not an `mdN :` array line".into());
    }
    if tokens.next() != Some(":") {
        return Err(format!("no ` : ` after `{name}`"));
    }
    let active = match tokens.next() {
        Some("active") => true,
        Some("inactive") => false,
        Some(other) => return Err(format!("state `{other}` is neither active nor inactive")),
        None => return Err("no array state".into()),
    };
    let mut array = MdstatArray {
        name: name.to_string(),
        line: number,
        active,
        ..MdstatArray::default()
    };
    for token in tokens {
        match token {
            "(read-only)" if array.level.is_none() && array.members.is_empty() => {
                array.access = Access::ReadOnly;
            }
            "(auto-read-only)" if array.level.is_none() && array.members.is_empty() => {
                array.access = Access::AutoReadOnly;
            }
            _ if token.contains('[') => array.members.push(member(token)?),
            _ if array.level.is_none() && array.members.is_empty() => {
                if !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(format!("level `{token}` is not a personality name"));
                }
                array.level = Some(token.to_string());
            }
            _ => return Err(format!("unexpected `{token}` among the members")),
        }
    }
    Ok(array)
}

/// `sdc1[3](W)(F)`
fn member(token: &str) -> Result<MdstatMember, String> {
    let bad = |why: &str| format!("member `{token}` {why}");
    let (name, rest) = token.split_once('[').ok_or_else(|| bad("has no `[`"))?;
    let (desc, mut flags) = rest.split_once(']').ok_or_else(|| bad("has no `]`"))?;
    if name.is_empty() {
        return Err(bad("has no device name"));
    }
    let desc_nr = desc
        .parse()
        .map_err(|_| bad("has a slot number that is not a number"))?;
    let mut member = MdstatMember {
        name: name.to_string(),
        desc_nr,
        ..MdstatMember::default()
    };
    while !flags.is_empty() {
        let (flag, rest) = flags
            .strip_prefix('(')
            .and_then(|f| f.split_once(')'))
            .ok_or_else(|| bad("has flags that are not `(X)`"))?;
        let slot = match flag {
            "W" => &mut member.write_mostly,
            "J" => &mut member.journal,
            "F" => &mut member.faulty,
            "S" => &mut member.spare,
            "R" => &mut member.replacement,
            _ => return Err(bad(&format!("has unknown flag `({flag})`"))),
        };
        if *slot {
            return Err(bad(&format!("repeats flag `({flag})`")));
        }
        *slot = true;
        flags = rest;
    }
    Ok(member)
}

/// Any indented line below an array header.
fn continuation(array: &mut MdstatArray, text: &str) -> Result<(), String> {
    if let Some(rest) = text.strip_prefix("bitmap:") {
        if array.bitmap.is_some() {
            return Err("second `bitmap:` line".into());
        }
        array.bitmap = Some(rest.trim().to_string());
        return Ok(());
    }
    if text.contains('=') {
        if array.sync.is_some() {
            return Err("second resync line".into());
        }
        array.sync = Some(sync_line(text)?);
        return Ok(());
    }
    status_line(array, text)
}

/// `64512 blocks super 1.2 [2/1] [U_]` and the personality variants
/// (`level 5, 64k chunk, algorithm 2`, `512K chunks 2 near-copies`,
/// `64k chunks`, `0k rounding`), whose extra words are ignored.
fn status_line(array: &mut MdstatArray, text: &str) -> Result<(), String> {
    let tokens: Vec<&str> = text.split_whitespace().collect();
    let mut known = false;
    for (i, token) in tokens.iter().enumerate() {
        match *token {
            "blocks" => {
                let count = i
                    .checked_sub(1)
                    .and_then(|p| tokens[p].parse().ok())
                    .ok_or("`blocks` without a number before it")?;
                set_once(&mut array.blocks, count, "block count")?;
                known = true;
            }
            "super" => {
                let version = tokens.get(i + 1).ok_or("`super` without a version")?;
                set_once(&mut array.superblock, version.to_string(), "`super`")?;
                known = true;
            }
            "chunk" | "chunk," | "chunks" | "rounding" => known = true,
            _ => {
                let Some(inner) = token.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
                    continue;
                };
                if let Some((n, m)) = inner.split_once('/') {
                    let n = n.parse().map_err(|_| format!("bad `{token}`"))?;
                    let m = m.parse().map_err(|_| format!("bad `{token}`"))?;
                    set_once(&mut array.raid_disks, n, "`[n/m]`")?;
                    array.working = Some(m);
                } else if !inner.is_empty() && inner.chars().all(|c| c == 'U' || c == '_') {
                    set_once(&mut array.pattern, inner.to_string(), "`[U_]` pattern")?;
                } else {
                    return Err(format!("unknown bracketed token `{token}`"));
                }
                known = true;
            }
        }
    }
    if !known {
        return Err("unrecognised status line".into());
    }
    if let (Some(n), Some(pattern)) = (array.raid_disks, &array.pattern) {
        if pattern.len() != n as usize {
            return Err(format!("pattern `[{pattern}]` does not have {n} slots"));
        }
    }
    Ok(())
}

fn set_once<T>(slot: &mut Option<T>, value: T, what: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("second {what}"));
    }
    *slot = Some(value);
    Ok(())
}

/// `[=>....]  recovery =  8.5% (16775552/195310144) finish=17.0min speed=259783K/sec`
/// or `resync=DELAYED` (`PENDING`, `REMOTE`).
fn sync_line(text: &str) -> Result<MdstatSync, String> {
    let mut text = text;
    if text.starts_with('[') {
        let (bar, rest) = text.split_once(']').ok_or("progress bar without `]`")?;
        if !bar[1..].chars().all(|c| matches!(c, '=' | '>' | '.')) {
            return Err(format!("progress bar `{bar}]` has odd characters"));
        }
        text = rest.trim_start();
    }
    let (action, rest) = text.split_once('=').ok_or("no `=` in resync line")?;
    let action = action.trim();
    if action.is_empty() || !action.chars().all(|c| c.is_ascii_lowercase()) {
        return Err(format!("resync action `{action}` is not a word"));
    }
    let action = action.to_string();
    let rest = rest.trim_start();
    let special = match rest {
        "DELAYED" => Some(SyncState::Delayed),
        "PENDING" => Some(SyncState::Pending),
        "REMOTE" => Some(SyncState::Remote),
        _ => None,
    };
    if let Some(state) = special {
        return Ok(MdstatSync { action, state });
    }
    let (percent, rest) = rest.split_once('%').ok_or("no `%` in progress line")?;
    let permille = parse_percent(percent.trim())
        .ok_or_else(|| format!("percent `{percent}%` is not `N.N%`"))?;
    let mut tokens = rest.split_whitespace();
    let counts = tokens.next().ok_or("no `(done/total)` after the percent")?;
    let (done, total) = counts
        .strip_prefix('(')
        .and_then(|c| c.strip_suffix(')'))
        .and_then(|c| c.split_once('/'))
        .and_then(|(d, t)| Some((d.parse().ok()?, t.parse().ok()?)))
        .ok_or_else(|| format!("`{counts}` is not `(done/total)`"))?;
    let mut finish = None;
    let mut speed_kib = None;
    for token in tokens {
        if let Some(value) = token.strip_prefix("finish=") {
            finish = Some(value.to_string());
        } else if let Some(value) = token.strip_prefix("speed=") {
            let number = value
                .strip_suffix("K/sec")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("speed `{value}` is not `NK/sec`"))?;
            speed_kib = Some(number);
        } else {
            return Err(format!("unexpected `{token}` in progress line"));
        }
    }
    Ok(MdstatSync {
        action,
        state: SyncState::Running {
            permille,
            done,
            total,
            finish,
            speed_kib,
        },
    })
}

/// `8.5` → 85, `100.0` → 1000; the kernel always prints one decimal.
fn parse_percent(text: &str) -> Option<u32> {
    let (whole, tenth) = text.split_once('.')?;
    if tenth.len() != 1 {
        return None;
    }
    let whole: u32 = whole.parse().ok()?;
    let tenth: u32 = tenth.parse().ok()?;
    let permille = whole.checked_mul(10)?.checked_add(tenth)?;
    (permille <= 1000).then_some(permille)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/md/mdstat")
            .join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// A compact view of one array: name, state, level, members with flags,
    /// `[n/m]`, pattern, sync.
    fn summary(array: &MdstatArray) -> String {
        let members: Vec<String> = array
            .members
            .iter()
            .map(|m| {
                let mut s = format!("{}[{}]", m.name, m.desc_nr);
                for (on, flag) in [
                    (m.write_mostly, "W"),
                    (m.journal, "J"),
                    (m.faulty, "F"),
                    (m.spare, "S"),
                    (m.replacement, "R"),
                ] {
                    if on {
                        s.push_str(&format!("({flag})"));
                    }
                }
                s
            })
            .collect();
        let sync = match &array.sync {
            None => "-".to_string(),
            Some(MdstatSync {
                action,
                state:
                    SyncState::Running {
                        permille,
                        done,
                        total,
                        speed_kib,
                        ..
                    },
            }) => format!("{action}:{permille}:{done}/{total}:{speed_kib:?}"),
            Some(MdstatSync { action, state }) => format!("{action}:{state:?}"),
        };
        format!(
            "{} {} {:?} {} [{}] {:?}/{:?} {} super={} blocks={} sync={} bitmap={}",
            array.name,
            if array.active { "active" } else { "inactive" },
            array.access,
            array.level.as_deref().unwrap_or("-"),
            members.join(" "),
            array.raid_disks,
            array.working,
            array.pattern.as_deref().unwrap_or("-"),
            array.superblock.as_deref().unwrap_or("-"),
            array.blocks.map_or("-".to_string(), |b| b.to_string()),
            sync,
            array.bitmap.is_some(),
        )
    }

    fn summaries(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_or_else(|e| panic!("{e:#}"))
            .arrays
            .iter()
            .map(summary)
            .collect()
    }

    #[test]
    fn lab_captures() {
        let table: &[(&str, &str)] = &[
            (
                "lab-mdstat-clean.txt",
                "md0 active ReadWrite raid1 [nvme1n1[1] nvme0n1[0]] Some(2)/Some(2) UU super=1.2 blocks=64512 sync=- bitmap=false",
            ),
            (
                "lab-mdstat-degraded.txt",
                "md0 active ReadWrite raid1 [nvme1n1[1](F) nvme0n1[0]] Some(2)/Some(1) U_ super=1.2 blocks=64512 sync=- bitmap=false",
            ),
            (
                "lab-mdstat-recovery.txt",
                "md0 active ReadWrite raid1 [nvme1n1[2] nvme0n1[0]] Some(2)/Some(1) U_ super=1.2 blocks=64512 sync=recovery:472:30848/64512:Some(3427) bitmap=false",
            ),
            (
                "lab-mdstat-recovered.txt",
                "md0 active ReadWrite raid1 [nvme1n1[2] nvme0n1[0]] Some(2)/Some(2) UU super=1.2 blocks=64512 sync=- bitmap=false",
            ),
            (
                "lab-mdstat-after-pull-before-io.txt",
                "md0 active ReadWrite raid1 [nvme1n1[1] nvme0n1[0]] Some(2)/Some(2) UU super=1.2 blocks=64512 sync=- bitmap=false",
            ),
            (
                "lab-mdstat-after-read-errors.txt",
                "md0 active ReadWrite raid1 [nvme1n1[2] nvme0n1[0]] Some(2)/Some(2) UU super=1.2 blocks=64512 sync=- bitmap=false",
            ),
            (
                "lab-mdstat-after-read-errors-C.txt",
                "md0 active ReadWrite raid1 [nvme1n1[2] nvme0n1[0]] Some(2)/Some(2) UU super=1.2 blocks=64512 sync=- bitmap=false",
            ),
            (
                "lab-mdstat-resync.txt",
                "md0 active ReadWrite raid1 [nvme1n1[1] nvme0n1[0]] Some(2)/Some(2) UU super=1.2 blocks=64512 sync=- bitmap=false",
            ),
            (
                "lab-mdstat-scsi-after-unplug-after-io.txt",
                "md0 active ReadWrite raid1 [sdb[1](F) sda[0]] Some(2)/Some(1) U_ super=1.2 blocks=64512 sync=- bitmap=false",
            ),
            (
                "lab-mdstat-after-remove-detached.txt",
                "md0 active ReadWrite raid1 [nvme0n1[0]] Some(2)/Some(1) U_ super=1.2 blocks=64512 sync=- bitmap=false",
            ),
        ];
        for (file, want) in table {
            assert_eq!(summaries(&fixture(file)), vec![want.to_string()], "{file}");
        }
    }

    #[test]
    fn procfs_fixture_every_shape() {
        let want = [
            "md3 active ReadWrite raid6 [sda1[8] sdh1[7] sdg1[6] sdf1[5] sde1[11] sdd1[3] sdc1[10] sdb1[9] sdd1[10](S) sdd2[11](S)] Some(8)/Some(8) UUUUUUUU super=1.2 blocks=5853468288 sync=- bitmap=false",
            "md127 active ReadWrite raid1 [sdi2[0] sdj2[1]] Some(2)/Some(2) UU super=- blocks=312319552 sync=- bitmap=false",
            "md0 active ReadWrite raid1 [sdi1[0] sdj1[1]] Some(2)/Some(2) UU super=- blocks=248896 sync=- bitmap=false",
            "md4 inactive ReadWrite raid1 [sda3[0](F) sdb3[1](S)] Some(2)/Some(2) UU super=- blocks=4883648 sync=- bitmap=false",
            "md6 active ReadWrite raid1 [sdb2[2](F) sdc[1](S) sda2[0]] Some(2)/Some(1) U_ super=- blocks=195310144 sync=recovery:85:16775552/195310144:Some(259783) bitmap=false",
            "md8 active ReadWrite raid1 [sdb1[1] sda1[0] sdc[2](S) sde[3](S)] Some(2)/Some(2) UU super=- blocks=195310144 sync=resync:85:16775552/195310144:Some(259783) bitmap=false",
            "md201 active ReadWrite raid1 [sda3[0] sdb3[1]] Some(2)/Some(2) UU super=1.2 blocks=1993728 sync=check:57:114176/1993728:Some(114176) bitmap=false",
            "md7 active ReadWrite raid6 [sdb1[0] sde1[3] sdd1[2] sdc1[1](F)] Some(4)/Some(3) U_UU super=1.2 blocks=7813735424 sync=- bitmap=true",
            "md9 active ReadWrite raid1 [sdc2[2] sdd2[3] sdb2[1] sda2[0] sde[4](F) sdf[5](F) sdg[6](S)] Some(4)/Some(4) UUUU super=1.2 blocks=523968 sync=resync:Delayed bitmap=false",
            "md10 active ReadWrite raid0 [sda1[0] sdb1[1]] None/None - super=- blocks=314159265 sync=- bitmap=false",
            "md11 active AutoReadOnly raid1 [sdb2[0] sdc2[1] sdc3[2](F) hda[4](S) ssdc2[3](S)] Some(2)/Some(2) UU super=1.2 blocks=4190208 sync=resync:Pending bitmap=false",
            "md12 active ReadWrite raid0 [sdc2[0] sdd2[1]] None/None - super=1.2 blocks=3886394368 sync=- bitmap=false",
            "md126 active ReadWrite raid0 [sdb[1] sdc[0]] None/None - super=external:/md127/0 blocks=1855870976 sync=- bitmap=false",
            "md219 inactive ReadWrite - [sdb[2](S) sdc[1](S) sda[0](S)] None/None - super=external:imsm blocks=7932 sync=- bitmap=false",
            "md00 active ReadWrite raid0 [xvdb[0]] None/None - super=1.2 blocks=4186624 sync=- bitmap=false",
            "md120 active ReadWrite linear [sda1[1] sdb1[0]] None/None - super=1.2 blocks=2095104 sync=- bitmap=false",
            "md101 active ReadOnly raid0 [sdb[2] sdd[1] sdc[0]] None/None - super=1.2 blocks=322560 sync=- bitmap=false",
            "md42 active ReadWrite raid5 [sda1[3](S) sdd1[0] sde1[1]] Some(3)/Some(2) UU_ super=1.2 blocks=1953381440 sync=reshape:561:1096879076/1953381440:Some(7640) bitmap=true",
        ];
        let got = summaries(&fixture("procfs-fixture-mixed.txt"));
        assert_eq!(got, want);
        let parsed = parse(&fixture("procfs-fixture-mixed.txt")).unwrap();
        assert_eq!(parsed.personalities.len(), 8);
        assert_eq!(parsed.personalities[3], "raid1");
        assert!(parsed.unused.is_empty());
        assert_eq!(parsed.array("md9").and_then(MdstatArray::degraded), Some(0));
        assert_eq!(parsed.array("md7").and_then(MdstatArray::degraded), Some(1));
    }

    #[test]
    fn telegraf_raid5_degraded_with_bitmap() {
        let parsed = parse(&fixture("raid5-degraded-bitmap-telegraf.txt")).unwrap();
        assert_eq!(
            parsed.arrays.iter().map(summary).collect::<Vec<_>>(),
            [
                "md0 active ReadWrite raid5 [sdd1[3] sdb1[1] sda1[0]] Some(4)/Some(3) UUU_ super=1.2 blocks=5860144128 sync=- bitmap=true"
            ]
        );
        assert_eq!(
            parsed.arrays[0].bitmap.as_deref(),
            Some("8/15 pages [32KB], 65536KB chunk")
        );
    }

    #[test]
    fn synthetic_flags_repair_tabs_and_shapes() {
        let want = [
            "md1 active ReadWrite raid1 [sdc1[3](W)(F) sdb1[1](W) sda1[0]] Some(2)/Some(1) U_ super=1.2 blocks=976630464 sync=- bitmap=true",
            "md2 active ReadWrite raid5 [sdf1[4](R) sde1[3](J) sdd1[2] sdc1[1] sdb1[0]] Some(3)/Some(3) UUU super=1.2 blocks=1953260544 sync=repair:15:14656/976630272:Some(98765) bitmap=false",
            "md3 active ReadWrite raid10 [sdd[3] sdc[2] sdb[1] sda[0]] Some(4)/Some(4) UUUU super=1.2 blocks=1953260544 sync=check:1000:976630272/976630272:Some(1) bitmap=true",
            "md4 active ReadOnly raid1 [sdh[1] sdg[0]] Some(2)/Some(2) UU super=1.2 blocks=1048512 sync=resync:Pending bitmap=false",
            "md5 active ReadWrite raid1 [sdj[1] sdi[0]] Some(2)/Some(2) UU super=1.2 blocks=1048512 sync=resync:Delayed bitmap=false",
            "md6 active ReadWrite raid1 [sdl[1] sdk[0]] Some(2)/Some(2) UU super=1.2 blocks=1048512 sync=recover:Remote bitmap=false",
            "md7 active ReadWrite raid1 [sdn[2] sdm[0]] Some(2)/Some(1) U_ super=1.2 blocks=1048512 sync=recovery:943:988743/1048512:Some(12000) bitmap=false",
            "md8 active ReadWrite raid1 [] Some(2)/Some(0) __ super=- blocks=- sync=- bitmap=false",
            "md9 inactive ReadWrite - [sdo1[0](S)] None/None - super=- blocks=1048512 sync=- bitmap=false",
        ];
        let parsed = parse(&fixture("synthetic-flags-repair-shapes.txt")).unwrap();
        assert_eq!(parsed.arrays.iter().map(summary).collect::<Vec<_>>(), want);
        assert_eq!(parsed.personalities, Vec::<String>::new());
        assert_eq!(parsed.unused, ["sdx", "sdy"]);
    }

    #[test]
    fn percent_padding() {
        for (text, want) in [
            ("1.5", Some(15)),
            ("94.3", Some(943)),
            ("100.0", Some(1000)),
            ("0.0", Some(0)),
            ("8", None),
            ("8.55", None),
            ("100.1", None),
            ("x.5", None),
            ("", None),
        ] {
            assert_eq!(parse_percent(text), want, "{text:?}");
        }
    }

    #[test]
    fn odd_input_is_an_error_naming_the_line() {
        const HEAD: &str = "Personalities : [raid1] \n";
        const TAIL: &str = "\nunused devices: <none>\n";
        let table: &[(&str, &str)] = &[
            ("", "no `Personalities` line"),
            ("garbage\n", "line 1: array before the `Personalities` line"),
            (
                "Personalities : [raid1] \nmd0 : active raid1 sda[0]\n      10 blocks [1/1] [U]\n",
                "no `unused devices` line",
            ),
            (
                "Personalities : raid1\nunused devices: <none>\n",
                "line 1: personality `raid1`",
            ),
            ("md0 : active raid1 sda[0]\n", "line 1: array before"),
            (
                "      10 blocks\n",
                "line 1: continuation line outside an array",
            ),
        ];
        for (text, want) in table {
            let err = format!("{:#}", parse(text).unwrap_err());
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let bodies: &[(&str, &str)] = &[
            (
                "md0 : active raid1 sda[x]",
                "line 2: member `sda[x]` has a slot number",
            ),
            (
                "md0 : active raid1 sda[0",
                "line 2: member `sda[0` has no `]`",
            ),
            ("md0 : active raid1 sda[0](Q)", "has unknown flag `(Q)`"),
            ("md0 : active raid1 sda[0](F)(F)", "repeats flag `(F)`"),
            ("md0 : active raid1 sda[0]F", "has flags that are not `(X)`"),
            ("md0 : active raid1 [0]", "has no device name"),
            ("md0 : running raid1 sda[0]", "state `running`"),
            ("md0 : active", ""),
            ("md0 active raid1 sda[0]", "no ` : ` after `md0`"),
            ("xy0 : active raid1 sda[0]", "not an `mdN :` array line"),
            (
                "md0 : active raid1 sda[0] raid5",
                "unexpected `raid5` among the members",
            ),
            (
                "md0 : active raid1 sda[0]\n      x blocks",
                "line 3: `blocks` without a number",
            ),
            (
                "md0 : active raid1 sda[0]\n      10 blocks [2/x] [UU]",
                "bad `[2/x]`",
            ),
            (
                "md0 : active raid1 sda[0]\n      10 blocks [2/1] [UUU]",
                "does not have 2 slots",
            ),
            (
                "md0 : active raid1 sda[0]\n      10 blocks [2/1] [U?]",
                "unknown bracketed token",
            ),
            (
                "md0 : active raid1 sda[0]\n      hello world",
                "unrecognised status line",
            ),
            (
                "md0 : active raid1 sda[0]\n      10 blocks super",
                "`super` without a version",
            ),
            (
                "md0 : active raid1 sda[0]\n      10 blocks 10 blocks",
                "second block count",
            ),
            (
                "md0 : active raid1 sda[0]\n      [==>..]  recovery = 8.5 (1/2)",
                "no `%` in progress line",
            ),
            (
                "md0 : active raid1 sda[0]\n      [==>..]  recovery = 8.5% 1/2",
                "`1/2` is not `(done/total)`",
            ),
            (
                "md0 : active raid1 sda[0]\n      [==>..]  recovery = 8.5% (1/2) speed=fast",
                "speed `fast`",
            ),
            (
                "md0 : active raid1 sda[0]\n      [==>..]  recovery = 8.5% (1/2) eta=1",
                "unexpected `eta=1`",
            ),
            (
                "md0 : active raid1 sda[0]\n      [=?>..]  recovery = 8.5% (1/2)",
                "progress bar",
            ),
            (
                "md0 : active raid1 sda[0]\n      [=>..]  = 8.5% (1/2)",
                "is not a word",
            ),
            (
                "md0 : active raid1 sda[0]\n\tresync=DELAYED\n\tresync=PENDING",
                "line 4: second resync line",
            ),
            (
                "md0 : active raid1 sda[0]\n      bitmap: 1\n      bitmap: 2",
                "second `bitmap:` line",
            ),
            (
                "md0 : active raid1 sda[0]\nmd0 : active raid1 sdb[0]",
                "listed twice",
            ),
            (
                "md0 : active raid1 sda[0]\nunused devices: <none>\nmd1 : active",
                "after the `unused",
            ),
        ];
        for (body, want) in bodies {
            let text = format!("{HEAD}{body}{TAIL}");
            match parse(&text) {
                Ok(_) if want.is_empty() => {}
                Ok(parsed) => panic!("{body:?} parsed: {parsed:?}"),
                Err(err) => {
                    let err = format!("{err:#}");
                    assert!(!want.is_empty() && err.contains(want), "{body:?}: {err}");
                }
            }
        }
    }

    #[test]
    fn never_panics_on_mangled_captures() {
        // Every prefix and every single-byte deletion of a rich sample must
        // give a value or an error, never a panic.
        let text = fixture("procfs-fixture-mixed.txt");
        for end in 0..text.len() {
            if text.is_char_boundary(end) {
                let _ = parse(&text[..end]);
            }
        }
        for skip in 0..text.len() {
            let mut mangled = text.clone();
            if mangled.is_char_boundary(skip) && mangled.is_char_boundary(skip + 1) {
                mangled.remove(skip);
                let _ = parse(&mangled);
            }
        }
    }
}
