//! The state directory: journals, locks, the quarantine registry and any
//! other file swapguard keeps between runs. It is root's alone.
//!
//! swapguard runs as root, so every file it opens by name under a directory
//! someone else can write is a way for that someone to make root write
//! where they choose (a `locks/md0.lock` symlink to `/etc/...`), or to make
//! it forget (delete `quarantine.json` and the registry reads empty). This
//! module is the only place that opens the state directory and what is in
//! it, and it holds these lines:
//!
//! - The directory is reached by walking its path from `/` one component at
//!   a time with `O_DIRECTORY|O_NOFOLLOW`: no component may be a symlink.
//!   Every directory on the way must be owned by root (or, for a non-root
//!   user, by that user) and not writable by group or others, like sshd
//!   checks `~/.ssh`. One exception: a root-owned sticky directory such as
//!   `/tmp` may be world-writable, because in a sticky directory no one but
//!   the owner of an entry can rename or remove it, and the entry below it
//!   is checked in turn. The state directory itself and its subdirectories
//!   must be owned by the effective user and are created (and kept) 0700.
//! - The checked descriptor is kept; every file is opened relative to it
//!   (`openat`) with `O_NOFOLLOW`, and what was opened is checked with
//!   `fstat` on that descriptor (a regular file, ours, one link, mode 0600).
//!   Modes are fixed with `fchmod` on the descriptor, never by name.
//! - Names are validated components (see [`component`]): no `/`, no `..`,
//!   no control characters, not empty, not too long.
//! - A marker file written when the directory is initialised records that
//!   a registry exists; from then on a missing registry is an error, never
//!   an empty one.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

/// The quarantine registry's file name (src/quarantine.rs reads and writes
/// it; the state directory creates it at init, so that a registry missing
/// later is an error and not an empty registry).
pub const REGISTRY_FILE: &str = "quarantine.json";

/// The registry a state directory starts with: no drives. Kept equal to
/// `quarantine::empty_text()` by a test there.
pub(crate) const REGISTRY_EMPTY: &str = "{\n  \"version\": 1,\n  \"drives\": []\n}\n";

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{AT_FDCWD, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, mkdirat};

/// The subdirectory for session journals.
pub const SESSIONS: &str = "sessions";
/// The subdirectory for per-array lock files.
pub const LOCKS: &str = "locks";
/// Written when the state directory is initialised: its presence says the
/// quarantine registry was created, so a missing registry is an error.
pub const MARKER: &str = "state-version";
/// The longest name accepted for a file in the state directory.
pub const MAX_NAME: usize = 128;

/// The state directory (or a path in it) is not safe to use: a symlink, the
/// wrong owner, writable by others, a missing registry. The user has to fix
/// the directory; exit code 2.
#[derive(Debug)]
pub struct Unsafe(pub String);

impl std::fmt::Display for Unsafe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unsafe {}

fn refuse(text: String) -> anyhow::Error {
    Unsafe(text).into()
}

/// The name an array's lock file and journals go by: the array's own name,
/// except a MegaRAID virtual drive's address, whose `/` become `_`
/// (`/c0/v0` → `c0_v0`). Any other name is kept as given, for
/// [`component`] to accept or refuse.
pub fn array_file_name(array: &str) -> String {
    if crate::backend::megaraid::facts::parse_vd_address(array).is_some() {
        array.trim_start_matches('/').replace('/', "_")
    } else {
        array.to_string()
    }
}

