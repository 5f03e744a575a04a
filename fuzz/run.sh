#!/usr/bin/env bash
# Fuzzes one target: fuzz/run.sh TARGET [SECONDS] (default 60), TARGET one of decode_message,
# core_inputs, recover_bytes, cluster_schedule (a whole cluster's schedule from the bytes; set
# SIM_MUTANT=NAME to plant a bug). New inputs go to a working corpus outside the repository
# ($FUZZ_WORK/TARGET, default /tmp/tinyraftplus-fuzz/TARGET), seeded from the committed
# corpus (fuzz/corpus/TARGET), which stays as it is: add an input to it on purpose, by hand.
# Crashes go to fuzz/artifacts/TARGET (ignored by git); replay one with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`. Needs nightly and
# `cargo install cargo-fuzz`.
set -euo pipefail
cd "$(dirname "$0")"
target="${1:?usage: fuzz/run.sh TARGET [SECONDS]}"
seconds="${2:-60}"
work="${FUZZ_WORK:-/tmp/tinyraftplus-fuzz}/$target"
mkdir -p "$work"
exec cargo +nightly fuzz run "$target" "$work" "corpus/$target" -- -max_total_time="$seconds"
