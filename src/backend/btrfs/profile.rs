//! btrfs chunk profiles, and how many devices a chunk of each can lose.
//!
//! A btrfs file system is as redundant as its least redundant chunk: one
//! `single` data chunk on a RAID1 file system (written while it was mounted
//! `degraded`) holds the only copy of that data. The guard judges the
//! lowest tolerance over every data, metadata and system chunk present.

use std::fmt;

/// A block-group profile, as `btrfs filesystem df` prints it (`single`,
/// `DUP`, `RAID1`, ...) or as sysfs names its directory (`raid1`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Profile {
    Single,
    Dup,
    Raid0,
    Raid1,
    Raid1c3,
    Raid1c4,
    Raid10,
    Raid5,
    Raid6,
}

impl Profile {
    /// Case-insensitive; `None` for anything else.
    pub fn parse(text: &str) -> Option<Profile> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "single" => Profile::Single,
            "dup" => Profile::Dup,
            "raid0" => Profile::Raid0,
            "raid1" => Profile::Raid1,
            "raid1c3" => Profile::Raid1c3,
            "raid1c4" => Profile::Raid1c4,
            "raid10" => Profile::Raid10,
            "raid5" => Profile::Raid5,
            "raid6" => Profile::Raid6,
            _ => return None,
        })
    }

    /// How many devices may be lost without losing a chunk of this profile.
    /// `DUP` keeps two copies on one device: it survives a bad sector, not
    /// a lost device.
    pub fn tolerance(self) -> u32 {
        match self {
            Profile::Single | Profile::Dup | Profile::Raid0 => 0,
            Profile::Raid1 | Profile::Raid10 | Profile::Raid5 => 1,
            Profile::Raid1c3 | Profile::Raid6 => 2,
            Profile::Raid1c4 => 3,
        }
    }

    /// The lowercase name btrfs accepts in `-dconvert=`/`-mconvert=`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Single => "single",
            Profile::Dup => "dup",
            Profile::Raid0 => "raid0",
            Profile::Raid1 => "raid1",
            Profile::Raid1c3 => "raid1c3",
            Profile::Raid1c4 => "raid1c4",
            Profile::Raid10 => "raid10",
            Profile::Raid5 => "raid5",
            Profile::Raid6 => "raid6",
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kinds of chunk that hold the file system (GlobalReserve is an
/// in-memory reservation, not a chunk on disk, and is always `single`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ChunkKind {
    Data,
    Metadata,
    System,
}

impl ChunkKind {
    /// `Data`, `Metadata`, `System` (df) or `data`, `metadata`, `system`
    /// (sysfs). `Data+Metadata` (mixed block groups) counts as data.
    pub fn parse(text: &str) -> Option<ChunkKind> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "data" | "data+metadata" | "mixed" => ChunkKind::Data,
            "metadata" => ChunkKind::Metadata,
            "system" => ChunkKind::System,
            _ => return None,
        })
    }
}

impl fmt::Display for ChunkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChunkKind::Data => "data",
            ChunkKind::Metadata => "metadata",
            ChunkKind::System => "system",
        })
    }
}

/// One kind of chunk in one profile, with its allocated bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Allocation {
    pub kind: ChunkKind,
    pub profile: Profile,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

/// How many devices the file system can lose: the lowest tolerance over
/// every allocation that holds bytes (`total_bytes > 0`). `None` when
/// there is no allocation at all, which a mounted file system never shows:
/// the caller treats that as unreadable, not as redundant.
pub fn tolerance(allocations: &[Allocation]) -> Option<u32> {
    allocations
        .iter()
        .filter(|a| a.total_bytes > 0)
        .map(|a| a.profile.tolerance())
        .min()
}

/// Allocations less redundant than the most redundant profile of their
/// kind: the `single` chunks a degraded mount wrote beside `RAID1` ones,
/// which need `btrfs balance start -dconvert=raid1,soft` (or `-mconvert`).
pub fn weaker_than_their_kind(allocations: &[Allocation]) -> Vec<&Allocation> {
    allocations
        .iter()
        .filter(|a| a.total_bytes > 0)
        .filter(|a| {
            allocations
                .iter()
                .filter(|b| b.kind == a.kind && b.total_bytes > 0)
                .any(|b| b.profile.tolerance() > a.profile.tolerance())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alloc(kind: ChunkKind, profile: Profile, total: u64) -> Allocation {
        Allocation {
            kind,
            profile,
            total_bytes: total,
            used_bytes: 0,
        }
    }

    #[test]
    fn profiles_parse_in_both_spellings() {
        for (text, want) in [
            ("single", Some(Profile::Single)),
            ("DUP", Some(Profile::Dup)),
            ("RAID1", Some(Profile::Raid1)),
            ("raid1c3", Some(Profile::Raid1c3)),
            ("RAID1C4", Some(Profile::Raid1c4)),
            ("RAID10", Some(Profile::Raid10)),
            ("raid5", Some(Profile::Raid5)),
            ("RAID6", Some(Profile::Raid6)),
            ("raid7", None),
            ("", None),
        ] {
            assert_eq!(Profile::parse(text), want, "{text}");
        }
    }

    #[test]
    fn the_weakest_chunk_sets_the_tolerance() {
        use ChunkKind::*;
        let healthy = [
            alloc(Data, Profile::Raid1, 64),
            alloc(Metadata, Profile::Raid1c3, 32),
            alloc(System, Profile::Raid1, 8),
        ];
        assert_eq!(tolerance(&healthy), Some(1));
        assert!(weaker_than_their_kind(&healthy).is_empty());

        let degraded_writes = [
            alloc(Data, Profile::Single, 96),
            alloc(Data, Profile::Raid1, 64),
            alloc(Metadata, Profile::Raid1, 32),
            alloc(System, Profile::Raid1, 8),
        ];
        assert_eq!(tolerance(&degraded_writes), Some(0));
        let weak = weaker_than_their_kind(&degraded_writes);
        assert_eq!(weak.len(), 1);
        assert_eq!((weak[0].kind, weak[0].profile), (Data, Profile::Single));

        // A profile directory left with no bytes holds nothing.
        let emptied = [
            alloc(Data, Profile::Single, 0),
            alloc(Data, Profile::Raid1, 64),
        ];
        assert_eq!(tolerance(&emptied), Some(1));
        assert!(weaker_than_their_kind(&emptied).is_empty());

        // DUP metadata on a multi-device file system survives no device loss.
        let dup = [
            alloc(Data, Profile::Raid1, 64),
            alloc(Metadata, Profile::Dup, 32),
        ];
        assert_eq!(tolerance(&dup), Some(0));

        assert_eq!(tolerance(&[]), None);
    }
}
