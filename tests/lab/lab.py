#!/usr/bin/env python3
"""The swapguard lab: real md RAID1 arrays in a QEMU guest booted from
Debian's own kernel, drives really pulled, inserted and broken.

Each scenario boots a fresh guest with two emulated drives, NVMe unless
the scenario says SCSI or SATA (LAB-A-0001 in bay 1, LAB-B-0002 in bay 2,
bay 3 free), creates md0 over
them, starts swapguard on the guest's third serial port and plays the
technician from the host: it waits for swapguard's instruction, does the
physical part through QMP (the hardware's part is QEMU's, the kernel's part
the real kernel's) and types the answers. Then it checks the exit code, the
journal and the guest's own view.

    python3 tests/lab/lab.py                 # every scenario
    python3 tests/lab/lab.py --list
    python3 tests/lab/lab.py member-healthy wrong-drive-pulled
    python3 tests/lab/lab.py --latency 5     # detection latency, 5 samples each

See docs/lab.md. Python 3 standard library only.
"""

import argparse
import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import LabError, Machine, build_initramfs, find_kernel, parse_adjtimex  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LAB = Path(__file__).resolve().parent

# How long swapguard may take to show the next thing under TCG.
STEP_TIMEOUT = 120.0
# One SMART poll during physical steps and waits (runbook `smart_poll`).
SMART_POLL = 10.0

SERIAL_A = "LAB-A-0001"
SERIAL_B = "LAB-B-0002"
SERIAL_C = "LAB-C-0003"

# md's data starts 2048 sectors (1 MiB) into each member (v1.2 metadata on
# a 64 MiB drive; shared/reference/samples/lab/mdadm-examine-A.txt).
DATA_OFFSET_SECTORS = 2048
# Where the I/O-error scenarios break the survivor: 16 MiB into md0.
BAD_MD_SECTOR = 32768


def norm(text):
    """Whitespace collapsed: swapguard wraps its text to the terminal."""
    return " ".join(text.split())


class Check:
    """Collects failed expectations of one scenario instead of stopping at
    the first, so a report says everything that was wrong."""

    def __init__(self):
        self.failures = []

    def that(self, ok, message):
        if not ok:
            self.failures.append(message)
        return ok


# ---------------------------------------------------------------------------
# one swapguard run, driven by the technician


class Outcome:
    def __init__(self, code, transcript, journal, halt):
        self.code = code
        self.transcript = transcript
        self.journal = journal
        self.halt = halt  # the halt block's text, or None

    def events(self, name):
        return [e for e in self.journal if e.get("event") == name]

    def steps_started(self):
        return [e["step"] for e in self.events("step-started")]

    def steps_completed(self):
        return [e["step"] for e in self.events("step-completed")]

    def halted(self):
        found = self.events("halted")
        return found[0] if found else None


def param_args(params):
    """`--param` values: from a dict (name -> value) or `NAME=VALUE` strings."""
    if not params:
        return []
    if isinstance(params, dict):
        return [f"{k}={v}" for k, v in params.items()]
    return list(params)


class Technician:
    """Plays the technician at swapguard's terminal (the guest's ttyS2).

    `on_step(tech, step_id, text)` is called when a step's instruction is
    on screen; it does the physical work (through the lab's QMP powers).
    Questions are answered yes; typed confirmations get the last four
    characters of the serial on the label of the drive in hand
    (`self.in_hand`), the way a technician reads them off the drive.
    """

    def __init__(self, lab, on_step=None):
        self.lab = lab
        self.machine = lab.machine
        self.on_step = on_step or (lambda tech, step, text: None)
        self.in_hand = None
        self.emptied_bay = None
        self.step = None

    # the usual physical work, done right
    def pull_as_told(self, text):
        m = re.search(r"serial (\S+?)[,.]? Check the serial", text) or re.search(r"serial (LAB-\S+?)[,.)]", text)
        if not m:
            raise LabError(f"no serial in the pull instruction: {text}")
        drive = self.machine.drive_by_serial(m.group(1))
        self.emptied_bay = drive.bay
        self.machine.pull(drive.serial)
        return drive

    def insert_new(self, serial=SERIAL_C, bay=None, image=None):
        if bay is None:
            bay = self.emptied_bay or self.lab.free_bay()
        self.in_hand = serial
        return self.machine.insert(bay, serial, image)

    def run(self, runbook, target, timeout=600.0, array="md0", params=None, resume=False):
        """`swapguard run`; with `resume`, `swapguard resume --array ARRAY`
        of the unfinished session in the same state directory instead."""
        lab = self.lab
        shell = self.machine.shell
        tty = self.machine.tech
        if resume:
            shell.run("rm -f /tmp/sg.rc; stty -F /dev/ttyS2 sane cols 100 rows 40")
            args = f"resume --array {array} --state-dir /tmp/sg"
        else:
            shell.run("rm -rf /tmp/sg /tmp/sg.rc; stty -F /dev/ttyS2 sane cols 100 rows 40")
            args = (f"run {runbook} --array {array} --target {target} --state-dir /tmp/sg"
                    + "".join(f" --param {p}" for p in param_args(params)))
        tty.pos = len(tty.text)
        start = tty.pos
        # A shell is the session leader on the terminal, as a login shell
        # is at a real console: were swapguard the leader, its exit would
        # hang the terminal up and discard output not yet sent. The shell
        # prints swapguard's status after everything swapguard wrote, then
        # waits for a key so that nothing is cut off.
        shell.run(
            "setsid -c sh -c 'TERM=dumb NO_COLOR=1 swapguard "
            + args + "; "
            "rc=$?; echo $rc > /tmp/sg.rc; echo \"@@SG-EXIT=$rc@@\"; read x' "
            "<>/dev/ttyS2 >&0 2>&0 &"
        )
        deadline = time.monotonic() + timeout
        halt = None
        patterns = {
            "step": r"STEP (\d+) OF (\d+) - (\S+) \((\w+)\)\n-+\n\n(.*?)\n\n",
            "yesno": r"answer yes or no \[y/n\]: ",
            "typed": r"type it here: ",
            "halt": r"STOP - (.*?)\n!{20,}\n",
            "end": r"@@SG-EXIT=(\d+)@@",
        }
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise LabError(f"swapguard did not finish within {timeout:.0f} s")
            try:
                name, m = tty.wait_any(patterns, min(left, STEP_TIMEOUT))
            except LabError:
                lab.save(f"stuck-{lab.runs}.txt", lab.diagnose())
                raise
            if name == "step":
                self.step = m.group(3).lower()
                lab.say(f"  swapguard: step {m.group(1)}/{m.group(2)} {self.step} ({m.group(4)})")
                self.on_step(self, self.step, norm(m.group(5)))
            elif name == "yesno":
                tty.write("y\r")
            elif name == "typed":
                if self.in_hand is None:
                    raise LabError("asked to type a serial, but no drive is in hand")
                tty.write(self.in_hand[-4:] + "\r")
            elif name == "halt":
                halt = norm(m.group(0))
                lab.say(f"  swapguard: STOP - {norm(m.group(1))}")
            elif name == "end":
                break
        code = int(m.group(1))
        tty.write("\r")
        journal_text = shell.run("cat /tmp/sg/sessions/*.jsonl")
        journal = [json.loads(line) for line in journal_text.splitlines() if line.startswith("{")]
        transcript = tty.text[start:]
        lab.save(f"transcript-{lab.runs}.txt", transcript)
        lab.save(f"journal-{lab.runs}.jsonl", journal_text)
        lab.runs += 1
        lab.say(f"  swapguard exited with {code}")
        return Outcome(code, transcript, journal, halt)


