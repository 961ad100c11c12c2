"""The lab machine: a QEMU guest booted from Debian's own kernel with
hot-pluggable NVMe or virtio-scsi drives, or SATA drives, and the host's
hands on it.

What lives here:
- `build_initramfs`: busybox, mdadm, smartctl, swapguard (each with the
  shared libraries ldd names), the md, NVMe, virtio-scsi and AHCI modules in
  `modprobe --show-depends` order, and `init.sh` as /init.
- `Qmp`: the QEMU monitor (commands and events).
- `Serial`: one of the guest's serial ports as a socket, read by a thread
  into a transcript that callers wait on.
- `Shell`: the control shell the guest's init serves on ttyS1.
- `Machine`: one guest and its drive bays, with the powers a test has:
  pull a drive, insert a new one, set an NVMe critical warning, switch
  read/write errors on through blkdebug, overwrite bytes under one mirror.

Python 3 standard library only. Nothing here sleeps where it can wait for
an event: serial output and QMP events are waited on with deadlines.
"""

import glob
import gzip
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Under TCG everything is slow; these are generous on purpose.
BOOT_TIMEOUT = 120.0
QMP_TIMEOUT = 30.0


class LabError(Exception):
    """Something in the lab itself went wrong (not a swapguard verdict)."""


# ---------------------------------------------------------------------------
# kernel and initramfs


def find_kernel():
    """Debian's kernel image and its module version, or None."""
    images = sorted(glob.glob("/boot/vmlinuz-*"))
    for image in reversed(images):
        version = image[len("/boot/vmlinuz-"):]
        if Path("/lib/modules", version, "modules.dep").exists():
            return Path(image), version
    return None


# Modules every guest loads (md and NVMe), and those only a guest with
# SCSI or SATA drives loads (init.sh reads `lab_bus=` from the kernel
# command line): virtio-scsi with its PCI transport, or AHCI; sd_mod is the
# SCSI disk driver both present their disks through.
MODULES = ["raid1", "nvme"]
BUS_MODULES = {"scsi": ["virtio_pci", "virtio_scsi", "sd_mod"], "sata": ["ahci", "sd_mod"]}

# The kinds of drive bays a lab machine can have:
# - nvme: one pcie-root-port per bay with native PCIe hot-plug;
# - scsi: virtio-scsi `scsi-hd` disks, target number = bay, hot-pluggable;
# - sata: ich9 AHCI `ide-hd` disks, port = bay - 1, NOT hot-pluggable in
#   QEMU (a pull is the kernel's removal of the disk, `Machine.pull`).
BUSES = ("nvme", "scsi", "sata")


def module_order(version, modules=MODULES, seen=None):
    """(path, args) in the order `modprobe --show-depends` gives, each once
    (and none already in `seen`)."""
    seen = set() if seen is None else seen
    order = []
    for module in modules:
        out = subprocess.run(
            ["modprobe", "-S", version, "--show-depends", module],
            check=True, capture_output=True, text=True,
        ).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) < 2 or parts[0] != "insmod":
                continue  # `builtin ...`: nothing to load
            path = parts[1]
            if path in seen:
                continue
            seen.add(path)
            order.append((path, parts[2:]))
    return order


