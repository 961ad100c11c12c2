//! Delivery, off the engine's thread: [`Notifier`] turns journal entries
//! into bodies and puts them on a bounded queue; one worker thread posts
//! them, each attempt with its own timeout, retrying with doubling backoff.
//! The engine's side never waits: a full queue drops the notice (and says
//! so as a failure) rather than block the guard. At the end of the process
//! [`Notifier::settle`] waits a bounded time for what is still queued.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::journal::Event;
use crate::notify::payload::{self, Context};
use crate::notify::{Failure, Kind, Settings, Sink, notice, redact};

/// Notices waiting for the worker; more are dropped (and reported).
pub const QUEUE: usize = 32;
/// The longest backoff between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest time the process waits at its end for queued notices.
pub const SETTLE: Duration = Duration::from_secs(10);

struct Job {
    kind: Kind,
    body: Value,
}

/// Webhook notifications for one session.
pub struct Notifier {
    settings: Settings,
    ctx: Context,
    queue: Option<SyncSender<Job>>,
    worker: Option<JoinHandle<()>>,
    failures: Arc<Mutex<Vec<Failure>>>,
    /// Jobs queued and not yet done (delivered or given up).
    pending: Arc<AtomicUsize>,
}

impl Notifier {
    /// Start the worker thread.
    pub fn start(settings: Settings, ctx: Context) -> Notifier {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let failures = Arc::new(Mutex::new(Vec::new()));
        let pending = Arc::new(AtomicUsize::new(0));
        let worker = {
            let settings = settings.clone();
            let failures = failures.clone();
            let pending = pending.clone();
            std::thread::Builder::new()
                .name("notify".into())
                .spawn(move || deliver_all(&settings, rx, &failures, &pending))
                .ok()
        };
        let mut notifier = Notifier {
            settings,
            ctx,
            queue: Some(tx),
            worker,
            failures,
            pending,
        };
        if notifier.worker.is_none() {
            notifier.queue = None;
        }
        notifier
    }

    fn fail(&self, kind: Kind, attempts: u32, error: String) {
        push(
            &self.failures,
            Failure {
                event: kind,
                target: redact(&self.settings.url),
                attempts,
                error,
            },
        );
    }

    /// Close the queue and wait at most `limit` for what is still in it;
    /// what is left is reported as failed. Returns every failure not yet
    /// taken by [`Sink::failures`].
    fn close(&mut self, limit: Duration) -> Vec<Failure> {
        self.queue = None;
        let deadline = Instant::now() + limit;
        while self.pending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = self.pending.load(Ordering::SeqCst);
        if left > 0 {
            self.fail(
                Kind::Finish,
                0,
                format!(
                    "{left} notification{} still undelivered when swapguard exited (it waits at most {})",
                    if left == 1 { "" } else { "s" },
                    humantime::format_duration(limit)
                ),
            );
        } else if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
        self.failures()
    }
}

