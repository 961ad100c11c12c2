//! Command steps that run a shell.
//!
//! swapguard runs every command as an argv, never through a shell, because
//! the runbook's variables carry strings that come from the hardware (a
//! drive's serial, its model) and from people (params). A step may still run
//! `sh -c '...'` as its program, but only when it says so with
//! `shell = true`, and the linter then warns about it; without it such a
//! step is an error. In such a command line every substituted value is
//! single-quoted ([`crate::runbook::template::render_command`]);
//! [`quoting_problems`] finds the places where quoting cannot protect a
//! value, which lint reports and the engine refuses.

use crate::runbook::ctx::{Ctx, to_span};
use crate::runbook::model::{Span, Template};
use crate::runbook::placeholders::variables;
use crate::runbook::raw::RawStep;

/// Programs that interpret a command line given with `-c`.
const SHELLS: [&str; 8] = ["sh", "bash", "dash", "zsh", "ksh", "ash", "mksh", "busybox"];

/// The argv index of a shell that is given a command line (`sh -c ...`,
/// `sudo bash -ec ...`, `busybox sh -c ...`), if any.
pub(crate) fn runs_shell(argv: &[&str]) -> Option<usize> {
    let base = |a: &str| a.rsplit('/').next().unwrap_or(a).to_string();
    let at = argv
        .iter()
        .position(|a| SHELLS.contains(&base(a).as_str()))?;
    let takes_line = argv[at + 1..]
        .iter()
        .any(|a| a.starts_with('-') && !a.starts_with("--") && a.contains('c'));
    takes_line.then_some(at)
}

/// The argv index of the command line a shell parses (`LINE` in
/// `sh -c LINE`, `sudo bash -e -o pipefail -c LINE`), if any.
pub(crate) fn command_line(argv: &[&str]) -> Option<usize> {
    let base = |a: &str| a.rsplit('/').next().unwrap_or(a).to_string();
    let mut at = runs_shell(argv)?;
    // `busybox sh -c LINE`: the shell is the word after busybox.
    while argv
        .get(at + 1)
        .is_some_and(|a| SHELLS.contains(&base(a).as_str()))
    {
        at += 1;
    }
    let mut i = at + 1;
    while let Some(word) = argv.get(i) {
        match *word {
            "--" => return (i + 1 < argv.len()).then_some(i + 1),
            "-o" | "+o" | "-O" | "+O" => i += 2,
            w if w.starts_with('-') || w.starts_with('+') => i += 1,
            _ => return Some(i),
        }
    }
    None
}

