//! `zpool` and `sgdisk`, interpreted against the simulated pool.
//!
//! `zpool offline`, `online` and `replace` change the pool as OpenZFS does,
//! with its refusals as exit statuses and its wording on stderr: the last
//! replica cannot be taken offline, a device that is already a leaf or that
//! carries a pool label (without `-f`) is not taken as a replacement, a
//! device smaller than the leaf it replaces is refused. `zpool status` and
//! `zpool list` are answered read-only. `sgdisk SRC -R DST` copies the
//! partition table (the new disk gains the partitions) and `sgdisk -G DST`
//! gives it new GUIDs. Anything else is not simulated: the caller gets an
//! error naming the command, never a made-up success (a scenario can give a
//! `[[command]]` output instead).

use std::fmt::Write as _;

use anyhow::{Result, bail};

use crate::backend::CommandOutput;
use crate::backend::sim::pool::Pool;
use crate::backend::sim::zpool::{LeafState, Zpool};

fn output(argv: &[String], code: i32, stdout: String, stderr: String) -> CommandOutput {
    CommandOutput {
        argv: argv.to_vec(),
        code: Some(code),
        stdout,
        stderr,
        timed_out: false,
    }
}

fn refuse(argv: &[String], code: i32, stderr: String) -> Result<CommandOutput> {
    Ok(output(argv, code, String::new(), stderr))
}

/// Run one `zpool` command line. `Err` only for what the simulator does
/// not model.
pub(crate) fn zpool(
    zp: &mut Zpool,
    pool: &mut Pool,
    argv: &[String],
    now_ms: u64,
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let Some(sub) = argv.get(1) else {
        bail!("the simulator cannot run `zpool` without a subcommand");
    };
    let (flags, words): (Vec<&String>, Vec<&String>) =
        argv[2..].iter().partition(|a| a.starts_with('-'));
    let has = |f: char| {
        flags
            .iter()
            .any(|a| !a.starts_with("--") && a[1..].contains(f))
    };
    match sub.as_str() {
        "status" => Ok(status(zp, pool, argv, &words, has('x'), has('g'))),
        "list" => Ok(list(zp, argv, &words, has('H'))),
        "offline" => offline(zp, pool, argv, &words, log),
        "online" => online(zp, pool, argv, &words, log),
        "replace" => replace(zp, pool, argv, &words, has('f'), now_ms, log),
        _ => bail!(
            "the simulator models `zpool status`, `list`, `offline`, `online` and `replace`, not `{}`; add a [[command]] with canned output",
            argv.join(" ")
        ),
    }
}

/// The pool argument must be this pool.
fn no_pool(argv: &[String], name: &str) -> CommandOutput {
    output(
        argv,
        1,
        String::new(),
        format!("cannot open '{name}': no such pool\n"),
    )
}

fn offline(
    zp: &mut Zpool,
    pool: &Pool,
    argv: &[String],
    words: &[&String],
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let [name, dev] = words else {
        return refuse(
            argv,
            2,
            "usage:\n\toffline [--power]|[[-f][-t]] <pool> <device> ...\n".into(),
        );
    };
    if *name != &zp.name {
        return Ok(no_pool(argv, name));
    }
    let Some(leaf) = zp.leaf_named(dev) else {
        return refuse(
            argv,
            1,
            format!("cannot offline {dev}: no such device in pool\n"),
        );
    };
    let l = &zp.leaves[leaf];
    if l.state == LeafState::Offline {
        return refuse(argv, 0, String::new());
    }
    // ZFS refuses to take away the last copy of any data.
    let mut trial = zp.clone();
    trial.leaves[leaf].state = LeafState::Offline;
    if trial.degraded() > zp.level.tolerates(zp.slots) {
        return refuse(
            argv,
            1,
            format!("cannot offline {dev}: no valid replicas\n"),
        );
    }
    zp.leaves[leaf].state = LeafState::Offline;
    log.push(format!(
        "ZFS took {} offline; pool {} {}",
        zp.describe_leaf(pool, leaf),
        zp.name,
        zp.state()
    ));
    Ok(output(argv, 0, String::new(), String::new()))
}

