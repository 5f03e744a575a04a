#!/usr/bin/env bash
# For each planted bug: executions of the cluster_schedule fuzz target (from an empty corpus)
# to its first failure, against seeds to the first failure by random search with the same
# options (tinyraftplus_sim::schedule::options()). Usage: fuzz/schedule_vs_seeds.sh [SECONDS]
# (the fuzzer's time limit per bug, default 120). Needs nightly and cargo-fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-120}"
cargo build --release -q -p tinyraftplus-sim --features mutants
(cd fuzz && cargo +nightly fuzz build -s none cluster_schedule)
sim=$(mktemp)
cp target/release/tinyraftplus-sim "$sim" && chmod +x "$sim"  # builds during the run do not change it
mutants=$($sim --help | sed -n 's/^--mutant NAME plants.*: //p' | tr -d ',')
printf '%-28s %14s %18s\n' mutant "seeds (random)" "executions (fuzz)"
for mutant in $mutants; do
  regime=recoverable
  [ "$mutant" = accept_contradicting_repair ] && regime=unbounded
  first=$($sim --seeds 0..5000 --ops 100 --fault-ms 15000 --regime $regime --mutant "$mutant" \
    | sed -n 's/^FAIL .* seed=\([0-9]*\) .*/\1/p' | sort -n | head -1) || true
  seeds=$([ -n "$first" ] && echo $((first + 1)) || echo "not in 5000")
  work=$(mktemp -d)
  found=$(cd fuzz && SIM_MUTANT=$mutant SIM_REGIME=$regime cargo +nightly fuzz run -s none cluster_schedule "$work" \
    -- -max_total_time="$seconds" -artifact_prefix="$work/" 2>&1 | sed -n 's/.*FAIL .* after \([0-9]*\) executions.*/\1/p' | head -1) || true
  rm -rf "$work"
  printf '%-28s %14s %18s\n' "$mutant" "$seeds" "${found:-not in ${seconds} s}"
done
