//! The SCSI layer's `ioerr_cnt`, with swapguard's own SMART probes taken out.
//!
//! `/sys/block/<disk>/device/ioerr_cnt` counts every SCSI command that
//! completed with a non-zero result. SMART pass-through commands do so by
//! design (an ATA PASS-THROUGH with CK_COND returns the drive's registers as
//! sense data), so every `smartctl -a` raises it: by 1 on a SATA drive behind
//! libata, by 7 on a virtio-scsi disk (seen in the lab). Compared across a
//! probe, the counter would halt a healthy run at its first step. So it is
//! never compared across one of our own probes: every probe of a disk runs
//! inside [`IoerrLedger::probe`], which reads the counter just before and
//! just after and adds the difference to that disk's discount, and while a
//! probe is in flight every look reports the value from before it (the watch
//! loop and the SMART worker thread run at the same time). Reads, the
//! before/after of a probe and the discount are one critical section, so no
//! look can see half a probe.
//!
//! The price: a real I/O error that completes while our own probe of the
//! same drive is in flight is discounted too. The kernel's own reports cover
//! that window: md's `errors` and bad blocks, and the kernel log's I/O error
//! records (`kmsg.rs`), which pass-through commands never produce.
//!
//! For a guarded run the counter is also *anchored*: reported relative to
//! its value when this process first saw the disk. A discount lives only as
//! long as the process, while the baseline is in the journal; a resumed run
//! would otherwise see every probe of the first run as a rise. md's counters
//! and SMART's are absolute and still show what happened while nobody
//! watched.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::backend::disk::identity::parse_hex;
use crate::backend::disk::read_attr;

/// The counter name in snapshots.
pub const COUNTER: &str = "io.ioerr_cnt";

/// Per-disk discounts for the SMART probes swapguard itself runs.
#[derive(Debug)]
pub struct IoerrLedger {
    sys_block: PathBuf,
    anchored: bool,
    disks: Mutex<HashMap<String, Entry>>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    /// Raw value when first seen (subtracted when anchored).
    anchor: u64,
    /// Sum of the rises across our own probes.
    discount: u64,
    /// Probes of this disk in flight (the worker and a full look can
    /// overlap).
    in_flight: u32,
    /// Raw value when the first probe in flight began.
    pre: u64,
    /// The last raw value seen; a lower one means a new device object.
    last_raw: u64,
}

impl Entry {
    fn first(raw: u64) -> Entry {
        Entry {
            anchor: raw,
            pre: raw,
            last_raw: raw,
            ..Entry::default()
        }
    }

    /// Take in a fresh raw value. The counter only grows for one device
    /// object; a lower value is a new object under the same name (a drive
    /// removed and added again between two looks): start over for it.
    fn observe(&mut self, raw: u64) {
        if raw < self.last_raw {
            *self = Entry {
                in_flight: self.in_flight,
                ..Entry::first(raw)
            };
        }
        self.last_raw = raw;
    }

    fn reported(&self, raw: u64, anchored: bool) -> u64 {
        let seen = if self.in_flight > 0 { self.pre } else { raw };
        let anchor = if anchored { self.anchor } else { 0 };
        seen.saturating_sub(anchor).saturating_sub(self.discount)
    }
}

impl IoerrLedger {
    /// `sys_block` is `<root>/sys/block`. `anchored`: report the counter
    /// relative to its first reading in this process (a guarded run).
    pub fn new(sys_block: PathBuf, anchored: bool) -> IoerrLedger {
        IoerrLedger {
            sys_block,
            anchored,
            disks: Mutex::new(HashMap::new()),
        }
    }

    pub fn sys_block(&self) -> &Path {
        &self.sys_block
    }

    fn path(&self, disk: &str) -> PathBuf {
        self.sys_block.join(disk).join("device/ioerr_cnt")
    }

