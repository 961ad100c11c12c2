//! Kernel uevents: the kernel's own announcements that a device came, went
//! or changed, read from a `NETLINK_KOBJECT_UEVENT` socket.
//!
//! A watch polls a [`UeventSource`]'s descriptor beside its own files, so a
//! pulled drive ends the wait the moment the kernel removes it instead of at
//! the next timed poll, and an NVMe controller's health event (`change` with
//! `NVME_AEN=`) can start a SMART read of that drive at once.
//!
//! Events wake a watch; the look that follows reads sysfs and SMART afresh
//! and decides from those. So a missed event (a full socket buffer, no
//! socket at all) costs at most one timed poll. One event is also a fact of
//! its own: an NVMe controller's SMART/health asynchronous event (type 1 in
//! `NVME_AEN`'s low three bits) is the drive saying a critical warning was
//! raised, so the watch counts it ([`HEALTH_EVENT_COUNTER`]) and the guard
//! halts on the count's rise at once, without waiting for the `smartctl`
//! read it also starts. Names in an event are matched against disks a look
//! found, never turned into a path.
//!
//! Only the kernel is listened to: a message counts when its sender's port
//! id is 0 and it came on multicast group 1, which user space cannot forge
//! (udev's re-broadcast is group 2 and carries a `libudev` header).
//! Messages are read into a fixed buffer (the kernel's own limit is 2 KiB),
//! with at most [`MAX_PER_DRAIN`] per wake and [`MAX_KEYS`] keys each.
//!
//! Message format (`lib/kobject_uevent.c`): `ACTION@DEVPATH`, then
//! `KEY=VALUE` pairs, each ended by a NUL byte. Captured payloads are in
//! tests/fixtures/uevent/.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, NetlinkAddr, SockFlag, SockProtocol, SockType, bind, recvfrom, setsockopt,
    socket, sockopt,
};

/// Bytes read per message; a longer one is not the kernel's and is dropped.
pub const MAX_MESSAGE: usize = 8192;
/// Messages read per wake; the rest wait for the next one.
pub const MAX_PER_DRAIN: usize = 256;
/// Keys kept per message.
pub const MAX_KEYS: usize = 64;
/// The kernel's multicast group for uevents.
const KERNEL_GROUP: u32 = 1;
/// Receive buffer asked for, so a burst (a pulled drive sends 7 events at
/// once) is not dropped while a look runs.
const RECEIVE_BUFFER: usize = 1 << 20;

/// Debug builds only: read uevents from a Unix datagram socket bound at this
/// path instead of the kernel's (the whole-process tests' fake kernel).
pub const TEST_SOCKET_ENV: &str = "SWAPGUARD_TEST_UEVENT_SOCKET";

/// A drive's count of SMART/health asynchronous events its NVMe controller
/// sent while this run listened: a cheap counter, so a rise on a survivor
/// halts like any other.
pub const HEALTH_EVENT_COUNTER: &str = "nvme.health_events";

/// The SMART/health events heard per whole disk during a run. A count
/// belongs to the drive that had the name when the event came: it goes
/// when that disk is removed or a look no longer finds it, so a new drive
/// that takes the name later (the target's replacement, often) starts at
/// zero instead of inheriting the failing drive's events.
#[derive(Debug, Default)]
pub struct HealthEventCounts(std::collections::BTreeMap<String, u64>);

impl HealthEventCounts {
    /// A SMART/health event came for the controller serving `disks`.
    pub fn heard<'a>(&mut self, disks: impl IntoIterator<Item = &'a String>) {
        for disk in disks {
            *self.0.entry(disk.clone()).or_insert(0) += 1;
        }
    }

    /// What `heard` says about disks leaving: their counts go.
    pub fn forget_removed(&mut self, heard: &Heard) {
        for event in heard.events.iter().filter(|e| e.action == Action::Remove) {
            if let Some(disk) = event.disk() {
                self.0.remove(disk);
            }
        }
    }

    /// Keep only the disks a look found.
    pub fn retain(&mut self, present: &std::collections::BTreeSet<String>) {
        self.0.retain(|disk, _| present.contains(disk));
    }

    pub fn count(&self, disk: &str) -> u64 {
        self.0.get(disk).copied().unwrap_or(0)
    }
}

