#!/usr/bin/env bash
# Every test swapguard has, on a fresh Debian 12 machine with Rust installed.
# Installs the Debian packages the tests need when they are missing, then runs
# the format and lint checks and the whole test suite. CI runs exactly this
# (see .ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# command:package pairs the tests need:
# - the QEMU lab (tests/lab.rs, docs/lab.md) boots Debian's own kernel with
#   busybox, mdadm and smartctl; its btrfs scenarios add btrfs-progs
#   (btrfs, mkfs.btrfs) and findmnt (util-linux) to the guest, and its ZFS
#   guest gets sgdisk (the ZFS runbooks copy a partition table with it);
# - restic for the restore runbook's backup gate against a real repository
#   (tests/restic.rs);
# - mkfs.ext4 and losetup for data canaries on a loop device
#   (tests/canary_fs.rs, which also needs root and /dev/loop-control);
# - btrfs-progs for the btrfs backend's real tests on loop devices
#   (tests/btrfs_host.rs, root and a kernel with btrfs).
# - nvme-cli for the lab's nvme-health-event scenario and the side-by-side
#   run (both enable the NVMe health events in the guest), smartd
#   (smartmontools, with its smartd_warning.sh) for the side-by-side run
# - Prometheus Alertmanager, node_exporter and promtool for the fleet tests
#   (tests/fleet.rs, docs/fleet.md).
required=(
  qemu-system-x86_64:qemu-system-x86
  mdadm:mdadm
  smartctl:smartmontools
  nvme:nvme-cli
  sgdisk:gdisk
  busybox:busybox-static
  cpio:cpio
  modprobe:kmod
  restic:restic
  mkfs.ext4:e2fsprogs
  losetup:mount
  mkfs.btrfs:btrfs-progs
  findmnt:util-linux
  prometheus-alertmanager:prometheus-alertmanager
  prometheus-node-exporter:prometheus-node-exporter
  promtool:prometheus
)
missing=()
for pair in "${required[@]}"; do
  PATH="$PATH:/usr/sbin:/sbin" command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
# The lab's guest kernel: a Debian kernel image with its modules.
if ! ls /boot/vmlinuz-* >/dev/null 2>&1 || ! ls -d /lib/modules/*/kernel/drivers/md >/dev/null 2>&1; then
  missing+=(linux-image-amd64)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    if [ "${CI:-}" = true ]; then
      echo "missing Debian packages: ${missing[*]} (run as root to install them)" >&2
      exit 1
    fi
    # Outside CI the tests that need them say what they skip.
    echo "== missing Debian packages: ${missing[*]} (run as root to install them);" \
      "the tests that need them (lab, restic, canaries) will be SKIPPED" >&2
    missing=()
  fi
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# OpenZFS for the lab's ZFS guest: built for the guest's kernel on first use
# and cached outside the checkout by ZFS and kernel version
# (tests/lab/zfs_build.py; it installs the kernel headers, gcc and make it
# needs). Built here so that its output is seen; in CI a failed build stops
# the run, elsewhere the ZFS scenarios fail with the same message.
if [ "$(id -u)" -eq 0 ] && ls /boot/vmlinuz-* >/dev/null 2>&1; then
  echo "== OpenZFS for the lab guest"
  if ! python3 tests/lab/zfs_build.py; then
    if [ "${CI:-}" = true ]; then
      echo "building OpenZFS for the lab failed" >&2
      exit 1
    fi
    echo "== building OpenZFS for the lab failed; the ZFS lab scenarios will fail" >&2
  fi
fi

# ansible-core from PyPI, in a venv of the project's own (tests/fleet.rs runs
# contrib/ansible/preflight.yml against localhost with it).
venv=target/ansible-venv
has_venv() { command -v python3 >/dev/null 2>&1 && python3 -c 'import ensurepip, venv' >/dev/null 2>&1; }
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  if ! has_venv; then
    if [ "$(id -u)" -eq 0 ]; then
      echo "== installing python3-venv (for ansible-core)"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3 python3-venv
    elif [ "${CI:-}" = true ]; then
      echo "python3 with venv is missing: cannot install ansible-core (run as root)" >&2
      exit 1
    fi
  fi
  if has_venv; then
    echo "== pip install ansible-core into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet ansible-core
  else
    echo "== python3 venv missing: the Ansible test will be SKIPPED" >&2
  fi
fi

echo "== cargo fmt --check"
cargo fmt --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test --all-targets"
cargo test --all-targets --locked
echo "all tests passed"
