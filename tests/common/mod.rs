//! The one harness for whole-process tests: the real binary run in a
//! scratch directory, with a state directory, a copied sysroot tree, a
//! crash point, environment and stdin as the test says, and one `Done` to
//! assert on exit code, stdout, stderr and journal.
//!
//! ```ignore
//! let t = Test::new().args(&["lint", "runbooks/"]);
//! t.run().code(0).stdout_has("0 errors");
//! let m = Test::machine(); // md tree, pull-only runbook, answers
//! m.swapguard(&["run", "pull-only.toml", ...]).crash_after(3).run();
//! ```
//!
//! Each test binary uses part of it.
#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_swapguard");

/// The crash tests' kill switch (debug builds abort after this many journal
/// writes); never inherited from the caller.
const CRASH_ENV: &str = "SWAPGUARD_CRASH_AFTER_WRITE";

/// A run still going after this long is killed (the test then fails
/// instead of hanging). The slowest honest run is `test --mutate` over
/// every shipped runbook (md and ZFS, several hundred dry runs), which on
/// a loaded two-core machine with tests in parallel takes minutes.
const WATCHDOG: Duration = Duration::from_secs(240);

/// The repository: shipped runbooks, scenarios and fixtures.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copy a directory tree (a captured sysroot) file by file; a symbolic
/// link is copied as a link.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            copy_tree(&entry.path(), &target);
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path()).unwrap(), &target).unwrap();
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every journal line under `state`'s sessions, session files in name order.
pub fn journal(state: &Path) -> Vec<serde_json::Value> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(state.join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The one session journal under `state`.
pub fn session(state: &Path) -> PathBuf {
    let mut files: Vec<PathBuf> = std::fs::read_dir(state.join("sessions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files.remove(0)
}

/// A scratch directory to run the binary in: `state/` is its state
/// directory, `tree/` its sysroot once [`Test::tree`] copied one there.
pub struct Test {
    pub dir: tempfile::TempDir,
    /// Arguments of [`Test::run`] and [`Test::command`].
    args: Vec<OsString>,
    /// Where runs start: the repository unless [`Test::in_scratch`].
    cwd: PathBuf,
    sysroot: bool,
}

impl Test {
    /// An empty scratch directory; runs start in the repository, so shipped
    /// runbooks are named by their relative paths.
    pub fn new() -> Test {
        Test {
            dir: tempfile::tempdir().unwrap(),
            args: Vec::new(),
            cwd: root(),
            sysroot: false,
        }
    }

    /// A scratch machine: the captured NVMe mirror `tests/fixtures/md/clean`
    /// as sysroot, the two-step `pull-only.toml` runbook and its answers
    /// (`answers.toml`), runs starting in the scratch directory.
    pub fn machine() -> Test {
        let t = Test::new().in_scratch().tree("tests/fixtures/md/clean");
        t.copy(
            "tests/fixtures/runbooks-e2e/pull-only.toml",
            "pull-only.toml",
        );
        t.write("answers.toml", "antistatic = \"yes\"\n");
        t
    }

    /// Runs start in the scratch directory.
    pub fn in_scratch(mut self) -> Test {
        self.cwd = self.dir.path().to_path_buf();
        self
    }

    /// Copy the captured tree `fixture` (relative to the repository) to
    /// `tree/` and give it to every run as `--sysroot`.
    pub fn tree(mut self, fixture: &str) -> Test {
        copy_tree(&root().join(fixture), &self.path("tree"));
        self.sysroot = true;
        self
    }

    /// Arguments for [`Test::run`].
    pub fn args<S: AsRef<OsStr>>(mut self, args: &[S]) -> Test {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    /// Write a file into the scratch directory; returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Copy a repository file into the scratch directory; returns its path.
    pub fn copy(&self, from: &str, name: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::copy(root().join(from), &path).unwrap();
        path
    }

    /// Write `state/config.toml` (mode 0600, the state directory 0700), as
    /// swapguard wants it before it takes a `path` for fake tools from it.
    pub fn config(&self, text: &str) -> PathBuf {
        let state = self.state();
        std::fs::create_dir_all(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = state.join("config.toml");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    }

    /// A run of the binary with `args` (then `--state-dir`, and `--sysroot`
    /// when there is a tree), to be adjusted and started.
    pub fn swapguard<S: AsRef<OsStr>>(&self, args: &[S]) -> Run {
        let mut run = swapguard(&self.state(), args).cwd(&self.cwd);
        if self.sysroot {
            run.sysroot = Some(self.path("tree"));
        }
        run
    }

    /// The command [`Test::run`] runs, for a test that drives it itself.
    pub fn command(&self) -> Command {
        self.swapguard(&self.args).command()
    }

    /// Run with the [`Test::args`] to the end.
    pub fn run(&self) -> Done {
        self.swapguard(&self.args).run()
    }

    /// Every journal line written under the state directory.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        journal(&self.state())
    }

    /// The one session journal.
    pub fn session(&self) -> PathBuf {
        session(&self.state())
    }

    /// The one session's name (its journal's file name without `.jsonl`).
    pub fn session_name(&self) -> String {
        self.session()
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned()
    }
}

/// A run of the binary with `args` then `--state-dir state`, starting in
/// the repository, to be adjusted and started.
pub fn swapguard<S: AsRef<OsStr>>(state: &Path, args: &[S]) -> Run {
    Run {
        args: args.iter().map(|a| a.as_ref().to_os_string()).collect(),
        cwd: root(),
        state: Some(state.to_path_buf()),
        sysroot: None,
        env: Vec::new(),
        stdin: None,
        crash_after: None,
        program: None,
    }
}

/// A run of the binary with `args` alone (no `--state-dir`), starting in
/// the repository.
pub fn swapguard_bare<S: AsRef<OsStr>>(args: &[S]) -> Run {
    swapguard(Path::new(""), args).no_state_dir()
}

/// One run of the binary, built up and then started with [`Run::run`] (to
/// the end) or [`Run::run_watching`] (reading stdout as it comes).
pub struct Run {
    args: Vec<OsString>,
    cwd: PathBuf,
    state: Option<PathBuf>,
    sysroot: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    stdin: Option<Vec<u8>>,
    crash_after: Option<u64>,
    /// Another build to run instead of [`BIN`].
    program: Option<OsString>,
}

impl Run {
    /// Run `program` instead of the binary under test (an older build, to
    /// see a test fail before its fix).
    pub fn program(mut self, program: impl AsRef<OsStr>) -> Self {
        self.program = Some(program.as_ref().to_os_string());
        self
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.env.push((
            key.as_ref().to_os_string(),
            Some(value.as_ref().to_os_string()),
        ));
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Self {
        self.env.push((key.as_ref().to_os_string(), None));
        self
    }

    /// Start in `dir` instead.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Self {
        self.cwd = dir.as_ref().to_path_buf();
        self
    }

    /// No `--state-dir`: the arguments name it, or the test is about none.
    pub fn no_state_dir(mut self) -> Self {
        self.state = None;
        self
    }

    /// No `--sysroot`, though the test has a tree.
    pub fn no_sysroot(mut self) -> Self {
        self.sysroot = None;
        self
    }

    /// What the process reads on stdin (otherwise nothing: `/dev/null`).
    pub fn stdin(mut self, text: impl AsRef<[u8]>) -> Self {
        self.stdin = Some(text.as_ref().to_vec());
        self
    }

    /// Abort the process right after its `n`th journal write (the debug
    /// build's kill switch).
    pub fn crash_after(mut self, n: u64) -> Self {
        self.crash_after = Some(n);
        self
    }

    /// The command, stdin from `/dev/null` unless [`Run::stdin`] (then
    /// piped: [`Run::run`] writes it).
    pub fn command(&self) -> Command {
        let mut cmd = self.pty_command();
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd
    }

    /// The command with its stdio left alone, for a pseudo-terminal session
    /// to give it its own.
    pub fn pty_command(&self) -> Command {
        let mut cmd = Command::new(self.program.as_deref().unwrap_or(BIN.as_ref()));
        cmd.current_dir(&self.cwd).args(&self.args);
        if let Some(state) = &self.state {
            cmd.arg("--state-dir").arg(state);
        }
        if let Some(tree) = &self.sysroot {
            cmd.arg("--sysroot").arg(tree);
        }
        cmd.env("NO_COLOR", "1")
            .env_remove(CRASH_ENV)
            .env_remove("SUDO_UID")
            .env_remove("SUDO_USER");
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(n) = self.crash_after {
            cmd.env(CRASH_ENV, n.to_string());
        }
        cmd
    }

    /// Run to the end.
    pub fn run(self) -> Done {
        self.run_watching(|_, _| {})
    }

    /// Run to the end; `on_line` sees each stdout line as it comes, with
    /// the process's pid (to send it a signal). A run still going after
    /// 240 s is killed.
    pub fn run_watching(self, mut on_line: impl FnMut(&str, nix::unistd::Pid)) -> Done {
        let started = Instant::now();
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        if let Some(text) = self.stdin.clone() {
            let mut input = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                let _ = input.write_all(&text);
            });
        }
        let finished = Arc::new(AtomicBool::new(false));
        let watchdog = {
            let finished = Arc::clone(&finished);
            std::thread::spawn(move || {
                let until = Instant::now() + WATCHDOG;
                while Instant::now() < until {
                    if finished.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            })
        };
        let stderr = child.stderr.take().unwrap();
        let errors = std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = std::io::Read::read_to_end(&mut BufReader::new(stderr), &mut text);
            text
        });
        let mut stdout = String::new();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut raw = Vec::new();
        while reader.read_until(b'\n', &mut raw).unwrap() > 0 {
            let line = String::from_utf8_lossy(&raw).into_owned();
            on_line(line.trim_end_matches('\n'), pid);
            stdout.push_str(&line);
            raw.clear();
        }
        let status = child.wait().unwrap();
        finished.store(true, Ordering::SeqCst);
        watchdog.join().unwrap();
        let stderr = errors.join().unwrap();
        Done {
            code: status.code(),
            signal: status.signal(),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            took: started.elapsed(),
            state: self.state.clone(),
        }
    }

    /// Run to the end, sending `signal` once, when a stdout line contains
    /// `line`.
    pub fn signal_when(self, line: &str, signal: Signal) -> Done {
        let mut sent = false;
        self.run_watching(|l, pid| {
            if !sent && l.contains(line) {
                sent = true;
                nix::sys::signal::kill(pid, signal).unwrap();
            }
        })
    }
}

/// A finished run.
pub struct Done {
    /// The exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// From start to exit.
    pub took: Duration,
    /// The state directory it was given.
    state: Option<PathBuf>,
}

impl Done {
    /// Both streams, for a failure message.
    pub fn both(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }

    #[track_caller]
    pub fn code(self, want: i32) -> Done {
        assert_eq!(self.code, Some(want), "exit code\n{}", self.both());
        self
    }

    /// Ended by a signal (the kill switch aborts), not an exit.
    #[track_caller]
    pub fn killed(self) -> Done {
        assert_eq!(self.code, None, "exit code\n{}", self.both());
        self
    }

    #[track_caller]
    pub fn stdout_has(self, text: &str) -> Done {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}\n{}",
            self.both()
        );
        self
    }

    #[track_caller]
    pub fn stderr_has(self, text: &str) -> Done {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n{}",
            self.both()
        );
        self
    }

    /// Either stream has `text`.
    #[track_caller]
    pub fn has(self, text: &str) -> Done {
        assert!(
            self.stdout.contains(text) || self.stderr.contains(text),
            "output lacks {text:?}\n{}",
            self.both()
        );
        self
    }

    /// Every journal line under the run's state directory.
    pub fn journal(&self) -> Vec<serde_json::Value> {
        journal(self.state.as_deref().expect("a run with a state directory"))
    }

    /// The journal has an entry of `event`.
    #[track_caller]
    pub fn journal_has(self, event: &str) -> Done {
        let journal = self.journal();
        assert!(
            journal.iter().any(|e| e["event"] == event),
            "journal lacks a `{event}` entry: {journal:#?}"
        );
        self
    }
}
