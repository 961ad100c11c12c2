//! `swapguard status --prometheus` and `--textfile DIR`: what `status`
//! sees, plus the newest run of each array from the journals, in the
//! Prometheus text exposition format (version 0.0.4), for a fleet's
//! dashboards and alerts. `--textfile` writes it for node_exporter's
//! textfile collector: a temporary file in the same directory, renamed over
//! `swapguard.prom`, so the collector never reads half a file.
//!
//! Every label value comes from the kernel, a drive or a journal: it is
//! sanitised, then escaped as the format wants (`\\`, `\"`, `\n`).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;

use crate::cli::Config;
use crate::commands::status::{gather, verdict_of};
use crate::exit;
use crate::health::model::{MemberState, Smart};
use crate::health::verdict::Level;
use crate::journal::{Entry, Event};
use crate::sanitize::sanitize;

/// The file `--textfile` writes in its directory.
pub const TEXTFILE: &str = "swapguard.prom";

pub fn status(
    config: &Config,
    array: Option<&str>,
    smart: bool,
    textfile: Option<&Path>,
) -> Result<exit::Code> {
    if let Some(dir) = textfile {
        check_dir(dir)?;
    }
    let report = gather(config, array, smart)?;
    let mut m = Metrics::default();
    for e in &report.errors {
        eprintln!("cannot read {}", sanitize(e, false));
    }
    m.add(
        "swapguard_status_errors",
        "gauge",
        "arrays that could not be read at all by this look (0 when every array was read)",
        vec![],
        report.errors.len() as f64,
    );
    for s in &report.arrays {
        let a = &s.array;
        let arr = vec![("array", a.name.clone())];
        m.add(
            "swapguard_array_info",
            "gauge",
            "one per array: its level and the backend's word for its state",
            vec![
                ("array", a.name.clone()),
                ("level", a.level.clone()),
                ("state", a.state.clone()),
            ],
            1.0,
        );
        m.add(
            "swapguard_array_running",
            "gauge",
            "1 when the array serves I/O normally in its state",
            arr.clone(),
            f64::from(u8::from(a.running)),
        );
        m.add(
            "swapguard_array_degraded_members",
            "gauge",
            "slots without an in-sync member",
            arr.clone(),
            f64::from(a.degraded),
        );
        m.add(
            "swapguard_array_redundancy_left",
            "gauge",
            "members the array can still lose and serve all its data (negative: data lost)",
            arr.clone(),
            a.redundancy_left as f64,
        );
        m.add(
            "swapguard_array_sync_ratio",
            "gauge",
            "progress of a running rebuild, resync, reshape or check (0 to 1); absent when none runs",
            vec![],
            f64::NAN,
        );
        if let Some(p) = &a.sync {
            m.add(
                "swapguard_array_sync_ratio",
                "gauge",
                "",
                vec![("array", a.name.clone()), ("action", p.action.clone())],
                p.fraction(),
            );
        }
        for p in &s.problems {
            m.add(
                "swapguard_array_probe_failed",
                "gauge",
                "a probe of the look that could not be read (health unknown, not healthy)",
                vec![
                    ("array", a.name.clone()),
                    ("probe", p.probe.clone()),
                    ("subject", p.subject.clone()),
                ],
                1.0,
            );
        }
        for d in s.members() {
            let who = |extra: Vec<(&'static str, String)>| {
                let mut l = vec![
                    ("array", a.name.clone()),
                    ("dev", d.id.dev.clone()),
                    ("serial", d.id.serial.clone().unwrap_or_default()),
                    ("bay", d.id.slot.clone().unwrap_or_default()),
                ];
                l.extend(extra);
                l
            };
            let verdict = verdict_of(s, d);
            for (name, level) in [
                ("healthy", Level::Healthy),
                ("at_risk", Level::AtRisk),
                ("unknown", Level::Unknown),
                ("failing", Level::Failing),
            ] {
                m.add(
                    "swapguard_drive_verdict",
                    "gauge",
                    "the survivor verdict of each member (1 for its level): healthy, at_risk, unknown (not readable), failing",
                    who(vec![("verdict", name.into())]),
                    f64::from(u8::from(verdict.level == level)),
                );
            }
            if let Some(member) = &d.member {
                let state = match member.state {
                    MemberState::InSync => "in_sync",
                    MemberState::Rebuilding => "rebuilding",
                    MemberState::Spare => "spare",
                    MemberState::Faulty => "faulty",
                };
                m.add(
                    "swapguard_drive_member_state",
                    "gauge",
                    "1 for the member's state in the array: in_sync, rebuilding, spare, faulty",
                    who(vec![("state", state.into())]),
                    1.0,
                );
            }
            for (counter, value) in &d.counters {
                m.add(
                    "swapguard_drive_errors",
                    "gauge",
                    "the error counters the guard watches (any rise on a survivor halts a run), by backend name",
                    who(vec![("name", counter.clone())]),
                    *value as f64,
                );
            }
            let (readable, passed) = match &d.smart {
                Some(Smart::Read { passed, .. }) => (1.0, Some(*passed)),
                Some(Smart::Unreadable { .. }) => (0.0, None),
                None => (0.0, None),
            };
            m.add(
                "swapguard_drive_smart_readable",
                "gauge",
                "1 when SMART was read in this look (0: unreadable or skipped with --no-smart)",
                who(vec![]),
                readable,
            );
            if let Some(passed) = passed {
                m.add(
                    "swapguard_drive_smart_passed",
                    "gauge",
                    "the drive's own SMART overall self-assessment: 1 passed, 0 failed",
                    who(vec![]),
                    f64::from(u8::from(passed)),
                );
            }
        }
    }
    runs(&config.state_dir, &mut m);
    let text = m.render();
    match textfile {
        None => crate::out!("{text}")?,
        Some(dir) => write_textfile(dir, &text)?,
    }
    Ok(if report.errors.is_empty() {
        exit::Code::Success
    } else {
        exit::Code::Failure
    })
}

