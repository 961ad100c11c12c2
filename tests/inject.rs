//! Whole-process tests of injection: values pasted into commands (params
//! from the command line, strings read from the hardware) must never be read
//! as shell syntax or as options, and strings from files, the hardware or
//! the journal must never reach the terminal as escape sequences.
//!
//! Each test performs the attack against the real binary, on a copy of a
//! captured md tree (`--sysroot`), with harmless target files in a scratch
//! directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

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

/// A scratch machine: a copy of the clean two-NVMe md tree and a state
/// directory, in a private temporary directory.
struct Machine {
    dir: tempfile::TempDir,
}

struct Done {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Done {
    fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
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
        let dir = tempfile::tempdir().unwrap();
        copy_tree(
            &root().join("tests/fixtures/md/clean"),
            &dir.path().join("tree"),
        );
        Machine { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.path(name), text).unwrap();
    }

    /// Give the target (nvme1n1) a serial of the attacker's choosing.
    fn target_serial(&self, serial: &str) {
        self.write(
            "tree/sys/block/nvme1n1/device/serial",
            &format!("{serial}\n"),
        );
    }

    fn swapguard(&self, args: &[&str]) -> Done {
        let Output {
            status,
            stdout,
            stderr,
        } = Command::new(BIN)
            .current_dir(self.dir.path())
            .args(args)
            .arg("--state-dir")
            .arg(self.path("state"))
            .arg("--sysroot")
            .arg(self.path("tree"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Done {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
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
