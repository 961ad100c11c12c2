//! md's sysfs attributes: the authoritative array and member state.
//!
//! Reads /sys/block/mdX/md/ and its `dev-<kname>/` member directories. Each
//! attribute is one small file read once per look. Anything that should be
//! there and cannot be read or parsed becomes a `Problem` with a fail-closed
//! value (state `unknown`, every slot degraded, no membership), never a
//! healthy-looking default.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::backend::disk::read_attr;
use crate::health::model::{ArrayHealth, MemberState, Membership, Problem, SyncProgress};

/// What sysfs says about one array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayLook {
    pub health: ArrayHealth,
    /// Sorted by kernel name.
    pub members: Vec<MemberLook>,
}

/// One `dev-<kname>/` directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberLook {
    /// The member's kernel name: a whole disk (`nvme0n1`) or a partition (`sda1`).
    pub kname: String,
    /// `None` when `state` or `slot` could not be read (a problem is recorded).
    pub membership: Option<Membership>,
    /// `md.errors` and `md.bad_blocks`, each only when readable.
    pub counters: BTreeMap<String, u64>,
}

/// Levels with a redundancy group (`degraded`, `sync_action`, ...). raid0,
/// linear and containers have none of those files, and that is not a problem.
fn is_redundant(level: &str) -> bool {
    matches!(level, "raid1" | "raid4" | "raid5" | "raid6" | "raid10")
}

/// Read /sys/block/<name>/md. Err only when the directory itself cannot be
/// listed: then the array cannot be read at all.
pub fn read_array(md_dir: &Path, name: &str, problems: &mut Vec<Problem>) -> Result<ArrayLook> {
    let entries =
        fs::read_dir(md_dir).with_context(|| format!("cannot list `{}`", md_dir.display()))?;
    let mut member_names = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot list `{}`", md_dir.display()))?;
        if let Some(kname) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.strip_prefix("dev-"))
        {
            member_names.push(kname.to_string());
        }
    }
    member_names.sort();

    let mut attrs = Attrs {
        dir: md_dir,
        subject: name,
        problems,
    };
    let state = attrs.required("md", "array_state", parse_word);
    let level = attrs.required("md", "level", |t| Ok(t.to_string()));
    let raid_disks = attrs.required("md", "raid_disks", parse_raid_disks);
    let redundant = level.as_deref().is_some_and(is_redundant);
    let degraded = if redundant {
        attrs.required("md", "degraded", parse_u32)
    } else {
        attrs.optional("md", "degraded", parse_u32).flatten()
    };
    let action = if redundant {
        attrs.required("md", "sync_action", parse_word)
    } else {
        attrs.optional("md", "sync_action", parse_word).flatten()
    };
    let sync = match action.as_deref() {
        None | Some("idle") | Some("frozen") => None,
        Some(action) => {
            let (done, total) = attrs
                .required("md", "sync_completed", parse_sync_completed)
                .unwrap_or((0, 0));
            let speed_kib = attrs
                .optional("md", "sync_speed", parse_speed)
                .flatten()
                .flatten();
            Some(SyncProgress {
                action: action.to_string(),
                done,
                total,
                speed_kib,
            })
        }
    };
    let raid_disks = raid_disks.unwrap_or(0);
    let health = ArrayHealth {
        name: name.to_string(),
        level: level.unwrap_or_else(|| "unknown".into()),
        state: state.unwrap_or_else(|| "unknown".into()),
        raid_disks,
        // Fail closed: a redundant array whose `degraded` cannot be read
        // counts as missing every slot.
        degraded: degraded.unwrap_or(if redundant { raid_disks } else { 0 }),
        sync,
        // Filled by `facts::annotate`.
        running: false,
        redundancy_left: 0,
    };

    let mut members = Vec::with_capacity(member_names.len());
    for kname in member_names {
        let dir = md_dir.join(format!("dev-{kname}"));
        let before = attrs.problems.len();
        let member = read_member(&dir, kname, attrs.problems);
        // md unbinds a removed member at once (mdstat no longer lists it)
        // but deletes its `dev-<kname>/` directory later, from a work
        // queue: read in that window, the directory was listed and its
        // files are gone. A member whose directory has gone by the end of
        // the read has left the array; it is not an unreadable member.
        if attrs.problems.len() > before && !dir.exists() {
            attrs.problems.truncate(before);
            continue;
        }
        members.push(member);
    }
    Ok(ArrayLook { health, members })
}

