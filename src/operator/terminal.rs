//! The terminal operator: a technician at a console.
//!
//! Everything goes to stdout (instructions, panel, prompts, progress, the
//! halt block), so what the technician sees is one stream in order. The
//! drawing itself lives in [`render`](crate::operator::render) as pure
//! functions; this file only decides the look from the environment, talks to
//! the terminal and reads answers.
//!
//! Two kinds of terminal are served. A capable one (`TERM` names a real
//! terminal) gets colour, redrawn live lines and an indicatif bar. A plain
//! one (`TERM` unset, empty or `dumb`, as on some serial consoles and IPMI
//! links) gets no escape sequences at all: a progress line per 10%, a wait
//! line every few seconds. Both read answers the same way, a whole line at
//! a time ([`prompt`](crate::operator::prompt)). Correctness never depends
//! on cursor movement: every answer is read from keys the technician typed,
//! never from what is on the screen.
//!
//! No signal handlers are installed here. An interrupted prompt (Ctrl-C, a
//! signal, end of input) returns an `Err`, never a made-up answer; Ctrl-C
//! and signals as [`PromptInterrupted`](crate::operator::prompt::PromptInterrupted).

use std::env;
use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use console::Term;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::operator::live::{Waiting, banner_block, wait_line};
use crate::operator::prompt;
use crate::operator::render::{
    Look, ProgressThrottle, colors_wanted, halt_block, is_plain_term, mismatch_message, note_line,
    note_lines, one_line, panel_block, percent, progress_detail, progress_line, refusal_block,
    step_block, to_ascii, unicode_wanted, wrap,
};
use crate::operator::{
    Answer, Banner, HaltReport, NoteLevel, Operator, PanelLine, Progress, Question, QuestionKind,
    StepView,
};
use crate::sanitize::sanitize;

/// What `new` says without a terminal. The CLI's tests check the wording.
pub const NO_TTY_MESSAGE: &str = "swapguard needs an interactive terminal for this run; give \
     scripted answers with `--answers FILE` (see `swapguard run --help`)";

/// How many times a typed confirmation may be wrong before the answer goes
/// back to the engine (which then refuses the step).
const TYPE_TRIES: usize = 3;

/// Said under every yes/no question before the answer is read: a no is
/// final, so the technician knows what it does before typing it.
pub const NO_MEANS: &str = "answering no stops the run here; nothing more is done";

/// Fallback width when the terminal does not report one (serial consoles).
const FALLBACK_WIDTH: usize = 80;

/// When the process first drew a live line: the clock of the redraw
/// throttle (the live line's own times come from the engine).
static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// The progress bar of the current wait, while there is one.
struct ActiveBar {
    key: (String, String, bool),
    bar: ProgressBar,
}

pub struct TerminalOperator {
    term: Term,
    colors: bool,
    unicode: bool,
    /// `TERM` is unset or dumb: no indicatif, no escapes.
    plain: bool,
    bar: Option<ActiveBar>,
    throttle: ProgressThrottle,
    /// Keys typed after the Enter of the last answer, for the next one.
    typed_ahead: std::cell::RefCell<Vec<u8>>,
    /// The live area of a physical step, while one is on screen.
    live: Option<LiveArea>,
}

/// What a physical step's live area showed last.
struct LiveArea {
    /// Screen lines drawn (a capable terminal redraws them in place).
    lines: usize,
    drawn_ms: u128,
    frame: usize,
    /// The panel as last shown (a plain terminal prints it when it changes).
    panel: Vec<PanelLine>,
}

/// How often a capable terminal redraws the live line (at least every
/// second, as the spinner turns), and how often a plain one prints it.
const LIVE_REDRAW_MS: u128 = 250;
const LIVE_PLAIN_MS: u128 = 10_000;