def shared_libraries(binary):
    """Absolute paths of the shared libraries (and loader) `binary` needs."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        line = line.strip()
        match = re.search(r"=>\s*(/\S+)", line) or re.match(r"(/\S+)", line)
        if match:
            libs.append(match.group(1))
    return libs


def _copy_into(root, src, dest=None):
    """Copy `src` (following links) to the same path under `root`."""
    src = Path(src)
    dest = root / (dest or str(src)).lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(os.path.realpath(src), dest)
    return dest


def build_initramfs(work, swapguard, kernel_version, extra_files=None, extra_modules=(),
                    extra_binaries=(), image="initramfs"):
    """Build `<work>/<image>.cpio.gz` and return its path. `extra_modules`
    (loaded after the others, `/modules/order-extra`) and `extra_binaries`
    (with their libraries) are for guests of one kind only, e.g. btrfs."""
    root = Path(work) / image
    if root.exists():
        shutil.rmtree(root)
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "usr/local/bin", "proc", "sys",
              "dev", "tmp", "run", "etc", "modules", "var/lib"]:
        (root / d).mkdir(parents=True, exist_ok=True)
    busybox = shutil.which("busybox") or "/bin/busybox"
    _copy_into(root, busybox, "/bin/busybox")
    tools = {
        "mdadm": "/usr/sbin/mdadm",
        "smartctl": "/usr/sbin/smartctl",
    }
    binaries = [(shutil.which(name) or default, default) for name, default in tools.items()]
    binaries.append((str(swapguard), "/usr/local/bin/swapguard"))
    binaries.append((busybox, "/bin/busybox"))  # no libraries when static
    binaries += [(str(src), str(src)) for src in extra_binaries]
    libs = set()
    for src, dest in binaries:
        if not Path(src).exists():
            raise LabError(f"`{src}` not found: is its package installed?")
        _copy_into(root, src, dest)
        libs.update(shared_libraries(src))
    for lib in sorted(libs):
        _copy_into(root, lib)
    base = module_order(kernel_version)
    orders = {"order": base}
    for bus, modules in BUS_MODULES.items():
        orders[f"order-{bus}"] = module_order(kernel_version, modules, {p for p, _ in base})
    if extra_modules:
        # Only the base order is always loaded; a bus order is not.
        orders["order-extra"] = module_order(kernel_version, list(extra_modules),
                                             {p for p, _ in base})
    for file, order in orders.items():
        lines = []
        for path, args in order:
            name = Path(path).name
            _copy_into(root, path, f"/modules/{name}")
            lines.append(" ".join([name] + args) + "\n")
        (root / "modules" / file).write_text("".join(lines))
    (root / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
    (root / "etc/group").write_text("root:x:0:\n")
    # mdadm reads /etc/mdadm/mdadm.conf when it exists; an empty one keeps
    # it from scanning for arrays to auto-assemble.
    (root / "etc/mdadm").mkdir()
    (root / "etc/mdadm/mdadm.conf").write_text("")
    for dest, src in (extra_files or {}).items():
        _copy_into(root, src, dest)
    init = root / "init"
    shutil.copy2(HERE / "init.sh", init)
    init.chmod(0o755)
    out = Path(work) / f"{image}.cpio.gz"
    listing = subprocess.run(
        ["find", "."], cwd=root, check=True, capture_output=True
    ).stdout
    cpio = subprocess.run(
        ["cpio", "--quiet", "-o", "-H", "newc", "-R", "0:0"],
        cwd=root, input=listing, check=True, capture_output=True,
    ).stdout
    with gzip.open(out, "wb", compresslevel=1) as f:
        f.write(cpio)
    return out


# ---------------------------------------------------------------------------
# sockets


def _connect_unix(path, deadline):
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise LabError(f"cannot connect to `{path}`")
            time.sleep(0.05)  # QEMU has not created the socket yet


class Qmp:
    """The QEMU monitor: one command at a time, events kept as they come."""

    def __init__(self, path, log):
        self.sock = _connect_unix(path, time.monotonic() + QMP_TIMEOUT)
        self.log = log
        self.cond = threading.Condition()
        self.responses = []
        self.events = []
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        self._wait_response()  # the greeting
        self.command("qmp_capabilities")

    def _read(self):
        buf = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if not line.strip():
                    continue
                msg = json.loads(line)
                self.log(f"qmp <- {line.decode(errors='replace')}")
                with self.cond:
                    if "event" in msg:
                        msg["host_time"] = time.time()
                        self.events.append(msg)
                    else:
                        self.responses.append(msg)
                    self.cond.notify_all()

    def _wait_response(self):
        deadline = time.monotonic() + QMP_TIMEOUT
        with self.cond:
            while not self.responses:
                if self.closed:
                    raise LabError("QMP connection closed")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LabError("no answer from QMP")
                self.cond.wait(left)
            return self.responses.pop(0)

    def command(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        line = json.dumps(msg)
        self.log(f"qmp -> {line}")
        self.sock.sendall(line.encode() + b"\n")
        reply = self._wait_response()
        if "error" in reply:
            raise LabError(f"QMP `{name}` failed: {reply['error'].get('desc')}")
        return reply.get("return")

    def wait_event(self, name, match=None, timeout=QMP_TIMEOUT, since=0):
        """The first event `name` (from index `since`) whose data has every
        key/value of `match`; returns (index, event)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(since, len(self.events)):
                    ev = self.events[i]
                    data = ev.get("data", {})
                    if ev["event"] == name and all(data.get(k) == v for k, v in (match or {}).items()):
                        return i, ev
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise LabError(f"no QMP event `{name}` {match or ''} within {timeout:.0f} s")
                self.cond.wait(left)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Serial:
    """A guest serial port on a socket. Everything read is kept (with
    carriage returns and escape sequences removed) in `text`; `pos` is how
    far the caller has consumed it."""

    def __init__(self, path, log_path):
        self.sock = _connect_unix(path, time.monotonic() + QMP_TIMEOUT)
        self.log_file = open(log_path, "ab")
        self.cond = threading.Condition()
        self.text = ""
        self.pos = 0
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                with self.cond:
                    self.closed = True
                    self.cond.notify_all()
                return
            self.log_file.write(data)
            self.log_file.flush()
            chunk = ANSI.sub("", data.decode("utf-8", errors="replace")).replace("\r", "")
            with self.cond:
                self.text += chunk
                self.cond.notify_all()

    def write(self, text):
        self.sock.sendall(text.encode())

    def wait_for(self, pattern, timeout, what=None):
        """Wait until `pattern` (a regex) matches the unread text; consume
        through the match and return it."""
        regex = re.compile(pattern, re.S)
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                m = regex.search(self.text, self.pos)
                if m:
                    self.pos = m.end()
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    tail = self.text[self.pos:][-1500:]
                    raise LabError(
                        f"waited {timeout:.0f} s for {what or pattern!r}; unread output ends:\n{tail}"
                    )
                self.cond.wait(left)

    def wait_any(self, patterns, timeout):
        """Wait for the earliest of several named regexes in the unread
        text; returns (name, match) and consumes through it."""
        compiled = {name: re.compile(p, re.S) for name, p in patterns.items()}
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                best = None
                for name, regex in compiled.items():
                    m = regex.search(self.text, self.pos)
                    if m and (best is None or m.start() < best[1].start()):
                        best = (name, m)
                if best:
                    self.pos = best[1].end()
                    return best
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    tail = self.text[self.pos:][-1500:]
                    raise LabError(
                        f"waited {timeout:.0f} s for any of {sorted(patterns)}; unread output ends:\n{tail}"
                    )
                self.cond.wait(left)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.log_file.close()


