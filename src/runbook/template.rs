//! `{variable}` templates in runbook strings.
//!
//! Variables come from the live array (`{target.serial}`, `{target.slot}`)
//! and from parameters (`{array}`); `{{` and `}}` stand for literal braces.
//! The linter uses [`variables`] to point at undefined names; the engine uses
//! [`render`] once the array has bound them.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

use crate::runbook::model::{Param, ParamKind};
pub use crate::runbook::placeholders::{VarRef, variables};
use crate::runbook::shell;
use crate::sanitize::sanitize;

/// Fields every drive variable has: `{target.dev}` (`/dev/sdb`),
/// `{target.name}` (`sdb`), `{new.serial}`, `{new.serial4}` (its last four
/// characters), `{target.size}` (bytes), `{target.slot}` (bay, or a plain
/// "unknown" notice that names the serial instead), `{target.member}` (the
/// backend's own name for the member: md `sdb1`, ZFS the leaf GUID, btrfs
/// the devid; bound only while the drive is a member, so a command that
/// needs it for a drive that is not one halts before it runs), `{new.part}`
/// (the path a partition number is appended to: `/dev/sdb`,
/// `/dev/nvme1n1p`, so `{new.part}3` is the third partition).
pub const DRIVE_FIELDS: [&str; 10] = [
    "dev", "name", "serial", "serial4", "wwn", "model", "size", "slot", "member", "part",
];

/// Values bound to variable names for one run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars {
    values: BTreeMap<String, String>,
}

impl Vars {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.values.insert(name.into(), value.into());
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// Substitute every variable in `text`. An unbound variable is an error,
/// never an empty string: a command must not run with a hole in its argv.
pub fn render(text: &str, vars: &Vars) -> Result<String> {
    render_with(text, vars, |_, value| Ok(value.to_string()))
}

fn unescape(s: &str) -> String {
    s.replace("{{", "{").replace("}}", "}")
}

/// Characters that mean something to a shell. A value from the hardware
/// (a serial, a model) or a non-text param that holds one is refused in an
/// argv: the program might hand it to a shell (`ssh`, `su -c`), and no
/// real drive has such a serial.
const SHELL_SPECIAL: &[char] = &[
    ';', '&', '|', '$', '`', '<', '>', '\\', '\'', '"', '!', '*', '?', '[', ']', '{', '}', '~', '#',
];

/// Where a substituted value lands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// A word of the argv, passed to the program as it is.
    Argv,
    /// Inside the command line a shell parses (`sh -c LINE`): quoted.
    ShellLine,
}

/// Render a command's argv. Every substituted value is checked first and
/// a bad one refuses the whole command (nothing runs with a value the
/// runbook did not mean):
///
/// - a NUL byte or a control character (a newline, an escape sequence) is
///   refused everywhere;
/// - a value beginning with `-` is refused (the program would read it as an
///   option), unless it is a `text` param with `allow_dash = true`;
/// - in a plain argv word, a hardware string (serial, model, ...) or a
///   non-text param holding a shell special character (`;`, `$`, a
///   backtick, quotes, ...) is refused; `text` params are held to their
///   `pattern` when the run starts instead;
/// - in the command line of a shell (`sh -c LINE`), every value is
///   single-quoted, and a variable the quoting cannot protect (inside
///   quotes, after a backslash, in a here-document, passed to `eval` or a
///   nested shell) is refused; the linter reports those already.
///
/// `params` are the runbook's params (for `allow_dash` and kinds).
pub fn render_command(run: &[&str], vars: &Vars, params: &[Param]) -> Result<Vec<String>> {
    let line_at = shell::command_line(run);
    let mut argv = Vec::with_capacity(run.len());
    for (i, text) in run.iter().enumerate() {
        let place = if Some(i) == line_at {
            Place::ShellLine
        } else {
            Place::Argv
        };
        if place == Place::ShellLine
            && let Some((_, why)) = shell::quoting_problems(text).into_iter().next()
        {
            bail!(
                "in the shell command line `{}`: {why}",
                sanitize(text, false)
            );
        }
        argv.push(render_with(text, vars, |name, value| {
            check_value(name, value, place, params)?;
            Ok(match place {
                Place::Argv => value.to_string(),
                Place::ShellLine => shell_quote(value),
            })
        })?);
    }
    // A value must not turn the command into something else: a shell
    // where there was none, or a different word into the command line.
    let words: Vec<&str> = argv.iter().map(String::as_str).collect();
    if shell::command_line(&words) != line_at {
        bail!(
            "a substituted value changes which program reads a shell command line in `{}`; refused",
            sanitize(&words.join(" "), false)
        );
    }
    Ok(argv)
}

