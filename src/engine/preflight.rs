//! Preflight: everything that must hold before the first step touches
//! anything. A refusal here leaves the array exactly as it was.

use std::time::{Duration, UNIX_EPOCH};

use crate::engine::{Run, Stop, Walk};
use crate::health::guard::{BAD_FLAGS, Observed};
use crate::health::model::{Drive, MemberState, Smart, Snapshot};
use crate::journal::Event;
use crate::runbook::model::{CheckTest, ExternalCheck, ParamKind, Precondition, Requirement};

/// Find the drive the technician named as the target (kernel name, serial,
/// WWN or bay), in the baseline. It must name exactly one array member.
pub(crate) fn resolve_target(run: &Run<'_>, baseline: &Snapshot) -> Result<Drive, Stop> {
    let param = run
        .runbook
        .params
        .iter()
        .find(|p| p.kind == ParamKind::Member)
        .map_or("target", |p| p.name.as_str());
    let Some(name) = run.params.get(param) else {
        return Err(Stop::Refuse {
            reasons: vec![format!(
                "no target given: pass `--{param} DEVICE|SERIAL|BAY`"
            )],
        });
    };
    let found = baseline.find(name);
    let members: Vec<&Drive> = found
        .iter()
        .copied()
        .filter(|d| d.member.is_some())
        .collect();
    match (members.as_slice(), found.as_slice()) {
        ([one], _) => Ok((*one).clone()),
        ([], []) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` is not present: no drive has that name, serial, WWN or bay{}",
                list_members(baseline)
            )],
        }),
        ([], [other, ..]) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` is {}, which is not a member of `{}`{}",
                other.id.describe(),
                baseline.array.name,
                list_members(baseline)
            )],
        }),
        (many, _) => Err(Stop::Refuse {
            reasons: vec![format!(
                "target `{name}` matches {} members ({}); name it by serial",
                many.len(),
                many.iter()
                    .map(|d| d.id.describe())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        }),
    }
}

fn list_members(s: &Snapshot) -> String {
    let names: Vec<String> = s.members().map(|d| d.id.describe()).collect();
    if names.is_empty() {
        String::new()
    } else {
        format!("; members are: {}", names.join(", "))
    }
}

/// Redundancy the array keeps with one member gone.
fn tolerated_failures(level: &str, raid_disks: u32) -> u32 {
    match level {
        "raid1" => raid_disks.saturating_sub(1),
        "raid4" | "raid5" | "raid10" => 1,
        "raid6" => 2,
        _ => 0,
    }
}

