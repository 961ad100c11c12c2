//! Command steps that run a shell.
//!
//! swapguard runs every command as an argv, never through a shell, because
//! the runbook's variables carry strings that come from the hardware (a
//! drive's serial, its model): pasted into a shell command line they could
//! be read as shell syntax. A step may still run `sh -c '...'` as its
//! program, but only when it says so with `shell = true`, and the linter
//! then warns about it; without it such a step is an error.

use crate::runbook::load::to_span;
use crate::runbook::model::Template;
use crate::runbook::steps::StepCheck;

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

/// Check `shell` against what the step runs.
pub(crate) fn check(step: &mut StepCheck<'_, '_, '_>, run: Option<&[Template]>) {
    let said = step
        .raw
        .shell
        .as_ref()
        .map(|s| (*s.get_ref(), to_span(s.span())));
    let Some(run) = run else {
        return;
    };
    let texts: Vec<&str> = run.iter().map(|t| t.text.as_str()).collect();
    let shell_at = runs_shell(&texts);
    match (shell_at, said) {
        (Some(at), None | Some((false, _))) => {
            let span = run.get(at).map_or(step.table, |t| t.span);
            let message = format!(
                "{} runs `{}` with a command line: swapguard runs commands as an argv, never through a shell, unless the step says so",
                step.label, texts[at]
            );
            step.error(
                span,
                message,
                Some("run the program directly (`run = [\"mdadm\", \"/dev/{array}\", ...]`); if a shell is truly needed, add `shell = true`".into()),
            );
        }
        (Some(_), Some((true, span))) => {
            let message = format!(
                "{} runs through a shell: variables such as a drive's serial or model are pasted into a shell command line",
                step.label
            );
            step.ctx.warn(
                span,
                message,
                Some("prefer an argv without a shell; keep `shell = true` only if there is no other way".into()),
            );
        }
        (None, Some((true, span))) => {
            let message = format!(
                "{} says `shell = true` but does not run a shell with a command line",
                step.label
            );
            step.ctx
                .warn(span, message, Some("remove `shell = true`".into()));
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
}
