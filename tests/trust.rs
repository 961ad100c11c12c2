//! Whole-process tests of what a root run trusts: each performs the attack
//! first (a symlink swapped while runs start, `su`-style `SUDO_UID`, a
//! forged journal with its chain recomputed, a sequence number at 2^64−1,
//! a line too long to hold) and shows it now fails safely. They need root
//! (ownership checks apply to root only); elsewhere they say they skip, and
//! fail under `CI=true`, where they must run.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

mod common;
use common::{Done, Test, root};

/// Another user's uid: `nobody` (files are chowned to it; nothing runs
/// as it).
const OTHER_UID: u32 = 65534;

/// Whether the test can run: root. Not root is a skip, said out loud, and a
/// failure under CI, where these tests must run.
fn as_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test} must run as root under CI"
    );
    eprintln!("skipped {test}: needs root (the checks apply to root runs only)");
    false
}

/// A scratch machine: a copied md tree, a state directory, the test
/// runbook and its answers.
struct Machine(Test);

impl std::ops::Deref for Machine {
    type Target = Test;
    fn deref(&self) -> &Test {
        &self.0
    }
}

impl Machine {
    fn new() -> Machine {
        let t = Test::machine();
        // The resumes here start after `antistatic` was answered.
        t.write("no-answers.toml", "");
        Machine(t)
    }

    fn swapguard(&self, args: &[&str], env: &[(&str, &str)], crash_after: Option<u64>) -> Done {
        let mut run = self.0.swapguard(args);
        for (k, v) in env {
            run = run.env(k, v);
        }
        match crash_after {
            Some(n) => run.crash_after(n),
            None => run,
        }
        .run()
    }

    fn run_with(&self, runbook: &str, env: &[(&str, &str)], crash_after: Option<u64>) -> Done {
        self.swapguard(
            &[
                "run",
                runbook,
                "--array",
                "md0",
                "--target",
                "nvme1n1",
                "--answers",
                "answers.toml",
            ],
            env,
            crash_after,
        )
    }

    fn resume(&self) -> Done {
        self.swapguard(&["resume", "--answers", "no-answers.toml"], &[], None)
    }

    /// The session's name (its journal's file name without `.jsonl`).
    fn name(&self) -> String {
        self.session_name()
    }

