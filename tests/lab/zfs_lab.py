"""The ZFS scenarios of the lab: OpenZFS 2.3 (the real kernel module, built
for the guest's kernel by zfs_build.py) in the same QEMU guest as the md
scenarios, pool `tank` over partitions of the drives, swapguard run in the
guest interactively with the ZFS runbooks.

Imported by lab.py, which runs the scenarios registered here like its own
(`python3 tests/lab/lab.py zfs-replace-member`, `--list`). What differs
from an md guest:

- its initramfs also has spl.ko and zfs.ko (loaded by init.sh from
  /modules/order-zfs), `zpool`, `zfs` and `sgdisk` with their libraries,
  and the ZFS runbooks; md scenarios keep their smaller initramfs;
- 1024 MiB of memory (ZFS's ARC) and 128 MiB drives (ZFS refuses vdevs
  under 64 MiB);
- the pool is built on GPT partitions (`sgdisk -n1`), not whole disks: a
  busybox guest has no udev, and `zpool create` on a whole disk waits for
  udev to show the partition it made ("failed to detect device
  partitions", shared/reference/lab-notes.md).

See docs/lab.md ("ZFS").
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import lab as L
import zfs_build
from lab import SERIAL_A, SERIAL_B, SERIAL_C, Technician, journal_time, norm, scenario
from machine import LabError, build_initramfs, parse_adjtimex

POOL = "tank"
# The guest's view of the shipped runbooks (copied in by `zfs_initramfs`),
# and their lab variants with `smart = "optional"` for virtio-scsi disks,
# which give smartctl no health verdict (made from the shipped text at
# build time, so they cannot drift from it).
MEMBER = "/runbooks/zfs-replace-member.toml"
HOT = "/runbooks/zfs-replace-hot.toml"
RUNBOOKS = ["zfs-replace-member.toml", "zfs-replace-hot.toml"]


def smart_optional(name):
    return f"/runbooks/lab-{name[:-len('.toml')]}-smart-optional.toml"


MEMBER_NO_SMART = smart_optional("zfs-replace-member.toml")
HOT_NO_SMART = smart_optional("zfs-replace-hot.toml")

# Every ZFS guest: the zfs initramfs, memory for the ARC, drives big enough.
ZFS_MACHINE = {"initramfs": "zfs", "memory_mib": 1024, "size_mib": 128}
# Where the first partition starts on every drive (sectors of 512 bytes).
PART_START = 2048
# ZFS keeps two labels and the boot block in the first 4 MiB of a vdev
# and two labels in its last 512 KiB; data lives in between.
VDEV_DATA_START = 4 * 1024 * 1024


def zfs_scenario(name, bus="nvme", wwns=None):
    """Register a ZFS scenario with lab.py (its own guest variant)."""
    def register(fn):
        scenario(name, bus, wwns)(fn)
        L.OPTIONS[name] = dict(ZFS_MACHINE)
        return fn
    return register


# ---------------------------------------------------------------------------
# the guest


def ldd_paths(binary, env):
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, env=env)
    if out.returncode != 0 or "not found" in out.stdout:
        raise LabError(f"`ldd {binary}` cannot resolve its libraries:\n{out.stdout}{out.stderr}")
    paths = []
    for line in out.stdout.splitlines():
        m = re.search(r"=>\s*(/\S+)", line) or re.match(r"\s*(/\S+)", line)
        if m:
            paths.append(m.group(1))
    return paths


def zfs_initramfs(work, swapguard, kernel_version, extra):
    """The md guest's initramfs plus OpenZFS (modules and userland from the
    zfs_build cache, built there first when missing), sgdisk, and the ZFS
    runbooks. Built under `<work>/initramfs-zfs/`; returns its path."""
    cache = zfs_build.build(zfs_build.DEFAULT_CACHE, kernel_version,
                            log=lambda line: print(line, flush=True))
    sub = Path(work) / "initramfs-zfs"
    sub.mkdir(parents=True, exist_ok=True)
    files = dict(extra)
    lib_dir = "/usr/lib/x86_64-linux-gnu"
    env = dict(os.environ, LD_LIBRARY_PATH=str(cache / "lib"))
    sgdisk = shutil.which("sgdisk") or "/usr/sbin/sgdisk"
    if not Path(sgdisk).exists():
        raise LabError("`sgdisk` not found: install the gdisk package (scripts/test-all.sh does)")
    programs = {"/usr/sbin/zpool": cache / "bin/zpool", "/usr/sbin/zfs": cache / "bin/zfs",
                "/usr/sbin/sgdisk": Path(sgdisk)}
    for dest, src in programs.items():
        files[dest] = src
        for lib in ldd_paths(src, env):
            lib = Path(lib)
            if lib.parent == cache / "lib":
                files[f"{lib_dir}/{lib.name}"] = lib
            else:
                files[str(lib)] = lib
    order = sub / "order-zfs"
    order.write_text("spl.ko\nzfs.ko\n")
    files["/modules/order-zfs"] = order
    for module in ["spl.ko", "zfs.ko"]:
        files[f"/modules/{module}"] = cache / "modules" / module
    for name in RUNBOOKS:
        src = L.REPO / "runbooks" / name
        if not src.exists():
            continue  # the scenario that needs it says so
        files[f"/runbooks/{name}"] = src
        text = src.read_text()
        variant = re.sub(r'(?m)^smart = "required"', 'smart = "optional"', text)
        if variant == text:
            raise LabError(f"runbooks/{name} has no `smart = \"required\"` line to relax")
        dest = sub / Path(smart_optional(name)).name
        dest.write_text(f"# Lab only: runbooks/{name} with `smart = \"optional\"` for virtio-scsi\n"
                        "# disks, which give smartctl no health verdict. Made by zfs_lab.py.\n\n"
                        + variant)
        files[smart_optional(name)] = dest
    for lab_runbook in (L.LAB / "runbooks").glob("lab-zfs-*.toml"):
        files[f"/runbooks/{lab_runbook.name}"] = lab_runbook
    return build_initramfs(sub, swapguard, kernel_version, files)


L.INITRAMFS["zfs"] = zfs_initramfs


def part_of(disk):
    """The first partition's kernel name: nvme0n1 -> nvme0n1p1, sda -> sda1."""
    return f"{disk}p1" if disk[-1].isdigit() else f"{disk}1"


