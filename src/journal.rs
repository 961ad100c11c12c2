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
//! A crash can tear the last line (power lost mid-write). Readers skip a
//! torn last line without losing the entries before it; a resumed run
//! ([`Journal::reopen`]) cuts the torn bytes off before it appends and
//! records how many it cut.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::{CommandOutput, LocateOutcome};
use crate::health::guard::Violation;
use crate::health::model::{Identity, Snapshot};

/// What happened. One variant per kind of journal line.
#[derive(Clone, Debug, Serialize)]
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
    RunFinished {
        outcome: String,
        exit_code: i32,
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
}

/// The `prev` of the first line of every journal.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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
        let dir = state_dir.join("sessions");
        // Private: session names say which arrays were worked on, and when.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create journal directory `{}`", dir.display()))?;
        let path = dir.join(format!("{session}.jsonl"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create journal `{}`", path.display()))?;
        Ok(Journal::with(file, path, 0, GENESIS.to_string()))
    }

    fn with(file: File, path: PathBuf, seq: u64, head: String) -> Journal {
        Journal {
            file,
            path,
            seq,
            head,
            crash_after: crash_after_from_env(),
            #[cfg(test)]
            test_crash: None,
        }
    }

    /// Open an existing journal to append to it (a resumed run). A torn last
    /// line is cut off first; returns the journal and how many bytes were
    /// cut. The chain continues from the last whole line.
    pub fn reopen(path: &Path) -> Result<(Journal, u64)> {
        let mut bytes = std::fs::read(path)
            .with_context(|| format!("cannot read journal `{}`", path.display()))?;
        let mut whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        if whole < bytes.len()
            && serde_json::from_slice::<serde_json::Value>(&bytes[whole..]).is_ok()
        {
            // A whole entry that lost only its newline: keep it.
            let mut f = OpenOptions::new()
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open journal `{}`", path.display()))?;
            f.write_all(b"\n")
                .and_then(|()| f.sync_data())
                .with_context(|| format!("cannot write journal `{}`", path.display()))?;
            bytes.push(b'\n');
            whole = bytes.len();
        }
        let torn = (bytes.len() - whole) as u64;
        let text = std::str::from_utf8(&bytes[..whole])
            .with_context(|| format!("journal `{}` is not UTF-8", path.display()))?;
        let (seq, head) = match text.lines().last() {
            Some(last) => {
                let value: serde_json::Value = serde_json::from_str(last).with_context(|| {
                    format!("the last line of journal `{}` is damaged", path.display())
                })?;
                let Some(seq) = value.get("seq").and_then(serde_json::Value::as_u64) else {
                    bail!("the last line of journal `{}` has no `seq`", path.display());
                };
                (seq, line_hash(last))
            }
            None => (0, GENESIS.to_string()),
        };
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open journal `{}`", path.display()))?;
        if torn > 0 {
            file.set_len(whole as u64)
                .and_then(|()| file.sync_data())
                .with_context(|| format!("cannot cut the torn line off `{}`", path.display()))?;
        }
        drop(file);
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open journal `{}`", path.display()))?;
        Ok((Journal::with(file, path.to_path_buf(), seq, head), torn))
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
        let line = Line {
            seq: self.seq + 1,
            at: rfc3339(wall_ms),
            prev: &self.head,
            event,
        };
        let mut text = serde_json::to_string(&line).context("cannot encode journal entry")?;
        let hash = line_hash(&text);
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot write journal `{}`", self.path.display()))?;
        self.seq += 1;
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

/// Who is running swapguard, for the journal: `alice`, or `root (sudo
/// from alice)`. From the environment, so only as trustworthy as the login.
pub fn who() -> String {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let user = var("USER")
        .or_else(|| var("LOGNAME"))
        .unwrap_or_else(|| "unknown".into());
    match var("SUDO_USER") {
        Some(from) if from != user => format!("{user} (sudo from {from})"),
        _ => user,
    }
}

/// Unix milliseconds as an RFC 3339 UTC timestamp.
pub fn rfc3339(wall_ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(wall_ms)).to_string()
}

/// Read a journal back as JSON values, one per line. A torn last line (a
/// crash mid-write) is skipped; a damaged line elsewhere is an error.
pub fn read(path: &Path) -> Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read journal `{}`", path.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match serde_json::from_str(line) {
            Ok(value) => out.push(value),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("journal `{}` line {} is damaged", path.display(), i + 1)
                });
            }
        }
    }
    Ok(out)
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
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Check a journal's hash chain and numbering. An I/O error is `Err`; a
/// broken chain is a `Verification` with problems.
pub fn verify(path: &Path) -> Result<Verification> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read journal `{}`", path.display()))?;
    Ok(verify_bytes(&bytes))
}

/// [`verify`] on a journal's bytes.
pub fn verify_bytes(bytes: &[u8]) -> Verification {
    let mut out = Verification {
        head: GENESIS.to_string(),
        ..Verification::default()
    };
    let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut body = &bytes[..whole];
    let tail = &bytes[whole..];
    if !tail.is_empty() {
        if serde_json::from_slice::<serde_json::Value>(tail).is_ok() {
            // A whole entry that lost only its newline.
            body = bytes;
        } else {
            out.torn_bytes = tail.len();
        }
    }
    let mut lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        // What follows the final newline.
        lines.pop();
    }
    let mut prev = GENESIS.to_string();
    for (i, raw) in lines.into_iter().enumerate() {
        let number = i + 1;
        let Ok(line) = std::str::from_utf8(raw) else {
            out.problems
                .push(format!("line {number} is not UTF-8 text"));
            prev = String::new();
            continue;
        };
        let value: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                out.problems
                    .push(format!("line {number} is not a journal entry ({e})"));
                prev = line_hash(line);
                continue;
            }
        };
        out.entries += 1;
        let seq = value.get("seq").and_then(serde_json::Value::as_u64);
        if seq != Some(number as u64) {
            out.problems.push(format!(
                "line {number} has seq {}, expected {number}: an entry was removed or inserted",
                seq.map_or("none".to_string(), |s| s.to_string())
            ));
        }
        match value.get("prev").and_then(serde_json::Value::as_str) {
            Some(p) if p == prev => {}
            Some(_) if number == 1 => out.problems.push(
                "line 1 does not start the chain: entries before it were removed".to_string(),
            ),
            Some(_) => out.problems.push(format!(
                "line {number} does not follow line {}: line {} was edited, or lines were removed or inserted",
                number - 1,
                number - 1
            )),
            None => out
                .problems
                .push(format!("line {number} has no `prev` hash")),
        }
        prev = line_hash(line);
    }
    out.head = prev;
    out
}

/// A value that serialises like an `Event` in tests and readers.
#[derive(Debug, Deserialize)]
pub struct EventName {
    pub event: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

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
        let v = verify(&path).unwrap();
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
            let v = verify_bytes(bytes.as_bytes());
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
        let v = verify_bytes(&bytes);
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
            let v = verify_bytes(part);
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
            assert!(read(&cut).unwrap().len() >= whole_lines, "cut at {len}");
            if len > 0 {
                let (mut j, _) = Journal::reopen(&cut).unwrap();
                j.record(9, &Event::PreflightPassed).unwrap();
                let v = verify(&cut).unwrap();
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
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"seq\":4,\"at\"").unwrap();
        drop(f);
        let (mut j, cut) = Journal::reopen(&path).unwrap();
        assert_eq!(cut, 13);
        j.record(4, &Event::StepCompleted { step: "c".into() })
            .unwrap();
        let v = verify(&path).unwrap();
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
}
