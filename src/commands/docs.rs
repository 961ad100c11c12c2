//! `swapguard completions SHELL` and `swapguard man`: shell completions and
//! man pages generated from the command-line definitions themselves, so
//! they never drift from `--help`. The one place below `cli.rs` that sees
//! clap's types, because printing them is the whole job.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{self, Shell};
use crate::exit;

pub fn completions(shell: Shell, out: &mut dyn Write) -> Result<exit::Code> {
    let mut cmd = cli::command();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // clap_complete panics on a write error; render first, then write.
    let mut text = Vec::new();
    clap_complete::generate(generator, &mut cmd, "swapguard", &mut text);
    out.write_all(&text)
        .and_then(|()| out.flush())
        .context("cannot write the completions")?;
    Ok(exit::Code::Success)
}

/// The man page of `swapguard` on `out`, or with `dir` one page per command
/// written there (`swapguard.1`, `swapguard-test.1`, ...).
pub fn man(dir: Option<&Path>, out: &mut dyn Write) -> Result<exit::Code> {
    let cmd = cli::command();
    match dir {
        None => {
            let text = main_page(cmd)?;
            out.write_all(&text)
                .and_then(|()| out.flush())
                .context("cannot write the man page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            clap_mangen::generate_to(cmd.clone(), dir)
                .with_context(|| format!("cannot write man pages to `{}`", dir.display()))?;
            let main = dir.join("swapguard.1");
            std::fs::write(&main, main_page(cmd)?)
                .with_context(|| format!("cannot write `{}`", main.display()))?;
            let mut pages: Vec<String> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot list `{}`", dir.display()))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("swapguard") && n.ends_with(".1"))
                .collect();
            pages.sort();
            for p in pages {
                writeln!(out, "{}", dir.join(p).display())?;
            }
        }
    }
    Ok(exit::Code::Success)
}

/// The main page: clap's sections, then EXIT STATUS, ENVIRONMENT, FILES
/// and SEE ALSO written here (clap would put the exit codes under EXTRA, as
/// justified text that mangles the table).
fn main_page(cmd: clap::Command) -> Result<Vec<u8>> {
    let man = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    man.render_synopsis_section(&mut out)?;
    man.render_description_section(&mut out)?;
    man.render_options_section(&mut out)?;
    man.render_subcommands_section(&mut out)?;
    out.extend_from_slice(extra_sections().as_bytes());
    man.render_version_section(&mut out)?;
    Ok(out)
}

/// Exit codes, as `exit.rs` defines them.
const EXIT_STATUS: [(exit::Code, &str); 10] = [
    (
        exit::Code::Success,
        "Success; also when standard output is closed early (swapguard status --json | head -1): output ends quietly, and a run goes on and journals as usual.",
    ),
    (
        exit::Code::Failure,
        "Error: I/O, a tool could not start, the journal is not writable.",
    ),
    (
        exit::Code::Usage,
        "Usage error, or a runbook, scenario or answers file with errors.",
    ),
    (
        exit::Code::Halted,
        "Halted by the guard: a survivor degraded, the wrong drive moved, health could not be read.",
    ),
    (
        exit::Code::Refused,
        "Refused by preflight; nothing was touched.",
    ),
    (
        exit::Code::Aborted,
        "Aborted by the operator: answered no, typed a wrong confirmation.",
    ),
    (exit::Code::Locked, "Another run holds the array's lock."),
    (
        exit::Code::ExpectationFailed,
        "dry-run or test: an outcome differed from the scenario's [expect]; test --mutate: a bad-hardware variant was not halted in time.",
    ),
    (
        exit::Code::TimedOut,
        "Timed out: a physical step's change was not seen within its timeout and no one at a terminal chose to keep waiting; swapguard resume continues the run.",
    ),
    (
        exit::Code::Interrupted,
        "Interrupted (Ctrl-C, SIGTERM, SIGHUP); swapguard resume continues the run.",
    ),
];

const ENVIRONMENT: [(&str, &str); 7] = [
    (
        "NO_COLOR",
        "When set (to anything), no colour at the terminal (under --color auto, the default; --color always colours anyway).",
    ),
    (
        "CLICOLOR",
        "0: no colour at the terminal, as NO_COLOR (under --color auto).",
    ),
    (
        "TERM",
        "dumb, empty or unset: plain output: no colour, no cursor movement (a line per 10% of progress instead of a bar), ASCII only.",
    ),
    (
        "LANG, LC_ALL, LC_CTYPE",
        "The first one set decides: a locale that is not UTF-8 (C, POSIX) gets ASCII instead of Unicode symbols.",
    ),
    (
        "USER, LOGNAME",
        "Who runs swapguard, recorded in the journal.",
    ),
    (
        "SUDO_USER, SUDO_UID",
        "Who ran sudo: recorded in the journal; as root, a runbook owned by that user is accepted.",
    ),
    (
        "SWAPGUARD_COMMIT",
        "At build time only: the commit --version shows, for builds without git.",
    ),
];

const FILES: [(&str, &str); 4] = [
    (
        "/var/lib/swapguard/",
        "The state directory (--state-dir DIR to change it).",
    ),
    (
        "/var/lib/swapguard/sessions/*.jsonl",
        "One journal per run: every step, answer, command output, snapshot and verdict, each line carrying the hash of the line before it (swapguard journal verify).",
    ),
    (
        "/var/lib/swapguard/locks/*.lock",
        "One lock per array: one run per array at a time.",
    ),
    (
        "/var/lib/swapguard/quarantine.json",
        "The quarantine registry: drives nothing may write to (swapguard quarantine).",
    ),
];

const SEE_ALSO: &str = "mdadm(8), smartctl(8), ledctl(8), md(4)";

/// Text for roff: backslashes and hyphens escaped, and a line starting with
/// a dot or quote kept from being read as a request.
fn roff(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with('.') || text.starts_with('\'') {
        format!("\\&{text}")
    } else {
        text
    }
}

fn extra_sections() -> String {
    // Left-aligned, no hyphenation: tables of codes and paths read badly
    // justified.
    let mut out = String::from(".ad l\n.nh\n");
    let tagged =
        |out: &mut String, title: &str, items: &mut dyn Iterator<Item = (String, &str)>| {
            out.push_str(&format!(".SH \"{title}\"\n"));
            for (tag, text) in items {
                out.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(&tag), roff(text)));
            }
        };
    tagged(
        &mut out,
        "EXIT STATUS",
        &mut EXIT_STATUS
            .iter()
            .map(|(c, t)| (c.number().to_string(), *t)),
    );
    tagged(
        &mut out,
        "ENVIRONMENT",
        &mut ENVIRONMENT.iter().map(|(k, t)| (k.to_string(), *t)),
    );
    tagged(
        &mut out,
        "FILES",
        &mut FILES.iter().map(|(k, t)| (k.to_string(), *t)),
    );
    out.push_str(".SH \"SEE ALSO\"\n");
    out.push_str(&roff(SEE_ALSO));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_examples_and_every_argument_a_description() {
        fn walk(cmd: &mut clap::Command, path: &str, missing: &mut Vec<String>) {
            let name = format!("{path} {}", cmd.get_name()).trim().to_string();
            let help = cmd.render_long_help().to_string();
            if !help.contains("Examples:") {
                missing.push(format!("{name}: no examples"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{name}: `{id}` has no description"));
                }
            }
            let mut subs: Vec<clap::Command> = cmd.get_subcommands().cloned().collect();
            for sub in &mut subs {
                if sub.get_name() != "help" {
                    walk(sub, &name, missing);
                }
            }
        }
        let mut cmd = cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&mut cmd, "", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }

    #[test]
    fn exit_status_lists_every_code_of_the_help_table() {
        for line in exit::TABLE.lines().skip(1) {
            let Some(code) = line.split_whitespace().next() else {
                continue;
            };
            if code.parse::<i32>().is_ok() {
                assert!(
                    EXIT_STATUS
                        .iter()
                        .any(|(c, _)| c.number().to_string() == code),
                    "{code}"
                );
            }
        }
    }
}
