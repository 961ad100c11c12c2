//! Whole-process tests of injection: values pasted into commands (params
//! from the command line, strings read from the hardware) must never be read
//! as shell syntax or as options, and strings from files, the hardware or
//! the journal must never reach the terminal as escape sequences.
//!
//! Each test performs the attack against the real binary, on a copy of a
//! captured md tree (`--sysroot`), with harmless target files in a scratch
//! directory.

use std::path::Path;

mod common;
use common::{BIN, Done, Test, root};

/// The binary under test; `INJECT_TEST_BIN` points these tests at another
/// build (an older one, to see them fail before a fix).
fn bin() -> String {
    std::env::var("INJECT_TEST_BIN").unwrap_or_else(|_| BIN.to_string())
}

/// A scratch machine: a copy of the clean two-NVMe md tree and a state
/// directory, in a private temporary directory.
struct Machine(Test);

impl std::ops::Deref for Machine {
    type Target = Test;
    fn deref(&self) -> &Test {
        &self.0
    }
}

/// A runbook with one command step running `run` (a TOML array), with the
/// `replica` text param declared by `replica` (a TOML inline table).
fn runbook(run: &str, shell: bool, replica: &str) -> String {
    format!(
        r#"[runbook]
name = "injection test"
backend = "md"

[params]
array = {{ kind = "array", help = "md array" }}
target = {{ kind = "member", help = "member" }}
replica = {replica}

[guard]
smart = "optional"

[preflight]
require = ["target-identified"]

[on_halt]
say = "STOP."

[[step]]
id = "note"
kind = "command"
run = {run}
confirm = "type-serial"
confirm_drive = "target"
{}
"#,
        if shell { "shell = true" } else { "" }
    )
}

const TEXT: &str = r#"{ kind = "text", help = "replica host" }"#;

impl Machine {
    fn new() -> Machine {
        Machine(Test::new().in_scratch().tree("tests/fixtures/md/clean"))
    }

    /// Give the target (nvme1n1) a serial of the attacker's choosing.
    fn target_serial(&self, serial: &str) {
        self.write(
            "tree/sys/block/nvme1n1/device/serial",
            &format!("{serial}\n"),
        );
    }

    fn swapguard(&self, args: &[&str]) -> Done {
        self.0.swapguard(args).program(bin()).run()
    }

    /// `swapguard run rb.toml` on md0, target nvme1n1, answering the typed
    /// confirmation with `serial4`, plus `extra` arguments.
    fn run(&self, serial4: &str, extra: &[&str]) -> Done {
        self.write("answers.toml", &format!("note = {serial4:?}\n"));
        let mut args = vec![
            "run",
            "rb.toml",
            "--array",
            "md0",
            "--target",
            "nvme1n1",
            "--answers",
            "answers.toml",
        ];
        args.extend_from_slice(extra);
        self.swapguard(&args)
    }

    fn sessions(&self) -> usize {
        std::fs::read_dir(self.path("state/sessions")).map_or(0, |d| d.count())
    }
}

