//! `zpool status [-p] [-P]` text, OpenZFS 0.7 to 2.3 (what Debian 12 and
//! Ubuntu ship have no JSON).
//!
//! ```text
//!   pool: tank
//!  state: DEGRADED
//! status: …            (continuation lines indented)
//!   scan: resilver in progress since …
//!         1.35G scanned out of 347G at 126M/s, 0h46m to go
//! config:
//!
//!         NAME           STATE     READ WRITE CKSUM
//!         tank           DEGRADED     0     0     0
//!           mirror-0     DEGRADED     0     0     0
//!             sdb        FAULTED      3   120     0  too many errors
//!         spares
//!           sdz          AVAIL
//!
//! errors: No known data errors
//! ```
//!
//! The tree is read from indentation (a TAB then two spaces a level, or
//! spaces only in pasted outputs: tabs count as 8 columns). Class headers
//! (`logs`, `cache`, `spares`, `special`, `dedup`) sit at the pool's own
//! depth with no state. Several pools follow each other.

use crate::backend::zfs::{
    Pool, Scan, ScanFunction, ScanState, Vdev, VdevKind, VdevState, parse_count,
};

const CLASS_HEADERS: [&str; 5] = ["logs", "cache", "spares", "special", "dedup"];

pub fn parse(text: &str) -> Result<Vec<Pool>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut pools = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        if line.is_empty() || line == "all pools are healthy" {
            i += 1;
            continue;
        }
        if line.starts_with("pool:") {
            let (pool, next) = parse_pool(&lines, i)?;
            pools.push(pool);
            i = next;
            continue;
        }
        return Err(format!("line {}: expected `pool:`: `{line}`", i + 1));
    }
    if pools.is_empty() {
        return Err("no pool in the output".into());
    }
    Ok(pools)
}

/// `key: value` headers with continuation lines, until `config:`.
fn header(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.trim_start().split_once(':')?;
    matches!(
        key,
        "pool"
            | "state"
            | "status"
            | "action"
            | "see"
            | "scan"
            | "config"
            | "errors"
            | "remove"
            | "checkpoint"
            | "expand"
    )
    .then(|| (key, value.trim()))
}

fn parse_pool(lines: &[&str], start: usize) -> Result<(Pool, usize), String> {
    let mut name = None;
    let mut state = None;
    let mut scan_lines: Vec<&str> = Vec::new();
    let mut data_errors = None;
    let mut vdevs = None;
    let mut permanent = false;
    let mut key = "";
    let mut i = start;
    while i < lines.len() {
        let raw = lines[i];
        let at = |why: String| format!("line {}: {why}: `{}`", i + 1, raw.trim());
        if raw.trim().is_empty() {
            i += 1;
            continue;
        }
        if let Some((k, value)) = header(raw) {
            match k {
                "pool" if i != start => break,
                "pool" => name = Some(value.to_string()),
                "state" => state = Some(VdevState::parse(value)),
                "scan" => scan_lines.push(value),
                "errors" => {
                    permanent = value.starts_with("Permanent errors have been detected");
                    data_errors = Some(parse_data_errors(value).map_err(at)?);
                }
                "config" => {
                    let (tree, next) = parse_config(lines, i + 1)?;
                    vdevs = Some(tree);
                    key = "config";
                    i = next;
                    continue;
                }
                _ => {}
            }
            key = k;
            i += 1;
            continue;
        }
        match key {
            "scan" => scan_lines.push(raw.trim()),
            // `-v`: one damaged file (or `<metadata>:<0x..>`) per line.
            "errors" => {
                if let Some(count) = data_errors.as_mut() {
                    *count += 1;
                }
            }
            "status" | "action" | "see" | "remove" | "checkpoint" | "expand" => {}
            _ => return Err(at("not a line of `zpool status`".into())),
        }
        i += 1;
    }
    // "Permanent errors have been detected" counts at least one.
    if let Some(0) = data_errors
        && permanent
    {
        data_errors = Some(1);
    }
    let name = name.ok_or("no `pool:` line")?;
    let state = state.ok_or_else(|| format!("pool `{name}`: no `state:` line"))?;
    let mut vdevs = vdevs.ok_or_else(|| format!("pool `{name}`: no `config:` section"))?;
    // The first row is the pool itself; its children are the tree.
    let root = match vdevs.first() {
        Some(first) if first.name == name => vdevs.remove(0),
        _ => {
            return Err(format!(
                "pool `{name}`: the config does not start with the pool's own row"
            ));
        }
    };
    let mut tree = root.children;
    tree.extend(vdevs);
    let scan = if scan_lines.is_empty() {
        None
    } else {
        Some(parse_scan(&scan_lines).map_err(|why| format!("pool `{name}`: scan: {why}"))?)
    };
    Ok((
        Pool {
            name,
            state,
            vdevs: tree,
            scan,
            data_errors,
        },
        i,
    ))
}

