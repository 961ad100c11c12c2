//! Whole-process tests of what runs while a command step runs: the real
//! binary against a copy of a captured md tree, with real child processes.
//!
//! - the watch goes on during a long command: a survivor counter flipped in
//!   the tree while `sleep` runs halts the run within a second or two and
//!   ends the command (or lets it finish, with `on_halt = "wait"`);
//! - a command whose grandchild holds the output pipe and ignores SIGTERM
//!   ends at its timeout, not when the grandchild feels like it;
//! - output over the cap is cut to its head and tail with the byte count;
//! - programs come from swapguard's own search path (the state directory's
//!   `config.toml`), never from the caller's `PATH`.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_swapguard");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

/// A runbook with one command step (`step` is the step's TOML after `id`
/// and `kind`) against the captured two-drive NVMe mirror.
fn runbook(step: &str) -> String {
    format!(
        r#"[runbook]
name = "one command (test)"
backend = "md"

[params]
array = {{ kind = "array", help = "md array" }}
target = {{ kind = "member", help = "member" }}

[guard]
smart = "optional"
watch_poll = "100ms"

[preflight]
require = ["redundant-without-target", "survivors-healthy", "no-rebuild-running", "target-identified"]

[on_halt]
say = "STOP."

[[step]]
id = "long"
kind = "command"
{step}
"#
    )
}

/// A scratch machine: the md tree, a state directory, a runbook.
struct Machine {
    dir: tempfile::TempDir,
}

