//! Finding runbooks and the scenarios that prove them.
//!
//! The layout (docs/ci.md):
//!
//! ```text
//! runbooks/NAME.toml                     a runbook
//! runbooks/scenarios/NAME/*.toml         scenarios for it
//! ```
//!
//! A scenario's own `[scenario] runbook` key is what ties it to a runbook:
//! it is the runbook `dry-run` would walk, so it is the one `test` walks
//! too, wherever the file sits under `scenarios/`. The folder name is only
//! used for a scenario too broken to say which runbook it is for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::UsageError;
use crate::scenario::{self, Scenario};

/// One runbook and every scenario found for it.
#[derive(Debug)]
pub struct Suite {
    /// The runbook, as the user's arguments spell it (relative stays relative).
    pub runbook: PathBuf,
    pub scenarios: Vec<Found>,
}

/// A scenario file, parsed, or the rendered reason it could not be.
#[derive(Debug)]
pub struct Found {
    pub path: PathBuf,
    pub scenario: std::result::Result<Scenario, String>,
}

/// What was found under the paths given.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Sorted by runbook path; scenarios sorted within each.
    pub suites: Vec<Suite>,
    /// Scenarios too broken to say which runbook they are for, outside the
    /// `scenarios/NAME/` layout that would tell.
    pub orphans: Vec<Found>,
}

/// The suites under `paths`. A path that is a directory holds runbooks
/// (`*.toml`) and a `scenarios/` tree; a file is a runbook, or a scenario
/// when it has a `[scenario]` table.
pub fn discover(paths: &[PathBuf]) -> Result<Discovered> {
    let mut runbooks: Vec<PathBuf> = Vec::new();
    let mut scenario_files: Vec<PathBuf> = Vec::new();
    // Runbooks named directly; a scenario folder's runbooks are only those
    // its scenarios name, unless the folder itself was given.
    let mut only: Option<Vec<PathBuf>> = Some(Vec::new());
    for path in paths {
        if path.is_dir() {
            only = None;
            runbooks.extend(toml_files(path, false)?);
            let tree = path.join("scenarios");
            if tree.is_dir() {
                scenario_files.extend(toml_files(&tree, true)?);
            }
        } else if path.is_file() {
            if crate::runbook::lint::is_scenario(path) {
                scenario_files.push(path.clone());
                continue;
            }
            runbooks.push(path.clone());
            if let Some(list) = only.as_mut() {
                list.push(key(path));
            }
            let tree = path.parent().unwrap_or(Path::new("")).join("scenarios");
            if tree.is_dir() {
                scenario_files.extend(toml_files(&tree, true)?);
            }
        } else {
            return Err(UsageError(format!(
                "`{}` does not exist: pass runbook files or a folder of runbooks (e.g. `runbooks/`)",
                path.display()
            ))
            .into());
        }
    }
    scenario_files.sort();
    scenario_files.dedup();

    let mut suites: BTreeMap<PathBuf, Suite> = BTreeMap::new();
    let mut orphans = Vec::new();
    for runbook in runbooks {
        suites.entry(key(&runbook)).or_insert_with(|| Suite {
            runbook,
            scenarios: Vec::new(),
        });
    }
    for path in scenario_files {
        let found = Found {
            scenario: parse_scenario(&path),
            path,
        };
        let runbook = match &found.scenario {
            Ok(s) => s.runbook.clone(),
            Err(_) => match by_folder(&found.path) {
                Some(r) => r,
                None => {
                    orphans.push(found);
                    continue;
                }
            },
        };
        let k = key(&runbook);
        // A runbook named on the command line takes only its own
        // scenarios; the scenario tree beside it may hold others'.
        let named_directly = paths
            .iter()
            .any(|p| p.is_file() && key(p) == key(&found.path));
        if let Some(list) = &only
            && !named_directly
            && !list.contains(&k)
        {
            continue;
        }
        suites
            .entry(k)
            .or_insert_with(|| Suite {
                runbook: shown(&runbook),
                scenarios: Vec::new(),
            })
            .scenarios
            .push(found);
    }
    let mut out: Vec<Suite> = suites.into_values().collect();
    out.sort_by(|a, b| a.runbook.cmp(&b.runbook));
    for suite in &mut out {
        suite.scenarios.sort_by(|a, b| a.path.cmp(&b.path));
    }
    Ok(Discovered {
        suites: out,
        orphans,
    })
}

fn parse_scenario(path: &Path) -> std::result::Result<Scenario, String> {
    let source = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read scenario `{}`: {e}", path.display()))?;
    scenario::parse(path, &source).map_err(|e| format!("{e:#}"))
}