# ---------------------------------------------------------------------------
# the lab around one guest


class Lab:
    def __init__(self, name, work, kernel, initramfs, verbose, bus="nvme", wwns=None,
                 size_mib=64, memory_mib=512, drives=None, bays=3):
        self.name = name
        self.work = Path(work) / name
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.verbose = verbose
        self.runs = 0
        self.figures = []          # (kind, seconds) measured in this scenario
        self.samples = 1           # latency samples of each kind
        self.kernel_version = None
        self.bus = bus
        self.machine = Machine(self.work, kernel, initramfs,
                               drives or {1: SERIAL_A, 2: SERIAL_B}, bays=bays, log=self._log,
                               bus=bus, wwns=wwns, size_mib=size_mib, memory_mib=memory_mib)
        self.shell = None

    def _log(self, line):
        with open(self.work / "lab.log", "a") as f:
            f.write(f"{time.time():.3f} {line}\n")
        if self.verbose:
            print(f"    {line}", flush=True)

    def say(self, line):
        self._log(line)
        print(line, flush=True)

    def save(self, name, text):
        (self.work / name).write_text(text)

    def __enter__(self):
        self.machine.start()
        self.shell = self.machine.shell
        self.shell.run(". /lab/capture.sh")
        return self

    def __exit__(self, *exc):
        self.save("console.txt", self.machine.console())
        self.machine.stop()
        return False

    def diagnose(self):
        """What the guest is doing, for a run that stopped answering."""
        rc, out = self.shell.status(
            "ps -o pid,stat,args; for p in $(pidof swapguard smartctl mdadm); do "
            "echo \"== $p $(cat /proc/$p/cmdline | tr '\\0' ' ')\"; cat /proc/$p/wchan; echo; "
            "cat /proc/$p/stack; ls -l /proc/$p/fd; done; cat /proc/mdstat; dmesg | tail -40; "
            "echo rc=$(cat /tmp/sg.rc); tail -n 3 /tmp/sg/sessions/*.jsonl",
            timeout=60)
        return out

    def capture(self, label):
        """Save what the md backend reads (tests/lab/capture.sh records)
        as `capture-<label>.txt`; returns the text."""
        text = self.shell.run("lab_capture")
        head = (f"# captured by tests/lab/lab.py, scenario {self.name}, {label}, in a QEMU "
                f"guest running Debian's kernel {self.kernel_version}\n")
        self.save(f"capture-{label}.txt", head + text)
        return text

    def free_bay(self):
        for bay in range(1, self.machine.bays + 1):
            if bay not in self.machine.drives:
                return bay
        raise LabError("no free bay")

    def create_array(self):
        # Both drives are fresh zero images, so the mirrors already agree:
        # --assume-clean is the truth here and skips a minute of resync.
        a, b = self.disk_of(SERIAL_A), self.disk_of(SERIAL_B)
        self.shell.run("mdadm --create /dev/md0 --level=1 --raid-devices=2 --assume-clean "
                       f"--run /dev/{a} /dev/{b} 2>&1 | grep -v '^ \\|metadata'")
        self.shell.run("dd if=/dev/urandom of=/dev/md0 bs=64k count=64 conv=fsync 2>/dev/null")

    def mdstat(self):
        return self.shell.read("/proc/mdstat")

    def disk_of(self, serial):
        """The guest's kernel name of the disk with `serial`, or None."""
        return self.machine.disk_of(serial)

    def ioerr_cnt(self, serial):
        """The SCSI layer's `ioerr_cnt` of a SCSI/SATA drive, as a number."""
        return int(self.shell.read(f"/sys/block/{self.disk_of(serial)}/device/ioerr_cnt"), 16)

    def kernel_log(self):
        """The guest kernel's log (busybox dmesg)."""
        return self.shell.run("dmesg")

    def sync_to_guest_clock(self):
        """(offset, error): guest clock minus host clock, bracketed by the
        round trip of one `adjtimex` over the control port."""
        best = None
        for _ in range(3):
            t0 = time.time()
            guest = parse_adjtimex(self.shell.run("adjtimex"))
            t1 = time.time()
            cand = (guest - (t0 + t1) / 2, (t1 - t0) / 2)
            if best is None or cand[1] < best[1]:
                best = cand
        return best


