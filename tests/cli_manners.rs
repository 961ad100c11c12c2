//! Whole-process tests of the CLI's manners: lint that does not fail open,
//! dry-run taking its runbook from the scenario, closed pipes, help, the
//! man page, `--version` and JSON format versions.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;

mod common;
use common::{Done, root};

/// Run the binary from the repository root with a scratch state directory.
fn swapguard(state: &Path, args: &[&str]) -> Done {
    common::swapguard(state, args).run()
}

/// A copy of a shipped runbook with one edit, in `dir`.
fn edited(dir: &Path, name: &str, from: &str, to: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml")).unwrap();
    assert!(text.contains(from), "{from:?}");
    let path = dir.join(name);
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
    path
}

#[test]
fn lint_fails_open_on_counter_names() {
    let dir = tempfile::tempdir().unwrap();
    let typo = edited(
        dir.path(),
        "typo.toml",
        "tolerate = []",
        "halt_on = [\"smart.udma_crc_eror_count\"]\ntolerate = [\"md.erors\"]",
    );
    let done = swapguard(&dir.path().join("state"), &["lint", typo.to_str().unwrap()]).code(2);
    for want in [
        "error: unknown counter in `halt_on`: `smart.udma_crc_eror_count`",
        "did you mean `smart.udma_crc_error_count`?",
        "error: unknown counter in `tolerate`: `md.erors`",
        "did you mean `md.errors`?",
        "2 errors, 0 warnings in 1 file",
    ] {
        assert!(done.stdout.contains(want), "{want}\n{}", done.stdout);
    }
}

#[test]
fn one_single_bracket_step_is_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml")).unwrap();
    let third = text.match_indices("[[step]]").nth(2).unwrap().0;
    let path = dir.path().join("single.toml");
    std::fs::write(
        &path,
        format!("{}[step]{}", &text[..third], &text[third + 8..]),
    )
    .unwrap();
    let line = text[..third].matches('\n').count() + 1;
    let done = swapguard(&dir.path().join("state"), &["lint", path.to_str().unwrap()]).code(2);
    assert!(
        done.stdout.contains(&format!("single.toml:{line}:1\n")),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.contains("write `[[step]]` (double brackets)"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.ends_with("1 error, 0 warnings in 1 file\n"),
        "{}",
        done.stdout
    );
}

#[test]
fn lint_dir_lints_every_runbook_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let done = swapguard(&dir.path().join("state"), &["lint", "runbooks"]).code(0);
    let shipped = std::fs::read_dir("runbooks")
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "toml")
        })
        .count();
    assert!(
        shipped >= 8,
        "md, zfs, btrfs and restore runbooks: {shipped}"
    );
    assert_eq!(
        done.stdout,
        format!("0 errors, 0 warnings in {shipped} files\n")
    );
    edited(dir.path(), "a.toml", "timeout = \"24h\"\n", "");
    edited(dir.path(), "b.toml", "[[step]]", "[step]");
    let done = swapguard(
        &dir.path().join("state"),
        &["lint", dir.path().to_str().unwrap()],
    )
    .code(2);
    assert!(
        done.stdout.contains("a.toml:") && done.stdout.contains("b.toml:"),
        "{}",
        done.stdout
    );
    assert!(
        done.stdout.ends_with("1 error, 1 warning in 2 files\n"),
        "{}",
        done.stdout
    );
}

#[test]
fn dry_run_takes_the_runbook_from_the_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let done = swapguard(
        &dir.path().join("state"),
        &[
            "dry-run",
            "--scenario",
            "runbooks/scenarios/md-replace-hot/healthy.toml",
        ],
    )
    .code(0);
    assert!(done.stdout.contains("expectation met"), "{}", done.stdout);
    // The same file under another spelling is the same runbook.
    swapguard(
        &dir.path().join("state"),
        &[
            "dry-run",
            "./runbooks/../runbooks/md-replace-hot.toml",
            "--scenario",
            "runbooks/scenarios/md-replace-hot/healthy.toml",
        ],
    )
    .code(0);
}

#[test]
fn dry_run_refuses_a_runbook_the_scenario_is_not_for() {
    let dir = tempfile::tempdir().unwrap();
    let done = swapguard(
        &dir.path().join("state"),
        &[
            "dry-run",
            "runbooks/md-replace-member.toml",
            "--scenario",
            "runbooks/scenarios/md-replace-hot/healthy.toml",
        ],
    )
    .code(2);
    assert!(done.stdout.is_empty(), "{}", done.stdout);
    assert!(
        done.stderr.contains(
            "md-replace-hot.toml` (its `[scenario] runbook`), not `runbooks/md-replace-member.toml`"
        ),
        "{}",
        done.stderr
    );
    assert!(
        !dir.path().join("state").join("sessions").exists()
            || std::fs::read_dir(dir.path().join("state").join("sessions"))
                .unwrap()
                .next()
                .is_none(),
        "no session may start"
    );
}

