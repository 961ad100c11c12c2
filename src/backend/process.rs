//! Real external processes, run as argv with a timeout, never through a shell.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use wait_timeout::ChildExt;

use crate::backend::{CommandOutput, CommandRunner};

/// Runs real programs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ProcessRunner;

impl CommandRunner for ProcessRunner {
    fn run(&mut self, argv: &[String], timeout: Duration) -> Result<CommandOutput> {
        let Some((program, args)) = argv.split_first() else {
            bail!("empty command line");
        };
        // Its own process group: a Ctrl-C at the terminal reaches swapguard,
        // which stops at a safe point, not an mdadm halfway through its work.
        let mut child = Command::new(program)
            .args(args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{}`", argv.join(" ")))?;
        // Read both pipes on threads so a chatty program cannot fill one
        // pipe and block while we wait for it to exit.
        let mut out_pipe = child.stdout.take().expect("stdout is piped");
        let mut err_pipe = child.stderr.take().expect("stderr is piped");
        let out_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = out_pipe.read_to_end(&mut buf);
            buf
        });
        let err_thread = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = err_pipe.read_to_end(&mut buf);
            buf
        });
        let (code, timed_out) = match child
            .wait_timeout(timeout)
            .with_context(|| format!("waiting for `{}`", argv.join(" ")))?
        {
            Some(status) => (status.code(), false),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                (None, true)
            }
        };
        let stdout = out_thread.join().unwrap_or_default();
        let stderr = err_thread.join().unwrap_or_default();
        Ok(CommandOutput {
            argv: argv.to_vec(),
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            timed_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn captures_output_and_exit_code() {
        let out = ProcessRunner
            .run(
                &argv(&["sh", "-c", "echo out; echo err >&2; exit 3"]),
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), "out\n", "err\n")
        );
        assert!(!out.success());
    }

    #[test]
    fn missing_program_is_an_error() {
        let err = ProcessRunner
            .run(
                &argv(&["swapguard-no-such-program"]),
                Duration::from_secs(10),
            )
            .unwrap_err();
        assert!(format!("{err:#}").contains("cannot start `swapguard-no-such-program`"));
    }

    #[test]
    fn timeout_kills_the_process() {
        let out = ProcessRunner
            .run(&argv(&["sleep", "5"]), Duration::from_millis(50))
            .unwrap();
        assert!(out.timed_out && out.code.is_none() && !out.success());
    }
}
