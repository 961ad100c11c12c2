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

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::backend::CommandRunner;
use crate::backend::smart::probe;
use crate::health::model::Smart;

/// Makes the runner a worker thread uses (real processes in production).
pub type RunnerFactory = Arc<dyn Fn() -> Box<dyn CommandRunner + Send> + Send + Sync>;

/// Probes one disk (a kernel name) with the given runner and timeout.
pub type ProbeFn = Arc<dyn Fn(&mut dyn CommandRunner, &str, Duration) -> Smart + Send + Sync>;

/// How many `smartctl` run at once in a round, by default: a round over 60
/// drives at 100 ms each takes about 60/8 × 100 ms = 0.75 s, not 6 s.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// The plain probe: `smartctl --json -a /dev/<disk>`.
pub fn plain_probe() -> ProbeFn {
    Arc::new(|runner, disk, timeout| probe(runner, &format!("/dev/{disk}"), timeout))
}

/// What the worker threads share.
struct Shared {
    /// Disks a `smartctl` is running on now: never two on one drive.
    in_flight: Mutex<BTreeSet<String>>,
    done: Mutex<BTreeMap<String, Smart>>,
    /// One datagram per finished probe, so a watch can wake on it.
    wake_tx: Option<UnixDatagram>,
}

impl Shared {
    /// Mark `disk` in flight; false when a probe of it is already running.
    fn claim(&self, disk: &str) -> bool {
        match self.in_flight.lock() {
            Ok(mut set) => set.insert(disk.to_string()),
            Err(_) => false,
        }
    }

    fn finish(&self, disk: String, result: Smart) {
        if let Ok(mut map) = self.done.lock() {
            map.insert(disk.clone(), result);
        }
        if let Ok(mut set) = self.in_flight.lock() {
            set.remove(&disk);
        }
        if let Some(tx) = &self.wake_tx {
            // A full socket already wakes the watch; dropping is fine.
            let _ = tx.send(&[1]);
        }
    }

    /// Probe `disk` unless a probe of it is running.
    fn probe_one(
        &self,
        runner: &mut dyn CommandRunner,
        probe: &ProbeFn,
        disk: String,
        t: Duration,
    ) {
        if !self.claim(&disk) {
            return;
        }
        let result = probe(runner, &disk, t);
        self.finish(disk, result);
    }
}

/// Background SMART rounds for a set of disks.
pub struct SmartPoller {
    factory: RunnerFactory,
    probe: ProbeFn,
    timeout: Duration,
    concurrency: usize,
    busy: Arc<AtomicBool>,
    shared: Arc<Shared>,
    wake_rx: Option<UnixDatagram>,
}

impl SmartPoller {
    pub fn new(factory: RunnerFactory, timeout: Duration) -> SmartPoller {
        // Without a socket pair results are still picked up by the next
        // timed look; only the early wake is lost.
        let (wake_rx, wake_tx) = match UnixDatagram::pair() {
            Ok((rx, tx))
                if rx.set_nonblocking(true).is_ok() && tx.set_nonblocking(true).is_ok() =>
            {
                (Some(rx), Some(tx))
            }
            _ => (None, None),
        };
        SmartPoller {
            factory,
            probe: plain_probe(),
            timeout,
            concurrency: DEFAULT_CONCURRENCY,
            busy: Arc::new(AtomicBool::new(false)),
            shared: Arc::new(Shared {
                in_flight: Mutex::new(BTreeSet::new()),
                done: Mutex::new(BTreeMap::new()),
                wake_tx,
            }),
            wake_rx,
        }
    }

    /// Probe each disk with `probe` instead of the plain probe.
    pub fn with_probe(mut self, probe: ProbeFn) -> SmartPoller {
        self.set_probe(probe);
        self
    }

    /// Run at most `n` (at least 1) `smartctl` at once in a round.
    pub fn with_concurrency(mut self, n: usize) -> SmartPoller {
        self.concurrency = n.max(1);
        self
    }

    /// Probe each disk with `probe` from the next round on.
    pub fn set_probe(&mut self, probe: ProbeFn) {
        self.probe = probe;
    }

