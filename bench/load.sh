#!/usr/bin/env bash
# Load benchmark: builds release, starts rxbridge on a fresh (or seeded) data dir, and measures
# side by side (a) GET /healthz, a trivial axum endpoint on the same server, as the ceiling and
# (b) POST /v1/prescriptions with full validation, compliance (patient history) and a durable
# (fsync) write; then, in the same run with the same bodies, the two ceilings of
# `bench/ceiling` (the same HTTP stack): (c) parse the JSON and answer 201, (d) parse, append to
# a file, group-commit fdatasync, answer 201. Prints req/s, p50/p99/p99.9, peak RSS, the ratio
# b/a and the ratios b/d (intake / durable ceiling) and b/c (intake / trivial ceiling); then
# the same at an approximately fixed rate.
#
#   bench/load.sh                      # 10 s, 64 connections, fresh data dir
#   SEED=1000000 bench/load.sh         # with 1 M prescriptions already stored
#   DURATION=30s CONNECTIONS=128 bench/load.sh
#   RXBRIDGE_BIN=/tmp/rxbridge.before bench/load.sh   # an earlier build, for before/after
#   CEILING_BIN=… bench/load.sh        # a ceiling binary built elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
SEED=${SEED:-0}
RATE_CONNECTIONS=${RATE_CONNECTIONS:-10}
RATE_DELAY_MS=${RATE_DELAY_MS:-20}   # ~ RATE_CONNECTIONS / (delay + latency) ≈ 500 req/s
PORT=${PORT:-18181}
CEILING_PORT=${CEILING_PORT:-$((PORT + 1))}
TARGET=${CARGO_TARGET_DIR:-target}

command -v wrk >/dev/null || { echo "installing wrk"; apt-get install -y -qq wrk >/dev/null; }
if [ -n "${RXBRIDGE_BIN:-}" ]; then BIN=$RXBRIDGE_BIN; else   # another build, e.g. to compare
  cargo build --release -q -p rxbridge; BIN=$TARGET/release/rxbridge; fi
if [ -n "${CEILING_BIN:-}" ]; then CEILING=$CEILING_BIN; else
  cargo build --release -q -p rxbridge-ceiling; CEILING=$TARGET/release/rxbridge-ceiling; fi
DATA=${DATA_DIR:-$(mktemp -d)}
export RXBRIDGE_LOG=warn

if [ "$SEED" -gt 0 ] && [ ! -f "$DATA/rxbridge.db" ]; then
  start=$(date +%s.%N)
  $BIN --data-dir "$DATA" dev seed --count "$SEED" --patients $((SEED / 4)) --hot-patient 1000 >/dev/null
  echo "seeded $SEED in $(echo "$(date +%s.%N) - $start" | bc) s"
fi
KEY=$($BIN --data-dir "$DATA" clinic add --name "Load Clinic" --json | sed -E 's/.*"test_key":"([^"]+)".*/\1/')
python3 - > "$DATA/nhs.txt" <<'PY'
n = 0
k = 100000001  # the same range `rxbridge dev seed` uses, so load patients have seeded histories
while n < 20000:
    d = [int(c) for c in str(k)]
    c = 11 - sum(x * (10 - i) for i, x in enumerate(d)) % 11
    c = 0 if c == 11 else c
    if c != 10:
        print(f"{k}{c}"); n += 1
    k += 7
PY

t0=$(date +%s%N)
RXBRIDGE_MAX_CONNECTIONS_PER_CLIENT=${RXBRIDGE_MAX_CONNECTIONS_PER_CLIENT:-$(( CONNECTIONS > 200 ? CONNECTIONS * 2 : 256 ))} \
  RXBRIDGE_METRICS_LISTEN=${RXBRIDGE_METRICS_LISTEN:-127.0.0.1:0} $BIN --data-dir "$DATA" serve --listen 127.0.0.1:$PORT > "$DATA/serve.out" 2> "$DATA/serve.err" &
