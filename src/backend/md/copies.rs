//! Where each member of an md mirror holds its copy of the array's data,
//! for the data canary (src/canary/map.rs): read from sysfs under `root`.

use std::path::Path;

/// The in-sync members of md array `disk` and the byte offset of the
/// array's data on each. `Ok(None)` when `disk` is not an md array; `Err`
/// for a level whose members hold stripes rather than copies, or when no
/// member is in sync.
pub fn member_copies(root: &Path, disk: &str) -> Result<Option<Vec<(String, u64)>>, String> {
    let md = root.join("sys/block").join(disk).join("md");
    if !md.is_dir() {
        return Ok(None);
    }
    let level = std::fs::read_to_string(md.join("level"))
        .map_err(|e| format!("cannot read the level of `{disk}`: {e}"))?;
    let level = level.trim();
    if level != "raid1" {
        return Err(format!(
            "`{disk}` is {level}: its members hold stripes and parity, not copies, so a member cannot be checked on its own; the file itself is re-read with O_DIRECT"
        ));
    }
    let entries =
        std::fs::read_dir(&md).map_err(|e| format!("cannot list `{}`: {e}", md.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_prefix("dev-").map(str::to_string))
        .collect();
    names.sort();
    let mut copies = Vec::new();
    for member in names {
        let dir = md.join(format!("dev-{member}"));
        let state = std::fs::read_to_string(dir.join("state")).unwrap_or_default();
        // Only members md reads from hold a current copy.
        if !state.split(',').any(|s| s.trim() == "in_sync") {
            continue;
        }
        let offset = read_number(&dir.join("offset"))?;
        copies.push((member, offset * 512));
    }
    if copies.is_empty() {
        return Err(format!(
            "`{disk}` has no in-sync member to read a copy from"
        ));
    }
    Ok(Some(copies))
}

fn read_number(path: &Path) -> Result<u64, String> {
    std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?
        .trim()
        .parse()
        .map_err(|e| format!("`{}` is not a number: {e}", path.display()))
}