def partition(lab, serial):
    """One GPT partition over the whole drive (from 1 MiB), as an
    installer would make it; returns its kernel name once it shows."""
    disk = lab.disk_of(serial)
    if disk is None:
        raise LabError(f"{serial} is not in the guest")
    part = part_of(disk)
    lab.shell.run(f"sgdisk -n1:{PART_START}:0 -t1:BF01 /dev/{disk} >/dev/null")
    lab.shell.run(f"i=0; while [ ! -b /dev/{part} ] && [ $i -lt 100 ]; do usleep 50000; "
                  f"i=$((i+1)); done; [ -b /dev/{part} ]")
    return part


def create_pool(lab, serials=(SERIAL_A, SERIAL_B), layout="mirror", data_mib=24):
    """Pool `tank` as a mirror (or raidz1) over one partition of each drive,
    with `data_mib` of random data in /tank/data."""
    lab.shell.run("ln -sf /proc/mounts /etc/mtab")
    parts = [partition(lab, s) for s in serials]
    lab.shell.run(f"zpool create -f -o ashift=12 {POOL} {layout} "
                  + " ".join(f"/dev/{p}" for p in parts), timeout=120)
    lab.shell.run(f"dd if=/dev/urandom of=/{POOL}/data bs=1M count={data_mib} 2>/dev/null; "
                  f"zpool sync {POOL}", timeout=180)
    return parts


def destroy_pool(lab):
    lab.shell.status(f"zpool destroy -f {POOL}", timeout=120)


def status_json(lab):
    """`zpool status -j --json-int tank`, parsed."""
    return json.loads(lab.shell.run(f"zpool status -j --json-int {POOL}", timeout=60))


def leaves(status):
    """{leaf name: leaf} of every disk vdev of the pool, however nested."""
    found = {}

    def walk(vdevs):
        for name, v in (vdevs or {}).items():
            if v.get("vdev_type") in ("disk", "file"):
                found[name] = v
            walk(v.get("vdevs"))
    walk(status["pools"][POOL]["vdevs"])
    return found


def pool_state(status):
    return status["pools"][POOL]["state"]


def zfs_capture(lab, label):
    """Save what ZFS shows (status text and JSON, recent events) as
    `capture-zfs-<label>.txt`; returns the JSON status (or None)."""
    text = lab.shell.status(
        f"echo '$ zpool status -pP {POOL}'; zpool status -pP {POOL}; "
        f"echo '$ zpool status -j --json-int {POOL}'; zpool status -j --json-int {POOL}; "
        "echo; echo '$ zpool events -H'; zpool events -H", timeout=120)[1]
    lab.save(f"capture-zfs-{label}.txt",
             f"# captured by tests/lab/zfs_lab.py, scenario {lab.name}, {label}, OpenZFS "
             f"{zfs_build.ZFS_VERSION}, kernel {lab.kernel_version}\n{text}")
    m = re.search(r"^\{.*\}$", text, re.M)
    return json.loads(m.group(0)) if m else None


