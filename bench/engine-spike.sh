#!/usr/bin/env bash
# The storage-engine spike (bench/README.md, "Engine spike, part 3(b)"): the same synthetic
# prescriptions, 64 producers each waiting for its acknowledgement, group commit, written to
# (ceiling) an append + fdatasync loop, (sqlite-product) SQLite in the product's tables,
# (sqlite-items) SQLite in one item table, (fjall) fjall with the DynamoDB layout's items —
# first on fresh stores, then on stores preloaded with PRELOAD prescriptions, the ceiling run
# again beside each. Prints one RESULT line per run and a table of ratios to the ceiling.
#
#   bench/engine-spike.sh                          # 10 s per run, 64 producers, 1 M preloaded
#   PRELOAD=250000 SECONDS_PER_RUN=8 bench/engine-spike.sh
#   ENGINES="sqlite-product fjall fjall-blobs" bench/engine-spike.sh
#   STEP_WRAP="flock /some/lock" bench/engine-spike.sh   # a prefix for every build and run step
#
# The preload goes in steps of at most PRELOAD_CHUNK_SECONDS (each its own process and step),
# and stops early if a step adds nothing. Data lives in DATA (a temporary directory unless
# given), each store removed once measured.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
PRODUCERS=${PRODUCERS:-64}
PRELOAD=${PRELOAD:-1000000}
PRELOAD_CHUNK_SECONDS=${PRELOAD_CHUNK_SECONDS:-150}
ENGINES=${ENGINES:-sqlite-product sqlite-items fjall}
STEP_WRAP=${STEP_WRAP:-}
TARGET=${CARGO_TARGET_DIR:-target}
$STEP_WRAP cargo build --release -q -p rxbridge-engine-spike
BIN=$TARGET/release/rxbridge-engine-spike
if [ -n "${DATA:-}" ]; then mkdir -p "$DATA"; KEEP=1; else DATA=$(mktemp -d); KEEP=; fi
trap '[ -n "$KEEP" ] || rm -rf "$DATA"' EXIT
OUT=$DATA/results.txt
: > "$OUT"

run() { # engine dir
  $STEP_WRAP "$BIN" run "$1" "$2" "$SECONDS_PER_RUN" "$PRODUCERS" | tee -a "$OUT"
}

echo "# fresh stores"
for e in ceiling $ENGINES; do
  rm -rf "$DATA/$e"; run "$e" "$DATA/$e"; rm -rf "$DATA/$e"
done

echo "# stores preloaded with $PRELOAD prescriptions"
for e in $ENGINES; do
  dir=$DATA/$e-loaded
  rm -rf "$dir"
  stored=0
  while [ "$stored" -lt "$PRELOAD" ]; do
    line=$($STEP_WRAP "$BIN" preload "$e" "$dir" "$PRELOAD" "$PRELOAD_CHUNK_SECONDS")
    echo "$line"
    now=$(echo "$line" | sed -E 's/.* stored=([0-9]+).*/\1/')
    [ "$now" -gt "$stored" ] || { echo "no progress: measuring at $now"; break; }
    stored=$now
  done
  echo "store on disk: $(du -sh "$dir" | cut -f1)"
  rm -rf "$DATA/ceiling"; run ceiling "$DATA/ceiling"; rm -rf "$DATA/ceiling"
  run "$e" "$dir"
  rm -rf "$dir"
done

echo
echo "# ratios to the ceiling run just before (same producers, same data, same session)"
awk '
  /^RESULT/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if (v["engine"] == "ceiling") { ceil = v["writes_per_s"] }
    printf "%-15s stored %8s  %7s writes/s  %.3f of ceiling  p50 %6s ms  p99 %6s ms  %6s KiB/rx to disk  peak RSS %6s MiB\n",
      v["engine"], v["stored_before"], v["writes_per_s"], v["writes_per_s"] / ceil, v["p50_ms"], v["p99_ms"], v["write_kib_per_rx"], v["peak_rss_mib"]
  }' "$OUT"
