//! External checks: facts outside the array, such as "the newest backup is
//! younger than a day" or "replication is paused", gating a run in
//! `[preflight]` or as a step of kind `check`.
//!
//! A check runs an argv (never a shell) through the backend, so a dry run
//! answers it from the scenario's canned outputs, then tests the exit status
//! and at most one thing about stdout. It fails closed: a program that
//! cannot start, times out, is killed, exits with an unexpected status or
//! prints something that cannot be judged is a failure, never a pass.

use std::cmp::Ordering;
use std::time::{Duration, UNIX_EPOCH};

use crate::backend::CommandOutput;
use crate::engine::{Stop, Walk};
use crate::journal::Event;
use crate::operator::NoteLevel;
use crate::runbook::model::{CheckTest, ExternalCheck, Step};
use crate::sanitize::sanitize;

/// A timestamp this far in the future still counts as fresh (clock skew
/// between hosts); beyond it the check fails, because a backup from the
/// future says more about a broken clock than about a fresh backup.
const FUTURE_SLACK: Duration = Duration::from_secs(300);

impl Walk<'_, '_> {
    /// Run one check and journal it. `Ok` carries what was seen, `Err` why
    /// the check failed.
    pub(crate) fn run_check(&mut self, check: &ExternalCheck) -> Result<String, String> {
        let argv = self.render_argv(&check.run).map_err(|e| format!("{e:#}"))?;
        let check = &self.filled(check)?;
        let result = self.run.backend.execute(&argv, check.timeout);
        self.judge(check, &argv, result)
    }

    /// Test a check's result and journal it.
    fn judge(
        &mut self,
        check: &ExternalCheck,
        argv: &[String],
        result: anyhow::Result<CommandOutput>,
    ) -> Result<String, String> {
        let (output, verdict) = match result {
            Ok(output) => {
                let verdict = evaluate(check, &output, self.run.clock.wall_ms());
                (output, verdict)
            }
            Err(e) => {
                let reason = format!("cannot run `{}`: {e:#}", argv.join(" "));
                let output = CommandOutput {
                    argv: argv.to_vec(),
                    code: None,
                    stdout: String::new(),
                    stderr: reason.clone(),
                    timed_out: false,
                };
                (output, Err(reason))
            }
        };
        self.record(Event::Check {
            name: check.name.clone(),
            output,
            passed: verdict.is_ok(),
            detail: match &verdict {
                Ok(seen) => seen.clone(),
                Err(reason) => reason.clone(),
            },
        })
        .map_err(|e| format!("{e:#}"))?;
        verdict
    }

    /// A step of kind `check`: a failure stops the run before anything
    /// after it is done.
    /// The watch goes on while it runs (engine/command.rs).
    pub(crate) fn check_step(&mut self, step: &Step, check: &ExternalCheck) -> Result<(), Stop> {
        let verdict = match self
            .render_argv(&check.run)
            .map_err(|e| format!("{e:#}"))
            .and_then(|argv| Ok((argv, self.filled(check)?)))
        {
            Ok((argv, check)) => {
                let result = self.watched(step, &argv, check.timeout)?;
                self.judge(&check, &argv, result)
            }
            Err(e) => Err(e),
        };
        match verdict {
            Ok(seen) => {
                self.run.operator.note(
                    NoteLevel::Good,
                    &sanitize(&format!("check `{}` passed: {seen}", check.name), false),
                );
                Ok(())
            }
            Err(reason) => Err(Stop::Halt {
                step: step.id.clone(),
                headline: format!(
                    "check `{}` failed, so nothing after it is done: {reason}",
                    check.name
                ),
                violations: vec![],
            }),
        }
    }
}

impl Walk<'_, '_> {
    /// The check with the runbook variables of its `stdout_is` filled in,
    /// as its argv's are (a value that cannot be used fails the check).
    fn filled(&self, check: &ExternalCheck) -> Result<ExternalCheck, String> {
        let CheckTest::StdoutIs { text } = &check.test else {
            return Ok(check.clone());
        };
        let template = crate::runbook::model::Template {
            text: text.clone(),
            span: Default::default(),
        };
        let text = self
            .render_argv(std::slice::from_ref(&template))
            .map_err(|e| format!("{e:#}"))?
            .concat();
        Ok(ExternalCheck {
            test: CheckTest::StdoutIs { text },
            ..check.clone()
        })
    }
}