    /// The raw counter: `Ok(None)` when the disk has none (NVMe, virtio).
    fn raw(&self, disk: &str) -> Result<Option<u64>, String> {
        let path = self.path(disk);
        match read_attr(&path) {
            Ok(None) => Ok(None),
            Ok(Some(text)) => parse_hex(&text).map(Some).ok_or_else(|| {
                format!(
                    "cannot parse `{}`: `{}` is not a hex count",
                    path.display(),
                    text.trim()
                )
            }),
            Err(err) => Err(format!("cannot read `{}`: {err}", path.display())),
        }
    }

    /// The counter as the guard should see it: without the rises of our
    /// own probes, and while a probe is in flight, its value from before.
    /// `Ok(None)` when the disk has no such counter.
    pub fn read(&self, disk: &str) -> Result<Option<u64>, String> {
        let mut disks = self.disks.lock().unwrap_or_else(|p| p.into_inner());
        let Some(raw) = self.raw(disk)? else {
            return Ok(None);
        };
        let entry = disks
            .entry(disk.to_string())
            .or_insert_with(|| Entry::first(raw));
        entry.observe(raw);
        Ok(Some(entry.reported(raw, self.anchored)))
    }

    /// Run `probe` (a SMART probe of `disk`) with the counter's rise across
    /// it discounted. A counter that cannot be read before or after gets no
    /// discount: the next look then reports the rise (fail closed).
    pub fn probe<T>(&self, disk: &str, probe: impl FnOnce() -> T) -> T {
        let began = self.begin(disk);
        let result = probe();
        if began {
            self.end(disk);
        }
        result
    }

    fn begin(&self, disk: &str) -> bool {
        let mut disks = self.disks.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(Some(raw)) = self.raw(disk) else {
            return false;
        };
        let entry = disks
            .entry(disk.to_string())
            .or_insert_with(|| Entry::first(raw));
        entry.observe(raw);
        if entry.in_flight == 0 {
            entry.pre = raw;
        }
        entry.in_flight += 1;
        true
    }

    fn end(&self, disk: &str) {
        let mut disks = self.disks.lock().unwrap_or_else(|p| p.into_inner());
        let raw = self.raw(disk);
        let Some(entry) = disks.get_mut(disk) else {
            return;
        };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        match raw {
            Ok(Some(raw)) => {
                entry.observe(raw);
                if entry.in_flight == 0 {
                    entry.discount += raw.saturating_sub(entry.pre);
                }
            }
            // Gone or unreadable after the probe: nothing to discount.
            _ => {
                if entry.in_flight == 0 {
                    entry.pre = entry.last_raw;
                }
            }
        }
    }

