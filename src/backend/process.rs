//! Real external processes, run as argv, never through a shell.
//!
//! swapguard runs as root, so every program it starts is bounded:
//! - **where it comes from**: the program is looked up in a fixed search
//!   path (`/usr/sbin:/usr/bin:/sbin:/bin`, or `path` in the state
//!   directory's `config.toml`), never in the caller's `PATH`, which a
//!   `sudo` without `secure_path` or a `su` keeps;
//! - **what it inherits**: a minimal environment (`PATH`, `HOME`,
//!   `LANG=C`, `LC_ALL=C`), nothing else from the caller;
//! - **how long it runs**: at its timeout its whole process group gets
//!   SIGTERM, then SIGKILL after a grace period, and the threads reading its
//!   output get a deadline, so a grandchild that keeps the pipe open or
//!   ignores SIGTERM cannot hold the run;
//! - **how much it prints**: the first and last [`KEEP`] bytes of each
//!   stream are kept with the total count, so one runaway command cannot
//!   write hundreds of megabytes into the journal.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;

use crate::backend::{CommandOutput, CommandRunner, Running};

/// Where programs are looked up unless the state directory's config says
/// otherwise.
pub const DEFAULT_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";
/// The config file in the state directory.
pub const CONFIG_FILE: &str = "config.toml";
/// Bytes kept from the start and from the end of each output stream.
pub const KEEP: usize = 64 * 1024;
/// From SIGTERM to SIGKILL at a timeout or a kill.
const GRACE: Duration = Duration::from_secs(2);
/// How long the output readers may take after the process has ended (a
/// grandchild may still hold the pipe).
const READER_DEADLINE: Duration = Duration::from_secs(2);
/// How often a waiting caller looks whether the process has ended.
const TICK: Duration = Duration::from_millis(10);

/// Runs real programs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessRunner {
    search: Vec<PathBuf>,
}

impl Default for ProcessRunner {
    fn default() -> Self {
        ProcessRunner::with_path(DEFAULT_PATH).expect("the default search path is valid")
    }
}

/// `config.toml` in the state directory.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    /// Where programs are looked up, `:`-separated absolute directories.
    path: Option<String>,
}

impl ProcessRunner {
    /// A runner looking programs up in `path` (`:`-separated absolute
    /// directories).
    pub fn with_path(path: &str) -> Result<ProcessRunner> {
        let mut search = Vec::new();
        for part in path.split(':') {
            let dir = PathBuf::from(part);
            if part.is_empty() || !dir.is_absolute() {
                bail!(
                    "search path `{path}` has `{part}`, which is not an absolute directory: every entry must start with `/`"
                );
            }
            search.push(dir);
        }
        Ok(ProcessRunner { search })
    }

