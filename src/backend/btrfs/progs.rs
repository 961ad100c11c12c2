//! btrfs-progs outputs, parsed.
//!
//! Every parser takes the tool's whole standard output and returns either
//! what it says or an error naming the line it could not read: an output
//! that changed shape must stop the run, not read as healthy. Facts about
//! the formats (formats.md §3 and our own captures in
//! tests/fixtures/btrfs/, btrfs-progs 6.2 on kernels 6.1 and 6.18):
//!
//! - `filesystem show --raw`: `Label: 'x'  uuid: U` (or `Label: none`),
//!   `Total devices N FS bytes used B`, `devid N size S used U path P`,
//!   a missing device as `path <missing disk> MISSING` (6.2) or only
//!   `*** Some devices missing` (4.x);
//! - `device stats`: `[P].write_io_errs   N`, the name padded with spaces
//!   (one fewer in old versions: split on `].` and whitespace), `P` is
//!   `<missing disk>` or `devid:N` for a missing device;
//! - `--format json device stats`: `"device-stats"` entries whose numbers
//!   are JSON strings in 6.2 (`"devid": "1"`), numbers in some others;
//! - `filesystem df --raw`: `Data, RAID1: total=N, used=N`, then warnings;
//! - `replace status -1`: one line (without `-1` it never ends);
//! - `balance status`: exit 0 "No balance found", exit 1 running/paused
//!   with `N out of about M chunks balanced (K considered), P% left`;
//! - `scrub status`: the 5.1+ `Key: value` form or the 4.x sentences,
//!   which mail archives wrap mid-line.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::Value;

use crate::backend::btrfs::profile::{Allocation, ChunkKind, Profile};
use crate::backend::btrfs::{ErrorStats, collect_stats};

/// `btrfs filesystem show --raw` for one file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsShow {
    pub label: Option<String>,
    pub uuid: String,
    pub total_devices: u64,
    pub devices: Vec<ShowDevice>,
    /// `*** Some devices missing`: a device is missing that is not listed.
    pub some_missing: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShowDevice {
    pub devid: u64,
    /// Bytes (`--raw`); 0 for a missing device.
    pub size: u64,
    pub used: u64,
    /// `None` for a missing device (`<missing disk>`).
    pub path: Option<String>,
    pub missing: bool,
}

/// The marker btrfs-progs prints in place of a missing device's path.
const MISSING_DISK: &str = "<missing disk>";

pub fn parse_show(text: &str) -> Result<FsShow, String> {
    let mut show: Option<FsShow> = None;
    for (n, raw) in text.lines().enumerate() {
        let at = |why: String| format!("line {}: {why}: `{}`", n + 1, raw.trim());
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("Label:") {
            if show.is_some() {
                return Err(at("a second file system: ask about one mount point".into()));
            }
            let (label, uuid) = rest
                .rsplit_once("uuid:")
                .ok_or_else(|| at("no `uuid:`".into()))?;
            let label = label.trim();
            let label = if label == "none" {
                None
            } else {
                Some(
                    label
                        .strip_prefix('\'')
                        .and_then(|l| l.strip_suffix('\''))
                        .ok_or_else(|| at("the label is not quoted".into()))?
                        .to_string(),
                )
            };
            show = Some(FsShow {
                label,
                uuid: uuid.trim().to_string(),
                total_devices: 0,
                devices: Vec::new(),
                some_missing: false,
            });
            continue;
        }
        let Some(fs) = show.as_mut() else {
            return Err(at("expected `Label:` first".into()));
        };
        if let Some(rest) = line.strip_prefix("Total devices") {
            let count = rest.split_whitespace().next().unwrap_or("");
            fs.total_devices = count
                .parse()
                .map_err(|_| at(format!("`{count}` is not a device count")))?;
        } else if let Some(rest) = line.strip_prefix("devid") {
            fs.devices.push(parse_show_device(rest).map_err(at)?);
        } else if line.starts_with("***") && line.contains("missing") {
            fs.some_missing = true;
        } else {
            return Err(at("not a line of `btrfs filesystem show`".into()));
        }
    }
    let fs = show.ok_or("no file system in the output (no `Label:` line)")?;
    if fs.total_devices == 0 {
        return Err(format!("file system {}: no `Total devices` line", fs.uuid));
    }
    Ok(fs)
}

