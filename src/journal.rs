//! The append-only run journal.
//!
//! Every step, answer, command output, snapshot and verdict is one JSON line,
//! written and flushed to disk (fsync) before the engine takes its next
//! action, so a crash or power cut loses nothing that already happened.
//!
//! The journal is tamper-evident: every line carries `prev`, the SHA-256 of
//! the line before it (the first line carries [`GENESIS`]), so an entry
//! edited, removed or inserted afterwards breaks the chain and
//! [`verify`] says where. The hash of the last line (the head) goes into the
//! session report, so a journal rewritten from scratch with a fresh chain
//! does not match the ticket either.
//!
//! The chain is also **keyed**: every line ends with `mac`, an HMAC-SHA-256
//! of the line's text before it, under a 32-byte key that only root can
//! read (`<state_dir>/journal.key`, 0600, see [`Key`]). A hash chain alone
//! can be recomputed by whoever can write the file; the MACs cannot be
//! without the key, and `resume` acts on nothing else (see
//! docs/crash-safety.md for what this proves and what it does not).
//!
//! Readers stream the journal a line at a time and refuse a line longer
//! than [`MAX_LINE_BYTES`] instead of holding it whole.
//!
//! A crash can tear the last line (power lost mid-write). Readers skip a
//! torn last line without losing the entries before it; a resumed run
//! ([`Journal::reopen`]) cuts the torn bytes off before it appends and
//! records how many it cut.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use hmac::{Hmac, Mac};
use nix::fcntl::OFlag;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{CommandOutput, LocateOutcome};
use crate::health::guard::Violation;
use crate::health::model::{Identity, Snapshot};

/// What happened. One variant per kind of journal line. Written with
/// [`Journal::record`], read back typed as an [`Entry`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    RunStarted {
        session: String,
        runbook: String,
        runbook_name: String,
        /// SHA-256 of the runbook file, so a later resume can tell it changed.
        runbook_hash: String,
        backend: String,
        params: BTreeMap<String, String>,
        pid: u32,
        /// Who ran it: the login name, and the sudo user behind root.
        user: String,
    },
    Snapshot {
        label: String,
        snapshot: Snapshot,
    },
    PreflightPassed,
    Refused {
        reasons: Vec<String>,
    },
    StepStarted {
        step: String,
        kind: String,
        text: String,
    },
    Answer {
        step: String,
        question: String,
        answer: String,
    },
    Command {
        step: String,
        output: CommandOutput,
    },
    Check {
        name: String,
        output: CommandOutput,
        passed: bool,
        detail: String,
    },
    Locate {
        step: String,
        drive: String,
        on: bool,
        outcome: LocateOutcome,
    },
    NewDrive {
        step: String,
        drive: Identity,
    },
    Quarantined {
        step: String,
        drive: Identity,
    },
    StepCompleted {
        step: String,
    },
    /// Something worth knowing that does not stop the run.
    Warning {
        step: String,
        detail: String,
    },
    /// The guard saw a violation: written the moment the run has stopped
    /// acting, before the halt's full look (SMART of every drive), so the
    /// journal names what tripped the guard without waiting for it.
    /// `halted` follows with everything the full look adds.
    Halting {
        step: String,
        headline: String,
        violations: Vec<Violation>,
    },
    Halted {
        step: String,
        headline: String,
        violations: Vec<Violation>,
        details: Vec<String>,
    },
    Aborted {
        step: String,
        reason: String,
    },
    Interrupted {
        step: String,
    },
    /// A physical step's timeout came without the change it waits for.
    /// `answer` is `keep waiting` or `stop` when a technician at a terminal
    /// was asked `question`, `no terminal` when no one could be.
    StepTimeout {
        step: String,
        waited: String,
        seen: String,
        question: String,
        answer: String,
    },
    /// The run ended because of a step's timeout (resumable).
    TimedOut {
        step: String,
        reason: String,
    },
    RunFinished {
        outcome: String,
        exit_code: i32,
    },
    /// A new run on the same array gave this unfinished session up
    /// (`swapguard run --new-session`). The `run-finished` entry after it
    /// (outcome `abandoned`, exit code -1: the session's own process never
    /// ended with one) makes it a session that cannot be resumed.
    Abandoned {
        /// The session that took the array over.
        by: String,
        pid: u32,
        user: String,
    },
    /// `swapguard resume` picked the session up again.
    Resumed {
        session: String,
        pid: u32,
        user: String,
        /// SHA-256 of the runbook file now.
        runbook_hash: String,
        /// Given when the runbook changed since the run started.
        runbook_changed_reason: Option<String>,
        /// Bytes of a torn last line cut off before appending.
        dropped_torn_bytes: u64,
        /// Steps already completed, in runbook order.
        completed: Vec<String>,
        /// The step that was started and not finished, if any.
        unfinished: Option<String>,
    },
    /// What a resume did with the step that was started and not finished.
    ResumeDecision {
        step: String,
        /// `done-already`, `run-again`, `watch-again`, `declined`.
        decision: String,
        detail: String,
    },
    /// A drive quarantined by hand (`swapguard quarantine add`).
    QuarantineAdded {
        entry: crate::quarantine::Entry,
    },
    /// A quarantined drive released (`swapguard quarantine release`).
    QuarantineReleased {
        entry: crate::quarantine::Entry,
    },
    /// Preflight went on with a survivor that is not healthy: the runbook
    /// accepts its conditions (`runbook`), the technician acknowledged an
    /// at-risk survivor (`acknowledged`) or overrode a failing one with a
    /// written reason (`override`).
    SurvivorAccepted {
        how: String,
        /// One line per condition: drive, serial, bay, condition, value.
        findings: Vec<String>,
        /// The technician's words: the reason, or the word typed.
        reason: String,
    },
    /// A second person signed off a step before it acted.
    SignOff {
        step: String,
        name: String,
        drive: String,
    },
    /// The data canary was written and read back once.
    CanaryPlanted {
        report: crate::canary::Planted,
    },
    /// The data canary read back as written.
    CanaryVerified {
        step: String,
        checked: Vec<String>,
    },
    /// The data canary was removed at the end of the run.
    CanaryRemoved {
        path: String,
        outcome: String,
    },
    /// The data canary was left in place at the end of the run (a halt).
    CanaryKept {
        path: String,
        reason: String,
    },
    /// A webhook notification did not arrive (see `crate::notify`); the run
    /// went on. `target` is the URL's scheme, host and port only.
    NotifyFailed {
        notice: String,
        target: String,
        attempts: u32,
        error: String,
    },
}

/// The `prev` of the first line of every journal.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Every session journal under `<state_dir>/sessions/`, sorted by name
/// (names begin with the array and the start time). The state directory is
/// checked first (see [`crate::state`]).
pub fn sessions(state_dir: &Path) -> Result<Vec<PathBuf>> {
    let Some(state) = crate::state::StateDir::existing(state_dir)? else {
        return Ok(Vec::new());
    };
    let dir = state_dir.join(crate::state::SESSIONS);
    Ok(state
        .list(crate::state::SESSIONS, ".jsonl")?
        .into_iter()
        .map(|name| dir.join(name))
        .collect())
}