pub(crate) fn check(walk: &mut Walk<'_, '_>) -> Result<(), Stop> {
    let mut reasons = Vec::new();
    let base = &walk.baseline;
    let smart_required = walk.run.runbook.guard.smart == Requirement::Required;
    let target_key = walk.target.key();

    // Fail closed: anything the baseline could not read refuses the run.
    for p in &base.problems {
        if p.probe == "smart" && !smart_required {
            continue;
        }
        reasons.push(format!(
            "cannot read {} of {}: {}",
            p.probe, p.subject, p.message
        ));
    }
    for d in base.members() {
        match &d.smart {
            Some(Smart::Unreadable { reason }) if smart_required => reasons.push(format!(
                "cannot read SMART of {}: {reason} (mark `smart = \"optional\"` in [guard] only if this array has no SMART)",
                d.id.describe()
            )),
            None if smart_required => reasons.push(format!(
                "SMART of {} was not read",
                d.id.describe()
            )),
            _ => {}
        }
        if d.key().is_weak() {
            let who = if d.key() == target_key {
                "the target"
            } else {
                "a survivor"
            };
            reasons.push(format!(
                "{who} {} has no readable serial or WWN: a pulled or swapped drive could not be told apart",
                d.id.describe()
            ));
        }
    }

    for pre in &walk.run.runbook.preflight.require {
        match pre {
            Precondition::SurvivorsHealthy => {
                for d in base.members().filter(|d| d.key() != target_key) {
                    let observed = Observed::of(Some(d));
                    if d.state() != Some(MemberState::InSync) {
                        reasons.push(format!(
                            "survivor {} is {observed}, not in sync",
                            d.id.describe()
                        ));
                    }
                    if let Some(m) = &d.member {
                        for f in m.flags.iter().filter(|f| BAD_FLAGS.contains(&f.as_str())) {
                            reasons.push(format!("survivor {} has md flag `{f}`", d.id.describe()));
                        }
                    }
                    if let Some(Smart::Read { passed: false, .. }) = &d.smart {
                        reasons.push(format!("survivor {} fails SMART", d.id.describe()));
                    }
                    for name in ["md.errors", "md.bad_blocks"] {
                        if let Some(&n) = d.counters.get(name)
                            && n > 0
                        {
                            reasons.push(format!("survivor {} has {name} = {n}", d.id.describe()));
                        }
                    }
                }
            }
            Precondition::RedundantWithoutTarget => {
                let target_in_sync = walk.target.state() == Some(MemberState::InSync);
                let after = base.array.degraded + u32::from(target_in_sync);
                let tolerated = tolerated_failures(&base.array.level, base.array.raid_disks);
                if after > tolerated {
                    reasons.push(format!(
                        "`{}` ({}, {} slots, {} missing) would lose data without the target: it tolerates {tolerated} missing",
                        base.array.name, base.array.level, base.array.raid_disks, base.array.degraded
                    ));
                }
            }
            Precondition::NoRebuildRunning => {
                if let Some(sync) = &base.array.sync {
                    reasons.push(format!(
                        "a {} is running on `{}` ({:.1}% done); wait until it finishes",
                        sync.action,
                        base.array.name,
                        sync.fraction() * 100.0
                    ));
                }
            }
            Precondition::TargetIdentified => {
                if walk.target.key().is_weak() {
                    reasons.push(format!(
                        "the target {} has no readable serial or WWN",
                        walk.target.id.describe()
                    ));
                }
            }
        }
    }
    if !base.array.state_is_running() {
        reasons.push(format!(
            "`{}` is {}, not running",
            base.array.name, base.array.state
        ));
    }

    let checks = walk.run.runbook.preflight.checks.clone();
    for c in &checks {
        if let Err(reason) = external(walk, c) {
            reasons.push(format!("check `{}` failed: {reason}", c.name));
        }
    }
    reasons.dedup();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Stop::Refuse { reasons })
    }
}

/// Run one external check. Fails closed: a check that cannot run, times out
/// or prints something unexpected is a failure.
fn external(walk: &mut Walk<'_, '_>, check: &ExternalCheck) -> Result<(), String> {
    let argv = check
        .run
        .iter()
        .map(|t| walk.render(&t.text))
        .collect::<anyhow::Result<Vec<_>>>()
        .map_err(|e| format!("{e:#}"))?;
    let output = walk
        .run
        .backend
        .execute(&argv, check.timeout)
        .map_err(|e| format!("{e:#}"))?;
    let verdict = evaluate(
        &check.test,
        &output.stdout,
        output.code,
        walk.run.clock.wall_ms(),
    );
    let verdict = if output.timed_out {
        Err(format!("`{}` timed out", argv.join(" ")))
    } else {
        verdict
    };
    let _ = walk.record(Event::Check {
        name: check.name.clone(),
        output,
        passed: verdict.is_ok(),
        detail: verdict.clone().err().unwrap_or_else(|| "ok".into()),
    });
    verdict
}

/// The verdict of a check on a command's result. Pure.
pub(crate) fn evaluate(
    test: &CheckTest,
    stdout: &str,
    code: Option<i32>,
    wall_ms: u64,
) -> Result<(), String> {
    if code != Some(0) {
        return Err(match code {
            Some(c) => format!("exited with status {c}"),
            None => "was killed".into(),
        });
    }
    let pointed = |pointer: &str| -> Result<serde_json::Value, String> {
        let json: serde_json::Value =
            serde_json::from_str(stdout).map_err(|e| format!("output is not JSON ({e})"))?;
        json.pointer(pointer)
            .cloned()
            .ok_or_else(|| format!("output has nothing at JSON pointer `{pointer}`"))
    };
    match test {
        CheckTest::ExitZero => Ok(()),
        CheckTest::JsonEquals { pointer, value } => {
            let got = pointed(pointer)?;
            if &got == value {
                Ok(())
            } else {
                Err(format!("`{pointer}` is {got}, expected {value}"))
            }
        }
        CheckTest::JsonMaxAge { pointer, max_age } => {
            let got = pointed(pointer)?;
            let at_ms = timestamp_ms(&got)
                .ok_or_else(|| format!("`{pointer}` is {got}, not a timestamp"))?;
            let age = Duration::from_millis(wall_ms.saturating_sub(at_ms));
            if age <= *max_age {
                Ok(())
            } else {
                Err(format!(
                    "`{pointer}` is {} old, more than the allowed {}",
                    humantime::format_duration(Duration::from_secs(age.as_secs())),
                    humantime::format_duration(*max_age)
                ))
            }
        }
    }
}