    /// The runner the state directory's `config.toml` describes; the
    /// default search path when there is no such file. The file must be a
    /// regular file owned by this user and writable by no one else (it
    /// decides which programs root runs); it is opened without following
    /// symlinks.
    pub fn from_state_dir(state_dir: &Path) -> Result<ProcessRunner> {
        let path = state_dir.join(CONFIG_FILE);
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ProcessRunner::default());
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot open `{}` (a symlink is refused)", path.display())
                });
            }
        };
        let meta = file
            .metadata()
            .with_context(|| format!("cannot stat `{}`", path.display()))?;
        if !meta.is_file() {
            bail!("`{}` is not a regular file", path.display());
        }
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            bail!(
                "`{}` decides which programs swapguard runs, so it must be owned by uid {me} and writable by no one else (it is owned by uid {} with mode {:o}): `chown {me} {0}; chmod 600 {0}`",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777
            );
        }
        let mut text = String::new();
        (&file)
            .take(64 * 1024)
            .read_to_string(&mut text)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let config: ConfigFile =
            toml::from_str(&text).with_context(|| format!("`{}` is not valid", path.display()))?;
        match config.path {
            Some(p) => ProcessRunner::with_path(&p)
                .with_context(|| format!("`path` in `{}`", path.display())),
            None => Ok(ProcessRunner::default()),
        }
    }

    /// The search path, `:`-separated.
    pub fn path(&self) -> String {
        self.search
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The program file `program` names: an absolute path as it is, a bare
    /// name looked up in the search path. A relative path is refused (it
    /// would depend on the working directory).
    pub fn resolve(&self, program: &str) -> Result<PathBuf> {
        if program.contains('/') {
            let path = PathBuf::from(program);
            if !path.is_absolute() {
                bail!(
                    "`{program}` is a relative path: name the program alone or give its absolute path"
                );
            }
            return Ok(path);
        }
        if program.is_empty() {
            bail!("empty program name");
        }
        for dir in &self.search {
            let candidate = dir.join(program);
            if let Ok(meta) = std::fs::metadata(&candidate)
                && meta.is_file()
                && meta.permissions().mode() & 0o111 != 0
            {
                return Ok(candidate);
            }
        }
        bail!(
            "`{program}` is not in swapguard's search path `{}` (the caller's PATH is not used; set `path` in the state directory's `{CONFIG_FILE}` to change it)",
            self.path()
        )
    }

    /// Start `argv` and return at once; the caller watches it with
    /// [`Running::try_finish`] and may end it with [`Running::kill`].
    pub fn start(&self, argv: &[String], timeout: Duration) -> Result<Spawned> {
        let Some((program, args)) = argv.split_first() else {
            bail!("empty command line");
        };
        let exe = self
            .resolve(program)
            .with_context(|| format!("cannot start `{}`", argv.join(" ")))?;
        let home = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map_or_else(|| PathBuf::from("/"), |u| u.dir);
        // Its own process group: a Ctrl-C at the terminal reaches swapguard,
        // which stops at a safe point, not an mdadm halfway through its
        // work; and at a timeout the whole group can be ended at once.
        let mut child = Command::new(&exe)
            .arg0(program)
            .args(args)
            .env_clear()
            .env("PATH", self.path())
            .env("HOME", home)
            .env("LANG", "C")
            .env("LC_ALL", "C")
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}` ({})", argv.join(" "), exe.display()))?;
        // Read both pipes on threads so a chatty program cannot fill one
        // pipe and block while we wait for it to exit.
        let out = Reader::spawn(child.stdout.take());
        let err = Reader::spawn(child.stderr.take());
        Ok(Spawned {
            argv: argv.to_vec(),
            pgid: Pid::from_raw(child.id() as i32),
            child,
            started: Instant::now(),
            timeout,
            out,
            err,
            ended: None,
        })
    }
}

impl CommandRunner for ProcessRunner {
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput> {
        let mut spawned = self.start(argv, timeout)?;
        loop {
            if let Some(out) = spawned.try_finish()? {
                return Ok(out);
            }
            std::thread::sleep(TICK);
        }
    }
}

/// One output stream, read on its own thread into a bounded buffer.
struct Reader {
    capture: Arc<Mutex<Capture>>,
    done: Receiver<()>,
}

impl Reader {
    fn spawn(pipe: Option<impl Read + Send + 'static>) -> Reader {
        let capture = Arc::new(Mutex::new(Capture::default()));
        let (tx, done) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            let shared = Arc::clone(&capture);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            if let Ok(mut c) = shared.lock() {
                                c.push(&buf[..n]);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = tx.send(());
            });
        } else {
            let _ = tx.send(());
        }
        Reader { capture, done }
    }

    /// What was read, waiting for the end of the stream until `deadline`.
    /// After it, a reader still blocked (a grandchild holds the pipe) is
    /// left behind and what it read so far is used.
    fn take(&self, deadline: Instant) -> String {
        let left = deadline.saturating_duration_since(Instant::now());
        let ended = self.done.recv_timeout(left).is_ok();
        let text = match self.capture.lock() {
            Ok(c) => c.text(),
            Err(_) => String::new(),
        };
        if ended {
            text
        } else {
            format!(
                "{text}\n[swapguard: stopped reading; the pipe was still held open by a process that outlived the command]\n"
            )
        }
    }
}

/// The head and tail of a stream and its length.
#[derive(Default)]
struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    total: u64,
}

impl Capture {
    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = KEEP - self.head.len();
        if room > 0 {
            let n = room.min(bytes.len());
            self.head.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
        }
        if bytes.len() >= KEEP {
            self.tail.clear();
            bytes = &bytes[bytes.len() - KEEP..];
        }
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(KEEP);
        self.tail.drain(..excess);
    }

    fn text(&self) -> String {
        let head = String::from_utf8_lossy(&self.head);
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        let tail = String::from_utf8_lossy(&tail);
        let kept = (self.head.len() + self.tail.len()) as u64;
        if kept == self.total {
            format!("{head}{tail}")
        } else {
            format!(
                "{head}\n[swapguard: output capped: {} bytes in all, {} bytes omitted; the first {} and the last {} are kept]\n{tail}",
                self.total,
                self.total - kept,
                self.head.len(),
                self.tail.len()
            )
        }
    }
}

/// A started process.
pub struct Spawned {
    argv: Vec<String>,
    child: Child,
    pgid: Pid,
    started: Instant,
    timeout: Duration,
    out: Reader,
    err: Reader,
    ended: Option<CommandOutput>,
}

impl Spawned {
    /// The process group id (the child's pid).
    pub fn pgid(&self) -> i32 {
        self.pgid.as_raw()
    }

    /// How many bytes it has printed on its standard output so far (all of
    /// them, also those the cap left out): a follower such as `zpool
    /// events -f` is watched by this count growing.
    pub fn stdout_bytes(&self) -> u64 {
        self.out.capture.lock().map_or(0, |c| c.total)
    }

    /// Whether the group leader has exited, without reaping it (so its pid,
    /// and with it the process group id, cannot be reused meanwhile).
    fn leader_exited(&self) -> bool {
        matches!(
            waitid(
                Id::Pid(self.pgid),
                WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT
            ),
            Ok(status) if status.pid().is_some()
        )
    }

    /// SIGTERM to the whole group, a grace period, then SIGKILL to the
    /// whole group (whatever is left of it, grandchildren included); then
    /// reap the leader.
    fn terminate(&mut self) {
        let _ = killpg(self.pgid, Signal::SIGTERM);
        let until = Instant::now() + GRACE;
        while Instant::now() < until && !self.leader_exited() {
            std::thread::sleep(TICK);
        }
        // The leader is a zombie at worst, so the group id is still ours.
        let _ = killpg(self.pgid, Signal::SIGKILL);
        let _ = self.child.wait();
    }

    fn output(&mut self, code: Option<i32>, timed_out: bool) -> CommandOutput {
        let deadline = Instant::now() + READER_DEADLINE;
        let out = CommandOutput {
            argv: self.argv.clone(),
            code,
            stdout: self.out.take(deadline),
            stderr: self.err.take(deadline),
            timed_out,
        };
        self.ended = Some(out.clone());
        out
    }
}