/// Why a variable in a shell command line cannot be protected by quoting
/// its value: each problem with the byte offset of the variable's name.
///
/// swapguard puts every value in single quotes. That holds only where the
/// shell reads a plain word: inside `'...'` or `"..."` the quotes would
/// close the author's quoting instead; after a backslash or inside
/// backticks the shell reads them differently; a here-document's body is
/// expanded like double quotes; `eval` and a nested `sh -c` parse the
/// value a second time, without the quotes.
pub(crate) fn quoting_problems(text: &str) -> Vec<(usize, String)> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Plain,
        Single,
        Double,
        Backtick,
    }
    let Ok(refs) = variables(text) else {
        return Vec::new();
    };
    if refs.is_empty() {
        return Vec::new();
    }
    let b = text.as_bytes();
    let mut problems = Vec::new();
    let mut state = State::Plain;
    // Set once the line passes a word that re-parses what follows.
    let mut reparsed: Option<&'static str> = None;
    let mut words: Vec<String> = Vec::new();
    // Words of the current simple command (after `;`, `&&`, `|`, `(`, ...).
    let mut command_words = 0;
    let mut word = String::new();
    let mut refs = refs.into_iter().peekable();
    let mut i = 0;
    let mut escaped = false;
    while i < b.len() {
        if let Some(var) = refs.next_if(|r| r.offset == i + 1) {
            let why = if escaped {
                Some("it follows a backslash")
            } else {
                match state {
                    State::Single => Some("it is inside single quotes"),
                    State::Double => Some("it is inside double quotes"),
                    State::Backtick => Some("it is inside backticks"),
                    State::Plain if word.is_empty() && command_words == 0 => {
                        Some("it stands where the shell reads the name of the program to run")
                    }
                    State::Plain => reparsed,
                }
            };
            if let Some(why) = why {
                problems.push((
                    var.offset,
                    format!(
                        "`{{{}}}` cannot be quoted safely in a shell command line: {why}",
                        var.name
                    ),
                ));
            }
            escaped = false;
            word.push('x');
            i = var.offset + var.name.len() + 1;
            continue;
        }
        let c = b[i];
        if escaped {
            escaped = false;
            i += 1;
            continue;
        }
        if matches!(&b[i..], [b'{', b'{', ..] | [b'}', b'}', ..]) {
            word.push(c as char);
            i += 2;
            continue;
        }
        match (state, c) {
            (State::Plain | State::Double, b'\\') => escaped = true,
            (State::Plain, b'\'') => state = State::Single,
            (State::Plain, b'"') => state = State::Double,
            (State::Plain, b'`') => state = State::Backtick,
            (State::Single, b'\'') | (State::Double, b'"') | (State::Backtick, b'`') => {
                state = State::Plain
            }
            (State::Plain, b'#') if word.is_empty() => {
                // A comment runs to the end of the line.
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            (State::Plain, b'<') if b[i..].starts_with(b"<<<") => {
                // A here-string is a plain word.
                i += 3;
                continue;
            }
            (State::Plain, b'<') if b[i..].starts_with(b"<<") => {
                reparsed = Some(
                    "it follows `<<`, and a here-document's body is expanded like double quotes",
                );
            }
            (State::Plain, c) if c.is_ascii_whitespace() || b";&|()".contains(&c) => {
                let ends_command = c == b'\n' || b";&|()".contains(&c);
                if !word.is_empty() {
                    command_words += 1;
                    words.push(std::mem::take(&mut word));
                    let last: Vec<&str> = words.iter().map(String::as_str).collect();
                    if last.last() == Some(&"eval") {
                        reparsed = reparsed.or(Some(
                            "it is passed to `eval`, which parses it again without the quotes",
                        ));
                    } else if runs_shell(&last[last.len().saturating_sub(4)..]).is_some() {
                        reparsed = reparsed.or(Some("it is passed to a nested shell, which parses it again without the quotes"));
                    }
                }
                if ends_command {
                    command_words = 0;
                }
            }
            _ => word.push(c as char),
        }
        i += 1;
    }
    problems
}

