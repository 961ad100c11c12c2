//! Whole-process tests of the data canary under attack and at a halt.
//!
//! - a FIFO put in place of the canary while a physical step is watched:
//!   before, the next read blocked the main thread in `open(O_DIRECT)`
//!   forever (survivors unwatched, the step timeout dead, signals ignored);
//!   now it is a halt within the second, naming what stands there;
//! - `.swapguard` swapped for another user's directory in a canary directory
//!   others can write to: the run reads through the descriptors it holds,
//!   goes on, and at the end removes only the file it planted;
//! - a canary halt in the simulator names the member by serial and bay and
//!   leaves the canary in place (removing it would write to the suspect
//!   array and destroy the evidence).
//!
//! The real-process tests need a temporary directory that supports O_DIRECT
//! (ext4, XFS); elsewhere they say what they skipped.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::{Done, Test, journal, root};

/// A real run of a pull step against a copy of the captured NVMe mirror,
/// with a data canary in `data/` (on the temporary directory's filesystem).
struct Machine(Test);

impl std::ops::Deref for Machine {
    type Target = Test;
    fn deref(&self) -> &Test {
        &self.0
    }
}

impl Machine {
    fn new() -> Machine {
        let t = Test::new().in_scratch().tree("tests/fixtures/md/clean");
        let data = t.path("data");
        std::fs::create_dir(&data).unwrap();
        let runbook = std::fs::read_to_string(root().join("tests/fixtures/runbooks-e2e/pull-only.toml"))
            .unwrap()
            .replace(
                "[guard]\nsmart = \"optional\"\n",
                &format!(
                    "[guard]\nsmart = \"optional\"\nwatch_poll = \"100ms\"\n\n[canary]\npath = \"{}\"\nsize = \"64Ki\"\nevery = \"200ms\"\n",
                    data.display()
                ),
            );
        assert!(runbook.contains("[canary]"));
        t.write("runbook.toml", &runbook);
        t.write("answers.toml", "antistatic = \"yes\"\n");
        Machine(t)
    }

    /// Run; `on_line` sees each stdout line as it comes. A run still going
    /// after 60 s is killed (the test then fails instead of hanging).
    fn run(&self, mut on_line: impl FnMut(&str)) -> Done {
        self.0
            .swapguard(&[
                "run",
                "runbook.toml",
                "--array",
                "md0",
                "--target",
                "nvme1n1",
                "--answers",
                "answers.toml",
            ])
            .run_watching(|line, _| on_line(line))
    }

    /// The canary's file name in `.swapguard`, read from the planted line.
    fn canary_name(line: &str) -> Option<String> {
        let rest = line.split("data canary written: `").nth(1)?;
        let path = rest.split('`').next()?;
        Some(Path::new(path).file_name()?.to_string_lossy().into_owned())
    }
}

/// Whether this host's temporary directory can hold a canary (O_DIRECT).
fn can_run(test: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let mut canary = swapguard::canary::FileCanary::new("/");
    match swapguard::canary::Canaries::plant(&mut canary, dir.path(), 4096, "probe") {
        Ok(_) => {
            let _ = swapguard::canary::Canaries::remove(&mut canary);
            true
        }
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{test} must run in CI but cannot: {e:#}");
            }
            eprintln!("SKIPPED {test}: {e:#}");
            false
        }
    }
}

#[test]
fn a_fifo_swapped_in_for_the_canary_during_a_watch_halts_instead_of_hanging() {
    if !can_run("a_fifo_swapped_in_for_the_canary_during_a_watch_halts_instead_of_hanging") {
        return;
    }
    let m = Machine::new();
    let sg = m.path("data/.swapguard");
    let mut name = None;
    let mut swapped = false;
    let done = m.run(|line| {
        if name.is_none() {
            name = Machine::canary_name(line);
        }
        if !swapped && line.contains("watching every drive") {
            swapped = true;
            let canary = sg.join(name.as_deref().unwrap());
            std::fs::rename(&canary, sg.join("moved-away")).unwrap();
            nix::unistd::mkfifo(&canary, nix::sys::stat::Mode::S_IRWXU).unwrap();
        }
    });
    assert_eq!(done.code, Some(3), "{}", done.both());
    assert!(done.took < Duration::from_secs(20), "took {:?}", done.took);
    for text in [
        "the array returned different data",
        "was replaced behind swapguard's back (a FIFO stands in its place now)",
        "the data canary is left in place as evidence: `",
    ] {
        assert!(
            done.both().contains(text),
            "lacks {text:?}\n{}",
            done.both()
        );
    }
    let fifo = sg.join(name.unwrap());
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo(),
        "the FIFO is left alone"
    );
    let events = journal(&m.path("state"));
    assert!(events.iter().any(|e| e["event"] == "canary-kept"));
    assert!(!events.iter().any(|e| e["event"] == "canary-removed"));
}

