# Sourced by the guest's control shell (tests/lab/lab.py, Lab.capture):
# prints the parts of /proc and /sys that swapguard's md backend reads, as
# records a test can rebuild into a tree (src/backend/md/capture_tests.rs):
#   L <path> -> <link target>     a symbolic link, target as the kernel has it
#   F <path>                      a file; its lines follow, each after "| "
#   X <path>                      a binary file; its bytes follow in hex after "| "
#   E <path> <message>            a file whose read fails (e.g. a SCSI disk's
#                                 `wwid` without a WWN: EINVAL)
lab_dump_file() { [ -f "$1" ] && { echo "F $1"; sed 's/^/| /' "$1"; }; }
lab_dump_attr() {
  [ -f "$1" ] || return 0
  if v=$(cat "$1" 2>&1); then echo "F $1"; printf '%s\n' "$v" | sed 's/^/| /'
  else echo "E $1 ${v##*: }"; fi
}
lab_dump_hex() {
  [ -f "$1" ] || return 0
  echo "X $1"; echo "|$(od -An -v -tx1 "$1" | tr -s ' \n' '  ')"
}
lab_dump_link() { [ -L "$1" ] && echo "L $1 -> $(readlink "$1")"; }
lab_capture() {
  lab_dump_file /proc/mdstat
  for s in /sys/bus/pci/slots/*; do lab_dump_file "$s/address"; done
  for b in /sys/block/*; do
    name=${b##*/}
    lab_dump_link "$b"
    real=$(readlink -f "$b")
    case "$name" in
      md*)
        md=$real/md
        for a in array_state level raid_disks degraded sync_action sync_completed sync_speed mismatch_cnt; do
          lab_dump_file "$md/$a"
        done
        for d in "$md"/dev-*; do
          [ -d "$d" ] || continue
          for a in state errors slot bad_blocks; do lab_dump_file "$d/$a"; done
          lab_dump_link "$d/block"
        done
        ;;
      *)
        lab_dump_file "$real/size"
        lab_dump_file "$real/wwid"
        lab_dump_link "$real/device"
        for h in "$real"/holders/*; do lab_dump_link "$h"; done
        ctrl=$(readlink -f "$real/device")
        for a in serial model firmware_rev; do lab_dump_file "$ctrl/$a"; done
        # SCSI and SATA disks (sd*): the SCSI device's identity and counter.
        for a in vendor rev wwid ioerr_cnt; do lab_dump_attr "$ctrl/$a"; done
        lab_dump_hex "$ctrl/vpd_pg80"
        ;;
    esac
  done
}