    fn lines(&self) -> Vec<String> {
        std::fs::read_to_string(self.session())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A run killed right after it journals the start of the `pull` step:
/// a session `resume` would pick up.
fn killed_during_the_pull() -> Machine {
    for n in 1..40 {
        let m = Machine::new();
        let done = m.run_with("pull-only.toml", &[], Some(n));
        assert_eq!(done.code, None, "the kill switch aborts: {}", done.stderr);
        let last: serde_json::Value = serde_json::from_str(m.lines().last().unwrap()).unwrap();
        if last["event"] == "step-started" && last["step"] == "pull" {
            return m;
        }
    }
    panic!("the run never journaled the start of `pull`");
}

/// The runbook an attacker wants root to run: the test runbook with a
/// first step that leaves a mark (a harmless file in the scratch dir).
fn evil_runbook(m: &Machine) -> (PathBuf, PathBuf) {
    let mark = m.path("pwned");
    let good = std::fs::read_to_string(m.path("pull-only.toml")).unwrap();
    let step = format!(
        "[[step]]\nid = \"evil\"\nkind = \"command\"\nrun = [\"sh\", \"-c\", \"id > {}\"]\nshell = true\n\n",
        mark.display()
    );
    let at = good.find("[[step]]").unwrap();
    let evil = format!("{}{step}{}", &good[..at], &good[at..]);
    let path = m.path("evil.toml");
    std::fs::write(&path, evil).unwrap();
    (path, mark)
}

/// Recompute the SHA-256 chain over `lines`, as someone without the key
/// could; with `key`, seal each line with a MAC too, as only root could.
fn rechain(lines: &[serde_json::Value], key: Option<&swapguard::journal::Key>) -> String {
    let mut prev = swapguard::journal::GENESIS.to_string();
    let mut out = String::new();
    for v in lines {
        let mut v = v.clone();
        let obj = v.as_object_mut().unwrap();
        obj.remove("mac");
        obj.insert("prev".into(), prev.clone().into());
        let body = serde_json::to_string(&v).unwrap();
        let line = match key {
            Some(k) => k.seal(&body),
            None => body,
        };
        prev = swapguard::journal::line_hash(&line);
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn values(m: &Machine) -> Vec<serde_json::Value> {
    m.lines()
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Flip `link` between `a` and `b` (atomically, by rename) until `stop`.
fn flipper(
    link: PathBuf,
    a: PathBuf,
    b: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let tmp = link.with_extension("flip");
        let mut flips = 0u64;
        while !stop.load(Ordering::SeqCst) {
            let to = if flips % 2 == 0 { &a } else { &b };
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(to, &tmp).unwrap();
            std::fs::rename(&tmp, &link).unwrap();
            flips += 1;
        }
        flips
    })
}

#[test]
fn runbook_symlink_swap_race_never_runs_another_users_runbook() {
    if !as_root("runbook_symlink_swap_race_never_runs_another_users_runbook") {
        return;
    }
    let m = Machine::new();
    let (evil, mark) = evil_runbook(&m);
    std::os::unix::fs::chown(&evil, Some(OTHER_UID), None).unwrap();
    // The file link flips between root's runbook and another user's; so
    // does a directory link on the way to a runbook.
    let good_dir = m.path("good");
    let evil_dir = m.path("evil");
    std::fs::create_dir(&good_dir).unwrap();
    std::fs::create_dir(&evil_dir).unwrap();
    std::fs::copy(m.path("pull-only.toml"), good_dir.join("rb.toml")).unwrap();
    std::fs::copy(&evil, evil_dir.join("rb.toml")).unwrap();
    std::os::unix::fs::chown(evil_dir.join("rb.toml"), Some(OTHER_UID), None).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let flips = [
        flipper(
            m.path("rb.toml"),
            m.path("pull-only.toml"),
            evil.clone(),
            stop.clone(),
        ),
        flipper(m.path("d"), good_dir, evil_dir, stop.clone()),
    ];
    // Wait for both links to exist.
    while !(m.path("rb.toml").exists() && m.path("d/rb.toml").exists()) {
        std::thread::yield_now();
    }
    let mut outcomes = Vec::new();
    for i in 0..40 {
        let runbook = if i % 2 == 0 { "rb.toml" } else { "d/rb.toml" };
        let done = m.run_with(runbook, &[], None);
        outcomes.push((runbook, done.code, done.stderr));
    }
    stop.store(true, Ordering::SeqCst);
    let flipped: u64 = flips.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(
        flipped > 40,
        "the links flipped while runs started ({flipped})"
    );
    assert!(!mark.exists(), "root ran another user's runbook");
    for (runbook, code, stderr) in &outcomes {
        assert_eq!(*code, Some(2), "{runbook}: {stderr}");
        assert!(
            stderr.contains("refusing runbook") && stderr.contains("symlink"),
            "{runbook}: {stderr}"
        );
    }
    assert!(!m.path("state/sessions").exists(), "nothing was journaled");
}

#[test]
fn su_style_sudo_uid_does_not_vouch_for_another_users_runbook() {
    if !as_root("su_style_sudo_uid_does_not_vouch_for_another_users_runbook") {
        return;
    }
    let m = Machine::new();
    let (evil, mark) = evil_runbook(&m);
    std::os::unix::fs::chown(&evil, Some(OTHER_UID), None).unwrap();
    // `su` without `-` from a shell that once ran sudo as that user keeps
    // SUDO_UID/SUDO_USER: the environment claims the file's owner is the
    // person at the keyboard.
    let uid = OTHER_UID.to_string();
    let done = m.run_with(
        "evil.toml",
        &[("SUDO_UID", &uid), ("SUDO_USER", "nobody")],
        None,
    );
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("owned by user id 65534, not root")
            && done.stderr.contains("the login uid counts, not `SUDO_UID`"),
        "{}",
        done.stderr
    );
    assert!(!mark.exists(), "root ran another user's runbook");
}

#[test]
fn answers_and_scenario_files_are_opened_once_without_following_links() {
    if !as_root("answers_and_scenario_files_are_opened_once_without_following_links") {
        return;
    }
    let m = Machine::new();
    std::os::unix::fs::symlink(m.path("answers.toml"), m.path("linked-answers.toml")).unwrap();
    let done = m.swapguard(
        &[
            "run",
            "pull-only.toml",
            "--array",
            "md0",
            "--target",
            "nvme1n1",
            "--answers",
            "linked-answers.toml",
        ],
        &[],
        None,
    );
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("refusing answers file") && done.stderr.contains("symlink"),
        "{}",
        done.stderr
    );
    // Another user's answers file is refused like another user's runbook.
    std::os::unix::fs::chown(m.path("answers.toml"), Some(OTHER_UID), None).unwrap();
    let done = m.run_with("pull-only.toml", &[], None);
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("refusing answers file")
            && done.stderr.contains("owned by user id 65534"),
        "{}",
        done.stderr
    );
    // A scenario reached through a link.
    let scenario = root().join("runbooks/scenarios/md-replace-member/healthy.toml");
    std::os::unix::fs::symlink(&scenario, m.path("scenario.toml")).unwrap();
    let done = m.swapguard(
        &[
            "dry-run",
            &root()
                .join("runbooks/md-replace-member.toml")
                .display()
                .to_string(),
            "--scenario",
            "scenario.toml",
        ],
        &[],
        None,
    );
    assert_ne!(done.code, Some(0), "{}", done.stdout);
    assert!(
        done.stderr.contains("refusing scenario") && done.stderr.contains("symlink"),
        "{}",
        done.stderr
    );
    assert!(!m.path("state/sessions").exists(), "nothing was journaled");
}