/// The session's name: the journal's file name without `.jsonl`.
pub fn session_name(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Set (in debug builds only) to make the process abort right after its Nth
/// journal write: the crash tests' kill switch.
pub const CRASH_ENV: &str = "SWAPGUARD_CRASH_AFTER_WRITE";

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    /// RFC 3339 wall-clock time (simulated runs use a pinned clock).
    at: String,
    /// SHA-256 (hex) of the previous line's bytes, or [`GENESIS`].
    prev: &'a str,
    #[serde(flatten)]
    event: &'a Event,
}

/// An open journal file. Writes are whole lines, flushed and synced.
pub struct Journal {
    file: File,
    path: PathBuf,
    seq: u64,
    /// Hash of the last line written: the next line's `prev`.
    head: String,
    /// The key every line's MAC is made with.
    key: Key,
    /// Debug builds: abort the process after this many writes (all time,
    /// counted by `seq`), from [`CRASH_ENV`].
    crash_after: Option<u64>,
    /// Tests: the in-process kill switch (see [`TestCrash`]).
    #[cfg(test)]
    pub(crate) test_crash: Option<TestCrash>,
}

/// Tests: "the process dies after journal write `after`". Every later write
/// fails and raises `dead`, which the crash tests' backend also obeys, so
/// nothing more happens to the (simulated) hardware. With `at_once` the
/// flag goes up right after write `after`; without it, only when the next
/// write is attempted, so whatever the engine does between the two writes
/// (running a command, say) still happens: a crash just before a write.
#[cfg(test)]
#[derive(Clone, Debug)]
pub(crate) struct TestCrash {
    pub after: u64,
    pub at_once: bool,
    pub dead: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// The hex SHA-256 of one journal line (without its newline).
pub fn line_hash(line: &str) -> String {
    let digest = Sha256::digest(line.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn crash_after_from_env() -> Option<u64> {
    if cfg!(debug_assertions) {
        std::env::var(CRASH_ENV).ok().and_then(|v| v.parse().ok())
    } else {
        None
    }
}

impl Journal {
    /// Create `<state_dir>/sessions/<session>.jsonl` (mode 0600). Fails if it
    /// already exists: a journal is never overwritten.
    pub fn create(state_dir: &Path, session: &str) -> Result<Journal> {
        // Private: session names say which arrays were worked on, and when.
        crate::state::component("session name", session).map_err(crate::state::Unsafe)?;
        let state = crate::state::StateDir::init(state_dir)?;
        let (file, path) =
            state.create_new(Some(crate::state::SESSIONS), &format!("{session}.jsonl"))?;
        let key = Key::load_or_create(state_dir)?;
        Ok(Journal::with(file, path, 0, GENESIS.to_string(), key))
    }

    /// Create the journal of a new session of `array` started at `started`
    /// (RFC 3339). The session is named `ARRAY-STAMP-PID` (the stamp is
    /// `started` without its punctuation); should that file exist already,
    /// `-2`, `-3`, ... is added, up to 99 tries. Returns the journal and the
    /// session's name.
    pub fn create_session(
        state_dir: &Path,
        array: &str,
        started: &str,
    ) -> Result<(Journal, String)> {
        let stamp: String = started
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let base = format!("{array}-{stamp}-{}", std::process::id());
        let mut session = base.clone();
        for n in 1..100 {
            match Journal::create(state_dir, &session) {
                Ok(journal) => return Ok((journal, session)),
                Err(_)
                    if state_dir
                        .join(crate::state::SESSIONS)
                        .join(format!("{session}.jsonl"))
                        .exists() =>
                {
                    session = format!("{base}-{}", n + 1);
                }
                Err(e) => return Err(e),
            }
        }
        bail!("cannot find a free journal name for `{base}`")
    }

    fn with(file: File, path: PathBuf, seq: u64, head: String, key: Key) -> Journal {
        Journal {
            file,
            path,
            seq,
            head,
            key,
            crash_after: crash_after_from_env(),
            #[cfg(test)]
            test_crash: None,
        }
    }

    /// Open an existing journal to append to it (a resumed run), with the
    /// state directory's `key`. A torn last line is cut off first; returns
    /// the journal and how many bytes were cut. The chain continues from the
    /// last whole line. The caller has verified the journal (see
    /// [`scan`]); this only finds where it ends.
    pub fn reopen(path: &Path, key: &Key) -> Result<(Journal, u64)> {
        let reader = crate::state::open_private_path(path, OFlag::O_RDONLY)
            .with_context(|| format!("cannot read journal `{}`", path.display()))?;
        let scanned = scan(reader, path, None, |_, _| Ok(()))?;
        let mut whole = scanned.whole_bytes;
        let torn = scanned.verification.torn_bytes as u64;
        if scanned.lost_newline {
            // A whole entry that lost only its newline: keep it.
            let mut f = crate::state::open_private_path(path, OFlag::O_WRONLY | OFlag::O_APPEND)?;
            f.write_all(b"\n")
                .and_then(|()| f.sync_data())
                .with_context(|| format!("cannot write journal `{}`", path.display()))?;
            whole += 1;
        }
        if let Some(line) = scanned.damaged {
            bail!("journal `{}` line {line} is damaged", path.display());
        }
        let (seq, head) = match scanned.last_seq {
            Some(seq) => (seq, scanned.verification.head.clone()),
            None if scanned.verification.entries == 0 && scanned.damaged.is_none() => {
                (0, GENESIS.to_string())
            }
            None => bail!("the last line of journal `{}` has no `seq`", path.display()),
        };
        let file = crate::state::open_private_path(path, OFlag::O_WRONLY)?;
        if torn > 0 {
            file.set_len(whole)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("cannot cut the torn line off `{}`", path.display()))?;
        }
        drop(file);
        let file = crate::state::open_private_path(path, OFlag::O_WRONLY | OFlag::O_APPEND)?;
        Ok((
            Journal::with(file, path.to_path_buf(), seq, head, key.clone()),
            torn,
        ))
    }

    /// The hash of the last line written (what the next line's `prev` is).
    pub fn head(&self) -> &str {
        &self.head
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event and sync it to disk before returning.
    pub fn record(&mut self, wall_ms: u64, event: &Event) -> Result<()> {
        #[cfg(test)]
        if let Some(c) = &self.test_crash
            && self.seq >= c.after
        {
            c.dead.store(true, std::sync::atomic::Ordering::SeqCst);
            bail!("simulated crash after journal write {}", c.after);
        }
        // A sequence number never wraps: a journal that ends at the largest
        // one (only a forged one could) takes no more entries.
        let Some(seq) = self.seq.checked_add(1) else {
            bail!(
                "journal `{}` is at sequence number {}, the largest there is; refusing to append",
                self.path.display(),
                self.seq
            );
        };
        let line = Line {
            seq,
            at: rfc3339(wall_ms),
            prev: &self.head,
            event,
        };
        let body = serde_json::to_string(&line).context("cannot encode journal entry")?;
        let mut text = self.key.seal(&body);
        let hash = line_hash(&text);
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot write journal `{}`", self.path.display()))?;
        self.seq = seq;
        self.head = hash;
        #[cfg(test)]
        if let Some(c) = &self.test_crash
            && c.at_once
            && self.seq >= c.after
        {
            c.dead.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if self.crash_after == Some(self.seq) {
            // The crash tests' kill switch (debug builds only): die as a
            // power cut would, with nothing more written or undone.
            std::process::abort();
        }
        Ok(())
    }
}

/// Who is running swapguard, for the journal and the report: the real
/// user (from the real uid, not from `$USER`), the login user behind it
/// when the kernel recorded one (`/proc/self/loginuid`, which `sudo` and
/// `su` do not change), and `SUDO_USER` only as what it is, a claim: any
/// process can set it, and `su` without `-` keeps a stale one. E.g.
/// `root (uid 0), logged in as alice (uid 1000)`, or `root (uid 0),
/// alice claimed via SUDO_USER`.
pub fn who() -> String {
    let uid = nix::unistd::getuid().as_raw();
    let sudo_user = std::env::var("SUDO_USER").ok().filter(|v| !v.is_empty());
    attribution(
        uid,
        crate::trust::login_uid(),
        sudo_user.as_deref(),
        user_name,
    )
}

/// The account name of `uid`, if the user database has one.
fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// [`who`] from its parts (`name` looks a uid up).
fn attribution(
    uid: u32,
    login: Option<u32>,
    sudo_user: Option<&str>,
    name: impl Fn(u32) -> Option<String>,
) -> String {
    let named = |uid: u32| match name(uid) {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    };
    let mut out = named(uid);
    let login_name = login.and_then(&name);
    if let Some(l) = login.filter(|&l| l != uid) {
        out.push_str(&format!(", logged in as {}", named(l)));
    }
    if let Some(claim) = sudo_user {
        let already = name(uid).as_deref() == Some(claim) || login_name.as_deref() == Some(claim);
        if !already {
            out.push_str(&format!(", {claim} claimed via SUDO_USER"));
        }
    }
    out
}

/// The key that makes the journal's chain a keyed one: 32 random bytes in
/// `<state_dir>/journal.key`, created on first use (`O_CREAT | O_EXCL |
/// O_NOFOLLOW`, mode 0600) and read only when it is a regular file owned by
/// the user running swapguard (root, in real runs), readable by no one else,
/// reached without following a link. Whoever can read it can forge a
/// journal that verifies, so it is as secret as root's own files.
#[derive(Clone)]
pub struct Key([u8; KEY_BYTES]);

const KEY_BYTES: usize = 32;

/// The key's file name in the state directory.
pub const KEY_FILE: &str = "journal.key";

type HmacSha256 = Hmac<Sha256>;

/// What ends every keyed line: `,"mac":"` + 64 hex digits + `"}`.
const MAC_PREFIX: &str = ",\"mac\":\"";
const MAC_SUFFIX_LEN: usize = MAC_PREFIX.len() + 64 + 2;

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    /// The state directory's key, made now if there is none yet. It is
    /// written whole to a private temporary file first and then linked into
    /// place (`link` never replaces nor follows what is there), so a second
    /// process making one at the same moment never reads half a key.
    pub fn load_or_create(state_dir: &Path) -> Result<Key> {
        if let Some(key) = Key::load(state_dir)? {
            return Ok(key);
        }
        let path = state_dir.join(KEY_FILE);
        let mut bytes = [0u8; KEY_BYTES];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .context("cannot read 32 random bytes from `/dev/urandom` for the journal key")?;
        let tmp = state_dir.join(format!("{KEY_FILE}.{}.new", std::process::id()));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(
                nix::fcntl::OFlag::O_NOFOLLOW.bits() | nix::fcntl::OFlag::O_CLOEXEC.bits(),
            )
            .open(&tmp)
            .with_context(|| format!("cannot create journal key `{}`", tmp.display()))?;
        let linked = file
            .write_all(&bytes)
            .and_then(|()| file.sync_all())
            .and_then(|()| std::fs::hard_link(&tmp, &path));
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(Key(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Key::load(state_dir)?
                .with_context(|| format!("journal key `{}` vanished", path.display())),
            Err(e) => {
                Err(e).with_context(|| format!("cannot create journal key `{}`", path.display()))
            }
        }
    }

    /// The state directory's key; `None` when there is none. A key that
    /// is not a private regular file of this user, or is unreadable, is an
    /// error: journals cannot be vouched for with it.
    pub fn load(state_dir: &Path) -> Result<Option<Key>> {
        use std::os::unix::fs::MetadataExt;
        let path = state_dir.join(KEY_FILE);
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(
                nix::fcntl::OFlag::O_NOFOLLOW.bits()
                    | nix::fcntl::OFlag::O_NONBLOCK.bits()
                    | nix::fcntl::OFlag::O_CLOEXEC.bits(),
            )
            .open(&path);
        let mut file = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read journal key `{}`", path.display()));
            }
        };
        let meta = file
            .metadata()
            .with_context(|| format!("cannot read journal key `{}`", path.display()))?;
        let euid = nix::unistd::geteuid().as_raw();
        if !meta.file_type().is_file()
            || meta.uid() != euid
            || meta.mode() & 0o077 != 0
            || meta.len() != KEY_BYTES as u64
        {
            bail!(
                "journal key `{}` is not a {KEY_BYTES}-byte regular file owned by uid {euid} with mode 0600 \
                 (it is owner {}, mode {:04o}, {} bytes); nothing can be vouched for with it",
                path.display(),
                meta.uid(),
                meta.mode() & 0o7777,
                meta.len()
            );
        }
        let mut bytes = [0u8; KEY_BYTES];
        file.read_exact(&mut bytes)
            .with_context(|| format!("cannot read journal key `{}`", path.display()))?;
        Ok(Some(Key(bytes)))
    }

    /// Tests: the key of the state directory a journal file lives in
    /// (`<state_dir>/sessions/<session>.jsonl`).
    #[cfg(test)]
    pub(crate) fn of_journal(path: &Path) -> Key {
        let state_dir = path
            .parent()
            .and_then(Path::parent)
            .expect("a journal lives in <state_dir>/sessions");
        Key::load(state_dir)
            .expect("key readable")
            .expect("key present")
    }

    /// Tests: a fixed key.
    #[cfg(test)]
    pub(crate) fn fixed(byte: u8) -> Key {
        Key([byte; KEY_BYTES])
    }

    fn mac(&self, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(body);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// A JSON object's text with its MAC added as the last field.
    pub fn seal(&self, body: &str) -> String {
        let mac = self.mac(body.as_bytes());
        let open = body.strip_suffix('}').unwrap_or(body);
        format!("{open}{MAC_PREFIX}{mac}\"}}")
    }
}

/// The text a keyed line's MAC covers and the MAC it carries, or `None` for
/// a line without one.
fn unseal(line: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    let cut = line.len().checked_sub(MAC_SUFFIX_LEN)?;
    let tail = &line[cut..];
    if !tail.starts_with(MAC_PREFIX.as_bytes()) || !tail.ends_with(b"\"}") {
        return None;
    }
    let mac = &tail[MAC_PREFIX.len()..MAC_PREFIX.len() + 64];
    let mut body = line[..cut].to_vec();
    body.push(b'}');
    Some((body, mac))
}

/// The longest journal line read: far more than any entry swapguard
/// writes, small enough that a hostile journal cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// Read the next line (without its newline) into `buf`: `Some(true)` when
/// it ended with a newline, `Some(false)` for a last line without one,
/// `None` at the end. A line longer than [`MAX_LINE_BYTES`] is an error
/// before it is held whole.
fn next_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<bool>> {
    buf.clear();
    loop {
        let avail = reader.fill_buf()?;
        if avail.is_empty() {
            return Ok((!buf.is_empty()).then_some(false));
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("longer than {} MiB", MAX_LINE_BYTES >> 20),
            ));
        }
        buf.extend_from_slice(&avail[..take]);
        reader.consume(take + usize::from(done));
        if done {
            return Ok(Some(true));
        }
    }
}

/// Unix milliseconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(wall_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(wall_ms)).to_string()
}

