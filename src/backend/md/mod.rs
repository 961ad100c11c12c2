//! Linux md (mdadm) arrays, read from /proc and /sys directly.

pub mod mdstat;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};

use crate::backend::{Backend, CommandOutput, CommandRunner, Depth, LocateOutcome};
use crate::health::model::{Identity, Snapshot};

pub struct MdBackend {
    pub root: PathBuf,
    pub runner: Box<dyn CommandRunner>,
}

impl MdBackend {
    /// `root` is `/` on a real host, or a captured tree in tests.
    pub fn new(root: PathBuf, runner: Box<dyn CommandRunner>) -> Self {
        MdBackend { root, runner }
    }
}

impl Backend for MdBackend {
    fn name(&self) -> &'static str {
        "md"
    }
    fn arrays(&mut self) -> Result<Vec<String>> {
        bail!("md backend not built yet")
    }
    fn snapshot(&mut self, _array: &str, _depth: Depth) -> Result<Snapshot> {
        bail!("md backend not built yet")
    }
    fn wait(&mut self, timeout: Duration) -> Result<()> {
        std::thread::sleep(timeout);
        Ok(())
    }
    fn execute(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput> {
        self.runner.run(argv, timeout)
    }
    fn locate(&mut self, _drive: &Identity, _on: bool) -> Result<LocateOutcome> {
        Ok(LocateOutcome::Unavailable {
            reason: "no LED control yet".into(),
        })
    }
}