PID=$!
$CEILING --listen 127.0.0.1:$CEILING_PORT --file "$DATA/ceiling.log" > "$DATA/ceiling.err" 2>&1 &
CPID=$!
# A data directory of its own is removed at the end (one given in DATA_DIR is kept for reuse).
trap 'kill $PID $CPID 2>/dev/null || true; wait 2>/dev/null || true; [ -n "${DATA_DIR:-}" ] || rm -rf "$DATA"' EXIT
until curl -sf -o /dev/null http://127.0.0.1:$PORT/readyz; do sleep 0.02; done
export RX_KEY=$KEY RX_TODAY=$(date -u +%F) RX_NHS="$DATA/nhs.txt"
first=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$PORT/v1/prescriptions -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' -H "Idempotency-Key: first-$(date +%s%N)" \
  -d "$(curl -s http://127.0.0.1:$PORT/openapi.json | python3 -c "import json,sys,datetime; d=json.load(sys.stdin)['components']['schemas']['PrescriptionIn']['example']; d['issued_on']=datetime.date.today().isoformat(); print(json.dumps(d))")")
t1=$(date +%s%N)
echo "start-up to first $first: $(( (t1 - t0) / 1000000 )) ms (stored before start: $SEED)"

run() { # label script connections delay
  RX_DELAY_MS=$4 wrk -t"$THREADS" -c"$3" -d"$DURATION" -s "bench/$2" "http://127.0.0.1:$PORT$5" | grep RESULT | sed "s|RESULT|$1|"
}
a=$(run "trivial GET /healthz        " trivial.lua "$CONNECTIONS" 0 /healthz)
echo "$a"
b=$(run "durable POST /v1/prescriptions" submit.lua "$CONNECTIONS" 0 /v1/prescriptions)
echo "$b"
echo "peak RSS: $(grep VmHWM /proc/$PID/status | awk '{printf "%.1f MiB", $2/1024}')"
# The ceilings, on their own port, with the bodies submit.lua sends the product.
crun() { # label path connections delay
  RX_DELAY_MS=$4 wrk -t"$THREADS" -c"$3" -d"$DURATION" -s bench/submit.lua "http://127.0.0.1:$CEILING_PORT$2" | grep RESULT | sed "s|RESULT|$1|"
}
c=$(crun "ceiling parse+201 POST     " /trivial "$CONNECTIONS" 0)
echo "$c"
d=$(crun "ceiling durable POST       " /durable "$CONNECTIONS" 0)
echo "$d"
rps() { echo "$1" | sed -E 's/.*req_per_s=([0-9]+).*/\1/'; }
ra=$(rps "$a"); rb=$(rps "$b"); rc=$(rps "$c"); rd=$(rps "$d")
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }
echo "ratio b/a: $(ratio "$rb" "$ra")"
echo "ratio intake / durable ceiling (b/d): $(ratio "$rb" "$rd")"
echo "ratio intake / trivial ceiling (b/c): $(ratio "$rb" "$rc")"
echo "ceiling peak RSS: $(grep VmHWM /proc/$CPID/status | awk '{printf "%.1f MiB", $2/1024}')"
echo "-- approximately fixed rate ($RATE_CONNECTIONS connections, ${RATE_DELAY_MS} ms think time)"
run "trivial GET /healthz        " trivial.lua "$RATE_CONNECTIONS" "$RATE_DELAY_MS" /healthz
run "durable POST /v1/prescriptions" submit.lua "$RATE_CONNECTIONS" "$RATE_DELAY_MS" /v1/prescriptions
crun "ceiling parse+201 POST     " /trivial "$RATE_CONNECTIONS" "$RATE_DELAY_MS"
crun "ceiling durable POST       " /durable "$RATE_CONNECTIONS" "$RATE_DELAY_MS"
kill -TERM $PID $CPID; wait $PID 2>/dev/null || true
echo "after the run: $($BIN --data-dir "$DATA" audit verify 2>/dev/null)"
