//! Linux whole disks, whatever array they belong to: who a drive is
//! (`identity.rs`: serial, WWN, bay, transport) and whether it is blank
//! (`blank.rs`), and what a path names (`devpath.rs`: a command's
//! argument resolved to the whole disks a write to it reaches), and the
//! kernel's device events a watch wakes on (`uevent.rs`). Every Linux backend (md, later btrfs and ZFS) uses these,
//! so a drive is known the same way whichever storage it is part of.

pub mod blank;
pub mod devpath;
pub mod identity;
pub mod ioerr;
pub mod kmsg;
pub mod uevent;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

/// The text of a sysfs attribute without its trailing newline; `Ok(None)`
/// when the file does not exist.
pub fn read_attr(path: &Path) -> std::io::Result<Option<String>> {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            Ok(Some(text.trim_end_matches(['\n', '\0']).to_string()))
        }
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}