struct Done {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Machine {
    fn new(step: &str) -> Machine {
        let dir = tempfile::tempdir().unwrap();
        copy_tree(
            &root().join("tests/fixtures/md/clean"),
            &dir.path().join("tree"),
        );
        std::fs::write(dir.path().join("runbook.toml"), runbook(step)).unwrap();
        std::fs::write(dir.path().join("answers.toml"), "").unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        Machine { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir.path())
            .args([
                "run",
                "runbook.toml",
                "--array",
                "md0",
                "--target",
                "nvme1n1",
                "--answers",
                "answers.toml",
            ])
            .arg("--state-dir")
            .arg(self.path("state"))
            .arg("--sysroot")
            .arg(self.path("tree"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Run to the end; `on_line` sees each stdout line as it comes.
    fn run_with(&self, mut cmd: Command, mut on_line: impl FnMut(&str)) -> Done {
        let started = Instant::now();
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            on_line(&line);
            seen.push_str(&line);
            seen.push('\n');
        }
        let out = child.wait_with_output().unwrap();
        Done {
            code: out.status.code(),
            stdout: seen,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            took: started.elapsed(),
        }
    }

    fn run(&self) -> Done {
        self.run_with(self.command(), |_| {})
    }

    fn journal(&self) -> Vec<serde_json::Value> {
        let dir = self.path("state/sessions");
        let mut lines = Vec::new();
        for f in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
            for line in text.lines() {
                lines.push(serde_json::from_str(line).unwrap());
            }
        }
        lines
    }

    fn command_entry(&self) -> serde_json::Value {
        self.journal()
            .into_iter()
            .find(|e| e["event"] == "command")
            .expect("the command is journaled")
    }
}

impl Done {
    #[track_caller]
    fn code(self, want: i32) -> Done {
        assert_eq!(
            self.code,
            Some(want),
            "exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn has(self, text: &str) -> Done {
        assert!(
            self.stdout.contains(text) || self.stderr.contains(text),
            "output lacks {text:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Whether process `pid` is gone (or a zombie nobody will run again),
/// waiting up to two seconds for it to be reaped.
fn gone(pid: i32) -> bool {
    for _ in 0..200 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat)
                if stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z') =>
            {
                return true;
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    false
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

/// A machine whose step runs `script` through `sh -c` (a shell step wants a
/// typed confirmation; the answers file gives it), with `PIDFILE` in the
/// script standing for `pidfile` in the machine.
fn shell_machine(script: &str, extra: &str, pidfile: &str) -> (Machine, PathBuf) {
    let m = Machine::new(&format!(
        "run = [\"sh\", \"-c\", \"{script}\"]\nshell = true\nconfirm = \"type-serial\"\n{extra}"
    ));
    let pidfile = m.path(pidfile);
    let text = std::fs::read_to_string(m.path("runbook.toml"))
        .unwrap()
        .replace("PIDFILE", &pidfile.display().to_string());
    std::fs::write(m.path("runbook.toml"), text).unwrap();
    std::fs::write(m.path("answers.toml"), "long = \"0002\"\n").unwrap();
    (m, pidfile)
}

/// Flip survivor nvme0n1's md error counter while the command runs.
fn flip_on_running(m: &Machine) -> impl FnMut(&str) + '_ {
    let mut flipped = false;
    move |line: &str| {
        if !flipped && line.contains("is running; watching every drive meanwhile") {
            flipped = true;
            std::fs::write(m.path("tree/sys/block/md0/md/dev-nvme0n1/errors"), "5\n").unwrap();
        }
    }
}

#[test]
fn a_survivor_that_degrades_during_a_long_command_halts_it_at_once() {
    let (m, pidfile) = shell_machine(
        "echo $$ > PIDFILE; exec sleep 60",
        "timeout = \"120s\"",
        "sleep.pid",
    );
    let done = m
        .run_with(m.command(), flip_on_running(&m))
        .code(3)
        .has("survivor nvme0n1")
        .has("errors 0 → 5")
        .has("was stopped (on_halt = \"kill\")");
    // Before: the watch slept through the whole command (60 s).
    assert!(done.took < Duration::from_secs(15), "took {:?}", done.took);
    assert!(gone(read_pid(&pidfile)), "the command still runs");
    let entry = m.command_entry();
    assert_eq!(entry["output"]["code"], serde_json::Value::Null, "{entry}");
    let halted = m
        .journal()
        .into_iter()
        .find(|e| e["event"] == "halted")
        .unwrap();
    assert_eq!(halted["step"], "long");
}

#[test]
fn on_halt_wait_lets_the_command_finish_before_the_run_stops() {
    let m = Machine::new(
        r#"run = ["sleep", "2"]
on_halt = "wait"
timeout = "60s""#,
    );
    let done = m
        .run_with(m.command(), flip_on_running(&m))
        .code(3)
        .has("must not be cut off (on_halt = \"wait\")")
        .has("was left to finish (on_halt = \"wait\")");
    assert!(done.took >= Duration::from_secs(2), "took {:?}", done.took);
    let entry = m.command_entry();
    assert_eq!(entry["output"]["code"], 0, "{entry}");
}

#[test]
fn a_grandchild_holding_the_pipe_and_ignoring_sigterm_ends_at_the_timeout() {
    // The attack: the command forks a grandchild that keeps stdout open;
    // both ignore SIGTERM. Before, the timeout killed the child only and
    // the run then waited for the pipe to close: 60 s, not 1 s.
    let (m, pidfile) = shell_machine(
        "trap '' TERM; (trap '' TERM; exec sleep 60) & echo $! > PIDFILE; sleep 60",
        "timeout = \"1s\"",
        "grandchild.pid",
    );
    let done = m.run().code(3).has("timed out");
    assert!(done.took < Duration::from_secs(15), "took {:?}", done.took);
    assert!(gone(read_pid(&pidfile)), "the grandchild still runs");
    assert_eq!(m.command_entry()["output"]["timed_out"], true);
}

#[test]
fn output_over_the_cap_keeps_head_tail_and_count_in_the_journal() {
    // Before, one such command wrote a 300 MB journal line.
    let m = Machine::new(
        r#"run = ["head", "-c", "50000000", "/dev/zero"]
timeout = "120s""#,
    );
    m.run().code(0);
    let entry = m.command_entry();
    let stdout = entry["output"]["stdout"].as_str().unwrap();
    assert!(stdout.len() < 200_000, "{} bytes kept", stdout.len());
    assert!(
        stdout.contains("output capped: 50000000 bytes in all, 49868928 bytes omitted"),
        "{}",
        stdout.replace('\0', "")
    );
    let journal_bytes: u64 = std::fs::read_dir(m.path("state/sessions"))
        .unwrap()
        .map(|f| f.unwrap().metadata().unwrap().len())
        .sum();
    assert!(
        journal_bytes < 2_000_000,
        "journal is {journal_bytes} bytes"
    );
}

/// A fake tool in `bin/` of the machine, and the caller's PATH pointing at it.
fn with_fake_tool(m: &Machine) -> Command {
    let bin = m.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("swapguard-test-tool");
    std::fs::write(&tool, "#!/bin/sh\necho fake tool ran with PATH=$PATH\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = m.command();
    cmd.env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    );
    cmd
}

#[test]
fn programs_come_from_the_configured_search_path_never_the_callers() {
    let m = Machine::new(r#"run = ["swapguard-test-tool"]"#);
    // The caller's PATH has the tool; swapguard does not look there.
    m.run_with(with_fake_tool(&m), |_| {}).code(3).has(
        "`swapguard-test-tool` is not in swapguard's search path `/usr/sbin:/usr/bin:/sbin:/bin`",
    );

    // The state directory's config.toml names the directory: it runs, with
    // that search path and nothing of the caller's environment.
    let config = m.path("state/config.toml");
    std::fs::write(
        &config,
        format!("path = \"{}:/usr/bin:/bin\"\n", m.path("bin").display()),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let m2 = Machine { dir: m.dir };
    std::fs::remove_dir_all(m2.path("state/sessions")).unwrap();
    m2.run_with(with_fake_tool(&m2), |_| {}).code(0);
    let stdout = m2.command_entry()["output"]["stdout"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        stdout,
        format!(
            "fake tool ran with PATH={}:/usr/bin:/bin\n",
            m2.path("bin").display()
        )
    );
}

#[test]
fn a_config_file_others_can_write_is_refused() {
    let m = Machine::new(r#"run = ["true"]"#);
    let config = m.path("state/config.toml");
    std::fs::write(&config, "path = \"/tmp\"\n").unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o666)).unwrap();
    m.run()
        .code(1)
        .has("config.toml` decides which programs swapguard runs");
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", &config).unwrap();
    m.run().code(1).has("a symlink is refused");
}

/// The shipped restore scenario, with `edit` applied and a new `[expect]`.
fn restore_scenario(dir: &Path, edit: impl Fn(String) -> String, expect: &str) -> PathBuf {
    let scenario = std::fs::read_to_string(
        root().join("runbooks/scenarios/restore-from-backup/survivor-degrades-during-restore.toml"),
    )
    .unwrap()
    .replace(
        "../../restore-from-backup.toml",
        &root()
            .join("runbooks/restore-from-backup.toml")
            .display()
            .to_string(),
    );
    let scenario = edit(scenario);
    let at = scenario.find("[expect]").unwrap();
    let path = dir.join("scenario.toml");
    std::fs::write(&path, format!("{}{expect}", &scenario[..at])).unwrap();
    path
}

fn dry_run(runbook: &Path, scenario: &Path) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .current_dir(root())
        .arg("dry-run")
        .arg(runbook)
        .arg("--scenario")
        .arg(scenario)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_survivor_that_degrades_during_a_long_check_step_halts_it_in_the_simulator() {
    // `restic check` of the backup runs for an hour and a half; sda fails
    // twenty minutes in. Before, check steps ran unwatched to the end.
    let dir = tempfile::tempdir().unwrap();
    let scenario = restore_scenario(
        dir.path(),
        |s| {
            s.replace(
                "stdout = \"no errors were found\\n\"\n",
                "stdout = \"no errors were found\\n\"\nduration = \"90m\"\n",
            )
            .replace(
                "during = \"restore\"\nafter = \"10m\"",
                "during = \"verify-backup\"\nafter = \"20m\"",
            )
        },
        "[expect]\noutcome = \"halted\"\nstep = \"verify-backup\"\nreasons = [\"sda\", \"smart.reported_uncorrect\", \"the command `restic\", \"check --read-data-subset 10%` was stopped\"]\n",
    );
    let (code, text) = dry_run(&root().join("runbooks/restore-from-backup.toml"), &scenario);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("[sim 00:20:"),
        "the halt comes 20 minutes in\n{text}"
    );
}

#[test]
fn a_simulated_command_longer_than_its_timeout_times_out_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // The restore may take 30 minutes here; restic needs 11 hours.
    let runbook = dir.path().join("restore.toml");
    let text = std::fs::read_to_string(root().join("runbooks/restore-from-backup.toml"))
        .unwrap()
        .replace(
            "confirm = \"yes-no\"\ntimeout = \"12h\"",
            "confirm = \"yes-no\"\ntimeout = \"30m\"",
        );
    assert!(text.contains("timeout = \"30m\""));
    std::fs::write(&runbook, text).unwrap();
    let scenario = restore_scenario(
        dir.path(),
        |s| {
            s.replace(
                &root()
                    .join("runbooks/restore-from-backup.toml")
                    .display()
                    .to_string(),
                &runbook.display().to_string(),
            )
            .replace(
                "[[event]]\nduring = \"restore\"",
                "[[event]]\nduring = \"resume-replication\"",
            )
        },
        "[expect]\noutcome = \"halted\"\nstep = \"restore\"\nreasons = [\"timed out\"]\n",
    );
    let (code, text) = dry_run(&runbook, &scenario);
    assert_eq!(code, Some(0), "{text}");
}
