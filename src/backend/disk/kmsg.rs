//! The kernel's own I/O error reports, read from `/dev/kmsg`.
//!
//! When a block request fails, the block layer logs one record naming the
//! disk and the status: `I/O error, dev sda, sector 34816 op 0x1:(WRITE)
//! ...`, `critical medium error, dev nvme0n1, sector ...` (older kernels put
//! `blk_update_request: ` or `print_req_error: ` in front). SMART
//! pass-through commands never produce one (the block layer does not log
//! failed pass-through requests), so unlike the SCSI layer's `ioerr_cnt`
//! these records cannot be raised by our own probes. Each one counts as
//! `kernel.io_errors` on the disk it names, from the moment the log was
//! opened; the guard halts on any rise on a survivor.
//!
//! The log is opened non-blocking at the first look and positioned at its
//! end (`SEEK_END` on /dev/kmsg skips the records already there: what
//! happened before the run is judged from absolute counters, not from old
//! log lines). A thread reads it every 50 ms and keeps the I/O error
//! records, so a long pause between looks (a prompt) cannot let the ring
//! buffer overrun unread; every look reads what is left and counts the
//! records that arrived since. Under
//! `--sysroot` the path is a plain file in the tree, read the same way, so
//! tests append records to it between looks.
//!
//! Fail closed: a kernel log that cannot be opened or read, or whose ring
//! buffer overran between two looks (records lost: an I/O error report may
//! have been among them), is a problem in that look, never "no errors".

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::health::model::Problem;

/// The counter name in snapshots.
pub const COUNTER: &str = "kernel.io_errors";

/// The probe name in problems.
pub const PROBE: &str = "kernel-log";

/// Block statuses that say nothing about the drive's health: the request
/// asked for something the device does not do, or the kernel ran short of
/// resources and retried. Every other status counts, including ones this
/// list has never heard of (fail closed).
const NOT_DRIVE_ERRORS: [&str; 5] = [
    "operation not supported",
    "kernel resource",
    "device resource",
    "nonblocking retry",
    "dm internal retry",
];

/// One kernel log record is at most 8 KiB of text (`CONSOLE_EXT_LOG_MAX`);
/// a read from /dev/kmsg with a smaller buffer fails.
const RECORD_MAX: usize = 16 * 1024;

/// A block-layer error record: the disk and the status it failed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoErrorRecord {
    pub disk: String,
    pub status: String,
}

/// The kernel log, counted per disk since it was opened.
///
/// A thread reads the log every [`READ_EVERY`] and keeps the I/O error
/// records it finds (only those, at most [`MAX_PENDING`]), so a long pause
/// between looks (a technician reading a prompt) cannot let the kernel's
/// ring buffer overrun before swapguard has read it; each look then reads
/// what is left itself and counts. Records are counted at the look, against
/// the disks present then, as before.
#[derive(Debug)]
pub struct KernelLog {
    path: PathBuf,
    reader: Arc<Mutex<Reader>>,
    stop: Arc<AtomicBool>,
    counts: HashMap<String, u64>,
}

/// What the reading thread and the looks share.
#[derive(Debug)]
struct Reader {
    path: PathBuf,
    file: Result<File, String>,
    /// Bytes after the last complete line (only a plain file splits
    /// records; /dev/kmsg returns one whole record per read).
    partial: Vec<u8>,
    /// I/O error records read and not yet counted.
    pending: Vec<IoErrorRecord>,
    /// Records were lost (the ring buffer overran, or `pending` was full).
    lost: bool,
    /// Reading failed; nothing more is read.
    failed: Option<String>,
}

/// How often the thread reads the log.
const READ_EVERY: Duration = Duration::from_millis(50);
/// I/O error records kept between two looks; past this they count as lost.
const MAX_PENDING: usize = 100_000;

