//! An operator that keeps the signal handler told what is on screen.

use anyhow::Result;

use crate::operator::{
    Answer, Banner, HaltReport, NoteLevel, Operator, PanelLine, Progress, Question, StepView,
};
use crate::signals::set_physical;

/// An operator that tells the signal thread whether a physical or command
/// step is on screen; everything else passes through.
pub struct Tracking<'a> {
    inner: &'a mut dyn Operator,
}

impl<'a> Tracking<'a> {
    pub fn new(inner: &'a mut dyn Operator) -> Self {
        Tracking { inner }
    }
}

impl Operator for Tracking<'_> {
    fn banner(&mut self, banner: &Banner) {
        self.inner.banner(banner)
    }
    fn interactive(&self) -> bool {
        self.inner.interactive()
    }
    fn waiting(&mut self, waiting: &crate::operator::live::Waiting, panel: &[PanelLine]) {
        self.inner.waiting(waiting, panel)
    }
    fn show_step(&mut self, step: &StepView) -> Result<()> {
        set_physical(matches!(step.kind.as_str(), "physical" | "command"));
        self.inner.show_step(step)
    }
    fn ask(&mut self, question: &Question) -> Result<Answer> {
        self.inner.ask(question)
    }
    fn health(&mut self, panel: &[PanelLine]) {
        self.inner.health(panel)
    }
    fn progress(&mut self, progress: &Progress) {
        self.inner.progress(progress)
    }
    fn note(&mut self, level: NoteLevel, text: &str) {
        self.inner.note(level, text)
    }
    fn halted(&mut self, report: &HaltReport) {
        set_physical(false);
        self.inner.halted(report)
    }
    fn refused(&mut self, report: &HaltReport) {
        set_physical(false);
        self.inner.refused(report)
    }
    fn finish(&mut self) -> Result<()> {
        set_physical(false);
        self.inner.finish()
    }
}
