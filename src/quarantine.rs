//! The quarantine registry: drives that must never be written to again.
//!
//! In the incident that started this project the drive pulled as broken was
//! taken from the shelf an hour later and a backup was restored onto it. A
//! drive pulled by a runbook step (`quarantine = "target"`), or added by
//! hand with `swapguard quarantine add`, is recorded here by serial and WWN,
//! with when, by which run, why, and how it last looked. Every path that
//! writes to a drive consults the registry: new-drive acceptance, restore
//! targets (`drive` params), and command steps whose argv names a
//! quarantined drive's device. It outlives the run: it is a file under the
//! state directory, never a memory of one process.
//!
//! The file is `<state_dir>/quarantine.json`, mode 0600, replaced atomically
//! (temporary file, fsync, rename, fsync of the directory) under an `flock`,
//! so a crash never leaves half a registry and two runs never lose each
//! other's entries. An unreadable or damaged registry is an error, never an
//! empty one: the registry fails closed like every other probe.
//! A release keeps the entry, marked released with its reason, so the
//! history stays readable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::health::model::{Drive, Identity, Smart};

/// The registry file under the state directory.
pub const FILE: &str = crate::state::REGISTRY_FILE;
const LOCK: &str = "quarantine.lock";
const VERSION: u32 = 1;

/// How a drive looked the last time it was seen before quarantine.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastHealth {
    /// `in-sync`, `faulty`, `removed`, ... (the guard's vocabulary).
    pub state: String,
    /// `passed`, `FAILED`, `unreadable: ...` or `not read`.
    pub smart: String,
    /// Every error counter that was not zero.
    pub counters: BTreeMap<String, u64>,
}

impl LastHealth {
    /// Summarise a drive as seen in a snapshot.
    pub fn of(drive: &Drive) -> LastHealth {
        let state = crate::health::guard::Observed::of(Some(drive))
            .name()
            .to_string();
        let smart = match &drive.smart {
            Some(Smart::Read { passed: true, .. }) => "passed".to_string(),
            Some(Smart::Read { passed: false, .. }) => "FAILED".to_string(),
            Some(Smart::Unreadable { reason }) => format!("unreadable: {reason}"),
            None => "not read".to_string(),
        };
        let mut counters: BTreeMap<String, u64> = drive
            .counters
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        if let Some(Smart::Read { counters: c, .. }) = &drive.smart {
            counters.extend(
                c.iter()
                    .filter(|(_, v)| **v > 0)
                    .map(|(k, v)| (k.clone(), *v)),
            );
        }
        LastHealth {
            state,
            smart,
            counters,
        }
    }

    fn describe(&self) -> String {
        let mut text = format!("{}, SMART {}", self.state, self.smart);
        if !self.counters.is_empty() {
            let c: Vec<String> = self
                .counters
                .iter()
                .map(|(k, v)| format!("{k} = {v}"))
                .collect();
            text.push_str(&format!(", {}", c.join(", ")));
        }
        text
    }
}

/// A release: the drive may be used again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// RFC 3339.
    pub at: String,
    pub reason: String,
    /// The journal that records the release.
    pub session: String,
}

/// One quarantined drive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub serial: Option<String>,
    pub wwn: Option<String>,
    pub model: Option<String>,
    /// Kernel name when it was quarantined (names move; for people only).
    pub dev: Option<String>,
    pub slot: Option<String>,
    pub size_bytes: Option<u64>,
    /// When, RFC 3339.
    pub at: String,
    /// The run (journal) that quarantined it.
    pub session: String,
    /// The step that pulled it, when a runbook did.
    pub step: Option<String>,
    pub reason: String,
    pub last_health: Option<LastHealth>,
    pub released: Option<Release>,
}

impl Entry {
    /// An entry for a drive identity.
    pub fn for_drive(id: &Identity, at: String, session: String, reason: String) -> Entry {
        Entry {
            serial: id.serial.clone().filter(|s| !s.trim().is_empty()),
            wwn: id.wwn.clone().filter(|s| !s.trim().is_empty()),
            model: id.model.clone(),
            dev: Some(id.dev.clone()).filter(|d| !d.is_empty()),
            slot: id.slot.clone(),
            size_bytes: id.size_bytes,
            at,
            session,
            step: None,
            reason,
            last_health: None,
            released: None,
        }
    }

    pub fn is_active(&self) -> bool {
        self.released.is_none()
    }

    /// Whether this entry is the drive `id`: the same serial or the same WWN.
    pub fn matches(&self, id: &Identity) -> bool {
        let serial = self
            .serial
            .as_deref()
            .zip(id.serial.as_deref())
            .is_some_and(|(a, b)| same_serial(a, b));
        let wwn = self
            .wwn
            .as_deref()
            .zip(id.wwn.as_deref())
            .is_some_and(|(a, b)| same_wwn(a, b));
        serial || wwn
    }

    /// Whether `name` (as typed on a command line) is this entry's serial or WWN.
    pub fn named(&self, name: &str) -> bool {
        self.serial.as_deref().is_some_and(|s| same_serial(s, name))
            || self.wwn.as_deref().is_some_and(|w| same_wwn(w, name))
    }