fn parse_data_errors(value: &str) -> Result<u64, String> {
    if value == "No known data errors" || value.starts_with("Permanent errors have been detected") {
        return Ok(0);
    }
    let count = value.split_whitespace().next().unwrap_or("");
    if value.contains("data errors") {
        return count
            .parse()
            .map_err(|_| format!("`{count}` is not a count of data errors"));
    }
    Err("not `No known data errors` nor `N data errors`".into())
}

/// The rows of `config:`: returns the top-level rows (the pool's own row,
/// then class headers) with their subtrees, and the index after the table.
fn parse_config(lines: &[&str], start: usize) -> Result<(Vec<Vdev>, usize), String> {
    let mut i = start;
    while i < lines.len() && lines[i].trim().is_empty() {
        i += 1;
    }
    let head = lines
        .get(i)
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    if head.as_deref() != Some(&["NAME", "STATE", "READ", "WRITE", "CKSUM"][..]) {
        return Err(format!(
            "line {}: expected the `NAME STATE READ WRITE CKSUM` header",
            i + 1
        ));
    }
    i += 1;
    let mut rows: Vec<(usize, Vdev)> = Vec::new();
    let mut base = None;
    while i < lines.len() {
        let raw = lines[i];
        if raw.trim().is_empty() {
            // A blank line ends the table (`errors:` follows), unless more
            // indented rows follow it (some versions put one before a class).
            let more = lines[i + 1..]
                .iter()
                .find(|l| !l.trim().is_empty())
                .is_some_and(|l| header(l).is_none() && indent(l) > 0);
            if !more {
                break;
            }
            i += 1;
            continue;
        }
        if header(raw).is_some() && indent(raw) == 0 {
            break;
        }
        let at = |why: String| format!("line {}: {why}: `{}`", i + 1, raw.trim());
        let width = indent(raw);
        let base = *base.get_or_insert(width);
        if width < base || (width - base) % 2 != 0 {
            return Err(at(format!(
                "indented {width} columns, not the table's {base} plus a multiple of 2"
            )));
        }
        rows.push(((width - base) / 2, parse_row(raw.trim()).map_err(at)?));
        i += 1;
    }
    if rows.is_empty() {
        return Err(format!("line {}: the config table has no rows", i + 1));
    }
    Ok((build_tree(rows)?, i))
}

fn indent(line: &str) -> usize {
    let mut width = 0;
    for c in line.chars() {
        match c {
            ' ' => width += 1,
            '\t' => width = (width / 8 + 1) * 8,
            _ => break,
        }
    }
    width
}

/// `NAME STATE READ WRITE CKSUM [note]`, `NAME AVAIL|INUSE [note]` (a
/// spare), or a class header alone.
fn parse_row(row: &str) -> Result<Vdev, String> {
    let words: Vec<&str> = row.split_whitespace().collect();
    let name = words[0];
    if words.len() == 1 {
        if CLASS_HEADERS.contains(&name) {
            return Ok(vdev(
                name,
                VdevKind::Class(name.to_string()),
                VdevState::Online,
            ));
        }
        return Err("a name without a state".into());
    }
    let state = VdevState::parse(words[1]);
    if let VdevState::Unknown(s) = &state {
        return Err(format!("unknown state `{s}`"));
    }
    let mut v = vdev(name, VdevKind::from_text_name(name), state.clone());
    if let Some(guid) = name.parse::<u64>().ok().filter(|_| name.len() >= 10) {
        // A leaf whose device is gone shows its GUID as its name.
        v.guid = Some(guid);
    }
    if name.starts_with('/') {
        v.path = Some(name.to_string());
    }
    let spare = matches!(state, VdevState::Avail | VdevState::InUse);
    let has_counts = words.len() >= 5
        && words[2..5]
            .iter()
            .all(|w| w.bytes().next().is_some_and(|b| b.is_ascii_digit()));
    let rest_from = if spare && !has_counts {
        2
    } else {
        if words.len() < 5 {
            return Err("fewer than the READ WRITE CKSUM columns".into());
        }
        let count = |w: &str, column: &str| {
            parse_count(w).ok_or_else(|| format!("{column} `{w}` is not a count"))
        };
        v.read_errors = count(words[2], "READ")?;
        v.write_errors = count(words[3], "WRITE")?;
        v.checksum_errors = count(words[4], "CKSUM")?;
        5
    };
    let note = words[rest_from..].join(" ");
    if !note.is_empty() {
        v.resilvering = note.contains("(resilvering)");
        if let Some(was) = note.strip_prefix("was ") {
            v.path = Some(was.to_string());
        }
        v.note = Some(note);
    }
    Ok(v)
}

