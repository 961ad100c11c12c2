//! What the technician sees, proven through a real pseudo-terminal at a
//! fixed width: refusals that are not emergencies, a wrong pull named as
//! one, nothing but ASCII outside a UTF-8 locale, no text lost at any width
//! from 40 columns, the masked typed-serial prompt, md's own speed and
//! estimate, and a progress bar that stays down after the run's last words.
//!
//! The md runs use a copy of a captured md tree (two NVMe members); the
//! "pull" removes a drive from the copy. The demo runs the simulator.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use expectrl::{Eof, Session, WaitStatus};

const BIN: &str = env!("CARGO_BIN_EXE_swapguard");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A terminal of `cols` columns with everything it printed so far.
struct Screen {
    session: Session,
    out: Vec<u8>,
    cols: usize,
}

impl Screen {
    fn spawn(cmd: Command, cols: u16) -> Screen {
        let mut session = Session::spawn(cmd).unwrap();
        session.get_process_mut().set_window_size(cols, 40).unwrap();
        session.set_expect_timeout(Some(Duration::from_secs(60)));
        Screen {
            session,
            out: Vec::new(),
            cols: usize::from(cols),
        }
    }

    /// Wait for `needle`, keeping what came before it.
    fn wait(&mut self, needle: &str) {
        let found = self
            .session
            .expect(needle)
            .unwrap_or_else(|e| panic!("no `{needle}` ({e}) after:\n{}", self.text()));
        self.out.extend_from_slice(found.as_bytes());
    }

    fn send(&mut self, line: &str) {
        self.session.send_line(line).unwrap();
    }