/// `NVME_AEN`'s event type for SMART/health status (NVMe base
/// specification, Asynchronous Event Request completion, bits 2:0).
const AEN_TYPE_SMART_HEALTH: u32 = 1;

/// What happened to the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Add,
    Remove,
    Change,
    /// `bind`, `unbind`, `move`, `online`, `offline`.
    Other(String),
}

/// One kernel uevent, with the keys a watch uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uevent {
    pub action: Action,
    /// Under /sys: `/devices/pci0000:00/0000:00:04.0/nvme/nvme0/nvme0n1`.
    pub devpath: String,
    /// `block`, `nvme`, `scsi`, `pci`, …
    pub subsystem: String,
    /// `nvme0n1`, `sda` (block devices; `nvme0` for a controller).
    pub devname: Option<String>,
    /// `disk` or `partition` for block devices.
    pub devtype: Option<String>,
    /// `NVME_AEN=0x020001`: an NVMe asynchronous event (SMART/health).
    pub nvme_aen: Option<String>,
}

impl Uevent {
    /// The whole disk this event is about (`nvme0n1`, `sda`), for a block
    /// device of type `disk`.
    pub fn disk(&self) -> Option<&str> {
        if self.subsystem != "block" || self.devtype.as_deref() != Some("disk") {
            return None;
        }
        self.devname
            .as_deref()
            .or_else(|| self.devpath.rsplit('/').next())
            .filter(|n| !n.is_empty())
    }

    /// The NVMe controller (`nvme0`) for an event of the `nvme` subsystem.
    pub fn nvme_controller(&self) -> Option<&str> {
        if self.subsystem != "nvme" {
            return None;
        }
        self.devpath.rsplit('/').next().filter(|n| !n.is_empty())
    }

    /// A device or controller left: the drive may be gone.
    pub fn is_removal(&self) -> bool {
        self.action == Action::Remove && (self.disk().is_some() || self.nvme_controller().is_some())
    }

    /// A whole disk arrived.
    pub fn is_disk_added(&self) -> bool {
        self.action == Action::Add && self.disk().is_some()
    }

    /// An NVMe controller's health event: the controller whose drives
    /// should be read now.
    pub fn health_event(&self) -> Option<&str> {
        if self.action == Action::Change && self.nvme_aen.is_some() {
            self.nvme_controller()
        } else {
            None
        }
    }

    /// Whether this health event is of the SMART/health type (a critical
    /// warning raised), not an error-status, notice or vendor one. The
    /// kernel writes the completion's result as `NVME_AEN=%#08x`
    /// (`0x020001`: log page 2, information 0, type 1).
    pub fn is_smart_health(&self) -> bool {
        self.health_event().is_some()
            && self
                .nvme_aen
                .as_deref()
                .and_then(aen_result)
                .is_some_and(|result| result & 0x7 == AEN_TYPE_SMART_HEALTH)
    }
}

