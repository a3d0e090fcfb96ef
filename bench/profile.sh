#!/usr/bin/env bash
# Where the durable intake's server CPU goes: starts a release rxbridge on a fresh data dir,
# loads it with submit.lua (64 connections) and samples it with `perf record` (Debian package
# linux-perf), then prints req/s, server CPU per intake by thread (from /proc) and the profile by
# thread and library, and by symbol.
#
#   cargo build --release -p rxbridge && bench/profile.sh
#   DURATION=20 bench/profile.sh
#   RXBRIDGE_LOG=info bench/profile.sh     # with the access log and the info lines on
#
# Also prints the bytes the server had written to disk per intake (/proc/PID/io write_bytes:
# the WAL and the checkpoints into the database file), in 4 KiB pages.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
PORT=${PORT:-18191}
BIN=${RXBRIDGE_BIN:-${CARGO_TARGET_DIR:-target}/release/rxbridge}
command -v perf >/dev/null || { echo "perf is needed (apt-get install linux-perf)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "build first: cargo build --release -p rxbridge" >&2; exit 2; }
DATA=$(mktemp -d)
export RXBRIDGE_LOG=${RXBRIDGE_LOG:-warn}
KEY=$($BIN --data-dir "$DATA" clinic add --name "Profile Clinic" --json | sed -E 's/.*"test_key":"([^"]+)".*/\1/')
python3 - > "$DATA/nhs.txt" <<'PY'
n, k = 0, 100000001
while n < 20000:
    d = [int(c) for c in str(k)]
    c = 11 - sum(x * (10 - i) for i, x in enumerate(d)) % 11
    c = 0 if c == 11 else c
    if c != 10:
        print(f"{k}{c}"); n += 1
    k += 7
PY
RXBRIDGE_MAX_CONNECTIONS_PER_CLIENT=256 RXBRIDGE_METRICS_LISTEN=127.0.0.1:$((PORT + 1)) \
  $BIN --data-dir "$DATA" serve --listen "127.0.0.1:$PORT" > "$DATA/serve.out" 2> "$DATA/serve.err" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$DATA"' EXIT
until curl -sf -o /dev/null "http://127.0.0.1:$PORT/readyz"; do sleep 0.05; done
RX_TODAY=$(date -u +%F)
export RX_KEY=$KEY RX_TODAY RX_NHS="$DATA/nhs.txt"
url="http://127.0.0.1:$PORT/v1/prescriptions"
wrk -t2 -c64 -d3s -s bench/submit.lua "$url" >/dev/null   # warm up
ticks() { for t in /proc/"$PID"/task/*; do echo "$(cat "$t/comm") $(awk '{print $14+$15}' "$t/stat")"; done; }
written() { awk '/^write_bytes/ {print $2}' /proc/"$PID"/io; }
metric() { curl -s "http://127.0.0.1:$((PORT + 1))/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
frames() { metric rxbridge_store_wal_frames_total; }
writes() { metric rxbridge_store_commit_batch_size_sum; }
commits() { metric rxbridge_store_commit_batch_size_count; }
retried() { metric rxbridge_store_retried_batches_total; }
before=$(ticks)
wb=$(written); fb=$(frames); nb=$(writes); cb=$(commits); rb=$(retried)
wrk -t2 -c64 -d"$((DURATION + 2))s" -s bench/submit.lua "$url" | grep RESULT > "$DATA/wrk.txt" &
WRK=$!
sleep 1
perf record -F 499 -p "$PID" -o "$DATA/perf.data" -- sleep "$DURATION" 2> /dev/null
wait $WRK
after=$(ticks)
wa=$(written); fa=$(frames); na=$(writes); ca=$(commits); ra=$(retried)
cat "$DATA/wrk.txt"
requests=$(sed -E 's/.*requests=([0-9]+).*/\1/' "$DATA/wrk.txt")
hz=$(getconf CLK_TCK)
awk -v b="$wb" -v a="$wa" -v n="$requests" 'BEGIN {printf "written to disk per intake: %.1f KiB (%.1f pages of 4 KiB)\n", (a-b)/n/1024, (a-b)/n/4096}'
[ -n "$fa" ] && awk -v fb="$fb" -v fa="$fa" -v nb="$nb" -v na="$na" -v cb="$cb" -v ca="$ca" 'BEGIN {printf "WAL frames per write: %.1f (%d writes, %.1f per commit)\n", (fa-fb)/(na-nb), na-nb, (na-nb)/(ca-cb)}'
[ -n "$ra" ] && echo "batches run again in savepoints: $((ra - rb)) of $((ca - cb))"
echo "server CPU per intake, by thread (µs):"
join <(echo "$before" | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort) \
     <(echo "$after" | awk '{a[$1]+=$2} END {for (k in a) print k, a[k]}' | sort) |
  awk -v n="$requests" -v hz="$hz" '{d=($3-$2)/hz*1e6/n; t+=d; printf "  %-16s %6.0f\n", $1, d} END {printf "  %-16s %6.0f\n", "total", t}'
perf report -i "$DATA/perf.data" --no-children --sort comm,dso --stdio > "$DATA/by-dso.txt" 2>/dev/null
perf report -i "$DATA/perf.data" --no-children --sort comm,sym --stdio > "$DATA/by-sym.txt" 2>/dev/null
grep -E '^ +[0-9]' "$DATA/by-dso.txt" | sed -n 1,8p
grep -E '^ +[0-9]' "$DATA/by-sym.txt" | sed -n 1,30p