/// Read a journal back as JSON values, one per line, streaming it. A torn
/// last line (a crash mid-write) is skipped; a damaged line elsewhere, or
/// one longer than [`MAX_LINE_BYTES`], is an error.
pub fn read(path: &Path) -> Result<Vec<serde_json::Value>> {
    let file =
        File::open(path).with_context(|| format!("cannot read journal `{}`", path.display()))?;
    let mut out = Vec::new();
    let scanned = scan(file, path, None, |_, value| {
        out.push(value);
        Ok(())
    })?;
    if let Some(line) = scanned.damaged {
        bail!("journal `{}` line {line} is damaged", path.display());
    }
    Ok(out)
}

/// Whether a journal's lines carry MACs, and whether they were checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Keyed {
    /// Every line carries a MAC and every MAC was checked against the key
    /// (a mismatch is one of the [`Verification::problems`]).
    Verified,
    /// Lines carry MACs but no key was given to check them (why, if known).
    NotChecked(String),
    /// No line carries a MAC: written before journals were keyed, or by
    /// someone without the key.
    #[default]
    Unkeyed,
}

/// What [`verify`] found in a journal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// Whole entries read.
    pub entries: usize,
    /// Hash of the last whole line: the journal's head.
    pub head: String,
    /// Bytes of a torn last line (a crash mid-write), not counted as an entry.
    pub torn_bytes: usize,
    /// Every broken link, naming its line.
    pub problems: Vec<String>,
    /// Whether the chain is keyed and its MACs were checked.
    pub keyed: Keyed,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// Intact, and every line's MAC checked with the key: written by
    /// someone who holds the key (root), then left alone.
    pub fn is_vouched_for(&self) -> bool {
        self.is_intact() && self.keyed == Keyed::Verified
    }

    /// A few words for `journal verify` and the report.
    pub fn summary(&self) -> String {
        let chain = if self.is_intact() {
            "hash chain intact"
        } else {
            "**hash chain BROKEN**"
        };
        let keyed = match &self.keyed {
            Keyed::Verified => "every line's MAC checked with the key".to_string(),
            Keyed::NotChecked(why) => format!("MACs not checked ({why})"),
            Keyed::Unkeyed => {
                "unkeyed (no MACs: written before journals were keyed, or by someone without the key)"
                    .to_string()
            }
        };
        format!("{chain}, {keyed}")
    }
}