    /// Start a round over `disks` (kernel names) unless one is still running;
    /// returns whether a round started. Never blocks. Up to the
    /// concurrency limit run at once, each disk once; a disk already being
    /// read (an urgent read) is left to that read.
    pub fn start(&self, disks: Vec<String>) -> bool {
        if self.busy.swap(true, Ordering::SeqCst) {
            return false;
        }
        let workers = self.concurrency.min(disks.len()).max(1);
        let queue = Arc::new(Mutex::new(VecDeque::from(disks)));
        let left = Arc::new(AtomicUsize::new(workers));
        let mut started = 0;
        for n in 0..workers {
            let factory = Arc::clone(&self.factory);
            let probe = Arc::clone(&self.probe);
            let busy = Arc::clone(&self.busy);
            let shared = Arc::clone(&self.shared);
            let queue = Arc::clone(&queue);
            let left_here = Arc::clone(&left);
            let timeout = self.timeout;
            let spawned = std::thread::Builder::new()
                .name(format!("smart-poller-{n}"))
                .spawn(move || {
                    let mut runner = factory();
                    loop {
                        let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                        let Some(disk) = next else { break };
                        shared.probe_one(&mut *runner, &probe, disk, timeout);
                    }
                    if left_here.fetch_sub(1, Ordering::SeqCst) == 1 {
                        busy.store(false, Ordering::SeqCst);
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(_) => {
                    if left.fetch_sub(1, Ordering::SeqCst) == 1 {
                        self.busy.store(false, Ordering::SeqCst);
                    }
                }
            }
        }
        started > 0
    }

    /// Read these disks now, outside any round (an NVMe health event):
    /// each on its own thread, unless a read of it is already running (its
    /// result is just as fresh). Returns how many reads started.
    pub fn read_now(&self, disks: &[String]) -> usize {
        let mut started = 0;
        for disk in disks {
            if !self.shared.claim(disk) {
                continue;
            }
            let factory = Arc::clone(&self.factory);
            let probe = Arc::clone(&self.probe);
            let shared = Arc::clone(&self.shared);
            let timeout = self.timeout;
            let name = disk.clone();
            let spawned = std::thread::Builder::new()
                .name("smart-now".into())
                .spawn(move || {
                    let mut runner = factory();
                    let result = probe(&mut *runner, &name, timeout);
                    shared.finish(name, result);
                });
            match spawned {
                Ok(_) => started += 1,
                Err(_) => {
                    if let Ok(mut set) = self.shared.in_flight.lock() {
                        set.remove(disk);
                    }
                }
            }
        }
        started
    }

    /// Readable when a read finished since the last [`take`](Self::take).
    pub fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.wake_rx.as_ref().map(|rx| rx.as_fd())
    }

    /// Consume the wake signal; finished results stay for [`take`](Self::take).
    pub fn clear_wake(&self) {
        if let Some(rx) = &self.wake_rx {
            let mut buf = [0u8; 64];
            while rx.recv(&mut buf).is_ok() {}
        }
    }

    /// Results that finished since the last call, by kernel name. Each
    /// result is handed out once.
    pub fn take(&self) -> BTreeMap<String, Smart> {
        self.clear_wake();
        match self.shared.done.lock() {
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

    /// Running now, most at once, running per drive, most on one drive.
    type Tally = Arc<Mutex<(usize, usize, BTreeMap<String, usize>, usize)>>;

    /// A smartctl that takes `pause` and records how many run at once, in
    /// all and per drive.
    struct Counting {
        pause: Duration,
        now: Tally,
    }

    impl CommandRunner for Counting {
        fn run(&mut self, argv: &[String], _timeout: Duration) -> anyhow::Result<CommandOutput> {
            let disk = argv.last().cloned().unwrap_or_default();
            {
                let mut g = self.now.lock().unwrap();
                g.0 += 1;
                g.1 = g.1.max(g.0);
                let per = g.2.entry(disk.clone()).or_insert(0);
                *per += 1;
                let per = *per;
                g.3 = g.3.max(per);
            }
            std::thread::sleep(self.pause);
            {
                let mut g = self.now.lock().unwrap();
                g.0 -= 1;
                *g.2.get_mut(&disk).unwrap() -= 1;
            }
            Ok(CommandOutput {
                argv: argv.to_vec(),
                code: Some(0),
                stdout: r#"{"smartctl":{"exit_status":0},"device":{"protocol":"NVMe"},"smart_status":{"passed":true},"nvme_smart_health_information_log":{"critical_warning":0,"media_errors":0,"num_err_log_entries":0,"percentage_used":1,"available_spare":100,"available_spare_threshold":10}}"#.into(),
                stderr: String::new(),
                timed_out: false,
            })
        }
    }

    fn counting(pause: Duration) -> (SmartPoller, Tally) {
        let now = Arc::new(Mutex::new((0, 0, BTreeMap::new(), 0)));
        let shared = Arc::clone(&now);
        let poller = SmartPoller::new(
            Arc::new(move || {
                Box::new(Counting {
                    pause,
                    now: Arc::clone(&shared),
                }) as Box<dyn CommandRunner + Send>
            }),
            Duration::from_secs(30),
        );
        (poller, now)
    }

    #[test]
    fn a_round_runs_at_most_the_limit_at_once_and_every_disk_once() {
        let (poller, now) = counting(Duration::from_millis(20));
        let disks: Vec<String> = (0..24).map(|n| format!("sd{n}")).collect();
        assert!(poller.start(disks.clone()));
        let mut got = BTreeMap::new();
        while poller.busy() || got.len() < disks.len() {
            got.extend(poller.take());
            std::thread::sleep(Duration::from_millis(5));
        }
        let g = now.lock().unwrap();
        assert!(g.1 <= DEFAULT_CONCURRENCY, "{} at once", g.1);
        assert!(g.1 > 1, "the round ran one at a time");
        assert_eq!(got.len(), 24);
        assert_eq!(g.3, 1, "two smartctl on one drive");
    }

    #[test]
    fn an_urgent_read_never_runs_beside_a_read_of_the_same_disk() {
        let (poller, now) = counting(Duration::from_millis(50));
        let disks = vec!["nvme0n1".to_string(), "nvme1n1".to_string()];
        assert!(poller.start(disks.clone()));
        // Both are in flight in the round: asking again starts nothing.
        while now.lock().unwrap().0 < 2 {
            std::thread::yield_now();
        }
        assert_eq!(poller.read_now(&disks), 0);
        while poller.busy() {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(poller.take().len(), 2);
        // Nothing running: an urgent read starts and wakes its watcher.
        assert_eq!(poller.read_now(&disks[..1]), 1);
        let mut fds = [nix::poll::PollFd::new(
            poller.wake_fd().unwrap(),
            nix::poll::PollFlags::POLLIN,
        )];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(10_000u16)).unwrap();
        assert!(poller.take().contains_key("nvme0n1"));
        assert_eq!(now.lock().unwrap().3, 1);
    }
}
