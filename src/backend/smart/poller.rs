//! SMART in the background, so a slow `smartctl` never delays the watch loop.
//!
//! A `smartctl` run takes tens of milliseconds on a healthy drive and up to
//! its timeout on a sick one. The fast watch loop must keep noticing md state
//! changes and error counters every quarter second meanwhile, so during
//! physical steps and waits SMART is read on a worker thread: the loop asks
//! for a round when one is due and picks up finished results on later looks.
//! Step boundaries still read SMART in the foreground (a full look).
//!
//! How one disk is probed is the backend's to say ([`ProbeFn`]): the md
//! backend wraps each probe so that the SCSI error counter the probe itself
//! raises is not mistaken for a drive error (src/backend/disk/ioerr.rs).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::CommandRunner;
use crate::backend::smart::probe;
use crate::health::model::Smart;

/// Makes the runner a worker thread uses (real processes in production).
pub type RunnerFactory = Arc<dyn Fn() -> Box<dyn CommandRunner + Send> + Send + Sync>;

/// Probes one disk (a kernel name) with the given runner and timeout.
pub type ProbeFn = Arc<dyn Fn(&mut dyn CommandRunner, &str, Duration) -> Smart + Send + Sync>;

/// The plain probe: `smartctl --json -a /dev/<disk>`.
pub fn plain_probe() -> ProbeFn {
    Arc::new(|runner, disk, timeout| probe(runner, &format!("/dev/{disk}"), timeout))
}

/// Background SMART rounds for a set of disks.
pub struct SmartPoller {
    factory: RunnerFactory,
    probe: ProbeFn,
    timeout: Duration,
    busy: Arc<AtomicBool>,
    done: Arc<Mutex<BTreeMap<String, Smart>>>,
}

impl SmartPoller {
    pub fn new(factory: RunnerFactory, timeout: Duration) -> SmartPoller {
        SmartPoller {
            factory,
            probe: plain_probe(),
            timeout,
            busy: Arc::new(AtomicBool::new(false)),
            done: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// Probe each disk with `probe` instead of the plain probe.
    pub fn with_probe(mut self, probe: ProbeFn) -> SmartPoller {
        self.set_probe(probe);
        self
    }

    /// Probe each disk with `probe` from the next round on.
    pub fn set_probe(&mut self, probe: ProbeFn) {
        self.probe = probe;
    }

    /// Start a round over `disks` (kernel names) unless one is still running;
    /// returns whether a round started. Never blocks.
    pub fn start(&self, disks: Vec<String>) -> bool {
        if self.busy.swap(true, Ordering::SeqCst) {
            return false;
        }
        let factory = Arc::clone(&self.factory);
        let probe = Arc::clone(&self.probe);
        let busy = Arc::clone(&self.busy);
        let done = Arc::clone(&self.done);
        let timeout = self.timeout;
        let spawned = std::thread::Builder::new()
            .name("smart-poller".into())
            .spawn(move || {
                let mut runner = factory();
                for disk in disks {
                    let result = probe(&mut *runner, &disk, timeout);
                    if let Ok(mut map) = done.lock() {
                        map.insert(disk, result);
                    }
                }
                busy.store(false, Ordering::SeqCst);
            });
        if spawned.is_err() {
            self.busy.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Results that finished since the last call, by kernel name. Each
    /// result is handed out once.
    pub fn take(&self) -> BTreeMap<String, Smart> {
        match self.done.lock() {
            Ok(mut map) => std::mem::take(&mut *map),
            Err(_) => BTreeMap::new(),
        }
    }

    /// Whether a round is running (for tests).
    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;
    use crate::backend::CommandOutput;

    /// A smartctl that waits for the test's go-ahead, like a slow drive.
    struct Gated {
        go: Arc<Mutex<mpsc::Receiver<()>>>,
    }

    impl CommandRunner for Gated {
        fn run(&mut self, argv: &[String], _timeout: Duration) -> anyhow::Result<CommandOutput> {
            let _ = self.go.lock().unwrap().recv();
            Ok(CommandOutput {
                argv: argv.to_vec(),
                code: Some(0),
                stdout: r#"{"smartctl":{"exit_status":0},"device":{"protocol":"NVMe"},"smart_status":{"passed":true},"nvme_smart_health_information_log":{"critical_warning":0,"media_errors":0,"num_err_log_entries":0,"percentage_used":1,"available_spare":100,"available_spare_threshold":10}}"#.into(),
                stderr: String::new(),
                timed_out: false,
            })
        }
    }

    #[test]
    fn a_slow_round_does_not_block_and_results_arrive_later() {
        let (tx, rx) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        let poller = SmartPoller::new(
            Arc::new(move || {
                Box::new(Gated {
                    go: Arc::clone(&rx),
                }) as Box<dyn CommandRunner + Send>
            }),
            Duration::from_secs(30),
        );
        assert!(poller.start(vec!["nvme0n1".into(), "nvme1n1".into()]));
        // The round is stuck in smartctl; asking again neither blocks nor
        // starts a second round, and nothing has finished yet.
        assert!(!poller.start(vec!["nvme0n1".into()]));
        assert!(poller.take().is_empty());
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        let mut got = BTreeMap::new();
        while got.len() < 2 {
            got.extend(poller.take());
            std::thread::yield_now();
        }
        assert!(matches!(got["nvme0n1"], Smart::Read { passed: true, .. }));
        while poller.busy() {
            std::thread::yield_now();
        }
        assert!(
            poller.start(vec!["nvme0n1".into()]),
            "a new round can start"
        );
        drop(tx);
    }
}