    /// `serial S3Z1NB0K100002, WWN 0x5002...`
    pub fn who(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.serial {
            parts.push(format!("serial {s}"));
        }
        if let Some(w) = &self.wwn {
            parts.push(format!("WWN {w}"));
        }
        if parts.is_empty() {
            "no serial or WWN".into()
        } else {
            parts.join(", ")
        }
    }

    /// When and why, for refusals: `quarantined since 2026-01-01T00:00:40Z
    /// by run md0-...: pulled by step `pull` ...; last seen: absent, SMART passed`.
    pub fn why(&self) -> String {
        let mut text = format!(
            "quarantined since {} by run `{}`: {}",
            self.at, self.session, self.reason
        );
        if let Some(h) = &self.last_health {
            text.push_str(&format!("; last health: {}", h.describe()));
        }
        text
    }
}

/// Serials compare without surrounding blanks and case (some tools print
/// them upper case, others as the drive reports them).
fn same_serial(a: &str, b: &str) -> bool {
    let (a, b) = (a.trim(), b.trim());
    !a.is_empty() && a.eq_ignore_ascii_case(b)
}

/// WWNs come as `0x5002538e...`, `naa.5002538e...`, `eui.` or bare hex.
fn same_wwn(a: &str, b: &str) -> bool {
    let norm = |w: &str| {
        let w = w.trim().to_ascii_lowercase();
        ["wwn-0x", "wwn-", "0x", "naa.", "eui."]
            .iter()
            .find_map(|p| w.strip_prefix(p).map(str::to_string))
            .unwrap_or(w)
    };
    let (a, b) = (norm(a), norm(b));
    !a.is_empty() && a == b
}

/// The whole registry as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registry {
    pub version: u32,
    pub drives: Vec<Entry>,
}

impl Registry {
    /// Read the registry under `state_dir`. Missing is an empty registry
    /// only in a state directory that was never initialised (nothing ever
    /// written); missing afterwards, unreadable, damaged, a symlink, or not
    /// a private file of ours is an error (see [`crate::state`]).
    pub fn load(state_dir: &Path) -> Result<Registry> {
        let path = path(state_dir);
        let text = match crate::state::StateDir::existing(state_dir)? {
            Some(state) => state.read_registry()?,
            None => None,
        };
        let Some(text) = text else {
            return Ok(Registry {
                version: VERSION,
                drives: Vec::new(),
            });
        };
        let registry: Registry = serde_json::from_str(&text).with_context(|| {
            format!(
                "the quarantine registry `{}` is damaged; restore it from a backup or the journals, never delete it",
                path.display()
            )
        })?;
        if registry.version != VERSION {
            bail!(
                "the quarantine registry `{}` has version {}, this swapguard reads version {VERSION}",
                path.display(),
                registry.version
            );
        }
        Ok(registry)
    }

    pub fn active(&self) -> impl Iterator<Item = &Entry> {
        self.drives.iter().filter(|e| e.is_active())
    }

    /// The active entry for this drive, if it is quarantined.
    pub fn find(&self, id: &Identity) -> Option<&Entry> {
        self.active().find(|e| e.matches(id))
    }
}

/// Where the registry lives.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join(FILE)
}

/// Lock the registry, read it, let `change` edit it, write it back
/// atomically. Nothing is written when `change` fails.
pub fn update<R>(state_dir: &Path, change: impl FnOnce(&mut Registry) -> Result<R>) -> Result<R> {
    let state = crate::state::StateDir::init(state_dir)?;
    let (lock_file, lock_path) = state.lock_file(None, LOCK)?;
    let _lock = Flock::lock(lock_file, FlockArg::LockExclusive)
        .map_err(|(_, errno)| errno)
        .with_context(|| format!("cannot lock `{}`", lock_path.display()))?;
    let mut registry = Registry::load(state_dir)?;
    let result = change(&mut registry)?;
    registry.version = VERSION;
    save(&state, &registry)?;
    Ok(result)
}

/// The registry of a state directory just initialised: no drives (the
/// state directory writes `state::REGISTRY_EMPTY`; a test keeps the two equal).
#[cfg(test)]
pub(crate) fn empty_text() -> String {
    encode(&Registry {
        version: VERSION,
        drives: Vec::new(),
    })
    .unwrap_or_default()
}

fn encode(registry: &Registry) -> Result<String> {
    let mut text =
        serde_json::to_string_pretty(registry).context("cannot encode the quarantine registry")?;
    text.push('\n');
    Ok(text)
}

/// Write the registry: a temporary file in the same directory (0600),
/// fsync, rename over the old one, fsync the directory.
fn save(state: &crate::state::StateDir, registry: &Registry) -> Result<()> {
    state.replace(FILE, encode(registry)?.as_bytes())
}

/// Quarantine a drive. An active entry for the same drive is kept as it is
/// (the first quarantine's time and reason stay); returns whether a new
/// entry was written.
pub fn add(state_dir: &Path, entry: Entry) -> Result<bool> {
    if entry.serial.is_none() && entry.wwn.is_none() {
        bail!(
            "cannot quarantine a drive without a serial or WWN: it could not be recognised later"
        );
    }
    update(state_dir, |registry| {
        let probe = Identity {
            serial: entry.serial.clone(),
            wwn: entry.wwn.clone(),
            ..Identity::default()
        };
        if registry.find(&probe).is_some() {
            return Ok(false);
        }
        registry.drives.push(entry);
        Ok(true)
    })
}