    /// Read to the end and return the exit code.
    fn end(&mut self) -> i32 {
        let rest = self.session.expect(Eof).unwrap();
        self.out.extend_from_slice(rest.as_bytes());
        match self.session.get_process().wait().unwrap() {
            WaitStatus::Exited(_, code) => code,
            other => panic!("{other:?}:\n{}", self.text()),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    /// The text with runs of white space as one space, so a phrase can be
    /// found wherever the width wrapped it.
    fn flat(&self) -> String {
        strip_escapes(&self.text())
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// No printed line is wider than the terminal (nothing was cut off or
    /// left for the terminal to fold mid-word).
    fn assert_fits(&self) {
        let text = self.text();
        for line in text.split('\n') {
            let line = line.trim_end_matches('\r');
            // What the last carriage return left visible.
            let shown = strip_escapes(line.rsplit('\r').next().unwrap_or(line));
            let shown = shown.as_str();
            // Lint's warnings about the runbook (printed before the run
            // starts, in lint's own format) and the journal's path are not
            // the operator's screens.
            if shown.starts_with("warning: ")
                || shown.starts_with("  --> ")
                || shown.starts_with("   = help: ")
                || shown.starts_with("journal: ")
            {
                continue;
            }
            // A path longer than the terminal, alone on its line, is kept
            // whole (broken, it could not be copied); the terminal folds it
            // and no text is lost.
            let word = shown.trim();
            if word.starts_with('/') && !word.contains(' ') && shown.starts_with("    ") {
                continue;
            }
            assert!(
                shown.chars().count() <= self.cols,
                "a line of {} columns at {}:\n{shown}\n--- all of it:\n{text}",
                shown.chars().count(),
                self.cols
            );
        }
    }
}

/// `text` without CSI escape sequences (colour, bold).
fn strip_escapes(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `swapguard run` of `runbook` against a fresh copy of the clean md tree;
/// returns the command and the tree.
fn md_run(dir: &Path, runbook: &Path, target: &str, env: &[(&str, &str)]) -> (Command, PathBuf) {
    let tree = dir.join("tree");
    copy_tree(&root().join("tests/fixtures/md/clean"), &tree);
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .arg("run")
        .arg(runbook)
        .args(["--array", "md0", "--target", target])
        .arg("--sysroot")
        .arg(&tree)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .env_remove("LC_ALL")
        .env_remove("LC_CTYPE")
        .env_remove("NO_COLOR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    (cmd, tree)
}

fn pull_only() -> PathBuf {
    root().join("tests/fixtures/runbooks-e2e/pull-only.toml")
}

/// `pull-only.toml` with extra text appended (after its last step).
fn pull_only_with(
    dir: &Path,
    name: &str,
    extra_before_steps: &str,
    replace: (&str, &str),
) -> PathBuf {
    let text = std::fs::read_to_string(pull_only())
        .unwrap()
        .replace(replace.0, replace.1)
        .replace(
            "[[step]]\nid = \"antistatic\"",
            &format!("{extra_before_steps}\n[[step]]\nid = \"antistatic\""),
        );
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn refusal_for_a_mistyped_target_is_not_an_emergency() {
    for term in ["dumb", "xterm-256color"] {
        let dir = tempfile::tempdir().unwrap();
        let (cmd, _tree) = md_run(
            dir.path(),
            Path::new("tests/fixtures/runbooks-e2e/pull-only.toml"),
            "LAB-B-0009",
            &[("TERM", term), ("LANG", "en_US.UTF-8")],
        );
        let mut screen = Screen::spawn(cmd, 60);
        let code = screen.end();
        let text = screen.text();
        let flat = screen.flat();
        assert_eq!(code, 4, "{term}: refused:\n{text}");
        for want in [
            "NOT STARTED",
            "nothing was touched",
            "what failed:",
            "target `LAB-B-0009` is not present",
            "checked: the target named on the command line",
            "to fix: name the target by one of the members listed above",
            "then run again:",
        ] {
            assert!(flat.contains(want), "{term}: no `{want}`:\n{text}");
        }
        // The command to run again, pasteable: broken only with ` \`.
        let command = flat.replace(" \\ ", " ");
        assert!(
            command.contains(
                "swapguard run tests/fixtures/runbooks-e2e/pull-only.toml --array md0 --target SERIAL"
            ),
            "{term}:\n{text}"
        );
        for alarm in ["STOP", "Hands out", "!!!!!!!!", "\x1b[31m"] {
            assert!(
                !text.contains(alarm),
                "{term}: `{alarm}` in a refusal:\n{text}"
            );
        }
        screen.assert_fits();
    }
}

/// Run the pull, pull the survivor (`nvme0n1`, LAB-A-0001) instead of the
/// target, and return the screen after the halt.
fn wrong_pull(runbook: &Path, cols: u16, env: &[(&str, &str)]) -> (Screen, i32) {
    let dir = tempfile::tempdir().unwrap();
    let (cmd, tree) = md_run(dir.path(), runbook, "LAB-B-0002", env);
    let mut screen = Screen::spawn(cmd, cols);
    screen.wait("y/n");
    screen.send("y");
    screen.wait("STEP 2 OF 2");
    screen.wait("watching");
    std::fs::remove_dir_all(tree.join("sys/block/nvme0n1")).unwrap();
    let code = screen.end();
    (screen, code)
}

#[test]
fn wrong_pull_says_you_pulled_a_survivor_and_where_it_goes_back() {
    let (screen, code) = wrong_pull(&pull_only(), 80, &[("TERM", "dumb")]);
    let flat = screen.flat();
    assert_eq!(code, 3, "halted:\n{}", screen.text());
    assert!(
        flat.contains(
            "STOP - you pulled nvme0n1 (serial LAB-A-0001, bay unknown), which is a SURVIVOR; \
             put it back where it came from now, do not touch anything else"
        ),
        "{}",
        screen.text()
    );
    assert!(!flat.contains("degraded during"), "{}", screen.text());
    screen.assert_fits();
}

#[test]
fn a_halt_prints_the_guidance_for_its_step_kind() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = pull_only_with(
        dir.path(),
        "kinds.toml",
        "[on_halt.kind]\nphysical = \"Put the drive you pulled back in its bay.\"\n\
         wait = \"The lid stays closed; call the storage lead.\"\n",
        ("", ""),
    );
    let (screen, code) = wrong_pull(&runbook, 80, &[("TERM", "dumb")]);
    let text = screen.text();
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("Put the drive you pulled back in its bay."),
        "{text}"
    );
    assert!(!text.contains("Hands out of the chassis"), "{text}");
    assert!(!text.contains("lid stays closed"), "{text}");
}

#[test]
fn lang_c_and_vt100_get_only_ascii_and_the_arrow_as_ascii() {
    for (term, lang) in [("vt100", "C"), ("linux", "C"), ("xterm-256color", "POSIX")] {
        let (screen, code) = wrong_pull(&pull_only(), 60, &[("TERM", term), ("LANG", lang)]);
        assert_eq!(code, 3, "{}", screen.text());
        let bad: Vec<u8> = screen
            .out
            .iter()
            .copied()
            .filter(|b| !b.is_ascii())
            .collect();
        assert!(
            bad.is_empty(),
            "{term} {lang}: non-ASCII bytes {bad:x?} in:\n{}",
            screen.text()
        );
        assert!(
            screen.flat().contains("present yes -> vanished"),
            "{term} {lang}:\n{}",
            screen.text()
        );
    }
    // And a UTF-8 locale keeps the arrow.
    let (screen, _) = wrong_pull(
        &pull_only(),
        60,
        &[("TERM", "xterm-256color"), ("LANG", "en_US.UTF-8")],
    );
    assert!(
        screen.flat().contains("present yes \u{2192} vanished"),
        "{}",
        screen.text()
    );
}

#[test]
fn no_text_is_lost_at_any_width_from_40_columns() {
    for cols in [40, 60, 80, 120] {
        let (screen, code) = wrong_pull(&pull_only(), cols, &[("TERM", "dumb")]);
        assert_eq!(code, 3, "{cols}:\n{}", screen.text());
        let flat = screen.flat();
        for want in [
            "Put on the anti-static wrist strap.",
            "Pull the drive with serial LAB-B-0002.",
            "nvme0n1 (serial LAB-A-0001, bay unknown)",
            "survivor nvme0n1 (serial LAB-A-0001, bay unknown): present yes -> vanished",
            "STOP. Hands out of the chassis.",
        ] {
            assert!(
                flat.contains(want),
                "{cols}: no `{want}`:\n{}",
                screen.text()
            );
        }
        // A serial is never split from its label or across lines.
        assert!(
            !screen.text().contains("serial\n"),
            "{cols}:\n{}",
            screen.text()
        );
        screen.assert_fits();
    }
}

#[test]
fn the_typed_serial_prompt_masks_the_last_four() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = pull_only_with(
        dir.path(),
        "confirmed.toml",
        "",
        (
            "quarantine = \"target\"\n",
            "quarantine = \"target\"\nconfirm = \"type-serial\"\n",
        ),
    );
    let (cmd, tree) = md_run(dir.path(), &runbook, "LAB-B-0002", &[("TERM", "dumb")]);
    let mut screen = Screen::spawn(cmd, 60);
    screen.wait("y/n");
    screen.send("y");
    screen.wait("type it here");
    let text = screen.text();
    let prompt: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.contains("Read the serial"))
        .collect();
    let prompt = prompt.join(" ");
    assert!(prompt.contains("LAB-B-****"), "{text}");
    assert!(
        !prompt.contains("0002"),
        "the prompt shows what to type:\n{text}"
    );
    screen.send("0002");
    screen.wait("watching");
    std::fs::remove_dir_all(tree.join("sys/block/nvme1n1")).unwrap();
    assert_eq!(screen.end(), 0, "{}", screen.text());
}

/// The demo, answered as a technician would, at `term`.
fn demo(term: &str, cols: u16) -> Screen {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(root())
        .arg("demo")
        .env("TERM", term)
        .env("NO_COLOR", "1")
        .env("LANG", "en_US.UTF-8")
        .env_remove("LC_ALL");
    let mut screen = Screen::spawn(cmd, cols);
    screen.wait("PART 1");
    screen.wait("y/n");
    screen.send("y");
    screen.wait("type it here");
    screen.send("0003");
    screen.wait("PART 2");
    screen.wait("y/n");
    screen.send("y");
    assert_eq!(screen.end(), 0, "{}", screen.text());
    screen
}

#[test]
fn the_rebuild_shows_md_speed_and_estimate_and_the_demo_halt_lists_every_counter() {
    let screen = demo("dumb", 80);
    let text = screen.text();
    // The rebuild's lines carry the backend's speed and its estimate.
    let progress: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("recover of md0:"))
        .collect();
    assert!(!progress.is_empty(), "{text}");
    assert!(
        progress
            .iter()
            .any(|l| l.contains("/s, about ") && l.contains(" left)")),
        "{progress:#?}"
    );
    assert!(!text.contains("(eta "), "{text}");
    // Part 2's halt names both counters that moved, not only the first.
    let halt = &text[text.rfind("STOP - ").unwrap()..];
    for counter in ["md.errors 0 -> 4", "smart.reported_uncorrect 0 -> 9"] {
        assert!(
            halt.replace('\u{2192}', "->").contains(counter),
            "no `{counter}` in the halt:\n{halt}"
        );
    }
}

#[test]
fn the_progress_bar_is_not_drawn_again_after_the_last_words() {
    let screen = demo("xterm-256color", 100);
    let text = screen.text();
    let done = text
        .find("all steps done")
        .unwrap_or_else(|| panic!("no final note:\n{text}"));
    let part2 = text[done..].find("PART 2").map_or(text.len(), |i| done + i);
    let after = &text[done..part2];
    assert!(
        !after.contains("recover of md0"),
        "the bar came back after the final message:\n{after:?}"
    );
}
