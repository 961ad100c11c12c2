//! `swapguard completions SHELL` and `swapguard man`: shell completions and
//! man pages generated from the command-line definitions themselves, so
//! they never drift from `--help`. The one place below `cli.rs` that sees
//! clap's types, because printing them is the whole job.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::cli::{self, Shell};
use crate::exit;

pub fn completions(shell: Shell, out: &mut dyn Write) -> Result<i32> {
    let mut cmd = cli::command();
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    // clap_complete panics on a write error; render first, then write.
    let mut text = Vec::new();
    clap_complete::generate(generator, &mut cmd, "swapguard", &mut text);
    out.write_all(&text)
        .and_then(|()| out.flush())
        .context("cannot write the completions")?;
    Ok(exit::SUCCESS)
}

/// The man page of `swapguard` on `out`, or with `dir` one page per command
/// written there (`swapguard.1`, `swapguard-test.1`, ...).
pub fn man(dir: Option<&Path>, out: &mut dyn Write) -> Result<i32> {
    let cmd = cli::command();
    match dir {
        None => {
            let mut text = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut text)?;
            out.write_all(&text)
                .and_then(|()| out.flush())
                .context("cannot write the man page")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create `{}`", dir.display()))?;
            clap_mangen::generate_to(cmd, dir)
                .with_context(|| format!("cannot write man pages to `{}`", dir.display()))?;
            let mut pages: Vec<String> = std::fs::read_dir(dir)
                .with_context(|| format!("cannot list `{}`", dir.display()))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("swapguard") && n.ends_with(".1"))
                .collect();
            pages.sort();
            for p in pages {
                writeln!(out, "{}", dir.join(p).display())?;
            }
        }
    }
    Ok(exit::SUCCESS)
}