def journal_time(event):
    """Seconds since the epoch of a journal line's `at` (RFC 3339, ms)."""
    at = event["at"]
    m = re.match(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", at)
    if not m:
        raise LabError(f"cannot read journal time `{at}`")
    secs = calendar.timegm(tuple(int(m.group(i)) for i in range(1, 7)) + (0, 0, 0))
    frac = float("0." + m.group(7)) if m.group(7) else 0.0
    tz = m.group(8)
    if tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return secs + frac


# Guest-side helpers: each does one thing to the kernel and prints the
# guest's wall clock (adjtimex, µs) at the moment the kernel shows it.
# `usleep 2000` keeps the poll loops from starving the guest's two CPUs.

def helper_fail_member(disk):
    """Fail a member with mdadm; stamp when its md state says faulty."""
    state = f"/sys/block/md0/md/dev-{disk}/state"
    return (f"echo before; adjtimex | grep tv_; echo seen; "
            f"mdadm /dev/md0 --fail /dev/{disk} >/tmp/fail.out 2>&1 & "
            f"while read s < {state} && [ \"${{s#*faulty}}\" = \"$s\" ]; do usleep 2000; done; "
            f"adjtimex | grep tv_; cat {state}")


def helper_write_errors(disk):
    """Write into the broken region of md0; stamp when md records the
    failed write on the member (a bad block or a state flag). The loop uses
    shell builtins only, so it samples every few ms."""
    md = f"/sys/block/md0/md/dev-{disk}"
    return (f"read -r s0 < {md}/state; "
            f"dd if=/dev/urandom of=/dev/md0 bs=4k count=4 seek={BAD_MD_SECTOR // 8} oflag=direct "
            f">/tmp/dd.out 2>&1 & "
            f"while read -r s < {md}/state && [ \"$s\" = \"$s0\" ] "
            f"&& {{ read -r b < {md}/bad_blocks; [ -z \"$b\" ]; }}; do usleep 2000; done; "
            f"adjtimex | grep tv_; echo state=$(cat {md}/state); "
            f"echo bad_blocks=$(cat {md}/bad_blocks)")


def helper_vanish(disk):
    """Stamp when /sys/block/<disk> goes away (started before the pull)."""
    return (f"( while [ -e /sys/block/{disk} ]; do usleep 2000; done; adjtimex | grep tv_ "
            f"> /tmp/vanish.out ) </dev/null >/dev/null 2>&1 &")


def write_error_rules():
    sector = DATA_OFFSET_SECTORS + BAD_MD_SECTOR
    return [{"event": "write_aio", "errno": 5, "sector": sector + i * 8, "once": False}
            for i in range(4)] + \
           [{"event": "read_aio", "errno": 5, "sector": sector + i * 8, "once": False}
            for i in range(4)]


# ---------------------------------------------------------------------------
# scenarios

MEMBER = "/runbooks/md-replace-member.toml"
HOT = "/runbooks/md-replace-hot.toml"
PULL_FIRST = "/runbooks/lab-pull-first.toml"
# md-replace-member with `smart = "optional"`: scsi-hd has no SMART verdict.
MEMBER_NO_SMART = "/runbooks/lab-member-smart-optional.toml"
SCENARIOS = {}
# scenario name -> (bus, {serial: WWN}) for scenarios not on NVMe
MACHINES = {}
# scenario name -> more Lab options (`size_mib`, `memory_mib`) and
# `initramfs`, the name of an INITRAMFS variant (ZFS scenarios: zfs_lab.py)
OPTIONS = {}
# initramfs variant -> builder(work, swapguard, kernel_version, extra_files)
INITRAMFS = {}
# scenario name -> the kind of guest it needs beyond md's (e.g. "btrfs"),
# for scenarios that need one. Per kind: GUEST_KINDS, a function giving
# (extra files, modules, binaries) for its initramfs; GUEST_TOOLS, the host
# tools it needs; GUEST_DRIVE_MIB, its drives' size (default 64 MiB).
GUESTS = {}
GUEST_KINDS = {}
GUEST_TOOLS = {}
GUEST_DRIVE_MIB = {}


def scenario(name, bus="nvme", wwns=None, guest=None):
    def register(fn):
        SCENARIOS[name] = fn
        MACHINES[name] = (bus, wwns)
        if guest:
            GUESTS[name] = guest
        return fn
    return register


@scenario("member-healthy")
def member_healthy(lab, check):
    """Cold swap with md-replace-member: fail, remove, pull, insert, add,
    rebuild to in-sync; every step journaled; exit 0."""
    lab.create_array()

    def on_step(tech, step, text):
        if step == "pull":
            tech.pull_as_told(text)
        elif step == "insert":
            tech.insert_new(SERIAL_C)

    out = Technician(lab, on_step).run(MEMBER, SERIAL_B)
    steps = ["antistatic", "fail", "remove", "locate", "pull", "insert", "add", "rebuild"]
    check.that(out.code == 0, f"exit code {out.code}, want 0")
    check.that(out.steps_started() == steps, f"steps started {out.steps_started()}")
    check.that(out.steps_completed() == steps, f"steps completed {out.steps_completed()}")
    finished = out.events("run-finished")
    check.that(finished and finished[-1]["outcome"] == "completed", f"run-finished {finished}")
    new = out.events("new-drive")
    check.that(new and new[0]["drive"]["serial"] == SERIAL_C, f"new-drive {new}")
    quarantined = out.events("quarantined")
    check.that(quarantined and quarantined[0]["drive"]["serial"] == SERIAL_B, f"quarantined {quarantined}")
    mdstat = lab.mdstat()
    check.that("[2/2] [UU]" in mdstat, f"mdstat after the run:\n{mdstat}")
    disk = lab.disk_of(SERIAL_C)
    state = lab.shell.read(f"/sys/block/md0/md/dev-{disk}/state") if disk else None
    check.that(state == "in_sync", f"new drive {disk} state {state}")


@scenario("hot-healthy")
def hot_healthy(lab, check):
    """Hot swap with md-replace-hot: insert first, `mdadm --replace`, then
    pull the old drive; the array is never degraded."""
    lab.create_array()
    # Sample md's `degraded` every 20 ms through the whole run.
    lab.shell.run("( while :; do read d < /sys/block/md0/md/degraded; "
                  "[ \"$d\" = 0 ] || echo \"$d\" >> /tmp/degraded.log; usleep 20000; done ) "
                  "</dev/null >/dev/null 2>&1 & echo $! > /tmp/sampler.pid")

    def on_step(tech, step, text):
        if step == "insert":
            tech.insert_new(SERIAL_C, bay=lab.free_bay())
        elif step == "pull":
            tech.pull_as_told(text)

    out = Technician(lab, on_step).run(HOT, SERIAL_B)
    lab.shell.run("kill $(cat /tmp/sampler.pid)")
    steps = ["antistatic", "insert", "replace", "copy", "remove", "locate", "pull"]
    check.that(out.code == 0, f"exit code {out.code}, want 0")
    check.that(out.steps_completed() == steps, f"steps completed {out.steps_completed()}")
    samples = lab.shell.run("cat /tmp/degraded.log 2>/dev/null; true").split()
    check.that(not samples, f"md showed degraded {samples} during the hot swap")
    worst = max((e["snapshot"]["array"]["degraded"] for e in out.events("snapshot")), default=None)
    check.that(worst == 0, f"journal snapshots show degraded up to {worst}")
    mdstat = lab.mdstat()
    check.that("[2/2] [UU]" in mdstat and "nvme" in mdstat, f"mdstat after the run:\n{mdstat}")
    check.that(lab.disk_of(SERIAL_B) is None, "the old drive is still present")


@scenario("write-errors-during-pull")
def write_errors_during_pull(lab, check):
    """The survivor gets write errors while the target is pulled: md keeps
    it `in_sync` and `mdadm --detail` says clean, swapguard halts anyway."""
    lab.create_array()
    seen = {}

    def on_step(tech, step, text):
        if step == "pull":
            disk = lab.disk_of(SERIAL_A)
            lab.machine.inject_errors(SERIAL_A, write_error_rules())
            seen["helper"] = lab.shell.run(helper_write_errors(disk), timeout=120)
            seen["detail"] = lab.shell.run("mdadm --detail /dev/md0")
            seen["sysfs"] = lab.shell.run(
                f"cat /sys/block/md0/md/dev-{disk}/state /sys/block/md0/md/dev-{disk}/errors "
                f"/sys/block/md0/md/dev-{disk}/bad_blocks /sys/block/md0/md/array_state")
            tech.pull_as_told(text)

    out = Technician(lab, on_step).run(MEMBER, SERIAL_B)
    lab.save("kernel-view.txt", "\n".join(f"== {k}\n{v}" for k, v in seen.items()))
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "pull", f"halted at {halt and halt['step']}, want pull")
    text = json.dumps(halt["violations"]) if halt else ""
    check.that(SERIAL_A in text, f"the halt does not name {SERIAL_A}: {text}")
    check.that("write_error" in text or "bad_blocks" in text,
               f"the halt names neither write_error nor bad_blocks: {text}")
    check.that("active sync" in seen.get("detail", ""),
               "mdadm --detail no longer says `active sync` for the survivor (kernel changed?)")
    check.that("Failed Devices : 0" in seen.get("detail", ""),
               "mdadm --detail counts a failed device (kernel changed?)")


def warning_during_rebuild(lab, check, seen):
    """Cold swap with md-replace-member, the rebuild slowed so it outlasts
    a SMART poll or two; during it the survivor's NVMe critical warning is
    set to 4 (`seen` gets the clock offset and the moment). The run must
    halt at `rebuild`: returns the outcome, the halt and its violations as
    text."""
    lab.shell.run("echo 1000 > /proc/sys/dev/raid/speed_limit_max")

    def on_step(tech, step, text):
        if step == "pull":
            tech.pull_as_told(text)
        elif step == "insert":
            tech.insert_new(SERIAL_C)
        elif step == "rebuild" and "set_at" not in seen:
            seen["offset"] = lab.sync_to_guest_clock()
            lab.machine.smart_warning(SERIAL_A, 4)
            seen["set_at"] = time.time()

    out = Technician(lab, on_step).run(MEMBER, SERIAL_B)
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "rebuild", f"halted at {halt and halt['step']}")
    return out, halt, json.dumps(halt["violations"]) if halt else ""


