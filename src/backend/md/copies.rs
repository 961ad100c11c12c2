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

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(level: &str, members: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let md = root.path().join("sys/block/md9/md");
        std::fs::create_dir_all(&md).unwrap();
        std::fs::write(md.join("level"), format!("{level}\n")).unwrap();
        for (name, state) in members {
            let dir = md.join(format!("dev-{name}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("state"), format!("{state}\n")).unwrap();
            std::fs::write(dir.join("offset"), "2048\n").unwrap();
        }
        root
    }

    #[test]
    fn in_sync_mirror_members_and_their_offsets() {
        let root = tree(
            "raid1",
            &[("sdy", "in_sync"), ("sdx", "in_sync"), ("sdz", "spare")],
        );
        assert_eq!(
            member_copies(root.path(), "md9"),
            Ok(Some(vec![
                ("sdx".into(), 2048 * 512),
                ("sdy".into(), 2048 * 512)
            ]))
        );
    }

    #[test]
    fn a_plain_disk_is_no_array_and_parity_is_no_copy() {
        let root = tree("raid5", &[("sdx", "in_sync")]);
        assert_eq!(member_copies(root.path(), "sda"), Ok(None));
        let err = member_copies(root.path(), "md9").unwrap_err();
        assert!(err.contains("stripes and parity"), "{err}");
        let none = tree("raid1", &[("sdx", "faulty")]);
        assert_eq!(
            member_copies(none.path(), "md9"),
            Err("`md9` has no in-sync member to read a copy from".into())
        );
    }
}
