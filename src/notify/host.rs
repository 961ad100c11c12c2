//! The host-wide default: `[notify]` in the state directory's
//! `config.toml`, used by every runbook that has no `[notify]` of its own.
//!
//! A webhook URL can be a secret (Slack's are), so when the file has a
//! `[notify]` table it must pass the state directory's checks for private
//! files: a regular file owned by this user, mode 0600, one link, not a
//! symlink. A file without `[notify]` is left to the process runner's own
//! checks, as before.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, Result};
use nix::fcntl::OFlag;

use crate::backend::process::CONFIG_FILE;
use crate::notify::{
    DEFAULT_RETRIES, DEFAULT_TIMEOUT, FORMATS, Format, KINDS, Kind, MAX_RETRIES, MAX_TIMEOUT,
    Settings, check_url,
};

/// `[notify]` as written, in the config file or a runbook.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Written {
    pub url: Option<String>,
    pub format: Option<String>,
    pub events: Option<Vec<String>>,
    pub timeout: Option<String>,
    pub retries: Option<i64>,
    pub dry_runs: Option<bool>,
}

#[derive(serde::Deserialize)]
struct File {
    notify: Option<toml::Value>,
}

/// The host-wide `[notify]`, if the state directory's config has one.
pub fn default_settings(state_dir: &Path) -> Result<Option<Settings>> {
    let path = state_dir.join(CONFIG_FILE);
    let text = match std::fs::symlink_metadata(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot stat `{}`", path.display())),
        Ok(_) => read(&path, false)?,
    };
    if parse_file(&text, &path)?.is_none() {
        return Ok(None);
    }
    // It has a `[notify]`: read it again, held to the private-file rules.
    let text = read(&path, true)?;
    let Some(table) = parse_file(&text, &path)? else {
        return Ok(None);
    };
    let written: Written = table
        .try_into()
        .with_context(|| format!("`[notify]` in `{}` is not valid", path.display()))?;
    settings(&written)
        .map_err(|e| anyhow::anyhow!("`[notify]` in `{}`: {e}", path.display()))
        .map(Some)
}

fn parse_file(text: &str, path: &Path) -> Result<Option<toml::Value>> {
    let file: File =
        toml::from_str(text).with_context(|| format!("`{}` is not valid TOML", path.display()))?;
    Ok(file.notify)
}

fn read(path: &Path, private: bool) -> Result<String> {
    let file = if private {
        crate::state::open_private_path(path, OFlag::O_RDONLY).with_context(|| {
            format!(
                "`{}` has `[notify]` (a webhook URL can be a secret), so it must be private",
                path.display()
            )
        })?
    } else {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
            .open(path)
            .with_context(|| format!("cannot open `{}` (a symlink is refused)", path.display()))?
    };
    let mut text = String::new();
    (&file)
        .take(64 * 1024)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(text)
}

/// Check a written `[notify]` and fill in the defaults. The runbook checker
/// does the same key by key, with line and column.
pub fn settings(w: &Written) -> Result<Settings, String> {
    let Some(url) = &w.url else {
        return Err(
            "no `url`: name the webhook, e.g. `url = \"http://alertmanager:9093/api/v2/alerts\"`"
                .into(),
        );
    };
    check_url(url)?;
    let format = match &w.format {
        None => Format::Generic,
        Some(f) => parse_format(f)?,
    };
    let events = match &w.events {
        None => KINDS.iter().map(|(_, k)| *k).collect(),
        Some(list) => list
            .iter()
            .map(|e| parse_kind(e))
            .collect::<Result<_, _>>()?,
    };
    let timeout = match &w.timeout {
        None => DEFAULT_TIMEOUT,
        Some(t) => parse_timeout(t)?,
    };
    let retries = match w.retries {
        None => DEFAULT_RETRIES,
        Some(n) => parse_retries(n)?,
    };
    Ok(Settings {
        url: url.clone(),
        format,
        events,
        timeout,
        retries,
        dry_runs: w.dry_runs.unwrap_or(false),
    })
}

pub fn parse_format(text: &str) -> Result<Format, String> {
    FORMATS
        .iter()
        .find(|(n, _)| *n == text)
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            format!("unknown notify format `{text}`; expected `alertmanager`, `slack` or `generic`")
        })
}