/// Release every active entry named `name` (serial or WWN). A reason is
/// required; the release is kept in the entry.
pub fn release(state_dir: &Path, name: &str, release: Release) -> Result<Vec<Entry>> {
    if release.reason.trim().is_empty() {
        bail!("a release needs a reason: say why this drive may be used again");
    }
    update(state_dir, |registry| {
        let mut released = Vec::new();
        for entry in registry.drives.iter_mut() {
            if entry.is_active() && entry.named(name) {
                entry.released = Some(release.clone());
                released.push(entry.clone());
            }
        }
        if released.is_empty() {
            bail!(
                "no quarantined drive has serial or WWN `{name}`; `swapguard quarantine list` shows them"
            );
        }
        Ok(released)
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_state_directory_starts_with_this_empty_registry() {
        assert_eq!(crate::state::REGISTRY_EMPTY, empty_text());
    }

    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn id(serial: Option<&str>, wwn: Option<&str>) -> Identity {
        Identity {
            dev: "sdb".into(),
            serial: serial.map(str::to_string),
            wwn: wwn.map(str::to_string),
            ..Identity::default()
        }
    }

    fn entry(serial: &str, wwn: Option<&str>) -> Entry {
        Entry::for_drive(
            &id(Some(serial), wwn),
            "2026-01-01T00:00:40.000Z".into(),
            "md0-run".into(),
            "pulled by step `pull`".into(),
        )
    }

    #[test]
    fn matching_by_serial_or_wwn() {
        let e = entry("S3Z1NB0K100002", Some("0x5002538e40a10002"));
        let cases = [
            (id(Some("S3Z1NB0K100002"), None), true),
            (id(Some(" s3z1nb0k100002 "), None), true),
            (id(None, Some("naa.5002538E40A10002")), true),
            (id(Some("OTHER"), Some("5002538e40a10002")), true),
            (
                id(Some("S3Z1NB0K100003"), Some("0x5002538e40a10003")),
                false,
            ),
            (id(None, None), false),
            (id(Some(""), Some("")), false),
        ];
        for (drive, want) in cases {
            assert_eq!(e.matches(&drive), want, "{drive:?}");
        }
    }

    #[test]
    fn survives_a_restart_with_private_mode_and_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(add(dir.path(), entry("S3Z1NB0K100002", None)).unwrap());
        // The same drive again keeps the first entry.
        let mut again = entry("S3Z1NB0K100002", None);
        again.reason = "second".into();
        assert!(!add(dir.path(), again).unwrap());
        // A fresh read, as a later process would do.
        let registry = Registry::load(dir.path()).unwrap();
        assert_eq!(registry.drives.len(), 1);
        let found = registry.find(&id(Some("S3Z1NB0K100002"), None)).unwrap();
        assert_eq!(found.reason, "pulled by step `pull`");
        let mode = std::fs::metadata(path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn release_needs_a_reason_and_keeps_history() {
        let dir = tempfile::tempdir().unwrap();
        add(
            dir.path(),
            entry("S3Z1NB0K100002", Some("0x5002538e40a10002")),
        )
        .unwrap();
        let r = |reason: &str| Release {
            at: "2026-01-02T00:00:00.000Z".into(),
            reason: reason.into(),
            session: "quarantine-x".into(),
        };
        let err = release(dir.path(), "S3Z1NB0K100002", r("  ")).unwrap_err();
        assert!(err.to_string().contains("needs a reason"), "{err}");
        let err = release(dir.path(), "NOPE", r("tested")).unwrap_err();
        assert!(err.to_string().contains("no quarantined drive"), "{err}");
        let released =
            release(dir.path(), "0x5002538e40a10002", r("vendor RMA tested it")).unwrap();
        assert_eq!(released.len(), 1);
        let registry = Registry::load(dir.path()).unwrap();
        assert!(registry.find(&id(Some("S3Z1NB0K100002"), None)).is_none());
        assert_eq!(registry.drives.len(), 1, "history is kept");
        assert_eq!(
            registry.drives[0].released.as_ref().unwrap().reason,
            "vendor RMA tested it"
        );
    }

    #[test]
    fn damaged_registry_fails_closed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "{\"version\":1,\"drives\":[").unwrap();
        std::fs::set_permissions(path(dir.path()), std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = Registry::load(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("is damaged"), "{err:#}");
        // Nothing is written over a damaged registry either.
        assert!(add(dir.path(), entry("X1", None)).is_err());
        assert_eq!(
            std::fs::read_to_string(path(dir.path())).unwrap(),
            "{\"version\":1,\"drives\":["
        );
    }

    #[test]
    fn a_drive_without_serial_or_wwn_cannot_be_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let e = Entry::for_drive(&id(None, None), "t".into(), "s".into(), "r".into());
        assert!(add(dir.path(), e).is_err());
    }
}