/// The verdict of a check on a command's result. Pure: `Ok` says what was
/// seen, `Err` why it fails.
pub fn evaluate(
    check: &ExternalCheck,
    output: &CommandOutput,
    wall_ms: u64,
) -> Result<String, String> {
    let shown = output.argv.join(" ");
    if output.timed_out {
        return Err(format!(
            "`{shown}` timed out after {}",
            humantime::format_duration(check.timeout)
        ));
    }
    let Some(code) = output.code else {
        return Err(format!("`{shown}` was killed by a signal"));
    };
    if !check.exit.contains(&code) {
        let stderr = output.stderr.trim();
        let hint = stderr.lines().next().unwrap_or("");
        let expected = match check.exit.as_slice() {
            [one] => format!("{one}"),
            many => format!(
                "one of {}",
                many.iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        return Err(if hint.is_empty() {
            format!("`{shown}` exited with status {code}, expected {expected}")
        } else {
            format!("`{shown}` exited with status {code}, expected {expected}: {hint}")
        });
    }
    test_output(&check.test, &output.stdout, code, wall_ms)
}

/// The output test alone.
pub fn test_output(
    test: &CheckTest,
    stdout: &str,
    code: i32,
    wall_ms: u64,
) -> Result<String, String> {
    let pointed = |pointer: &str| -> Result<serde_json::Value, String> {
        let json: serde_json::Value =
            serde_json::from_str(stdout).map_err(|e| format!("output is not JSON ({e})"))?;
        json.pointer(pointer)
            .cloned()
            .ok_or_else(|| format!("output has nothing at JSON pointer `{pointer}`"))
    };
    match test {
        CheckTest::ExitZero => Ok(format!("exit status {code}")),
        CheckTest::JsonEquals { pointer, value } => {
            let got = pointed(pointer)?;
            if &got == value {
                Ok(format!("`{pointer}` is {got}"))
            } else {
                Err(format!("`{pointer}` is {got}, expected {value}"))
            }
        }
        CheckTest::JsonNotEquals { pointer, value } => {
            let got = pointed(pointer)?;
            if &got != value {
                Ok(format!("`{pointer}` is {got}"))
            } else {
                Err(format!("`{pointer}` is {got}, which it must not be"))
            }
        }
        CheckTest::JsonAtLeast { pointer, bound } | CheckTest::JsonAtMost { pointer, bound } => {
            let got = pointed(pointer)?;
            let order = number_of(&got)
                .and_then(|n| compare(&n, bound))
                .ok_or_else(|| format!("`{pointer}` is {got}, not a number"))?;
            let (ok, word) = match test {
                CheckTest::JsonAtLeast { .. } => (order != Ordering::Less, "at least"),
                _ => (order != Ordering::Greater, "at most"),
            };
            if ok {
                Ok(format!("`{pointer}` is {got}"))
            } else {
                Err(format!("`{pointer}` is {got}, expected {word} {bound}"))
            }
        }
        CheckTest::JsonMaxAge { pointer, max_age } => {
            let got = pointed(pointer)?;
            let at_ms = timestamp_ms(&got)
                .ok_or_else(|| format!("`{pointer}` is {got}, not a timestamp"))?;
            if at_ms > wall_ms.saturating_add(FUTURE_SLACK.as_millis() as u64) {
                return Err(format!(
                    "`{pointer}` is {got}, in the future: check this host's clock and the tool's"
                ));
            }
            let age = Duration::from_secs(wall_ms.saturating_sub(at_ms) / 1000);
            if age <= *max_age {
                Ok(format!(
                    "`{pointer}` is {} old (at most {})",
                    humantime::format_duration(age),
                    humantime::format_duration(*max_age)
                ))
            } else {
                Err(format!(
                    "`{pointer}` is {} old, more than the allowed {}",
                    humantime::format_duration(age),
                    humantime::format_duration(*max_age)
                ))
            }
        }
        CheckTest::StdoutIs { text } => {
            if stdout.trim() == text {
                Ok(format!("output is `{text}`"))
            } else {
                Err(format!("output is not `{text}`: {}", excerpt(stdout)))
            }
        }
        CheckTest::Matches { pattern } | CheckTest::NotMatches { pattern } => {
            let re = regex::Regex::new(pattern)
                .map_err(|e| format!("`{pattern}` is not a regular expression: {e}"))?;
            let found = re.find(stdout).map(|m| m.as_str().to_string());
            match (test, found) {
                (CheckTest::Matches { .. }, Some(m)) => {
                    Ok(format!("output matches: `{}`", m.trim()))
                }
                (CheckTest::Matches { .. }, None) => Err(format!(
                    "output does not match `{pattern}`: {}",
                    excerpt(stdout)
                )),
                (_, None) => Ok(format!("output has no match for `{pattern}`")),
                (_, Some(m)) => Err(format!(
                    "output matches `{pattern}`, which it must not: `{}`",
                    m.trim()
                )),
            }
        }
    }
}

/// The start of the output, for a message.
fn excerpt(stdout: &str) -> String {
    let t = stdout.trim();
    if t.is_empty() {
        return "the output is empty".into();
    }
    let short: String = t.chars().take(80).collect();
    let more = if t.chars().count() > 80 { "..." } else { "" };
    format!("it printed `{}{more}`", short.replace('\n', " / "))
}

/// A JSON number, or a string holding one (`psql` and others print numbers
/// as text).
fn number_of(value: &serde_json::Value) -> Option<serde_json::Number> {
    match value {
        serde_json::Value::Number(n) => Some(n.clone()),
        serde_json::Value::String(s) => serde_json::from_str::<serde_json::Number>(s.trim()).ok(),
        _ => None,
    }
}

/// Exact for integers, by `f64` otherwise.
fn compare(a: &serde_json::Number, b: &serde_json::Number) -> Option<Ordering> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return Some(x.cmp(&y));
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return Some(x.cmp(&y));
    }
    a.as_f64()?.partial_cmp(&b.as_f64()?)
}