/// `NVME_AEN`'s value as a number: `0x020001` (hex with its prefix, as the
/// kernel writes it). `None` for anything else.
fn aen_result(value: &str) -> Option<u32> {
    let digits = value
        .strip_prefix("0x")
        .or_else(|| value.strip_prefix("0X"))?;
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// Whether block device `disk` is served by NVMe controller `controller`,
/// as sysfs under `sys_block` says: its `device` link names the controller.
/// A namespace is named after its subsystem's instance, not its
/// controller's: a drive put back in the lab came up as `nvme0n1` under
/// controller `nvme2`, and its health event (about `nvme2`) was taken for
/// another drive's. Without the link, the names decide
/// ([`is_namespace_of`]).
pub fn served_by(sys_block: &std::path::Path, disk: &str, controller: &str) -> bool {
    match std::fs::read_link(sys_block.join(disk).join("device")) {
        Ok(target) => target
            .file_name()
            .is_some_and(|name| name == std::ffi::OsStr::new(controller)),
        Err(_) => is_namespace_of(disk, controller),
    }
}

/// Whether `disk` (`nvme0n1`, `nvme0c1n1`) is a namespace of NVMe
/// controller `controller` (`nvme0`) by its name.
pub fn is_namespace_of(disk: &str, controller: &str) -> bool {
    let Some(rest) = disk.strip_prefix(controller) else {
        return false;
    };
    let rest = match rest.strip_prefix('c') {
        Some(after) => after.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    rest.strip_prefix('n')
        .is_some_and(|ns| !ns.is_empty() && ns.bytes().all(|b| b.is_ascii_digit()))
}

/// Parse one message. Errors say what is wrong with it; a watch drops such
/// a message (and still looks).
pub fn parse(bytes: &[u8]) -> Result<Uevent, String> {
    if bytes.starts_with(b"libudev\0") {
        return Err("a udev message, not the kernel's".into());
    }
    let mut fields = bytes.split(|&b| b == 0).filter(|f| !f.is_empty());
    let header = fields.next().ok_or("empty message")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not UTF-8")?;
    let (head_action, head_path) = header
        .split_once('@')
        .ok_or_else(|| "no `ACTION@DEVPATH` header".to_string())?;
    let mut action = None;
    let mut devpath = None;
    let mut subsystem = None;
    let mut devname = None;
    let mut devtype = None;
    let mut nvme_aen = None;
    for (n, field) in fields.enumerate() {
        if n == MAX_KEYS {
            break;
        }
        let Ok(field) = std::str::from_utf8(field) else {
            continue;
        };
        let Some((key, value)) = field.split_once('=') else {
            continue;
        };
        let value = value.to_string();
        match key {
            "ACTION" => action = Some(value),
            "DEVPATH" => devpath = Some(value),
            "SUBSYSTEM" => subsystem = Some(value),
            "DEVNAME" => devname = Some(value),
            "DEVTYPE" => devtype = Some(value),
            "NVME_AEN" => nvme_aen = Some(value),
            _ => {}
        }
    }
    let action = action.unwrap_or_else(|| head_action.to_string());
    let devpath = devpath.unwrap_or_else(|| head_path.to_string());
    if action != head_action || devpath != head_path {
        return Err(format!(
            "header `{header}` disagrees with ACTION/DEVPATH `{action}@{devpath}`"
        ));
    }
    let subsystem = subsystem.ok_or("no SUBSYSTEM")?;
    // DEVNAME is relative to /dev; keep the last component only.
    let devname = devname.map(|d| d.rsplit('/').next().unwrap_or_default().to_string());
    Ok(Uevent {
        action: match action.as_str() {
            "add" => Action::Add,
            "remove" => Action::Remove,
            "change" => Action::Change,
            _ => Action::Other(action),
        },
        devpath,
        subsystem,
        devname,
        devtype,
        nvme_aen,
    })
}

/// What one drain read.
#[derive(Debug, Default)]
pub struct Heard {
    pub events: Vec<Uevent>,
    /// Messages were dropped (buffer overflow, unreadable): look anyway.
    pub lost: bool,
}

impl Heard {
    /// Whether a watch should look now: a disk or controller came or
    /// went, an NVMe controller reported its health, or messages were lost
    /// (one of them may have been any of these).
    pub fn wakes_a_watch(&self) -> bool {
        self.lost
            || self
                .events
                .iter()
                .any(|e| e.is_removal() || e.is_disk_added() || e.health_event().is_some())
    }
}

/// The kernel sends a disk's `remove` event before it takes the disk's
/// directory out of `/sys/block`: a look made at once may still find the
/// disk. Wait (up to `max`, checking every 2 ms) until every whole disk
/// `heard` says was removed is gone from `sys_block`. A name that is not
/// a plain file name is never made a path.
pub fn settle_removals(heard: &Heard, sys_block: &Path, max: std::time::Duration) {
    let until = std::time::Instant::now() + max;
    let removed: Vec<&str> = heard
        .events
        .iter()
        .filter(|e| e.action == Action::Remove)
        .filter_map(Uevent::disk)
        .filter(|name| is_plain_name(name))
        .collect();
    while removed
        .iter()
        .any(|name| std::fs::symlink_metadata(sys_block.join(name)).is_ok())
        && std::time::Instant::now() < until
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// A single path component: not empty, not `.` or `..`, no `/` or NUL.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

/// What the technician is told once when a watch cannot hear the
/// kernel's device events (`why`: the error opening them).
pub fn unavailable_notice(why: &str) -> String {
    format!(
        "kernel device events are not available ({why}): a drive that vanishes is \
         found by the next timed poll instead"
    )
}

/// Block up to `timeout` until `source` has messages, then read them. For
/// a watch with nothing else to poll (btrfs reads sysfs on a timer). A
/// wait interrupted by a signal returns nothing heard.
pub fn wait_on(source: &mut dyn UeventSource, timeout: std::time::Duration) -> Result<Heard> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let ready = {
        let mut fds = [PollFd::new(source.fd(), PollFlags::POLLIN)];
        let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(n) => n > 0,
            Err(Errno::EINTR) => false,
            Err(err) => return Err(err).context("cannot poll the kernel's device events"),
        }
    };
    Ok(if ready {
        source.drain()
    } else {
        Heard::default()
    })
}

/// Somewhere uevents come from: the kernel, or a test's fake.
pub trait UeventSource: Send {
    /// Readable when messages are waiting.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Read what is waiting, without blocking.
    fn drain(&mut self) -> Heard;
}

impl std::fmt::Debug for dyn UeventSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UeventSource")
    }
}