class Shell:
    """The guest's control shell (busybox sh reading ttyS1, echo off)."""

    def __init__(self, serial):
        self.serial = serial
        self.count = 0

    def run(self, command, timeout=60.0):
        """Run `command` in the guest and return its output (stdout and
        stderr together); a non-zero status raises."""
        rc, out = self.status(command, timeout)
        if rc != 0:
            raise LabError(f"guest command failed ({rc}): {command}\n{out}")
        return out

    def status(self, command, timeout=60.0):
        """(status, output) of `command`; never raises on a non-zero status."""
        self.count += 1
        token = f"{os.getpid()}-{self.count}"
        self.serial.write(f"{{ {command}\n}} 2>&1; echo \"@@RC=$? {token}@@\"\n")
        start = self.serial.pos
        m = self.serial.wait_for(rf"@@RC=(\d+) {re.escape(token)}@@\n", timeout, what=command)
        return int(m.group(1)), self.serial.text[start:m.start()]

    def read(self, path):
        return self.run(f"cat {path}").rstrip("\n")

    def now(self):
        """The guest's wall clock in seconds (µs resolution)."""
        return parse_adjtimex(self.run("adjtimex"))


def parse_adjtimex(text):
    sec = re.search(r"time\.tv_sec:\s*(\d+)", text)
    usec = re.search(r"time\.tv_usec:\s*(\d+)", text)
    if not (sec and usec):
        raise LabError(f"cannot read the time from adjtimex output:\n{text}")
    return int(sec.group(1)) + int(usec.group(1)) / 1e6