/// Substitute every variable in `text`, each value through `each`.
fn render_with(
    text: &str,
    vars: &Vars,
    mut each: impl FnMut(&str, &str) -> Result<String>,
) -> Result<String> {
    let refs = match variables(text) {
        Ok(refs) => refs,
        Err((_, message)) => bail!("in `{}`: {message}", sanitize(text, false)),
    };
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for var in refs {
        let open = var.offset - 1;
        out.push_str(&unescape(&text[last..open]));
        match vars.get(&var.name) {
            Some(value) => out.push_str(&each(&var.name, value)?),
            None => bail!("variable `{{{}}}` is not bound yet", var.name),
        }
        last = var.offset + var.name.len() + 1;
    }
    out.push_str(&unescape(&text[last..]));
    Ok(out)
}

/// Whether `value` may stand for `{name}` at `place`.
fn check_value(name: &str, value: &str, place: Place, params: &[Param]) -> Result<()> {
    let param = params.iter().find(|p| p.name == name);
    let shown = || sanitize(value, false);
    if value.contains('\0') {
        bail!("`{{{name}}}` holds a NUL byte; refused");
    }
    if let Some(c) = value.chars().find(|c| is_unprintable(*c)) {
        bail!(
            "`{{{name}}}` = `{}` holds a control character ({}); refused",
            shown(),
            c.escape_unicode()
        );
    }
    if value.starts_with('-') && !param.is_some_and(|p| p.allow_dash) {
        let help = match param {
            Some(p) if p.kind == ParamKind::Text => {
                " (the param may allow it with `allow_dash = true`)"
            }
            _ => "",
        };
        bail!(
            "`{{{name}}}` = `{}` begins with `-`, so the program would read it as an option; refused{help}",
            shown()
        );
    }
    if place == Place::Argv
        && !param.is_some_and(|p| p.kind == ParamKind::Text)
        && let Some(c) = value.chars().find(|c| SHELL_SPECIAL.contains(c))
    {
        bail!(
            "`{{{name}}}` = `{}` holds `{c}`, which no drive's name, serial or model has; refused",
            shown()
        );
    }
    Ok(())
}