#[test]
fn another_users_swapguard_directory_swapped_in_changes_nothing_and_is_not_touched() {
    if !can_run("another_users_swapguard_directory_swapped_in_changes_nothing_and_is_not_touched") {
        return;
    }
    let m = Machine::new();
    // A canary directory anyone may write to, without the sticky bit.
    std::fs::set_permissions(m.path("data"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let sg = m.path("data/.swapguard");
    let moved = m.path("data/.moved");
    let mut name = None;
    let mut swapped = false;
    let done = m.run(|line| {
        if name.is_none() {
            name = Machine::canary_name(line);
        }
        if !swapped && line.contains("watching every drive") {
            swapped = true;
            // What a local user can do in a writable directory: move
            // swapguard's directory away and put their own in its place,
            // with a FIFO where the canary was.
            std::fs::rename(&sg, &moved).unwrap();
            std::fs::create_dir(&sg).unwrap();
            nix::unistd::mkfifo(
                &sg.join(name.as_deref().unwrap()),
                nix::sys::stat::Mode::S_IRWXU,
            )
            .unwrap();
            // Several canary reads go by (every 200 ms), then the
            // technician pulls the target and the step completes.
            std::thread::sleep(Duration::from_millis(1500));
            std::fs::remove_dir_all(m.path("tree/sys/block/nvme1n1")).unwrap();
        }
    });
    assert_eq!(done.code, Some(0), "{}", done.both());
    let name = name.unwrap();
    // The planted file is gone (unlinked through the directory swapguard
    // held); the other directory and its FIFO are untouched.
    assert!(
        !moved.join(&name).exists(),
        "the planted canary was removed"
    );
    assert!(
        moved.is_dir(),
        "only an empty `.swapguard` that is still ours is removed"
    );
    assert!(
        std::fs::symlink_metadata(sg.join(&name))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let events = journal(&m.path("state"));
    let verified = events
        .iter()
        .filter(|e| e["event"] == "canary-verified")
        .count();
    assert!(verified >= 2, "{events:?}");
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "canary-removed" && e["outcome"] == "removed"),
        "{events:?}"
    );
}

/// The simulator: one mirror member's copy of the canary reads back as
/// zeros during the rebuild.
fn sim_member_zeros(dir: &Path) -> PathBuf {
    let canary_runbook = root().join("tests/fixtures/runbooks-e2e/replace-with-canary.toml");
    let scenario =
        std::fs::read_to_string(root().join("runbooks/scenarios/md-replace-member/healthy.toml"))
            .unwrap()
            .replace(
                "runbook = \"../../md-replace-member.toml\"",
                &format!("runbook = {:?}", canary_runbook.display().to_string()),
            );
    let at = scenario.find("[expect]").unwrap();
    let scenario = format!(
        "{}[[event]]\nduring = \"rebuild\"\nafter = \"30s\"\nzero_canary = \"sda\"\n\n[expect]\noutcome = \"halted\"\nstep = \"rebuild\"\nreasons = [\"the copy on sda (serial S3Z1NB0K100001, bay 0) differs\", \"survivor sda (serial S3Z1NB0K100001, bay 0): canary data (member sda's copy)\", \"the data canary is left in place as evidence: `/srv/db/.swapguard/canary-\"]\n",
        &scenario[..at]
    );
    let path = dir.join("member-zeros.toml");
    std::fs::write(&path, scenario).unwrap();
    path
}

#[test]
fn a_canary_halt_names_the_member_by_serial_and_bay_and_leaves_the_canary_in_place() {
    let t = Test::new();
    let scenario = sim_member_zeros(t.dir.path());
    let state = t.state();
    let done = t
        .swapguard(&[
            "dry-run".as_ref(),
            "tests/fixtures/runbooks-e2e/replace-with-canary.toml".as_ref(),
            "--scenario".as_ref(),
            scenario.as_os_str(),
        ])
        .run()
        .code(0);
    let text = &done.stdout;
    assert!(
        text.contains("expectation met: halted at step `rebuild`"),
        "{text}"
    );
    let events = journal(&state);
    let kept = events
        .iter()
        .find(|e| e["event"] == "canary-kept")
        .expect("the canary is kept at the halt");
    assert!(
        kept["path"]
            .as_str()
            .unwrap()
            .starts_with("/srv/db/.swapguard/canary-md0-"),
        "{kept}"
    );
    assert!(!events.iter().any(|e| e["event"] == "canary-removed"));
    // The kept entry comes before the halted entry, which says where it is.
    let kept_at = events.iter().position(|e| e["event"] == "canary-kept");
    let halted_at = events.iter().position(|e| e["event"] == "halted");
    assert!(kept_at < halted_at, "{events:?}");
}