impl Reader {
    /// Read everything available now.
    fn read_available(&mut self) {
        if self.failed.is_some() {
            return;
        }
        let Ok(file) = &mut self.file else {
            return;
        };
        let mut text = std::mem::take(&mut self.partial);
        let mut buf = vec![0u8; RECORD_MAX];
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => text.extend_from_slice(&buf[..n]),
                Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) if err.kind() == ErrorKind::BrokenPipe => self.lost = true,
                Err(err) => {
                    self.failed = Some(format!(
                        "cannot read the kernel log `{}`: {err}",
                        self.path.display()
                    ));
                    break;
                }
            }
        }
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.partial = text.split_off(complete);
        for line in String::from_utf8_lossy(&text).lines() {
            if let Some(record) = parse_record(line) {
                if self.pending.len() < MAX_PENDING {
                    self.pending.push(record);
                } else {
                    self.lost = true;
                }
            }
        }
    }
}

impl Drop for KernelLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl KernelLog {
    /// Open `path`, skip what is already in it, and start reading it.
    pub fn open(path: &Path) -> KernelLog {
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOFOLLOW)
            .open(path)
            .and_then(|mut file| file.seek(SeekFrom::End(0)).map(|_| file))
            .map_err(|err| {
                format!(
                    "cannot open the kernel log `{}`: {err}; swapguard reads the kernel's I/O \
                     error reports there and needs it (run as root on the host itself)",
                    path.display()
                )
            });
        let opened = file.is_ok();
        let reader = Arc::new(Mutex::new(Reader {
            path: path.to_path_buf(),
            file,
            partial: Vec::new(),
            pending: Vec::new(),
            lost: false,
            failed: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        if opened {
            let (reader, stop) = (Arc::clone(&reader), Arc::clone(&stop));
            // If the thread cannot start, every look still reads the log
            // itself: only the protection against long pauses is lost.
            let _ = std::thread::Builder::new()
                .name("kernel-log".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        lock(&reader).read_available();
                        std::thread::sleep(READ_EVERY);
                    }
                });
        }
        KernelLog {
            path: path.to_path_buf(),
            reader,
            stop,
            counts: HashMap::new(),
        }
    }

    /// Count the records that arrived since the last look, for the disks in
    /// `present` (kernel names). Records naming other disks (gone, or not
    /// disks of the array) are dropped, and so are the counts of disks no
    /// longer present: a name that comes back belongs to a new device.
    /// Returns the problem of this look, if any.
    pub fn drain(&mut self, present: &BTreeSet<String>) -> Option<Problem> {
        let (records, lost, failed, file_error) = {
            let mut reader = lock(&self.reader);
            reader.read_available();
            (
                std::mem::take(&mut reader.pending),
                std::mem::take(&mut reader.lost),
                reader.failed.clone(),
                reader.file.as_ref().err().cloned(),
            )
        };
        if let Some(message) = file_error {
            return Some(problem(&self.path, message));
        }
        for record in records {
            if present.contains(&record.disk) {
                *self.counts.entry(record.disk).or_insert(0) += 1;
            }
        }
        self.counts.retain(|disk, _| present.contains(disk));
        if let Some(message) = failed {
            return Some(problem(&self.path, message));
        }
        lost.then(|| {
            problem(
                &self.path,
                format!(
                    "kernel log records were overwritten before swapguard read them from `{}`: \
                 an I/O error report may have been among them",
                    self.path.display()
                ),
            )
        })
    }

    /// I/O errors logged for `disk` since the log was opened.
    pub fn count(&self, disk: &str) -> u64 {
        self.counts.get(disk).copied().unwrap_or(0)
    }

    /// Whether the log could be opened (its counter is then reported).
    pub fn is_open(&self) -> bool {
        lock(&self.reader).file.is_ok()
    }

    /// Whether the reading thread holds I/O error records (or a loss or a
    /// failure) the next look has not counted yet: what wakes a polling
    /// wait (btrfs) before its next look at sysfs.
    pub fn pending(&self) -> bool {
        let reader = lock(&self.reader);
        !reader.pending.is_empty() || reader.lost || reader.failed.is_some()
    }
}