/// The kernel's uevent broadcast.
pub struct KernelUevents {
    fd: OwnedFd,
}

impl KernelUevents {
    /// Join the kernel's uevent group. Fails without permission or on a
    /// kernel without netlink uevents.
    pub fn open() -> Result<KernelUevents> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .context("cannot open a kernel uevent socket")?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP))
            .context("cannot join the kernel's uevent group")?;
        // Best effort: the default buffer still works, bursts may be lost.
        let _ = setsockopt(&fd, sockopt::RcvBuf, &RECEIVE_BUFFER);
        Ok(KernelUevents { fd })
    }
}

impl UeventSource for KernelUevents {
    fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn drain(&mut self) -> Heard {
        let mut heard = Heard::default();
        let mut buf = vec![0u8; MAX_MESSAGE];
        for _ in 0..MAX_PER_DRAIN {
            match recvfrom::<NetlinkAddr>(self.fd.as_raw_fd(), &mut buf) {
                Ok((n, from)) => {
                    let kernel = from.is_some_and(|a| a.pid() == 0 && a.groups() == KERNEL_GROUP);
                    if !kernel || n >= buf.len() {
                        continue;
                    }
                    match parse(&buf[..n]) {
                        Ok(event) => heard.events.push(event),
                        Err(_) => heard.lost = true,
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                // ENOBUFS: the kernel dropped messages for us.
                Err(_) => {
                    heard.lost = true;
                    break;
                }
            }
        }
        heard
    }
}

/// A fake kernel for whole-process tests: every datagram on a Unix socket
/// counts as a kernel message.
pub struct DatagramUevents {
    socket: UnixDatagram,
}

impl DatagramUevents {
    pub fn bind(path: &Path) -> Result<DatagramUevents> {
        let socket = UnixDatagram::bind(path)
            .with_context(|| format!("cannot bind `{}`", path.display()))?;
        socket.set_nonblocking(true)?;
        Ok(DatagramUevents { socket })
    }

    /// A connected pair: the source, and the end a test sends on.
    pub fn pair() -> Result<(DatagramUevents, UnixDatagram)> {
        let (ours, theirs) = UnixDatagram::pair()?;
        ours.set_nonblocking(true)?;
        Ok((DatagramUevents { socket: ours }, theirs))
    }
}

impl UeventSource for DatagramUevents {
    fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    fn drain(&mut self) -> Heard {
        let mut heard = Heard::default();
        let mut buf = vec![0u8; MAX_MESSAGE];
        for _ in 0..MAX_PER_DRAIN {
            match self.socket.recv(&mut buf) {
                Ok(n) if n < buf.len() => match parse(&buf[..n]) {
                    Ok(event) => heard.events.push(event),
                    Err(_) => heard.lost = true,
                },
                Ok(_) => heard.lost = true,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    heard.lost = true;
                    break;
                }
            }
        }
        heard
    }
}

/// The uevent source of a watch: the kernel's (in debug builds, the test
/// socket named by [`TEST_SOCKET_ENV`] when it is set).
pub fn open() -> Result<Box<dyn UeventSource>> {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os(TEST_SOCKET_ENV) {
        return Ok(Box::new(DatagramUevents::bind(Path::new(&path))?));
    }
    Ok(Box::new(KernelUevents::open()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/uevent")
            .join(name);
        std::fs::read(&path).unwrap()
    }

    /// An event as the kernel formats it.
    pub(crate) fn message(action: &str, devpath: &str, keys: &[&str]) -> Vec<u8> {
        let mut out = format!("{action}@{devpath}\0ACTION={action}\0DEVPATH={devpath}\0");
        for key in keys {
            out.push_str(key);
            out.push('\0');
        }
        out.into_bytes()
    }

    #[test]
    fn captured_loop_change_parses() {
        let event = parse(&fixture("loop0-change.bin")).unwrap();
        assert_eq!(event.action, Action::Change);
        assert_eq!(event.devpath, "/devices/virtual/block/loop0");
        assert_eq!(event.subsystem, "block");
        assert_eq!(event.disk(), Some("loop0"));
        assert!(!event.is_removal() && !event.is_disk_added());
        assert_eq!(event.health_event(), None);
        let media = parse(&fixture("loop0-change-media.bin")).unwrap();
        assert_eq!(media.devname.as_deref(), Some("loop0"));
    }

    #[test]
    fn nvme_namespace_remove_is_a_removal_of_that_disk() {
        let event = parse(&message(
            "remove",
            "/devices/pci0000:00/0000:00:04.0/nvme/nvme1/nvme1n1",
            &[
                "SUBSYSTEM=block",
                "MAJOR=259",
                "MINOR=1",
                "DEVNAME=nvme1n1",
                "DEVTYPE=disk",
                "SEQNUM=2345",
            ],
        ))
        .unwrap();
        assert!(event.is_removal());
        assert_eq!(event.disk(), Some("nvme1n1"));
    }

    #[test]
    fn sata_and_scsi_disks_are_disks_and_partitions_are_not() {
        let sata = parse(&message(
            "add",
            "/devices/pci0000:00/0000:00:1f.2/ata3/host2/target2:0:0/2:0:0:0/block/sda",
            &["SUBSYSTEM=block", "DEVNAME=sda", "DEVTYPE=disk"],
        ))
        .unwrap();
        assert!(sata.is_disk_added());
        assert_eq!(sata.disk(), Some("sda"));
        let scsi = parse(&message(
            "remove",
            "/devices/pci0000:00/0000:00:05.0/virtio2/host3/target3:0:1/3:0:1:0/block/sdc",
            &["SUBSYSTEM=block", "DEVNAME=sdc", "DEVTYPE=disk"],
        ))
        .unwrap();
        assert!(scsi.is_removal());
        assert_eq!(scsi.disk(), Some("sdc"));
        let part = parse(&message(
            "remove",
            "/devices/virtual/block/sda/sda1",
            &["SUBSYSTEM=block", "DEVNAME=sda1", "DEVTYPE=partition"],
        ))
        .unwrap();
        assert!(!part.is_removal());
    }

    #[test]
    fn nvme_aen_change_names_the_controller() {
        // As seen in the lab (lab-notes.md): `change …/nvme/nvme0` with
        // NVME_AEN=0x020001 after the AEN configuration was enabled.
        let event = parse(&message(
            "change",
            "/devices/pci0000:00/0000:00:04.0/nvme/nvme0",
            &[
                "SUBSYSTEM=nvme",
                "MAJOR=241",
                "MINOR=0",
                "DEVNAME=nvme0",
                "NVME_AEN=0x020001",
            ],
        ))
        .unwrap();
        assert_eq!(event.health_event(), Some("nvme0"));
        assert!(event.is_smart_health());
        assert!(is_namespace_of("nvme0n1", "nvme0"));
        assert!(is_namespace_of("nvme0c0n12", "nvme0"));
        assert!(!is_namespace_of("nvme10n1", "nvme1"));
        assert!(!is_namespace_of("nvme0", "nvme0"));
        assert!(!is_namespace_of("nvme0n1p1", "nvme0"));
    }

    /// Found in the lab (tests/lab/sidebyside.py): after the survivor was
    /// pulled and put back it was `nvme0n1` under controller `nvme2`, and
    /// its critical-warning event woke the watch but read no drive's SMART,
    /// so the halt waited for the 10 s poll.
    #[test]
    fn regression_a_namespace_is_matched_to_its_controller_by_sysfs_not_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let sys_block = dir.path().join("sys/block");
        let devices = dir.path().join("sys/devices/pci0000:00/0000:00:03.0/nvme");
        for (disk, controller) in [("nvme0n1", "nvme2"), ("nvme1n1", "nvme1")] {
            std::fs::create_dir_all(devices.join(controller)).unwrap();
            std::fs::create_dir_all(sys_block.join(disk)).unwrap();
            std::os::unix::fs::symlink(
                devices.join(controller),
                sys_block.join(disk).join("device"),
            )
            .unwrap();
        }
        assert!(served_by(&sys_block, "nvme0n1", "nvme2"));
        assert!(!served_by(&sys_block, "nvme0n1", "nvme0"));
        assert!(served_by(&sys_block, "nvme1n1", "nvme1"));
        assert!(!served_by(&sys_block, "nvme1n1", "nvme2"));
        // No link (a captured tree without it): the names decide.
        assert!(served_by(&sys_block, "nvme3n1", "nvme3"));
        assert!(!served_by(&sys_block, "nvme3n1", "nvme2"));
    }

    #[test]
    fn controller_remove_is_a_removal() {
        let event = parse(&message(
            "remove",
            "/devices/pci0000:00/0000:00:04.0/nvme/nvme1",
            &["SUBSYSTEM=nvme", "DEVNAME=nvme1"],
        ))
        .unwrap();
        assert!(event.is_removal());
        assert_eq!(event.nvme_controller(), Some("nvme1"));
    }

    #[test]
    fn bad_messages_are_errors_not_panics() {
        assert!(parse(b"").is_err());
        assert!(parse(b"libudev\0\xfe\xed\xca\xfe").is_err());
        assert!(parse(b"no header here\0ACTION=add\0").is_err());
        assert!(parse(b"add@/x\0ACTION=remove\0DEVPATH=/x\0SUBSYSTEM=block\0").is_err());
        assert!(parse(b"add@/x\0ACTION=add\0DEVPATH=/x\0").is_err());
        assert!(parse(b"\xff@\xff\0").is_err());
        let mut long = b"add@/x\0ACTION=add\0DEVPATH=/x\0SUBSYSTEM=block\0".to_vec();
        for _ in 0..10_000 {
            long.extend_from_slice(b"K=V\0");
        }
        assert!(parse(&long).is_ok());
    }

    #[test]
    fn a_fake_source_reads_what_is_sent() {
        let (mut source, sender) = DatagramUevents::pair().unwrap();
        assert!(source.drain().events.is_empty());
        sender
            .send(&message(
                "remove",
                "/devices/virtual/block/sdb",
                &["SUBSYSTEM=block", "DEVNAME=sdb", "DEVTYPE=disk"],
            ))
            .unwrap();
        sender.send(b"garbage").unwrap();
        let heard = source.drain();
        assert_eq!(heard.events.len(), 1);
        assert!(heard.lost);
        assert!(heard.events[0].is_removal());
    }

    #[test]
    fn the_kernel_socket_opens_or_fails_with_a_reason() {
        match KernelUevents::open() {
            Ok(mut k) => {
                let _ = k.drain();
            }
            Err(e) => assert!(format!("{e:#}").contains("uevent")),
        }
    }

    /// Only a SMART/health event is a critical warning: an error-status
    /// event (type 0), a notice (type 2: a namespace changed, firmware
    /// activation) or a vendor one (type 7) starts a SMART read, nothing
    /// more; so does a value that is not the kernel's hex.
    #[test]
    fn only_a_smart_health_aen_is_a_critical_warning() {
        let event = |aen: &str| {
            parse(&message(
                "change",
                "/devices/pci0000:00/0000:00:04.0/nvme/nvme3",
                &[
                    "SUBSYSTEM=nvme",
                    "DEVNAME=nvme3",
                    &format!("NVME_AEN={aen}"),
                ],
            ))
            .unwrap()
        };
        for (aen, smart_health) in [
            ("0x020001", true),
            ("0x020101", true),
            ("0x020201", true),
            ("0x010000", false),
            ("0x040002", false),
            ("0x000007", false),
            ("0x", false),
            ("020001", false),
            ("0x1000000001", false),
            ("0xzz0001", false),
            ("", false),
        ] {
            let event = event(aen);
            assert_eq!(event.health_event(), Some("nvme3"), "{aen}");
            assert_eq!(event.is_smart_health(), smart_health, "{aen}");
        }
        // The same key on a block device's event is no controller's.
        let block = parse(&message(
            "change",
            "/devices/pci0000:00/0000:00:04.0/nvme/nvme3/nvme3n1",
            &[
                "SUBSYSTEM=block",
                "DEVNAME=nvme3n1",
                "DEVTYPE=disk",
                "NVME_AEN=0x020001",
            ],
        ))
        .unwrap();
        assert!(!block.is_smart_health());
    }

    /// What wakes a watch that has nothing else to poll (btrfs): a disk
    /// or controller leaving or a disk arriving, a health event, lost
    /// messages; not a loop device's media change nor a partition.
    #[test]
    fn only_what_a_watch_cares_about_wakes_it() {
        let (mut source, sender) = DatagramUevents::pair().unwrap();
        // Nothing sent: the wait times out with nothing heard.
        let heard = wait_on(&mut source, std::time::Duration::from_millis(1)).unwrap();
        assert!(heard.events.is_empty() && !heard.wakes_a_watch());
        let cases: [(Vec<u8>, bool); 5] = [
            (fixture("loop0-change.bin"), false),
            (
                message(
                    "add",
                    "/devices/pci0000:00/0000:00:05.0/block/sdc/sdc1",
                    &["SUBSYSTEM=block", "DEVNAME=sdc1", "DEVTYPE=partition"],
                ),
                false,
            ),
            (
                message(
                    "remove",
                    "/devices/pci0000:00/0000:00:05.0/block/sdb",
                    &["SUBSYSTEM=block", "DEVNAME=sdb", "DEVTYPE=disk"],
                ),
                true,
            ),
            (
                message(
                    "add",
                    "/devices/pci0000:00/0000:00:05.0/block/sdc",
                    &["SUBSYSTEM=block", "DEVNAME=sdc", "DEVTYPE=disk"],
                ),
                true,
            ),
            (
                message(
                    "change",
                    "/devices/pci0000:00/0000:00:04.0/nvme/nvme1",
                    &["SUBSYSTEM=nvme", "DEVNAME=nvme1", "NVME_AEN=0x020001"],
                ),
                true,
            ),
        ];
        for (bytes, wakes) in cases {
            sender.send(&bytes).unwrap();
            // A day's timeout: the message itself ends the wait.
            let heard = wait_on(&mut source, std::time::Duration::from_secs(86_400)).unwrap();
            assert_eq!(heard.events.len(), 1);
            assert_eq!(heard.wakes_a_watch(), wakes, "{:?}", heard.events[0]);
        }
        let lost = Heard {
            events: Vec::new(),
            lost: true,
        };
        assert!(lost.wakes_a_watch());
    }

    /// A look right after a `remove` event may still find the disk: the
    /// wait lasts until the disk's directory is gone (or the bound), and
    /// names that are not plain file names never become paths.
    #[test]
    fn settling_waits_for_the_removed_disk_to_leave_sys_block() {
        let dir = tempfile::TempDir::new().unwrap();
        let sys_block = dir.path().join("sys/block");
        std::fs::create_dir_all(sys_block.join("sdb")).unwrap();
        std::fs::create_dir_all(dir.path().join("sys/etc")).unwrap();
        let removal = |name: &str| {
            parse(&message(
                "remove",
                &format!("/devices/pci0000:00/0000:00:05.0/block/{name}"),
                &[
                    "SUBSYSTEM=block",
                    &format!("DEVNAME={name}"),
                    "DEVTYPE=disk",
                ],
            ))
            .unwrap()
        };
        let heard = Heard {
            events: vec![removal("sdb")],
            lost: false,
        };
        let gone = sys_block.join("sdb");
        let remover = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(30));
            std::fs::remove_dir_all(gone).unwrap();
        });
        // A day's bound: only the directory leaving ends the wait.
        settle_removals(&heard, &sys_block, std::time::Duration::from_secs(86_400));
        assert!(!sys_block.join("sdb").exists());
        remover.join().unwrap();
        // `../etc` would be a directory that stays: never looked at.
        let hostile = Heard {
            events: vec![removal("..")],
            lost: false,
        };
        let started = std::time::Instant::now();
        settle_removals(&hostile, &sys_block, std::time::Duration::from_secs(5));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "`..` was looked up as a disk"
        );
        assert!(!is_plain_name("..") && !is_plain_name("") && !is_plain_name("a/b"));
        assert!(is_plain_name("nvme0n1"));
    }

    /// The failing target sends health events, is pulled, and its
    /// replacement comes up under the same name: the replacement starts
    /// at zero, whether the `remove` event or only the next look saw the
    /// target go.
    #[test]
    fn a_new_drive_under_a_used_name_does_not_inherit_health_events() {
        let target = "nvme1n1".to_string();
        let survivor = "nvme0n1".to_string();
        let mut counts = HealthEventCounts::default();
        counts.heard([&target]);
        counts.heard([&target]);
        counts.heard([&survivor]);
        assert_eq!((counts.count("nvme1n1"), counts.count("nvme0n1")), (2, 1));
        let removal = Heard {
            events: vec![
                parse(&message(
                    "remove",
                    "/devices/pci0000:00/0000:00:05.0/nvme/nvme1/nvme1n1",
                    &["SUBSYSTEM=block", "DEVNAME=nvme1n1", "DEVTYPE=disk"],
                ))
                .unwrap(),
            ],
            lost: false,
        };
        counts.forget_removed(&removal);
        assert_eq!((counts.count("nvme1n1"), counts.count("nvme0n1")), (0, 1));
        // No event heard (lost, or no uevents): the look that no longer
        // finds the disk drops it.
        counts.heard([&target]);
        counts.retain(&[survivor.clone()].into_iter().collect());
        assert_eq!((counts.count("nvme1n1"), counts.count("nvme0n1")), (0, 1));
    }
}