/// What [`scan`] found besides the [`Verification`].
#[derive(Debug, Default)]
pub struct Scanned {
    pub verification: Verification,
    /// Bytes of the whole lines, newlines included (where a torn line
    /// begins).
    pub whole_bytes: u64,
    /// The `seq` of the last whole line, if it had one.
    pub last_seq: Option<u64>,
    /// The last line is a whole entry that lost only its newline.
    pub lost_newline: bool,
    /// The first whole line that is not a JSON entry, if any.
    pub damaged: Option<usize>,
}

/// Check a journal's hash chain and numbering, streaming it. An I/O error
/// (or a line too long to read) is `Err`; a broken chain is a
/// `Verification` with problems. With `key`, every line's MAC is checked.
pub fn verify(path: &Path, key: Option<&Key>) -> Result<Verification> {
    let file =
        File::open(path).with_context(|| format!("cannot read journal `{}`", path.display()))?;
    Ok(scan(file, path, key, |_, _| Ok(()))?.verification)
}

/// [`verify`] on a journal's bytes.
pub fn verify_bytes(bytes: &[u8], key: Option<&Key>) -> Verification {
    match scan(bytes, Path::new("(bytes)"), key, |_, _| Ok(())) {
        Ok(s) => s.verification,
        Err(e) => Verification {
            problems: vec![format!("{e:#}")],
            ..Verification::default()
        },
    }
}