/// `   1 size 268435456 used 109051904 path /dev/nvme0n1[ MISSING]`
fn parse_show_device(rest: &str) -> Result<ShowDevice, String> {
    let (head, path) = rest
        .split_once(" path ")
        .ok_or_else(|| "no ` path `".to_string())?;
    let words: Vec<&str> = head.split_whitespace().collect();
    let [devid, "size", size, "used", used] = words[..] else {
        return Err("not `devid N size S used U path P`".into());
    };
    let devid: u64 = devid
        .parse()
        .map_err(|_| format!("devid `{devid}` is not a number"))?;
    let number = |what: &str, text: &str| -> Result<u64, String> {
        parse_size(text).ok_or_else(|| format!("{what} `{text}` is not a size"))
    };
    let path = path.trim();
    // btrfs-progs prints the path it could not open, then ` MISSING`; a
    // device the kernel never saw has an empty path (`path  MISSING`).
    let (path, missing) = match path.strip_suffix(" MISSING") {
        Some(path) => (path.trim(), true),
        None if path == "MISSING" => ("", true),
        None => (path, false),
    };
    Ok(ShowDevice {
        devid,
        size: number("size", size)?,
        used: number("used", used)?,
        path: (path != MISSING_DISK && !path.is_empty()).then(|| path.to_string()),
        missing: missing || path == MISSING_DISK,
    })
}

/// One device of `btrfs device usage --raw MNT`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceUsage {
    pub devid: u64,
    /// `None` for a missing device (btrfs-progs prints `missing`).
    pub path: Option<String>,
    /// The size btrfs keeps for the device (its dev item's total bytes):
    /// what its chunks take plus what is unallocated. Known for a missing
    /// device too, whose `Device size` (the block device's) is 0.
    pub size: u64,
}

/// `btrfs device usage --raw MNT`: a `PATH, ID: N` line per device, then
/// `Name: bytes` lines (`Device size`, `Device slack`, one per chunk
/// profile, `Unallocated`). Anything else is refused.
pub fn parse_device_usage(text: &str) -> Result<Vec<DeviceUsage>, String> {
    let mut out: Vec<DeviceUsage> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let at = |why: &str| format!("line {}: {why}: `{}`", n + 1, raw.trim());
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if !raw.starts_with(char::is_whitespace) {
            let (path, id) = line
                .rsplit_once(", ID:")
                .ok_or_else(|| at("not `PATH, ID: N`"))?;
            let devid = id
                .trim()
                .parse()
                .map_err(|_| at("the ID is not a number"))?;
            out.push(DeviceUsage {
                devid,
                path: (path != "missing" && !path.is_empty()).then(|| path.to_string()),
                size: 0,
            });
            continue;
        }
        let device = out
            .last_mut()
            .ok_or_else(|| at("a value before any `PATH, ID: N` line"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| at("not `Name: bytes`"))?;
        let bytes = value
            .trim()
            .parse::<u64>()
            .map_err(|_| at("not a byte count (was `--raw` given?)"))?;
        if matches!(name, "Device size" | "Device slack") {
            continue;
        }
        device.size = device
            .size
            .checked_add(bytes)
            .ok_or_else(|| at("the sizes add up past 2^64"))?;
    }
    if out.is_empty() {
        return Err("no device in the output (no `PATH, ID: N` line)".into());
    }
    Ok(out)
}

/// Bytes from `--raw` (`268435456`) or from the human form of older
/// captures (`5.46TiB`, `698.64GiB`, `0.00B`).
fn parse_size(text: &str) -> Option<u64> {
    crate::units::parse_size(text).ok()
}

/// One device's counters from `btrfs device stats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceStats {
    /// `None` for a missing device.
    pub path: Option<String>,
    /// Given by the JSON form and for missing devices (`[devid:2]`).
    pub devid: Option<u64>,
    pub stats: ErrorStats,
}