/// Check `name` can be one path component of a file in the state directory:
/// ASCII letters, digits, `-`, `_`, `.`, `:` and `@`; not starting with `.`
/// or `-`; at most [`MAX_NAME`] bytes. `what` names it in the error
/// (e.g. "array name").
pub fn component<'a>(what: &str, name: &'a str) -> Result<&'a str, String> {
    let shown = crate::sanitize::sanitize(name, false);
    if name.is_empty() {
        return Err(format!("the {what} is empty"));
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "the {what} is {} bytes long; at most {MAX_NAME} are accepted",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')))
    {
        return Err(format!(
            "the {what} `{shown}` contains {}; only letters, digits and `-_.:@` are accepted",
            match bad {
                '/' => "`/`".to_string(),
                c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
                c => format!("`{}`", crate::sanitize::sanitize(&c.to_string(), false)),
            }
        ));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(format!("the {what} `{shown}` starts with `{}`", &name[..1]));
    }
    Ok(name)
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

fn mode_of(st: &FileStat) -> u32 {
    st.st_mode & 0o7777
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

fn is_regular(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFREG.bits()
}

/// A directory on the way to the state directory: owned by root or by us,
/// not writable by group or others unless root-owned and sticky.
fn check_ancestor(st: &FileStat, shown: &Path) -> Result<()> {
    let me = euid();
    if !is_dir(st) {
        return Err(refuse(format!("`{}` is not a directory", shown.display())));
    }
    if st.st_uid != 0 && st.st_uid != me {
        return Err(refuse(format!(
            "`{}` is owned by uid {}, not by root{}: another user could replace the state directory below it; use a state directory whose every parent is root's",
            shown.display(),
            st.st_uid,
            if me == 0 {
                String::new()
            } else {
                format!(" or uid {me}")
            }
        )));
    }
    let mode = mode_of(st);
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(sticky && st.st_uid == 0) {
        return Err(refuse(format!(
            "`{}` is writable by group or others (mode {mode:04o}): another user could replace the state directory below it; remove their write permission (`chmod go-w`)",
            shown.display()
        )));
    }
    Ok(())
}

/// The state directory or one of its subdirectories: ours, a directory, not
/// writable by anyone else. Read permission for others is taken away (by
/// descriptor); write permission for others is refused, since someone may
/// already have changed what is inside.
fn check_own_dir(fd: &OwnedFd, shown: &Path) -> Result<()> {
    let st = fstat(fd.as_fd()).with_context(|| format!("cannot stat `{}`", shown.display()))?;
    let me = euid();
    if !is_dir(&st) {
        return Err(refuse(format!("`{}` is not a directory", shown.display())));
    }
    if st.st_uid != me {
        return Err(refuse(format!(
            "`{}` is owned by uid {}, not by uid {me} who runs swapguard; the state directory must be {}'s alone (`chown` it, or use another `--state-dir`)",
            shown.display(),
            st.st_uid,
            if me == 0 { "root" } else { "this user" }
        )));
    }
    let mode = mode_of(&st);
    if mode & 0o022 != 0 {
        return Err(refuse(format!(
            "`{}` is writable by group or others (mode {mode:04o}): someone else may have changed the journals, locks or quarantine registry in it; check its contents, then `chmod 700` it",
            shown.display()
        )));
    }
    if mode & 0o7077 != 0 {
        fchmod(fd.as_fd(), Mode::from_bits_truncate(0o700))
            .with_context(|| format!("cannot make `{}` private", shown.display()))?;
    }
    Ok(())
}

/// A file in the state directory: regular, ours, one link, mode 0600.
fn check_private_file(file: &File, shown: &Path) -> Result<()> {
    let st = fstat(file.as_fd()).with_context(|| format!("cannot stat `{}`", shown.display()))?;
    if !is_regular(&st) {
        return Err(refuse(format!(
            "`{}` is not a regular file; move it aside and check who put it there",
            shown.display()
        )));
    }
    let me = euid();
    if st.st_uid != me {
        return Err(refuse(format!(
            "`{}` is owned by uid {}, not by uid {me}; check who put it there",
            shown.display(),
            st.st_uid
        )));
    }
    if st.st_nlink != 1 {
        return Err(refuse(format!(
            "`{}` has {} hard links; a state file has exactly one",
            shown.display(),
            st.st_nlink
        )));
    }
    let mode = mode_of(&st);
    if mode != 0o600 {
        return Err(refuse(format!(
            "`{}` has mode {mode:04o}, not 0600; check who changed it, then `chmod 600` it",
            shown.display()
        )));
    }
    Ok(())
}

fn open_dir_at<Fd: AsFd>(dir: Fd, name: &Path) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Why `openat(dir, name, O_DIRECTORY|O_NOFOLLOW)` failed, in words. Linux
/// says `ENOTDIR` for a symlink there, so look at what the entry is.
fn explain_open<Fd: AsFd>(
    dir: Fd,
    name: &Path,
    e: Errno,
    shown: &Path,
    what: &str,
) -> anyhow::Error {
    let symlink = e == Errno::ELOOP
        || nix::sys::stat::fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits());
    match e {
        _ if symlink => refuse(format!(
            "`{}` is a symlink; swapguard does not follow symlinks in its state directory{what}",
            shown.display()
        )),
        Errno::ENOTDIR => refuse(format!("`{}` is not a directory", shown.display())),
        e => anyhow::Error::from(e).context(format!("cannot open `{}`", shown.display())),
    }
}

/// Walk `path` from `/`, checking every directory on the way; with `create`,
/// make the missing ones (0700). Returns the state directory's descriptor,
/// or `None` when it does not exist and `create` is false.
fn walk(path: &Path, create: bool) -> Result<Option<OwnedFd>> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(path)
    };
    let mut names = Vec::new();
    for c in abs.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(n) => names.push(n),
            Component::ParentDir => {
                return Err(refuse(format!(
                    "the state directory `{}` contains `..`; give its path without it",
                    path.display()
                )));
            }
            Component::Prefix(_) => {}
        }
    }
    let mut shown = PathBuf::from("/");
    let mut fd = open_dir_at(AT_FDCWD, Path::new("/")).context("cannot open `/`")?;
    let root_st = fstat(fd.as_fd()).context("cannot stat `/`")?;
    check_ancestor(&root_st, &shown)?;
    let count = names.len();
    for (i, name) in names.into_iter().enumerate() {
        let last = i + 1 == count;
        shown.push(name);
        let next = match open_dir_at(fd.as_fd(), Path::new(name)) {
            Ok(next) => next,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(Errno::ENOENT) => {
                match mkdirat(fd.as_fd(), Path::new(name), Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(anyhow::Error::from(e)
                            .context(format!("cannot create `{}`", shown.display())));
                    }
                }
                let next = open_dir_at(fd.as_fd(), Path::new(name))
                    .map_err(|e| explain_open(fd.as_fd(), Path::new(name), e, &shown, ""))?;
                // Whatever the umask was.
                fchmod(next.as_fd(), Mode::from_bits_truncate(0o700))
                    .with_context(|| format!("cannot make `{}` private", shown.display()))?;
                next
            }
            Err(e) => {
                return Err(explain_open(
                    fd.as_fd(),
                    Path::new(name),
                    e,
                    &shown,
                    "; give the real path with `--state-dir`",
                ));
            }
        };
        if last {
            check_own_dir(&next, &shown)?;
        } else {
            let st = fstat(next.as_fd())
                .with_context(|| format!("cannot stat `{}`", shown.display()))?;
            check_ancestor(&st, &shown)?;
        }
        fd = next;
    }
    if count == 0 {
        return Err(refuse("`/` cannot be the state directory".into()));
    }
    Ok(Some(fd))
}