/// Read a journal from `reader` (named `path` in messages) one line at a
/// time: check the chain, the numbering and (with `key`) every MAC, and
/// hand each entry to `each` with its line number. Nothing is held but the
/// line being read.
pub fn scan(
    reader: impl Read,
    path: &Path,
    key: Option<&Key>,
    mut each: impl FnMut(usize, serde_json::Value) -> Result<()>,
) -> Result<Scanned> {
    let mut reader = BufReader::new(reader);
    let mut out = Scanned {
        verification: Verification {
            head: GENESIS.to_string(),
            ..Verification::default()
        },
        ..Scanned::default()
    };
    let v = &mut out.verification;
    let (mut keyed, mut unkeyed) = (0usize, 0usize);
    let mut prev = GENESIS.to_string();
    let mut raw = Vec::new();
    let mut number: usize = 0;
    loop {
        let Some(line_number) = number.checked_add(1) else {
            bail!("journal `{}` has too many lines", path.display());
        };
        let ended = next_line(&mut reader, &mut raw).map_err(|e| {
            anyhow::anyhow!(
                "journal `{}` line {line_number} cannot be read: {e}",
                path.display()
            )
        })?;
        let Some(newline) = ended else { break };
        number = line_number;
        let parsed = serde_json::from_slice::<serde_json::Value>(&raw);
        if !newline {
            if parsed.is_err() {
                // Torn by a crash mid-write: not an entry.
                v.torn_bytes = raw.len();
                break;
            }
            out.lost_newline = true;
        }
        out.whole_bytes += raw.len() as u64 + u64::from(newline);
        let Ok(line) = std::str::from_utf8(&raw) else {
            v.problems.push(format!("line {number} is not UTF-8 text"));
            out.damaged.get_or_insert(number);
            out.last_seq = None;
            prev = String::new();
            continue;
        };
        let value = match parsed {
            Ok(value) => value,
            Err(e) => {
                v.problems
                    .push(format!("line {number} is not a journal entry ({e})"));
                out.damaged.get_or_insert(number);
                out.last_seq = None;
                prev = line_hash(line);
                continue;
            }
        };
        v.entries += 1;
        let seq = value.get("seq").and_then(serde_json::Value::as_u64);
        out.last_seq = seq;
        if seq != Some(number as u64) {
            v.problems.push(format!(
                "line {number} has seq {}, expected {number}: an entry was removed or inserted",
                seq.map_or("none".to_string(), |s| s.to_string())
            ));
        }
        match value.get("prev").and_then(serde_json::Value::as_str) {
            Some(p) if p == prev => {}
            Some(_) if number == 1 => v.problems.push(
                "line 1 does not start the chain: entries before it were removed".to_string(),
            ),
            Some(_) => v.problems.push(format!(
                "line {number} does not follow line {}: line {} was edited, or lines were removed or inserted",
                number - 1,
                number - 1
            )),
            None => v.problems.push(format!("line {number} has no `prev` hash")),
        }
        match unseal(&raw) {
            Some((body, mac)) => {
                keyed += 1;
                if let Some(key) = key
                    && key.mac(&body).as_bytes() != mac
                {
                    v.problems.push(format!(
                        "line {number}'s MAC does not match: it was not written with this state directory's key \
                         (forged, or edited afterwards)"
                    ));
                }
            }
            None => unkeyed += 1,
        }
        prev = line_hash(line);
        each(number, value)?;
    }
    v.head = prev;
    v.keyed = match (keyed, unkeyed, key) {
        (0, _, _) => Keyed::Unkeyed,
        (_, 0, Some(_)) => Keyed::Verified,
        (_, 0, None) => Keyed::NotChecked("no key given".into()),
        (_, _, _) => {
            v.problems.push(format!(
                "{unkeyed} of {} lines carry no MAC: lines were added by someone without the key",
                keyed + unkeyed
            ));
            if key.is_some() {
                Keyed::Verified
            } else {
                Keyed::NotChecked("no key given".into())
            }
        }
    };
    Ok(out)
}

/// One journal line read back: its place in the chain and what happened.
/// The `mac` that ends a keyed line is checked by [`scan`], not kept.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339 wall-clock time.
    pub at: String,
    /// SHA-256 (hex) of the previous line, or [`GENESIS`].
    pub prev: String,
    #[serde(flatten)]
    pub event: Event,
}

impl Entry {
    /// Line `number` of journal `path`, read as JSON by [`scan`], as a
    /// typed entry. A line that is JSON but no entry swapguard writes (no
    /// `event`, an event it does not know, a field missing or of the wrong
    /// type) is an error naming the line, never a guess.
    pub fn from_value(path: &Path, number: usize, value: serde_json::Value) -> Result<Entry> {
        let name = match value.get("event") {
            Some(serde_json::Value::String(name)) => name.clone(),
            Some(_) => bail!(
                "journal `{}` line {number} is not a journal entry: its `event` is not a name",
                path.display()
            ),
            None => bail!(
                "journal `{}` line {number} is not a journal entry: it has no `event`",
                path.display()
            ),
        };
        // A name from the file: at most 64 characters of it in a message.
        let mut shown: String = name.chars().take(64).collect();
        if shown.len() < name.len() {
            shown.push('…');
        }
        serde_json::from_value(value).map_err(|e| {
            // serde's words for a tag it has no variant for.
            if e.to_string().starts_with("unknown variant") {
                anyhow::anyhow!(
                    "journal `{}` line {number} is an event swapguard does not know: `{shown}`",
                    path.display()
                )
            } else {
                anyhow::anyhow!(
                    "journal `{}` line {number}: its `{shown}` entry cannot be read: {e}",
                    path.display()
                )
            }
        })
    }
}

