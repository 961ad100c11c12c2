//! The append-only run journal.
//!
//! Every step, answer, command output, snapshot and verdict is one JSON line,
//! written and flushed to disk (fsync) before the engine takes its next
//! action, so a crash or power cut loses nothing that already happened.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

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
    /// A drive quarantined by hand (`swapguard quarantine add`).
    QuarantineAdded {
        entry: crate::quarantine::Entry,
    },
    /// A quarantined drive released (`swapguard quarantine release`).
    QuarantineReleased {
        entry: crate::quarantine::Entry,
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

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    /// RFC 3339 wall-clock time (simulated runs use a pinned clock).
    at: String,
    #[serde(flatten)]
    event: &'a Event,
}

/// An open journal file. Writes are whole lines, flushed and synced.
pub struct Journal {
    file: File,
    path: PathBuf,
    seq: u64,
}

impl Journal {
    /// Create `<state_dir>/sessions/<session>.jsonl` (mode 0600). Fails if it
    /// already exists: a journal is never overwritten.
    pub fn create(state_dir: &Path, session: &str) -> Result<Journal> {
        let dir = state_dir.join("sessions");
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create journal directory `{}`", dir.display()))?;
        let path = dir.join(format!("{session}.jsonl"));
        let file = OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create journal `{}`", path.display()))?;
        Ok(Journal { file, path, seq: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one event and sync it to disk before returning.
    pub fn record(&mut self, wall_ms: u64, event: &Event) -> Result<()> {
        self.seq += 1;
        let line = Line {
            seq: self.seq,
            at: rfc3339(wall_ms),
            event,
        };
        let mut text = serde_json::to_string(&line).context("cannot encode journal entry")?;
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("cannot write journal `{}`", self.path.display()))
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
        assert!(
            Journal::create(dir.path(), "md0-test").is_err(),
            "never overwritten"
        );
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