/// A checked handle on the state directory. Everything in it is opened
/// through this.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    dir: OwnedFd,
}

impl StateDir {
    /// Open the state directory for writing: create it (0700) when missing,
    /// check it and every parent, and initialise it (the quarantine
    /// registry and the marker) the first time.
    pub fn init(path: &Path) -> Result<StateDir> {
        let dir = walk(path, true)?.context("the state directory vanished while it was created")?;
        let state = StateDir {
            path: path.to_path_buf(),
            dir,
        };
        if !state.exists(MARKER)? {
            if !state.exists(REGISTRY_FILE)? {
                state.replace(REGISTRY_FILE, REGISTRY_EMPTY.as_bytes())?;
            }
            state.replace(MARKER, b"swapguard state directory version 1\n")?;
        } else if !state.exists(REGISTRY_FILE)? {
            return Err(state.registry_missing());
        }
        Ok(state)
    }

    /// Open an existing state directory for reading, checked like
    /// [`init`](Self::init); `None` when there is none (nothing was ever
    /// written here).
    pub fn existing(path: &Path) -> Result<Option<StateDir>> {
        Ok(walk(path, false)?.map(|dir| StateDir {
            path: path.to_path_buf(),
            dir,
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self, sub: Option<&str>, name: &str) -> PathBuf {
        let mut p = self.path.clone();
        if let Some(sub) = sub {
            p.push(sub);
        }
        p.push(name);
        p
    }

    /// Whether `name` exists directly in the state directory (a symlink
    /// counts as existing).
    fn exists(&self, name: &str) -> Result<bool> {
        match nix::sys::stat::fstatat(
            self.dir.as_fd(),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(_) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(anyhow::Error::from(e).context(format!(
                "cannot stat `{}`",
                self.shown(None, name).display()
            ))),
        }
    }

    /// A subdirectory (`sessions`, `locks`): checked like the state
    /// directory; with `create`, made (0700) when missing.
    pub fn subdir(&self, sub: &str, create: bool) -> Result<Option<OwnedFd>> {
        let shown = self.path.join(sub);
        let fd = match open_dir_at(self.dir.as_fd(), Path::new(sub)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(Errno::ENOENT) => {
                match mkdirat(self.dir.as_fd(), sub, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => {
                        return Err(anyhow::Error::from(e)
                            .context(format!("cannot create `{}`", shown.display())));
                    }
                }
                let fd = open_dir_at(self.dir.as_fd(), Path::new(sub))
                    .map_err(|e| explain_open(self.dir.as_fd(), Path::new(sub), e, &shown, ""))?;
                fchmod(fd.as_fd(), Mode::from_bits_truncate(0o700))
                    .with_context(|| format!("cannot make `{}` private", shown.display()))?;
                fd
            }
            Err(e) => {
                return Err(explain_open(
                    self.dir.as_fd(),
                    Path::new(sub),
                    e,
                    &shown,
                    "",
                ));
            }
        };
        check_own_dir(&fd, &shown)?;
        Ok(Some(fd))
    }

    fn dir_fd(&self, sub: Option<&str>, create: bool) -> Result<Option<OwnedFd>> {
        match sub {
            Some(sub) => self.subdir(sub, create),
            None => self
                .dir
                .try_clone()
                .map(Some)
                .context("cannot duplicate the state directory handle"),
        }
    }

    fn open_at(
        &self,
        sub: Option<&str>,
        name: &str,
        flags: OFlag,
        create_dir: bool,
    ) -> Result<Option<(File, PathBuf)>> {
        component("file name", name).map_err(refuse)?;
        let shown = self.shown(sub, name);
        let Some(dir) = self.dir_fd(sub, create_dir)? else {
            return Ok(None);
        };
        match openat(
            dir.as_fd(),
            name,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => {
                let file = File::from(fd);
                if flags.contains(OFlag::O_CREAT) {
                    let st = fstat(file.as_fd())
                        .with_context(|| format!("cannot stat `{}`", shown.display()))?;
                    if is_regular(&st)
                        && st.st_uid == euid()
                        && st.st_nlink == 1
                        && mode_of(&st) != 0o600
                    {
                        // Ours (created now, whatever the umask, or by an
                        // older version): private, by descriptor.
                        fchmod(file.as_fd(), Mode::from_bits_truncate(0o600)).with_context(
                            || format!("cannot make `{}` private", shown.display()),
                        )?;
                    }
                }
                check_private_file(&file, &shown)?;
                Ok(Some((file, shown)))
            }
            Err(Errno::ENOENT) if !flags.contains(OFlag::O_CREAT) => Ok(None),
            Err(Errno::ELOOP) => Err(refuse(format!(
                "`{}` is a symlink; swapguard does not follow symlinks in its state directory; remove it and check who put it there",
                shown.display()
            ))),
            Err(Errno::EEXIST) => Err(anyhow::Error::from(std::io::Error::from(
                std::io::ErrorKind::AlreadyExists,
            ))
            .context(format!("`{}` already exists", shown.display()))),
            Err(e) => {
                Err(anyhow::Error::from(e).context(format!("cannot open `{}`", shown.display())))
            }
        }
    }

    /// Create a new file for appending (a journal); fails if it exists.
    pub fn create_new(&self, sub: Option<&str>, name: &str) -> Result<(File, PathBuf)> {
        self.open_at(
            sub,
            name,
            OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_EXCL,
            true,
        )
        .map(|f| f.expect("created"))
    }

    /// Open or create a lock file (read-write, never truncated).
    pub fn lock_file(&self, sub: Option<&str>, name: &str) -> Result<(File, PathBuf)> {
        self.open_at(sub, name, OFlag::O_RDWR | OFlag::O_CREAT, true)
            .map(|f| f.expect("created"))
    }

    /// Open an existing private file; `None` when it does not exist.
    pub fn open_existing(
        &self,
        sub: Option<&str>,
        name: &str,
        flags: OFlag,
    ) -> Result<Option<(File, PathBuf)>> {
        self.open_at(sub, name, flags, false)
    }

    /// Open a root-only key or secret file (mode 0600) directly in the state
    /// directory, creating it with `initial` when missing (e.g. a journal
    /// HMAC key, `journal.key`). Returns the file opened for reading.
    pub fn secret_file(&self, name: &str, initial: impl FnOnce() -> Vec<u8>) -> Result<File> {
        if let Some((file, _)) = self.open_existing(None, name, OFlag::O_RDONLY)? {
            return Ok(file);
        }
        self.replace(name, &initial())?;
        self.open_existing(None, name, OFlag::O_RDONLY)?
            .map(|(f, _)| f)
            .with_context(|| {
                format!(
                    "`{}` vanished after it was written",
                    self.shown(None, name).display()
                )
            })
    }

    fn registry_missing(&self) -> anyhow::Error {
        refuse(format!(
            "the quarantine registry `{}` is missing, but this state directory had one; it was deleted or moved. Restore it from a backup or rebuild it from the journals; until then nothing can be checked against it",
            self.shown(None, REGISTRY_FILE).display()
        ))
    }

    /// Read the registry's text; `None` when there is none and the state
    /// directory was never initialised. Missing after initialisation is an
    /// error.
    pub fn read_registry(&self) -> Result<Option<String>> {
        let name = REGISTRY_FILE;
        let Some((mut file, shown)) = self.open_existing(None, name, OFlag::O_RDONLY)? else {
            if self.exists(MARKER)? {
                return Err(self.registry_missing());
            }
            return Ok(None);
        };
        let mut text = String::new();
        file.read_to_string(&mut text).with_context(|| {
            format!("cannot read the quarantine registry `{}`", shown.display())
        })?;
        Ok(Some(text))
    }

    /// Replace `name` in the state directory atomically: a new temporary
    /// file (0600, `O_EXCL`), fsync, rename over the old one, fsync of the
    /// directory.
    pub fn replace(&self, name: &str, bytes: &[u8]) -> Result<()> {
        component("file name", name).map_err(refuse)?;
        let temp = format!(".{name}.{}.tmp", std::process::id());
        // A leftover of a crashed process with the same pid.
        let _ = nix::unistd::unlinkat(
            self.dir.as_fd(),
            temp.as_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
        let shown = self.shown(None, &temp);
        let fd = openat(
            self.dir.as_fd(),
            temp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .with_context(|| format!("cannot create `{}`", shown.display()))?;
        let mut file = File::from(fd);
        fchmod(file.as_fd(), Mode::from_bits_truncate(0o600))
            .with_context(|| format!("cannot make `{}` private", shown.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write `{}`", shown.display()))?;
        nix::fcntl::renameat(self.dir.as_fd(), temp.as_str(), self.dir.as_fd(), name)
            .with_context(|| format!("cannot replace `{}`", self.shown(None, name).display()))?;
        nix::unistd::fsync(self.dir.as_fd())
            .with_context(|| format!("cannot sync directory `{}`", self.path.display()))?;
        Ok(())
    }

    /// The names of the regular files in `sub` ending in `suffix`, sorted.
    pub fn list(&self, sub: &str, suffix: &str) -> Result<Vec<String>> {
        if self.subdir(sub, false)?.is_none() {
            return Ok(Vec::new());
        }
        let dir = self.path.join(sub);
        let mut out: Vec<String> = std::fs::read_dir(&dir)
            .with_context(|| format!("cannot list `{}`", dir.display()))?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(suffix))
            .collect();
        out.sort();
        Ok(out)
    }
}

/// Open an existing private file by path (a journal being resumed or read)
/// without following a symlink, and check it like every state file.
pub fn open_private_path(path: &Path, flags: OFlag) -> Result<File> {
    let fd = openat(
        AT_FDCWD,
        path,
        flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::ELOOP => refuse(format!(
            "`{}` is a symlink; swapguard does not follow symlinks to its journals",
            path.display()
        )),
        e => anyhow::Error::from(e).context(format!("cannot open `{}`", path.display())),
    })?;
    let file = File::from(fd);
    check_private_file(&file, path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn component_refuses_hostile_names() {
        for (name, want) in [
            ("", "is empty"),
            ("..", "starts with `.`"),
            (".hidden", "starts with `.`"),
            ("-rf", "starts with `-`"),
            ("../../etc", "`/`"),
            ("/dev/md16", "`/`"),
            ("md0\nmd1", "control character (U+000A)"),
            ("md0\u{1b}[2J", "control character (U+001B)"),
            ("md 0", "`-_.:@`"),
        ] {
            let err = component("array name", name).unwrap_err();
            assert!(err.contains(want), "{name:?}: {err}");
        }
        let long = "m".repeat(MAX_NAME + 1);
        assert!(
            component("array name", &long)
                .unwrap_err()
                .contains("at most")
        );
        for ok in ["md0", "md127", "md0-20260101T000000Z-42", "a.b_c:d@e"] {
            assert_eq!(component("array name", ok), Ok(ok));
        }
    }

    // Private whatever the umask: tests/state_dir.rs
    // `state_directories_are_private_whatever_the_umask` runs swapguard
    // under `umask 000`. A unit test here must not change the umask: it is
    // the whole test process's, and a test creating a directory at the
    // same moment got a 0777 one (found as a failure of the resume test).

    #[test]
    fn a_group_writable_parent_is_refused_but_a_sticky_root_one_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("p");
        std::fs::create_dir(&parent).unwrap();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o775)).unwrap();
        let err = StateDir::init(&parent.join("state")).unwrap_err();
        assert!(err.downcast_ref::<Unsafe>().is_some(), "{err:#}");
        assert!(
            format!("{err:#}").contains("writable by group or others"),
            "{err:#}"
        );
        // Nothing was created below the unsafe parent.
        assert!(!parent.join("state").exists());
        // /tmp itself (root-owned, sticky, world-writable) is fine.
        if nix::unistd::geteuid().is_root() || std::fs::metadata("/tmp").is_ok() {
            StateDir::init(&tmp.path().join("ok")).unwrap();
        }
    }

    #[test]
    fn a_symlinked_state_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", tmp.path().join("link")).unwrap();
        let err = StateDir::init(&tmp.path().join("link")).unwrap_err();
        assert!(format!("{err:#}").contains("is a symlink"), "{err:#}");
    }

    #[test]
    fn a_missing_registry_after_init_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::init(tmp.path()).unwrap();
        assert!(state.read_registry().unwrap().is_some());
        std::fs::remove_file(tmp.path().join(REGISTRY_FILE)).unwrap();
        let err = state.read_registry().unwrap_err();
        assert!(format!("{err:#}").contains("is missing"), "{err:#}");
        // Without the marker (a directory never initialised) it is empty.
        std::fs::remove_file(tmp.path().join(MARKER)).unwrap();
        assert!(state.read_registry().unwrap().is_none());
    }

    #[test]
    fn secret_file_is_created_once_private() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::init(tmp.path()).unwrap();
        let mut text = String::new();
        state
            .secret_file("journal.key", || b"k1".to_vec())
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "k1");
        let mut again = String::new();
        state
            .secret_file("journal.key", || b"k2".to_vec())
            .unwrap()
            .read_to_string(&mut again)
            .unwrap();
        assert_eq!(again, "k1");
        std::fs::set_permissions(
            tmp.path().join("journal.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(state.secret_file("journal.key", Vec::new).is_err());
    }
}
