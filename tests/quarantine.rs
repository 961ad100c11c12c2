//! Whole-process tests of the quarantine (issues 10 and 18): the target is
//! quarantined the moment it is seen leaving, whatever happens next, and a
//! command's device arguments are judged by the device they name, not by
//! how they are spelled. Every run is the real binary.

use std::path::{Path, PathBuf};

mod common;
use common::{Done, copy_tree, root};

/// Run the binary in `cwd` with `--state-dir state` and extra environment.
fn swapguard_in(cwd: &Path, state: &Path, args: &[&str], env: &[(&str, &str)]) -> Done {
    let mut run = common::swapguard(state, args).cwd(cwd);
    for (k, v) in env {
        run = run.env(k, v);
    }
    run.run()
}

fn swapguard(state: &Path, args: &[&str]) -> Done {
    swapguard_in(&root(), state, args, &[])
}

fn registry(state: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(state.join("quarantine.json")).unwrap()).unwrap()
}

fn journal_events(state: &Path) -> Vec<serde_json::Value> {
    common::journal(state)
}

const RESTORE: &str = "runbooks/restore-from-backup.toml";
const RESTORE_HEALTHY: &str = "runbooks/scenarios/restore-from-backup/healthy.toml";
const PULL_ONLY: &str = "tests/fixtures/runbooks-e2e/pull-only.toml";