/// The newest session of each array: where it is and how it stands.
fn runs(state_dir: &Path, m: &mut Metrics) {
    let Ok(paths) = crate::journal::sessions(state_dir) else {
        return;
    };
    let mut newest: BTreeMap<String, Run> = BTreeMap::new();
    for path in paths {
        let Some(run) = read_run(&path) else {
            continue;
        };
        if newest
            .get(&run.array)
            .is_none_or(|old| old.started_ms <= run.started_ms)
        {
            newest.insert(run.array.clone(), run);
        }
    }
    for run in newest.values() {
        let labels = vec![
            ("array", run.array.clone()),
            ("session", run.session.clone()),
            ("runbook", run.runbook.clone()),
        ];
        let mut info = labels.clone();
        info.push(("state", run.state.clone()));
        info.push(("step", run.step.clone()));
        m.add(
            "swapguard_run_info",
            "gauge",
            "the newest session of each array: its state (running, completed, halted, refused, aborted, interrupted, timed_out, abandoned, stopped) and current or last step",
            info,
            1.0,
        );
        m.add(
            "swapguard_run_start_time_seconds",
            "gauge",
            "when the newest session of each array started (Unix time)",
            labels.clone(),
            run.started_ms as f64 / 1000.0,
        );
        m.add(
            "swapguard_run_steps_completed",
            "gauge",
            "steps the newest session of each array has completed",
            labels.clone(),
            run.completed as f64,
        );
        m.add(
            "swapguard_run_exit_code",
            "gauge",
            "the finished session's exit code (absent while it runs)",
            vec![],
            f64::NAN,
        );
        if let Some(code) = run.exit_code {
            m.add(
                "swapguard_run_exit_code",
                "gauge",
                "",
                labels,
                f64::from(code),
            );
        }
    }
}

struct Run {
    array: String,
    session: String,
    runbook: String,
    started_ms: u64,
    step: String,
    state: String,
    completed: u64,
    exit_code: Option<i32>,
}

/// A session's standing from its journal; `None` for one that cannot be
/// read (it is `journal verify`'s business to say why).
fn read_run(path: &Path) -> Option<Run> {
    let file = crate::state::open_private_path(path, OFlag::O_RDONLY).ok()?;
    let mut run: Option<Run> = None;
    let mut pid = None;
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.ok()?;
        let Ok(value) = serde_json::from_slice(&line) else {
            break; // a torn last line
        };
        let entry = Entry::from_value(path, i + 1, value).ok()?;
        match (&mut run, entry.event) {
            (
                None,
                Event::RunStarted {
                    session,
                    runbook_name,
                    params,
                    pid: p,
                    ..
                },
            ) => {
                pid = Some(p);
                run = Some(Run {
                    array: params.get("array")?.clone(),
                    session,
                    runbook: runbook_name,
                    started_ms: humantime::parse_rfc3339(&entry.at)
                        .ok()?
                        .duration_since(std::time::UNIX_EPOCH)
                        .ok()?
                        .as_millis() as u64,
                    step: String::new(),
                    state: "running".into(),
                    completed: 0,
                    exit_code: None,
                })
            }
            (None, _) => return None,
            (Some(r), Event::Resumed { pid: p, .. }) => {
                pid = Some(p);
                r.state = "running".into();
                r.exit_code = None;
            }
            (Some(r), Event::StepStarted { step, .. }) => r.step = step,
            (Some(r), Event::StepCompleted { .. }) => r.completed += 1,
            (Some(r), Event::RunFinished { outcome, exit_code }) => {
                r.state = match outcome.as_str() {
                    "timed-out" => "timed_out".into(),
                    o if o.starts_with("error") => "error".into(),
                    o => o.to_string(),
                };
                r.exit_code = Some(exit_code);
            }
            _ => {}
        }
    }
    let mut run = run?;
    if run.exit_code.is_none()
        && pid.and_then(|p| i32::try_from(p).ok()).is_some_and(|p| {
            matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None),
                Err(nix::errno::Errno::ESRCH)
            )
        })
    {
        run.state = "stopped".into();
    }
    Some(run)
}

