#!/bin/busybox sh
# /init of the lab guest: mount the kernel's filesystems, load the md and
# NVMe modules (and the SCSI or SATA ones when asked) in dependency order,
# then serve a control shell on the second serial port (ttyS1). The third serial port (ttyS2) is left free
# for swapguard's terminal. The console (ttyS0) only carries the kernel log.
/bin/busybox --install -s /bin
export PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /run /var/lib /dev/pts
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
ln -sf /proc/self/fd /dev/fd
hostname lab
# The modules every guest needs, then those of its drives' bus
# (`lab_bus=scsi` or `lab_bus=sata` on the kernel command line), then those
# only some guests' initramfs carries (order-extra: btrfs; order-zfs: OpenZFS's
# spl and zfs).
bus=$(sed -n 's/.*lab_bus=\([a-z]*\).*/\1/p' /proc/cmdline)
for order in /modules/order "/modules/order-$bus" /modules/order-extra /modules/order-zfs; do
  [ -f "$order" ] || continue
  while read -r module args; do
    # shellcheck disable=SC2086
    insmod "/modules/$module" $args || echo "lab-init: insmod $module failed"
  done < "$order"
done
echo "lab-init: modules loaded"

while true; do
  setsid sh -c 'stty -echo -onlcr; exec sh /dev/stdin' <>/dev/ttyS1 >&0 2>&0
  echo "lab-init: control shell ended; starting another"
done
