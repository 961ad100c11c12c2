//! `swapguard lint FILE...`: every diagnostic of every runbook, then a
//! one-line summary. A file that cannot be read is reported like any other
//! problem, naming the path; it never stops the other files being checked.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::runbook::diag::{Diagnostic, Severity};
use crate::runbook::load::{decode, load_str};

/// The diagnostics of one file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FileReport {
    pub path: PathBuf,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileReport {
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warnings(&self) -> usize {
        self.diagnostics.len() - self.errors()
    }
}

/// Lint one file.
pub fn lint_file(path: &Path) -> FileReport {
    let diagnostics = match std::fs::read(path) {
        Ok(bytes) => match decode(path, bytes) {
            Ok(source) => load_str(path, &source).diagnostics,
            Err(diagnostic) => vec![*diagnostic],
        },
        Err(e) => vec![Diagnostic::whole_file(
            Severity::Error,
            path,
            format!("cannot read `{}`: {e}", path.display()),
            None,
        )],
    };
    FileReport {
        path: path.to_path_buf(),
        diagnostics,
    }
}

/// Lint every file, in the order given; a folder stands for the runbooks
/// directly in it (see [`runbooks_in`]).
pub fn lint_paths(paths: &[PathBuf]) -> Vec<FileReport> {
    let mut reports = Vec::new();
    for path in paths {
        if !path.is_dir() {
            reports.push(lint_file(path));
            continue;
        }
        match runbooks_in(path) {
            Ok(files) if files.is_empty() => reports.push(FileReport {
                path: path.clone(),
                diagnostics: vec![Diagnostic::whole_file(
                    Severity::Error,
                    path,
                    format!("no runbooks in `{}`", path.display()),
                    Some("a runbook is a `*.toml` file without a `[scenario]` table".into()),
                )],
            }),
            Ok(files) => reports.extend(files.iter().map(|f| lint_file(f))),
            Err(e) => reports.push(FileReport {
                path: path.clone(),
                diagnostics: vec![Diagnostic::whole_file(
                    Severity::Error,
                    path,
                    format!("cannot list `{}`: {e}", path.display()),
                    None,
                )],
            }),
        }
    }
    reports
}

/// The runbooks directly in `dir`, sorted: its `*.toml` files except
/// scenarios (files with a `[scenario]` table), as `swapguard test DIR`
/// takes them. A file that does not parse counts as a runbook, so its
/// problems are reported.
pub fn runbooks_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") && !is_scenario(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether a TOML file is a scenario: it has a `[scenario]` table. A file
/// that cannot be read or parsed counts as a runbook, so lint reports it.
pub fn is_scenario(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|text| text.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("scenario"))
}

/// True when any file has an error (warnings do not fail a lint).
pub fn has_errors(reports: &[FileReport]) -> bool {
    reports.iter().any(|r| r.errors() > 0)
}

/// What the CLI prints: every diagnostic, a blank line between them, then
/// the summary line.
pub fn render(reports: &[FileReport]) -> String {
    let mut out = String::new();
    for diagnostic in reports.iter().flat_map(|r| &r.diagnostics) {
        out.push_str(&diagnostic.to_string());
        out.push_str("\n\n");
    }
    out.push_str(&summary(reports));
    out.push('\n');
    out
}

/// `2 errors, 1 warning in 1 file`.
pub fn summary(reports: &[FileReport]) -> String {
    let errors: usize = reports.iter().map(FileReport::errors).sum();
    let warnings: usize = reports.iter().map(FileReport::warnings).sum();
    format!(
        "{}, {} in {}",
        counted(errors, "error"),
        counted(warnings, "warning"),
        counted(reports.len(), "file")
    )
}

fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/runbooks")
            .join(name)
    }

    #[test]
    fn summary_counts_and_plurals() {
        let d = |severity| Diagnostic::whole_file(severity, Path::new("a.toml"), "m", None);
        let cases = [
            (vec![], "0 errors, 0 warnings in 0 files"),
            (
                vec![FileReport {
                    path: "a.toml".into(),
                    diagnostics: vec![d(Severity::Error), d(Severity::Error), d(Severity::Warning)],
                }],
                "2 errors, 1 warning in 1 file",
            ),
            (
                vec![
                    FileReport {
                        path: "a.toml".into(),
                        diagnostics: vec![d(Severity::Error)],
                    },
                    FileReport {
                        path: "b.toml".into(),
                        diagnostics: vec![],
                    },
                ],
                "1 error, 0 warnings in 2 files",
            ),
        ];
        for (reports, want) in cases {
            assert_eq!(summary(&reports), want);
        }
    }

    #[test]
    fn unreadable_file_is_a_diagnostic_not_a_panic() {
        let missing = fixture("no-such-runbook.toml");
        let reports = lint_paths(std::slice::from_ref(&missing));
        assert!(has_errors(&reports));
        let text = render(&reports);
        assert!(
            text.starts_with(&format!("error: cannot read `{}`: ", missing.display())),
            "{text}"
        );
        assert!(text.ends_with("1 error, 0 warnings in 1 file\n"), "{text}");
    }

    #[test]
    fn shipped_runbooks_lint_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
        let paths = [
            root.join("md-replace-member.toml"),
            root.join("md-replace-hot.toml"),
            root.join("restore-from-backup.toml"),
            root.join("btrfs-replace-hot.toml"),
            root.join("btrfs-replace-missing.toml"),
        ];
        let reports = lint_paths(&paths);
        assert_eq!(render(&reports), "0 errors, 0 warnings in 5 files\n");
        assert!(!has_errors(&reports));
    }

    /// Issue 11.11: `lint DIR` lints every runbook in it, like `test DIR`.
    #[test]
    fn lint_dir_lints_every_runbook_in_it() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
        let reports = lint_paths(std::slice::from_ref(&root));
        let names: Vec<String> = reports
            .iter()
            .map(|r| r.path.file_name().unwrap().to_string_lossy().into_owned())
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
        assert!(!has_errors(&reports));

        let empty = tempfile::tempdir().unwrap();
        std::fs::write(empty.path().join("s.toml"), "[scenario]\nname = \"x\"\n").unwrap();
        let reports = lint_paths(&[empty.path().to_path_buf()]);
        assert!(has_errors(&reports));
        assert!(
            render(&reports).starts_with("error: no runbooks in `"),
            "{}",
            render(&reports)
        );
    }

    #[test]
    fn renders_every_problem_of_every_file_then_the_summary() {
        let reports = lint_paths(&[
            fixture("misspelt-guard-key.toml"),
            fixture("many-problems.toml"),
        ]);
        let text = render(&reports);
        let errors: usize = reports.iter().map(FileReport::errors).sum();
        assert!(errors >= 5, "{text}");
        assert_eq!(text.matches("error: ").count(), errors, "{text}");
        assert!(text.contains("misspelt-guard-key.toml:"), "{text}");
        assert!(text.contains("many-problems.toml:"), "{text}");
        assert!(text.trim_end().ends_with(" in 2 files"), "{text}");
    }
}