fn online(
    zp: &mut Zpool,
    pool: &Pool,
    argv: &[String],
    words: &[&String],
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let [name, dev] = words else {
        return refuse(
            argv,
            2,
            "usage:\n\tonline [--power][-e] <pool> <device> ...\n".into(),
        );
    };
    if *name != &zp.name {
        return Ok(no_pool(argv, name));
    }
    let Some(leaf) = zp.leaf_named(dev) else {
        return refuse(
            argv,
            1,
            format!("cannot online {dev}: no such device in pool\n"),
        );
    };
    if zp.leaves[leaf].gone {
        return refuse(
            argv,
            0,
            format!(
                "warning: device '{dev}' onlined, but remains in faulted state\nuse 'zpool replace' to replace devices that are no longer present\n"
            ),
        );
    }
    zp.leaves[leaf].state = LeafState::Online;
    log.push(format!(
        "ZFS brought {} online",
        zp.describe_leaf(pool, leaf)
    ));
    Ok(output(argv, 0, String::new(), String::new()))
}

fn replace(
    zp: &mut Zpool,
    pool: &mut Pool,
    argv: &[String],
    words: &[&String],
    force: bool,
    now_ms: u64,
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let (name, old_arg, new_arg) = match words {
        [name, old] => (*name, *old, None),
        [name, old, new] => (*name, *old, Some(*new)),
        _ => {
            return refuse(
                argv,
                2,
                "usage:\n\treplace [-fsw] [-o property=value] <pool> <device> [new-device]\n"
                    .into(),
            );
        }
    };
    if name != &zp.name {
        return Ok(no_pool(argv, name));
    }
    let Some(old) = zp.leaf_named(old_arg) else {
        return refuse(
            argv,
            1,
            format!("cannot replace {old_arg}: no such device in pool\n"),
        );
    };
    let new_path = new_arg
        .cloned()
        .unwrap_or_else(|| zp.leaves[old].path.clone());
    let new_path = if new_path.starts_with('/') {
        new_path
    } else {
        format!("/dev/{new_path}")
    };
    let Some((drive, partition)) = pool.device(&new_path) else {
        return refuse(
            argv,
            1,
            format!(
                "cannot open '{new_path}': No such device or address\ncannot replace {old_arg} with {new_path}: no such device\n"
            ),
        );
    };
    if let Some(leaf) = zp.attached_leaf(drive)
        && (zp.leaves[leaf].partition == partition || partition.is_none())
    {
        return refuse(
            argv,
            1,
            format!(
                "invalid vdev specification\nuse '-f' to override the following errors:\n{new_path} is part of active pool '{}'\n",
                zp.name
            ),
        );
    }
    if zp.resilver.is_some() {
        return refuse(
            argv,
            1,
            format!(
                "cannot replace {old_arg} with {new_path}: the simulated pool resilvers one device at a time\n"
            ),
        );
    }
    let d = &pool.drives[drive];
    if d.superblock.is_some() && !force {
        return refuse(
            argv,
            1,
            format!(
                "invalid vdev specification\nuse '-f' to override the following errors:\n{new_path} is part of potentially active pool '{}'\n",
                d.superblock.as_deref().unwrap_or("")
            ),
        );
    }
    if partition.is_none() && d.partitions > 0 && !force {
        return refuse(
            argv,
            1,
            format!(
                "invalid vdev specification\nuse '-f' to override the following errors:\n{new_path} contains a partition table\n"
            ),
        );
    }
    let old_size = pool.drives[zp.leaves[old].drive].size_bytes;
    if d.size_bytes < old_size {
        return refuse(
            argv,
            1,
            format!("cannot replace {old_arg} with {new_path}: device is too small\n"),
        );
    }
    zp.start_replace(pool, old, drive, partition, now_ms, log);
    Ok(output(argv, 0, String::new(), String::new()))
}