/// The text form: five `[path].counter value` lines per device.
pub fn parse_device_stats(text: &str) -> Result<Vec<DeviceStats>, String> {
    let mut groups: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let parsed = line.strip_prefix('[').and_then(|l| l.rsplit_once("]."));
        let Some((device, rest)) = parsed else {
            return Err(format!(
                "line {}: not `[device].counter value`: `{line}`",
                n + 1
            ));
        };
        let mut words = rest.split_whitespace();
        let (Some(name), Some(value), None) = (words.next(), words.next(), words.next()) else {
            return Err(format!("line {}: not `counter value`: `{line}`", n + 1));
        };
        match groups.last_mut() {
            Some((last, pairs)) if last == device => pairs.push((name.into(), value.into())),
            _ => groups.push((device.to_string(), vec![(name.into(), value.into())])),
        }
    }
    if groups.is_empty() {
        return Err("no device in the output".into());
    }
    groups
        .into_iter()
        .map(|(device, pairs)| {
            let stats = collect_stats(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())))
                .map_err(|why| format!("device `{device}`: {why}"))?;
            let devid = match device.strip_prefix("devid:") {
                Some(id) => Some(
                    id.parse()
                        .map_err(|_| format!("device `{device}`: `{id}` is not a devid"))?,
                ),
                None => None,
            };
            let path = (devid.is_none() && device != MISSING_DISK).then_some(device);
            Ok(DeviceStats { path, devid, stats })
        })
        .collect()
}

/// The JSON form (`btrfs --format json device stats MNT`).
pub fn parse_device_stats_json(text: &str) -> Result<Vec<DeviceStats>, String> {
    let value: Value = serde_json::from_str(text).map_err(|err| format!("not JSON: {err}"))?;
    let entries = value
        .get("device-stats")
        .and_then(Value::as_array)
        .ok_or("no `device-stats` array")?;
    if entries.is_empty() {
        return Err("`device-stats` is empty".into());
    }
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let at = |why: String| format!("`device-stats[{i}]`: {why}");
            let device = entry
                .get("device")
                .and_then(Value::as_str)
                .ok_or_else(|| at("no `device`".into()))?;
            let devid = json_u64(entry, "devid").map_err(at)?;
            let mut pairs = Vec::new();
            for name in [
                "write_io_errs",
                "read_io_errs",
                "flush_io_errs",
                "corruption_errs",
                "generation_errs",
            ] {
                pairs.push((name, json_u64(entry, name).map_err(at)?.to_string()));
            }
            let stats = collect_stats(pairs.iter().map(|(a, b)| (*a, b.as_str()))).map_err(at)?;
            Ok(DeviceStats {
                path: (device != MISSING_DISK).then(|| device.to_string()),
                devid: Some(devid),
                stats,
            })
        })
        .collect()
}

/// A number given as a JSON number or as a string of digits.
fn json_u64(entry: &Value, key: &str) -> Result<u64, String> {
    match entry.get(key) {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => return Err(format!("no `{key}`")),
    }
    .ok_or_else(|| format!("`{key}` is {}, not a count", entry[key]))
}

/// `btrfs filesystem df --raw`: every allocation but GlobalReserve.
pub fn parse_df(text: &str) -> Result<Vec<Allocation>, String> {
    let line_re = Regex::new(r"^([A-Za-z+]+), ?([A-Za-z0-9]+): total=(\d+), used=(\d+)$")
        .expect("constant regex");
    let mut found = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        // The df part ends where `filesystem usage` output would begin.
        if line.is_empty() || line.starts_with("WARNING:") {
            continue;
        }
        if line.starts_with("GlobalReserve,") {
            continue;
        }
        let Some(caps) = line_re.captures(line) else {
            return Err(format!(
                "line {}: not `Kind, profile: total=N, used=N` (run with --raw): `{line}`",
                n + 1
            ));
        };
        let kind = ChunkKind::parse(&caps[1])
            .ok_or_else(|| format!("line {}: unknown chunk kind `{}`", n + 1, &caps[1]))?;
        let profile = Profile::parse(&caps[2])
            .ok_or_else(|| format!("line {}: unknown profile `{}`", n + 1, &caps[2]))?;
        let number = |i: usize| -> Result<u64, String> {
            caps[i]
                .parse()
                .map_err(|_| format!("line {}: `{}` is too large", n + 1, &caps[i]))
        };
        found.push(Allocation {
            kind,
            profile,
            total_bytes: number(3)?,
            used_bytes: number(4)?,
        });
    }
    if found.is_empty() {
        return Err("no allocation in the output".into());
    }
    Ok(found)
}

/// `btrfs replace status -1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplaceStatus {
    NeverStarted,
    /// Progress in tenths of a percent (`16.0% done` → 160).
    Running {
        permille: u32,
        write_errs: u64,
        read_errs: u64,
    },
    Finished {
        write_errs: u64,
        read_errs: u64,
    },
    Canceled {
        write_errs: u64,
        read_errs: u64,
    },
    Suspended {
        write_errs: u64,
        read_errs: u64,
    },
}