/// Metric families in the order first added, each with its samples.
#[derive(Default)]
struct Metrics {
    families: Vec<(String, String, String, Vec<String>)>,
}

impl Metrics {
    /// One sample; `value` NaN only declares the family (HELP and TYPE).
    fn add(&mut self, name: &str, kind: &str, help: &str, labels: Vec<(&str, String)>, value: f64) {
        let i = match self.families.iter().position(|f| f.0 == name) {
            Some(i) => i,
            None => {
                self.families
                    .push((name.into(), kind.into(), help.into(), Vec::new()));
                self.families.len() - 1
            }
        };
        if value.is_nan() {
            return;
        }
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        let sample = if labels.is_empty() {
            format!("{name} {value}")
        } else {
            format!("{name}{{{}}} {value}", labels.join(","))
        };
        self.families[i].3.push(sample);
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for (name, kind, help, samples) in &self.families {
            if samples.is_empty() {
                continue;
            }
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for s in samples {
                out.push_str(s);
                out.push('\n');
            }
        }
        out
    }
}

/// A label value: sanitised (no control characters), then escaped.
fn escape(value: &str) -> String {
    sanitize(value, false)
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The textfile directory: a real directory (not a symlink), which no one
/// but its owner may write to unless it is sticky (root writes into it).
fn check_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot use textfile directory `{}`", dir.display()))?;
    if meta.file_type().is_symlink() {
        bail!(
            "textfile directory `{}` is a symlink; give the directory itself",
            dir.display()
        );
    }
    if !meta.is_dir() {
        bail!("textfile directory `{}` is not a directory", dir.display());
    }
    let mode = meta.mode();
    if mode & 0o002 != 0 && mode & 0o1000 == 0 {
        bail!(
            "textfile directory `{}` is writable by everyone (mode {:o}): anyone could replace what node_exporter reads; `chmod o-w` it",
            dir.display(),
            mode & 0o7777
        );
    }
    Ok(())
}

/// Write `text` as `dir/swapguard.prom`: a new temporary file in `dir`
/// (created exclusively), synced, made readable (0644: node_exporter runs
/// as its own user), renamed over the old one.
fn write_textfile(dir: &Path, text: &str) -> Result<()> {
    let mut tmp = tempfile::Builder::new()
        .prefix(".swapguard.prom.")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .and_then(|()| {
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
        })
        .with_context(|| format!("cannot write `{}`", tmp.path().display()))?;
    let target = dir.join(TEXTFILE);
    tmp.persist(&target)
        .with_context(|| format!("cannot rename into `{}`", target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_sanitised() {
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
        assert_eq!(escape("x\u{1b}[2Jy"), "x?[2Jy");
    }

    #[test]
    fn families_are_contiguous_with_help_and_type_once() {
        let mut m = Metrics::default();
        m.add("a", "gauge", "first", vec![("x", "1".into())], 1.0);
        m.add("b", "gauge", "second", vec![], 2.0);
        m.add("a", "gauge", "", vec![("x", "2".into())], 0.5);
        m.add("c", "gauge", "declared only", vec![], f64::NAN);
        assert_eq!(
            m.render(),
            "# HELP a first\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 0.5\n# HELP b second\n# TYPE b gauge\nb 2\n"
        );
    }

    #[test]
    fn a_world_writable_textfile_dir_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = check_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("writable by everyone"), "{err}");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_dir(dir.path()).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path(), &link).unwrap();
        assert!(
            check_dir(&link)
                .unwrap_err()
                .to_string()
                .contains("symlink")
        );
    }

    #[test]
    fn textfile_is_replaced_whole_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        write_textfile(dir.path(), "a 1\n").unwrap();
        write_textfile(dir.path(), "a 2\n").unwrap();
        let path = dir.path().join(TEXTFILE);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a 2\n");
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