fn read_member(dir: &Path, kname: String, problems: &mut Vec<Problem>) -> MemberLook {
    let mut attrs = Attrs {
        dir,
        subject: &kname,
        problems,
    };
    let flags = attrs.required("md", "state", |t| Ok(parse_flags(t)));
    let slot = attrs.required("md", "slot", parse_slot);
    let mut counters = BTreeMap::new();
    if let Some(errors) = attrs.required("counters", "errors", parse_u64) {
        counters.insert("md.errors".to_string(), errors);
    }
    if let Some(count) = attrs.required("counters", "bad_blocks", count_bad_blocks) {
        counters.insert("md.bad_blocks".to_string(), count);
    }
    let membership = match (flags, slot) {
        (Some(flags), Some(role)) => Some(Membership {
            state: member_state(&flags, role),
            role,
            flags,
            name: Some(kname.clone()),
        }),
        _ => None,
    };
    MemberLook {
        kname,
        membership,
        counters,
    }
}

/// The member's role from its raw flags and slot:
/// `faulty` → Faulty; `in_sync` → InSync; a role or the `replacement` flag
/// without `in_sync` → Rebuilding (md shows a recovering device as `spare`
/// with a numeric slot); anything else → Spare.
pub fn member_state(flags: &[String], slot: Option<u32>) -> MemberState {
    let has = |flag: &str| flags.iter().any(|f| f == flag);
    if has("faulty") {
        MemberState::Faulty
    } else if has("in_sync") {
        MemberState::InSync
    } else if slot.is_some() || has("replacement") {
        MemberState::Rebuilding
    } else {
        MemberState::Spare
    }
}

/// Reads attribute files of one directory and records problems.
struct Attrs<'a> {
    dir: &'a Path,
    subject: &'a str,
    problems: &'a mut Vec<Problem>,
}

impl Attrs<'_> {
    /// A file that must exist: missing, unreadable or unparsable → problem.
    fn required<T>(
        &mut self,
        probe: &str,
        file: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        self.optional(probe, file, parse).unwrap_or_else(|| {
            self.problem(
                probe,
                format!("`{}` is missing", self.dir.join(file).display()),
            );
            None
        })
    }

    /// A file that may be absent (`None`); unreadable or unparsable →
    /// problem and `Some(None)`.
    fn optional<T>(
        &mut self,
        probe: &str,
        file: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        let path = self.dir.join(file);
        let text = match read_attr(&path) {
            Ok(Some(text)) => text,
            Ok(None) => return None,
            Err(err) => {
                self.problem(probe, format!("cannot read `{}`: {err}", path.display()));
                return Some(None);
            }
        };
        match parse(&text) {
            Ok(value) => Some(Some(value)),
            Err(why) => {
                self.problem(probe, format!("cannot parse `{}`: {why}", path.display()));
                Some(None)
            }
        }
    }

    fn problem(&mut self, probe: &str, message: String) {
        self.problems.push(Problem {
            probe: probe.to_string(),
            subject: self.subject.to_string(),
            message,
        });
    }
}

fn parse_word(text: &str) -> Result<String, String> {
    let word = text.trim();
    if word.is_empty() || word.contains(char::is_whitespace) {
        return Err(format!("`{text}` is not one word"));
    }
    Ok(word.to_string())
}

fn parse_u64(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

fn parse_u32(text: &str) -> Result<u32, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))
}

/// `2`, `11 (10)` during a reshape (new (old): the new count is what the
/// array should have), or empty for a container.
pub fn parse_raid_disks(text: &str) -> Result<u32, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    let (new, old) = match text.split_once(' ') {
        Some((new, old)) => (new, Some(old)),
        None => (text, None),
    };
    if let Some(old) = old {
        let inner = old.strip_prefix('(').and_then(|o| o.strip_suffix(')'));
        if inner.and_then(|o| o.parse::<u32>().ok()).is_none() {
            return Err(format!("`{text}` is not `N` or `N (M)`"));
        }
    }
    new.parse()
        .map_err(|_| format!("`{text}` is not `N` or `N (M)`"))
}