/// Check `shell` against what the step runs: `step` is the step's table
/// (at `table`), `label` how messages name it, `run` its checked argv.
pub(crate) fn check(
    ctx: &mut Ctx,
    step: &RawStep,
    table: Span,
    label: &str,
    run: Option<&[Template]>,
) {
    let said = step
        .shell
        .as_ref()
        .map(|s| (*s.get_ref(), to_span(s.span())));
    let Some(run) = run else {
        return;
    };
    let texts: Vec<&str> = run.iter().map(|t| t.text.as_str()).collect();
    let shell_at = runs_shell(&texts);
    if let (Some(line), Some(raw)) = (command_line(&texts), step.run.as_ref())
        && let Some(value) = raw.get_ref().get(line)
    {
        for (offset, message) in quoting_problems(value.get_ref()) {
            let name_len = value.get_ref()[offset..].find('}').unwrap_or(0);
            let at = ctx.inner_span(value, offset, name_len);
            ctx.error(
                at,
                message,
                Some("write the variable as a plain shell word (`echo {target.serial}`, not `echo \"{target.serial}\"`): swapguard single-quotes its value itself".into()),
            );
        }
    }
    match (shell_at, said) {
        (Some(at), None | Some((false, _))) => {
            let span = run.get(at).map_or(table, |t| t.span);
            let message = format!(
                "{} runs `{}` with a command line: swapguard runs commands as an argv, never through a shell, unless the step says so",
                label, texts[at]
            );
            ctx.error(
                span,
                message,
                Some("run the program directly (`run = [\"mdadm\", \"/dev/{array}\", ...]`); if a shell is truly needed, add `shell = true`".into()),
            );
        }
        (Some(_), Some((true, span))) => {
            let message = format!(
                "{} runs through a shell: every variable's value is single-quoted into the command line, but a shell line is harder to review than an argv",
                label
            );
            ctx.warn(
                span,
                message,
                Some("prefer an argv without a shell; keep `shell = true` only if there is no other way".into()),
            );
        }
        (None, Some((true, span))) => {
            let message = format!(
                "{} says `shell = true` but does not run a shell with a command line",
                label
            );
            ctx.warn(span, message, Some("remove `shell = true`".into()));
        }
        (None, _) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::runs_shell;
    use crate::runbook::load::load_str;

    const HEAD: &str = r#"
[runbook]
name = "shell test"
backend = "md"

[params]
array = { kind = "array", help = "md array" }
target = { kind = "member", help = "member" }

[on_halt]
say = "STOP."

[[step]]
id = "notify"
kind = "command"
confirm = "type-serial"
confirm_drive = "target"
"#;

    fn load(extra: &str) -> Vec<String> {
        let text = format!("{HEAD}{extra}");
        load_str(std::path::Path::new("rb.toml"), &text)
            .diagnostics
            .iter()
            .map(|d| format!("{:?} {}", d.severity, d.message))
            .collect()
    }

    #[test]
    fn a_shell_needs_shell_true_and_then_is_warned_about() {
        let without = load("run = [\"sh\", \"-c\", \"echo {target.serial}\"]\n");
        assert!(
            without
                .iter()
                .any(|d| d.starts_with("Error") && d.contains("never through a shell")),
            "{without:?}"
        );
        let with = load("run = [\"sh\", \"-c\", \"echo {target.serial}\"]\nshell = true\n");
        assert!(
            with.iter()
                .any(|d| d.starts_with("Warning") && d.contains("runs through a shell")),
            "{with:?}"
        );
        assert!(!with.iter().any(|d| d.starts_with("Error")), "{with:?}");
        let needless = load("run = [\"logger\", \"swap\"]\nshell = true\n");
        assert!(
            needless.iter().any(|d| d.contains("does not run a shell")),
            "{needless:?}"
        );
    }

    #[test]
    fn finds_a_shell_given_a_command_line() {
        let cases: [(&[&str], Option<usize>); 8] = [
            (&["sh", "-c", "dd if=/dev/zero"], Some(0)),
            (&["/bin/bash", "-ec", "x"], Some(0)),
            (&["sudo", "sh", "-c", "x"], Some(1)),
            (&["busybox", "sh", "-c", "x"], Some(0)),
            (&["sh", "script.sh"], None),
            (&["mdadm", "/dev/md0", "--fail", "/dev/sdb"], None),
            (&["bash", "--login"], None),
            (&[], None),
        ];
        for (argv, want) in cases {
            assert_eq!(runs_shell(argv), want, "{argv:?}");
        }
    }

    #[test]
    fn finds_the_command_line_a_shell_parses() {
        let cases: [(&[&str], Option<usize>); 6] = [
            (&["sh", "-c", "x"], Some(2)),
            (
                &["sudo", "bash", "-e", "-o", "pipefail", "-c", "x", "arg0"],
                Some(6),
            ),
            (&["busybox", "sh", "-c", "x"], Some(3)),
            (&["sh", "-c", "--", "x"], Some(3)),
            (&["sh", "-c"], None),
            (&["logger", "x"], None),
        ];
        for (argv, want) in cases {
            assert_eq!(super::command_line(argv), want, "{argv:?}");
        }
    }

    #[test]
    fn plain_words_quote_safely_and_quoted_ones_do_not() {
        use super::quoting_problems;
        for ok in [
            "echo {target.serial} > /tmp/out",
            "x=$(echo {array}); logger \"$x\"",
            "# note '\necho {array}",
            "test -n {array} && echo 'done'",
            "echo ${{HOME}} {array}",
            "cat <<< {array}",
        ] {
            assert_eq!(quoting_problems(ok), vec![], "{ok}");
        }
        let problems = quoting_problems("echo 'a' \"{x}\" {y}");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].0, 11);
        assert!(problems[0].1.contains("double quotes"));
    }

    #[test]
    fn lint_reports_a_variable_inside_quotes_in_a_shell_line() {
        let out =
            load("run = [\"sh\", \"-c\", \"echo '{target.serial}' | logger\"]\nshell = true\n");
        assert!(
            out.iter().any(|d| d.starts_with("Error")
                && d.contains("`{target.serial}` cannot be quoted safely")
                && d.contains("single quotes")),
            "{out:?}"
        );
        let clean =
            load("run = [\"sh\", \"-c\", \"echo {target.serial} | logger\"]\nshell = true\n");
        assert!(!clean.iter().any(|d| d.starts_with("Error")), "{clean:?}");
    }
}
