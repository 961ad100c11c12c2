//! Pure rendering shared by the terminal and scripted operators: word
//! wrapping, command lines, the health panel, progress lines, notes and the
//! halt block.
//!
//! Everything here is a function of its inputs (no terminal queries, no
//! environment reads), so it is tested without a TTY. Every string that may
//! come from hardware or external tools passes through
//! [`sanitize`](crate::sanitize::sanitize) here, so neither operator can
//! forget it.

use std::time::Duration;

use console::{Style, measure_text_width};

use crate::operator::{HaltReport, NoteLevel, PanelLine, Progress, StepView};
use crate::sanitize::sanitize;

/// The narrowest width wrapping will use, however small the terminal claims
/// to be.
const MIN_WIDTH: usize = 20;

/// How the terminal operator draws: width in columns, colour on or off, and
/// whether non-ASCII glyphs (rules, dashes) are safe to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Look {
    pub width: usize,
    pub colors: bool,
    pub unicode: bool,
}

impl Look {
    /// No colour, ASCII only: what a plain serial console gets.
    pub fn plain(width: usize) -> Self {
        Look {
            width,
            colors: false,
            unicode: false,
        }
    }

    fn width(&self) -> usize {
        self.width.max(MIN_WIDTH)
    }

    fn style(&self, style: Style) -> Style {
        style.force_styling(self.colors)
    }

    fn rule(&self, ch_unicode: char, ch_ascii: char) -> String {
        let ch = if self.unicode { ch_unicode } else { ch_ascii };
        std::iter::repeat_n(ch, self.width()).collect()
    }

    fn dash(&self) -> &'static str {
        if self.unicode { "\u{2014}" } else { "-" }
    }
}

pub use crate::output::{colors_wanted, is_plain_term};

/// Whether the locale promises UTF-8 (the first of `LC_ALL`, `LC_CTYPE`,
/// `LANG` that is set and not empty decides) and the terminal is not dumb.
/// Serial consoles often run with `LANG=C`; they get ASCII rules and dashes.
pub fn unicode_wanted(
    lc_all: Option<&str>,
    lc_ctype: Option<&str>,
    lang: Option<&str>,
    term: Option<&str>,
) -> bool {
    if is_plain_term(term) {
        return false;
    }
    let locale = [lc_all, lc_ctype, lang]
        .into_iter()
        .flatten()
        .find(|v| !v.is_empty())
        .unwrap_or("");
    let locale = locale.to_ascii_lowercase();
    locale.contains("utf-8") || locale.contains("utf8")
}

/// Sanitise `text` and fold it onto one line: lines are trimmed and joined
/// with a space, so a multi-line prompt or detail stays one transcript line.
pub fn one_line(text: &str) -> String {
    sanitize(text, true)
        .lines()
        .map(|l| l.trim().replace('\t', " "))
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Word-wrap `text` to `width` columns. Source line breaks are kept (blank
/// lines too); a line's leading spaces are kept as the indent of its
/// continuation lines; a word longer than the width is left whole on its own
/// line rather than cut (a cut device path reads as two wrong ones). The text
/// is sanitised first.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(MIN_WIDTH);
    let clean = sanitize(text, true).replace('\t', "    ");
    let mut out = Vec::new();
    for line in clean.trim_end().lines() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let indent_width = measure_text_width(indent);
        let mut current = String::new();
        let mut current_width = 0;
        for word in glued_words(body) {
            let word = word.as_str();
            let w = measure_text_width(word);
            if current.is_empty() {
                current.push_str(indent);
                current.push_str(word);
                current_width = indent_width + w;
            } else if current_width + 1 + w <= width {
                current.push(' ');
                current.push_str(word);
                current_width += 1 + w;
            } else {
                out.push(std::mem::take(&mut current));
                current.push_str(indent);
                current.push_str(word);
                current_width = indent_width + w;
            }
        }
        out.push(current);
    }
    out
}