@scenario("smart-warning-during-rebuild")
def smart_warning_during_rebuild(lab, check):
    """The survivor's NVMe critical warning is set while the rebuild runs:
    halt within one SMART poll."""
    lab.create_array()
    seen = {}
    out, halt, text = warning_during_rebuild(lab, check, seen)
    check.that(SERIAL_A in text and "critical_warning" in text,
               f"the halt does not name {SERIAL_A}'s critical warning: {text}")
    if halt and "set_at" in seen:
        offset, err = seen["offset"]
        latency = journal_time(halt) - (seen["set_at"] + offset)
        lab.say(f"  SMART critical warning to halt: {latency:.2f} s (clock sync ±{err * 1000:.0f} ms)")
        lab.figures.append(("smart-critical-warning", latency))
        check.that(latency <= SMART_POLL + 5.0,
                   f"SMART warning took {latency:.1f} s to halt; one poll is {SMART_POLL:.0f} s")


@scenario("nvme-health-event", guest="nvme-aen")
def nvme_health_event(lab, check):
    """As smart-warning-during-rebuild, but the survivor's controller has
    its SMART/health asynchronous events switched on (`nvme set-feature -f
    0x0b`, which swapguard never does itself): the kernel's `NVME_AEN`
    uevent halts the run through `nvme.health_events`, before any SMART
    poll or the smartctl read the event starts."""
    lab.create_array()
    disk = lab.disk_of(SERIAL_A)
    ctrl = lab.shell.run(f"basename $(readlink /sys/block/{disk}/device)").strip()
    out = lab.shell.run(f"nvme set-feature /dev/{ctrl} -f 0x0b -v 0xff 2>&1; "
                        f"nvme get-feature /dev/{ctrl} -f 0x0b 2>&1")
    check.that("0x000000ff" in out or "0xff" in out.lower(),
               f"the controller's asynchronous event configuration was not set: {norm(out)}")
    seen = {}
    out, halt, text = warning_during_rebuild(lab, check, seen)
    check.that(SERIAL_A in text and "nvme.health_events" in text,
               f"the halt does not name {SERIAL_A}'s health event: {text}")
    halting = [e for e in out.journal if e.get("event") == "halting"]
    if halting and "set_at" in seen:
        offset, err = seen["offset"]
        latency = journal_time(halting[0]) - (seen["set_at"] + offset)
        lab.say(f"  health event to `halting`: {latency * 1000:.0f} ms "
                f"(clock sync ±{err * 1000:.0f} ms)")
        lab.figures.append(("nvme-health-event", latency))


GUEST_KINDS["nvme-aen"] = lambda work: ({}, [], [shutil.which("nvme") or "/usr/sbin/nvme"])
GUEST_TOOLS["nvme-aen"] = ["nvme"]


@scenario("wrong-drive-pulled")
def wrong_drive_pulled(lab, check):
    """The technician pulls the survivor instead of the target: halt at
    once, naming the drive that vanished, before md notices."""
    lab.create_array()
    seen = {}

    def on_step(tech, step, text):
        if step == "pull":
            disk = lab.disk_of(SERIAL_A)
            seen["disk"] = disk
            lab.shell.run(helper_vanish(disk))
            lab.machine.pull(SERIAL_A)  # the wrong one

    out = Technician(lab, on_step).run(MEMBER, SERIAL_B)
    mdstat = lab.mdstat()
    lab.save("mdstat-after-halt.txt", mdstat)
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "pull", f"halted at {halt and halt['step']}")
    text = json.dumps(halt) if halt else ""
    check.that(SERIAL_A in text, f"the halt does not name the vanished {SERIAL_A}: {text}")
    check.that("bay" in text, f"the halt does not name a bay: {text}")
    check.that(out.halt is not None and SERIAL_A in (out.halt or ""), "the terminal's halt block does not name it")
    # md has not noticed: no I/O reached the pulled survivor.
    check.that("(F)" not in mdstat and f"{seen.get('disk')}[0]" in mdstat,
               f"md already noticed the pull:\n{mdstat}")
    stamp = lab.shell.run("cat /tmp/vanish.out")
    if halt and "tv_sec" in stamp:
        latency = journal_time(halt) - parse_adjtimex(stamp)
        lab.say(f"  survivor vanished to halt: {latency * 1000:.0f} ms")
        lab.figures.append(("device-vanished", latency))