#[test]
fn a_param_with_shell_syntax_is_refused_before_anything_runs() {
    let m = Machine::new();
    let file = m.path("FILE");
    let out = m.path("out");
    m.write(
        "rb.toml",
        &runbook(
            &format!(r#"["sh", "-c", "echo {{replica}} > {}"]"#, out.display()),
            true,
            TEXT,
        ),
    );
    let param = format!("replica=x; touch {}", file.display());
    let done = m.run("0002", &["--param", &param]);
    assert_eq!(done.code, Some(2), "{}", done.both());
    assert!(
        done.stderr.contains("param `replica`") && done.stderr.contains("must match"),
        "{}",
        done.both()
    );
    assert!(!file.exists(), "the injected command ran");
    assert!(!out.exists(), "the step ran");
    assert_eq!(m.sessions(), 0, "nothing is journaled for a refused param");
}

#[test]
fn a_param_in_a_shell_line_is_quoted_even_when_its_pattern_allows_anything() {
    let m = Machine::new();
    let file = m.path("FILE");
    let out = m.path("out");
    m.write(
        "rb.toml",
        &runbook(
            &format!(r#"["sh", "-c", "echo {{replica}} > {}"]"#, out.display()),
            true,
            r#"{ kind = "text", help = "replica host", pattern = ".*" }"#,
        ),
    );
    let param = format!(
        "replica=x; touch {} $(touch {0}) `touch {0}`",
        file.display()
    );
    let done = m.run("0002", &["--param", &param]);
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert!(!file.exists(), "the injected command ran");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{}\n", &param["replica=".len()..]),
        "the value arrives whole and literal"
    );
}

#[test]
fn a_hostile_serial_in_a_shell_line_does_nothing() {
    let m = Machine::new();
    let file = m.path("FILE");
    let out = m.path("out");
    let serial = format!("$(touch {})", file.display());
    m.target_serial(&serial);
    m.write(
        "rb.toml",
        &runbook(
            &format!(
                r#"["sh", "-c", "echo {{target.serial}} > {}"]"#,
                out.display()
            ),
            true,
            TEXT,
        ),
    );
    let done = m.run("ILE)", &[]);
    assert!(
        !file.exists(),
        "the serial ran as a command: {}",
        done.both()
    );
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{serial}\n")
    );
}