pub fn parse_replace_status(text: &str) -> Result<ReplaceStatus, String> {
    // `replace start` prints a TRIM line first; the status is the last line.
    let line = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .ok_or("empty output")?;
    if line == "Never started" {
        return Ok(ReplaceStatus::NeverStarted);
    }
    let errs_re =
        Regex::new(r", (\d+) write errs, (\d+) uncorr\. read errs$").expect("constant regex");
    let caps = errs_re
        .captures(line)
        .ok_or_else(|| format!("no `, N write errs, M uncorr. read errs`: `{line}`"))?;
    let count = |i: usize| -> Result<u64, String> {
        caps[i]
            .parse()
            .map_err(|_| format!("`{}` is too large: `{line}`", &caps[i]))
    };
    let (write_errs, read_errs) = (count(1)?, count(2)?);
    let head = &line[..caps.get(0).map_or(0, |m| m.start())];
    if let Some(percent) = head.strip_suffix("% done") {
        let (whole, tenth) = percent.split_once('.').unwrap_or((percent, "0"));
        let whole: u32 = whole
            .parse()
            .map_err(|_| format!("`{percent}%` is not a percentage: `{line}`"))?;
        let tenth: u32 = tenth
            .parse()
            .ok()
            .filter(|t| *t < 10)
            .ok_or_else(|| format!("`{percent}%` is not a percentage: `{line}`"))?;
        if whole > 100 {
            return Err(format!("`{percent}%` is over 100: `{line}`"));
        }
        return Ok(ReplaceStatus::Running {
            permille: whole * 10 + tenth,
            write_errs,
            read_errs,
        });
    }
    if head.starts_with("Started on ") {
        if head.contains(", finished on ") {
            return Ok(ReplaceStatus::Finished {
                write_errs,
                read_errs,
            });
        }
        if head.contains(", canceled on ") {
            return Ok(ReplaceStatus::Canceled {
                write_errs,
                read_errs,
            });
        }
        if head.contains(", suspended on ") {
            return Ok(ReplaceStatus::Suspended {
                write_errs,
                read_errs,
            });
        }
    }
    Err(format!("not a replace status: `{line}`"))
}

/// `btrfs balance status MNT`, with its exit code (0: none, 1: running or
/// paused, anything else: the status could not be read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BalanceStatus {
    None,
    Running {
        paused: bool,
        completed: u64,
        expected: u64,
    },
}

pub fn parse_balance_status(text: &str, exit_code: i32) -> Result<BalanceStatus, String> {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    match exit_code {
        0 if first.starts_with("No balance found on ") => Ok(BalanceStatus::None),
        0 => Err(format!("exit 0 but not `No balance found`: `{first}`")),
        1 => {
            let paused = if first.starts_with("Balance on ") && first.contains(" is running") {
                false
            } else if first.starts_with("Balance on ") && first.ends_with(" is paused") {
                true
            } else {
                return Err(format!(
                    "exit 1 but not `Balance on … is running|paused`: `{first}`"
                ));
            };
            let re = Regex::new(r"^(\d+) out of about (\d+) chunks balanced \((\d+) considered\)")
                .expect("constant regex");
            let progress = text
                .lines()
                .map(str::trim)
                .find_map(|l| re.captures(l))
                .ok_or("no `N out of about M chunks balanced` line")?;
            let number = |i: usize| -> Result<u64, String> {
                progress[i]
                    .parse()
                    .map_err(|_| format!("`{}` is too large", &progress[i]))
            };
            Ok(BalanceStatus::Running {
                paused,
                completed: number(1)?,
                expected: number(2)?,
            })
        }
        code => Err(format!(
            "`btrfs balance status` failed (exit {code}): `{first}`"
        )),
    }
}

/// `btrfs scrub status MNT`, either format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrubStatus {
    pub state: ScrubState,
    /// `read`, `super`, `verify`, `csum`, ... as the summary names them;
    /// empty for "no errors found".
    pub errors: BTreeMap<String, u64>,
    pub corrected: Option<u64>,
    pub uncorrectable: Option<u64>,
    pub unverified: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScrubState {
    NeverRun,
    Running,
    Finished,
    Aborted,
    Interrupted,
}

impl ScrubStatus {
    /// Errors found, corrected or not.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum::<u64>() + self.uncorrectable.unwrap_or(0)
    }
}