/// `zpool status [-x] [-g] [POOL]`: the tree as ZFS prints it, read-only.
fn status(
    zp: &Zpool,
    pool: &Pool,
    argv: &[String],
    words: &[&String],
    only_bad: bool,
    guids: bool,
) -> CommandOutput {
    if let Some(name) = words.first()
        && *name != &zp.name
    {
        return no_pool(argv, name);
    }
    let leaves_clean = zp
        .leaves
        .iter()
        .filter(|l| !l.detached)
        .all(|l| l.state == LeafState::Online && l.counters.values().all(|v| *v == 0));
    if only_bad && leaves_clean && zp.state() == "ONLINE" && zp.resilver.is_none() {
        let text = if words.is_empty() {
            "all pools are healthy\n".to_string()
        } else {
            format!("pool '{}' is healthy\n", zp.name)
        };
        return output(argv, 0, text, String::new());
    }
    let mut out = String::new();
    let _ = writeln!(out, "  pool: {}", zp.name);
    let _ = writeln!(out, " state: {}", zp.state());
    if let Some(r) = zp.resilver {
        let _ = writeln!(
            out,
            "  scan: resilver in progress since {} ms (simulated)",
            r.started_ms
        );
    } else if let Some(last) = &zp.last_scan {
        let _ = writeln!(out, "  scan: {last}");
    }
    let _ = writeln!(out, "config:\n");
    let _ = writeln!(
        out,
        "\t{:<30} {:<8} {:>5} {:>5} {:>5}",
        "NAME", "STATE", "READ", "WRITE", "CKSUM"
    );
    let _ = writeln!(
        out,
        "\t{:<30} {:<8} {:>5} {:>5} {:>5}",
        zp.name,
        zp.state(),
        0,
        0,
        0
    );
    let top = format!("{}-0", zp.level.name());
    let _ = writeln!(
        out,
        "\t  {:<28} {:<8} {:>5} {:>5} {:>5}",
        top,
        zp.state(),
        0,
        0,
        0
    );
    for slot in 0..zp.slots {
        let in_slot: Vec<usize> = (0..zp.leaves.len())
            .filter(|&i| !zp.leaves[i].detached && zp.leaves[i].slot == slot)
            .collect();
        let indent = if in_slot.len() > 1 {
            let _ = writeln!(
                out,
                "\t    {:<26} {:<8} {:>5} {:>5} {:>5}",
                format!("replacing-{slot}"),
                "DEGRADED",
                0,
                0,
                0
            );
            "\t      "
        } else {
            "\t    "
        };
        for i in in_slot {
            let l = &zp.leaves[i];
            let name = if guids {
                l.guid.to_string()
            } else if l.gone {
                format!("{}/old", l.path.trim_start_matches("/dev/"))
            } else {
                pool.drives[l.drive]
                    .path(l.partition)
                    .trim_start_matches("/dev/")
                    .to_string()
            };
            let c = |k: &str| l.counters.get(k).copied().unwrap_or(0);
            let _ = write!(
                out,
                "{indent}{:<24} {:<8} {:>5} {:>5} {:>5}",
                name,
                l.state.word(),
                c("zfs.read_errors"),
                c("zfs.write_errors"),
                c("zfs.checksum_errors")
            );
            if l.resilvering && zp.resilver.is_some_and(|r| r.leaf == i) {
                out.push_str("  (resilvering)");
            }
            out.push('\n');
        }
    }
    out.push_str("\nerrors: No known data errors\n");
    output(argv, 0, out, String::new())
}

