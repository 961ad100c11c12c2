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

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::{Done, Run, Test, root};

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
struct Machine(Test);

impl std::ops::Deref for Machine {
    type Target = Test;
    fn deref(&self) -> &Test {
        &self.0
    }
}

impl Machine {
    fn new(step: &str) -> Machine {
        let t = Test::new().in_scratch().tree("tests/fixtures/md/clean");
        t.write("runbook.toml", &runbook(step));
        t.write("answers.toml", "");
        std::fs::create_dir_all(t.state()).unwrap();
        Machine(t)
    }

    /// The run of the runbook, to be adjusted and started.
    fn command(&self) -> Run {
        self.0.swapguard(&[
            "run",
            "runbook.toml",
            "--array",
            "md0",
            "--target",
            "nvme1n1",
            "--answers",
            "answers.toml",
        ])
    }

    /// Run to the end; `on_line` sees each stdout line as it comes.
    fn run_with(&self, run: Run, mut on_line: impl FnMut(&str)) -> Done {
        run.run_watching(|line, _| on_line(line))
    }

    fn run(&self) -> Done {
        self.run_with(self.command(), |_| {})
    }

    fn command_entry(&self) -> serde_json::Value {
        self.journal()
            .into_iter()
            .find(|e| e["event"] == "command")
            .expect("the command is journaled")
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
fn with_fake_tool(m: &Machine) -> Run {
    let bin = m.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let tool = bin.join("swapguard-test-tool");
    std::fs::write(&tool, "#!/bin/sh\necho fake tool ran with PATH=$PATH\n").unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    m.command().env(
        "PATH",
        format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
    )
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
    let m2 = &m;
    std::fs::remove_dir_all(m2.path("state/sessions")).unwrap();
    m2.run_with(with_fake_tool(m2), |_| {}).code(0);
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
    let t = Test::new();
    let done = t
        .swapguard(&[
            "dry-run".as_ref(),
            runbook.as_os_str(),
            "--scenario".as_ref(),
            scenario.as_os_str(),
        ])
        .run();
    (done.code, format!("{}{}", done.stdout, done.stderr))
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

/// Found reading the change: the full look that lists everything a halt
/// moved (SMART included) ran inside the guard, before a running command
/// was stopped, so the command wrote on for a whole SMART round. Now the
/// command is stopped first. A fake `smartctl` notes whether the command
/// still runs each time it is asked.
#[test]
fn regression_a_halted_command_is_stopped_before_the_halts_full_look() {
    let (m, pidfile) = shell_machine(
        "echo $$ > PIDFILE; exec sleep 60",
        "timeout = \"120s\"",
        "sleep.pid",
    );
    let log = m.path("smartctl.log");
    let fake = m.path("bin");
    std::fs::create_dir_all(&fake).unwrap();
    let smartctl = fake.join("smartctl");
    std::fs::write(
        &smartctl,
        format!(
            "#!/bin/sh\npid=$(cat '{pid}' 2>/dev/null)\nif [ -n \"$pid\" ]; then\n  if kill -0 \"$pid\" 2>/dev/null; then echo running >> '{log}'; else echo stopped >> '{log}'; fi\nfi\nexit 2\n",
            pid = pidfile.display(),
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&smartctl, std::fs::Permissions::from_mode(0o755)).unwrap();
    m.config(&format!(
        "path = \"{}:/usr/sbin:/usr/bin:/sbin:/bin\"\n",
        fake.display()
    ));
    m.run_with(m.command(), flip_on_running(&m))
        .code(3)
        .has("errors 0 → 5")
        .has("was stopped (on_halt = \"kill\")");
    let asked = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        asked.lines().any(|l| l == "stopped"),
        "the halt's full look did not ask SMART after the command: {asked:?}"
    );
    assert!(
        !asked.lines().any(|l| l == "running"),
        "SMART was read while the halted command still ran: {asked:?}"
    );
}
