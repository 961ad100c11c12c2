//! An array named on the command line, made the kernel's name.
//!
//! `md16`, `/dev/md16`, `/dev/md/backup` (a udev link to `../md16`) and
//! `md/backup` are one array. Everything keyed by the array (its lock, its
//! journal's name, the `{array}` of the runbook) uses the kernel's name, so
//! two spellings can never take two locks. Links are read under the
//! sysroot, so tests point this at a captured tree. What does not resolve
//! to an array that exists is refused.

use std::path::{Component, Path};

use crate::sanitize::sanitize;

/// The kernel name (`mdN`) of the array `given` names, which must be one of
/// `known` (the arrays the backend sees).
pub fn canonical_array(sysroot: &Path, given: &str, known: &[String]) -> Result<String, String> {
    let shown = sanitize(given, false);
    let here = if known.is_empty() {
        "no md arrays here".to_string()
    } else {
        format!("arrays here: {}", known.join(", "))
    };
    let refuse = |why: String| Err(format!("`--array {shown}`: {why} ({here})"));
    let under_dev = given
        .strip_prefix("/dev/")
        .or_else(|| given.starts_with("md/").then_some(given));
    let name = match under_dev {
        Some(rest) => {
            let rel = Path::new(rest);
            if rel.as_os_str().is_empty()
                || !rel.components().all(|c| matches!(c, Component::Normal(_)))
            {
                return refuse("not a device path under `/dev`".into());
            }
            match std::fs::read_link(sysroot.join("dev").join(rel)) {
                Ok(target) => match target.file_name().and_then(|n| n.to_str()) {
                    Some(n) => n.to_string(),
                    None => return refuse("its link names no device".into()),
                },
                Err(_) if !rest.contains('/') => rest.to_string(),
                Err(e) => return refuse(format!("cannot read the link: {e}")),
            }
        }
        None if given.starts_with('/') || given.contains('/') => {
            return refuse("not an md device (give `mdN`, `/dev/mdN` or `/dev/md/NAME`)".into());
        }
        None if known.iter().any(|k| k == given) => given.to_string(),
        None => match std::fs::read_link(sysroot.join("dev/md").join(given)) {
            Ok(target) => match target.file_name().and_then(|n| n.to_str()) {
                Some(n) => n.to_string(),
                None => return refuse("its link names no device".into()),
            },
            Err(_) => given.to_string(),
        },
    };
    if known.contains(&name) {
        Ok(name)
    } else if name == given {
        refuse("no such md array".into())
    } else {
        refuse(format!(
            "it resolves to `{}`, which is not an md array",
            sanitize(&name, false)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_one_array_is_its_kernel_name() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("dev/md")).unwrap();
        std::os::unix::fs::symlink("../md16", root.path().join("dev/md/backup")).unwrap();
        std::os::unix::fs::symlink("../sda", root.path().join("dev/md/disk")).unwrap();
        let known = vec!["md16".to_string(), "md0".to_string()];
        for given in ["md16", "/dev/md16", "/dev/md/backup", "md/backup", "backup"] {
            assert_eq!(
                canonical_array(root.path(), given, &known).as_deref(),
                Ok("md16"),
                "{given}"
            );
        }
        for (given, want) in [
            ("md17", "no such md array"),
            ("/dev/md17", "`md17`, which is not an md array"),
            ("../../etc", "not an md device"),
            ("/some/abs/path", "not an md device"),
            ("/dev/../etc/passwd", "not a device path"),
            ("/dev/md/disk", "resolves to `sda`"),
            ("/dev/md/missing", "cannot read the link"),
            ("md0\nmd16", "no such md array"),
        ] {
            let err = canonical_array(root.path(), given, &known).unwrap_err();
            assert!(err.contains(want), "{given:?}: {err}");
            assert!(err.contains("arrays here: md16, md0"), "{err}");
        }
    }
}