/// A control character (C0, DEL, C1) or a bidirectional override: what
/// [`sanitize`] would replace.
pub(crate) fn is_unprintable(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// POSIX single quoting: the value between `'...'`, each `'` in it written
/// as `'\''`. Every character but `'` is literal inside single quotes, so
/// no value can end the quoting early.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_variables_with_offsets() {
        let refs = variables("pull {target.dev} from {{bay}} {array}").unwrap();
        let names: Vec<_> = refs.iter().map(|r| (r.name.as_str(), r.offset)).collect();
        assert_eq!(names, [("target.dev", 6), ("array", 32)]);
    }

    #[test]
    fn rejects_unclosed_and_bad_names() {
        for (text, at) in [("a {b", 2), ("a } b", 2), ("{}", 0), ("{a b}", 0)] {
            assert_eq!(variables(text).unwrap_err().0, at, "{text}");
        }
    }

    #[test]
    fn renders_and_unescapes() {
        let mut vars = Vars::new();
        vars.set("array", "md0");
        vars.set("target.dev", "/dev/sdb");
        assert_eq!(
            render("mdadm /dev/{array} --fail {target.dev} {{x}}", &vars).unwrap(),
            "mdadm /dev/md0 --fail /dev/sdb {x}"
        );
    }

    #[test]
    fn unbound_variable_is_an_error() {
        let err = render("{new.dev}", &Vars::new()).unwrap_err();
        assert!(
            err.to_string().contains("`{new.dev}` is not bound"),
            "{err}"
        );
    }

    fn param(name: &str, kind: ParamKind, allow_dash: bool) -> Param {
        Param {
            name: name.into(),
            kind,
            help: String::new(),
            pattern: None,
            allow_dash,
        }
    }

    fn params() -> Vec<Param> {
        vec![
            param("array", ParamKind::Array, false),
            param("target", ParamKind::Member, false),
            param("replica", ParamKind::Text, false),
            param("opt", ParamKind::Text, true),
        ]
    }

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let mut vars = Vars::new();
        for (k, v) in pairs {
            vars.set(*k, *v);
        }
        vars
    }

    fn cmd(run: &[&str], pairs: &[(&str, &str)]) -> Result<Vec<String>> {
        render_command(run, &vars(pairs), &params())
    }

    #[test]
    fn shell_line_values_are_single_quoted() {
        let argv = cmd(
            &["sh", "-c", "echo {replica} {target.serial} > out"],
            &[
                ("replica", "x; touch FILE"),
                ("target.serial", "$(touch F)'`x`"),
            ],
        )
        .unwrap();
        assert_eq!(argv[2], r#"echo 'x; touch FILE' '$(touch F)'\''`x`' > out"#);
        // The argv words around the line are not quoted.
        let argv = cmd(
            &[
                "sudo",
                "bash",
                "-e",
                "-o",
                "pipefail",
                "-c",
                "logger {array}",
                "{array}",
            ],
            &[("array", "md0")],
        )
        .unwrap();
        assert_eq!(argv[6], "logger 'md0'");
        assert_eq!(argv[7], "md0");
    }

    #[test]
    fn the_quoting_really_holds_in_a_shell() {
        let nasty = [
            "x; touch FILE",
            "$(touch FILE)",
            "`touch FILE`",
            "a'b\"c\\d",
            "'; touch FILE; '",
            "",
            "  spaced  out ",
            "*",
        ];
        for value in nasty {
            let argv = cmd(&["sh", "-c", "printf %s {replica}"], &[("replica", value)]).unwrap();
            let out = std::process::Command::new("sh")
                .args(&argv[1..])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), value, "{argv:?}");
        }
    }

    #[test]
    fn a_value_that_begins_with_a_dash_is_refused_unless_allowed() {
        for run in [&["mdadm", "{replica}"][..], &["sh", "-c", "rm {replica}"]] {
            let err = cmd(run, &[("replica", "--delete-all")]).unwrap_err();
            assert!(err.to_string().contains("begins with `-`"), "{err}");
            assert!(err.to_string().contains("allow_dash"), "{err}");
        }
        let err = cmd(&["logger", "{target.serial}"], &[("target.serial", "-rf")]).unwrap_err();
        assert!(err.to_string().contains("begins with `-`"), "{err}");
        assert_eq!(
            cmd(&["restic", "{opt}"], &[("opt", "--verbose")]).unwrap(),
            ["restic", "--verbose"]
        );
        // Refused inside a word too: one rule is easier to review than a
        // model of every program's option parsing.
        let err = cmd(&["x", "--name={replica}"], &[("replica", "-a")]).unwrap_err();
        assert!(err.to_string().contains("begins with"), "{err}");
    }

    #[test]
    fn hardware_strings_with_shell_syntax_are_refused_in_an_argv() {
        for serial in ["S1;reboot", "$(touch F)", "`id`", "a|b", "x>y"] {
            let err =
                cmd(&["logger", "{target.serial}"], &[("target.serial", serial)]).unwrap_err();
            assert!(err.to_string().contains("refused"), "{serial}: {err}");
        }
        for bad in ["S1\nreboot", "S1\x1b]52;c;eA==\x07", "S\u{202e}1"] {
            let err = cmd(
                &["sh", "-c", "logger {target.serial}"],
                &[("target.serial", bad)],
            )
            .unwrap_err();
            assert!(err.to_string().contains("control character"), "{err}");
            assert!(!err.to_string().contains('\x1b'), "{err}");
        }
        let err = cmd(&["logger", "{replica}"], &[("replica", "a\0b")]).unwrap_err();
        assert!(err.to_string().contains("NUL"), "{err}");
        // Ordinary hardware strings pass.
        let argv = cmd(
            &["logger", "{target.model}", "{target.slot}"],
            &[
                ("target.model", "SAMSUNG MZ7LH960HAJR-00005"),
                (
                    "target.slot",
                    "unknown (no bay information: identify the drive by serial S3Z1)",
                ),
            ],
        )
        .unwrap();
        assert_eq!(argv[1], "SAMSUNG MZ7LH960HAJR-00005");
    }

    #[test]
    fn variables_the_quoting_cannot_protect_are_refused() {
        for line in [
            "echo '{replica}'",
            "echo \"{replica}\"",
            "echo `{replica}`",
            "echo \\{replica}",
            "eval echo {replica}",
            "sh -c {replica}",
            "cat <<EOF\n{replica}\nEOF",
            "{replica} --now",
            "echo a; {replica}",
            "x=$({replica})",
        ] {
            let err = cmd(&["sh", "-c", line], &[("replica", "db")]).unwrap_err();
            assert!(
                err.to_string().contains("cannot be quoted safely"),
                "{line}: {err}"
            );
        }
    }

    #[test]
    fn a_value_cannot_turn_a_command_into_a_shell() {
        let err = cmd(&["{replica}", "-c", "id"], &[("replica", "sh")]).unwrap_err();
        assert!(err.to_string().contains("shell command line"), "{err}");
    }
}