fn vdev(name: &str, kind: VdevKind, state: VdevState) -> Vdev {
    Vdev {
        name: name.to_string(),
        kind,
        guid: None,
        path: None,
        state,
        read_errors: 0,
        write_errors: 0,
        checksum_errors: 0,
        slow_ios: None,
        note: None,
        resilvering: false,
        children: Vec::new(),
    }
}

/// Rows with their depth into a tree; depth 0 rows are the top.
fn build_tree(rows: Vec<(usize, Vdev)>) -> Result<Vec<Vdev>, String> {
    let mut stack: Vec<(usize, Vdev)> = Vec::new();
    let mut top = Vec::new();
    for (depth, row) in rows {
        if depth > stack.last().map_or(0, |(d, _)| d + 1) {
            return Err(format!(
                "`{}` is indented two levels below its parent",
                row.name
            ));
        }
        while stack.last().is_some_and(|(d, _)| *d >= depth) {
            let (_, done) = stack.pop().expect("checked non-empty");
            attach(&mut stack, &mut top, done);
        }
        stack.push((depth, row));
    }
    while let Some((_, done)) = stack.pop() {
        attach(&mut stack, &mut top, done);
    }
    Ok(top)
}

fn attach(stack: &mut [(usize, Vdev)], top: &mut Vec<Vdev>, done: Vdev) {
    match stack.last_mut() {
        Some((_, parent)) => parent.children.push(done),
        None => top.push(done),
    }
}

/// The `scan:` line and its continuation lines.
fn parse_scan(lines: &[&str]) -> Result<Scan, String> {
    let first = lines[0];
    let all = lines.join(" ");
    let function = if first.starts_with("scrub") {
        ScanFunction::Scrub
    } else if first.starts_with("resilver") {
        ScanFunction::Resilver
    } else if first.starts_with("error scrub") {
        ScanFunction::ErrorScrub
    } else if first == "none requested" {
        return Ok(Scan {
            function: ScanFunction::None,
            state: ScanState::None,
            permille: None,
            errors: None,
            bytes: None,
        });
    } else {
        return Err(format!("`{first}` is not a scrub or resilver"));
    };
    let state = if first.contains(" in progress since ") {
        ScanState::Scanning
    } else if first.contains(" paused since ") {
        ScanState::Paused
    } else if first.contains(" canceled on ") {
        ScanState::Canceled
    } else if first.contains(" with ") && first.contains(" errors on ") {
        ScanState::Finished
    } else {
        return Err(format!(
            "`{first}`: not in progress, paused, canceled or finished"
        ));
    };
    let errors = match first.split_once(" with ") {
        Some((_, rest)) if state == ScanState::Finished => {
            let n = rest.split_whitespace().next().unwrap_or("");
            Some(
                n.parse()
                    .map_err(|_| format!("`{n}` is not a count of errors"))?,
            )
        }
        _ => None,
    };
    let permille = match all.split_once("% done") {
        Some((before, _)) => {
            let number = before.rsplit([' ', ',']).next().unwrap_or("");
            let percent: f64 = number
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=100.0).contains(p))
                .ok_or_else(|| format!("`{number}%` is not a percentage"))?;
            Some((percent * 10.0).floor() as u32)
        }
        None if state == ScanState::Finished => Some(1000),
        None => None,
    };
    Ok(Scan {
        function,
        state,
        permille,
        errors,
        bytes: None,
    })
}
