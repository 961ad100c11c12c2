//! Whether a runbook may be run as root.
//!
//! A runbook decides which commands run, as root, against the drives that
//! hold the data. As sudo does for sudoers and sshd for authorized_keys, a
//! root run refuses a runbook that someone other than root (or the person
//! who ran sudo) could have changed: one writable by group or others, or
//! owned by another user.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::commands::UsageError;

/// Refuse `path` when running as root and the file could have been changed
/// by someone else. Does nothing for other users (they cannot do more
/// harm through a runbook than without one).
pub(crate) fn check_runbook(path: &Path) -> Result<()> {
    let euid = nix::unistd::geteuid().as_raw();
    if euid != 0 {
        return Ok(());
    }
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read runbook `{}`", path.display()))?;
    let sudo_uid = std::env::var("SUDO_UID")
        .ok()
        .and_then(|v| v.parse::<u32>().ok());
    match judge(meta.mode(), meta.uid(), euid, sudo_uid) {
        None => Ok(()),
        Some(why) => {
            Err(UsageError(format!("refusing runbook `{}`: {why}", path.display())).into())
        }
    }
}

/// Why a runbook with this mode and owner must not run for `euid`, if so.
pub(crate) fn judge(mode: u32, owner: u32, euid: u32, sudo_uid: Option<u32>) -> Option<String> {
    if euid != 0 {
        return None;
    }
    if mode & 0o022 != 0 {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "its group and everyone else",
            (true, false) => "its group",
            _ => "everyone",
        };
        return Some(format!(
            "it is writable by {who} (mode {:04o}), so anyone among them could change the commands root runs; \
             run `chmod go-w` on it",
            mode & 0o7777
        ));
    }
    if owner != 0 && Some(owner) != sudo_uid {
        return Some(format!(
            "it is owned by user id {owner}, not root{}; someone else could change the commands root runs: \
             `chown root` it, or run swapguard as its owner through sudo",
            sudo_uid
                .map(|u| format!(" or the user who ran sudo (id {u})"))
                .unwrap_or_default()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::judge;

    /// name, mode, owner, euid, SUDO_UID, expected refusal
    type Case = (
        &'static str,
        u32,
        u32,
        u32,
        Option<u32>,
        Option<&'static str>,
    );

    #[test]
    fn root_refuses_runbooks_others_could_change() {
        let cases: [Case; 8] = [
            ("root's own 0644", 0o100644, 0, 0, None, None),
            ("root's own 0600", 0o100600, 0, 0, None, None),
            (
                "group-writable",
                0o100664,
                0,
                0,
                None,
                Some("writable by its group (mode 0664)"),
            ),
            (
                "world-writable",
                0o100646,
                0,
                0,
                None,
                Some("writable by everyone"),
            ),
            (
                "both",
                0o100666,
                0,
                0,
                None,
                Some("its group and everyone else"),
            ),
            (
                "another user's",
                0o100644,
                1000,
                0,
                None,
                Some("owned by user id 1000, not root"),
            ),
            ("the sudo user's", 0o100644, 1000, 0, Some(1000), None),
            ("not root at all", 0o100666, 1000, 1000, None, None),
        ];
        for (name, mode, owner, euid, sudo, want) in cases {
            let got = judge(mode, owner, euid, sudo);
            match (want, &got) {
                (None, None) => {}
                (Some(w), Some(g)) if g.contains(w) => {}
                _ => panic!("{name}: got {got:?}, want {want:?}"),
            }
        }
    }
}