pub fn parse_scrub_status(text: &str) -> Result<ScrubStatus, String> {
    if text.contains("no stats available") {
        return Ok(ScrubStatus {
            state: ScrubState::NeverRun,
            errors: BTreeMap::new(),
            corrected: None,
            uncorrectable: None,
            unverified: None,
        });
    }
    let field = |name: &str| -> Option<String> {
        text.lines().find_map(|l| {
            l.trim()
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix(':'))
                .map(|v| v.trim().to_string())
        })
    };
    let number_field = |name: &str| -> Result<Option<u64>, String> {
        match field(name) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("`{name}: {v}` is not a count")),
        }
    };
    if let Some(status) = field("Status") {
        let state = match status.as_str() {
            "running" => ScrubState::Running,
            "finished" => ScrubState::Finished,
            "aborted" => ScrubState::Aborted,
            "interrupted" => ScrubState::Interrupted,
            other => return Err(format!("unknown scrub status `{other}`")),
        };
        if let Some(summary) = field("Error summary") {
            let errors = if summary == "no errors found" {
                BTreeMap::new()
            } else {
                pairs(&summary).map_err(|why| format!("`Error summary: {summary}`: {why}"))?
            };
            return Ok(ScrubStatus {
                state,
                errors,
                corrected: number_field("Corrected")?,
                uncorrectable: number_field("Uncorrectable")?,
                unverified: number_field("Unverified")?,
            });
        }
        // `-R`: one raw `name: count` line per field.
        if field("read_errors").is_none() {
            return Err("no `Error summary:` line and no raw `read_errors:`".into());
        }
        let mut errors = BTreeMap::new();
        for (raw, name) in [
            ("read_errors", "read"),
            ("super_errors", "super"),
            ("verify_errors", "verify"),
            ("csum_errors", "csum"),
        ] {
            let count = number_field(raw)?.ok_or_else(|| format!("no raw `{raw}:`"))?;
            if count > 0 {
                errors.insert(name.to_string(), count);
            }
        }
        return Ok(ScrubStatus {
            state,
            errors,
            corrected: number_field("corrected_errors")?,
            uncorrectable: number_field("uncorrectable_errors")?,
            unverified: number_field("unverified_errors")?,
        });
    }
    // The 4.x sentences. Archives wrap them, so read the text as one line.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if !flat.contains("scrub status for ") {
        return Err("neither `Status:` nor `scrub status for`: not a scrub status".into());
    }
    let state = if flat.contains(", running for ") {
        ScrubState::Running
    } else if flat.contains(" and finished after ") {
        ScrubState::Finished
    } else if flat.contains(" and was aborted after ") {
        ScrubState::Aborted
    } else if flat.contains(" and was interrupted after ") {
        ScrubState::Interrupted
    } else {
        return Err(
            "no `running for`, `finished after`, `aborted after` or `interrupted after`".into(),
        );
    };
    let errors = match flat.split_once("error details: ") {
        Some((_, rest)) => {
            let details: Vec<&str> = rest
                .split_whitespace()
                .take_while(|w| w.contains('='))
                .collect();
            pairs(&details.join(" ")).map_err(|why| format!("`error details`: {why}"))?
        }
        None if flat.contains(" with 0 errors") => BTreeMap::new(),
        None => return Err("errors counted but no `error details:`".into()),
    };
    let count = |label: &str| -> Result<Option<u64>, String> {
        let re = Regex::new(&format!(r"{label} errors: (\d+)")).expect("constant regex");
        match re.captures(&flat) {
            None => Ok(None),
            Some(c) => c[1]
                .parse()
                .map(Some)
                .map_err(|_| format!("`{}` is too large", &c[1])),
        }
    };
    Ok(ScrubStatus {
        state,
        errors,
        corrected: count("corrected")?,
        uncorrectable: count("uncorrectable")?,
        unverified: count("unverified")?,
    })
}

/// `read=1 super=0 csum=239` → the pairs.
fn pairs(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut found = BTreeMap::new();
    for word in text.split_whitespace() {
        let (name, value) = word
            .split_once('=')
            .ok_or_else(|| format!("`{word}` is not `name=count`"))?;
        let value: u64 = value
            .parse()
            .map_err(|_| format!("`{word}` is not `name=count`"))?;
        found.insert(name.to_string(), value);
    }
    if found.is_empty() {
        return Err("no `name=count`".into());
    }
    Ok(found)
}
