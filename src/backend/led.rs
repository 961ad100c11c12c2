//! Locate LEDs: blink the bay of the drive a step is about.
//!
//! Two ways are tried, in order, and the first that exists is used:
//! the kernel's SES enclosure driver (`/sys/block/X/device/enclosure_device:*`
//! links to a slot directory with a `locate` file), then `ledctl` from ledmon
//! with `--listed-only`, so other bays' fault LEDs are left as they are
//! (plain `ledctl locate=` turns every other LED off). When neither exists
//! the outcome says so plainly and the technician identifies the drive by
//! serial: the tool never pretends an LED is blinking.

use std::path::Path;
use std::time::Duration;

use crate::backend::{CommandRunner, LocateOutcome};
use crate::health::model::Identity;

const LEDCTL_TIMEOUT: Duration = Duration::from_secs(20);

/// Switch the locate LED of `drive`'s bay on or off.
pub fn locate(
    root: &Path,
    runner: &mut dyn CommandRunner,
    drive: &Identity,
    on: bool,
) -> LocateOutcome {
    let dev = &drive.dev;
    let mut tried = Vec::new();
    match enclosure_locate_file(root, dev) {
        Some(file) => match std::fs::write(&file, if on { "1" } else { "0" }) {
            Ok(()) => {
                return LocateOutcome::Switched {
                    how: format!("enclosure `{}`", file.display()),
                };
            }
            Err(e) => tried.push(format!("cannot write `{}`: {e}", file.display())),
        },
        None => tried.push(format!("no SES enclosure slot for `{dev}`")),
    }
    let pattern = if on { "locate" } else { "locate_off" };
    let argv = vec![
        "ledctl".to_string(),
        "--listed-only".to_string(),
        format!("{pattern}=/dev/{dev}"),
    ];
    match runner.run(&argv, LEDCTL_TIMEOUT) {
        Ok(out) if out.success() => {
            return LocateOutcome::Switched {
                how: format!("`{}`", argv.join(" ")),
            };
        }
        Ok(out) => tried.push(format!(
            "`{}` failed: {}",
            argv.join(" "),
            out.stderr.trim().lines().next().unwrap_or("no message")
        )),
        Err(_) => tried.push("`ledctl` is not installed".into()),
    }
    LocateOutcome::Unavailable {
        reason: tried.join("; "),
    }
}

/// `/sys/block/<dev>/device/enclosure_device:<slot>/locate`, when the disk
/// sits in an SES enclosure slot.
fn enclosure_locate_file(root: &Path, dev: &str) -> Option<std::path::PathBuf> {
    let device = root.join("sys/block").join(dev).join("device");
    std::fs::read_dir(&device)
        .ok()?
        .flatten()
        .find_map(|entry| {
            let name = entry.file_name();
            let name = name.to_str()?;
            if name.starts_with("enclosure_device:") {
                let file = entry.path().join("locate");
                file.exists().then_some(file)
            } else {
                None
            }
        })
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::backend::CommandOutput;

    #[derive(Clone, Default)]
    struct Ledctl {
        calls: Rc<RefCell<Vec<String>>>,
        installed: bool,
        code: i32,
    }

    impl CommandRunner for Ledctl {
        fn run(&mut self, argv: &[String], _t: Duration) -> anyhow::Result<CommandOutput> {
            self.calls.borrow_mut().push(argv.join(" "));
            if !self.installed {
                anyhow::bail!("cannot start `ledctl`: No such file or directory");
            }
            Ok(CommandOutput {
                argv: argv.to_vec(),
                code: Some(self.code),
                stdout: String::new(),
                stderr: if self.code == 0 {
                    String::new()
                } else {
                    "ledctl: device not supported".into()
                },
                timed_out: false,
            })
        }
    }

    fn drive(dev: &str) -> Identity {
        Identity {
            dev: dev.into(),
            serial: Some("S1".into()),
            ..Identity::default()
        }
    }

    #[test]
    fn enclosure_slot_is_switched_through_sysfs() {
        let root = tempfile::tempdir().unwrap();
        let slot = root.path().join("sys/class/enclosure/0:0:5:0/Slot 01");
        std::fs::create_dir_all(&slot).unwrap();
        std::fs::write(slot.join("locate"), "0").unwrap();
        let device = root.path().join("sys/block/sdb/device");
        std::fs::create_dir_all(&device).unwrap();
        std::os::unix::fs::symlink(&slot, device.join("enclosure_device:Slot 01")).unwrap();
        let mut ledctl = Ledctl::default();
        let on = locate(root.path(), &mut ledctl, &drive("sdb"), true);
        assert!(matches!(on, LocateOutcome::Switched { .. }), "{on:?}");
        assert_eq!(std::fs::read_to_string(slot.join("locate")).unwrap(), "1");
        locate(root.path(), &mut ledctl, &drive("sdb"), false);
        assert_eq!(std::fs::read_to_string(slot.join("locate")).unwrap(), "0");
        assert!(ledctl.calls.borrow().is_empty(), "sysfs first");
    }

    #[test]
    fn ledctl_touches_only_the_listed_drive() {
        let root = tempfile::tempdir().unwrap();
        let mut ledctl = Ledctl {
            installed: true,
            ..Ledctl::default()
        };
        let out = locate(root.path(), &mut ledctl, &drive("nvme1n1"), true);
        assert!(matches!(out, LocateOutcome::Switched { .. }), "{out:?}");
        locate(root.path(), &mut ledctl, &drive("nvme1n1"), false);
        assert_eq!(
            *ledctl.calls.borrow(),
            [
                "ledctl --listed-only locate=/dev/nvme1n1",
                "ledctl --listed-only locate_off=/dev/nvme1n1"
            ]
        );
    }

    #[test]
    fn nothing_available_says_why_without_pretending() {
        let root = tempfile::tempdir().unwrap();
        for (installed, code, want) in [
            (
                false,
                0,
                "no SES enclosure slot for `sdb`; `ledctl` is not installed",
            ),
            (
                true,
                1,
                "no SES enclosure slot for `sdb`; `ledctl --listed-only locate=/dev/sdb` failed: ledctl: device not supported",
            ),
        ] {
            let mut ledctl = Ledctl {
                installed,
                code,
                ..Ledctl::default()
            };
            match locate(root.path(), &mut ledctl, &drive("sdb"), true) {
                LocateOutcome::Unavailable { reason } => assert_eq!(reason, want),
                other => panic!("{other:?}"),
            }
        }
    }
}
