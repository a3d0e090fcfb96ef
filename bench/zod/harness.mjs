// Times JSON.parse + the Zod clinic contract on the payloads the Rust criterion bench uses
// (bench/payloads), and prints one line the comparison script reads:
//   zod valid_ns=… invalid_ns=… invalid_issues=…
// Each figure is the median of BATCHES batches of ITERS calls, after a warm-up.
//   node bench/zod/harness.mjs

import { readFileSync } from "node:fs";
import { prescriptionSchema } from "./contract.mjs";

const TODAY = "2026-11-26"; // the date the Rust bench validates on
const ITERS = Number(process.env.ITERS ?? 20000);
const BATCHES = Number(process.env.BATCHES ?? 15);
const payload = (f) => readFileSync(new URL(`../payloads/${f}`, import.meta.url), "utf8");
const valid = payload("valid.json");
const invalid = payload("invalid.json");
const schema = prescriptionSchema(TODAY);

const check = (text, ok) => {
  const r = schema.safeParse(JSON.parse(text));
  if (r.success !== ok) throw new Error(`expected success=${ok}: ${JSON.stringify(r.error?.issues)}`);
  return r;
};
const issues = check(invalid, false).error.issues.length;
check(valid, true);

function time(text) {
  let sink = 0;
  const run = () => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < ITERS; i++) sink += schema.safeParse(JSON.parse(text)).success ? 1 : 0;
    return Number(process.hrtime.bigint() - t0) / ITERS;
  };
  for (let i = 0; i < 3; i++) run(); // warm-up: let the JIT settle
  const ns = Array.from({ length: BATCHES }, run).sort((a, b) => a - b);
  if (sink < 0) console.log(sink);
  return ns[Math.floor(ns.length / 2)];
}

const v = time(valid);
const i = time(invalid);
console.log(`zod valid_ns=${v.toFixed(0)} invalid_ns=${i.toFixed(0)} invalid_issues=${issues}`);