/// RFC 3339 (with `Z`, a numeric offset, or none: read as UTC) or Unix
/// seconds (a number, or a string of digits), as Unix ms.
pub fn timestamp_ms(value: &serde_json::Value) -> Option<u64> {
    if let Some(secs) = value.as_u64() {
        return secs.checked_mul(1000);
    }
    if let Some(secs) = value.as_f64().filter(|s| *s >= 0.0 && s.is_finite()) {
        return Some((secs * 1000.0) as u64);
    }
    let text = value.as_str()?.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return text.parse::<u64>().ok()?.checked_mul(1000);
    }
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

    const NOW: u64 = crate::clock::SIM_EPOCH_MS; // 2026-01-01T00:00:00Z

    fn check(exit: &[i32], test: CheckTest) -> ExternalCheck {
        ExternalCheck {
            name: "t".into(),
            run: vec![],
            exit: exit.to_vec(),
            test,
            timeout: Duration::from_secs(60),
            span: Default::default(),
        }
    }

    fn out(code: Option<i32>, stdout: &str, stderr: &str) -> CommandOutput {
        CommandOutput {
            argv: vec!["tool".into(), "--json".into()],
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
            timed_out: false,
        }
    }

    fn num(n: i64) -> serde_json::Number {
        serde_json::Number::from(n)
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn evaluates_checks() {
        let day = Duration::from_secs(86_400);
        let age = |p: &str| CheckTest::JsonMaxAge {
            pointer: p.into(),
            max_age: day,
        };
        let eq = |v| CheckTest::JsonEquals {
            pointer: "/paused".into(),
            value: v,
        };
        let ne = |v| CheckTest::JsonNotEquals {
            pointer: "/state".into(),
            value: v,
        };
        let least = CheckTest::JsonAtLeast {
            pointer: "/n".into(),
            bound: num(1),
        };
        let most = CheckTest::JsonAtMost {
            pointer: "/lag".into(),
            bound: num(0),
        };
        let re = |p: &str| CheckTest::Matches { pattern: p.into() };
        let not_re = |p: &str| CheckTest::NotMatches { pattern: p.into() };
        let is = |t: &str| CheckTest::StdoutIs { text: t.into() };
        let cases: Vec<(
            &str,
            &[i32],
            CheckTest,
            Option<i32>,
            &str,
            Result<&str, &str>,
        )> = vec![
            (
                "exit zero",
                &[0],
                CheckTest::ExitZero,
                Some(0),
                "",
                Ok("exit status 0"),
            ),
            (
                "exit nonzero, with the first stderr line",
                &[0],
                CheckTest::ExitZero,
                Some(1),
                "",
                Err(
                    "`tool --json` exited with status 1, expected 0: Fatal: repository does not exist",
                ),
            ),
            (
                "exit listed",
                &[0, 3],
                CheckTest::ExitZero,
                Some(3),
                "",
                Ok("exit status 3"),
            ),
            (
                "exit not listed",
                &[0, 3],
                CheckTest::ExitZero,
                Some(1),
                "",
                Err("`tool --json` exited with status 1, expected one of 0, 3"),
            ),
            (
                "killed",
                &[0],
                CheckTest::ExitZero,
                None,
                "",
                Err("`tool --json` was killed by a signal"),
            ),
            (
                "a failing exit status is not judged further",
                &[0],
                age("/0/time"),
                Some(1),
                r#"[{"time":"2025-12-31T22:00:00Z"}]"#,
                Err("`tool --json` exited with status 1"),
            ),
            (
                "fresh rfc3339",
                &[0],
                age("/0/time"),
                Some(0),
                r#"[{"time":"2025-12-31T10:00:00Z"}]"#,
                Ok("`/0/time` is 14h old (at most 1day)"),
            ),
            (
                "fresh with offset and nanoseconds (restic)",
                &[0],
                age("/0/time"),
                Some(0),
                r#"[{"time":"2025-12-31T12:00:00.123456789+02:00"}]"#,
                Ok("`/0/time` is 13h 59m 59s old"),
            ),
            (
                "no zone is read as UTC (borg)",
                &[0],
                age("/archives/0/time"),
                Some(0),
                r#"{"archives":[{"time":"2025-12-31T23:00:00.000000"}]}"#,
                Ok("`/archives/0/time` is 1h old"),
            ),
            (
                "old",
                &[0],
                age("/0/time"),
                Some(0),
                r#"[{"time":"2025-12-29T00:00:00Z"}]"#,
                Err("`/0/time` is 3days old, more than the allowed 1day"),
            ),
            (
                "unix seconds",
                &[0],
                age("/t"),
                Some(0),
                r#"{"t":1767200000}"#,
                Ok("`/t` is 7h 6m 40s old"),
            ),
            (
                "unix seconds as text",
                &[0],
                age("/t"),
                Some(0),
                r#"{"t":"1767200000"}"#,
                Ok("`/t` is 7h 6m 40s old"),
            ),
            (
                "unix seconds, too old",
                &[0],
                age("/t"),
                Some(0),
                r#"{"t":1700000000}"#,
                Err("`/t` is 2years 1month 17days"),
            ),
            (
                "in the future",
                &[0],
                age("/t"),
                Some(0),
                r#"{"t":"2026-01-02T00:00:00Z"}"#,
                Err("`/t` is \"2026-01-02T00:00:00Z\", in the future"),
            ),
            (
                "empty restic list",
                &[0],
                age("/0/time"),
                Some(0),
                "[]",
                Err("output has nothing at JSON pointer `/0/time`"),
            ),
            (
                "not json",
                &[0],
                age("/t"),
                Some(0),
                "garbage",
                Err("output is not JSON"),
            ),
            (
                "not a time",
                &[0],
                age("/t"),
                Some(0),
                r#"{"t":"soon"}"#,
                Err("`/t` is \"soon\", not a timestamp"),
            ),
            (
                "equals",
                &[0],
                eq(json!(true)),
                Some(0),
                r#"{"paused":true}"#,
                Ok("`/paused` is true"),
            ),
            (
                "not equal",
                &[0],
                eq(json!(true)),
                Some(0),
                r#"{"paused":false}"#,
                Err("`/paused` is false, expected true"),
            ),
            (
                "not_equals passes",
                &[0],
                ne(json!("streaming")),
                Some(0),
                r#"{"state":"stopped"}"#,
                Ok("`/state` is \"stopped\""),
            ),
            (
                "not_equals fails",
                &[0],
                ne(json!("streaming")),
                Some(0),
                r#"{"state":"streaming"}"#,
                Err("`/state` is \"streaming\", which it must not be"),
            ),
            (
                "not_equals needs the value",
                &[0],
                ne(json!("streaming")),
                Some(0),
                "{}",
                Err("output has nothing at JSON pointer `/state`"),
            ),
            (
                "at least",
                &[0],
                least.clone(),
                Some(0),
                r#"{"n":3}"#,
                Ok("`/n` is 3"),
            ),
            (
                "at least, equal",
                &[0],
                least.clone(),
                Some(0),
                r#"{"n":1}"#,
                Ok("`/n` is 1"),
            ),
            (
                "at least, below",
                &[0],
                least.clone(),
                Some(0),
                r#"{"n":0}"#,
                Err("`/n` is 0, expected at least 1"),
            ),
            (
                "at least, text number",
                &[0],
                least.clone(),
                Some(0),
                r#"{"n":"2"}"#,
                Ok("`/n` is \"2\""),
            ),
            (
                "at least, not a number",
                &[0],
                least,
                Some(0),
                r#"{"n":"many"}"#,
                Err("`/n` is \"many\", not a number"),
            ),
            (
                "at most",
                &[0],
                most.clone(),
                Some(0),
                r#"{"lag":0}"#,
                Ok("`/lag` is 0"),
            ),
            (
                "at most, float",
                &[0],
                most.clone(),
                Some(0),
                r#"{"lag":0.5}"#,
                Err("`/lag` is 0.5, expected at most 0"),
            ),
            (
                "regex matches",
                &[0],
                re("(?m)^t$"),
                Some(0),
                "t\n",
                Ok("output matches: `t`"),
            ),
            (
                "regex does not match",
                &[0],
                re("(?m)^t$"),
                Some(0),
                "f\n",
                Err("output does not match `(?m)^t$`: it printed `f`"),
            ),
            (
                "regex on empty output",
                &[0],
                re("(?m)^t$"),
                Some(0),
                "",
                Err("output does not match `(?m)^t$`: the output is empty"),
            ),
            (
                "not_matches passes",
                &[0],
                not_re("streaming"),
                Some(0),
                "stopped\n",
                Ok("output has no match for `streaming`"),
            ),
            (
                "not_matches fails",
                &[0],
                not_re("streaming"),
                Some(0),
                "streaming\n",
                Err("output matches `streaming`, which it must not: `streaming`"),
            ),
            (
                "stdout_is passes, white space around it ignored",
                &[0],
                is("414085a5-5b1a-4ebd-8d1f-b995853e9c30"),
                Some(0),
                "414085a5-5b1a-4ebd-8d1f-b995853e9c30\n",
                Ok("output is `414085a5-5b1a-4ebd-8d1f-b995853e9c30`"),
            ),
            (
                "stdout_is fails on another text",
                &[0],
                is("414085a5-5b1a-4ebd-8d1f-b995853e9c30"),
                Some(0),
                "f6662368-5c58-464e-ac6a-b5cae38b91ab\n",
                Err("output is not `414085a5-5b1a-4ebd-8d1f-b995853e9c30`: it printed"),
            ),
            (
                "stdout_is is not a substring match",
                &[0],
                is("a"),
                Some(0),
                "a\nb\n",
                Err("output is not `a`"),
            ),
            (
                "stdout_is on empty output",
                &[0],
                is("a"),
                Some(0),
                "",
                Err("output is not `a`: the output is empty"),
            ),
        ];
        for (name, exit, test, code, stdout, want) in cases {
            let stderr = "Fatal: repository does not exist\nmore\n";
            let got = evaluate(&check(exit, test), &out(code, stdout, stderr), NOW);
            match (got, want) {
                (Ok(g), Ok(w)) => assert!(g.starts_with(w), "{name}: {g}"),
                (Err(g), Err(w)) => assert!(g.starts_with(w), "{name}: {g}"),
                (g, w) => panic!("{name}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn timed_out_fails_whatever_it_printed() {
        let mut o = out(None, "[]", "");
        o.timed_out = true;
        let err = evaluate(&check(&[0], CheckTest::ExitZero), &o, NOW).unwrap_err();
        assert_eq!(err, "`tool --json` timed out after 1m");
    }
}
