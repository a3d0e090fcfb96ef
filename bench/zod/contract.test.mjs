// The Zod peer accepts what the Rust contract accepts and rejects what it rejects, on the
// shared bench payloads and a few variants (node --test bench/zod/contract.test.mjs).

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { prescriptionSchema, readQuantityWords } from "./contract.mjs";

const load = (f) => JSON.parse(readFileSync(new URL(`../payloads/${f}`, import.meta.url), "utf8"));
const schema = prescriptionSchema("2026-11-26");

test("the valid payload passes", () => {
  assert.equal(schema.safeParse(load("valid.json")).success, true);
});

test("the invalid payload fails at the three pointers the 422 names", () => {
  const r = schema.safeParse(load("invalid.json"));
  assert.equal(r.success, false);
  const paths = r.error.issues.map((i) => `/${i.path.join("/")}`).sort();
  assert.deepEqual(paths, ["/items/0", "/patient/address/postcode", "/patient/nhs_number"]);
});

test("cross-field rules", () => {
  const nhs = load("valid.json");
  nhs.type = "nhs";
  assert.equal(schema.safeParse(nhs).success, false, "nhs needs an NHS authority and block");
  nhs.authority = { kind: "eps", eps_prescription_id: "24F5DA-A83008-7EFE6Z" };
  nhs.nhs = { exemption: "0001", evidence_seen: false };
  assert.equal(schema.safeParse(nhs).success, true);
  delete nhs.patient.nhs_number;
  assert.equal(schema.safeParse(nhs).success, false, "nhs needs the patient's NHS number");
  const kind = load("valid.json");
  kind.prescriber.kind = "dentist";
  assert.equal(schema.safeParse(kind).success, false, "a GMC registration cannot be a dentist");
  const future = load("valid.json");
  future.patient.date_of_birth = "2027-01-01";
  assert.equal(schema.safeParse(future).success, false);
});

test("quantity words as the Rust reader reads them", () => {
  assert.equal(readQuantityWords("twenty-eight capsules"), 28);
  assert.equal(readQuantityWords("one hundred and twelve"), 112);
  assert.equal(readQuantityWords("twenty-eigth"), 28);
  assert.equal(readQuantityWords("twenty twenty"), null);
});
