//! `swapguard watch`: follow a session's journal from another terminal (a
//! lead on SSH) and see what the technician sees: the steps, the health of
//! every drive at each look, halts and refusals. Read-only: it opens the
//! journal for reading and takes no lock, so it can never hold up the run.
//!
//! It reads to the end of the journal, then keeps reading what the run
//! appends (a line without its newline yet is left until it is whole). It
//! ends at the `run-finished` entry with the run's own exit code, or when
//! the process that writes the journal is gone without finishing one (a
//! crash or a kill). The MACs are not checked here; `journal verify` does.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;

use crate::cli::Config;
use crate::error::UsageError;
use crate::exit;
use crate::health::model::Snapshot;
use crate::journal::{Entry, Event};
use crate::sanitize::sanitize;

/// How often the journal is looked at for new lines.
const POLL: Duration = Duration::from_millis(200);
/// How long the journal may stay quiet after its writer is gone before
/// watch says so (the last lines may still be on their way).
const GONE_GRACE: Duration = Duration::from_secs(2);

pub fn watch(
    config: &Config,
    session: Option<&str>,
    array: Option<&str>,
    json: bool,
) -> Result<exit::Code> {
    let path = pick(&config.state_dir, session, array)?;
    let file = crate::state::open_private_path(&path, OFlag::O_RDONLY)?;
    let mut reader = BufReader::new(file);
    let mut out = crate::sanitize::stdout();
    let mut line = Vec::new();
    let mut number = 0;
    let mut writer_pid: Option<u32> = None;
    let mut quiet_since = Instant::now();
    let mut view = View::default();
    loop {
        let read = reader
            .read_until(b'\n', &mut line)
            .with_context(|| format!("cannot read journal `{}`", path.display()))?;
        if read == 0 || !line.ends_with(b"\n") {
            // At the end, or a line not yet whole: wait for more.
            if writer_pid.is_some_and(|pid| !alive(pid)) && quiet_since.elapsed() > GONE_GRACE {
                writeln!(
                    out,
                    "the session's process (pid {}) is gone and the journal has no end: it crashed or was killed; `swapguard resume {}` goes on with it",
                    writer_pid.unwrap_or(0),
                    crate::journal::session_name(&path)
                )?;
                return Ok(exit::Code::Failure);
            }
            out.flush()?;
            std::thread::sleep(POLL);
            continue;
        }
        quiet_since = Instant::now();
        number += 1;
        let value: serde_json::Value = serde_json::from_slice(&line).with_context(|| {
            format!(
                "journal `{}` line {number} is not JSON; `swapguard journal verify` says more",
                path.display()
            )
        })?;
        line.clear();
        if json {
            writeln!(out, "{value}")?;
        }
        let entry = Entry::from_value(&path, number, value)?;
        match &entry.event {
            Event::RunStarted { pid, .. } | Event::Resumed { pid, .. } => writer_pid = Some(*pid),
            _ => {}
        }
        if !json {
            for text in view.render(&entry) {
                writeln!(out, "{text}")?;
            }
        }
        if let Event::RunFinished { exit_code, .. } = entry.event {
            out.flush()?;
            return Ok(exit::Code::ALL
                .into_iter()
                .find(|c| c.number() == exit_code)
                .unwrap_or(exit::Code::Failure));
        }
    }
}

/// The journal to follow: the named session, else the newest session of
/// `array`, else the newest session.
fn pick(state_dir: &Path, session: Option<&str>, array: Option<&str>) -> Result<PathBuf> {
    if let Some(name) = session {
        return crate::commands::journal::session_path(state_dir, name);
    }
    let mut all = Vec::new();
    for path in crate::journal::sessions(state_dir)? {
        let Ok(first) = first_entry(&path) else {
            continue;
        };
        if let Event::RunStarted { params, .. } = &first.event
            && array.is_none_or(|a| params.get("array").map(String::as_str) == Some(a))
        {
            all.push((first.at.clone(), path));
        }
    }
    all.sort();
    all.pop().map(|(_, p)| p).ok_or_else(|| {
        UsageError(match array {
            Some(a) => format!(
                "no session of array `{}` under `{}`; `swapguard journal list` shows the sessions there",
                sanitize(a, false),
                state_dir.display()
            ),
            None => format!(
                "no sessions under `{}`; pass `--state-dir` if the run uses another",
                state_dir.display()
            ),
        })
        .into()
    })
}

fn first_entry(path: &Path) -> Result<Entry> {
    let file = crate::state::open_private_path(path, OFlag::O_RDONLY)?;
    let mut line = Vec::new();
    BufReader::new(file).read_until(b'\n', &mut line)?;
    Entry::from_value(path, 1, serde_json::from_slice(&line)?)
}