/// `done / total` in sectors; `none` and `delayed` have no numbers yet (0/0).
pub fn parse_sync_completed(text: &str) -> Result<(u64, u64), String> {
    let text = text.trim();
    if text == "none" || text == "delayed" {
        return Ok((0, 0));
    }
    let (done, total) = text
        .split_once('/')
        .ok_or_else(|| format!("`{text}` is not `done / total`"))?;
    let parse = |n: &str| {
        n.trim()
            .parse::<u64>()
            .map_err(|_| format!("`{text}` is not `done / total`"))
    };
    Ok((parse(done)?, parse(total)?))
}

/// KiB/s, or `none` when nothing runs.
pub fn parse_speed(text: &str) -> Result<Option<u64>, String> {
    match text.trim() {
        "none" => Ok(None),
        other => parse_u64(other).map(Some),
    }
}

/// `none` or a role number.
pub fn parse_slot(text: &str) -> Result<Option<u32>, String> {
    match text.trim() {
        "none" => Ok(None),
        other => parse_u32(other).map(Some),
    }
}

/// `in_sync,write_error,want_replacement` → each flag, in kernel order.
pub fn parse_flags(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// Lines of `<sector> <length>`; the count of recorded bad ranges.
pub fn count_bad_blocks(text: &str) -> Result<u64, String> {
    let mut count = 0;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split_whitespace();
        let ok = matches!(
            (
                parts.next().map(str::parse::<u64>),
                parts.next().map(str::parse::<u64>),
                parts.next()
            ),
            (Some(Ok(_)), Some(Ok(_)), None)
        );
        if !ok {
            return Err(format!("line `{line}` is not `<sector> <length>`"));
        }
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raid_disks_shapes() {
        for (text, want) in [
            ("2", Ok(2)),
            ("2\n", Ok(2)),
            ("11 (10)", Ok(11)),
            ("", Ok(0)),
            ("x", Err(())),
            ("11 (x)", Err(())),
            ("11 10", Err(())),
        ] {
            assert_eq!(parse_raid_disks(text).map_err(|_| ()), want, "{text:?}");
        }
    }

    #[test]
    fn sync_completed_shapes() {
        for (text, want) in [
            ("57344 / 129024", Ok((57344, 129024))),
            ("1569888 / 2093056", Ok((1569888, 2093056))),
            ("none", Ok((0, 0))),
            ("delayed", Ok((0, 0))),
            ("57344/129024", Ok((57344, 129024))),
            ("57344", Err(())),
            ("a / b", Err(())),
        ] {
            assert_eq!(parse_sync_completed(text).map_err(|_| ()), want, "{text:?}");
        }
    }

    #[test]
    fn speed_slot_flags_bad_blocks() {
        assert_eq!(parse_speed("3427"), Ok(Some(3427)));
        assert_eq!(parse_speed("none"), Ok(None));
        assert!(parse_speed("fast").is_err());
        assert_eq!(parse_slot("none"), Ok(None));
        assert_eq!(parse_slot("1"), Ok(Some(1)));
        assert!(parse_slot("-1").is_err());
        assert_eq!(
            parse_flags("in_sync,write_error,want_replacement"),
            ["in_sync", "write_error", "want_replacement"]
        );
        assert_eq!(parse_flags(""), Vec::<String>::new());
        assert_eq!(count_bad_blocks("65536 512\n66048 512\n"), Ok(2));
        assert_eq!(count_bad_blocks(""), Ok(0));
        assert!(count_bad_blocks("65536\n").is_err());
        assert!(count_bad_blocks("1 2 3\n").is_err());
    }

    #[test]
    fn member_states() {
        let flags = |s: &str| parse_flags(s);
        for (state, slot, want) in [
            ("in_sync", Some(0), MemberState::InSync),
            (
                "in_sync,write_error,want_replacement",
                Some(0),
                MemberState::InSync,
            ),
            ("faulty", None, MemberState::Faulty),
            ("faulty,in_sync", Some(1), MemberState::Faulty),
            ("spare", Some(1), MemberState::Rebuilding),
            ("", Some(1), MemberState::Rebuilding),
            ("spare,replacement", None, MemberState::Rebuilding),
            ("spare", None, MemberState::Spare),
            ("spare,want_replacement", None, MemberState::Spare),
        ] {
            assert_eq!(member_state(&flags(state), slot), want, "{state} {slot:?}");
        }
    }
}
