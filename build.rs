//! Puts the commit into `swapguard --version`: `SWAPGUARD_COMMIT` when the
//! build sets it (a packager building from a tarball), else `git rev-parse
//! --short HEAD` when the source is a git checkout, else "unknown commit".

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=SWAPGUARD_COMMIT");
    let commit = match std::env::var("SWAPGUARD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            // Rebuild when HEAD moves: HEAD itself, and the branch it names.
            if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
                let head = Path::new(&dir).join("HEAD");
                println!("cargo:rerun-if-changed={}", head.display());
            }
            if let (Some(common), Some(branch)) = (
                git(&["rev-parse", "--git-common-dir"]),
                git(&["symbolic-ref", "-q", "HEAD"]),
            ) {
                let common = Path::new(&common);
                println!("cargo:rerun-if-changed={}", common.join(branch).display());
                println!(
                    "cargo:rerun-if-changed={}",
                    common.join("packed-refs").display()
                );
            }
            git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_string())
        }
    };
    // Only characters a commit id or a tag can hold reach the binary.
    let commit: String = commit
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        .take(40)
        .collect();
    println!("cargo:rustc-env=SWAPGUARD_COMMIT={commit}");
}