#[test]
fn resume_refuses_a_forged_journal_and_runs_nothing_from_it() {
    if !as_root("resume_refuses_a_forged_journal_and_runs_nothing_from_it") {
        return;
    }
    let m = killed_during_the_pull();
    let (evil, mark) = evil_runbook(&m);
    let evil_hash = swapguard::runbook::load::hash(&std::fs::read_to_string(&evil).unwrap());
    let original = std::fs::read(m.session()).unwrap();
    let mut lines = values(&m);
    lines[0]["runbook"] = evil.display().to_string().into();
    lines[0]["runbook_hash"] = evil_hash.into();
    let journal = m.session();
    let cases: [(&str, String, &str); 3] = [
        // The whole SHA-256 chain recomputed, the MACs dropped: what
        // anyone who can write the file could do before the chain was keyed.
        (
            "chain recomputed, no MACs",
            rechain(&lines, None),
            "carries no MACs",
        ),
        // The chain recomputed, the old MACs kept: they no longer match.
        (
            "chain recomputed, old MACs",
            {
                let mut out = String::new();
                let mut prev = swapguard::journal::GENESIS.to_string();
                for v in &lines {
                    let mut v = v.clone();
                    v["prev"] = prev.clone().into();
                    // The old MAC kept last, where a line's MAC goes.
                    let mac = v.as_object_mut().unwrap().remove("mac").unwrap();
                    let mut l = serde_json::to_string(&v).unwrap();
                    l.pop();
                    l.push_str(&format!(",\"mac\":{mac}}}"));
                    prev = swapguard::journal::line_hash(&l);
                    out.push_str(&l);
                    out.push('\n');
                }
                out
            },
            "MAC does not match",
        ),
        // Not even the chain: the first line edited in place.
        (
            "chain broken",
            {
                let text = String::from_utf8(original.clone()).unwrap();
                let first = text.lines().next().unwrap();
                let v: serde_json::Value = serde_json::from_str(first).unwrap();
                let edited = first.replace(
                    &format!("\"runbook\":{}", v["runbook"]),
                    &format!(
                        "\"runbook\":{}",
                        serde_json::json!(evil.display().to_string())
                    ),
                );
                assert_ne!(edited, first);
                text.replacen(first, &edited, 1)
            },
            "does not verify",
        ),
    ];
    for (name, forged, want) in cases {
        std::fs::write(&journal, &forged).unwrap();
        let done = m.resume();
        assert_eq!(done.code, Some(2), "{name}: {}{}", done.stdout, done.stderr);
        assert!(
            done.stderr.contains("refusing to resume session") && done.stderr.contains(want),
            "{name}: {}",
            done.stderr
        );
        assert!(
            !mark.exists(),
            "{name}: root ran the forged journal's runbook"
        );
        assert_eq!(
            std::fs::read_to_string(&journal).unwrap(),
            forged,
            "{name}: nothing appended"
        );
        // `journal verify` does not vouch for it either.
        let v = m.swapguard(&["journal", "verify", &m.name()], &[], None);
        assert_eq!(v.code, Some(1), "{name}: {}", v.stdout);
        if name == "chain recomputed, no MACs" {
            assert!(
                v.stdout.contains("hash chain intact, unkeyed")
                    && v.stdout.contains("`resume` refuses this journal"),
                "{}",
                v.stdout
            );
        }
    }
    // The real journal, but someone else's file or readable by others.
    std::fs::write(&journal, &original).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o644)).unwrap();
    let done = m.resume();
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("mode 0644, not owner 0 mode 0600"),
        "{}",
        done.stderr
    );
    std::fs::set_permissions(&journal, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&journal, Some(OTHER_UID), None).unwrap();
    let done = m.resume();
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("refusing journal") && done.stderr.contains("owned by user id 65534"),
        "{}",
        done.stderr
    );
    std::os::unix::fs::chown(&journal, Some(0), None).unwrap();
    // And the untouched journal still resumes and finishes the job.
    std::fs::remove_dir_all(m.path("tree/sys/block/nvme1n1")).unwrap();
    let done = m.resume();
    assert_eq!(done.code, Some(0), "{}{}", done.stdout, done.stderr);
    let v = m.swapguard(&["journal", "verify", &m.name()], &[], None);
    assert_eq!(v.code, Some(0), "{}", v.stdout);
    assert!(
        v.stdout.contains("every line's MAC checked with the key"),
        "{}",
        v.stdout
    );
}