impl TerminalOperator {
    /// A terminal operator on stdout. Refuses unless both stdin and stdout
    /// are terminals: answers must come from a person who sees the
    /// questions, never from a pipe.
    pub fn new() -> Result<Self> {
        if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
            bail!(NO_TTY_MESSAGE);
        }
        let term_env = env::var("TERM").ok();
        let term = Term::stdout();
        let colors = colors_wanted(
            env::var_os("NO_COLOR").is_some(),
            term_env.as_deref(),
            env::var("CLICOLOR").ok().as_deref(),
            term.features().colors_supported(),
        );
        // indicatif styles through console's global switch.
        console::set_colors_enabled(colors);
        console::set_colors_enabled_stderr(colors);
        let unicode = unicode_wanted(
            env::var("LC_ALL").ok().as_deref(),
            env::var("LC_CTYPE").ok().as_deref(),
            env::var("LANG").ok().as_deref(),
            term_env.as_deref(),
        );
        Ok(TerminalOperator {
            term,
            colors,
            unicode,
            plain: is_plain_term(term_env.as_deref()),
            bar: None,
            throttle: ProgressThrottle::new(),
            typed_ahead: std::cell::RefCell::new(Vec::new()),
            live: None,
        })
    }

    /// The look for this moment (the terminal may have been resized).
    fn look(&self) -> Look {
        let width = self
            .term
            .size_checked()
            .map_or(FALLBACK_WIDTH, |(_, cols)| usize::from(cols))
            // One column spare: some terminals wrap early on a full line.
            .saturating_sub(1);
        Look {
            width,
            colors: self.colors,
            unicode: self.unicode,
        }
    }

    fn write_lines(&self, lines: &[String]) -> Result<()> {
        for line in lines {
            // A locale that is not UTF-8 gets no UTF-8: `→` becomes `->`.
            let line = if self.unicode {
                line.clone()
            } else {
                to_ascii(line)
            };
            self.term
                .write_line(&line)
                .context("cannot write to the terminal")?;
        }
        self.term.flush().context("cannot write to the terminal")
    }

    /// Print while a progress bar may be on screen: the bar steps aside and
    /// is redrawn below.
    fn print_around_bar(&self, lines: &[String]) {
        // The trait gives these calls nowhere to report a failed write; a
        // terminal that cannot be written will fail the next prompt.
        match &self.bar {
            Some(active) if !active.bar.is_finished() => {
                active.bar.suspend(|| {
                    let _ = self.write_lines(lines);
                });
            }
            _ => {
                let _ = self.write_lines(lines);
            }
        }
    }

    /// Take the live area off a capable terminal's screen (it is redrawn
    /// below whatever is printed next, if the wait goes on).
    fn clear_live(&mut self) {
        if let Some(live) = &mut self.live {
            if !self.plain && live.lines > 0 {
                let _ = self.term.clear_last_lines(live.lines);
            }
            live.lines = 0;
            live.drawn_ms = 0;
        }
    }

    /// Leave the current bar on screen as it is and stop drawing it.
    fn end_bar(&mut self) {
        self.clear_live();
        self.live = None;
        if let Some(active) = self.bar.take() {
            if !active.bar.is_finished() {
                active.bar.abandon();
            }
            // indicatif leaves the cursor at the end of the bar's line.
            let _ = self.term.write_line("");
        }
    }

    /// Ask until the line typed is y/yes or n/no; say first what no does.
    fn ask_yes_no(&self, look: &Look) -> Result<bool> {
        let hint = console::Style::new().dim().force_styling(look.colors);
        for line in wrap(NO_MEANS, look.width.saturating_sub(2)) {
            self.term
                .write_line(&format!("  {}", hint.apply_to(line)))?;
        }
        loop {
            self.term.write_str("answer yes or no [y/n]: ")?;
            let line = self.read_line()?;
            match prompt::yes_no(&line) {
                Some(yes) => return Ok(yes),
                None => {
                    let what = one_line(line.trim());
                    let said = if what.is_empty() {
                        "an empty line is not an answer".to_string()
                    } else {
                        format!("`{what}` is not an answer")
                    };
                    let again = format!(
                        "{said}: type y or yes to go on, n or no to stop the run here, then Enter"
                    );
                    self.write_lines(&[note_line(NoteLevel::Warn, &again, look)])?;
                }
            }
        }
    }

    fn read_typed(&self) -> Result<String> {
        self.term.write_str("type it here: ")?;
        Ok(self.read_line()?.trim().to_string())
    }

    /// One whole line from the technician (see [`prompt`]), echoed as typed.
    fn read_line(&self) -> Result<String> {
        self.term.flush()?;
        let mut out = self.term.clone();
        let mut ahead = self.typed_ahead.borrow_mut();
        prompt::read_line(&mut out, &mut ahead, &crate::signals::pending)
    }
}