impl Running for Spawned {
    fn try_finish(&mut self) -> Result<Option<CommandOutput>> {
        if let Some(out) = &self.ended {
            return Ok(Some(out.clone()));
        }
        let status = self
            .child
            .try_wait()
            .with_context(|| format!("waiting for `{}`", self.argv.join(" ")))?;
        if let Some(status) = status {
            return Ok(Some(self.output(status.code(), false)));
        }
        if self.started.elapsed() >= self.timeout {
            self.terminate();
            return Ok(Some(self.output(None, true)));
        }
        Ok(None)
    }

    fn kill(&mut self) -> CommandOutput {
        if let Some(out) = &self.ended {
            return out.clone();
        }
        self.terminate();
        self.output(None, false)
    }
}

impl Drop for Spawned {
    /// A process is never left running behind the run's back.
    fn drop(&mut self) {
        if self.ended.is_none() {
            self.terminate();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn captures_output_and_exit_code() {
        let out = ProcessRunner::default()
            .run(
                &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
        assert!(!out.success());
    }

    #[test]
    fn missing_program_is_an_error() {
        let err = ProcessRunner::default()
            .run(
                &argv(&["swapguard-no-such-program"]),
                Duration::from_secs(10),
            )
            .unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("cannot start `swapguard-no-such-program`")
                && text
                    .contains("is not in swapguard's search path `/usr/sbin:/usr/bin:/sbin:/bin`"),
            "{text}"
        );
    }

    #[test]
    fn timeout_kills_the_process() {
        let out = ProcessRunner::default()
            .run(&argv(&["sleep", "5"]), Duration::from_millis(50))
            .unwrap();
        assert!(out.timed_out && out.code.is_none() && !out.success());
    }

    #[test]
    fn the_environment_is_minimal_and_the_path_fixed() {
        // Whatever the test process's own environment holds.
        let out = ProcessRunner::default()
            .run(&argv(&["env"]), Duration::from_secs(10))
            .unwrap();
        let mut lines: Vec<&str> = out
            .stdout
            .lines()
            .filter(|l| !l.starts_with("HOME="))
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            ["LANG=C", "LC_ALL=C", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        );
    }

    #[test]
    fn search_path_entries_must_be_absolute() {
        for bad in ["", "bin", "/usr/bin:", "/usr/bin::/bin", "./x"] {
            assert!(ProcessRunner::with_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            ProcessRunner::with_path("/opt/x/bin:/usr/bin")
                .unwrap()
                .path(),
            "/opt/x/bin:/usr/bin"
        );
    }

    #[test]
    fn a_relative_program_path_is_refused() {
        let err = ProcessRunner::default()
            .resolve("bin/sh")
            .unwrap_err()
            .to_string();
        assert!(err.contains("is a relative path"), "{err}");
    }

    #[test]
    fn capture_keeps_head_tail_and_count() {
        let mut c = Capture::default();
        c.push(&vec![b'a'; KEEP]);
        c.push(&[b'b'; 10]);
        c.push(&vec![b'c'; KEEP * 3]);
        c.push(b"end");
        let text = c.text();
        let total = KEEP as u64 * 4 + 13;
        assert!(text.starts_with(&"a".repeat(KEEP)), "head");
        assert!(text.ends_with("cccend"), "tail");
        assert!(
            text.contains(&format!(
                "output capped: {total} bytes in all, {} bytes omitted",
                total - 2 * KEEP as u64
            )),
            "{}",
            &text[KEEP..KEEP + 200]
        );
        let mut small = Capture::default();
        small.push(b"one ");
        small.push(b"two");
        assert_eq!(small.text(), "one two");
    }
}
