//! A simulated command that takes time: it ends when the simulated clock
//! reaches its end, so the engine's watch runs meanwhile, as it does while
//! a real `restic restore` runs for hours.

use anyhow::Result;

use crate::backend::{CommandOutput, Running};
use crate::clock::{Clock, SimClock};

pub(crate) struct SimRunning {
    pub clock: SimClock,
    /// Simulated milliseconds at which it ends by itself.
    pub ends_at: u64,
    /// What it prints when it ends by itself.
    pub output: CommandOutput,
    pub ended: Option<CommandOutput>,
}

impl Running for SimRunning {
    fn try_finish(&mut self) -> Result<Option<CommandOutput>> {
        if self.ended.is_none() && self.clock.now_ms() >= self.ends_at {
            self.ended = Some(self.output.clone());
        }
        Ok(self.ended.clone())
    }

    fn kill(&mut self) -> CommandOutput {
        self.ended
            .get_or_insert_with(|| CommandOutput {
                argv: self.output.argv.clone(),
                code: None,
                stdout: String::new(),
                stderr: String::new(),
                timed_out: false,
            })
            .clone()
    }
}
