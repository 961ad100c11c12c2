//! smartctl's exit status, a bitmask (smartctl(8), "RETURN VALUES").
//!
//! A non-zero status does not make the JSON unusable: bits 0 and 1 mean
//! nothing was read, bit 2 that some of it may be missing, bits 3 to 5 are
//! health verdicts and bits 6 and 7 are history.

/// What each bit means, bit 0 first.
const MEANINGS: [&str; 8] = [
    // smartctl also exits 1 when it cannot tell the device type (virtio-blk).
    "command line did not parse or device type unknown",
    "device open failed, did not identify or is in low-power mode",
    "some SMART or ATA command failed or SMART data has a checksum error",
    "SMART status check says the disk is failing",
    "prefail attributes are at or below threshold now",
    "attributes were at or below threshold in the past",
    "device error log contains errors",
    "self-test log contains errors",
];

/// The meaning of each bit set in smartctl exit status `code`, bit 0 first.
/// Only bits 0 to 7 carry meaning; an exit status has no others.
pub fn describe_exit_status(code: i32) -> Vec<&'static str> {
    MEANINGS
        .iter()
        .enumerate()
        .filter(|(bit, _)| code & (1 << bit) != 0)
        .map(|(_, meaning)| *meaning)
        .collect()
}

/// A decoded exit status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct ExitBits(u8);

impl ExitBits {
    /// An exit status as reported by the process or in the JSON; `None`
    /// when it is outside 0..=255 and so cannot be smartctl's.
    pub fn from_code(code: i64) -> Option<ExitBits> {
        u8::try_from(code).ok().map(ExitBits)
    }

    /// Both sources together: a bit set in either counts.
    pub fn union(self, other: ExitBits) -> ExitBits {
        ExitBits(self.0 | other.0)
    }

    /// Bits 0 or 1: the device was not read at all.
    pub fn nothing_read(self) -> bool {
        self.0 & 0b11 != 0
    }

    /// Bit 1: the device could not be opened or identified.
    pub fn open_failed(self) -> bool {
        self.0 & 0b10 != 0
    }

    /// Bit 3: the drive's own health check says it is failing.
    pub fn disk_failing(self) -> bool {
        self.0 & 0b1000 != 0
    }

    /// Bit 7: the self-test log contains errors (ATA: failures that a later
    /// successful extended test has not outdated).
    pub fn self_test_errors(self) -> bool {
        self.0 & 0x80 != 0
    }

    /// `exit status 6: device open failed, ...; some SMART or ATA command failed, ...`
    pub fn describe(self) -> String {
        let meanings = describe_exit_status(i32::from(self.0));
        if meanings.is_empty() {
            format!("exit status {}", self.0)
        } else {
            format!("exit status {}: {}", self.0, meanings.join("; "))
        }
    }

    /// Whether no bit is set.
    pub fn is_clean(self) -> bool {
        self.0 == 0
    }
}

#[cfg(test)]
mod tests {
    use super::{ExitBits, describe_exit_status};

    #[test]
    fn describes_each_set_bit() {
        let table: [(i32, &[&str]); 7] = [
            (0, &[]),
            (1, &["command line did not parse or device type unknown"]),
            (
                2,
                &["device open failed, did not identify or is in low-power mode"],
            ),
            (
                4,
                &["some SMART or ATA command failed or SMART data has a checksum error"],
            ),
            (64, &["device error log contains errors"]),
            (
                216,
                &[
                    "SMART status check says the disk is failing",
                    "prefail attributes are at or below threshold now",
                    "device error log contains errors",
                    "self-test log contains errors",
                ],
            ),
            (
                // Bits above 7 carry no meaning and are not described.
                256 + 32,
                &["attributes were at or below threshold in the past"],
            ),
        ];
        for (code, want) in table {
            assert_eq!(describe_exit_status(code), want, "{code}");
        }
        assert_eq!(describe_exit_status(255).len(), 8);
        assert_eq!(describe_exit_status(-1).len(), 8);
    }

    #[test]
    fn decodes_bits() {
        for (code, valid, nothing_read, failing) in [
            (0, true, false, false),
            (1, true, true, false),
            (2, true, true, false),
            (4, true, false, false),
            (8, true, false, true),
            (216, true, false, true),
            (255, true, true, true),
            (256, false, false, false),
            (-1, false, false, false),
        ] {
            let bits = ExitBits::from_code(code);
            assert_eq!(bits.is_some(), valid, "{code}");
            let bits = bits.unwrap_or_default();
            assert_eq!(bits.nothing_read(), nothing_read, "{code}");
            assert_eq!(bits.disk_failing(), failing, "{code}");
        }
    }

    #[test]
    fn union_and_describe() {
        let open_failed = ExitBits::from_code(2).unwrap_or_default();
        let clean = ExitBits::from_code(0).unwrap_or_default();
        assert!(clean.is_clean());
        assert_eq!(clean.describe(), "exit status 0");
        let both = clean.union(open_failed);
        assert!(both.nothing_read());
        assert_eq!(
            both.describe(),
            "exit status 2: device open failed, did not identify or is in low-power mode"
        );
        let many = ExitBits::from_code(72).unwrap_or_default();
        assert_eq!(
            many.describe(),
            "exit status 72: SMART status check says the disk is failing; device error log contains errors"
        );
    }
}