/// The reader, even if a thread panicked holding it (its state is plain
/// data, still consistent between two reads).
fn lock(reader: &Mutex<Reader>) -> std::sync::MutexGuard<'_, Reader> {
    reader
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn problem(path: &Path, message: String) -> Problem {
    Problem {
        probe: PROBE.to_string(),
        subject: path.display().to_string(),
        message,
    }
}

/// The block-layer error in one kernel log line, if it is one.
///
/// Accepts a /dev/kmsg record (`3,1207,52714590,-;I/O error, dev sdb, ...`),
/// its dictionary lines (` SUBSYSTEM=...`, never a match) and plain dmesg
/// text (`[   52.714590] I/O error, dev sdb, ...`).
pub fn parse_record(line: &str) -> Option<IoErrorRecord> {
    if line.starts_with(' ') {
        return None; // a dictionary line of the record before
    }
    let message = match line.split_once(';') {
        Some((header, rest)) if header.split(',').all(|f| !f.is_empty()) => rest,
        _ => line,
    };
    let (head, tail) = message.split_once(" error, dev ")?;
    // `blk_update_request: I/O error` (before 5.18), `[  1.2] I/O error`.
    let status = head.rsplit(": ").next().unwrap_or(head);
    let status = status.rsplit("] ").next().unwrap_or(status).trim();
    let (disk, rest) = tail.split_once(',')?;
    if !rest.trim_start().starts_with("sector ") {
        return None;
    }
    let disk = whole_disk(disk.trim())?;
    if status.is_empty() || NOT_DRIVE_ERRORS.contains(&status) {
        return None;
    }
    Some(IoErrorRecord {
        disk,
        status: status.to_string(),
    })
}