impl Operator for TerminalOperator {
    fn banner(&mut self, banner: &Banner) {
        self.end_bar();
        let _ = self.write_lines(&banner_block(banner, &self.look()));
    }

    fn show_step(&mut self, step: &StepView) -> Result<()> {
        self.end_bar();
        self.throttle.reset();
        self.write_lines(&step_block(step, &self.look()))
    }

    fn ask(&mut self, question: &Question) -> Result<Answer> {
        self.end_bar();
        let look = self.look();
        let bold = console::Style::new().bold().force_styling(look.colors);
        let prompt: Vec<String> = wrap(&question.prompt, look.width.saturating_sub(2))
            .into_iter()
            .map(|l| format!("? {}", bold.apply_to(l)))
            .collect();
        self.write_lines(&prompt)?;
        let step = sanitize(&question.step_id, false);
        let interrupted = |e: anyhow::Error| {
            e.context(format!(
                "no answer at step `{step}`: the prompt was interrupted"
            ))
        };
        match &question.kind {
            QuestionKind::YesNo => {
                let yes = self.ask_yes_no(&look).map_err(interrupted)?;
                Ok(if yes { Answer::Yes } else { Answer::No })
            }
            QuestionKind::TypeExact { expected } => {
                let mut last = String::new();
                for attempt in 1..=TYPE_TRIES {
                    last = self.read_typed().map_err(interrupted)?;
                    if &last == expected {
                        break;
                    }
                    let message = mismatch_message(&last, TYPE_TRIES - attempt);
                    self.write_lines(&[note_line(NoteLevel::Warn, &message, &look)])?;
                }
                // A wrong text goes back as typed: the engine refuses it.
                Ok(Answer::Text(last))
            }
            QuestionKind::Name | QuestionKind::Reason => {
                Ok(Answer::Text(self.read_typed().map_err(interrupted)?))
            }
        }
    }

    fn health(&mut self, panel: &[PanelLine]) {
        self.clear_live();
        let lines = panel_block(panel, &self.look());
        self.print_around_bar(&lines);
    }

    fn progress(&mut self, progress: &Progress) {
        let look = self.look();
        if self.plain || !bar_fits(progress, look.width) {
            if self.throttle.should_print(progress) {
                let line = format!("  {}", progress_line(progress));
                let _ = self.write_lines(&wrap(&line, look.width));
            }
            return;
        }
        let known = percent(progress.fraction).is_some();
        let key = (progress.step_id.clone(), progress.label.clone(), known);
        if self.bar.as_ref().is_none_or(|a| a.key != key) {
            self.end_bar();
            let bar = new_bar(&self.term, progress, self.unicode);
            self.bar = Some(ActiveBar { key, bar });
        }
        let Some(active) = &self.bar else { return };
        let bar = &active.bar;
        if bar.is_finished() {
            return;
        }
        match percent(progress.fraction) {
            Some(_) => {
                let fraction = progress.fraction.unwrap_or(0.0).clamp(0.0, 1.0);
                bar.set_position((fraction * 1000.0).round() as u64);
                bar.set_message(progress_detail(progress));
                if fraction >= 1.0 {
                    bar.finish();
                }
            }
            None => bar.tick(),
        }
    }

    fn interactive(&self) -> bool {
        true
    }

    fn waiting(&mut self, waiting: &Waiting, panel: &[PanelLine]) {
        let now = std::time::Instant::now()
            .duration_since(*START.get_or_init(std::time::Instant::now))
            .as_millis();
        let look = self.look();
        let live = self.live.get_or_insert(LiveArea {
            lines: 0,
            drawn_ms: 0,
            frame: 0,
            panel: Vec::new(),
        });
        let changed = live.panel.as_slice() != panel;
        if self.plain {
            // No redraws: a line now and then, the panel when it changed.
            let due = live.drawn_ms == 0 || now.saturating_sub(live.drawn_ms) >= LIVE_PLAIN_MS;
            let mut lines = Vec::new();
            if changed {
                lines.extend(panel_block(panel, &look));
            }
            if due || changed {
                lines.push(wait_line(waiting, None, &look));
                live.drawn_ms = now.max(1);
            }
            live.panel = panel.to_vec();
            let _ = self.write_lines(&lines);
            return;
        }
        if !changed && live.lines > 0 && now.saturating_sub(live.drawn_ms) < LIVE_REDRAW_MS {
            return;
        }
        let mut lines = panel_block(panel, &look);
        live.frame = live.frame.wrapping_add(1);
        lines.push(wait_line(waiting, Some(live.frame), &look));
        if live.lines > 0 {
            let _ = self.term.clear_last_lines(live.lines);
        }
        // Screen rows, not lines: a panel row wider than the screen wraps
        // and takes two, which the next redraw must clear too.
        let columns = look.width + 1;
        live.lines = lines
            .iter()
            .map(|l| console::measure_text_width(l).div_ceil(columns).max(1))
            .sum();
        live.drawn_ms = now.max(1);
        live.panel = panel.to_vec();
        let _ = self.write_lines(&lines);
    }