/// The shipped healthy restore, but onto the blank drive `sdd` carrying
/// `serial`: the drive pulled earlier, back on the shelf and inserted as a
/// "spare". Without the scenario's own registry entry, only what an
/// earlier process recorded can refuse it. Expected: refused at preflight.
fn restore_onto(dir: &Path, serial: &str) -> String {
    let mut text = std::fs::read_to_string(root().join(RESTORE_HEALTHY)).unwrap();
    let seeded =
        text[text.find("[[quarantined]]").unwrap()..text.find("[[command]]").unwrap()].to_string();
    for (old, new) in [
        (
            "target = \"S3Z1NB0K900004\"".to_string(),
            format!("target = \"{serial}\""),
        ),
        (
            "serial = \"S3Z1NB0K900004\"".to_string(),
            format!("serial = \"{serial}\""),
        ),
        ("wwn = \"0x5002538e40a19004\"\n".to_string(), String::new()),
        (seeded, String::new()),
        (
            "runbook = \"../../restore-from-backup.toml\"".to_string(),
            format!("runbook = {:?}", root().join(RESTORE).display().to_string()),
        ),
        (
            "outcome = \"completed\"".to_string(),
            "outcome = \"refused\"\nstep = \"preflight\"".to_string(),
        ),
    ] {
        assert!(text.contains(&old), "{RESTORE_HEALTHY} lacks {old:?}");
        text = text.replacen(&old, &new, 1);
    }
    let path = dir.join(format!("restore-onto-{serial}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A two-drive mirror for the pull-only runbook: `sdb` is the target, `sda`
/// the survivor; `event` says what goes wrong during the pull.
fn pull_scenario(dir: &Path, name: &str, event: &str) -> String {
    let text = format!(
        r#"[scenario]
name = "{name}"
runbook = {runbook:?}
params = {{ array = "md0", target = "sdb" }}

[array]
name = "md0"
level = "raid1"

[[array.members]]
dev = "sda"
serial = "S3Z1NB0K100001"
wwn = "0x5002538e40a10001"
slot = 0
size = "960G"

[[array.members]]
dev = "sdb"
serial = "S3Z1NB0K700007"
wwn = "0x5002538e40a17007"
slot = 1
size = "960G"

{event}

[expect]
outcome = "halted"
step = "pull"
reasons = ["sda"]
"#,
        runbook = root().join(PULL_ONLY).display().to_string(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Issue 10 item 3, the incident's second half: the survivor degrades
/// while the target is out, the pull step halts, and the pulled drive must
/// be in the registry anyway, so that a restore onto it (another process,
/// later) is refused.
#[test]
fn regression_pull_step_halt_let_the_pulled_drive_escape_quarantine() {
    let cases = [
        // md errors on the survivor in the very look that sees the pull.
        (
            "same-moment",
            "[[event]]\nduring = \"pull\"\nafter = \"3s\"\npull = \"sdb\"\nset = { \"sda.md.errors\" = 3 }",
            "md.errors",
        ),
        // SMART-only: seen at the latest by the step's closing full look,
        // after the pull was seen.
        (
            "smart-at-step-end",
            "[[event]]\nduring = \"pull\"\nafter = \"2s\"\nset = { \"sda.smart.current_pending_sector\" = 8 }",
            "smart.current_pending_sector",
        ),
    ];
    for (name, event, counter) in cases {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let scenario = pull_scenario(dir.path(), name, event);
        swapguard(&state, &["dry-run", PULL_ONLY, "--scenario", &scenario])
            .code(0)
            .stdout_has("expectation met: halted at step `pull`")
            .stdout_has(counter)
            .stdout_has("quarantined sdb (serial S3Z1NB0K700007, bay 1)");
        let events = journal_events(&state);
        let at = |name: &str| events.iter().position(|e| e["event"] == name);
        let quarantined = at("quarantined").unwrap_or_else(|| panic!("{name}: {events:?}"));
        assert!(quarantined < at("halted").unwrap(), "{name}");
        assert_eq!(events[quarantined]["step"], "pull");
        let entry = &registry(&state)["drives"][0];
        assert_eq!(entry["serial"], "S3Z1NB0K700007", "{name}");
        assert!(
            entry["reason"]
                .as_str()
                .unwrap()
                .starts_with("pulled during step `pull` of runbook `pull one drive (test)`"),
            "{entry}"
        );
        // Another process, later: the restore onto that very drive.
        let restore = restore_onto(dir.path(), "S3Z1NB0K700007");
        swapguard(&state, &["dry-run", RESTORE, "--scenario", &restore])
            .code(0)
            .stdout_has("expectation met: refused at step `preflight`")
            .stdout_has(
                "(serial S3Z1NB0K700007, bay 3) must not be written to: it is quarantined since",
            )
            .stdout_has("pulled during step `pull`");
    }
}

/// The same for a drive failed out of the array by a command step: it is
/// quarantined before `mdadm --fail` runs, so a halt between the fail and
/// the pull cannot let it escape either.
#[test]
fn a_target_failed_by_a_command_is_quarantined_before_the_command_runs() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // The survivor degrades during `remove`, before any pull.
    let text =
        std::fs::read_to_string(root().join("runbooks/scenarios/md-replace-member/healthy.toml"))
            .unwrap();
    let text = text
        .replace(
            "runbook = \"../../md-replace-member.toml\"",
            &format!(
                "runbook = {:?}",
                root().join("runbooks/md-replace-member.toml").display().to_string()
            ),
        )
        .replace(
            "[expect]\noutcome = \"completed\"",
            "[[event]]\nduring = \"remove\"\nafter = \"0s\"\nset = { \"sda.md.errors\" = 2 }\n\n[expect]\noutcome = \"halted\"\nstep = \"remove\"\nreasons = [\"sda\", \"md.errors\"]",
        );
    assert!(
        text.contains("during = \"remove\""),
        "healthy.toml changed shape"
    );
    let scenario = dir.path().join("halt-at-remove.toml");
    std::fs::write(&scenario, text).unwrap();
    let scenario = scenario.display().to_string();
    swapguard(
        &state,
        &[
            "dry-run",
            "runbooks/md-replace-member.toml",
            "--scenario",
            &scenario,
        ],
    )
    .code(0)
    .stdout_has("expectation met: halted at step `remove`");
    let events = journal_events(&state);
    let q = events
        .iter()
        .position(|e| e["event"] == "quarantined")
        .unwrap();
    let cmd = events
        .iter()
        .position(|e| e["event"] == "command" && e["step"] == "fail")
        .unwrap();
    assert!(q < cmd, "quarantined before `mdadm --fail` ran");
    let entry = &registry(&state)["drives"][0];
    assert_eq!(entry["serial"], "S3Z1NB0K100002");
    assert_eq!(entry["step"], "fail");
}

/// A scratch machine: the captured clean md tree (nvme0n1 = LAB-A-0001,
/// nvme1n1 = LAB-B-0002 in md0), the pull-only runbook, a state directory.
fn machine() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_tree(
        &root().join("tests/fixtures/md/clean"),
        &dir.path().join("tree"),
    );
    std::fs::copy(root().join(PULL_ONLY), dir.path().join("pull-only.toml")).unwrap();
    std::fs::write(dir.path().join("answers.toml"), "antistatic = \"yes\"\n").unwrap();
    std::fs::write(dir.path().join("answers-resume.toml"), "").unwrap();
    dir
}

fn on_machine(m: &Path, args: &[&str], crash_after: Option<u64>) -> Done {
    let tree = m.join("tree").display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--sysroot", &tree]);
    let n = crash_after.map(|n| n.to_string());
    let env: Vec<(&str, &str)> = n
        .as_deref()
        .map(|n| ("SWAPGUARD_CRASH_AFTER_WRITE", n))
        .into_iter()
        .collect();
    swapguard_in(m, &m.join("state"), &all, &env)
}

fn last_event(m: &Path) -> serde_json::Value {
    journal_events(&m.join("state")).pop().unwrap()
}

/// Issue 10 item 3, after a resume: the run dies during the pull; while no
/// one watches, the target is pulled and the survivor collects errors. The
/// resume halts on the survivor, and the pulled drive is quarantined all
/// the same, before the halt; a kill right after that quarantine is
/// journaled loses nothing either (the registry is written first). A
/// restore onto the drive, later and in another process, is refused.
#[test]
fn regression_resume_that_halts_after_an_unwatched_pull_still_quarantines_the_target() {
    // Killed right after the journal says the pull began.
    let base = (1..40)
        .map(|n| {
            let m = machine();
            let done = on_machine(
                m.path(),
                &[
                    "run",
                    "pull-only.toml",
                    "--array",
                    "md0",
                    "--target",
                    "nvme1n1",
                    "--answers",
                    "answers.toml",
                ],
                Some(n),
            );
            assert_eq!(done.code, None, "the kill switch aborts: {}", done.stderr);
            m
        })
        .find(|m| {
            let last = last_event(m.path());
            last["event"] == "step-started" && last["step"] == "pull"
        })
        .expect("the run never journaled the start of `pull`");
    std::fs::remove_dir_all(base.path().join("tree/sys/block/nvme1n1")).unwrap();
    std::fs::write(
        base.path().join("tree/sys/block/md0/md/dev-nvme0n1/errors"),
        "7\n",
    )
    .unwrap();
    let resume = ["resume", "--answers", "answers-resume.toml"];

    // A resume killed right after it journaled the quarantine: the
    // registry holds the drive already. (The kill switch counts every
    // write of the journal, the dead run's included.)
    let written = journal_events(&base.path().join("state")).len() as u64;
    let killed = (written + 1..written + 20)
        .map(|n| {
            let m = tempfile::tempdir().unwrap();
            copy_tree(base.path(), m.path());
            let done = on_machine(m.path(), &resume, Some(n));
            assert_eq!(done.code, None, "{}\n{}", done.stdout, done.stderr);
            m
        })
        .find(|m| last_event(m.path())["event"] == "quarantined")
        .expect("the resume never journaled a quarantine");
    let entry = &registry(&killed.path().join("state"))["drives"][0];
    assert_eq!(entry["serial"], "LAB-B-0002");
    assert_eq!(entry["step"], "pull");
    on_machine(killed.path(), &resume, None)
        .code(3)
        .stdout_has("while swapguard was not running");
    let events = journal_events(&killed.path().join("state"));
    let count = events
        .iter()
        .filter(|e| e["event"] == "quarantined")
        .count();
    assert_eq!(count, 1, "quarantined once: {events:?}");

    // The resume proper: quarantined before the halt.
    let m = base;
    on_machine(m.path(), &resume, None)
        .code(3)
        .stdout_has("quarantined nvme1n1 (serial LAB-B-0002")
        .stdout_has("while swapguard was not running");
    let events = journal_events(&m.path().join("state"));
    let at = |name: &str| events.iter().position(|e| e["event"] == name).unwrap();
    let resumed = at("resumed");
    assert!(resumed < at("quarantined") && at("quarantined") < at("halted"));
    let state = m.path().join("state");
    assert_eq!(registry(&state)["drives"][0]["serial"], "LAB-B-0002");
    // The halted session is over; the quarantine outlives it.
    let again = on_machine(m.path(), &resume, None);
    assert_eq!(again.code, Some(2), "{}\n{}", again.stdout, again.stderr);
    let restore = restore_onto(m.path(), "LAB-B-0002");
    swapguard(&state, &["dry-run", RESTORE, "--scenario", &restore])
        .code(0)
        .stdout_has("expectation met: refused at step `preflight`")
        .stdout_has("(serial LAB-B-0002, bay 3) must not be written to: it is quarantined since");
}

/// A machine for the wipe attack (issue 18 item 7): the clean md tree plus
/// two drives outside the array, with device nodes (`mknod`, so root only)
/// and sysfs's `/sys/dev/block` links:
/// - nvme2n1, serial LAB-Q-0009, quarantined (partition nvme2n1p1), also
///   reachable as a by-id link, a by-path link and `/srv/alias`;
/// - nvme3n1, serial LAB-C-0003, the blank drive the run is about.
///
/// The runbook runs a fake `wipefs` (a script that records its argv), named
/// by absolute path, so no real tool is ever run on anything.
struct WipeMachine {
    dir: tempfile::TempDir,
}

impl WipeMachine {
    fn new() -> Option<WipeMachine> {
        let m = WipeMachine { dir: machine() };
        let tree = m.path("tree");
        let disk = |name: &str, serial: &str| {
            let d = tree.join("sys/block").join(name);
            std::fs::create_dir_all(d.join("device")).unwrap();
            std::fs::write(d.join("device/serial"), format!("{serial:<20}\n")).unwrap();
            std::fs::write(d.join("device/model"), "QEMU NVMe Ctrl\n").unwrap();
            std::fs::write(d.join("device/firmware_rev"), "8.2.2\n").unwrap();
            std::fs::write(d.join("size"), "131072\n").unwrap();
        };
        disk("nvme2n1", "LAB-Q-0009");
        disk("nvme3n1", "LAB-C-0003");
        let part = tree.join("sys/block/nvme2n1/nvme2n1p1");
        std::fs::create_dir_all(&part).unwrap();
        std::fs::write(part.join("partition"), "1\n").unwrap();
        let link = |to: &str, at: &str| {
            let at = tree.join(at);
            std::fs::create_dir_all(at.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(to, at).unwrap();
        };
        link("../../block/nvme0n1", "sys/dev/block/259:0");
        link("../../block/nvme1n1", "sys/dev/block/259:1");
        link("../../block/nvme2n1", "sys/dev/block/259:2");
        link("../../block/nvme2n1/nvme2n1p1", "sys/dev/block/259:3");
        link("../../block/nvme3n1", "sys/dev/block/259:4");
        std::fs::create_dir_all(tree.join("dev")).unwrap();
        for (name, minor) in [
            ("nvme0n1", 0),
            ("nvme1n1", 1),
            ("nvme2n1", 2),
            ("nvme2n1p1", 3),
            ("nvme3n1", 4),
        ] {
            let made = nix::sys::stat::mknod(
                &tree.join("dev").join(name),
                nix::sys::stat::SFlag::S_IFBLK,
                nix::sys::stat::Mode::from_bits_truncate(0o600),
                nix::sys::stat::makedev(259, minor),
            );
            if made.is_err() {
                return None;
            }
        }
        link(
            "../../nvme2n1",
            "dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LAB-Q-0009",
        );
        link("../../nvme2n1", "dev/disk/by-path/pci-0000:00:05.0-nvme-1");
        link("/dev/nvme2n1", "srv/alias");
        let log = m.path("wipefs.log");
        let fake = m.path("bin/wipefs");
        std::fs::create_dir_all(fake.parent().unwrap()).unwrap();
        std::fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\n", log.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            m.path("wipe.toml"),
            format!(
                r#"[runbook]
name = "Wipe a named device (test, md tree)"
backend = "md"

[params]
array = {{ kind = "array", help = "md array" }}
target = {{ kind = "drive", help = "the drive the run is about" }}
device = {{ kind = "text", help = "the device to wipe" }}

[guard]
smart = "optional"

[preflight]
require = ["redundant-without-target", "survivors-healthy", "no-rebuild-running", "target-identified"]

[on_halt]
say = "STOP."

[[step]]
id = "wipe"
kind = "command"
run = ["{fake}", "--all", "{{device}}"]
confirm = "type-serial"
"#,
                fake = fake.display()
            ),
        )
        .unwrap();
        std::fs::write(m.path("answers-wipe.toml"), "wipe = \"0003\"\n").unwrap();
        on_machine(
            &m.path(""),
            &[
                "quarantine",
                "add",
                "LAB-Q-0009",
                "--reason",
                "pulled as broken",
            ],
            None,
        )
        .code(0);
        Some(m)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `run` with `--param device=DEVICE`, from working directory `cwd`.
    fn wipe(&self, device: &str, cwd: &Path) -> Done {
        let wipe = self.path("wipe.toml").display().to_string();
        let answers = self.path("answers-wipe.toml").display().to_string();
        let tree = self.path("tree").display().to_string();
        let param = format!("device={device}");
        swapguard_in(
            cwd,
            &self.path("state"),
            &[
                "run",
                &wipe,
                "--array",
                "md0",
                "--target",
                "LAB-C-0003",
                "--param",
                &param,
                "--answers",
                &answers,
                "--sysroot",
                &tree,
            ],
            &[],
        )
    }

    fn wiped(&self) -> Option<String> {
        std::fs::read_to_string(self.path("wipefs.log")).ok()
    }
}

/// Issue 18 item 7: `wipefs --all //dev/nvme0n1` ran although
/// `/dev/nvme0n1` was refused. Every spelling of the quarantined drive (a
/// doubled slash, `.` and `..`, a partition, by-id and by-path links, a
/// link outside /dev, a relative path) is the same device by `stat` and
/// sysfs, and is refused; a device path that resolves to nothing is
/// refused too; the drive the run is about is wiped (the fake records it).
#[test]
fn regression_quarantine_checked_the_spelling_not_the_device() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: device nodes cannot be made; skipped");
        return;
    }
    let Some(m) = WipeMachine::new() else {
        eprintln!("mknod refused (no CAP_MKNOD here); skipped");
        return;
    };
    let here = m.path("");
    for (device, cwd) in [
        ("/dev/nvme2n1", here.as_path()),
        ("//dev/nvme2n1", here.as_path()),
        ("/dev/./nvme2n1", here.as_path()),
        ("/dev/../dev/nvme2n1p1", here.as_path()),
        ("/dev/nvme2n1p1", here.as_path()),
        (
            "/dev/disk/by-id/nvme-QEMU_NVMe_Ctrl_LAB-Q-0009",
            here.as_path(),
        ),
        ("/dev/disk/by-path/pci-0000:00:05.0-nvme-1", here.as_path()),
        ("/srv/alias", here.as_path()),
        ("dev/nvme2n1", Path::new("/")),
    ] {
        m.wipe(device, cwd)
            .code(3)
            .stdout_has("step `wipe` was not run: it would write to a quarantined drive")
            .stdout_has("nvme2n1 (serial LAB-Q-0009")
            .stdout_has("by hand: pulled as broken");
        assert_eq!(m.wiped(), None, "wipefs ran for {device}");
    }
    m.wipe("/dev/nvme9n1", &here)
        .code(3)
        .stdout_has("it would write to a device swapguard cannot identify")
        .stdout_has("`/dev/nvme9n1` cannot be resolved");
    assert_eq!(m.wiped(), None, "wipefs ran for a missing device");
    // The harness can fail: the blank drive itself is wiped, by any name.
    m.wipe("//dev/nvme3n1", &here).code(0);
    assert_eq!(m.wiped().as_deref(), Some("--all //dev/nvme3n1\n"));
}
