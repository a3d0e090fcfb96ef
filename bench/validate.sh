#!/usr/bin/env bash
# Validation against its JavaScript peer, in one session: the criterion bench
# (`cargo bench --bench validate`: JSON parse + the clinic contract, valid and invalid payloads
# of bench/payloads) and then the Zod clinic contract (bench/zod) on the same bytes, JSON.parse
# included. Prints each figure and the ratios Rust/Zod (time; below 1 is faster than Zod) and
# the speed-up Zod/Rust.
#
#   bench/validate.sh
#   CARGO_BENCH_ARGS='--measurement-time 10' bench/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ -d bench/zod/node_modules ] || (cd bench/zod && npm ci --no-audit --no-fund --silent)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# shellcheck disable=SC2086
cargo bench -q --bench validate -- --noplot ${CARGO_BENCH_ARGS:-} | tee "$out" | grep -E '^[A-Za-z_+()0-9 ]+$|time:'
zod=$(node bench/zod/harness.mjs)
echo "$zod"
python3 - "$out" "$zod" <<'PY'
import re, sys
units = {"ps": 1e-3, "ns": 1.0, "µs": 1e3, "us": 1e3, "ms": 1e6, "s": 1e9}
rust, name = {}, None
for line in open(sys.argv[1], encoding="utf-8"):
    m = re.match(r"^(\S.*?)\s*(time:\s*\[(.*)\])?\s*$", line)
    if not line.strip():
        continue
    if m and not line.startswith(" ") and "time:" not in line.split()[0]:
        name = m.group(1).split("  ")[0].strip()
    t = re.search(r"time:\s*\[\S+ \S+ (\S+) (\S+) \S+ \S+\]", line)
    if t and name:
        rust[name] = float(t.group(1)) * units[t.group(2)]
zod = dict(kv.split("=") for kv in sys.argv[2].split()[1:])
pairs = [("valid  ", "json_parse+contract_validate", "valid_ns"),
         ("invalid", "json_parse+contract_validate_invalid(3 errors)", "invalid_ns")]
for label, r, z in pairs:
    rn, zn = rust[r], float(zod[z])
    print(f"{label}: rust {rn:.0f} ns, zod {zn:.0f} ns, rust/zod {rn / zn:.3f} (rust {zn / rn:.1f}x faster)")
PY
