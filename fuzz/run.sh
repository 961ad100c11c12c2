#!/usr/bin/env bash
# Run every fuzz target for SECONDS each (default 300), one after another,
# starting from the seeds in fuzz/seeds/<target>/. Needs a nightly toolchain
# and cargo-fuzz (`cargo install cargo-fuzz`). Crashes land in
# fuzz/artifacts/<target>/; the last line of each log gives the executions.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
for target in runbook_load scenario_parse mdstat_parse smart_parse journal_read; do
  mkdir -p "fuzz/corpus/$target"
  cp -n fuzz/seeds/"$target"/* "fuzz/corpus/$target/" 2>/dev/null || true
  echo "== $target for ${seconds}s"
  cargo +nightly fuzz run -O "$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 \
    2>&1 | tee "fuzz/$target.log" | grep -E "^(stat::|==|INFO: Seed|Done|SUMMARY|artifact)" || true
done