/// `DIR/scenarios/NAME/x.toml` → `DIR/NAME.toml`, when that file exists.
fn by_folder(scenario: &Path) -> Option<PathBuf> {
    let name = scenario.parent()?.file_name()?;
    let tree = scenario.parent()?.parent()?;
    if tree.file_name()? != "scenarios" {
        return None;
    }
    let runbook = tree.parent()?.join(name).with_extension("toml");
    runbook.is_file().then_some(runbook)
}

/// `*.toml` files in `dir`, sorted; with `deep`, in every folder below too.
fn toml_files(dir: &Path, deep: bool) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot list `{}`", dir.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot list `{}`", dir.display()))?
            .path();
        if path.is_dir() {
            if deep {
                out.extend(toml_files(&path, true)?);
            }
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The identity of a file for matching: its canonical path when it exists.
fn key(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// An absolute path shown relative to the working directory when it is
/// below it.
fn shown(path: &Path) -> PathBuf {
    let Ok(cwd) = std::env::current_dir() else {
        return path.to_path_buf();
    };
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    let path = key(path);
    path.strip_prefix(&cwd)
        .map_or_else(|_| path.clone(), Path::to_path_buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }

    fn shipped() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks")
    }

    #[test]
    fn shipped_folder_pairs_every_scenario_with_its_runbook() {
        let suites = discover(&[shipped()]).unwrap().suites;
        let names: Vec<String> = suites
            .iter()
            .map(|s| {
                s.runbook
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(
            names,
            [
                "btrfs-replace-hot.toml",
                "btrfs-replace-missing.toml",
                "md-replace-hot.toml",
                "md-replace-member.toml",
                "megaraid-replace-drive.toml",
                "megaraid-replace-with-hotspare.toml",
                "restore-from-backup.toml",
                "zfs-replace-boot-mirror.toml",
                "zfs-replace-hot.toml",
                "zfs-replace-member.toml",
            ]
        );
        for suite in &suites {
            let stem = suite.runbook.file_stem().unwrap();
            assert!(!suite.scenarios.is_empty());
            for found in &suite.scenarios {
                assert_eq!(found.path.parent().unwrap().file_name().unwrap(), stem);
                assert!(found.scenario.is_ok(), "{:?}", found.scenario);
            }
        }
    }

    #[test]
    fn a_runbook_file_takes_only_its_own_scenarios() {
        let suites = discover(&[shipped().join("md-replace-hot.toml")])
            .unwrap()
            .suites;
        assert_eq!(suites.len(), 1);
        assert_eq!(suites[0].scenarios.len(), 3);
    }

    #[test]
    fn a_scenario_file_brings_its_runbook() {
        let path = shipped().join("scenarios/md-replace-member/healthy.toml");
        let suites = discover(&[path]).unwrap().suites;
        assert_eq!(suites.len(), 1);
        assert!(
            suites[0]
                .runbook
                .ends_with("runbooks/md-replace-member.toml")
        );
        assert_eq!(suites[0].scenarios.len(), 1);
    }

    #[test]
    fn the_runbook_key_wins_over_the_folder_and_broken_files_use_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let rb = std::fs::read_to_string(shipped().join("md-replace-member.toml")).unwrap();
        write(dir.path(), "a.toml", &rb);
        write(dir.path(), "b.toml", &rb);
        let healthy =
            std::fs::read_to_string(shipped().join("scenarios/md-replace-member/healthy.toml"))
                .unwrap();
        // Filed under a/ but names b.
        write(
            dir.path(),
            "scenarios/a/names-b.toml",
            &healthy.replace("../../md-replace-member.toml", "../../b.toml"),
        );
        write(dir.path(), "scenarios/a/broken.toml", "[scenario\n");
        write(dir.path(), "scenarios/stray.toml", "[scenario\n");
        let found = discover(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(found.orphans.len(), 1);
        assert!(found.orphans[0].path.ends_with("stray.toml"));
        let suites = found.suites;
        let by_name = |n: &str| {
            suites
                .iter()
                .find(|s| s.runbook.file_name().unwrap() == n)
                .unwrap()
        };
        let a = by_name("a.toml");
        assert_eq!(a.scenarios.len(), 1);
        assert!(a.scenarios[0].path.ends_with("broken.toml"));
        assert!(a.scenarios[0].scenario.is_err());
        let b = by_name("b.toml");
        assert_eq!(b.scenarios.len(), 1);
        assert!(b.scenarios[0].path.ends_with("names-b.toml"));
    }

    #[test]
    fn a_missing_path_is_a_usage_error() {
        let err = discover(&[PathBuf::from("/nonexistent-swapguard/runbooks")]).unwrap_err();
        assert!(err.downcast_ref::<UsageError>().is_some());
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