@scenario("broken-drive-back")
def broken_drive_back(lab, check):
    """The drive inserted is the pulled one (its serial, its data): refused
    before anything is written to it."""
    lab.create_array()
    seen = {}

    def on_step(tech, step, text):
        if step == "pull":
            drive = tech.pull_as_told(text)
            seen["image"] = drive.image
            seen["before"] = drive.image.read_bytes()
        elif step == "insert":
            tech.insert_new(SERIAL_B, image=seen["image"])

    out = Technician(lab, on_step).run(MEMBER, SERIAL_B)
    check.that(out.code == 3, f"exit code {out.code}, want 3 (refused as a halt)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "insert", f"halted at {halt and halt['step']}")
    # Either the guard sees the quarantined drive come back, or acceptance
    # refuses it: both stop before anything writes to it.
    check.that(halt is not None and ("pulled is back" in halt["headline"]
                                     or "refused the new drive" in halt["headline"]),
               f"headline {halt and halt['headline']}")
    check.that(halt is not None and SERIAL_B in json.dumps(halt["violations"]),
               f"the halt does not name {SERIAL_B}: {halt and halt['violations']}")
    check.that("add" not in out.steps_started(), "the add step started")
    check.that(not [e for e in out.events("command") if e["step"] == "add"], "mdadm --add ran")
    check.that(seen.get("image") is not None and seen["image"].read_bytes() == seen.get("before"),
               "the put-back drive's image changed")


@scenario("pull-before-md-notices")
def pull_before_md_notices(lab, check):
    """The target is pulled while md still shows it `[UU]`: the pull is seen
    by the device vanishing. The new drive takes the old /dev name and is
    told apart by serial."""
    lab.create_array()
    seen = {}

    def on_step(tech, step, text):
        if step == "pull":
            seen["old_disk"] = lab.disk_of(SERIAL_B)
            tech.pull_as_told(text)
        elif step == "drop":
            # swapguard has finished the pull step and asks before it drops
            # the detached member (the harness answers once this is done):
            # md has not noticed.
            seen["mdstat_after_pull"] = lab.mdstat()
            lab.capture("pulled-before-io")
        elif step == "insert":
            tech.insert_new(SERIAL_C)
        elif step == "add":
            lab.capture("new-drive-inserted")

    lab.capture("clean")
    out = Technician(lab, on_step).run(PULL_FIRST, SERIAL_B)
    check.that(out.code == 0, f"exit code {out.code}, want 0")
    check.that("[2/2] [UU]" in seen.get("mdstat_after_pull", ""),
               f"md noticed the pull before swapguard moved on:\n{seen.get('mdstat_after_pull')}")
    completed = out.steps_completed()
    check.that(completed[:1] == ["pull"], f"steps completed {completed}")
    new = out.events("new-drive")
    quarantined = out.events("quarantined")
    new_dev = new[0]["drive"]["dev"] if new else None
    check.that(new and new[0]["drive"]["serial"] == SERIAL_C, f"new-drive {new}")
    check.that(quarantined and quarantined[0]["drive"]["serial"] == SERIAL_B, f"quarantined {quarantined}")
    check.that(new_dev is not None and new_dev == seen.get("old_disk"),
               f"the new drive is {new_dev}, the pulled one was {seen.get('old_disk')}: no name reuse shown")
    check.that("[2/2] [UU]" in lab.mdstat(), "the array did not rebuild")


# A 12-member md RAID6 (bays 1-12, bay 13 free): storage servers carry
# arrays of 12 and more members.
SERIALS_12 = [f"LAB-R6-{i:04d}" for i in range(1, 13)]
OPTIONS["md-raid6-12"] = {"drives": {i + 1: s for i, s in enumerate(SERIALS_12)}, "bays": 13}
# md's RAID4/5/6 personality (with its dependencies) in the initramfs.
GUEST_KINDS["md-raid456"] = lambda work: ({}, ["raid456"], [])


def simulated(lab, runbook, disks, expect, events=""):
    """The outcome of the same runbook against the simulator's view of the
    same 12-member RAID6 (`swapguard dry-run` on the host, same build):
    (exit code, journal entries)."""
    sim = lab.work / "sim"
    sim.mkdir(exist_ok=True)
    shutil.copy2(REPO / runbook.lstrip("/"), sim / Path(runbook).name)
    text = (f"[scenario]\nname = \"12-member RAID6 as in the lab\"\nrunbook = \"{Path(runbook).name}\"\n"
            f"params = {{ array = \"md0\", target = \"{disks[-1]}\" }}\n\n"
            "[array]\nname = \"md0\"\nlevel = \"raid6\"\nrebuild_time = \"2m\"\n")
    for i, (disk, serial) in enumerate(zip(disks, SERIALS_12)):
        text += (f"\n[[array.members]]\ndev = \"{disk}\"\nserial = \"{serial}\"\n"
                 f"model = \"QEMU NVMe Ctrl\"\nfirmware = \"1.0\"\nslot = {i + 1}\nsize = \"64M\"\n")
    text += ("\n[[array.spares]]\nserial = \"LAB-C-0003\"\nmodel = \"QEMU NVMe Ctrl\"\n"
             "firmware = \"1.0\"\nsize = \"64M\"\n")
    text += events + "\n[expect]\n" + expect
    path = sim / f"scenario-{lab.runs}.toml"
    path.write_text(text)
    state = sim / f"state-{lab.runs}"
    state.mkdir(mode=0o700)
    done = subprocess.run([str(lab.work.parent / "swapguard"), "dry-run", "--scenario", str(path),
                           "--state-dir", str(state)],
                          capture_output=True, text=True, timeout=120)
    lab.save(f"sim-{lab.runs}.txt", done.stdout + done.stderr)
    journal = [json.loads(line) for f in sorted(state.glob("sessions/*.jsonl"))
               for line in f.read_text().splitlines() if line.startswith("{")]
    return done.returncode, journal


@scenario("md-raid6-12", guest="md-raid456")
def md_raid6_12(lab, check):
    """12-member md RAID6: a cold swap of member 12 completes, then a
    survivor failed during a hot swap halts; the simulator's view of the
    same array gives the same steps and the same halt."""
    disks = [lab.disk_of(s) for s in SERIALS_12]
    check.that(all(disks), f"not every drive is visible: {disks}")
    lab.shell.run("mdadm --create /dev/md0 --level=6 --raid-devices=12 --assume-clean --run "
                  + " ".join(f"/dev/{d}" for d in disks) + " 2>&1 | grep -v '^ \\|metadata'; true")
    lab.shell.run("dd if=/dev/urandom of=/dev/md0 bs=64k count=64 conv=fsync 2>/dev/null")
    check.that("[12/12]" in lab.mdstat(), f"md0 is not a clean 12-member array:\n{lab.mdstat()}")

    def swap(tech, step, text):
        if step == "pull":
            tech.pull_as_told(text)
        elif step == "insert":
            tech.insert_new(SERIAL_C)

    out = Technician(lab, swap).run(MEMBER, SERIALS_12[-1])
    check.that(out.code == 0, f"swap: exit code {out.code}, want 0")
    mdstat = lab.mdstat()
    check.that("[12/12]" in mdstat and "_" not in mdstat.split("[12/12]")[1].split("\n")[0],
               f"the kernel does not show 12 members in sync:\n{mdstat}")
    last = [e for e in out.journal if e.get("event") == "snapshot"][-1]["snapshot"]
    seen = sorted(d["id"]["serial"] for d in last["drives"] if d["id"].get("serial"))
    want = sorted(SERIALS_12[:-1] + [SERIAL_C])
    check.that(all(s in seen for s in want), f"swapguard's last look {seen}, want {want}")
    code, sim = simulated(lab, MEMBER, disks, 'outcome = "completed"\n')
    sim_steps = [e["step"] for e in sim if e.get("event") == "step-completed"]
    check.that(code == 0, f"simulator: exit {code} (its [expect] not met)")
    check.that(sim_steps == out.steps_completed(),
               f"steps: kernel {out.steps_completed()}, simulator {sim_steps}")

    # The new drive now sits in bay 12; fail survivor 1 during a hot swap.
    disks = [lab.disk_of(s) for s in SERIALS_12[:-1] + [SERIAL_C]]
    survivor = disks[0]

    def fail(tech, step, text):
        if step == "insert":
            lab.shell.run(f"mdadm /dev/md0 --fail /dev/{survivor} >/dev/null 2>&1")

    out = Technician(lab, fail).run(HOT, SERIAL_C)
    halt = out.halted()
    check.that(out.code == 3 and halt is not None and halt["step"] == "insert",
               f"survivor fault: exit {out.code}, halt {halt and halt['step']}")
    check.that(halt is not None and SERIALS_12[0] in json.dumps(halt["violations"]),
               f"the halt does not name {SERIALS_12[0]}")
    check.that("[12/11]" in lab.mdstat(), f"the kernel does not show one member failed:\n{lab.mdstat()}")
    code, sim = simulated(
        lab, HOT, disks, f'outcome = "halted"\nstep = "insert"\nreasons = ["{survivor}"]\n',
        f'\n[[event]]\nduring = "insert"\nafter = "1s"\nfail = "{survivor}"\n')
    sim_halt = [e for e in sim if e.get("event") == "halted"]
    # dry-run exits 0 when the scenario's [expect] (halted at insert) is met.
    check.that(code == 0 and sim_halt and sim_halt[0]["step"] == "insert",
               f"simulator: exit {code}, halt {sim_halt and sim_halt[0]['step']}")
    kernel_what = sorted({v["what"] for v in halt["violations"] if SERIALS_12[0] in v["who"]}) if halt else []
    sim_what = sorted({v["what"] for v in sim_halt[0]["violations"] if SERIALS_12[0] in v["who"]}) \
        if sim_halt else []
    lab.say(f"  halt on {SERIALS_12[0]}: kernel {kernel_what}, simulator {sim_what}")
    check.that(kernel_what and set(sim_what) <= set(kernel_what) and sim_what,
               f"the halts differ: kernel {kernel_what}, simulator {sim_what}")


@scenario("overwrite-under-one-mirror")
def overwrite_under_one_mirror(lab, check):
    """Bytes overwritten under one mirror from the host (silent corruption)
    are invisible to md until a `check`, which counts them in
    `mismatch_cnt`; swapguard's status still reads the array."""
    lab.create_array()
    before = lab.shell.read("/sys/block/md0/md/mismatch_cnt")
    # 64 KiB of random bytes 8 MiB into md0's data, under LAB-B-0002 only.
    offset = (DATA_OFFSET_SECTORS + 16384) * 512
    lab.machine.overwrite(SERIAL_B, offset, os.urandom(64 * 1024))
    lab.shell.run("echo 3 > /proc/sys/vm/drop_caches; echo check > /sys/block/md0/md/sync_action")
    lab.shell.run("while [ \"$(cat /sys/block/md0/md/sync_action)\" != idle ]; do usleep 100000; done",
                  timeout=120)
    after = lab.shell.read("/sys/block/md0/md/mismatch_cnt")
    lab.capture("after-check")
    check.that(before == "0", f"mismatch_cnt {before} before the overwrite")
    check.that(after.isdigit() and int(after) > 0, f"mismatch_cnt {after} after the check")
    mdstat = lab.mdstat()
    check.that("[2/2] [UU]" in mdstat, f"md failed a member over silent corruption:\n{mdstat}")
    rc, status = lab.shell.status("swapguard status --json")
    lab.save("status.json", status)
    check.that(rc == 0 and SERIAL_B in status, f"swapguard status exited {rc}:\n{status}")


# ---------------------------------------------------------------------------
# SCSI (virtio-scsi) and SATA (AHCI) drives
#
# Every `smartctl -a` raises a SCSI or SATA drive's `device/ioerr_cnt` (the
# SCSI layer counts each command that completes with a non-zero result, and
# SMART pass-through commands do by design). swapguard must not halt on the
# rise its own probes cause; it must still halt on a survivor's real errors.
# QEMU's scsi-hd has no WWN unless given one: its `device/wwid` then fails
# to read with EINVAL, which is "no WWN", not an unreadable drive.


def scsi_view(lab, serial):
    """What the md backend reads of a SCSI/SATA disk, as text: identity
    files, VPD page 0x80 in hex, `wwid` (or its read error) and
    `ioerr_cnt`."""
    disk = lab.disk_of(serial)
    d = f"/sys/block/{disk}/device"
    return lab.shell.run(
        f"echo disk={disk}; for a in vendor model rev ioerr_cnt iodone_cnt; do "
        f"echo \"$a=$(cat {d}/$a)\"; done; echo \"size=$(cat /sys/block/{disk}/size)\"; "
        f"echo vpd_pg80=$(od -An -tx1 {d}/vpd_pg80); "
        f"echo \"wwid=$(cat {d}/wwid 2>&1)\"")


def probe_rise(lab, serial):
    """(before, after) of the drive's `ioerr_cnt` around one `smartctl
    --json -a`, as swapguard runs it."""
    disk = lab.disk_of(serial)
    before = lab.ioerr_cnt(serial)
    lab.shell.status(f"smartctl --json -a /dev/{disk} >/dev/null")
    after = lab.ioerr_cnt(serial)
    lab.say(f"  smartctl -a on {serial} ({disk}): ioerr_cnt {before:#x} -> {after:#x}")
    return before, after


def kernel_io_errors(text):
    """The block layer's I/O error records in a kernel log."""
    return [line for line in text.splitlines() if re.search(r"error, dev \w+, sector ", line)]


@scenario("scsi-healthy", bus="scsi")
def scsi_healthy(lab, check):
    """Cold swap with md-replace-member (SMART optional: scsi-hd has no
    verdict) over virtio-scsi disks without a WWN: every smartctl raises their
    ioerr_cnt by several, and the run still goes through to in-sync; exit 0."""
    lab.create_array()
    lab.capture("scsi-clean")
    lab.save("scsi-view-A.txt", scsi_view(lab, SERIAL_A))
    before, after = probe_rise(lab, SERIAL_A)
    check.that(after > before, f"smartctl no longer raises ioerr_cnt ({before} -> {after}): "
               "kernel changed? the discount is then untested here")

    def on_step(tech, step, text):
        if step == "pull":
            tech.pull_as_told(text)
        elif step == "insert":
            tech.insert_new(SERIAL_C)

    out = Technician(lab, on_step).run(MEMBER_NO_SMART, SERIAL_B)
    steps = ["antistatic", "fail", "remove", "locate", "pull", "insert", "add", "rebuild"]
    check.that(out.code == 0, f"exit code {out.code}, want 0; halt: {out.halt}")
    check.that(out.steps_completed() == steps, f"steps completed {out.steps_completed()}")
    new = out.events("new-drive")
    check.that(new and new[0]["drive"]["serial"] == SERIAL_C, f"new-drive {new}")
    quarantined = out.events("quarantined")
    check.that(quarantined and quarantined[0]["drive"]["serial"] == SERIAL_B, f"quarantined {quarantined}")
    mdstat = lab.mdstat()
    check.that("[2/2] [UU]" in mdstat, f"mdstat after the run:\n{mdstat}")
    # The survivor's counter rose during the run (swapguard's own probes)
    # without a halt: the false alarm this scenario pins.
    check.that(lab.ioerr_cnt(SERIAL_A) > after, "the survivor's ioerr_cnt did not rise during the run")


@scenario("scsi-wrong-drive-pulled", bus="scsi")
def scsi_wrong_drive_pulled(lab, check):
    """virtio-scsi: the technician pulls the survivor instead of the target:
    halt at the pull step naming the drive that vanished."""
    lab.create_array()

    def on_step(tech, step, text):
        if step == "pull":
            lab.machine.pull(SERIAL_A)  # the wrong one

    out = Technician(lab, on_step).run(MEMBER_NO_SMART, SERIAL_B)
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "pull", f"halted at {halt and halt['step']}")
    text = json.dumps(halt) if halt else ""
    check.that(SERIAL_A in text and "vanished" in text, f"the halt does not name the vanished {SERIAL_A}: {text}")
    check.that(out.halt is not None and SERIAL_A in (out.halt or ""), "the terminal's halt block does not name it")