pub fn parse_kind(text: &str) -> Result<Kind, String> {
    KINDS.iter().find(|(n, _)| *n == text).map(|(_, k)| *k).ok_or_else(|| {
        format!("unknown notify event `{text}`; expected `start`, `halt`, `refusal`, `interruption` or `finish`")
    })
}

pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text.trim()) {
        Ok(d) if d.is_zero() || d > MAX_TIMEOUT => Err(format!(
            "notify `timeout` must be more than zero and at most {}; `{text}` is not",
            humantime::format_duration(MAX_TIMEOUT)
        )),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("notify `timeout` `{text}` is not a duration: {e}")),
    }
}

pub fn parse_retries(n: i64) -> Result<u32, String> {
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= MAX_RETRIES)
        .ok_or_else(|| format!("notify `retries` must be 0 to {MAX_RETRIES}; `{n}` is not"))
}

/// The settings a session uses: the runbook's own, else the host's default;
/// none for a simulated session unless they say `dry_runs = true`.
pub fn for_session(
    runbook: Option<&Settings>,
    state_dir: &Path,
    simulated: bool,
) -> Result<Option<Settings>> {
    let chosen = match runbook {
        Some(s) => Some(s.clone()),
        None => default_settings(state_dir)?,
    };
    Ok(chosen.filter(|s| !simulated || s.dry_runs))
}

/// This machine's name, for the notifications' `host`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| crate::sanitize::sanitize(h.trim(), false))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(dir: &Path, text: &str, mode: u32) {
        let p = dir.join(CONFIG_FILE);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn host_default_is_read_with_defaults_filled_in() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "path = \"/usr/bin:/bin\"\n[notify]\nurl = \"http://127.0.0.1:9093/api/v2/alerts\"\nformat = \"alertmanager\"\n",
            0o600,
        );
        let s = default_settings(dir.path()).unwrap().unwrap();
        assert_eq!(s.format, Format::Alertmanager);
        assert_eq!(
            (s.timeout, s.retries, s.dry_runs),
            (DEFAULT_TIMEOUT, DEFAULT_RETRIES, false)
        );
        assert_eq!(s.events.len(), 5);
    }

    #[test]
    fn host_default_with_a_secret_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "[notify]\nurl = \"https://hooks.example/T/B/x\"\n",
            0o644,
        );
        let err = format!("{:#}", default_settings(dir.path()).unwrap_err());
        assert!(
            err.contains("must be private") && err.contains("0600"),
            "{err}"
        );
        // Without `[notify]` the file is none of this module's business.
        write(dir.path(), "path = \"/usr/bin\"\n", 0o644);
        assert_eq!(default_settings(dir.path()).unwrap(), None);
    }

    #[test]
    fn bad_host_default_names_the_key() {
        for (text, want) in [
            ("[notify]\nformat = \"slack\"\n", "no `url`"),
            ("[notify]\nurl = \"x\"\n", "does not start with"),
            (
                "[notify]\nurl = \"http://h/\"\nformat = \"teams\"\n",
                "unknown notify format `teams`",
            ),
            (
                "[notify]\nurl = \"http://h/\"\nevents = [\"halted\"]\n",
                "unknown notify event `halted`",
            ),
            (
                "[notify]\nurl = \"http://h/\"\ntimeout = \"2h\"\n",
                "at most 1m",
            ),
            ("[notify]\nurl = \"http://h/\"\nretries = -1\n", "0 to 10"),
            (
                "[notify]\nurl = \"http://h/\"\nurls = 1\n",
                "unknown field `urls`",
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), text, 0o600);
            let err = format!("{:#}", default_settings(dir.path()).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn dry_runs_notify_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(&Written {
            url: Some("http://h/".into()),
            ..Written::default()
        })
        .unwrap();
        assert_eq!(for_session(Some(&s), dir.path(), true).unwrap(), None);
        assert!(for_session(Some(&s), dir.path(), false).unwrap().is_some());
        s.dry_runs = true;
        assert!(for_session(Some(&s), dir.path(), true).unwrap().is_some());
    }
}