#[test]
fn a_hostile_serial_in_an_argv_is_refused() {
    let m = Machine::new();
    let file = m.path("FILE");
    let out = m.path("out");
    m.target_serial(&format!("$(touch {})", file.display()));
    m.write(
        "rb.toml",
        &runbook(
            &format!(r#"["touch", "{}", "{{target.serial}}"]"#, out.display()),
            false,
            TEXT,
        ),
    );
    let done = m.run("ILE)", &[]);
    assert_ne!(done.code, Some(0), "{}", done.both());
    assert!(
        done.stdout.contains("`{target.serial}`") && done.stdout.contains("refused"),
        "{}",
        done.both()
    );
    assert!(!out.exists(), "the command ran");
    assert!(!file.exists());
}

#[test]
fn a_param_that_begins_with_a_dash_is_refused_in_an_argv() {
    let m = Machine::new();
    let out = m.path("out");
    m.write(
        "rb.toml",
        &runbook(
            &format!(r#"["touch", "{{replica}}", "{}"]"#, out.display()),
            false,
            TEXT,
        ),
    );
    let done = m.run("0002", &["--param", "replica=--delete-all"]);
    assert_eq!(done.code, Some(2), "{}", done.both());
    assert!(
        done.stderr.contains("begins with `-`") && done.stderr.contains("allow_dash"),
        "{}",
        done.both()
    );
    assert!(!out.exists(), "the command ran");
    // The runbook can allow it, and says so to whoever lints it.
    m.write(
        "rb.toml",
        &runbook(
            &format!(r#"["touch", "{}", "{{replica}}"]"#, out.display()),
            false,
            r#"{ kind = "text", help = "an option", allow_dash = true }"#,
        ),
    );
    let done = m.run("0002", &["--param", "replica=--no-create"]);
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert!(
        done.stderr.contains("may begin with `-`"),
        "{}",
        done.both()
    );
}

#[test]
fn lint_refuses_a_variable_that_quoting_cannot_protect_in_a_shell_line() {
    let m = Machine::new();
    m.write(
        "rb.toml",
        &runbook(
            r#"["sh", "-c", "logger 'serial {target.serial}'"]"#,
            true,
            TEXT,
        ),
    );
    let done = m.swapguard(&["lint", "rb.toml"]);
    assert_eq!(done.code, Some(2), "{}", done.both());
    assert!(
        done.stdout
            .contains("`{target.serial}` cannot be quoted safely in a shell command line: it is inside single quotes"),
        "{}",
        done.both()
    );
    assert!(done.stdout.contains("rb.toml:22:37"), "{}", done.both());
    // Written as a plain word it is fine: swapguard quotes it.
    m.write(
        "rb.toml",
        &runbook(
            r#"["sh", "-c", "logger serial {target.serial}"]"#,
            true,
            TEXT,
        ),
    );
    let done = m.swapguard(&["lint", "rb.toml"]);
    assert_eq!(done.code, Some(0), "{}", done.both());
}

// ---- Terminal output is clean everywhere -------------------------------

/// An OSC 52 clipboard write, a screen clear, a C1 CSI and a bidi override.
const EVIL: &str = "\u{1b}]52;c;cm0gLXJmIH4K\u{7}\u{1b}[2J\u{9b}31m\u{202e}";
/// The same as TOML escapes, for writing it into TOML files.
const EVIL_TOML: &str = r"\u001b]52;c;cm0gLXJmIH4K\u0007\u001b[2J\u009b31m\u202e";

/// No escape byte, no other C0 control but newline and tab, no C1 control
/// and no bidi override in what the process printed.
#[track_caller]
fn assert_clean(what: &str, done: &Done) {
    for (stream, text) in [("stdout", &done.stdout), ("stderr", &done.stderr)] {
        if let Some(c) = text.chars().find(|c| {
            (c.is_control() && *c != '\n' && *c != '\t')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        }) {
            panic!(
                "{what}: {stream} carries {} \n{}",
                c.escape_unicode(),
                done.both().escape_debug()
            );
        }
    }
}

fn swapguard_in(dir: &Path, args: &[&str]) -> Done {
    common::swapguard(&dir.join("state"), args)
        .program(bin())
        .run()
}

#[test]
fn lint_shows_no_escape_sequence_from_a_key_name_or_source_line() {
    let dir = tempfile::tempdir().unwrap();
    let head = "[runbook]\nname = \"x\"\nbackend = \"md\"\n";
    // A quoted key holding escapes: reported as an unknown key.
    let key = dir.path().join("key.toml");
    std::fs::write(&key, format!("{head}\"smrt{EVIL_TOML}\" = \"on\"\n")).unwrap();
    // Raw escapes in the file: a TOML syntax error that echoes the line.
    let line = dir.path().join("line.toml");
    std::fs::write(&line, format!("{head}name = \"{EVIL}\" {EVIL}\n")).unwrap();
    // And in the file's own name.
    let named = dir.path().join(format!("n{EVIL}.toml"));
    std::fs::write(&named, format!("{head}smrt = 1\n")).unwrap();
    for file in [&key, &line, &named] {
        let done = swapguard_in(dir.path(), &["lint", file.to_str().unwrap()]);
        assert_eq!(done.code, Some(2), "{}", done.both());
        assert_clean("lint", &done);
        // The same diagnostics when `run` refuses the file.
        let done = swapguard_in(
            dir.path(),
            &[
                "run",
                file.to_str().unwrap(),
                "--array",
                "md0",
                "--target",
                "sdb",
            ],
        );
        assert_ne!(done.code, Some(0), "{}", done.both());
        assert_clean("run", &done);
    }
    let done = swapguard_in(dir.path(), &["lint", key.to_str().unwrap()]);
    assert!(done.stdout.contains("smrt?]52;c;"), "{}", done.both());
}

#[test]
fn plan_shows_no_escape_sequence_from_runbook_text() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::fs::read_to_string(root().join("runbooks/md-replace-member.toml")).unwrap();
    let evil = shipped.replace(
        "say = \"Put on the anti-static",
        &format!("say = \"{EVIL_TOML}Put on the anti-static"),
    );
    assert_ne!(evil, shipped);
    let file = dir.path().join("rb.toml");
    std::fs::write(&file, evil).unwrap();
    let done = swapguard_in(dir.path(), &["plan", file.to_str().unwrap()]);
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert_clean("plan", &done);
    assert!(done.stdout.contains("52;c;cm0g"), "{}", done.both());
}

#[test]
fn journal_list_shows_no_escape_sequence_from_a_file_name_or_field() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = dir.path().join("state/sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    let at = format!("2026-01-01T00:00:00.000Z{EVIL}");
    let entries = [
        serde_json::json!({
            "seq": 0, "at": at, "event": "run-started", "session": EVIL,
            "runbook": "rb.toml", "runbook_name": EVIL, "runbook_hash": "h",
            "backend": "md", "params": {"array": format!("md0{EVIL}"), "target": "sdb"},
            "pid": 1, "user": EVIL, "prev": "", "hash": "",
        }),
        serde_json::json!({
            "seq": 1, "at": at, "event": "step-started", "step": format!("pull{EVIL}"),
            "kind": "physical", "text": EVIL, "prev": "", "hash": "",
        }),
    ];
    let text: String = entries.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(sessions.join(format!("md0{EVIL}.jsonl")), &text).unwrap();
    std::fs::write(
        sessions.join("damaged.jsonl"),
        format!("{{\"at\": \"{EVIL}\n"),
    )
    .unwrap();
    let done = swapguard_in(dir.path(), &["journal", "list"]);
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert_clean("journal list", &done);
    assert!(done.stdout.contains("md0?]52;c;"), "{}", done.both());
}

#[test]
fn quarantine_list_shows_no_escape_sequence_from_the_registry() {
    let dir = tempfile::tempdir().unwrap();
    let reason = format!("tested{EVIL}");
    let done = swapguard_in(
        dir.path(),
        &[
            "quarantine",
            "add",
            &format!("S1{EVIL}"),
            "--reason",
            &reason,
        ],
    );
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert_clean("quarantine add", &done);
    let done = swapguard_in(
        dir.path(),
        &[
            "quarantine",
            "release",
            &format!("S1{EVIL}"),
            "--reason",
            &reason,
        ],
    );
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert_clean("quarantine release", &done);
    let done = swapguard_in(dir.path(), &["quarantine", "list", "--all"]);
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert_clean("quarantine list", &done);
    assert!(done.stdout.contains("(tested?]52;c;"), "{}", done.both());
    // Times and sessions are read back from the registry file too.
    let registry = dir.path().join("state/quarantine.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&registry).unwrap()).unwrap();
    let drive = &mut value["drives"][0];
    drive["at"] = format!("2026-01-01T00:00:00.000Z{EVIL}").into();
    drive["session"] = format!("s{EVIL}").into();
    drive["released"]["at"] = format!("2026-01-02T00:00:00.000Z{EVIL}").into();
    std::fs::write(&registry, value.to_string()).unwrap();
    let done = swapguard_in(dir.path(), &["quarantine", "list", "--all"]);
    assert_eq!(done.code, Some(0), "{}", done.both());
    assert_clean("quarantine list of an edited registry", &done);
    assert!(
        done.stdout
            .contains("released 2026-01-02T00:00:00.000Z?]52;c;"),
        "{}",
        done.both()
    );
}

#[test]
fn dry_run_shows_no_escape_sequence_from_scenario_strings() {
    let dir = tempfile::tempdir().unwrap();
    let healthy =
        std::fs::read_to_string(root().join("runbooks/scenarios/md-replace-member/healthy.toml"))
            .unwrap();
    let evil = healthy
        .replace(
            "runbook = \"../../md-replace-member.toml\"",
            &format!(
                "runbook = {:?}",
                root().join("runbooks/md-replace-member.toml")
            ),
        )
        .replace(
            "model = \"SAMSUNG MZ7LH960HAJR-00005\"",
            &format!("model = \"SAMSUNG{EVIL_TOML}\""),
        )
        .replace(
            "serial = \"S3Z1NB0K100001\"",
            &format!("serial = \"S3Z1NB0K1{EVIL_TOML}00001\""),
        )
        .replace(
            "name = \"routine member swap on a healthy mirror\"",
            &format!("name = \"routine{EVIL_TOML}\""),
        );
    assert_ne!(evil, healthy);
    let scenario = dir.path().join("evil.toml");
    std::fs::write(&scenario, evil).unwrap();
    let done = swapguard_in(
        dir.path(),
        &[
            "dry-run",
            "runbooks/md-replace-member.toml",
            "--scenario",
            scenario.to_str().unwrap(),
        ],
    );
    assert_clean("dry-run", &done);
    assert!(done.stdout.contains("S3Z1NB0K1?]52;c;"), "{}", done.both());
}