@scenario("scsi-survivor-errors", bus="scsi")
def scsi_survivor_errors(lab, check):
    """virtio-scsi: while the target is out, the survivor (the only copy)
    fails reads; md has no mirror to turn to and marks nothing: the kernel's
    error counts (ioerr_cnt, I/O error records in the kernel log) halt the
    run."""
    lab.create_array()
    seen = {}
    sector = DATA_OFFSET_SECTORS + BAD_MD_SECTOR
    rules = [{"event": "read_aio", "errno": 5, "sector": sector + i * 8, "once": False}
             for i in range(4)]

    def on_step(tech, step, text):
        if step == "pull":
            tech.pull_as_told(text)
        elif step == "insert":
            disk = lab.disk_of(SERIAL_A)
            seen["disk"] = disk
            seen["ioerr_before"] = lab.ioerr_cnt(SERIAL_A)
            lab.machine.inject_errors(SERIAL_A, rules)
            # Direct reads of the broken region of md0 (one mirror left).
            seen["dd"] = lab.shell.status(
                f"dd if=/dev/md0 of=/dev/null bs=4k count=4 skip={BAD_MD_SECTOR // 8} iflag=direct")
            seen["ioerr_after"] = lab.ioerr_cnt(SERIAL_A)
            seen["md"] = lab.shell.run(
                f"cat /sys/block/md0/md/dev-{disk}/state /sys/block/md0/md/dev-{disk}/errors "
                f"/sys/block/md0/md/dev-{disk}/bad_blocks")

    out = Technician(lab, on_step).run(MEMBER_NO_SMART, SERIAL_B)
    lab.machine.clear_errors(SERIAL_A)
    log = lab.kernel_log()
    records = kernel_io_errors(log)
    lab.save("kernel-io-errors.txt", "\n".join(records) + "\n")
    lab.save("kernel-view.txt", "\n".join(f"== {k}\n{v}" for k, v in seen.items()))
    check.that(out.code == 3, f"exit code {out.code}, want 3 (halted)")
    halt = out.halted()
    check.that(halt is not None and halt["step"] == "insert", f"halted at {halt and halt['step']}")
    text = json.dumps(halt["violations"]) if halt else ""
    check.that(SERIAL_A in text, f"the halt does not name {SERIAL_A}: {text}")
    # md marks nothing (one mirror left: the read error goes back to the
    # reader). What halts is the kernel's own count: the SCSI layer's
    # `ioerr_cnt` rises with each failed try of the read (swapguard's own
    # SMART probes are left out of it), and the block layer logs one record
    # once the retries are spent; whichever a look sees first.
    check.that("kernel.io_errors" in text or "io.ioerr_cnt" in text,
               f"the halt names neither kernel.io_errors nor io.ioerr_cnt: {text}")
    disk = seen.get("disk")
    check.that(any(f"dev {disk}," in r for r in records),
               f"the kernel logged no block-layer I/O error record for {disk}: {records}")