    fn note(&mut self, level: NoteLevel, text: &str) {
        // A note ends the live line and the bar where they stand: a bar
        // stepped around and drawn again below the note would outlive the
        // run's last words ("all steps done", "interrupted"). Progress that
        // goes on after a note starts a fresh bar under it.
        self.clear_live();
        self.end_bar();
        let _ = self.write_lines(&note_lines(level, text, &self.look()));
    }

    fn halted(&mut self, report: &HaltReport) {
        self.end_bar();
        let _ = self.write_lines(&halt_block(report, &self.look()));
    }

    fn refused(&mut self, report: &HaltReport) {
        self.end_bar();
        let _ = self.write_lines(&refusal_block(report, &self.look()));
    }

    fn finish(&mut self) -> Result<()> {
        self.end_bar();
        self.term.flush().context("cannot write to the terminal")
    }
}

/// Whether a bar line for `progress` fits in `width` columns with room for
/// the longest detail it may show; narrower terminals get wrapped progress
/// lines instead, since a bar line too long is cut off at the edge.
fn bar_fits(progress: &Progress, width: usize) -> bool {
    // "  " label " [" at least 10 of bar "] " "100%" "  " detail.
    const LONGEST_DETAIL: usize = "stalled: no progress for 23h 59m 59s".len();
    let label = console::measure_text_width(&one_line(&progress.label));
    2 + label + 2 + 10 + 2 + 4 + 2 + LONGEST_DETAIL <= width
}

/// A bar (fraction known, with the backend's speed and estimate, never
/// indicatif's own) or a spinner (fraction unknown), drawn on stdout. ASCII
/// glyphs unless the locale promises UTF-8.
fn new_bar(term: &Term, progress: &Progress, unicode: bool) -> ProgressBar {
    let target = ProgressDrawTarget::term(term.clone(), 4);
    let label = one_line(&progress.label);
    if percent(progress.fraction).is_some() {
        let template = "  {prefix} [{wide_bar}] {percent:>3}%  {msg}";
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars(if unicode { "\u{2588}\u{258c} " } else { "=> " });
        ProgressBar::with_draw_target(Some(1000), target)
            .with_style(style)
            .with_prefix(label)
    } else {
        let style = ProgressStyle::with_template("  {spinner} {prefix}  {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner())
            .tick_chars(if unicode {
                "\u{280b}\u{2819}\u{2839}\u{2838}\u{283c}\u{2834}\u{2826}\u{2827}\u{2807}\u{280f} "
            } else {
                "|/-\\ "
            });
        ProgressBar::with_draw_target(None, target)
            .with_style(style)
            .with_prefix(label)
    }
}

impl TerminalOperator {
    /// Colour as `--color always|never` says (`Some`), overriding what
    /// [`new`](Self::new) found in the environment; `None` (`auto`) keeps it.
    pub fn with_colors(mut self, colors: Option<bool>) -> Self {
        if let Some(colors) = colors {
            self.colors = colors;
            console::set_colors_enabled(colors);
            console::set_colors_enabled_stderr(colors);
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use std::io::IsTerminal;

    use super::{NO_TTY_MESSAGE, TerminalOperator};

    #[test]
    fn refuses_without_a_terminal() {
        // Under `cargo test` stdin or stdout is normally not a terminal;
        // when both are (someone runs the tests at a console), there is
        // nothing to assert.
        if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
            return;
        }
        let err = match TerminalOperator::new() {
            Ok(_) => panic!("a terminal operator started without a terminal"),
            Err(e) => e.to_string(),
        };
        assert_eq!(err, NO_TTY_MESSAGE);
        assert!(err.contains("`--answers FILE`"), "{err}");
    }
}