/// RFC 3339 (with `Z` or a numeric offset) or Unix seconds, as Unix ms.
fn timestamp_ms(value: &serde_json::Value) -> Option<u64> {
    if let Some(secs) = value.as_u64() {
        return secs.checked_mul(1000);
    }
    let text = value.as_str()?.trim();
    let (base, offset_secs) = split_offset(text)?;
    let t = humantime::parse_rfc3339_weak(base).ok()?;
    let ms = t.duration_since(UNIX_EPOCH).ok()?.as_millis() as i64 - offset_secs * 1000;
    u64::try_from(ms).ok()
}

/// `2026-01-01T10:00:00.5+02:00` → (`2026-01-01T10:00:00.5`, 7200).
fn split_offset(text: &str) -> Option<(&str, i64)> {
    if let Some(base) = text.strip_suffix('Z').or_else(|| text.strip_suffix('z')) {
        return Some((base, 0));
    }
    let tail = text.get(text.len().checked_sub(6)?..)?;
    let bytes = tail.as_bytes();
    if (bytes[0] == b'+' || bytes[0] == b'-') && bytes[3] == b':' {
        let h: i64 = tail.get(1..3)?.parse().ok()?;
        let m: i64 = tail.get(4..6)?.parse().ok()?;
        let sign = if bytes[0] == b'-' { -1 } else { 1 };
        return Some((&text[..text.len() - 6], sign * (h * 3600 + m * 60)));
    }
    Some((text, 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    #[test]
    #[allow(clippy::type_complexity)]
    fn evaluates_checks() {
        let day = Duration::from_secs(86_400);
        let age = |p: &str| CheckTest::JsonMaxAge {
            pointer: p.into(),
            max_age: day,
        };
        let cases: Vec<(&str, CheckTest, &str, Option<i32>, Result<(), &str>)> = vec![
            ("exit zero", CheckTest::ExitZero, "", Some(0), Ok(())),
            (
                "exit nonzero",
                CheckTest::ExitZero,
                "",
                Some(1),
                Err("exited with status 1"),
            ),
            (
                "fresh rfc3339",
                age("/0/time"),
                r#"[{"time":"2025-12-31T10:00:00Z"}]"#,
                Some(0),
                Ok(()),
            ),
            (
                "fresh with offset",
                age("/0/time"),
                r#"[{"time":"2025-12-31T12:00:00.123456789+02:00"}]"#,
                Some(0),
                Ok(()),
            ),
            (
                "old",
                age("/0/time"),
                r#"[{"time":"2025-12-29T00:00:00Z"}]"#,
                Some(0),
                Err("`/0/time` is 3days old, more than the allowed 1day"),
            ),
            (
                "unix seconds",
                age("/t"),
                r#"{"t":1767200000}"#,
                Some(0),
                Ok(()),
            ),
            (
                "not json",
                age("/t"),
                "garbage",
                Some(0),
                Err("output is not JSON"),
            ),
            (
                "missing pointer",
                age("/x"),
                "{}",
                Some(0),
                Err("output has nothing at JSON pointer `/x`"),
            ),
            (
                "not a time",
                age("/t"),
                r#"{"t":"soon"}"#,
                Some(0),
                Err("`/t` is \"soon\", not a timestamp"),
            ),
            (
                "equals",
                CheckTest::JsonEquals {
                    pointer: "/paused".into(),
                    value: json!(true),
                },
                r#"{"paused":true}"#,
                Some(0),
                Ok(()),
            ),
            (
                "not equals",
                CheckTest::JsonEquals {
                    pointer: "/paused".into(),
                    value: json!(true),
                },
                r#"{"paused":false}"#,
                Some(0),
                Err("`/paused` is false, expected true"),
            ),
        ];
        for (name, test, stdout, code, want) in cases {
            let got = evaluate(&test, stdout, code, NOW);
            match (got, want) {
                (Ok(()), Ok(())) => {}
                (Err(g), Err(w)) => assert!(g.starts_with(w), "{name}: {g}"),
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
        }
    }
}