@scenario("sata-first-steps", bus="sata")
def sata_first_steps(lab, check):
    """SATA (AHCI) drives, which QEMU cannot hot-plug: md-replace-member's
    preflight and steps through the pull (the kernel's removal of the disk),
    then two SMART polls while waiting for the new drive; no halt, stopped
    with an interrupt (exit 130)."""
    lab.create_array()
    lab.capture("sata-clean")
    lab.save("sata-view-A.txt", scsi_view(lab, SERIAL_A))
    before, after = probe_rise(lab, SERIAL_A)
    check.that(after > before, f"smartctl no longer raises ioerr_cnt ({before} -> {after}): "
               "kernel changed? the discount is then untested here")
    seen = {}

    def on_step(tech, step, text):
        if step == "pull":
            tech.pull_as_told(text)
        elif step == "insert":
            # No drive can be inserted. Watch through two SMART polls, then
            # stop swapguard as a technician's Ctrl-C would.
            seen["ioerr_before"] = lab.ioerr_cnt(SERIAL_A)
            time.sleep(2 * SMART_POLL + 5)
            seen["ioerr_after"] = lab.ioerr_cnt(SERIAL_A)
            lab.shell.run("kill -INT $(pidof swapguard)")

    out = Technician(lab, on_step).run(MEMBER, SERIAL_B)
    check.that(out.code == 130, f"exit code {out.code}, want 130 (interrupted); halt: {out.halt}")
    check.that(out.halted() is None, f"halted: {out.halted()}")
    steps = ["antistatic", "fail", "remove", "locate", "pull"]
    check.that(out.steps_completed() == steps, f"steps completed {out.steps_completed()}")
    rise = seen.get("ioerr_after", 0) - seen.get("ioerr_before", 0)
    lab.say(f"  survivor ioerr_cnt rose by {rise} during the insert step (swapguard's SMART polls)")
    check.that(rise > 0, "no SMART poll ran during the insert step")


# ---------------------------------------------------------------------------
# detection latency


def latency_md_fail(lab, check, samples):
    """md state change: fail the survivor with mdadm while swapguard watches
    the insert step of the hot runbook."""
    for i in range(samples):
        seen = {}

        def on_step(tech, step, text):
            if step == "insert":
                disk = lab.disk_of(SERIAL_A)
                seen["stamp"] = lab.shell.run(helper_fail_member(disk), timeout=60)

        out = Technician(lab, on_step).run(HOT, SERIAL_B)
        halt = out.halted()
        ok = check.that(out.code == 3 and halt is not None, f"sample {i}: exit {out.code}, halt {halt}")
        if ok and "tv_sec" in seen.get("stamp", ""):
            # `before`: mdadm not yet started; `seen`: the helper saw the
            # member's state say faulty (its poll loop is a few ms late).
            before, after = seen["stamp"].split("seen", 1)
            latency = decided_at(out) - parse_adjtimex(after)
            bound = decided_at(out) - parse_adjtimex(before)
            lab.say(f"  md state change to halt: {latency * 1000:.0f} ms "
                    f"({bound * 1000:.0f} ms from before mdadm ran)")
            lab.figures.append(("md-state-change", latency))
            lab.figures.append(("mdadm-fail-start", bound))
            lab.figures.append(("md-state-change (halted)", journal_time(halt) - parse_adjtimex(after)))
        reset_array(lab)


def latency_write_errors(lab, check, samples):
    """I/O error records: write errors on the survivor while swapguard
    watches the insert step of the hot runbook."""
    for i in range(samples):
        seen = {}

        def on_step(tech, step, text):
            if step == "insert":
                disk = lab.disk_of(SERIAL_A)
                lab.machine.inject_errors(SERIAL_A, write_error_rules())
                seen["stamp"] = lab.shell.run(helper_write_errors(disk), timeout=120)

        out = Technician(lab, on_step).run(HOT, SERIAL_B)
        lab.machine.clear_errors(SERIAL_A)
        halt = out.halted()
        ok = check.that(out.code == 3 and halt is not None, f"sample {i}: exit {out.code}, halt {halt}")
        if ok and "tv_sec" in seen.get("stamp", ""):
            latency = decided_at(out) - parse_adjtimex(seen["stamp"])
            lab.say(f"  md bad-block record to halt: {latency * 1000:.0f} ms "
                    f"({norm(seen['stamp'].split('state=')[-1])})")
            lab.figures.append(("io-error-record", latency))
            lab.figures.append(("io-error-record (halted)",
                                journal_time(halt) - parse_adjtimex(seen["stamp"])))
        reset_array(lab)


def latency_vanish(lab, check, samples):
    """A survivor vanishes (pulled by mistake) while swapguard watches the
    insert step of the hot runbook; put back afterwards."""
    for i in range(samples):
        seen = {}

        def on_step(tech, step, text):
            if step == "insert":
                disk = lab.disk_of(SERIAL_A)
                lab.shell.run(helper_vanish(disk))
                seen["drive"] = lab.machine.drive_by_serial(SERIAL_A)
                lab.machine.pull(SERIAL_A)

        out = Technician(lab, on_step).run(HOT, SERIAL_B)
        halt = out.halted()
        ok = check.that(out.code == 3 and halt is not None, f"sample {i}: exit {out.code}, halt {halt}")
        stamp = lab.shell.run("cat /tmp/vanish.out; rm -f /tmp/vanish.out")
        if ok and "tv_sec" in stamp:
            latency = decided_at(out) - parse_adjtimex(stamp)
            lab.say(f"  survivor vanished to halt: {latency * 1000:.0f} ms")
            lab.figures.append(("device-vanished", latency))
            lab.figures.append(("device-vanished (halted)", journal_time(halt) - parse_adjtimex(stamp)))
        if "drive" in seen:
            drive = seen["drive"]
            lab.machine.insert(drive.bay, SERIAL_A, image=drive.image)
            wait_for_disk(lab, SERIAL_A)
        reset_array(lab)


def decided_at(out):
    """When the guard decided to halt: the journal's `halting` entry,
    written before the halt's own full look (SMART of every drive), which
    the `halted` entry follows; `halted` for builds without it."""
    found = out.events("halting") or out.events("halted")
    return journal_time(found[0])


def wait_for_disk(lab, serial, timeout=60.0):
    deadline = time.monotonic() + timeout
    while lab.disk_of(serial) is None:
        if time.monotonic() > deadline:
            raise LabError(f"the drive {serial} did not appear in the guest")
        lab.shell.run("usleep 100000")


def reset_array(lab):
    """A fresh md0 over the two drives (no resync: --assume-clean)."""
    disks = " ".join(f"/dev/{lab.disk_of(s)}" for s in [SERIAL_A, SERIAL_B])
    lab.shell.run("mdadm --stop /dev/md0 >/dev/null 2>&1; "
                  f"mdadm --zero-superblock {disks} 2>/dev/null; true")
    lab.create_array()