#[test]
fn resume_refuses_journaled_parameters_the_runbook_would_not_take() {
    if !as_root("resume_refuses_journaled_parameters_the_runbook_would_not_take") {
        return;
    }
    let m = killed_during_the_pull();
    // Even with the key (as root), parameters are checked again.
    let key = swapguard::journal::Key::load(&m.path("state"))
        .unwrap()
        .unwrap();
    let mut lines = values(&m);
    lines[0]["params"]["target"] = "nvme1n1; touch pwned".into();
    std::fs::write(m.session(), rechain(&lines, Some(&key))).unwrap();
    let done = m.resume();
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("parameter `target`")
            && done.stderr.contains("does not look like a `member`"),
        "{}",
        done.stderr
    );
    lines[0]["params"]["target"] = "nvme1n1".into();
    lines[0]["params"]["extra"] = "x".into();
    std::fs::write(m.session(), rechain(&lines, Some(&key))).unwrap();
    let done = m.resume();
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr
            .contains("parameter `extra`, which the runbook does not declare"),
        "{}",
        done.stderr
    );
}

#[test]
fn resume_never_wraps_a_forged_last_seq_of_2_64_minus_1() {
    if !as_root("resume_never_wraps_a_forged_last_seq_of_2_64_minus_1") {
        return;
    }
    let m = killed_during_the_pull();
    let key = swapguard::journal::Key::load(&m.path("state"))
        .unwrap()
        .unwrap();
    let last = m.lines().pop().unwrap();
    let forged = serde_json::json!({
        "seq": u64::MAX,
        "at": "2026-01-01T00:00:00.000Z",
        "prev": swapguard::journal::line_hash(&last),
        "event": "preflight-passed",
    });
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(m.session())
        .unwrap();
    writeln!(f, "{}", key.seal(&serde_json::to_string(&forged).unwrap())).unwrap();
    drop(f);
    let before = std::fs::read(m.session()).unwrap();
    let done = m.resume();
    assert_eq!(done.code, Some(2), "{}", done.stderr);
    assert!(
        done.stderr.contains("has seq 18446744073709551615"),
        "{}",
        done.stderr
    );
    assert_eq!(
        std::fs::read(m.session()).unwrap(),
        before,
        "no seq 0 written"
    );
}

#[test]
fn report_says_who_ran_it_from_the_uid_and_sudo_user_only_as_a_claim() {
    if !as_root("report_says_who_ran_it_from_the_uid_and_sudo_user_only_as_a_claim") {
        return;
    }
    let m = Machine::new();
    // Root without SUDO_USER (cron, a root shell): the report said "by unknown".
    let done = m.run_with("pull-only.toml", &[("USER", ""), ("LOGNAME", "")], Some(3));
    assert_eq!(done.code, None, "{}", done.stderr);
    let session = m.name();
    let report = m.swapguard(&["report", &session], &[], None);
    assert_eq!(report.code, Some(0), "{}", report.stderr);
    assert!(
        report.stdout.contains(" by root (uid 0)"),
        "{}",
        report.stdout
    );
    assert!(!report.stdout.contains("by unknown"), "{}", report.stdout);
    // A SUDO_USER that `su` left behind is shown as a claim, not as who.
    let m = Machine::new();
    let done = m.run_with("pull-only.toml", &[("SUDO_USER", "mallory")], Some(3));
    assert_eq!(done.code, None, "{}", done.stderr);
    let session = m.name();
    let report = m.swapguard(&["report", &session], &[], None);
    assert!(
        report.stdout.contains("root (uid 0)")
            && report.stdout.contains("mallory claimed via SUDO_USER"),
        "{}",
        report.stdout
    );
}

#[test]
fn a_journal_line_too_long_to_hold_is_a_clear_error_in_every_reader() {
    if !as_root("a_journal_line_too_long_to_hold_is_a_clear_error_in_every_reader") {
        return;
    }
    let m = killed_during_the_pull();
    let n = m.lines().len() + 1;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(m.session())
        .unwrap();
    // 17 MiB of one line: over the 16 MiB cap (a 300 MB one came from a
    // command's output before output was capped).
    let chunk = vec![b'0'; 1 << 20];
    for _ in 0..17 {
        f.write_all(&chunk).unwrap();
    }
    f.write_all(b"\n").unwrap();
    drop(f);
    let session = m.name();
    let want = format!("line {n} cannot be read: longer than 16 MiB");
    let path = m.session().display().to_string();
    for args in [
        vec!["journal", "verify", session.as_str()],
        vec!["report", session.as_str()],
        vec!["resume", session.as_str(), "--answers", "answers.toml"],
    ] {
        let done = m.swapguard(&args, &[], None);
        assert_ne!(done.code, Some(0), "{args:?}");
        assert!(
            done.stderr.contains(&want) && done.stderr.contains(&path),
            "{args:?}: {}",
            done.stderr
        );
    }
}