/// The name /sys/block knows the disk by. With native NVMe multipath the
/// request goes through the path device `nvme0c1n1`; the disk is `nvme0n1`.
fn whole_disk(name: &str) -> Option<String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    if let Some(rest) = name.strip_prefix("nvme")
        && let Some((subsys, path)) = rest.split_once('c')
        && let Some((ctrl, ns)) = path.split_once('n')
        && [subsys, ctrl, ns]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Some(format!("nvme{subsys}n{ns}"));
    }
    Some(name.to_string())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn block_layer_error_records() {
        let sdb = |status: &str| {
            Some(IoErrorRecord {
                disk: "sdb".into(),
                status: status.into(),
            })
        };
        for (line, want) in [
            // Linux 6.1 (the lab's kernel): no function name in front.
            (
                "3,1207,52714590,-;I/O error, dev sdb, sector 34816 op 0x1:(WRITE) flags 0x8800 phys_seg 1 prio class 2",
                sdb("I/O"),
            ),
            (
                "3,1300,61000000,-;critical medium error, dev sdb, sector 34816 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2",
                sdb("critical medium"),
            ),
            (
                "3,88,9000000,-,caller=T12;timeout error, dev sdb, sector 8 op 0x0:(READ) flags 0x80700 phys_seg 1 prio class 0",
                sdb("timeout"),
            ),
            // Before 5.18, and plain dmesg text.
            (
                "3,20,1000,-;blk_update_request: I/O error, dev sdb, sector 2048 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 0",
                sdb("I/O"),
            ),
            (
                "[ 1234.567890] print_req_error: critical target error, dev sdb, sector 7",
                sdb("critical target"),
            ),
            // Multipath NVMe path device: the disk /sys/block shows.
            (
                "3,5,6,-;I/O error, dev nvme0c1n1, sector 0 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2",
                Some(IoErrorRecord {
                    disk: "nvme0n1".into(),
                    status: "I/O".into(),
                }),
            ),
            // Not drive errors, or not block-layer records at all.
            (
                "4,9,10,-;operation not supported error, dev sdb, sector 0 op 0x9:(WRITE_ZEROES) flags 0x800 phys_seg 0 prio class 2",
                None,
            ),
            (
                "3,1208,52714600,-;Buffer I/O error on dev sdb1, logical block 4352, lost async page write",
                None,
            ),
            (
                "3,1209,52714700,-;md/raid1:md0: Disk failure on sdb, disabling device.",
                None,
            ),
            (" SUBSYSTEM=scsi", None),
            (" DEVICE=+scsi:0:0:1:0", None),
            ("3,1,2,-;I/O error, dev sdb", None),
            ("3,1,2,-;I/O error, dev ../x, sector 1", None),
        ] {
            assert_eq!(parse_record(line), want, "{line}");
        }
    }

    #[test]
    fn lab_capture_of_a_survivor_read_error() {
        // tests/fixtures/md/kmsg/: the guest console of the lab's
        // scsi-survivor-errors scenario (virtio-scsi, Linux 6.1): the SCSI
        // layer's sense lines, the pulled target's failed cache flush, and
        // one block-layer record for the read that failed after retries.
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/md/kmsg/lab-scsi-survivor-read-error.txt"),
        )
        .unwrap();
        let found: Vec<IoErrorRecord> = text.lines().filter_map(parse_record).collect();
        assert_eq!(
            found,
            [IoErrorRecord {
                disk: "sdb".into(),
                status: "I/O".into()
            }]
        );
    }

    fn log_file() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kmsg");
        std::fs::write(
            &path,
            "3,1,100,-;I/O error, dev sda, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n",
        )
        .unwrap();
        (dir, path)
    }

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn counts_per_disk_from_the_moment_it_is_opened() {
        let (_dir, path) = log_file();
        let present: BTreeSet<String> = ["sda".into(), "sdb".into()].into();
        let mut log = KernelLog::open(&path);
        // What was in the log before the run is skipped.
        assert_eq!(log.drain(&present), None);
        assert_eq!(log.count("sda"), 0);
        append(
            &path,
            "3,2,200,-;I/O error, dev sdb, sector 8 op 0x1:(WRITE) flags 0x0 phys_seg 1 prio class 2\n \
             SUBSYSTEM=block\n3,3,300,-;I/O error, dev sdc, sector 8 op 0x1:(WRITE) flags 0x0\n3,4,400,-;critical medium error, dev sd",
        );
        assert_eq!(log.drain(&present), None);
        assert_eq!((log.count("sda"), log.count("sdb")), (0, 1));
        // The rest of a record split across two reads.
        append(
            &path,
            "b, sector 16 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n",
        );
        assert_eq!(log.drain(&present), None);
        assert_eq!(log.count("sdb"), 2);
        // A disk that left is forgotten.
        let only_a: BTreeSet<String> = ["sda".into()].into();
        assert_eq!(log.drain(&only_a), None);
        assert_eq!(log.count("sdb"), 0);
    }

    /// Between looks (a technician reading a prompt for minutes) the log
    /// is still read, so a busy kernel cannot overrun its ring buffer before
    /// swapguard has seen the records.
    #[test]
    fn the_log_is_read_between_looks() {
        let (_dir, path) = log_file();
        let mut log = KernelLog::open(&path);
        append(
            &path,
            "3,1,2,-;I/O error, dev sda, sector 8 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2\n",
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while lock(&log.reader).pending.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the record was not read without a look"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let present: BTreeSet<String> = ["sda".to_string()].into();
        assert_eq!(log.drain(&present), None);
        assert_eq!(log.count("sda"), 1);
    }

    #[test]
    fn an_unopenable_log_is_a_problem_at_every_look() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = KernelLog::open(&dir.path().join("dev/kmsg"));
        assert!(!log.is_open());
        for _ in 0..2 {
            let p = log.drain(&BTreeSet::new()).expect("a problem");
            assert_eq!(p.probe, PROBE);
            assert!(
                p.message.contains("cannot open the kernel log"),
                "{}",
                p.message
            );
        }
    }

    #[test]
    fn the_real_kmsg_opens_at_its_end() {
        // On a host where this user may read it: nothing old is counted.
        let path = Path::new("/dev/kmsg");
        if File::open(path).is_err() {
            return;
        }
        let mut log = KernelLog::open(path);
        let present: BTreeSet<String> = ["sda".into()].into();
        assert_eq!(log.drain(&present), None);
        assert_eq!(log.count("sda"), 0);
    }
}