/// Render an argv as one shell-like line, quoting words that would not
/// survive a copy and paste into a shell. Each word is sanitised.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter()
        .map(|arg| {
            let arg = sanitize(arg, false);
            let safe = !arg.is_empty()
                && arg.chars().all(|c| {
                    c.is_ascii_alphanumeric() || "-_./:=@%+,{}".contains(c) || !c.is_ascii()
                });
            if safe {
                arg
            } else {
                format!("'{}'", arg.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A duration as the technician reads it: whole seconds, `2h 5m 3s`.
pub fn format_eta(eta: Duration) -> String {
    humantime::format_duration(Duration::from_secs(eta.as_secs())).to_string()
}

/// The whole percentage of a progress fraction, or `None` when the fraction
/// is unknown or not a number.
pub fn percent(fraction: Option<f64>) -> Option<u8> {
    let f = fraction.filter(|f| f.is_finite())?;
    // Floor, so 99.9% never shows as done.
    Some((f.clamp(0.0, 1.0) * 100.0).floor() as u8)
}

/// One progress line without any cursor movement:
/// `recover of md0: 40% (120 MB/s, about 2m 30s left)` or just the label
/// when nothing is known.
pub fn progress_line(progress: &Progress) -> String {
    let label = one_line(&progress.label);
    let mut line = match percent(progress.fraction) {
        Some(p) => format!("{label}: {p}%"),
        None => label,
    };
    let detail = progress_detail(progress);
    if !detail.is_empty() {
        line.push_str(&format!(" ({detail})"));
    }
    line
}

/// What is known about the pace of a wait, all of it from the backend (md's
/// `sync_speed` and `sync_completed`): `120 MB/s, about 2m 30s left`, or
/// `stalled: no progress for 45s`. Empty when the backend says nothing. The
/// estimate is never the progress bar's own guess: a bar that extrapolates
/// from its own updates jumps from seconds to minutes on a stalled rebuild.
pub fn progress_detail(progress: &Progress) -> String {
    if let Some(stalled) = progress.stalled_for {
        return format!("stalled: no progress for {}", format_eta(stalled));
    }
    let mut parts = Vec::new();
    if let Some(speed) = progress.speed {
        parts.push(format_speed(speed));
    }
    if let Some(eta) = progress.eta {
        parts.push(format!("about {} left", format_eta(eta)));
    }
    parts.join(", ")
}

/// Bytes per second in decimal units, as drive vendors and `iostat -h`
/// print them: `950 kB/s`, `120 MB/s`, `1.2 GB/s`.
pub fn format_speed(bytes_per_s: u64) -> String {
    let b = bytes_per_s as f64;
    if b >= 1e9 {
        format!("{:.1} GB/s", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB/s", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB/s", b / 1e3)
    } else {
        format!("{bytes_per_s} B/s")
    }
}

/// Decides when a progress report is worth a line of its own: when the step
/// or label changes, or the whole percentage crosses a 10% boundary. A day of
/// simulated rebuild then prints eleven lines, not thousands.
#[derive(Debug, Default)]
pub struct ProgressThrottle {
    last: Option<(String, String, Option<u8>)>,
}

impl ProgressThrottle {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when `progress` should be printed; remembers it.
    pub fn should_print(&mut self, progress: &Progress) -> bool {
        let decile = percent(progress.fraction).map(|p| p / 10);
        let key = (progress.step_id.clone(), progress.label.clone(), decile);
        if self.last.as_ref() == Some(&key) {
            return false;
        }
        self.last = Some(key);
        true
    }

    /// Forget the last report, so the next one prints (a new step started).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// The health panel as aligned rows: `OK  survivor  sda (...)  in-sync`.
/// The marker is `OK` or `!!`, readable without colour. Rows carry no
/// trailing spaces.
pub fn panel_rows(panel: &[PanelLine]) -> Vec<(bool, String)> {
    panel_cells(panel)
        .into_iter()
        .map(|(ok, head, state)| (ok, format!("{head}  {state}").trim_end().to_string()))
        .collect()
}

/// Each row as its marker, the aligned `role  drive` part and the state.
fn panel_cells(panel: &[PanelLine]) -> Vec<(bool, String, String)> {
    let cells: Vec<(bool, String, String, String)> = panel
        .iter()
        .map(|l| {
            (
                l.ok,
                sanitize(&l.role, false),
                sanitize(&l.drive, false),
                sanitize(&l.state, false),
            )
        })
        .collect();
    let role_w = cells
        .iter()
        .map(|c| measure_text_width(&c.1))
        .max()
        .unwrap_or(0);
    let drive_w = cells
        .iter()
        .map(|c| measure_text_width(&c.2))
        .max()
        .unwrap_or(0);
    cells
        .into_iter()
        .map(|(ok, role, drive, state)| {
            let role_pad = " ".repeat(role_w - measure_text_width(&role));
            let drive_pad = " ".repeat(drive_w - measure_text_width(&drive));
            (ok, format!("{role}{role_pad}  {drive}{drive_pad}"), state)
        })
        .collect()
}

/// The marker for a panel row or note, coloured when the look allows.
fn marker(ok: bool, look: &Look) -> String {
    if ok {
        look.style(Style::new().green().bold())
            .apply_to("OK")
            .to_string()
    } else {
        look.style(Style::new().red().bold())
            .apply_to("!!")
            .to_string()
    }
}

/// The terminal's health panel: a heading and one marked row per drive.
pub fn panel_block(panel: &[PanelLine], look: &Look) -> Vec<String> {
    let mut out = vec![
        look.style(Style::new().bold())
            .apply_to("HEALTH")
            .to_string(),
    ];
    if panel.is_empty() {
        out.push("  (no drives to show)".to_string());
    }
    // A row too long for the terminal keeps its drive on the first line
    // and puts the state under it, indented past the marker, rather than
    // off the edge.
    let width = look.width();
    for ((ok, row), (_, head, state)) in panel_rows(panel).into_iter().zip(panel_cells(panel)) {
        if measure_text_width(&row) + 6 <= width {
            out.push(format!("  {}  {row}", marker(ok, look)));
            continue;
        }
        for (i, line) in wrap(head.trim_end(), width.saturating_sub(6))
            .into_iter()
            .enumerate()
        {
            if i == 0 {
                out.push(format!("  {}  {line}", marker(ok, look)));
            } else {
                out.push(format!("        {line}"));
            }
        }
        for line in wrap(&state, width.saturating_sub(8)) {
            out.push(format!("        {line}"));
        }
    }
    out
}

/// The terminal's step block: a rule, `STEP 3 OF 8 — PULL (physical)`, a
/// rule, the instruction wrapped (bold when colours are on) and the command
/// that will run.
pub fn step_block(step: &StepView, look: &Look) -> Vec<String> {
    let bold = look.style(Style::new().bold());
    let rule = look.rule('\u{2500}', '-');
    let title = format!(
        "STEP {} OF {} {} {} ({})",
        step.number,
        step.total,
        look.dash(),
        sanitize(&step.id, false).to_uppercase(),
        sanitize(&step.kind, false),
    );
    let mut out = vec![String::new(), rule.clone()];
    for line in wrap(&title, look.width()) {
        out.push(bold.apply_to(line).to_string());
    }
    out.push(rule);
    out.push(String::new());
    for line in wrap(&step.text, look.width().saturating_sub(2)) {
        if line.is_empty() {
            out.push(String::new());
        } else {
            out.push(format!("  {}", bold.apply_to(line)));
        }
    }
    if let Some(argv) = &step.argv {
        out.push(String::new());
        out.push("  will run:".to_string());
        out.extend(command_lines(argv, look.width()));
    }
    out.push(String::new());
    out
}

/// A command as `    $ mdadm /dev/md0 --fail /dev/sdb`, broken between
/// words with ` \` when it is too long for `width`, so it stays whole on
/// screen and still pastes into a shell as one command.
pub fn command_lines(argv: &[String], width: usize) -> Vec<String> {
    let words: Vec<String> = argv
        .iter()
        .map(|a| shell_line(std::slice::from_ref(a)))
        .collect();
    let width = width.max(MIN_WIDTH);
    let mut out = Vec::new();
    let mut line = "    $".to_string();
    for word in words {
        let lead = if out.is_empty() { 6 } else { 8 };
        let line_w = measure_text_width(&line);
        if line_w > lead && line_w + 1 + measure_text_width(&word) + 2 > width {
            line.push_str(" \\");
            out.push(std::mem::replace(&mut line, "       ".to_string()));
        }
        line.push(' ');
        line.push_str(&word);
    }
    out.push(line);
    out
}

/// A message on the terminal, wrapped to the width: `OK`, `!!` or plain
/// indent on the first line, continuation lines indented under the text.
pub fn note_lines(level: NoteLevel, text: &str, look: &Look) -> Vec<String> {
    // Every marker (`OK  `, `!!  `, or the plain indent) is four columns.
    let first = note_line(level, text, look);
    let lead = 4;
    let body = one_line(text);
    let wrapped = wrap(&body, look.width().saturating_sub(lead));
    if wrapped.len() <= 1 {
        return vec![first];
    }
    let mut out = Vec::new();
    for (i, line) in wrapped.into_iter().enumerate() {
        if i == 0 {
            out.push(note_line(level, &line, look));
        } else {
            out.push(format!("{}{line}", " ".repeat(lead)));
        }
    }
    out
}

/// A one-line message on the terminal: `OK`, `!!` or plain indent.
pub fn note_line(level: NoteLevel, text: &str, look: &Look) -> String {
    let text = one_line(text);
    match level {
        NoteLevel::Good => format!("{}  {text}", marker(true, look)),
        NoteLevel::Warn => {
            let warn = look.style(Style::new().yellow().bold()).apply_to("!!");
            format!("{warn}  {text}")
        }
        NoteLevel::Info => format!("    {text}"),
    }
}

/// The terminal's halt block: impossible to miss, readable without colour.
pub fn halt_block(report: &HaltReport, look: &Look) -> Vec<String> {
    let alarm = look.style(Style::new().red().bold());
    let rule = alarm.apply_to(look.rule('!', '!')).to_string();
    let width = look.width();
    let mut out = vec![String::new(), rule.clone()];
    let headline = format!("STOP {} {}", look.dash(), one_line(&report.headline));
    for line in wrap(&headline, width) {
        out.push(alarm.apply_to(line).to_string());
    }
    out.push(format!(
        "the run halted at step `{}`",
        sanitize(&report.step_id, false)
    ));
    if !report.details.is_empty() {
        out.push(String::new());
        out.push("what changed:".to_string());
        for detail in &report.details {
            for (i, line) in wrap(&one_line(detail), width.saturating_sub(4))
                .into_iter()
                .enumerate()
            {
                let lead = if i == 0 { "  - " } else { "    " };
                out.push(format!("{lead}{line}"));
            }
        }
    }
    if !report.guidance.trim().is_empty() {
        out.push(String::new());
        out.push(
            look.style(Style::new().bold())
                .apply_to("what to do:")
                .to_string(),
        );
        for line in wrap(&report.guidance, width.saturating_sub(2)) {
            if line.is_empty() {
                out.push(String::new());
            } else {
                out.push(format!("  {}", alarm.apply_to(line)));
            }
        }
    }
    out.push(rule);
    out
}

/// The terminal's refusal block: the run did not start and nothing was
/// touched, so there is no alarm and no "hands out of the chassis" (that is
/// for a survivor degrading during physical work). It says what was checked,
/// what failed, and what to do, which ends with the command to run again.
pub fn refusal_block(report: &HaltReport, look: &Look) -> Vec<String> {
    let bold = look.style(Style::new().bold());
    let rule = look.rule('\u{2500}', '-');
    let width = look.width();
    let mut out = vec![String::new(), rule.clone()];
    let headline = format!("NOT STARTED {} {}", look.dash(), one_line(&report.headline));
    for line in wrap(&headline, width) {
        out.push(bold.apply_to(line).to_string());
    }
    out.push(rule.clone());
    if !report.details.is_empty() {
        out.push(String::new());
        out.push("what failed:".to_string());
        for detail in &report.details {
            for (i, line) in wrap(&one_line(detail), width.saturating_sub(4))
                .into_iter()
                .enumerate()
            {
                let lead = if i == 0 { "  - " } else { "    " };
                out.push(format!("{lead}{line}"));
            }
        }
    }
    if !report.guidance.trim().is_empty() {
        out.push(String::new());
        for line in sanitize(&report.guidance, true).trim_end().lines() {
            // The command to run again stays one pasteable command.
            if line.trim().is_empty() {
                out.push(String::new());
            } else if let Some(command) = line.strip_prefix("    swapguard ") {
                out.extend(continued(&format!("swapguard {command}"), width));
            } else {
                out.extend(wrap(line, width));
            }
        }
    }
    out.push(rule);
    out
}

/// A shell command line (words quoted as [`shell_line`] quotes them) as
/// `    $`-less indented lines of at most `width` columns, broken between
/// words with ` \`, never inside a quoted word.
fn continued(line: &str, width: usize) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                current.push(c);
            }
            ' ' if !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    let mut out = Vec::new();
    let mut line = "   ".to_string();
    for word in words {
        let line_w = measure_text_width(&line);
        if line_w > 8 && line_w + 1 + measure_text_width(&word) + 2 > width.max(MIN_WIDTH) {
            line.push_str(" \\");
            out.push(std::mem::replace(&mut line, "       ".to_string()));
        }
        line.push(' ');
        line.push_str(&word);
    }
    out.push(line);
    out
}

/// `line` with nothing but ASCII, for a terminal whose locale is not UTF-8
/// (`LANG=C`, a serial console): the arrow of `before → after` becomes
/// `->`, dashes `-`, an ellipsis `...`, box and block glyphs `-`, `=` or
/// `#`, and anything else `?`. Escape sequences (colour) are ASCII and pass.
pub fn to_ascii(line: &str) -> String {
    if line.is_ascii() {
        return line.to_string();
    }
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            c if c.is_ascii() => out.push(c),
            '\u{2192}' | '\u{27f6}' => out.push_str("->"),
            '\u{2190}' => out.push_str("<-"),
            '\u{2013}' | '\u{2014}' | '\u{2212}' | '\u{2500}' | '\u{2501}' => out.push('-'),
            '\u{2026}' => out.push_str("..."),
            '\u{2018}' | '\u{2019}' => out.push('\''),
            '\u{201c}' | '\u{201d}' => out.push('"'),
            '\u{2022}' | '\u{00b7}' => out.push('*'),
            '\u{00a0}' => out.push(' '),
            '\u{2713}' | '\u{2714}' => out.push_str("ok"),
            '\u{2717}' | '\u{2718}' => out.push('x'),
            '\u{2588}' | '\u{258c}' => out.push('#'),
            _ => out.push('?'),
        }
    }
    out
}

/// The words of `body` for wrapping, with `serial` (or `(serial`) glued to
/// the serial after it, so a wrapped line never shows "serial" at its end
/// and the serial alone at the start of the next.
fn glued_words(body: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    let mut glue = false;
    for word in body.split_whitespace() {
        match words.last_mut() {
            Some(last) if glue => {
                last.push(' ');
                last.push_str(word);
                glue = false;
            }
            _ => {
                glue = matches!(word, "serial" | "(serial" | "Serial" | "(Serial");
                words.push(word.to_string());
            }
        }
    }
    words
}

/// `text` with every whole occurrence of `serial` masked except its first
/// characters: the last four, which the technician must read off the
/// drive's label and type, are shown as `****`, so they cannot be copied
/// from the screen. Serials of four characters or fewer are masked whole.
pub fn mask_serial(text: &str, serial: &str) -> String {
    if serial.is_empty() {
        return text.to_string();
    }
    let chars: Vec<char> = serial.chars().collect();
    let keep = chars.len().saturating_sub(4);
    let masked: String = chars[..keep]
        .iter()
        .copied()
        .chain(std::iter::repeat_n('*', chars.len() - keep))
        .collect();
    text.replace(serial, &masked)
}

/// What the terminal says when a typed confirmation does not match. The
/// typed text is echoed back sanitised; the expected text is not repeated
/// (the technician should read it off the drive, not off the screen).
pub fn mismatch_message(typed: &str, tries_left: usize) -> String {
    let typed = sanitize(typed, false);
    match tries_left {
        0 => format!("`{typed}` does not match; giving up after 3 tries"),
        1 => format!("`{typed}` does not match; look again and type it exactly (1 try left)"),
        n => format!("`{typed}` does not match; look again and type it exactly ({n} tries left)"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use console::measure_text_width;

    use super::{
        Look, ProgressThrottle, colors_wanted, command_lines, format_eta, format_speed, halt_block,
        mask_serial, mismatch_message, note_line, note_lines, one_line, panel_block, panel_rows,
        percent, progress_detail, progress_line, refusal_block, shell_line, step_block, to_ascii,
        unicode_wanted, wrap,
    };
    use crate::operator::{HaltReport, NoteLevel, PanelLine, Progress, StepView};

    fn colored(width: usize) -> Look {
        Look {
            width,
            colors: true,
            unicode: true,
        }
    }

    fn drive(role: &str, drive: &str, state: &str, ok: bool) -> PanelLine {
        PanelLine {
            role: role.into(),
            drive: drive.into(),
            state: state.into(),
            ok,
        }
    }

    fn progress(label: &str, fraction: Option<f64>) -> Progress {
        Progress {
            step_id: "rebuild".into(),
            label: label.into(),
            fraction,
            ..Progress::default()
        }
    }

    #[test]
    fn wraps_words_lines_and_indents() {
        for (text, width, want) in [
            ("short", 40, vec!["short"]),
            (
                "Pull the drive in bay 1 and touch no other drive at all please",
                24,
                vec![
                    "Pull the drive in bay 1",
                    "and touch no other drive",
                    "at all please",
                ],
            ),
            ("one\n\ntwo", 40, vec!["one", "", "two"]),
            (
                "  - indented item that wraps onto more lines",
                24,
                vec!["  - indented item that", "  wraps onto more lines"],
            ),
            (
                "see /dev/disk/by-id/ata-Samsung_SSD_860_EVO_1TB_S3Z1NB0K100002 now",
                24,
                vec![
                    "see",
                    "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_1TB_S3Z1NB0K100002",
                    "now",
                ],
            ),
            ("bell\x07 and \x1b[2J", 40, vec!["bell? and ?[2J"]),
            ("trailing\n\n", 40, vec!["trailing"]),
            // A silly width still wraps at a readable minimum.
            (
                "aaaa bbbb cccc dddd eeee ffff",
                3,
                vec!["aaaa bbbb cccc dddd", "eeee ffff"],
            ),
        ] {
            assert_eq!(wrap(text, width), want, "{text:?} at {width}");
        }
    }

    #[test]
    fn one_line_folds_and_sanitises() {
        for (text, want) in [
            ("a\n  b\n", "a b"),
            ("x\x1b[31my", "x?[31my"),
            ("tab\there", "tab here"),
            ("", ""),
        ] {
            assert_eq!(one_line(text), want, "{text:?}");
        }
    }

    #[test]
    fn shell_line_quotes_what_a_shell_would_split() {
        for (argv, want) in [
            (
                vec!["mdadm", "/dev/md0", "--fail", "/dev/sdb"],
                "mdadm /dev/md0 --fail /dev/sdb",
            ),
            (vec!["echo", "two words"], "echo 'two words'"),
            (vec!["echo", "it's"], r"echo 'it'\''s'"),
            (vec!["echo", ""], "echo ''"),
            (vec!["echo", "a\x1bb"], "echo 'a?b'"),
        ] {
            let argv: Vec<String> = argv.into_iter().map(String::from).collect();
            assert_eq!(shell_line(&argv), want);
        }
    }

    #[test]
    fn colour_and_unicode_choices() {
        for (no_color, term, clicolor, supported, want) in [
            (false, Some("xterm-256color"), None, true, true),
            (true, Some("xterm-256color"), None, true, false),
            (false, Some("dumb"), None, true, false),
            (false, None, None, true, false),
            (false, Some("vt220"), Some("0"), true, false),
            (false, Some("vt220"), None, false, false),
        ] {
            assert_eq!(
                colors_wanted(no_color, term, clicolor, supported),
                want,
                "{no_color} {term:?} {clicolor:?} {supported}"
            );
        }
        for (lc_all, lc_ctype, lang, term, want) in [
            (None, None, Some("en_US.UTF-8"), Some("xterm"), true),
            (None, None, Some("C"), Some("xterm"), false),
            (Some(""), None, Some("de_DE.utf8"), Some("vt220"), true),
            (Some("C"), None, Some("en_US.UTF-8"), Some("xterm"), false),
            (None, None, Some("en_US.UTF-8"), Some("dumb"), false),
            (None, None, None, Some("xterm"), false),
        ] {
            assert_eq!(
                unicode_wanted(lc_all, lc_ctype, lang, term),
                want,
                "{lc_all:?} {lc_ctype:?} {lang:?} {term:?}"
            );
        }
    }

    #[test]
    fn panel_rows_align_and_sanitise() {
        let rows = panel_rows(&[
            drive(
                "survivor",
                "sda (serial S3Z1NB0K100001, bay 0)",
                "in-sync",
                true,
            ),
            drive("target", "sdb (serial EVIL\x1b[2J, bay 1)", "faulty", false),
            drive("new", "sdc", "", true),
        ]);
        assert_eq!(
            rows,
            vec![
                (
                    true,
                    "survivor  sda (serial S3Z1NB0K100001, bay 0)  in-sync".to_string()
                ),
                (
                    false,
                    "target    sdb (serial EVIL?[2J, bay 1)        faulty".to_string()
                ),
                (true, "new       sdc".to_string()),
            ]
        );
    }

    #[test]
    fn panel_block_with_and_without_colour() {
        let panel = [
            drive("survivor", "sda", "in-sync", true),
            drive("target", "sdb", "faulty", false),
        ];
        assert_eq!(
            panel_block(&panel, &Look::plain(80)),
            vec![
                "HEALTH",
                "  OK  survivor  sda  in-sync",
                "  !!  target    sdb  faulty",
            ]
        );
        let coloured = panel_block(&panel, &colored(80));
        assert_eq!(
            coloured[1],
            "  \x1b[32m\x1b[1mOK\x1b[0m  survivor  sda  in-sync"
        );
        assert_eq!(
            coloured[2],
            "  \x1b[31m\x1b[1m!!\x1b[0m  target    sdb  faulty"
        );
        assert_eq!(
            panel_block(&[], &Look::plain(80)),
            vec!["HEALTH", "  (no drives to show)"]
        );
    }

    fn pull_step() -> StepView {
        StepView {
            id: "pull".into(),
            kind: "physical".into(),
            number: 3,
            total: 8,
            text: "Pull the drive in bay 1 (serial S3Z1NB0K100002). Touch no other drive.".into(),
            argv: None,
        }
    }

    #[test]
    fn step_block_plain_is_ascii_and_wrapped() {
        let lines = step_block(&pull_step(), &Look::plain(40));
        let want = vec![
            "",
            "----------------------------------------",
            "STEP 3 OF 8 - PULL (physical)",
            "----------------------------------------",
            "",
            "  Pull the drive in bay 1",
            "  (serial S3Z1NB0K100002). Touch no",
            "  other drive.",
            "",
        ];
        assert_eq!(lines, want);
        assert!(lines.iter().all(|l| l.is_ascii()));
    }

    #[test]
    fn step_block_coloured_is_bold_with_unicode_rule() {
        let mut step = pull_step();
        step.id = "fail".into();
        step.kind = "command".into();
        step.text = "Mark sdb failed.".into();
        step.argv = Some(vec![
            "mdadm".into(),
            "/dev/md0".into(),
            "--fail".into(),
            "/dev/sdb".into(),
        ]);
        let lines = step_block(&step, &colored(40));
        assert_eq!(lines[1], "\u{2500}".repeat(40));
        assert_eq!(
            lines[2],
            "\x1b[1mSTEP 3 OF 8 \u{2014} FAIL (command)\x1b[0m"
        );
        assert_eq!(lines[5], "  \x1b[1mMark sdb failed.\x1b[0m");
        assert_eq!(
            &lines[6..],
            [
                "",
                "  will run:",
                "    $ mdadm /dev/md0 --fail /dev/sdb",
                ""
            ]
        );
    }

    #[test]
    fn halt_block_plain() {
        let report = HaltReport {
            step_id: "pull".into(),
            headline: "survivor sda degraded while the target was pulled".into(),
            details: vec!["sda (bay 0): smart current_pending_sector 0 -> 8".into()],
            guidance: "STOP. Take your hands out of the chassis.\nCall the on-call storage lead.\n"
                .into(),
        };
        assert_eq!(
            halt_block(&report, &Look::plain(60)),
            vec![
                "",
                "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
                "STOP - survivor sda degraded while the target was pulled",
                "the run halted at step `pull`",
                "",
                "what changed:",
                "  - sda (bay 0): smart current_pending_sector 0 -> 8",
                "",
                "what to do:",
                "  STOP. Take your hands out of the chassis.",
                "  Call the on-call storage lead.",
                "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
            ]
        );
    }

    #[test]
    fn halt_block_coloured_marks_headline_and_sanitises_details() {
        let report = HaltReport {
            step_id: "preflight".into(),
            headline: "survivor missing".into(),
            details: vec!["model EVIL\x1b[2J".into()],
            guidance: String::new(),
        };
        let lines = halt_block(&report, &colored(40));
        assert_eq!(
            lines[2],
            "\x1b[31m\x1b[1mSTOP \u{2014} survivor missing\x1b[0m"
        );
        assert_eq!(lines[6], "  - model EVIL?[2J");
        assert_eq!(
            lines.len(),
            8,
            "no guidance section when there is none: {lines:?}"
        );
    }

    #[test]
    fn notes_are_marked_without_colour() {
        let plain = Look::plain(80);
        for (level, want) in [
            (NoteLevel::Good, "OK  array is redundant again"),
            (NoteLevel::Warn, "!!  array is redundant again"),
            (NoteLevel::Info, "    array is redundant again"),
        ] {
            assert_eq!(note_line(level, "array is redundant again", &plain), want);
        }
        assert_eq!(
            note_line(NoteLevel::Warn, "slow", &colored(80)),
            "\x1b[33m\x1b[1m!!\x1b[0m  slow"
        );
    }

    #[test]
    fn progress_lines_and_percentages() {
        for (fraction, eta, want) in [
            (
                Some(0.4),
                Some(Duration::from_secs(150)),
                "rebuild: 40% (about 2m 30s left)",
            ),
            (Some(0.999), None, "rebuild: 99%"),
            (Some(1.5), None, "rebuild: 100%"),
            (Some(f64::NAN), None, "rebuild"),
            (None, None, "rebuild"),
            (
                None,
                Some(Duration::from_millis(3_600_900)),
                "rebuild (about 1h left)",
            ),
        ] {
            let mut p = progress("rebuild", fraction);
            p.eta = eta;
            assert_eq!(progress_line(&p), want, "{fraction:?}");
        }
        assert_eq!(percent(Some(-0.2)), Some(0));
        assert_eq!(format_eta(Duration::from_secs(7503)), "2h 5m 3s");
    }

    #[test]
    fn throttle_prints_on_each_tenth_and_label_change() {
        let mut throttle = ProgressThrottle::new();
        let mut printed = Vec::new();
        for i in 0..=1000 {
            let p = progress("rebuild", Some(f64::from(i) / 1000.0));
            if throttle.should_print(&p) {
                printed.push(progress_line(&p));
            }
        }
        assert_eq!(printed.len(), 11, "{printed:?}");
        assert_eq!(printed[0], "rebuild: 0%");
        assert_eq!(printed[10], "rebuild: 100%");
        assert!(throttle.should_print(&progress("verify", Some(1.0))));
        assert!(throttle.should_print(&progress("watch", None)));
        assert!(!throttle.should_print(&progress("watch", None)));
        throttle.reset();
        assert!(throttle.should_print(&progress("watch", None)));
    }

    #[test]
    fn progress_says_md_speed_and_estimate_or_stalled() {
        let mut p = progress("recover of md0", Some(0.4));
        p.speed = Some(120_000_000);
        p.eta = Some(Duration::from_secs(150));
        assert_eq!(
            progress_line(&p),
            "recover of md0: 40% (120 MB/s, about 2m 30s left)"
        );
        p.stalled_for = Some(Duration::from_secs(45));
        assert_eq!(
            progress_line(&p),
            "recover of md0: 40% (stalled: no progress for 45s)"
        );
        p.stalled_for = None;
        p.eta = None;
        assert_eq!(progress_detail(&p), "120 MB/s");
        for (speed, want) in [
            (999, "999 B/s"),
            (950_000, "950 kB/s"),
            (1_200_000_000, "1.2 GB/s"),
        ] {
            assert_eq!(format_speed(speed), want);
        }
    }

    #[test]
    fn ascii_only_outside_a_utf8_locale() {
        for (text, want) in [
            ("plain", "plain"),
            ("md.errors 0 \u{2192} 4", "md.errors 0 -> 4"),
            ("STEP 1 OF 2 \u{2014} PULL", "STEP 1 OF 2 - PULL"),
            ("\u{2500}\u{2500}", "--"),
            ("wait\u{2026}", "wait..."),
            ("\u{2588}\u{258c} \u{280b}", "## ?"),
            ("\x1b[1mbold \u{2192}\x1b[0m", "\x1b[1mbold ->\x1b[0m"),
            ("Gr\u{00fc}\u{00df}e", "Gr??e"),
        ] {
            let got = to_ascii(text);
            assert_eq!(got, want, "{text:?}");
            assert!(got.is_ascii());
        }
    }

    #[test]
    fn typed_serial_prompt_masks_the_last_four() {
        for (text, serial, want) in [
            (
                "type its last 4 characters to confirm it is sdb (serial S3Z1NB0K100002, bay 1)",
                "S3Z1NB0K100002",
                "type its last 4 characters to confirm it is sdb (serial S3Z1NB0K10****, bay 1)",
            ),
            // SATA, SCSI and NVMe serials alike; a short one is masked whole.
            (
                "serial WD-WCC4N7XY1234",
                "WD-WCC4N7XY1234",
                "serial WD-WCC4N7XY****",
            ),
            ("serial 9XG0ABCD", "9XG0ABCD", "serial 9XG0****"),
            ("serial LAB-B-0002", "LAB-B-0002", "serial LAB-B-****"),
            ("serial AB1", "AB1", "serial ***"),
            ("no serial here", "", "no serial here"),
        ] {
            assert_eq!(mask_serial(text, serial), want, "{text:?}");
        }
    }

    #[test]
    fn a_serial_is_never_split_from_its_label() {
        let text = "Pull the drive in bay 1 (serial S3Z1NB0K100002). Touch no other drive.";
        for width in [24, 30, 33, 40, 60] {
            let lines = wrap(text, width);
            assert!(
                lines.iter().any(|l| l.contains("serial S3Z1NB0K100002")),
                "{width}: {lines:?}"
            );
            assert_eq!(lines.join(" "), text, "{width}: nothing lost");
        }
    }

    #[test]
    fn refusal_block_is_calm_and_says_what_to_do() {
        let report = HaltReport {
            step_id: "preflight".into(),
            headline: "preflight refused to start: nothing was touched".into(),
            details: vec!["target `sdx` is not present".into()],
            guidance: "checked: the target\n\nthen run again:\n    swapguard run r.toml --array md0 --target SERIAL\n".into(),
        };
        let lines = refusal_block(&report, &Look::plain(60));
        assert_eq!(
            lines,
            vec![
                "",
                "------------------------------------------------------------",
                "NOT STARTED - preflight refused to start: nothing was",
                "touched",
                "------------------------------------------------------------",
                "",
                "what failed:",
                "  - target `sdx` is not present",
                "",
                "checked: the target",
                "",
                "then run again:",
                "    swapguard run r.toml --array md0 --target SERIAL",
                "------------------------------------------------------------",
            ]
        );
        let narrow = refusal_block(&report, &Look::plain(40));
        assert_eq!(
            &narrow[narrow.len() - 3..narrow.len() - 1],
            [
                "    swapguard run r.toml --array md0 \\",
                "        --target SERIAL",
            ]
        );
        let text = refusal_block(&report, &colored(80)).join("\n");
        assert!(!text.contains("STOP"), "{text}");
        assert!(!text.contains("\x1b[31m"), "no red in a refusal: {text}");
    }

    #[test]
    fn long_commands_break_between_words_for_a_shell() {
        let argv: Vec<String> = [
            "mdadm",
            "/dev/md0",
            "--add",
            "/dev/disk/by-id/ata-Samsung_SSD_860_EVO_1TB_S3Z1NB0K100003",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        assert_eq!(
            command_lines(&argv, 120),
            [
                "    $ mdadm /dev/md0 --add /dev/disk/by-id/ata-Samsung_SSD_860_EVO_1TB_S3Z1NB0K100003"
            ]
        );
        assert_eq!(
            command_lines(&argv, 40),
            [
                "    $ mdadm /dev/md0 --add \\",
                "        /dev/disk/by-id/ata-Samsung_SSD_860_EVO_1TB_S3Z1NB0K100003",
            ]
        );
    }

    #[test]
    fn notes_and_panel_rows_wrap_without_losing_text() {
        let text = "sda (serial S3Z1NB0K100001, bay 0): smart.udma_crc_error_count 0 \u{2192} 3: transfer errors between the drive and its controller";
        for width in [40, 60, 80, 120] {
            let look = Look::plain(width);
            let lines = note_lines(NoteLevel::Warn, text, &look);
            assert!(
                lines.iter().all(|l| measure_text_width(l) <= width),
                "{width}: {lines:?}"
            );
            let joined: Vec<&str> = lines.iter().flat_map(|l| l.split_whitespace()).collect();
            let want: Vec<&str> = std::iter::once("!!")
                .chain(text.split_whitespace())
                .collect();
            assert_eq!(joined, want, "{width}");
            let panel = panel_block(
                &[drive(
                    "survivor",
                    "sda (serial S3Z1NB0K100001, bay 0)",
                    "in-sync; smart.udma_crc_error_count 0 \u{2192} 3",
                    false,
                )],
                &look,
            );
            assert!(
                panel.iter().all(|l| measure_text_width(l) <= width),
                "{width}: {panel:?}"
            );
            assert!(panel.join(" ").contains("S3Z1NB0K100001"));
            assert!(
                panel
                    .join(" ")
                    .contains("udma_crc_error_count 0 \u{2192} 3"),
                "{panel:?}"
            );
        }
    }

    #[test]
    fn mismatch_messages() {
        for (typed, left, want) in [
            (
                "0002",
                2,
                "`0002` does not match; look again and type it exactly (2 tries left)",
            ),
            (
                "0002",
                1,
                "`0002` does not match; look again and type it exactly (1 try left)",
            ),
            ("x\x1b", 0, "`x?` does not match; giving up after 3 tries"),
        ] {
            assert_eq!(mismatch_message(typed, left), want);
        }
    }
}