/// [`scan`], handing each entry to `each` typed (see [`Entry::from_value`]).
pub fn scan_entries(
    reader: impl Read,
    path: &Path,
    key: Option<&Key>,
    mut each: impl FnMut(usize, Entry) -> Result<()>,
) -> Result<Scanned> {
    scan(reader, path, key, |number, value| {
        each(number, Entry::from_value(path, number, value)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// A journal swapguard wrote (a dry run of the survivor-write-errors
    /// scenario, kept as a fuzz seed).
    const WRITTEN: &str =
        include_str!("../fuzz/seeds/journal_read/halted-survivor-write-errors.jsonl");

    /// One event of every kind, with real snapshots, drives and halts.
    fn every_kind() -> Vec<Event> {
        let entries: Vec<Entry> = WRITTEN
            .lines()
            .enumerate()
            .map(|(n, l)| {
                Entry::from_value(Path::new("seed"), n + 1, serde_json::from_str(l).unwrap())
                    .unwrap()
            })
            .collect();
        let snapshot = entries
            .iter()
            .find_map(|e| match &e.event {
                Event::Snapshot { snapshot, .. } => Some(snapshot.clone()),
                _ => None,
            })
            .unwrap();
        let violations = entries
            .iter()
            .find_map(|e| match &e.event {
                Event::Halted { violations, .. } => Some(violations.clone()),
                _ => None,
            })
            .unwrap();
        assert!(!violations.is_empty());
        let drive = snapshot.drives[0].id.clone();
        let output = CommandOutput {
            argv: vec![
                "mdadm".into(),
                "/dev/md0".into(),
                "--fail".into(),
                "/dev/sdb".into(),
            ],
            code: None,
            stdout: "out\n".into(),
            stderr: "err \u{1b}[31m\n".into(),
            timed_out: true,
        };
        let registry = crate::quarantine::Entry::for_drive(
            &drive,
            "2026-01-01T00:00:00.000Z".into(),
            "s".into(),
            "pulled".into(),
        );
        let s = |x: &str| x.to_string();
        vec![
            Event::RunStarted {
                session: s("md0-x"),
                runbook: s("rb.toml"),
                runbook_name: s("Replace"),
                runbook_hash: s("ab"),
                backend: s("md"),
                params: [(s("array"), s("md0")), (s("target"), s("sdb"))].into(),
                pid: 42,
                user: s("root (uid 0)"),
            },
            Event::Snapshot {
                label: s("baseline"),
                snapshot,
            },
            Event::PreflightPassed,
            Event::Refused {
                reasons: vec![s("a"), s("b")],
            },
            Event::StepStarted {
                step: s("pull"),
                kind: s("physical"),
                text: s("Pull it."),
            },
            Event::Answer {
                step: s("pull"),
                question: s("Done?"),
                answer: s("yes"),
            },
            Event::Command {
                step: s("fail"),
                output: output.clone(),
            },
            Event::Check {
                name: s("backup"),
                output,
                passed: false,
                detail: s("too old"),
            },
            Event::Locate {
                step: s("pull"),
                drive: s("sdb"),
                on: true,
                outcome: LocateOutcome::Switched { how: s("ledctl") },
            },
            Event::Locate {
                step: s("cleanup"),
                drive: s("sdb"),
                on: false,
                outcome: LocateOutcome::Unavailable {
                    reason: s("no enclosure"),
                },
            },
            Event::NewDrive {
                step: s("insert"),
                drive: drive.clone(),
            },
            Event::Quarantined {
                step: s("pull"),
                drive,
            },
            Event::StepCompleted { step: s("pull") },
            Event::Warning {
                step: s("pull"),
                detail: s("slow"),
            },
            Event::Halting {
                step: s("pull"),
                headline: s("STOP"),
                violations: violations.clone(),
            },
            Event::Halted {
                step: s("pull"),
                headline: s("STOP"),
                violations,
                details: vec![s("d")],
            },
            Event::Aborted {
                step: s("pull"),
                reason: s("no"),
            },
            Event::Interrupted { step: s("pull") },
            Event::RunFinished {
                outcome: s("halted"),
                exit_code: 3,
            },
            Event::Resumed {
                session: s("md0-x"),
                pid: 43,
                user: s("root (uid 0)"),
                runbook_hash: s("cd"),
                runbook_changed_reason: Some(s("typo")),
                dropped_torn_bytes: 19,
                completed: vec![s("antistatic")],
                unfinished: None,
            },
            Event::ResumeDecision {
                step: s("pull"),
                decision: s("done-already"),
                detail: s("gone"),
            },
            Event::QuarantineAdded {
                entry: registry.clone(),
            },
            Event::QuarantineReleased { entry: registry },
            Event::SurvivorAccepted {
                how: s("override"),
                findings: vec![s("sda: pending 8")],
                reason: s("last copy"),
            },
            Event::SignOff {
                step: s("fail"),
                name: s("Bo"),
                drive: s("sdb"),
            },
            Event::CanaryPlanted {
                report: crate::canary::Planted {
                    path: s("/srv/.swapguard/c"),
                    bytes: 1 << 20,
                    sha256: s("ef"),
                    device: Some(s("md0")),
                    extents: vec![crate::canary::Extent {
                        logical: 0,
                        physical: 4096,
                        length: 1 << 20,
                    }],
                    copies: vec![s("member sda at byte 1048576")],
                    not_checked: None,
                },
            },
            Event::CanaryVerified {
                step: s("pull"),
                checked: vec![s("the file")],
            },
            Event::CanaryRemoved {
                path: s("/srv/.swapguard/c"),
                outcome: s("removed"),
            },
            Event::CanaryKept {
                path: s("/srv/.swapguard/c"),
                reason: s("halted"),
            },
            Event::Abandoned {
                by: s("md0-20261128T120000Z-2"),
                pid: 7,
                user: s("root"),
            },
            Event::StepTimeout {
                step: s("pull"),
                waited: s("10m"),
                seen: s("the drive has not been seen leaving"),
                question: s("keep waiting?"),
                answer: s("yes"),
            },
            Event::TimedOut {
                step: s("pull"),
                reason: s("no one at a terminal"),
            },
            Event::NotifyFailed {
                notice: s("halt"),
                target: s("http://127.0.0.1:9/…"),
                attempts: 4,
                error: s("connection refused"),
            },
        ]
    }

    /// Which kind an event is; a new kind fails to compile here until the
    /// round trip below covers it.
    fn kind(e: &Event) -> usize {
        match e {
            Event::RunStarted { .. } => 0,
            Event::Snapshot { .. } => 1,
            Event::PreflightPassed => 2,
            Event::Refused { .. } => 3,
            Event::StepStarted { .. } => 4,
            Event::Answer { .. } => 5,
            Event::Command { .. } => 6,
            Event::Check { .. } => 7,
            Event::Locate { .. } => 8,
            Event::NewDrive { .. } => 9,
            Event::Quarantined { .. } => 10,
            Event::StepCompleted { .. } => 11,
            Event::Warning { .. } => 12,
            Event::Halted { .. } => 13,
            Event::Aborted { .. } => 14,
            Event::Interrupted { .. } => 15,
            Event::RunFinished { .. } => 16,
            Event::Resumed { .. } => 17,
            Event::ResumeDecision { .. } => 18,
            Event::QuarantineAdded { .. } => 19,
            Event::QuarantineReleased { .. } => 20,
            Event::SurvivorAccepted { .. } => 21,
            Event::SignOff { .. } => 22,
            Event::CanaryPlanted { .. } => 23,
            Event::CanaryVerified { .. } => 24,
            Event::CanaryRemoved { .. } => 25,
            Event::CanaryKept { .. } => 26,
            Event::Abandoned { .. } => 27,
            Event::StepTimeout { .. } => 28,
            Event::TimedOut { .. } => 29,
            Event::NotifyFailed { .. } => 30,
            Event::Halting { .. } => 31,
        }
    }

    #[test]
    fn every_event_kind_written_reads_back_equal() {
        let events = every_kind();
        let kinds: std::collections::BTreeSet<usize> = events.iter().map(kind).collect();
        assert_eq!(kinds, (0..32).collect(), "one event of every kind");
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "s").unwrap();
        for (n, e) in events.iter().enumerate() {
            j.record(1_767_225_600_000 + n as u64, e).unwrap();
        }
        let text = std::fs::read_to_string(j.path()).unwrap();
        let file = File::open(j.path()).unwrap();
        let mut read = Vec::new();
        let scanned = scan_entries(file, j.path(), Some(&Key::of_journal(j.path())), |n, e| {
            read.push((n, e));
            Ok(())
        })
        .unwrap();
        assert!(scanned.verification.is_vouched_for(), "{scanned:?}");
        assert_eq!(read.len(), events.len());
        let mut prev = GENESIS.to_string();
        for ((n, got), (want, line)) in read.into_iter().zip(events.iter().zip(text.lines())) {
            assert_eq!(&got.event, want, "line {n}");
            assert_eq!(got.seq, n as u64);
            assert_eq!(got.at, rfc3339(1_767_225_600_000 + n as u64 - 1));
            assert_eq!(got.prev, prev, "line {n}");
            prev = line_hash(line);
        }
    }

    #[test]
    fn a_journal_swapguard_wrote_reads_back_typed() {
        let mut kinds = Vec::new();
        let scanned = scan_entries(WRITTEN.as_bytes(), Path::new("seed"), None, |_, e| {
            kinds.push(kind(&e.event));
            Ok(())
        })
        .unwrap();
        assert!(scanned.verification.is_intact(), "{scanned:?}");
        assert_eq!(kinds.len(), WRITTEN.lines().count());
        assert!(kinds.contains(&13), "the seed has its halt");
    }

    #[test]
    fn unknown_or_unreadable_entries_are_errors_naming_the_line() {
        let long = "x".repeat(500);
        let cases: [(String, &str); 6] = [
            (
                r#"{"seq":2,"at":"t","prev":"p","event":"teleported","step":"pull"}"#.into(),
                "line 2 is an event swapguard does not know: `teleported`",
            ),
            (
                format!(r#"{{"seq":2,"at":"t","prev":"p","event":"{long}"}}"#),
                "line 2 is an event swapguard does not know: `xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…`",
            ),
            (
                r#"{"seq":2,"at":"t","prev":"p","event":"step-started","step":"pull"}"#.into(),
                "line 2: its `step-started` entry cannot be read: missing field `kind`",
            ),
            (
                r#"{"seq":2,"at":"t","prev":"p","event":"run-finished","outcome":"x","exit_code":"zero"}"#.into(),
                "line 2: its `run-finished` entry cannot be read: invalid type: string \"zero\"",
            ),
            (
                r#"{"seq":2,"at":"t","prev":"p","step":"pull"}"#.into(),
                "line 2 is not a journal entry: it has no `event`",
            ),
            (
                r#"{"seq":2,"at":"t","prev":"p","event":7}"#.into(),
                "line 2 is not a journal entry: its `event` is not a name",
            ),
        ];
        let first = WRITTEN.lines().next().unwrap();
        for (line, want) in cases {
            let bytes = format!("{first}\n{line}\n");
            let mut seen = 0;
            let err = scan_entries(bytes.as_bytes(), Path::new("j.jsonl"), None, |_, _| {
                seen += 1;
                Ok(())
            })
            .unwrap_err();
            let err = format!("{err:#}");
            assert!(err.contains(&format!("journal `j.jsonl` {want}")), "{err}");
            assert_eq!(seen, 1, "the line before it was read");
        }
        // A line that is not JSON at all is damage the chain check reports
        // (as `scan` does); the entries around it still read.
        let last = WRITTEN.lines().nth(2).unwrap();
        let bytes = format!("{first}\n{{oops\n{last}\n");
        let mut seen = Vec::new();
        let scanned = scan_entries(bytes.as_bytes(), Path::new("j.jsonl"), None, |n, _| {
            seen.push(n);
            Ok(())
        })
        .unwrap();
        assert_eq!((seen, scanned.damaged), (vec![1, 3], Some(2)));
    }

    #[test]
    fn session_names_are_array_stamp_pid_and_never_reuse_a_journal() {
        let dir = tempfile::tempdir().unwrap();
        let started = "2026-01-01T00:00:00.000Z";
        let base = format!("md0-20260101T000000000Z-{}", std::process::id());
        let (first, name) = Journal::create_session(dir.path(), "md0", started).unwrap();
        assert_eq!(name, base);
        assert!(first.path().ends_with(format!("sessions/{base}.jsonl")));
        let (_, second) = Journal::create_session(dir.path(), "md0", started).unwrap();
        assert_eq!(second, format!("{base}-2"));
        let (_, third) = Journal::create_session(dir.path(), "md0", started).unwrap();
        assert_eq!(third, format!("{base}-3"));
    }

    #[test]
    fn records_lines_in_order_with_private_mode() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "md0-test").unwrap();
        j.record(1_767_225_600_000, &Event::PreflightPassed)
            .unwrap();
        j.record(
            1_767_225_601_500,
            &Event::StepCompleted {
                step: "fail".into(),
            },
        )
        .unwrap();
        let lines = read(j.path()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["seq"], 1);
        assert_eq!(lines[0]["event"], "preflight-passed");
        assert_eq!(lines[0]["at"], "2026-01-01T00:00:00.000Z");
        assert_eq!(lines[1]["step"], "fail");
        let mode = std::fs::metadata(j.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(dir.path().join("sessions"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert!(
            Journal::create(dir.path(), "md0-test").is_err(),
            "never overwritten"
        );
    }

    fn three_entries(dir: &Path) -> PathBuf {
        let mut j = Journal::create(dir, "s").unwrap();
        j.record(1, &Event::PreflightPassed).unwrap();
        j.record(2, &Event::StepCompleted { step: "a".into() })
            .unwrap();
        j.record(3, &Event::StepCompleted { step: "b".into() })
            .unwrap();
        j.path().to_path_buf()
    }

    #[test]
    fn every_entry_carries_the_hash_of_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_entries(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let values = read(&path).unwrap();
        assert_eq!(values[0]["prev"], GENESIS);
        assert_eq!(values[1]["prev"], line_hash(lines[0]));
        assert_eq!(values[2]["prev"], line_hash(lines[1]));
        let v = verify(&path, Some(&Key::of_journal(&path))).unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(
            (v.entries, v.head.as_str()),
            (3, line_hash(lines[2]).as_str())
        );
    }

    #[test]
    fn verify_finds_edits_removals_and_insertions() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_entries(dir.path());
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let join = |ls: &[&str]| {
            ls.iter()
                .map(|l| {
                    format!(
                        "{l}
"
                    )
                })
                .collect::<String>()
        };
        let edited = lines[1].replace("\"a\"", "\"x\"");
        let cases: [(&str, String, &str); 4] = [
            (
                "edited",
                join(&[lines[0], &edited, lines[2]]),
                "line 3 does not follow line 2",
            ),
            (
                "removed",
                join(&[lines[0], lines[2]]),
                "line 2 has seq 3, expected 2",
            ),
            (
                "head cut",
                join(&[lines[1], lines[2]]),
                "line 1 does not start the chain",
            ),
            (
                "garbage",
                join(&[lines[0], "{oops", lines[2]]),
                "line 2 is not a journal entry",
            ),
        ];
        for (name, bytes, want) in cases {
            let v = verify_bytes(bytes.as_bytes(), None);
            assert!(
                v.problems.iter().any(|p| p.contains(want)),
                "{name}: {:?}",
                v.problems
            );
        }
    }

    #[test]
    fn a_torn_last_line_is_not_a_broken_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_entries(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"seq\":4,\"at\":\"2026");
        let v = verify_bytes(&bytes, None);
        assert!(v.is_intact(), "{v:?}");
        assert_eq!((v.entries, v.torn_bytes), (3, 19));
    }

    #[test]
    fn a_crash_at_any_byte_loses_nothing_written_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_entries(dir.path());
        let bytes = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.jsonl");
        for len in 0..=bytes.len() {
            let part = &bytes[..len];
            let whole_lines = part.iter().filter(|&&b| b == b'\n').count();
            let v = verify_bytes(part, None);
            assert!(v.is_intact(), "cut at {len}: {v:?}");
            // A line cut just before its newline is whole JSON: it counts.
            let complete = whole_lines
                + usize::from(
                    len < bytes.len()
                        && v.torn_bytes == 0
                        && part.last().is_some_and(|&b| b != b'\n'),
                );
            assert_eq!(v.entries, complete, "cut at {len}");
            std::fs::write(&cut, part).unwrap();
            std::fs::set_permissions(&cut, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            assert!(read(&cut).unwrap().len() >= whole_lines, "cut at {len}");
            if len > 0 {
                let (mut j, _) = Journal::reopen(&cut, &Key::of_journal(&path)).unwrap();
                j.record(9, &Event::PreflightPassed).unwrap();
                let v = verify(&cut, Some(&Key::of_journal(&path))).unwrap();
                assert!(v.is_intact(), "cut at {len}, appended: {v:?}");
                // Nothing whole was lost by the reopen.
                assert_eq!(v.entries, complete + 1, "cut at {len}");
            }
        }
    }

    #[test]
    fn reopen_cuts_a_torn_line_and_continues_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_entries(dir.path());
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"seq\":4,\"at\"").unwrap();
        drop(f);
        let (mut j, cut) = Journal::reopen(&path, &Key::of_journal(&path)).unwrap();
        assert_eq!(cut, 13);
        j.record(4, &Event::StepCompleted { step: "c".into() })
            .unwrap();
        let v = verify(&path, Some(&Key::of_journal(&path))).unwrap();
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.entries, 4);
        assert_eq!(read(&path).unwrap()[3]["seq"], 4);
    }

    #[test]
    fn torn_last_line_is_skipped_but_damage_elsewhere_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.jsonl");
        std::fs::write(&path, "{\"seq\":1}\n{\"seq\":2}\n{\"seq\":3,\"ev").unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        std::fs::write(&path, "{\"seq\":1}\n{broken\n{\"seq\":3}\n").unwrap();
        assert!(format!("{:#}", read(&path).unwrap_err()).contains("line 2 is damaged"));
    }

    #[test]
    fn every_line_carries_a_mac_that_only_the_key_makes() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_entries(dir.path());
        let key = Key::of_journal(&path);
        let v = verify(&path, Some(&key)).unwrap();
        assert!(v.is_vouched_for(), "{v:?}");
        assert_eq!(
            verify(&path, None).unwrap().keyed,
            Keyed::NotChecked("no key given".into())
        );
        // A forger without the key: edit line 2 and recompute the whole
        // SHA-256 chain, MACs left as they were or stripped.
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let rechain = |lines: Vec<String>| {
            let mut prev = GENESIS.to_string();
            let mut out = String::new();
            for l in lines {
                let mut v: serde_json::Value = serde_json::from_str(&l).unwrap();
                v["prev"] = prev.clone().into();
                // Keep the old MAC, last, as a forger would.
                let mac = v.as_object_mut().unwrap().remove("mac");
                let mut l = serde_json::to_string(&v).unwrap();
                if let Some(mac) = mac {
                    l.pop();
                    l.push_str(&format!(",\"mac\":{mac}}}"));
                }
                prev = line_hash(&l);
                out.push_str(&l);
                out.push('\n');
            }
            out
        };
        let edited: Vec<String> = lines.iter().map(|l| l.replace("\"a\"", "\"x\"")).collect();
        let forged = rechain(edited);
        let v = verify_bytes(forged.as_bytes(), Some(&key));
        assert!(
            v.problems.iter().any(|p| p.contains("MAC does not match")),
            "{v:?}"
        );
        let stripped: Vec<String> = lines
            .iter()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v.as_object_mut().unwrap().remove("mac");
                serde_json::to_string(&v).unwrap()
            })
            .collect();
        let v = verify_bytes(rechain(stripped).as_bytes(), Some(&key));
        assert!(v.is_intact(), "{v:?}");
        assert_eq!(v.keyed, Keyed::Unkeyed);
        assert!(!v.is_vouched_for());
        // Another state directory's key vouches for nothing here.
        let v = verify(&path, Some(&Key::fixed(7))).unwrap();
        assert!(!v.is_intact(), "{v:?}");
    }

    #[test]
    fn the_key_is_private_and_refused_otherwise() {
        let dir = tempfile::tempdir().unwrap();
        let key = Key::load_or_create(dir.path()).unwrap();
        let file = dir.path().join(KEY_FILE);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Key::load_or_create(dir.path()).unwrap();
        assert_eq!(key.mac(b"x"), again.mac(b"x"), "made once, then reused");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = format!("{:#}", Key::load(dir.path()).unwrap_err());
        assert!(err.contains("mode 0644"), "{err}");
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), &file).unwrap();
        assert!(Key::load(dir.path()).is_err(), "a link is not followed");
        assert!(
            Key::load_or_create(dir.path()).is_err(),
            "nor created through"
        );
        assert!(!dir.path().join("elsewhere").exists());
    }

    #[test]
    fn seq_at_its_largest_is_refused_not_wrapped() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_entries(dir.path());
        let key = Key::of_journal(&path);
        // The last line says seq 2^64-1 (with a valid MAC: even root's own
        // journal must not wrap).
        let last = serde_json::to_string(&serde_json::json!({
            "seq": u64::MAX, "at": "2026-01-01T00:00:00.000Z",
            "prev": line_hash(std::fs::read_to_string(&path).unwrap().lines().last().unwrap()),
            "event": "preflight-passed"
        }))
        .unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        writeln!(f, "{}", key.seal(&last)).unwrap();
        drop(f);
        let before = std::fs::read(&path).unwrap();
        let (mut j, _) = Journal::reopen(&path, &key).unwrap();
        let err = format!("{:#}", j.record(9, &Event::PreflightPassed).unwrap_err());
        assert!(err.contains("the largest there is"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before, "nothing written");
    }

    #[test]
    fn a_line_longer_than_the_cap_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_entries(dir.path());
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        let long = vec![b'x'; MAX_LINE_BYTES + 1];
        f.write_all(&long).unwrap();
        f.write_all(b"\n").unwrap();
        drop(f);
        let err = format!("{:#}", read(&path).unwrap_err());
        assert!(
            err.contains("line 4 cannot be read: longer than 16 MiB"),
            "{err}"
        );
        let err = format!("{:#}", verify(&path, None).unwrap_err());
        assert!(err.contains("line 4"), "{err}");
    }

    #[test]
    fn attribution_comes_from_uids_and_sudo_user_is_a_claim() {
        let names = |uid: u32| match uid {
            0 => Some("root".to_string()),
            1000 => Some("alice".to_string()),
            _ => None,
        };
        let cases: [(u32, Option<u32>, Option<&str>, &str); 6] = [
            // Root without SUDO_USER or a login: was "unknown".
            (0, None, None, "root (uid 0)"),
            (
                0,
                Some(1000),
                None,
                "root (uid 0), logged in as alice (uid 1000)",
            ),
            (
                0,
                Some(1000),
                Some("alice"),
                "root (uid 0), logged in as alice (uid 1000)",
            ),
            // `su` without `-` keeps a SUDO_USER from before.
            (
                0,
                None,
                Some("mallory"),
                "root (uid 0), mallory claimed via SUDO_USER",
            ),
            (1000, Some(1000), None, "alice (uid 1000)"),
            (4242, None, None, "uid 4242"),
        ];
        for (uid, login, sudo, want) in cases {
            assert_eq!(attribution(uid, login, sudo, names), want);
        }
    }
}