    /// Forget disks that are no longer present, so a drive that later takes
    /// one of their names starts with no discount of its own.
    pub fn retain(&self, present: &BTreeSet<String>) {
        let mut disks = self.disks.lock().unwrap_or_else(|p| p.into_inner());
        disks.retain(|name, entry| present.contains(name) || entry.in_flight > 0);
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::sync::Arc;

    use super::*;

    struct Tree {
        _dir: tempfile::TempDir,
        sys_block: PathBuf,
    }

    impl Tree {
        fn new() -> Tree {
            let dir = tempfile::tempdir().unwrap();
            let sys_block = dir.path().join("sys/block");
            fs::create_dir_all(sys_block.join("sda/device")).unwrap();
            let tree = Tree {
                _dir: dir,
                sys_block,
            };
            tree.set("sda", 0x10);
            tree
        }

        fn set(&self, disk: &str, value: u64) {
            // The kernel's format: `0x%x`. Written whole and renamed into
            // place, as a sysfs read is atomic.
            let dir = self.sys_block.join(disk).join("device");
            fs::write(dir.join(".ioerr_cnt.new"), format!("0x{value:x}\n")).unwrap();
            fs::rename(dir.join(".ioerr_cnt.new"), dir.join("ioerr_cnt")).unwrap();
        }
    }

    #[test]
    fn smart_probe_rises_are_discounted_real_errors_are_not() {
        let tree = Tree::new();
        let ledger = IoerrLedger::new(tree.sys_block.clone(), false);
        assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
        // smartctl on a SATA drive: +1 per probe; on virtio-scsi: +7.
        ledger.probe("sda", || tree.set("sda", 0x11));
        assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
        ledger.probe("sda", || tree.set("sda", 0x18));
        assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
        // A failed command outside any probe of ours: the guard sees it.
        tree.set("sda", 0x19);
        assert_eq!(ledger.read("sda"), Ok(Some(0x11)));
    }

    #[test]
    fn a_look_during_a_probe_sees_the_value_from_before_it() {
        let tree = Tree::new();
        let ledger = IoerrLedger::new(tree.sys_block.clone(), false);
        ledger.probe("sda", || {
            tree.set("sda", 0x17);
            // The fast watch loop reads while smartctl runs on the worker.
            assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
            // A second probe of the same disk overlaps (a full look while
            // the worker is still busy).
            ledger.probe("sda", || tree.set("sda", 0x1e));
            assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
            tree.set("sda", 0x1f);
        });
        // 0x10 -> 0x1f all within probes: counted once, all discounted.
        assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
    }

    #[test]
    fn anchored_reports_from_the_first_look() {
        let tree = Tree::new();
        let ledger = IoerrLedger::new(tree.sys_block.clone(), true);
        assert_eq!(ledger.read("sda"), Ok(Some(0)));
        ledger.probe("sda", || tree.set("sda", 0x11));
        assert_eq!(ledger.read("sda"), Ok(Some(0)));
        tree.set("sda", 0x13);
        assert_eq!(ledger.read("sda"), Ok(Some(2)));
    }

    #[test]
    fn a_lower_value_is_a_new_device_and_starts_over() {
        let tree = Tree::new();
        let ledger = IoerrLedger::new(tree.sys_block.clone(), false);
        ledger.probe("sda", || tree.set("sda", 0x40));
        assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
        // Removed and added again under the same name: a fresh counter must
        // not carry the old drive's discount.
        tree.set("sda", 0x3);
        assert_eq!(ledger.read("sda"), Ok(Some(0x3)));
        tree.set("sda", 0x5);
        assert_eq!(ledger.read("sda"), Ok(Some(0x5)));
    }

    #[test]
    fn absent_unparsable_and_forgotten() {
        let tree = Tree::new();
        let ledger = IoerrLedger::new(tree.sys_block.clone(), false);
        assert_eq!(ledger.read("nvme0n1"), Ok(None));
        fs::write(tree.sys_block.join("sda/device/ioerr_cnt"), "26\n").unwrap();
        let err = ledger.read("sda").unwrap_err();
        assert!(err.contains("is not a hex count"), "{err}");
        // An unreadable counter before a probe: no discount, the rise shows.
        ledger.probe("sda", || tree.set("sda", 0x11));
        tree.set("sda", 0x11);
        ledger.retain(&BTreeSet::new());
        assert_eq!(ledger.read("sda"), Ok(Some(0x11)));
    }

    #[test]
    fn the_worker_thread_and_the_watch_loop_never_see_a_probe_rise() {
        // Regression for the SATA/SCSI false halt: smartctl on the worker
        // thread raises the counter while the 250 ms watch loop reads it.
        let tree = Arc::new(Tree::new());
        let ledger = Arc::new(IoerrLedger::new(tree.sys_block.clone(), false));
        let worker = {
            let (tree, ledger) = (Arc::clone(&tree), Arc::clone(&ledger));
            std::thread::spawn(move || {
                for i in 0..200u64 {
                    ledger.probe("sda", || {
                        for step in 1..=7 {
                            tree.set("sda", 0x10 + i * 7 + step);
                        }
                    });
                }
            })
        };
        let mut reads = 0;
        while !worker.is_finished() || reads == 0 {
            assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
            reads += 1;
        }
        worker.join().unwrap();
        assert_eq!(ledger.read("sda"), Ok(Some(0x10)));
    }
}