def image_digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def overwrite_survivor(lab, serial, step_mib=2, chunk_kib=64):
    """Random bytes written straight into the drive's image (behind the
    guest's back) every `step_mib` through the vdev's data region, so some
    land under blocks of /tank/data and the pool's metadata. Returns how
    many chunks were written."""
    drive = lab.machine.drive_by_serial(serial)
    part_start = PART_START * 512
    size = drive.image.stat().st_size
    offset = part_start + VDEV_DATA_START
    count = 0
    while offset + chunk_kib * 1024 < size - 8 * 1024 * 1024:
        lab.machine.overwrite(serial, offset, os.urandom(chunk_kib * 1024))
        offset += step_mib * 1024 * 1024
        count += 1
    return count


# Every write to the drive fails with EIO (blkdebug). `iotype` keeps the
# rule off flushes: the host's own flush when the node is switched back
# would fail too.
WRITE_ERRORS = [{"event": "write_aio", "iotype": "write", "errno": 5, "once": False}]


# ---------------------------------------------------------------------------
# guest-side stamps: the moment ZFS shows a fault, on the guest's clock

def helper_event_stamp(classes, out="/tmp/zev.out"):
    """Follow `zpool events -f -H` in the background; stamp the guest's clock
    (adjtimex) at the first event whose class matches one of `classes`
    (a `case` pattern each), then stop. Started before the fault."""
    pattern = "|".join(classes)
    return (f"zpool events -c >/dev/null; ( zpool events -f -H {POOL} | while read -r t1 t2 cls rest; do "
            f"case \"$cls\" in {pattern}) adjtimex | grep tv_ > {out}.tmp; echo \"class=$cls\" >> {out}.tmp; "
            f"mv {out}.tmp {out}; break;; esac; done; kill $(pidof zpool) 2>/dev/null ) "
            f"</dev/null >/dev/null 2>&1 &")


def read_stamp(lab, out="/tmp/zev.out", timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        rc, text = lab.shell.status(f"cat {out}")
        if rc == 0 and "tv_usec" in text:
            lab.shell.run(f"rm -f {out}")
            return text
        if time.monotonic() > deadline:
            return None
        time.sleep(0.5)


# ---------------------------------------------------------------------------
# scenarios


@zfs_scenario("zfs-guest")
def zfs_guest(lab, check):
    """The ZFS guest alone (no swapguard): pool over partitions, then a pull,
    write errors (blkdebug), an overwrite and a scrub, each captured."""
    create_pool(lab)
    st = zfs_capture(lab, "healthy")
    check.that(st and pool_state(st) == "ONLINE", "the new pool is not ONLINE")
    check.that(st and len(leaves(st)) == 2, "the pool has not two leaves")
    # Bytes overwritten under one mirror, then a scrub: checksum errors.
    n = overwrite_survivor(lab, SERIAL_A)
    lab.shell.run(f"zpool scrub -w {POOL}", timeout=300)
    st = zfs_capture(lab, "after-overwrite-scrub")
    a = part_of(lab.disk_of(SERIAL_A))
    cks = st and leaves(st).get(a, {}).get("checksum_errors", 0)
    lab.say(f"  {n} chunks overwritten on {a}; checksum errors after the scrub: {cks}")
    check.that(cks and cks > 0, f"no checksum errors on {a} after the scrub")
    lab.shell.run(f"zpool clear {POOL}")
    # Write errors on one leaf.
    lab.machine.inject_errors(SERIAL_A, WRITE_ERRORS)
    lab.shell.status(f"dd if=/dev/urandom of=/{POOL}/w bs=128k count=64 2>/dev/null; "
                     f"zpool sync {POOL}", timeout=180)
    time.sleep(3)
    st = zfs_capture(lab, "after-write-errors")
    leaf = st and leaves(st).get(a, {})
    lab.say(f"  after write errors: pool {st and pool_state(st)}, {a} {leaf.get('state')} "
            f"write_errors {leaf.get('write_errors')}")
    check.that(leaf and leaf.get("write_errors", 0) > 0, f"no write errors on {a}")
    lab.machine.clear_errors(SERIAL_A)
    lab.shell.run(f"zpool clear {POOL}", timeout=120)
    # A pull.
    lab.machine.pull(SERIAL_B)
    time.sleep(3)
    st = zfs_capture(lab, "after-pull")
    lab.say(f"  after the pull: pool {st and pool_state(st)}, leaves "
            f"{ {k: v['state'] for k, v in leaves(st).items()} if st else None}")
    check.that(st and any(v["state"] == "REMOVED" for v in leaves(st).values()),
               "no leaf REMOVED after the pull")