/// Run with stdout a pipe whose reading end is already closed, so the
/// first write fails with EPIPE, every time (no race with a reader).
fn with_closed_stdout(state: &Path, args: &[&str]) -> (i32, String) {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let mut child = common::swapguard(state, args)
        .command()
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    (status.code().unwrap_or(-1), stderr)
}

#[test]
fn broken_pipes_end_output_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for (args, want) in [
        (&["status", "--json"][..], 0),
        (&["status", "--no-smart"][..], 0),
        (&["completions", "bash"][..], 0),
        (&["man"][..], 0),
        (&["demo"][..], 0),
        (&["journal", "list"][..], 0),
        (&["quarantine", "list"][..], 0),
        (&["plan", "runbooks/md-replace-member.toml"][..], 0),
        (&["lint", "runbooks"][..], 0),
        (&["--help"][..], 0),
        (&["--version"][..], 0),
        (
            &[
                "dry-run",
                "--scenario",
                "runbooks/scenarios/md-replace-member/healthy.toml",
            ][..],
            0,
        ),
    ] {
        let (code, stderr) = with_closed_stdout(&state, args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(code, want, "{args:?}: {stderr}");
    }
    // The command's own verdict survives the closed pipe: lint errors are
    // still exit 2.
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[runbook]\n").unwrap();
    let (code, stderr) = with_closed_stdout(&state, &["lint", bad.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn man_page_has_exit_status_environment_files_and_see_also() {
    let dir = tempfile::tempdir().unwrap();
    let page = swapguard(&dir.path().join("state"), &["man"])
        .code(0)
        .stdout;
    for want in [
        ".SH \"EXIT STATUS\"",
        ".TP\n\\fB3\\fR\nHalted by the guard",
        ".TP\n\\fB130\\fR\n",
        ".SH \"ENVIRONMENT\"",
        "\\fBNO_COLOR\\fR",
        "\\fBTERM\\fR",
        "\\fBSUDO_USER, SUDO_UID\\fR",
        ".SH \"FILES\"",
        "/var/lib/swapguard/sessions/*.jsonl",
        "/var/lib/swapguard/locks/*.lock",
        "/var/lib/swapguard/quarantine.json",
        ".SH \"SEE ALSO\"\nmdadm(8), smartctl(8), ledctl(8)",
    ] {
        assert!(page.contains(want), "{want:?} missing:\n{page}");
    }
    // The exit codes are no longer justified text under EXTRA.
    assert!(!page.contains(".SH EXTRA"), "{page}");
    // `man --dir` writes the same main page.
    let out = dir.path().join("man");
    swapguard(
        &dir.path().join("state"),
        &["man", "--dir", out.to_str().unwrap()],
    )
    .code(0);
    assert_eq!(
        std::fs::read_to_string(out.join("swapguard.1")).unwrap(),
        page
    );
}

#[test]
fn every_help_has_examples_and_dry_run_arguments_are_described() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    for args in [
        &["quarantine", "list", "--help"][..],
        &["quarantine", "add", "--help"][..],
        &["quarantine", "release", "--help"][..],
        &["lint", "--help"][..],
        &["--help"][..],
    ] {
        let done = swapguard(&state, args).code(0);
        assert!(
            done.stdout.contains("Examples:\n  swapguard "),
            "{args:?}: {}",
            done.stdout
        );
    }
    let help = swapguard(&state, &["dry-run", "--help"]).code(0).stdout;
    assert!(
        help.contains("[RUNBOOK]") && help.contains("the one the scenario names"),
        "{help}"
    );
    assert!(help.contains("Scenario file"), "{help}");
}

#[test]
fn version_names_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let out = swapguard(&dir.path().join("state"), &["--version"])
        .code(0)
        .stdout;
    let rest = out
        .strip_prefix(&format!("swapguard {} (commit ", env!("CARGO_PKG_VERSION")))
        .unwrap_or_else(|| panic!("{out:?}"));
    let commit = rest
        .strip_suffix(")\n")
        .unwrap_or_else(|| panic!("{out:?}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{out:?}"
    );
}

#[test]
fn json_outputs_carry_a_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let json = |args: &[&str]| -> serde_json::Value {
        let done = swapguard(&state, args);
        serde_json::from_str(&done.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: {e}\n{}\n{}", done.stdout, done.stderr))
    };
    // An empty sysroot: no arrays, but a document all the same.
    let empty = dir.path().join("root");
    std::fs::create_dir_all(empty.join("sys/block")).unwrap();
    std::fs::create_dir_all(empty.join("proc")).unwrap();
    std::fs::write(
        empty.join("proc/mdstat"),
        "Personalities : [raid1]\nunused devices: <none>\n",
    )
    .unwrap();
    let status = json(&[
        "status",
        "--json",
        "--no-smart",
        "--sysroot",
        empty.to_str().unwrap(),
    ]);
    assert_eq!(status["format"], 1, "{status}");
    let list = json(&["quarantine", "list", "--json"]);
    assert_eq!(list["format"], 1, "{list}");
    assert!(list["drives"].is_array(), "{list}");
    let test = json(&["test", "--json", "runbooks/md-replace-hot.toml"]);
    assert_eq!(test["format"], 1, "{test}");
}
