//! Benchmarks: `swapguard test` of every shipped runbook and scenario.
//!
//! The goal (BRIEF.md) is lint plus dry-run of every shipped runbook
//! against every shipped scenario in under 1 s. This measures exactly what
//! `swapguard test runbooks/` does, in-process: discover the runbooks and
//! scenarios, lint and load each runbook, dry-run each scenario on the real
//! engine and simulator (journals included), judge each outcome. A second
//! figure adds `--mutate`: every derived bad-hardware variant as well.
//!
//! Run: `cargo bench --bench ci -- --warm-up-time 1 --measurement-time 5`

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use swapguard::ci::discover::discover;
use swapguard::ci::suite::{self, Options};

fn test_shipped(c: &mut Criterion) {
    let runbooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let paths = vec![runbooks];
    let check = |mutate: bool| {
        let found = discover(&paths).expect("discover the shipped runbooks");
        let report = suite::run(found, Options { mutate }).expect("run the suites");
        assert_eq!(
            report.exit_code(true),
            swapguard::exit::Code::Success,
            "the shipped runbooks pass"
        );
        report
    };
    let first = check(false);
    let scenarios = first.cases().count();
    assert!(scenarios >= 13, "{scenarios}");
    let mut group = c.benchmark_group("ci");
    group.sample_size(20);
    group.bench_function(
        format!(
            "lint + test of {} runbooks and {scenarios} scenarios",
            first.runbooks.len()
        ),
        |b| b.iter(|| check(false)),
    );
    let variants = check(true).mutations().count();
    group.bench_function(
        format!("lint + test --mutate ({scenarios} scenarios, {variants} variants)"),
        |b| b.iter(|| check(true)),
    );
    group.finish();
}

criterion_group!(benches, test_shipped);
criterion_main!(benches);