/// Whether process `pid` still exists (signal 0 checks without sending).
fn alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None),
        Err(nix::errno::Errno::ESRCH)
    )
}

/// What the technician's screen shows, rebuilt from journal entries.
#[derive(Default)]
struct View {
    step: usize,
    target: Option<String>,
}

impl View {
    fn render(&mut self, entry: &Entry) -> Vec<String> {
        let s = |t: &str| sanitize(t, false);
        let at = s(&entry.at);
        match &entry.event {
            Event::RunStarted {
                session,
                runbook_name,
                backend,
                params,
                user,
                ..
            } => {
                self.target = params.get("target").cloned();
                let shown: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                vec![format!(
                    "session `{}` started {at} by {}: runbook `{}` ({}), {}",
                    s(session),
                    s(user),
                    s(runbook_name),
                    s(backend),
                    s(&shown.join(" "))
                )]
            }
            Event::Resumed { user, .. } => vec![format!("resumed {at} by {}", s(user))],
            Event::Snapshot { label, snapshot } => panel(label, snapshot, self.target.as_deref()),
            Event::PreflightPassed => vec!["preflight passed".into()],
            Event::Refused { reasons } => {
                let mut v = vec![format!("REFUSED {at}: nothing was touched")];
                v.extend(reasons.iter().map(|r| format!("  {}", s(r))));
                v
            }
            Event::StepStarted { step, kind, text } => {
                self.step += 1;
                let mut v = vec![format!(
                    "step {} [{}] {}: {at}",
                    self.step,
                    s(step),
                    s(kind)
                )];
                v.extend(text.lines().map(|l| format!("    {}", s(l))));
                v
            }
            Event::Answer {
                question, answer, ..
            } => vec![format!("  answered `{}` to {}", s(answer), s(question))],
            Event::Command { output, .. } => {
                let status = match (output.code, output.timed_out) {
                    (_, true) => "timed out".to_string(),
                    (Some(c), _) => format!("exit {c}"),
                    (None, _) => "killed".to_string(),
                };
                vec![format!("  ran `{}`: {status}", s(&output.argv.join(" ")))]
            }
            Event::StepCompleted { step } => vec![format!("  done: {}", s(step))],
            Event::Warning { detail, .. } => vec![format!("  ! warn: {}", s(detail))],
            Event::Halting { step, headline, .. } => {
                vec![format!(
                    "HALTING at step {} ({at}): {}",
                    s(step),
                    s(headline)
                )]
            }
            Event::Halted {
                step,
                headline,
                details,
                ..
            } => {
                let mut v = vec![format!("HALT at step {} ({at}): {}", s(step), s(headline))];
                v.extend(details.iter().map(|d| format!("  {}", s(d))));
                v
            }
            Event::Aborted { step, reason } => {
                vec![format!("aborted at step `{}`: {}", s(step), s(reason))]
            }
            Event::Interrupted { step } => vec![format!("interrupted at step `{}`", s(step))],
            Event::TimedOut { step, reason } => {
                vec![format!("timed out at step `{}`: {}", s(step), s(reason))]
            }
            Event::NotifyFailed {
                notice,
                target,
                error,
                ..
            } => vec![format!(
                "  ! warn: notification `{}` to {} failed: {}",
                s(notice),
                s(target),
                s(error)
            )],
            Event::RunFinished { outcome, exit_code } => {
                vec![format!("finished {at}: {} (exit {exit_code})", s(outcome))]
            }
            _ => Vec::new(),
        }
    }
}

/// The health panel of one look: each member with its state, what is
/// wrong with it and its non-zero counters.
fn panel(label: &str, snap: &Snapshot, target: Option<&str>) -> Vec<String> {
    let s = |t: &str| sanitize(t, false);
    let mut v = vec![format!(
        "  health ({}): array {} {}, {} degraded",
        s(label),
        s(&snap.array.name),
        s(&snap.array.state),
        snap.array.degraded
    )];
    for d in snap.members() {
        let role = if target.is_some_and(|t| snap.find(t).iter().any(|f| f.id == d.id)) {
            "target  "
        } else {
            "survivor"
        };
        let bad = !d.faults.is_empty();
        let state = crate::health::guard::Observed::of(Some(d)).name();
        let mut line = format!(
            "    {}  {role}  {}  {}",
            if bad { "BAD" } else { "OK " },
            s(&d.id.describe()),
            s(state)
        );
        for f in &d.faults {
            line.push_str(&format!("  {}={}", s(&f.condition), s(&f.value)));
        }
        for (name, value) in d.counters.iter().filter(|(_, v)| **v > 0) {
            line.push_str(&format!("  {}={value}", s(name)));
        }
        v.push(line);
    }
    v
}
