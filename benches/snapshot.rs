//! Benchmarks: the cost of one health snapshot.
//!
//! The goal (BRIEF.md) is under 2 ms for a fast look at a two-drive md
//! array without SMART. This reads the captured `clean` tree
//! (tests/fixtures/md/clean), so it measures the parsing and file reads of
//! the real code path against the page cache, as on a real host.
//!
//! Run: `cargo bench --bench snapshot -- --warm-up-time 1 --measurement-time 3`

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use criterion::{Criterion, criterion_group, criterion_main};
use swapguard::backend::md::MdBackend;
use swapguard::backend::{Backend, CommandOutput, CommandRunner, Depth};

/// A fast look runs no programs; this one fails loudly if it is asked to.
struct NoPrograms;

impl CommandRunner for NoPrograms {
    fn run(&mut self, argv: &[String], _timeout: Duration) -> Result<CommandOutput> {
        bail!("a fast look ran `{}`", argv.join(" "))
    }
}

fn snapshot(c: &mut Criterion) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/md/clean");
    let mut md = MdBackend::new(root, Box::new(NoPrograms));
    let first = md
        .snapshot("md0", Depth::Fast)
        .expect("snapshot of the clean tree");
    assert!(first.problems.is_empty(), "{:?}", first.problems);
    assert_eq!(first.drives.len(), 2);
    c.bench_function("md snapshot fast, two-drive mirror", |b| {
        b.iter(|| md.snapshot("md0", Depth::Fast).expect("snapshot"))
    });
}

criterion_group!(benches, snapshot);
criterion_main!(benches);