impl Sink for Notifier {
    fn observe(&mut self, _journal_ms: u64, event: &Event) {
        // Real time, also in a dry-run (whose journal runs on a simulated
        // clock): Alertmanager takes an alert whose `endsAt` is past for
        // one already resolved.
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        match event {
            Event::RunStarted {
                session, params, ..
            } => {
                self.ctx.session = session.clone();
                if let Some(target) = params.get("target") {
                    self.ctx.target = target.clone();
                }
            }
            Event::Resumed { session, .. } => self.ctx.session = session.clone(),
            _ => {}
        }
        let Some(notice) = notice(wall_ms, event) else {
            return;
        };
        if !self.settings.events.contains(&notice.kind) {
            return;
        }
        let Some(body) = payload::body(self.settings.format, &self.ctx, &notice) else {
            return;
        };
        let Some(queue) = &self.queue else {
            self.fail(notice.kind, 0, "the delivery thread could not start".into());
            return;
        };
        self.pending.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            kind: notice.kind,
            body,
        };
        if let Err(e) = queue.try_send(job) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            let why = match e {
                TrySendError::Full(_) => format!(
                    "{QUEUE} notifications already waiting for a slow webhook; this one was dropped"
                ),
                TrySendError::Disconnected(_) => "the delivery thread has stopped".into(),
            };
            self.fail(notice.kind, 0, why);
        }
    }

    fn failures(&mut self) -> Vec<Failure> {
        match self.failures.lock() {
            Ok(mut f) => std::mem::take(&mut *f),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    fn settle(&mut self, limit: Duration) -> Vec<Failure> {
        self.close(limit)
    }
}

fn push(failures: &Mutex<Vec<Failure>>, failure: Failure) {
    match failures.lock() {
        Ok(mut f) => f.push(failure),
        Err(poisoned) => poisoned.into_inner().push(failure),
    }
}

/// The worker: each job in turn, until the queue closes.
fn deliver_all(
    settings: &Settings,
    rx: Receiver<Job>,
    failures: &Mutex<Vec<Failure>>,
    pending: &AtomicUsize,
) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(settings.timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .proxy(None)
        .user_agent(concat!("swapguard/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    for job in rx {
        let mut backoff = Duration::from_secs(1);
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            match post(&agent, &settings.url, &job.body, settings.timeout) {
                Ok(()) => break Ok(()),
                Err(e) if attempts > settings.retries => break Err(e),
                Err(_) => {
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        if let Err(error) = result {
            push(
                failures,
                Failure {
                    event: job.kind,
                    target: redact(&settings.url),
                    attempts,
                    error,
                },
            );
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One attempt: 2xx is delivered, anything else an error in a few words.
fn post(agent: &ureq::Agent, url: &str, body: &Value, timeout: Duration) -> Result<(), String> {
    let bytes = serde_json::to_vec(body).map_err(|e| format!("cannot encode: {e}"))?;
    match agent
        .post(url)
        .header("content-type", "application/json")
        .send(&bytes[..])
    {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(format!("the webhook answered HTTP {}", response.status())),
        Err(ureq::Error::Timeout(_)) => Err(format!(
            "no answer within {}",
            humantime::format_duration(timeout)
        )),
        Err(e) => Err(crate::sanitize::sanitize(&e.to_string(), false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::{Format, KINDS};
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn settings(url: String, retries: u32) -> Settings {
        Settings {
            url,
            format: Format::Generic,
            events: KINDS.iter().map(|(_, k)| *k).collect(),
            timeout: Duration::from_secs(2),
            retries,
            dry_runs: true,
        }
    }

    /// A server answering every request with `status`, counting them.
    fn server(status: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let seen = Arc::new(AtomicUsize::new(0));
        let count = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { return };
                let mut buf = [0u8; 65536];
                let _ = s.set_read_timeout(Some(Duration::from_millis(300)));
                let _ = s.read(&mut buf);
                count.fetch_add(1, Ordering::SeqCst);
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
        });
        (url, seen)
    }

    fn finished() -> Event {
        Event::RunFinished {
            outcome: "completed".into(),
            exit_code: 0,
        }
    }

    #[test]
    fn a_5xx_is_retried_then_reported_with_its_status() {
        let (url, seen) = server("500 Internal Server Error");
        let mut n = Notifier::start(settings(url, 1), Context::default());
        n.observe(0, &finished());
        let failures = n.settle(Duration::from_secs(10));
        assert_eq!(
            seen.load(Ordering::SeqCst),
            2,
            "first attempt and one retry"
        );
        assert_eq!(failures.len(), 1, "{failures:?}");
        assert_eq!(failures[0].attempts, 2);
        assert!(failures[0].error.contains("HTTP 500"), "{failures:?}");
        assert!(failures[0].note().contains("the run goes on"));
    }

    #[test]
    fn a_2xx_is_delivered_once() {
        let (url, seen) = server("202 Accepted");
        let mut n = Notifier::start(settings(url, 3), Context::default());
        n.observe(0, &finished());
        assert_eq!(n.settle(Duration::from_secs(10)), vec![]);
        assert_eq!(seen.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn observe_never_waits_and_a_full_queue_drops_with_a_failure() {
        // Accepted into the backlog, never answered: every attempt hangs
        // until its timeout.
        let hang = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", hang.local_addr().unwrap());
        let mut n = Notifier::start(settings(url, 0), Context::default());
        let started = std::time::Instant::now();
        for _ in 0..QUEUE + 5 {
            n.observe(0, &finished());
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "observe waited: {:?}",
            started.elapsed()
        );
        let dropped = n.failures();
        assert!(
            !dropped.is_empty() && dropped.iter().all(|f| f.error.contains("dropped")),
            "{dropped:?}"
        );
        let left = n.settle(Duration::from_millis(100));
        assert!(
            left.iter().any(|f| f.error.contains("still undelivered")),
            "{left:?}"
        );
    }

    #[test]
    fn events_not_asked_for_are_not_sent() {
        let (url, seen) = server("200 OK");
        let mut s = settings(url, 0);
        s.events = vec![Kind::Halt];
        let mut n = Notifier::start(s, Context::default());
        n.observe(0, &finished());
        assert_eq!(n.settle(Duration::from_secs(5)), vec![]);
        assert_eq!(seen.load(Ordering::SeqCst), 0);
    }
}