/// `zpool list [-H] [POOL]`.
fn list(zp: &Zpool, argv: &[String], words: &[&String], scripted: bool) -> CommandOutput {
    if let Some(name) = words.first()
        && *name != &zp.name
    {
        return no_pool(argv, name);
    }
    let mut out = String::new();
    if scripted {
        let _ = writeln!(out, "{}\t{}", zp.name, zp.state());
    } else {
        let _ = writeln!(out, "NAME    HEALTH");
        let _ = writeln!(out, "{:<7} {}", zp.name, zp.state());
    }
    output(argv, 0, out, String::new())
}

/// `sgdisk SRC -R DST` (`--replicate=DST`) and `sgdisk -G DST`
/// (`--randomize-guids`), the two a boot mirror's new disk needs.
pub(crate) fn sgdisk(
    pool: &mut Pool,
    argv: &[String],
    log: &mut Vec<String>,
) -> Result<CommandOutput> {
    let mut replicate_to: Option<String> = None;
    let mut randomize = false;
    let mut device: Option<String> = None;
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-R" | "--replicate" => match args.next() {
                Some(v) => replicate_to = Some(v.clone()),
                None => return refuse(argv, 1, "sgdisk: -R needs a destination device\n".into()),
            },
            "-G" | "--randomize-guids" => randomize = true,
            other if other.starts_with("--replicate=") => {
                replicate_to = Some(other["--replicate=".len()..].to_string());
            }
            other if other.starts_with("-R") && other.len() > 2 => {
                replicate_to = Some(other[2..].to_string());
            }
            other if other.starts_with('-') => bail!(
                "the simulator models `sgdisk SRC -R DST` and `sgdisk -G DEV` only, not `{}`; add a [[command]] with canned output",
                argv.join(" ")
            ),
            other => {
                if device.is_some() {
                    return refuse(argv, 1, "sgdisk: more than one device given\n".into());
                }
                device = Some(other.to_string());
            }
        }
    }
    let Some(device) = device else {
        return refuse(argv, 1, "sgdisk: no device given\n".into());
    };
    let whole = |path: &str, pool: &Pool| match pool.device(path) {
        Some((d, None)) => Some(d),
        _ => None,
    };
    let Some(dev) = whole(&device, pool) else {
        return refuse(
            argv,
            2,
            format!(
                "Problem opening {device} for reading! Error is 2.\nThe specified file does not exist!\n"
            ),
        );
    };
    match (replicate_to, randomize) {
        (Some(dst), false) => {
            let Some(to) = whole(&dst, pool) else {
                return refuse(
                    argv,
                    2,
                    format!("Problem opening {dst} for writing! Error is 2.\n"),
                );
            };
            let n = pool.drives[dev].partitions;
            if n == 0 {
                return refuse(
                    argv,
                    2,
                    format!(
                        "Problem reading disk in BasicMBRData::ReadMBRData()!\nWarning! Read error 22; strange behavior now likely!\n{device} has no GPT partition table to replicate\n"
                    ),
                );
            }
            if to == dev {
                return refuse(
                    argv,
                    1,
                    "sgdisk: source and destination are the same disk\n".into(),
                );
            }
            pool.drives[to].partitions = n;
            pool.drives[to].blank = false;
            log.push(format!(
                "sgdisk copied the partition table of {} ({n} partitions) onto {}",
                pool.describe(dev),
                pool.describe(to)
            ));
            Ok(output(
                argv,
                0,
                "The operation has completed successfully.\n".into(),
                String::new(),
            ))
        }
        (None, true) => {
            if pool.drives[dev].partitions == 0 {
                return refuse(argv, 2, format!("{device} has no GPT partition table\n"));
            }
            log.push(format!("sgdisk gave {} new GUIDs", pool.describe(dev)));
            Ok(output(
                argv,
                0,
                "The operation has completed successfully.\n".into(),
                String::new(),
            ))
        }
        _ => bail!(
            "the simulator models `sgdisk SRC -R DST` and `sgdisk -G DEV` one at a time, not `{}`; add a [[command]] with canned output",
            argv.join(" ")
        ),
    }
}