# ---------------------------------------------------------------------------
# the machine


class Drive:
    """One emulated drive: its image, block nodes and QEMU device."""

    def __init__(self, name, serial, image, bay, bus="nvme", wwn=None):
        self.name = name          # letter: A, B, C...
        self.serial = serial
        self.image = Path(image)
        self.bay = bay            # pcie-root-port / SCSI target / AHCI port + 1
        self.bus = bus
        self.wwn = wwn            # SCSI/SATA WWN (hex), None for none
        self.device = f"nv{name}" if bus == "nvme" else f"sd{name}"
        self.file_node = f"f{name}"
        self.raw_node = f"r{name}"
        self.debug_node = None    # blkdebug node while errors are on

    def __repr__(self):
        return f"Drive({self.serial} in bay {self.bay})"


class Machine:
    """One lab guest. `bays` PCIe root ports; `drives` maps bay -> serial
    for the drives present at boot."""

    def __init__(self, work, kernel, initramfs, drives, bays=3, size_mib=64, log=print,
                 bus="nvme", wwns=None, memory_mib=512):
        if bus not in BUSES:
            raise LabError(f"unknown bus `{bus}`")
        self.bus = bus
        self.wwns = wwns or {}    # serial -> WWN for SCSI/SATA drives
        self.work = Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.kernel = kernel
        self.initramfs = initramfs
        self.bays = bays
        self.size_mib = size_mib
        self.memory_mib = memory_mib  # ZFS guests need 1024
        self.log_lines = []
        self.log = log
        self.drives = {}  # bay -> Drive
        self.letters = iter("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
        self.boot_drives = drives
        self.proc = None
        self.qmp = None
        self.shell = None
        self.tech = None
        self.boot_seconds = None

    # -- life cycle -------------------------------------------------------

    def _new_drive(self, bay, serial, image=None):
        name = next(self.letters)
        if image is None:
            image = self.work / f"drive-{name}-{serial}.img"
            with open(image, "wb") as f:
                f.truncate(self.size_mib * 1024 * 1024)
        return Drive(name, serial, image, bay, self.bus, self.wwns.get(serial))

    def _device_args(self, drive):
        """QEMU `-device`/`device_add` properties for a drive in its bay."""
        props = {"id": drive.device, "serial": drive.serial, "drive": drive.raw_node}
        if drive.bus == "nvme":
            props.update(driver="nvme", bus=f"rp{drive.bay}")
        elif drive.bus == "scsi":
            props.update({"driver": "scsi-hd", "bus": "scsi0.0", "channel": 0,
                          "scsi-id": drive.bay, "lun": 0})
        else:
            props.update(driver="ide-hd", bus=f"ide.{drive.bay - 1}", model="LAB SATA DISK")
        if drive.wwn and drive.bus != "nvme":
            props["wwn"] = drive.wwn
        return props

    def start(self):
        for bay, serial in self.boot_drives.items():
            self.drives[bay] = self._new_drive(bay, serial)
        for sock in ["qmp.sock", "ctl.sock", "tech.sock"]:
            (self.work / sock).unlink(missing_ok=True)
        argv = [
            "qemu-system-x86_64",
            "-accel", "tcg", "-cpu", "max", "-M", "q35", "-m", str(self.memory_mib), "-smp", "2",
            "-display", "none", "-no-reboot", "-nodefaults",
            # Native PCIe hot-plug (pciehp), as on servers with NVMe bays:
            # the kernel then names each slot by the root port's physical
            # slot number (/sys/bus/pci/slots/<bay>), the bay number here.
            "-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
            "-kernel", str(self.kernel), "-initrd", str(self.initramfs),
            "-append", f"console=ttyS0 panic=-1 lab_bus={self.bus}",
            "-serial", f"file:{self.work / 'console.log'}",
            "-chardev", f"socket,id=ctl,path={self.work / 'ctl.sock'},server=on,wait=off",
            "-serial", "chardev:ctl",
            "-chardev", f"socket,id=tech,path={self.work / 'tech.sock'},server=on,wait=off",
            "-serial", "chardev:tech",
            "-qmp", f"unix:{self.work / 'qmp.sock'},server=on,wait=off",
        ]
        if self.bus == "nvme":
            for bay in range(1, self.bays + 1):
                argv += ["-device", f"pcie-root-port,id=rp{bay},bus=pcie.0,chassis={bay},slot={bay}"]
        elif self.bus == "scsi":
            argv += ["-device", "virtio-scsi-pci,id=scsi0,bus=pcie.0"]
        # sata: q35's own ich9 AHCI controller, buses ide.0 to ide.5.
        for drive in self.drives.values():
            props = self._device_args(drive)
            device = props.pop("driver") + "".join(f",{k}={v}" for k, v in props.items())
            argv += [
                "-blockdev", f"driver=file,node-name={drive.file_node},filename={drive.image}",
                "-blockdev", f"driver=raw,node-name={drive.raw_node},file={drive.file_node}",
                "-device", device,
            ]
        self.log("qemu: " + " ".join(argv))
        started = time.monotonic()
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL,
            stdout=open(self.work / "qemu.out", "wb"), stderr=subprocess.STDOUT,
        )
        try:
            self.qmp = Qmp(self.work / "qmp.sock", self._qmp_log)
            ctl = Serial(self.work / "ctl.sock", self.work / "ctl.log")
            self.tech = Serial(self.work / "tech.sock", self.work / "tech.log")
            self.shell = Shell(ctl)
            # The control shell answers once init has loaded the modules.
            deadline = time.monotonic() + BOOT_TIMEOUT
            while True:
                # Typed before the shell runs, this line is echoed as typed;
                # only a running shell prints the sum.
                ctl.write("echo @@UP-$((40+2))@@\n")
                try:
                    ctl.wait_for(r"@@UP-42@@\n", 2.0)
                    break
                except LabError:
                    if self.proc.poll() is not None:
                        raise LabError(f"QEMU exited with {self.proc.returncode}: {self._qemu_out()}")
                    if time.monotonic() > deadline:
                        raise LabError(f"the guest did not boot within {BOOT_TIMEOUT:.0f} s; console:\n"
                                       + self.console()[-3000:])
            # Drain the probes typed before the shell ran.
            self.shell.status("true")
            self.boot_seconds = time.monotonic() - started
            self.log(f"guest up in {self.boot_seconds:.1f} s")
        except Exception:
            self.stop()
            raise

    def _qemu_out(self):
        try:
            return (self.work / "qemu.out").read_text(errors="replace")
        except OSError:
            return ""

    def console(self):
        try:
            return (self.work / "console.log").read_text(errors="replace")
        except OSError:
            return ""

    def _qmp_log(self, line):
        with open(self.work / "qmp.log", "a") as f:
            f.write(f"{time.time():.3f} {line}\n")

    def stop(self):
        if self.qmp:
            try:
                self.qmp.command("quit")
            except LabError:
                pass
            self.qmp.close()
        if self.proc and self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for serial in [self.shell.serial if self.shell else None, self.tech]:
            if serial:
                serial.close()

    # -- the powers ---------------------------------------------------------

    def drive_by_serial(self, serial):
        for drive in self.drives.values():
            if drive.serial == serial:
                return drive
        raise LabError(f"no drive with serial `{serial}` in the lab")

    def pull(self, serial):
        """Pull a drive: `device_del`, wait for QEMU to report it gone, drop
        its block nodes. Returns the host time of DEVICE_DELETED.

        QEMU cannot unplug a SATA drive. There the pull is what the kernel
        does when a hot-plug AHCI port loses its drive (libata detaches the
        device and the SCSI layer removes the disk): the disk is deleted
        through its `device/delete` attribute in the guest, and the drive
        stays attached on QEMU's side, unreachable. Returns the host time."""
        drive = self.drive_by_serial(serial)
        if drive.bus == "sata":
            disk = self.disk_of(serial)
            if disk is None:
                raise LabError(f"{drive} is not visible in the guest")
            self.shell.run(f"echo 1 > /sys/block/{disk}/device/delete")
            del self.drives[drive.bay]
            self.log(f"pulled {drive} (kernel removal of {disk})")
            return time.time()
        since = len(self.qmp.events)
        self.qmp.command("device_del", id=drive.device)
        _, ev = self.qmp.wait_event("DEVICE_DELETED", {"device": drive.device}, since=since)
        for node in [drive.raw_node, drive.debug_node, drive.file_node]:
            if node:
                self.qmp.command("blockdev-del", **{"node-name": node})
        del self.drives[drive.bay]
        self.log(f"pulled {drive}")
        return ev["host_time"]

    def insert(self, bay, serial, image=None):
        """Insert a drive into an empty bay: new block nodes, then
        `device_add`. `image` reuses an existing image (a drive put back)."""
        if bay in self.drives:
            raise LabError(f"bay {bay} is not empty: {self.drives[bay]}")
        if self.bus == "sata":
            raise LabError("QEMU cannot hot-plug a SATA (ide-hd) drive")
        drive = self._new_drive(bay, serial, image)
        self.qmp.command("blockdev-add", driver="file", filename=str(drive.image),
                         **{"node-name": drive.file_node})
        self.qmp.command("blockdev-add", driver="raw", file=drive.file_node,
                         **{"node-name": drive.raw_node})
        self.qmp.command("device_add", **self._device_args(drive))
        self.drives[bay] = drive
        self.log(f"inserted {drive}")
        return drive

    def disk_of(self, serial):
        """The guest's kernel name of the disk with `serial`, or None. NVMe
        keeps it in `device/serial`; SCSI and SATA disks in VPD page 0x80
        (a 4-byte header, then the serial padded with spaces)."""
        out = self.shell.run(
            "for b in /sys/block/nvme* /sys/block/sd*; do [ -e $b ] || continue; n=${b##*/}; "
            "case $n in nvme*) s=$(cat $b/device/serial);; "
            "*) s=$(dd if=$b/device/vpd_pg80 bs=1 skip=4 2>/dev/null | tr -d ' \\000');; esac; "
            "echo $n $s; done")
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == serial:
                return parts[0]
        return None

    def smart_warning(self, serial, value):
        """Set the drive's NVMe SMART critical warning bits."""
        drive = self.drive_by_serial(serial)
        self.qmp.command("qom-set", path=f"/machine/peripheral/{drive.device}",
                         property="smart_critical_warning", value=value)

    def inject_errors(self, serial, rules):
        """Switch a blkdebug node with `rules` (blkdebug `inject-error`
        entries) under the drive, at run time."""
        drive = self.drive_by_serial(serial)
        self.clear_errors(serial)
        drive.debug_node = f"d{drive.name}{len(self.qmp.events)}"
        self.qmp.command("blockdev-add", driver="blkdebug", image=drive.file_node,
                         **{"node-name": drive.debug_node, "inject-error": rules})
        self.qmp.command("blockdev-reopen", options=[
            {"driver": "raw", "node-name": drive.raw_node, "file": drive.debug_node}])
        self.log(f"errors on {drive}: {rules}")

    def clear_errors(self, serial):
        drive = self.drive_by_serial(serial)
        if drive.debug_node is None:
            return
        self.qmp.command("blockdev-reopen", options=[
            {"driver": "raw", "node-name": drive.raw_node, "file": drive.file_node}])
        self.qmp.command("blockdev-del", **{"node-name": drive.debug_node})
        drive.debug_node = None

    def overwrite(self, serial, offset, data):
        """Write `data` into the drive's backing image at byte `offset`,
        behind the guest's back (silent corruption under one mirror)."""
        drive = self.drive_by_serial(serial)
        with open(drive.image, "r+b") as f:
            f.seek(offset)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