@scenario("latency")
def latency(lab, check):
    """Detection latency, measured: guest-side stamps of the kernel showing
    the fault vs swapguard's `halting` journal entry (and its `halted`
    entry, after the halt's own look)."""
    samples = lab.samples
    lab.create_array()
    latency_md_fail(lab, check, samples)
    latency_write_errors(lab, check, samples)
    latency_vanish(lab, check, samples)
    for kind in ["md-state-change", "io-error-record", "device-vanished"]:
        values = sorted(v for k, v in lab.figures if k == kind)
        if check.that(len(values) == samples, f"{kind}: {len(values)} of {samples} samples measured"):
            # Reported, not asserted: timing is measured and written down
            # (docs/performance.md), never a pass/fail condition of a test.
            # What the test asserts is that every fault was halted on.
            median = values[len(values) // 2]
            print(f"{kind}: median {median * 1000:.0f} ms (goal: at most 1000 ms)")


# Scenarios in their own files register through `scenario` above; they
# import this file as `lab` (the same module when run as a script).
sys.modules.setdefault("lab", sys.modules[__name__])
import btrfs_scenarios  # noqa: E402,F401
import zfs_lab  # noqa: E402,F401


# ---------------------------------------------------------------------------
# main


def prerequisites(names=()):
    """What the lab needs on the host (for `names`); a list of what is missing."""
    missing = []
    kinds = sorted({GUESTS[n] for n in names if n in GUESTS})
    for tool in ["qemu-system-x86_64", "busybox", "mdadm", "smartctl", "cpio", "modprobe"] \
            + [t for kind in kinds for t in GUEST_TOOLS.get(kind, [])]:
        if not shutil.which(tool) and not Path("/usr/sbin", tool).exists() \
                and not Path("/sbin", tool).exists():
            missing.append(f"`{tool}` not found")
    if find_kernel() is None:
        missing.append("no Debian kernel (/boot/vmlinuz-* with /lib/modules/<version>)")
    return missing


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help="scenario names (default: all but latency)")
    parser.add_argument("--list", action="store_true", help="list the scenarios")
    parser.add_argument("--swapguard", default=str(REPO / "target/release/swapguard"),
                        help="the swapguard binary to put in the guest")
    parser.add_argument("--work", help="where guests, logs and transcripts go (kept)")
    parser.add_argument("--latency", type=int, metavar="N", default=0,
                        help="also measure detection latency with N samples of each kind")
    parser.add_argument("--figures", help="write the measured figures to this JSON file")
    parser.add_argument("--skip-status", type=int, default=0, metavar="N",
                        help="exit status when the lab is skipped outside CI (default 0)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()

    if args.list:
        for name, fn in SCENARIOS.items():
            print(f"{name:30} {norm(fn.__doc__)}")
        return 0
    names = args.scenarios or [n for n in SCENARIOS if not n.endswith("latency")]
    if args.latency and not any(n.endswith("latency") for n in names):
        names.append("latency")
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2

    missing = prerequisites(names)
    if missing:
        why = "; ".join(missing)
        if os.environ.get("CI") == "true":
            print(f"LAB FAILED: cannot run the lab in CI: {why}", file=sys.stderr)
            return 1
        print(f"SKIPPED (not in CI): {why}; skipped scenarios: {', '.join(names)}; "
              "install them with scripts/test-all.sh as root")
        return args.skip_status
    swapguard = Path(args.swapguard)
    if not swapguard.exists():
        print(f"`{swapguard}` not found: build it first (cargo build --release)", file=sys.stderr)
        return 2

    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="swapguard-lab-"))
    work.mkdir(parents=True, exist_ok=True)
    kernel, version = find_kernel()
    started = time.monotonic()
    binary = work / "swapguard"
    shutil.copy2(swapguard, binary)
    subprocess.run(["strip", str(binary)], check=False, capture_output=True)
    extra = {
        "/runbooks/md-replace-member.toml": REPO / "runbooks/md-replace-member.toml",
        "/runbooks/md-replace-hot.toml": REPO / "runbooks/md-replace-hot.toml",
        "/runbooks/lab-pull-first.toml": LAB / "runbooks/lab-pull-first.toml",
        "/runbooks/lab-member-smart-optional.toml": LAB / "runbooks/lab-member-smart-optional.toml",
        "/lab/capture.sh": LAB / "capture.sh",
    }
    initramfs = build_initramfs(work, binary, version, extra)
    variants = {}  # variant -> initramfs path, or the error that stopped its build
    for name in names:
        variant = OPTIONS.get(name, {}).get("initramfs")
        if variant and variant not in variants:
            try:
                variants[variant] = INITRAMFS[variant](work, binary, version, extra)
            except Exception as e:  # every scenario that needs it fails with this
                variants[variant] = LabError(f"cannot build the `{variant}` guest: {e}")
    initramfs_of = {None: initramfs}
    for kind in sorted({GUESTS[n] for n in names if n in GUESTS}):
        # Only when a scenario needs it: e.g. btrfs's module and tools.
        files, modules, binaries = GUEST_KINDS[kind](work)
        initramfs_of[kind] = build_initramfs(work, binary, version, {**extra, **files}, modules,
                                             binaries, image=f"initramfs-{kind}")
    print(f"lab: kernel {version}, swapguard {swapguard}, work {work}", flush=True)

    passed, failed, figures = [], [], []
    for name in names:
        print(f"== {name}: {norm(SCENARIOS[name].__doc__)}", flush=True)
        t0 = time.monotonic()
        check = Check()
        bus, wwns = MACHINES[name]
        options = dict(OPTIONS.get(name, {}))
        variant = options.pop("initramfs", None)
        guest = GUESTS.get(name)
        image = variants.get(variant, initramfs) if variant else initramfs_of[guest]
        options.setdefault("size_mib", GUEST_DRIVE_MIB.get(guest, 64))
        lab = Lab(name, work, kernel, image, args.verbose, bus=bus, wwns=wwns, **options)
        lab.kernel_version = version
        lab.samples = max(args.latency, 1)
        try:
            if isinstance(image, Exception):
                raise image
            with lab:
                SCENARIOS[name](lab, check)
        except Exception as e:  # a lab failure fails the scenario, the run goes on
            check.failures.append(f"{type(e).__name__}: {e}")
            if args.verbose:
                traceback.print_exc()
        figures.extend(lab.figures)
        took = time.monotonic() - t0
        if check.failures:
            failed.append(name)
            print(f"FAIL {name} ({took:.0f} s); logs in {lab.work}")
            for f in check.failures:
                print(f"  - {f}")
        else:
            passed.append(name)
            print(f"ok   {name} ({took:.0f} s)")
    if figures:
        print("detection latency (fault shown by the kernel -> swapguard's halt journal entry):")
        by_kind = {}
        for kind, value in figures:
            by_kind.setdefault(kind, []).append(value)
        for kind, values in by_kind.items():
            values.sort()
            print(f"  {kind:24} n={len(values)}  min {values[0] * 1000:.0f} ms  "
                  f"median {values[len(values) // 2] * 1000:.0f} ms  max {values[-1] * 1000:.0f} ms")
        if args.figures:
            Path(args.figures).write_text(json.dumps(by_kind, indent=2) + "\n")
    print(f"lab took {time.monotonic() - started:.0f} s; logs in {work}")
    print(f"{len(passed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
