#!/bin/sh
# Runs every fuzz target in turn for SECS seconds each (default 600), one process (libFuzzer's
# default: no -jobs/-workers), lowest priority. Corpus paths are absolute: the targets chdir.
# Corpora grow in fuzz/corpus/TARGET (seeded from fuzz/seeds/TARGET); crashes land in
# fuzz/artifacts/TARGET. Needs cargo-fuzz; RUSTC_BOOTSTRAP lets a stable toolchain build it.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${SECS:-600}
TARGETS=${TARGETS:-json hmp kv qmp}
# The targets' scratch directories (where `chardev-add file` would write) go here too.
export TMPDIR="$ROOT/fuzz/target/scratch"
mkdir -p "$TMPDIR"
for t in $TARGETS; do
    mkdir -p "$ROOT/fuzz/corpus/$t"
    echo "=== $t: ${SECS}s"
    RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run "$t" "$ROOT/fuzz/corpus/$t" "$ROOT/fuzz/seeds/$t" -- \
        -max_total_time="$SECS" -print_final_stats=1 || echo "=== $t: FAILED ($?)"
done
